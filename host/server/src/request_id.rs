//! Correlation ids and request logs. Every request gets an id: the
//! caller's `X-Request-Id` when it is sane (1 to 64 characters of
//! `A-Z a-z 0-9 . _ -`), else a fresh one. The id is echoed in the
//! response's `X-Request-Id`, the handler runs inside a
//! `http_request{request_id, method, path, key_id}` span (which blocking
//! host calls carry along, so an invocation's own logs nest under it), and
//! one `info` event per request records method, path, status, latency and
//! the key id: never the key or the `Authorization` header.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header carrying the correlation id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The key id that authenticated a request, left on the response by the
/// authentication layer for the request log.
#[derive(Debug, Clone)]
pub(crate) struct KeyId(pub(crate) String);

/// Whether a caller's id can be used as is.
fn sane(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A fresh id: 16 hex digits, unpredictable and unique in this process.
fn fresh() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

/// The middleware: id, span, response header, request log.
pub(crate) async fn trace_requests(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map(str::to_string)
        .unwrap_or_else(fresh);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!(
        "http_request",
        request_id = %id,
        method = %method,
        path = %path,
        key_id = tracing::field::Empty,
    );
    let mut res = next.run(req).instrument(span.clone()).await;
    let key_id = res.extensions().get::<KeyId>().map(|k| k.0.as_str()).unwrap_or("-");
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path = %path,
            status = res.status().as_u16(),
            latency_ms = start.elapsed().as_millis() as u64,
            request_id = %id,
            key_id = %key_id,
            "request"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_are_taken() {
        assert!(sane("abc-DEF_1.2"));
        assert!(sane(&"a".repeat(64)));
        assert!(!sane(""));
        assert!(!sane(&"a".repeat(65)));
        assert!(!sane("a b"));
        assert!(!sane("a\u{e9}"));
        assert!(sane(&fresh()));
        assert_ne!(fresh(), fresh());
    }
}
