//! A WASI 0.3 HTTP service, as the `wasip3` crate's own example writes
//! one: `wasi:http/handler@0.3.handle` answers each request with a
//! response whose body it writes as a stream after returning it.
//!
//! `GET /status/418` answers 418; `/loop` spins (it must end
//! `out_of_fuel`); `/big/N` writes N bytes; anything else answers
//! `p3 <METHOD> <path>: <request body>`.

use wasip3::http::types::{ErrorCode, Fields, Method, Request, Response};
use wasip3::{wit_bindgen, wit_future, wit_stream};

wasip3::http::service::export!(Service);

struct Service;

impl wasip3::exports::http::handler::Guest for Service {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path = request.get_path_with_query().unwrap_or_default();
        let method = match request.get_method() {
            Method::Get => "GET".to_string(),
            Method::Post => "POST".to_string(),
            Method::Put => "PUT".to_string(),
            other => format!("{other:?}"),
        };
        let (mut body, status) = if path == "/loop" {
            spin()
        } else if let Some(n) = path.strip_prefix("/big/") {
            (vec![b'x'; n.parse().unwrap_or(0)], 200)
        } else if path == "/status/418" {
            (b"short and stout\n".to_vec(), 418)
        } else {
            let (_, result_tx) = wit_future::new(|| Ok(()));
            let (mut contents, _trailers) = Request::consume_body(request, result_tx);
            let mut input = Vec::new();
            loop {
                let (result, chunk) = contents.read(Vec::with_capacity(4096)).await;
                input.extend(chunk);
                if !matches!(result, wit_bindgen::StreamResult::Complete(_)) {
                    break;
                }
            }
            let mut out = format!("p3 {method} {path}: ").into_bytes();
            out.append(&mut input);
            (out, 200)
        };
        let (mut body_tx, body_rx) = wit_stream::new();
        let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(Fields::new(), Some(body_rx), trailers_rx);
        let _ = response.set_status_code(status);
        drop(trailers_tx);
        wit_bindgen::spawn_local(async move {
            let rest = body_tx.write_all(std::mem::take(&mut body)).await;
            assert!(rest.is_empty());
        });
        Ok(response)
    }
}

/// Compute that never ends, which only the meter stops.
fn spin() -> (Vec<u8>, u16) {
    let mut x: u64 = 1;
    loop {
        x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
