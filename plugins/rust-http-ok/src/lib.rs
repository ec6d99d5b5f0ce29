//! The least a `wasi:http/proxy` component does: answer `ok`. Standard
//! imports only, so `wasmtime serve` runs it as it is: the HTTP benchmark
//! (`scripts/bench-http.sh`) serves it with both, side by side.

use wstd::http::body::Body;
use wstd::http::{Error, Request, Response};

#[wstd::http_server]
async fn main(_request: Request<Body>) -> Result<Response<Body>, Error> {
    Ok(Response::new("ok\n".to_owned().into()))
}
