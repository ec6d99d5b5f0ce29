//! `wasi:http/proxy` components over HTTP: a component built with `wstd`
//! (the ecosystem's own library) answers requests at
//! `/run/{owner}/{name}/...`, authenticated by the caller's key and charged
//! like any call: the price on a 2xx, the resources whatever it answered,
//! out of fuel and over the output limit as failed outcomes; a request of
//! the wrong kind is refused with a clear error and nothing charged.

use fuelhost::{Outcome, UsageQuery};

use serde_json::json;

use super::{agents, call, error_code, mint, start, start_big, upload, Server};
use fuelhost_tests::{assert_conserved, guest};

/// A request to the route, with its status, body (`Err` when the body was
/// cut) and invocation id.
fn run(s: &Server, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> (u16, Result<String, String>, String) {
    let mut req = ureq::request(method, &s.url(path)).timeout(std::time::Duration::from_secs(120));
    if let Some(k) = key {
        req = req.set("Authorization", &format!("Bearer {k}")).set("X-Custom", "1");
    }
    let res = match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let id = res.header("fuelhost-invocation-id").unwrap_or_default().to_string();
    let status = res.status();
    (status, res.into_string().map_err(|e| e.to_string()), id)
}

/// Ask for a body over the output limit: it is cut, after its head went
/// out or (when the run ended first) before; either way the call ends
/// `output_limit`, which this checks.
fn cut_short(s: &Server, path: &str, key: &str) {
    let sent = ureq::get(&s.url(path)).set("Authorization", &format!("Bearer {key}")).call();
    if let Ok(res) = sent {
        assert_eq!(res.status(), 200);
        let id = res.header("fuelhost-invocation-id").unwrap_or_default().to_string();
        assert!(res.into_string().is_err(), "a cut body is not read as whole");
        assert_eq!(record(s, &id).outcome, Outcome::OutputLimit);
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !s.host.usage_records(&UsageQuery::default()).unwrap().iter().any(|r| r.outcome == Outcome::OutputLimit) {
        assert!(std::time::Instant::now() < deadline, "no call of {path} ended output_limit");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The usage record of invocation `id`. A response that was read whole
/// was settled first; one cut short may still be settling.
fn record(s: &Server, id: &str) -> fuelhost::UsageRecord {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(r) = s.host.ledger().usage_record(id).unwrap() {
            return r;
        }
        assert!(std::time::Instant::now() < deadline, "no usage record of {id}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The usage record of a call whose response was read whole: there at once.
fn settled(s: &Server, id: &str) -> fuelhost::UsageRecord {
    s.host.ledger().usage_record(id).unwrap().unwrap_or_else(|| panic!("{id} answered before it settled"))
}

fn scrip(s: &Server, key: &str) -> u64 {
    let (_, b) = call("GET", &s.url("/v1/agents/bob"), Some(key), None);
    b["balances"]["scrip"]["posted"].as_u64().unwrap()
}

#[test]
fn a_wasi_http_component_answers_at_its_route_and_is_charged() {
    let s = start(1 << 20);
    let keys = agents(&s, &["alice", "bob"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    mint(&s, "bob", "scrip", 100);
    mint(&s, "bob", "fuel", 500_000_000);
    let manifest = json!({"owner": "alice", "name": "hello", "version": "1", "price": 3,
                          "resource_policy": "caller_pays",
                          "limits": {"fuel": 20_000_000, "output_bytes": 1000, "input_bytes": 4096}});
    let (st, v) = upload(&s, alice, manifest, &guest("rust-http-hello"));
    assert_eq!(st, 201, "{v}");
    let (_, v) = call("GET", &s.url("/v1/artifacts/alice/hello@1"), Some(bob), None);
    assert_eq!((v["called_by"].as_str(), v["route"].as_str()), (Some("http"), Some("/run/alice/hello@1/")), "{v}");

    // The highest version when none is named; the price paid on a 2xx.
    let (st, body, id) = run(&s, "GET", "/run/alice/hello", Some(bob), b"");
    assert_eq!((st, body.as_deref()), (200, Ok("Hello from a wasi:http component on fuelhost\n")));
    let r = settled(&s, &id);
    assert_eq!((r.outcome, r.price_paid, r.charged_to.as_str()), (Outcome::Success, 3, "bob"));
    assert!(r.consumed.fuel > 0);
    assert_eq!(scrip(&s, bob), 97);

    let (st, body, _) = run(&s, "POST", "/run/alice/hello@1/echo?x=1", Some(bob), b"ping");
    assert_eq!((st, body.as_deref()), (200, Ok("ping")));
    // The component reads who called and who pays through fuelhost's
    // `ledger`, imported beside the standard world.
    let (_, body, _) = run(&s, "GET", "/run/alice/hello/ledger", Some(bob), b"");
    assert_eq!(body.as_deref(), Ok("caller=bob payer=bob price=3\n"));
    // The caller's key never reaches the component.
    let (_, body, _) = run(&s, "GET", "/run/alice/hello/headers", Some(bob), b"");
    let names = body.unwrap();
    assert!(names.contains("x-custom") && !names.contains("authorization"), "{names}");
    assert_eq!(scrip(&s, bob), 88);

    // Any other status goes back as it is; the price is not paid.
    let (st, body, id) = run(&s, "GET", "/run/alice/hello/status/404", Some(bob), b"");
    assert_eq!((st, body.as_deref()), (404, Ok("status 404\n")));
    let r = settled(&s, &id);
    assert_eq!((r.outcome, r.price_paid), (Outcome::RunError, 0));
    assert!(r.consumed.fuel > 0 && r.error.unwrap().contains("answered HTTP 404"));
    assert_eq!(scrip(&s, bob), 88);

    // A loop runs out of fuel: no response, `502` with the report, charged.
    let (st, body, id) = run(&s, "GET", "/run/alice/hello/spin", Some(bob), b"");
    let report: serde_json::Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!((st, report["outcome"].as_str()), (502, Some("out_of_fuel")), "{report}");
    let r = settled(&s, &id);
    assert_eq!((r.outcome, r.consumed.fuel, r.price_paid), (Outcome::OutOfFuel, 20_000_000, 0));

    // A body over the output limit is cut.
    cut_short(&s, "/run/alice/hello/bytes/100000", bob);
    let (st, body, _) = run(&s, "GET", "/run/alice/hello/bytes/1000", Some(bob), b"");
    assert_eq!((st, body.map(|b| b.len())), (200, Ok(1000)), "the limit itself passes");
    assert_eq!(scrip(&s, bob), 85);
    assert_conserved(&s.host);
}

#[test]
fn requests_of_the_wrong_kind_are_refused_and_charge_nothing() {
    let s = start(1 << 20);
    let keys = agents(&s, &["alice", "bob"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    mint(&s, "bob", "scrip", 100);
    mint(&s, "bob", "fuel", 500_000_000);
    let m = json!({"owner": "alice", "name": "hello", "version": "1", "price": 3,
                   "resource_policy": "caller_pays", "limits": {"input_bytes": 16}});
    assert_eq!(upload(&s, alice, m, &guest("rust-http-hello")).0, 201);
    let m = json!({"owner": "alice", "name": "echo", "version": "1", "resource_policy": "caller_pays"});
    assert_eq!(upload(&s, alice, m, &guest("rust-echo")).0, 201);

    let (st, body, _) = run(&s, "GET", "/run/alice/hello/", None, b"");
    assert_eq!(st, 401, "{body:?}");
    let (st, body, _) = run(&s, "GET", "/run/alice/nothing/", Some(bob), b"");
    assert_eq!(st, 404, "{body:?}");
    let (st, body, _) = run(&s, "GET", "/run/alice/hello@9/", Some(bob), b"");
    assert_eq!(st, 404, "{body:?}");
    let (st, body, _) = run(&s, "POST", "/run/alice/hello/echo", Some(bob), &[b'x'; 17]);
    let v: serde_json::Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!((st, error_code(&v)), (413, "too_large"), "{v}");
    // An artifact that is not a wasi:http component is not called over
    // its route, and one that is is not called with an input.
    let (st, body, _) = run(&s, "GET", "/run/alice/echo/", Some(bob), b"");
    let v: serde_json::Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!((st, error_code(&v)), (422, "wrong_call"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("POST /v1/invoke"), "{v}");
    let (st, v) =
        call("POST", &s.url("/v1/invoke"), Some(bob), Some(json!({"artifact": "alice/hello@1", "input": "x"})));
    assert_eq!((st, error_code(&v)), (422, "wrong_call"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("/run/alice/hello@1/"), "{v}");
    // A call a policy would park for an approval cannot wait on a socket.
    s.host
        .set_policy_rules(
            "[[rule]]\nname = \"nod\"\neffect = \"require_approval\"\naction = \"invoke\"\n\
             target = \"alice/hello@*\"\napprovers = [\"alice\"]\n",
        )
        .unwrap();
    let (st, body, _) = run(&s, "GET", "/run/alice/hello/", Some(bob), b"");
    let v: serde_json::Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!((st, error_code(&v)), (403, "denied"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("cannot wait"), "{v}");
    assert!(s.host.pending_actions(None).unwrap().is_empty(), "nothing parked");
    assert_eq!(scrip(&s, bob), 100, "nothing was charged");
    assert!(s.host.usage_records(&UsageQuery::default()).unwrap().is_empty());
}

/// A `wasi:http/proxy` component built by the ecosystem's tools for
/// another language (`guest`, greeting as `language`) answers at its route,
/// is charged its price on a 2xx and its fuel whatever it did, and a loop
/// ends `out_of_fuel`, charged.
fn served_and_charged(guest_name: &str, language: &str) {
    let s = start_big();
    let keys = agents(&s, &["alice", "bob"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    mint(&s, "bob", "scrip", 100);
    mint(&s, "bob", "fuel", 50_000_000_000);
    let manifest = json!({"owner": "alice", "name": "hi", "version": "1", "price": 1,
                          "resource_policy": "caller_pays", "limits": {"fuel": 2_000_000_000u64}});
    let (st, v) = upload(&s, alice, manifest, &guest(guest_name));
    assert_eq!(st, 201, "{v}");

    let (st, body, id) = run(&s, "GET", "/run/alice/hi/some/path?x=1", Some(bob), b"");
    let greeting = format!("Hello from {language} over wasi:http at /some/path?x=1\n");
    assert_eq!((st, body.as_deref()), (200, Ok(greeting.as_str())));
    let r = settled(&s, &id);
    assert_eq!((r.outcome, r.price_paid, r.charged_to.as_str()), (Outcome::Success, 1, "bob"));
    assert!(r.consumed.fuel > 0);

    let (st, body, id) = run(&s, "GET", "/run/alice/hi/spin", Some(bob), b"");
    assert_eq!(st, 502, "{body:?}");
    let r = settled(&s, &id);
    assert_eq!((r.outcome, r.consumed.fuel, r.price_paid), (Outcome::OutOfFuel, 2_000_000_000, 0));
    assert_eq!(scrip(&s, bob), 99);
    assert_conserved(&s.host);
}

#[test]
fn a_python_wasi_http_component_built_with_componentize_py_is_served_and_charged() {
    served_and_charged("python-http-hello", "Python");
}

#[test]
fn a_javascript_wasi_http_component_built_with_componentize_js_is_served_and_charged() {
    served_and_charged("js-http-hello", "JavaScript");
}

/// A WASI 0.3 HTTP service (`wasi:http/handler@0.3`, built with the
/// `wasip3` crate, component-model-async), whose body the component writes
/// after returning its response: served at its route and charged as a
/// WASI 0.2 one is.
#[test]
fn a_wasi_0_3_http_service_is_served_and_charged() {
    let s = start(1 << 20);
    let keys = agents(&s, &["alice", "bob"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    mint(&s, "bob", "scrip", 100);
    mint(&s, "bob", "fuel", 500_000_000);
    let manifest = json!({"owner": "alice", "name": "p3", "version": "1", "price": 2,
                          "resource_policy": "caller_pays",
                          "limits": {"fuel": 20_000_000, "output_bytes": 1000}});
    let (st, v) = upload(&s, alice, manifest, &guest("rust-p3-http"));
    assert_eq!(st, 201, "{v}");
    let (_, v) = call("GET", &s.url("/v1/artifacts/alice/p3@1"), Some(bob), None);
    assert_eq!((v["called_by"].as_str(), v["route"].as_str()), (Some("http"), Some("/run/alice/p3@1/")), "{v}");

    let (st, body, id) = run(&s, "POST", "/run/alice/p3/echo?x=1", Some(bob), b"ping");
    assert_eq!((st, body.as_deref()), (200, Ok("p3 POST /echo?x=1: ping")));
    let r = settled(&s, &id);
    assert_eq!((r.outcome, r.price_paid, r.charged_to.as_str()), (Outcome::Success, 2, "bob"));
    assert!(r.consumed.fuel > 0);
    assert_eq!(scrip(&s, bob), 98);

    let (st, body, id) = run(&s, "GET", "/run/alice/p3/status/418", Some(bob), b"");
    assert_eq!((st, body.as_deref()), (418, Ok("short and stout\n")));
    assert_eq!((settled(&s, &id).outcome, settled(&s, &id).price_paid), (Outcome::RunError, 0));

    let (st, body, id) = run(&s, "GET", "/run/alice/p3/loop", Some(bob), b"");
    assert_eq!(st, 502, "{body:?}");
    let r = settled(&s, &id);
    assert_eq!((r.outcome, r.consumed.fuel, r.price_paid), (Outcome::OutOfFuel, 20_000_000, 0));

    cut_short(&s, "/run/alice/p3/big/100000", bob);
    let (st, body, _) = run(&s, "GET", "/run/alice/p3/big/1000", Some(bob), b"");
    assert_eq!((st, body.map(|b| b.len())), (200, Ok(1000)), "the limit itself passes");
    assert_eq!(scrip(&s, bob), 96);
    assert_conserved(&s.host);
}
