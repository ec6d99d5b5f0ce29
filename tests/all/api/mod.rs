//! The HTTP API against a real server on a loopback port, one module per
//! area. Every endpoint's happy path, every auth failure (no key, wrong
//! key, another agent's resource, non-admin on admin routes) and bad input
//! (malformed JSON, unknown fields, negative or overflowing amounts,
//! unknown ids) gets the right status and the one JSON error shape, and
//! changes nothing.

mod allocations;
mod artifacts;
mod contract;
mod core;
mod keys;
mod ledger;
mod limits;
mod mcp;
mod openapi;
mod pages;
mod policies;
mod proxy;
mod tasks;
mod wire;

use std::time::Duration;

use fuelhost::Host;
use fuelhost_server::{router, serve, ApiConfig, ApiState};
use serde_json::{json, Value};

/// A server on a loopback port; stops when dropped.
pub struct Server {
    pub base: String,
    pub admin: String,
    pub host: Host,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A server with bodies capped at `max_body` and no rate limit.
pub fn start(max_body: usize) -> Server {
    start_with(ApiConfig { max_body_bytes: max_body, rate_limit: None, ..ApiConfig::default() }, None)
}

/// A server configured by `config`; with `logs`, every thread of its
/// runtime (blocking pool included) logs to that dispatcher.
pub fn start_with(config: ApiConfig, logs: Option<tracing::Dispatch>) -> Server {
    start_on(config, logs, 1 << 20, Vec::new())
}

/// A server whose host reaches the language-model `providers`.
pub fn start_with_llm(providers: Vec<fuelhost::LlmProvider>) -> Server {
    start_on(ApiConfig { rate_limit: None, ..ApiConfig::default() }, None, 1 << 20, providers)
}

/// A server taking components (and bodies) up to 64 MiB: Python's and
/// JavaScript's are tens of MiB.
pub fn start_big() -> Server {
    start_on(
        ApiConfig { max_body_bytes: 64 << 20, rate_limit: None, ..ApiConfig::default() },
        None,
        64 << 20,
        Vec::new(),
    )
}

fn start_on(
    config: ApiConfig,
    logs: Option<tracing::Dispatch>,
    max_component: usize,
    providers: Vec<fuelhost::LlmProvider>,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = fuelhost_tests::builder(dir.path()).max_instances(8).max_component_bytes(max_component);
    for p in providers {
        builder = builder.llm_provider(p);
    }
    let host = builder.build().unwrap();
    let state = ApiState::new(host.clone());
    let admin = state.bootstrap_admin_key().unwrap().expect("a first start makes the admin key");
    assert_eq!(state.bootstrap_admin_key().unwrap(), None, "shown once");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    // tracing caches whether each callsite is enabled, process-wide. While
    // one dispatcher is registered it asks only the dispatcher of the thread
    // that reaches a callsite first, so another test's server (logging
    // nowhere) could disable this server's spans and events for good. A
    // second registered dispatcher, alive as long as the server, makes it
    // ask every registered dispatcher instead.
    let second = logs.as_ref().map(|_| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    std::thread::spawn(move || {
        let _second = second;
        tracing::callsite::rebuild_interest_cache();
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.enable_all().worker_threads(2);
        if let Some(d) = logs.clone() {
            builder.on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&d)));
        }
        let rt = builder.build().unwrap();
        let run = || {
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                serve(listener, router(state, &config), async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            })
        };
        match logs {
            Some(d) => tracing::dispatcher::with_default(&d, run),
            None => run(),
        }
    });
    let port = port_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    Server { base: format!("http://127.0.0.1:{port}"), admin, host, _dir: dir, stop: Some(stop) }
}

/// A response: status, JSON body (`Null` when empty or not JSON), and the
/// headers the tests look at.
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub request_id: Option<String>,
    pub retry_after: Option<String>,
}

fn reply(res: Result<ureq::Response, ureq::Error>, what: &str) -> Reply {
    let res = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{what}: {e}"),
    };
    let status = res.status();
    let request_id = res.header("x-request-id").map(str::to_string);
    let retry_after = res.header("retry-after").map(str::to_string);
    let text = res.into_string().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, body, text, request_id, retry_after }
}

fn request(method: &str, url: &str, key: Option<&str>) -> ureq::Request {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(120));
    if let Some(k) = key {
        req = req.set("Authorization", &format!("Bearer {k}"));
    }
    req
}

/// (status, JSON body) for any response, error statuses included.
pub fn call(method: &str, url: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let req = request(method, url, key);
    let res = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let r = reply(res, &format!("{method} {url}"));
    assert!(r.body != Value::Null, "{method} {url}: not JSON: {}", r.text);
    (r.status, r.body)
}

/// Send `body` as is, with `headers`.
pub fn send(method: &str, url: &str, key: Option<&str>, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut req = request(method, url, key);
    for (h, v) in headers {
        req = req.set(h, v);
    }
    reply(req.send_bytes(body), &format!("{method} {url}"))
}

/// A `multipart/form-data` body of `parts`: its content type and bytes.
pub fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "fuelhost-test-boundary-7d3f";
    let mut body = Vec::new();
    for (name, data) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Upload with the manifest in the `Fuelhost-Manifest` header.
pub fn upload(s: &Server, key: &str, manifest: Value, body: &[u8]) -> (u16, Value) {
    let r = send("POST", &s.url("/v1/artifacts"), Some(key), &[("Fuelhost-Manifest", &manifest.to_string())], body);
    (r.status, r.body)
}

pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {v}"))
}

/// Create `ids` as agents; their keys, in order.
pub fn agents(s: &Server, ids: &[&str]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            let (st, v) = call("POST", &s.url("/v1/agents"), Some(&s.admin), Some(json!({"id": id})));
            assert_eq!(st, 201, "{v}");
            v["api_key"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Mint `amount` of `asset` for `agent`.
pub fn mint(s: &Server, agent: &str, asset: &str, amount: u64) {
    let id = format!("mint-{agent}-{asset}-{amount}");
    let (st, v) = call(
        "POST",
        &s.url("/v1/mint"),
        Some(&s.admin),
        Some(json!({"id": id, "agent": agent, "asset": asset, "amount": amount})),
    );
    assert_eq!(st, 200, "{v}");
}

/// `GET path` with `key` and no key: the first must be `expected`, the
/// second 401.
pub fn assert_needs_key(s: &Server, method: &str, path: &str, key: &str, expected: u16) -> Value {
    let (st, v) = call(method, &s.url(path), None, None);
    assert_eq!((st, error_code(&v)), (401, "unauthorized"), "{method} {path} without a key");
    let (st, v) = call(method, &s.url(path), Some("fh_wrong"), None);
    assert_eq!((st, error_code(&v)), (401, "unauthorized"), "{method} {path} with a wrong key");
    let (st, v) = call(method, &s.url(path), Some(key), None);
    assert_eq!(st, expected, "{method} {path}: {v}");
    v
}
