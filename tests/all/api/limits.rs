//! Per-key rate limits (a burst, then `429 rate_limited` with
//! `Retry-After`, then service again once the bucket refills; other keys
//! and unauthenticated requests untouched), and correlation ids with one
//! log line per request that never shows a key.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fuelhost_server::{ApiConfig, RateLimit};
use serde_json::json;

use super::{agents, error_code, send, start_with};

#[test]
fn each_key_gets_its_burst_then_429_until_the_refill() {
    let burst = 3;
    let s = start_with(
        ApiConfig {
            max_body_bytes: 1 << 20,
            rate_limit: Some(RateLimit { per_second: 1, burst }),
            ..ApiConfig::default()
        },
        None,
    );
    let keys = agents(&s, &["alice", "bob"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    let url = s.url("/v1/artifacts");

    // Requests without a valid key are never counted.
    for _ in 0..2 * burst {
        assert_eq!(send("GET", &url, None, &[], b"").status, 401);
        assert_eq!(send("GET", &url, Some("fh_wrong"), &[], b"").status, 401);
        assert_eq!(send("GET", &s.url("/healthz"), None, &[], b"").status, 200);
    }

    // The first `burst` requests pass (the bucket starts full); with a
    // refill of one a second, a 429 comes right after (at most one more
    // passes, should the loop take over a second).
    let mut passed = 0;
    let refused = loop {
        let r = send("GET", &url, Some(alice), &[], b"");
        if r.status != 200 {
            break r;
        }
        passed += 1;
        assert!(passed <= burst + 1, "the limit never applied");
    };
    assert!(passed >= burst, "only {passed} of a burst of {burst} passed");
    assert_eq!((refused.status, error_code(&refused.body)), (429, "rate_limited"), "{}", refused.text);
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("1 requests per second") && message.contains("retry in"), "{message}");
    let wait: u64 = refused.retry_after.as_deref().expect("a Retry-After header").parse().unwrap();
    assert_eq!(wait, 1, "one token a second: retry within the second");
    assert!(refused.request_id.is_some(), "a refused request is still traced");

    // Another key has its own bucket.
    assert_eq!(send("GET", &url, Some(bob), &[], b"").status, 200);

    // After the advertised wait, the key is served again.
    std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(100));
    assert_eq!(send("GET", &url, Some(alice), &[], b"").status, 200);
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn requests_carry_an_id_and_are_logged_without_keys() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let s = start_with(
        ApiConfig { max_body_bytes: 1 << 20, rate_limit: None, ..ApiConfig::default() },
        Some(tracing::Dispatch::new(subscriber)),
    );
    let keys = agents(&s, &["alice"]);
    let alice = &keys[0];

    // A sane id is echoed; an insane one is replaced.
    let r = send("GET", &s.url("/v1/agents/alice"), Some(alice), &[("X-Request-Id", "trace-me.42_A")], b"");
    assert_eq!((r.status, r.request_id.as_deref()), (200, Some("trace-me.42_A")));
    let r = send("GET", &s.url("/v1/agents/alice"), Some(alice), &[("X-Request-Id", "bad id/with spaces")], b"");
    let fresh = r.request_id.expect("an id is made");
    assert!(fresh != "bad id/with spaces" && !fresh.is_empty() && fresh.len() <= 64, "{fresh}");
    let long = "x".repeat(65);
    let r = send("GET", &s.url("/healthz"), None, &[("X-Request-Id", &long)], b"");
    assert_ne!(r.request_id.as_deref(), Some(long.as_str()));
    // A refused request; and an upload, whose registry log line comes from
    // the blocking pool and must nest under the request's span.
    let r = send("GET", &s.url("/v1/keys"), Some(alice), &[("X-Request-Id", "denied-1")], b"");
    assert_eq!(r.status, 403);
    let manifest = json!({"owner": "alice", "name": "echo", "version": "1", "resource_policy": "caller_pays"});
    let r = send(
        "POST",
        &s.url("/v1/artifacts"),
        Some(alice),
        &[("X-Request-Id", "upload-1"), ("Fuelhost-Manifest", &manifest.to_string())],
        &fuelhost_tests::guest("rust-echo"),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = send("GET", &s.url("/v1/keys"), None, &[("Authorization", &format!("Basic {alice}"))], b"");
    assert_eq!(r.status, 401);

    // The log line is written as the response goes; give it a moment.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = captured.text();
        if logs.contains("upload-1") && logs.contains("status=401") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let line = logs.lines().find(|l| l.contains("trace-me.42_A") && l.contains("status=200")).unwrap_or_else(|| {
        panic!("no request log line with the caller's id in:\n{logs}");
    });
    for field in ["http_request", "method=GET", "path=/v1/agents/alice", "latency_ms=", "key_id=k_"] {
        assert!(line.contains(field), "`{field}` missing from: {line}");
    }
    assert!(logs.lines().any(|l| l.contains("denied-1") && l.contains("status=403")), "{logs}");
    assert!(logs.contains(&fresh), "the made id is logged too");
    assert!(logs.lines().any(|l| l.contains("upload-1") && l.contains("status=201")), "{logs}");
    assert!(
        logs.lines().any(|l| l.contains("request_id=upload-1") && l.contains("artifact uploaded")),
        "the host's own log lines nest under the request's span:\n{logs}"
    );
    for secret in [alice.as_str(), s.admin.as_str()] {
        assert!(!logs.contains(secret), "a key leaked into the logs:\n{logs}");
    }
    assert!(!logs.to_lowercase().contains("authorization"), "{logs}");
    assert!(!logs.contains("Bearer"), "{logs}");
}

#[test]
fn the_api_config_reads_from_a_server_config_and_refuses_mistakes() {
    let parse = |v: serde_json::Value| serde_json::from_value::<ApiConfig>(v);
    assert_eq!(parse(json!({})).unwrap(), ApiConfig::default());
    assert_eq!(ApiConfig::default().rate_limit, None, "unlimited unless configured");
    let c = parse(json!({"max_body_bytes": 1024, "rate_limit": {"per_second": 5, "burst": 10}})).unwrap();
    assert_eq!(
        c,
        ApiConfig {
            max_body_bytes: 1024,
            rate_limit: Some(RateLimit { per_second: 5, burst: 10 }),
            ..ApiConfig::default()
        }
    );
    let c = parse(json!({"rate_limit": {"burst": 7}})).unwrap();
    assert_eq!(c.rate_limit, Some(RateLimit { burst: 7, ..RateLimit::default() }));
    let err = parse(json!({"max_body": 1})).unwrap_err().to_string();
    assert!(err.contains("max_body"), "{err}");
    let err = parse(json!({"rate_limit": {"per_second": 1, "bursts": 2}})).unwrap_err().to_string();
    assert!(err.contains("bursts"), "{err}");
    let err = parse(json!({"rate_limit": {"per_second": 0}})).unwrap_err().to_string();
    assert!(err.contains("per_second must be at least 1"), "{err}");
}

#[test]
fn a_body_that_does_not_arrive_in_time_gets_408_and_frees_the_connection() {
    use std::io::Read;
    let s = start_with(ApiConfig { body_timeout_ms: 300, ..ApiConfig::default() }, None);
    let keys = agents(&s, &["bob"]);
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Promise 100 bytes, send 10, then stall.
    write!(
        conn,
        "POST /v1/transfers HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"id\": \"x",
        keys[0]
    )
    .unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    // The server still serves.
    assert_eq!(super::call("GET", &s.url("/v1/agents/bob"), Some(&keys[0]), None).0, 200);
}
