//! The run of a `wasi:http/proxy` artifact (or a WASI 0.3 HTTP service):
//! its request handed to the incoming handler, its response sent on as it comes (`crate::proxy`),
//! and what settlement makes of how it answered. The price is paid on a
//! 2xx; any other status is the component's `run_error` (its resources
//! charged, its response sent as it is).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuelhost_runtime::concurrent::finish;
use wasmtime_wasi_http::p3;
use wasmtime_wasi_http::p3::bindings::Service;

use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::sync::Proxy;
use wasmtime_wasi_http::WasiHttpView as _;

use crate::bindings::RunError;
use crate::proxy::{Answered, Exchange};
use crate::sandbox::Sandbox;

/// The body of the exchange's request, as `wasi:http` takes one.
type RequestBody = http_body_util::combinators::MapErr<
    http_body_util::Full<bytes::Bytes>,
    fn(std::convert::Infallible) -> wasmtime_wasi_http::Error,
>;

/// The exchange's request, for the one run that hands it to the component.
fn request_of(exchange: &Exchange) -> wasmtime::Result<http::Request<RequestBody>> {
    let request = exchange
        .take_request()
        .ok_or_else(|| wasmtime::format_err!("the HTTP request was handed to an earlier run"))?;
    Ok(request.map(|b| {
        use http_body_util::BodyExt as _;
        let never: fn(std::convert::Infallible) -> wasmtime_wasi_http::Error = |never| match never {};
        http_body_util::Full::new(b).map_err(never)
    }))
}

/// Hand the exchange's request to `proxy`'s incoming handler; the
/// response (if the component sets one) is sent on by `exchange`, its
/// body kept up to `limit` bytes.
pub(super) fn handle(
    store: &mut Store<Sandbox>,
    proxy: &Proxy,
    exchange: &Arc<Exchange>,
    limit: u64,
) -> wasmtime::Result<Result<Vec<u8>, RunError>> {
    let request = request_of(exchange)?;
    let incoming = store.data_mut().http().new_incoming_request(Scheme::Http, request)?;
    let invocation_id = store.data().call.context.invocation_id.clone();
    let to = Arc::clone(exchange);
    let outparam = store.data_mut().http().new_response_outparam_from_callback(move |result| {
        to.respond(result.map_err(|code| format!("{code:?}")), invocation_id, limit);
    })?;
    proxy.wasi_http_incoming_handler().call_handle(&mut *store, incoming, outparam)?;
    // What it answered is known once its store is gone (`answered`).
    Ok(Ok(Vec::new()))
}

/// [`handle`] for a WASI 0.3 service (`wasi:http/handler@0.3`): its
/// `handle` is called concurrently and returns the response, whose body
/// the component may write after returning; the body is forwarded inside
/// the store's concurrent run, which is what lets the component write it.
/// Its waits are held to `waits` (the deadline, the cancel flag, the
/// tick).
pub(super) fn handle_concurrently(
    store: &mut Store<Sandbox>,
    service: &Service,
    exchange: &Arc<Exchange>,
    limit: u64,
    (ends, cancel, tick): (Instant, Option<&AtomicBool>, Duration),
) -> wasmtime::Result<Result<Vec<u8>, RunError>> {
    let request = request_of(exchange)?;
    let invocation_id = store.data().call.context.invocation_id.clone();
    let exchange = Arc::clone(exchange);
    // The request's headers are read under the default hooks (its
    // forbidden headers); the component's own requests go out under the
    // sandbox's (the egress policy).
    let mut hooks = crate::egress::EgressHooks { scope: None };
    let (request, request_io) = p3::Request::from_http(&mut hooks, request);
    let run = store.run_concurrent(async move |accessor| -> wasmtime::Result<()> {
        let answer = match service.handle(accessor, request).await? {
            Err(code) => Err(format!("{code:?}")),
            Ok(response) => Ok(accessor.with(|mut s| response.into_http(&mut s, request_io))?),
        };
        if let Some(forward) = exchange.answer(answer, invocation_id, limit) {
            forward.await;
        }
        Ok(())
    });
    finish(run, ends, cancel, tick)??;
    // What it answered is known once its store is gone (`answered`).
    Ok(Ok(Vec::new()))
}

/// The run's result once the component's store is gone: how it answered
/// (waiting for its body's end until `deadline`). A run that failed, or
/// whose body failed or went over the output `limit`, cuts the body the
/// client reads; a body over the limit is returned as it was kept (a byte
/// over), for settlement to refuse.
pub(super) fn answered(
    result: wasmtime::Result<Result<Vec<u8>, RunError>>,
    exchange: &Exchange,
    deadline: Instant,
    limit: u64,
) -> wasmtime::Result<Result<Vec<u8>, RunError>> {
    let Ok(Ok(_)) = result else {
        exchange.cut("the component failed while answering; its invocation's report says how");
        return result;
    };
    Ok(match exchange.answered(deadline) {
        Answered::Response { body_error: Some(e), .. } => {
            exchange.cut("the response body failed");
            Err(RunError::Failed(format!("the response body failed: {e}")))
        }
        Answered::Response { kept, .. } if kept.len() as u64 > limit => {
            exchange.cut("output_limit: the response body went over the artifact's limit (limits.output_bytes)");
            Ok(kept)
        }
        Answered::Response { status: 200..=299, kept, .. } => Ok(kept),
        Answered::Response { status, .. } => {
            Err(RunError::Failed(format!("the component answered HTTP {status}; the price is paid on a 2xx")))
        }
        Answered::Error(code) => {
            Err(RunError::Failed(format!("the component answered with the error code {code} instead of a response")))
        }
        Answered::Nothing => Err(RunError::Failed("the component returned without setting a response".into())),
        Answered::Unfinished => {
            exchange.cut("timeout: the response body did not end in time");
            return Err(wasmtime::Trap::Interrupt.into());
        }
    })
}
