"""A `wasi:http/proxy` component in plain Python, built with componentize-py
against the WASI 0.2 WIT alone (no fuelhost SDK): the kind of component a
user of `wasmtime serve` or Spin already has. `/spin` loops until its fuel
runs out; any other path is answered with a greeting naming it."""

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path = request.path_with_query() or "/"
        if path.startswith("/spin"):
            n = 0
            while True:
                n += 1
        text = f"Hello from Python over wasi:http at {path}\n".encode()
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with body.write() as stream:
            stream.blocking_write_and_flush(text)
        OutgoingBody.finish(body, None)
