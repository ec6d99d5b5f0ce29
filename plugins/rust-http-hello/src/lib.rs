//! A `wasi:http/proxy` component written with `wstd`, as any user of
//! `wasmtime serve` or Spin writes one, that also imports fuelhost's
//! `ledger` to read who called it and who pays.
//!
//! - `/` says hello; `/echo` answers the request's body;
//! - `/status/{code}` answers that status;
//! - `/bytes/{n}` answers `n` bytes;
//! - `/headers` answers the request's header names;
//! - `/ledger` answers the call's caller, payer and price;
//! - `/spin` never answers (it runs out of fuel).

use wstd::http::body::Body;
use wstd::http::{Error, Request, Response, StatusCode};

wit_bindgen::generate!({
    inline: "
        package example:http-hello;
        world economy {
            import fuelhost:host/ledger@0.1.0;
        }
    ",
    path: "../../wit",
    generate_all,
});

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let path = request.uri().path().to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        [""] => Ok(Response::new("Hello from a wasi:http component on fuelhost\n".to_owned().into())),
        ["echo"] => Ok(Response::new(request.into_body())),
        ["status", code] => {
            let code: u16 = code.parse().unwrap_or(500);
            Ok(Response::builder().status(code).body(format!("status {code}\n").into())?)
        }
        ["bytes", n] => {
            let n: usize = n.parse().unwrap_or(0);
            Ok(Response::new("x".repeat(n).into()))
        }
        ["headers"] => {
            let mut names: Vec<&str> = request.headers().keys().map(|k| k.as_str()).collect();
            names.sort();
            Ok(Response::new(format!("{}\n", names.join(",")).into()))
        }
        ["ledger"] => {
            let c = fuelhost::host::ledger::context();
            let text = format!("caller={} payer={} price={}\n", c.caller, c.payer, c.price);
            Ok(Response::new(text.into()))
        }
        ["spin"] => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        _ => Ok(Response::builder().status(StatusCode::NOT_FOUND).body("no such page\n".to_owned().into())?),
    }
}
