//! What the host adds to a language-model call: the `llm` import's checks,
//! the policy chain (an `llm` and an `http-request` action, each audited),
//! the hold of the payer's tokens and its release, routing and the
//! production client, against a direct HTTP call to the same server.
//!
//! The server is `fuelhost::llm::loopback` (deterministic, on loopback),
//! so the model's own time is nil and what is measured is the two paths.
//! The direct call is a minimal HTTP/1.1 client on a fresh connection, as
//! the host's client opens one per request. Through the host, the
//! `rust-llm-ask` guest asks `N` times in one invocation; the difference
//! between 41 asks and 1 ask, over 40, is one call's cost without the
//! invocation's own (best of several runs each).
//!
//! Run: `scripts/setup.sh && cargo bench -p fuelhost --bench llm`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fuelhost::llm::loopback::Loopback;
use fuelhost::{Asset, Durability, Host, Invocation, Limits, LlmProvider, Manifest, ResourcePolicy};

const RUNS: usize = 7;
const DIRECT_CALLS: u32 = 200;
const ASKS: u64 = 41;

/// One chat-completions request straight to `url`'s server, on a fresh
/// connection; returns the response's length.
fn direct(addr: &str, body: &str) -> usize {
    let mut stream = TcpStream::connect(addr).expect("the loopback server accepts");
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    answer.len()
}

/// The best of `RUNS` of `f`'s time.
fn best(mut f: impl FnMut() -> Duration) -> Duration {
    (0..RUNS).map(|_| f()).min().unwrap_or_default()
}

fn main() {
    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    let Ok(ask) = std::fs::read(format!("{guests}/rust-llm-ask.wasm")) else {
        eprintln!("llm: rust-llm-ask.wasm is missing from {guests}: run scripts/setup.sh");
        return;
    };
    let server = Loopback::start().unwrap();
    let addr = server.url().trim_start_matches("http://").trim_end_matches("/v1").to_string();
    let dir = tempfile::tempdir().unwrap();
    let host = Host::builder()
        .data_dir(dir.path())
        .durability(Durability::Process)
        .llm_provider(LlmProvider::new("local", server.url(), &["small"]))
        .build()
        .unwrap();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
        host.mint(&format!("{agent}-fuel"), agent, Asset::Fuel, u64::MAX / 4).unwrap();
        host.mint(&format!("{agent}-tokens"), agent, Asset::LlmTokens, u64::MAX / 4).unwrap();
    }
    let manifest = Manifest {
        owner: "alice".try_into().unwrap(),
        name: "ask".into(),
        version: "1".into(),
        price: 0,
        resource_policy: ResourcePolicy::CallerPays,
        description: String::new(),
        limits: Limits { timeout_ms: 60_000, ..Limits::default() },
        metering: fuelhost::Metering::Fuel,
        capabilities: Vec::new(),
        quality: None,
        command: Default::default(),
    };
    let id = host.upload(manifest, &ask).unwrap().id;
    let body = serde_json::json!({
        "model": "small",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 16,
    })
    .to_string();
    let invoke = |asks: u64| {
        let input = serde_json::json!({"prompt": "hello there", "model": "small", "max_tokens": 16, "asks": asks});
        let started = Instant::now();
        let r = host.invoke(Invocation::new("bob", &id, input.to_string())).unwrap();
        assert!(r.success, "{:?}", r.error);
        assert_eq!(r.resources_consumed.llm_tokens, asks * 8);
        started.elapsed()
    };
    // Warm both paths (the guest's code, the server's threads).
    for _ in 0..20 {
        direct(&addr, &body);
    }
    invoke(ASKS);

    let direct_call = best(|| {
        let started = Instant::now();
        for _ in 0..DIRECT_CALLS {
            direct(&addr, &body);
        }
        started.elapsed() / DIRECT_CALLS
    });
    let one = best(|| invoke(1));
    let many = best(|| invoke(ASKS));
    let through_host = (many.saturating_sub(one)) / (ASKS as u32 - 1);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("one language-model call, loopback server (best of {RUNS} runs)");
    println!("| path | µs per call |");
    println!("| --- | --- |");
    println!("| direct HTTP (fresh connection) | {:.1} |", us(direct_call));
    println!("| through the host, inside a call (`llm.complete`) | {:.1} |", us(through_host));
    println!(
        "| the host's overhead | {:.1} ({:.2}x the direct call) |",
        us(through_host) - us(direct_call),
        us(through_host) / us(direct_call)
    );
    println!("| a whole invocation asking once (admit, run, one ask, settle) | {:.1} |", us(one));
    println!("(the loopback served {} requests)", server.served());
}
