//! Any body sent to the API's routes that take one, with an agent's key
//! and with the admin key: answered with a status under 500 and the one
//! error shape; never a panic, never a server error.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use fuelhost_server::{router, ApiConfig, ApiState};
use fuelhost::Host;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/invoke"),
    ("POST", "/v1/transfers"),
    ("POST", "/v1/grants"),
    ("POST", "/v1/allocations"),
    ("POST", "/v1/agents"),
    ("POST", "/v1/mint"),
    ("POST", "/v1/tasks"),
    ("POST", "/v1/policy/check"),
    ("PUT", "/v1/policy/rules"),
    ("POST", "/v1/agents/bob/heartbeat"),
    ("POST", "/v1/approvals/x/reject"),
    ("GET", "/v1/usage?limit=3&before=9"),
];

struct World {
    router: axum::Router,
    admin: String,
    bob: String,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::builder().data_dir(dir.path()).max_instances(2).build().unwrap();
        host.create_agent("bob").unwrap();
        let state = ApiState::new(host);
        let admin = state.bootstrap_admin_key().unwrap().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let router = router(state, &ApiConfig::default());
        // bob's key, made through the API itself.
        let req = Request::post("/v1/agents/bob/keys").header("authorization", format!("Bearer {admin}")).body(Body::empty());
        let res = runtime.block_on(router.clone().oneshot(req.unwrap())).unwrap();
        let body = runtime.block_on(axum::body::to_bytes(res.into_body(), 1 << 20)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let bob = v["api_key"].as_str().unwrap().to_string();
        World { router, admin, bob, runtime, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else { return };
    let w = world();
    let (method, path) = ROUTES[choice as usize % ROUTES.len()];
    let key = if choice & 0x80 == 0 { &w.bob } else { &w.admin };
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let res = w.runtime.block_on(w.router.clone().oneshot(req)).unwrap();
    let status = res.status();
    let text = w.runtime.block_on(axum::body::to_bytes(res.into_body(), 64 << 20)).unwrap();
    assert!(status.as_u16() < 500, "{method} {path} answered {status}: {}", String::from_utf8_lossy(&text));
});
