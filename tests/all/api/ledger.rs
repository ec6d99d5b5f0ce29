//! The ledger over HTTP: transfer history (an agent sees only its own),
//! sponsor grants (sponsor, beneficiary, admin), top consumers, stats, and
//! the refusals that move nothing.

use fuelhost_tests::guest;
use serde_json::json;

use super::{agents, assert_needs_key, call, error_code, mint, send, start, upload};

#[test]
fn transfers_history_is_scoped_to_the_parties() {
    let s = start(1 << 20);
    let keys = agents(&s, &["alice", "bob", "carol"]);
    let (alice, bob, carol) = (&keys[0], &keys[1], &keys[2]);
    mint(&s, "alice", "scrip", 1_000);
    for (id, key, to, amount) in [("t1", alice, "bob", 10), ("t2", alice, "carol", 20), ("t3", bob, "carol", 5)] {
        let (st, v) =
            call("POST", &s.url("/v1/transfers"), Some(key), Some(json!({"id": id, "to": to, "amount": amount})));
        assert_eq!(st, 201, "{v}");
    }
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["transfers"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect()
    };
    // Newest first; bob is party to t1 and t3 only.
    let v = assert_needs_key(&s, "GET", "/v1/transfers", bob, 200);
    assert_eq!(ids(&v), ["t3", "t1"]);
    assert_eq!(ids(&call("GET", &s.url("/v1/transfers?agent=bob&limit=1"), Some(bob), None).1), ["t3"]);
    let (st, v) = call("GET", &s.url("/v1/transfers?agent=alice"), Some(carol), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    // Admin: all (the mint included), or one agent's.
    let (_, v) = call("GET", &s.url("/v1/transfers"), Some(&s.admin), None);
    assert_eq!(ids(&v), ["t3", "t2", "t1", "mint-alice-scrip-1000"]);
    assert_eq!(ids(&call("GET", &s.url("/v1/transfers?agent=carol"), Some(&s.admin), None).1), ["t3", "t2"]);
    // Bad queries.
    for q in ["limit=-1", "limit=x", "colour=red", "agent=Not%20Valid"] {
        let (st, v) = call("GET", &s.url(&format!("/v1/transfers?{q}")), Some(&s.admin), None);
        assert_eq!((st, error_code(&v)), (400, "bad_request"), "{q}: {v}");
    }
    // Overflowing amounts and unknown recipients move nothing.
    let before = s.host.balances("alice").unwrap();
    let r = send(
        "POST",
        &s.url("/v1/transfers"),
        Some(alice),
        &[("Content-Type", "application/json")],
        br#"{"id": "t9", "to": "bob", "amount": 18446744073709551616}"#,
    );
    assert_eq!((r.status, error_code(&r.body)), (400, "bad_request"), "past u64: {}", r.text);
    for body in [
        json!({"id": "t9", "to": "bob", "amount": 9_223_372_036_854_775_808u64}),
        json!({"id": "t9", "to": "nobody", "amount": 1}),
        json!({"id": "t9", "to": "bob", "amount": 0}),
    ] {
        let (st, v) = call("POST", &s.url("/v1/transfers"), Some(alice), Some(body.clone()));
        assert!((400..500).contains(&st), "{body}: {st} {v}");
        error_code(&v);
    }
    assert_eq!(s.host.balances("alice").unwrap(), before);
    assert!(s.host.ledger().transfer_record("t9").unwrap().is_none());
}

#[test]
fn sponsor_grants_by_sponsor_beneficiary_and_admin() {
    let s = start(1 << 20);
    let keys = agents(&s, &["alice", "bob", "carol"]);
    let (alice, bob, carol) = (&keys[0], &keys[1], &keys[2]);
    let grant = json!({"id": "g1", "beneficiary": "bob", "fuel_limit": 1_000_000, "artifacts": ["alice/echo@1"]});

    // Refusals write nothing.
    let (st, v) = call("POST", &s.url("/v1/grants"), Some(&s.admin), Some(grant.clone()));
    assert_eq!((st, error_code(&v)), (403, "forbidden"), "the sponsor is the key's agent");
    for (body, status) in [
        (json!({"id": "g1", "beneficiary": "bob", "fuel_limit": -5}), 400),
        (json!({"id": "g1", "beneficiary": "bob", "fuel_limit": 5, "sponsor": "carol"}), 400),
        (json!({"id": "g1", "beneficiary": "alice", "fuel_limit": 5}), 400),
        (json!({"id": "g1", "beneficiary": "nobody", "fuel_limit": 5}), 404),
        (json!({"id": "g1", "beneficiary": "bob", "fuel_limit": 9_223_372_036_854_775_808u64}), 400),
        (json!({"id": "", "beneficiary": "bob", "fuel_limit": 5}), 400),
    ] {
        let (st, v) = call("POST", &s.url("/v1/grants"), Some(alice), Some(body.clone()));
        assert_eq!(st, status, "{body}: {v}");
        error_code(&v);
    }
    assert_eq!(s.host.sponsorship("g1").unwrap(), None);

    let (st, v) = call("POST", &s.url("/v1/grants"), Some(alice), Some(grant.clone()));
    assert_eq!(st, 201, "{v}");
    assert_eq!((v["grant"]["sponsor"].as_str(), v["revoked"].as_bool()), (Some("alice"), Some(false)));
    assert_eq!(call("POST", &s.url("/v1/grants"), Some(alice), Some(grant)).0, 201, "idempotent by id");
    let (st, v) = call(
        "POST",
        &s.url("/v1/grants"),
        Some(alice),
        Some(json!({"id": "g1", "beneficiary": "carol", "fuel_limit": 5})),
    );
    assert_eq!((st, error_code(&v)), (409, "conflict"), "the same id for another grant");

    // Reading: sponsor, beneficiary, admin; not a third agent.
    let v = assert_needs_key(&s, "GET", "/v1/grants/g1", alice, 200);
    assert_eq!(v["grant"]["fuel_limit"], 1_000_000);
    assert_eq!(call("GET", &s.url("/v1/grants/g1"), Some(bob), None).0, 200);
    assert_eq!(call("GET", &s.url("/v1/grants/g1"), Some(&s.admin), None).0, 200);
    let (st, v) = call("GET", &s.url("/v1/grants/g1"), Some(carol), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("GET", &s.url("/v1/grants/nope"), Some(alice), None);
    assert_eq!((st, error_code(&v)), (404, "not_found"));

    // Revoking: sponsor or admin; not the beneficiary.
    let (st, v) = call("DELETE", &s.url("/v1/grants/g1"), Some(bob), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    assert!(!s.host.sponsorship("g1").unwrap().unwrap().revoked);
    let (st, v) = call("DELETE", &s.url("/v1/grants/g1"), Some(alice), None);
    assert_eq!((st, v["revoked"].as_bool()), (200, Some(true)), "{v}");
    let (st, v) = call("DELETE", &s.url("/v1/grants/nope"), Some(&s.admin), None);
    assert_eq!((st, error_code(&v)), (404, "not_found"));
}

#[test]
fn top_consumers_and_stats_for_admins() {
    let s = start(4 << 20);
    let keys = agents(&s, &["alice", "bob", "carol"]);
    for payer in ["bob", "carol"] {
        mint(&s, payer, "scrip", 100);
        mint(&s, payer, "fuel", 50_000_000);
    }
    let manifest = json!({"owner": "alice", "name": "echo", "version": "1", "resource_policy": "caller_pays"});
    assert_eq!(upload(&s, &keys[0], manifest, &guest("rust-echo")).0, 201);
    for (key, n) in [(&keys[1], 1), (&keys[2], 3)] {
        for _ in 0..n {
            let (st, v) =
                call("POST", &s.url("/v1/invoke"), Some(key), Some(json!({"artifact": "alice/echo@1", "input": "x"})));
            assert_eq!(st, 200, "{v}");
        }
    }
    let v = assert_needs_key(&s, "GET", "/v1/top", &s.admin, 200);
    let top = v["top"].as_array().unwrap();
    assert_eq!(top.iter().map(|t| t["agent"].as_str().unwrap()).collect::<Vec<_>>(), ["carol", "bob"], "{v}");
    assert_eq!(top[0]["invocations"], 3);
    let (_, v) = call("GET", &s.url("/v1/top?asset=disk_bytes&limit=1&since_ms=0"), Some(&s.admin), None);
    assert_eq!(v["top"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = call("GET", &s.url("/v1/top?until_ms=1"), Some(&s.admin), None);
    assert_eq!(v["top"], json!([]), "nothing settled before 1970");
    for q in ["asset=scrip", "asset=gold", "limit=-2", "by=fuel"] {
        let (st, v) = call("GET", &s.url(&format!("/v1/top?{q}")), Some(&s.admin), None);
        assert_eq!((st, error_code(&v)), (400, "bad_request"), "{q}: {v}");
    }
    let (st, v) = call("GET", &s.url("/v1/top"), Some(&keys[1]), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));

    let v = assert_needs_key(&s, "GET", "/v1/stats", &s.admin, 200);
    assert_eq!(v["stats"]["total_usage_records"], 4);
    assert_eq!(v["stats"]["invocations_by_outcome"]["success"], 4);
    assert!(v["cost_model"]["picos_per_fuel"].as_u64().is_some(), "{v}");
    let (st, v) = call("GET", &s.url("/v1/stats"), Some(&keys[2]), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));

    // Archiving on demand: admin only; with no horizon set, nothing moves.
    let v = assert_needs_key(&s, "POST", "/v1/archive", &s.admin, 200);
    assert_eq!((v["usage"]["records"].as_u64(), v["audit"]["entries"].as_u64()), (Some(0), Some(0)), "{v}");
    let (st, v) = call("POST", &s.url("/v1/archive"), Some(&keys[2]), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));

    // Minting: admin only; bad amounts mint nothing.
    let before = s.host.balances("bob").unwrap();
    for body in [
        json!({"id": "m", "agent": "bob", "asset": "scrip", "amount": -1}),
        json!({"id": "m", "agent": "bob", "asset": "scrip", "amount": 9_223_372_036_854_775_808u64}),
        json!({"id": "m", "agent": "bob", "asset": "gold", "amount": 1}),
        json!({"id": "m", "agent": "bob", "asset": "scrip", "amount": 1, "extra": 1}),
    ] {
        let (st, v) = call("POST", &s.url("/v1/mint"), Some(&s.admin), Some(body.clone()));
        assert_eq!((st, error_code(&v)), (400, "bad_request"), "{body}: {v}");
    }
    let (st, v) = call(
        "POST",
        &s.url("/v1/mint"),
        Some(&keys[1]),
        Some(json!({"id": "m", "agent": "bob", "asset": "scrip", "amount": 1})),
    );
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    assert_eq!(s.host.balances("bob").unwrap(), before);
}
