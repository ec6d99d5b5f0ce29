//! Allocations over HTTP: an agent requests for itself, an admin for
//! anyone; the lifecycle routes check who may move it; bad requests write
//! nothing.

use serde_json::json;

use super::{agents, assert_needs_key, call, error_code, start};

#[test]
fn allocations_lifecycle_with_its_permissions() {
    let s = start(1 << 20);
    let keys = agents(&s, &["alice", "bob"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    let url = |p: &str| s.url(p);

    // Refusals write nothing.
    for (key, body, status) in [
        (alice, json!({"id": "a1", "agent": "bob", "quotas": {"fuel": 10}}), 403),
        (alice, json!({"id": "a1", "agent": "alice", "quotas": {"fuel": 10}, "auto_approve": true}), 403),
        (alice, json!({"id": "a1", "quotas": {"gold": 10}}), 400),
        (alice, json!({"id": "a1", "quotas": {"fuel": -10}}), 400),
        (alice, json!({"id": "a1", "quotas": {}}), 400),
        (alice, json!({"id": "a1", "quotas": {"fuel": 10}, "priority": 11}), 400),
        (alice, json!({"id": "a1", "agent": "alice", "quotas": {"fuel": 10}, "soft_threshold_percent": 101}), 400),
        (alice, json!({"id": "a1", "agent": "alice", "quotas": {"fuel": 10}, "hard_threshold_percent": 0}), 400),
        (alice, json!({"id": "a1", "quotas": {"fuel": 9_223_372_036_854_775_808u64}}), 400),
        (alice, json!({"id": "a1", "agent": "alice", "quotas": {"fuel": 10}, "colour": "red"}), 400),
        (alice, json!({"id": "a1", "quotas": {"fuel": 10}}), 400),
        (&s.admin, json!({"id": "a1", "quotas": {"fuel": 10}}), 400),
        (&s.admin, json!({"id": "a1", "agent": "nobody", "quotas": {"fuel": 10}}), 404),
    ] {
        let (st, v) = call("POST", &url("/v1/allocations"), Some(key), Some(body.clone()));
        assert_eq!(st, status, "{body}: {v}");
        error_code(&v);
    }
    assert_eq!(s.host.allocation("a1").unwrap(), None);

    // An agent for itself (pending); an admin for anyone (approved at once).
    let (st, v) = call(
        "POST",
        &url("/v1/allocations"),
        Some(alice),
        Some(
            json!({"id": "a1", "agent": "alice", "quotas": {"fuel": 1_000_000, "api_calls": 5}, "duration_ms": 60_000}),
        ),
    );
    assert_eq!((st, v["status"].as_str(), v["agent"].as_str()), (201, Some("pending"), Some("alice")), "{v}");
    let (st, v) = call(
        "POST",
        &url("/v1/allocations"),
        Some(&s.admin),
        Some(json!({"id": "b1", "agent": "bob", "quotas": {"fuel": 10}, "auto_approve": true})),
    );
    assert_eq!((st, v["status"].as_str()), (201, Some("approved")), "{v}");

    // Listing and reading: own, or admin.
    let v = assert_needs_key(&s, "GET", "/v1/allocations", alice, 200);
    assert_eq!(v["allocations"].as_array().unwrap().len(), 1);
    assert_eq!(v["allocations"][0]["id"], "a1");
    let (st, v) = call("GET", &url("/v1/allocations?agent=bob"), Some(alice), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (_, v) = call("GET", &url("/v1/allocations?agent=bob"), Some(&s.admin), None);
    assert_eq!(v["allocations"][0]["id"], "b1");
    let (st, v) = call("GET", &url("/v1/allocations"), Some(&s.admin), None);
    assert_eq!((st, v["allocations"].as_array().map(Vec::len)), (200, Some(0)), "none in force yet: {v}");
    let (st, v) = call("GET", &url("/v1/allocations?agent=nobody"), Some(&s.admin), None);
    assert_eq!((st, error_code(&v)), (404, "not_found"));
    assert_eq!(call("GET", &url("/v1/allocations?colour=red"), Some(alice), None).0, 400);
    assert_needs_key(&s, "GET", "/v1/allocations/a1", alice, 200);
    let (st, v) = call("GET", &url("/v1/allocations/a1"), Some(bob), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("GET", &url("/v1/allocations/zzz"), Some(&s.admin), None);
    assert_eq!((st, error_code(&v)), (404, "not_found"));

    // Approve: admin only.
    let (st, v) = call("POST", &url("/v1/allocations/a1/approve"), Some(alice), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("POST", &url("/v1/allocations/zzz/approve"), Some(&s.admin), None);
    assert_eq!((st, error_code(&v)), (404, "not_found"));
    let (st, v) = call("POST", &url("/v1/allocations/a1/approve"), Some(&s.admin), None);
    assert_eq!((st, v["status"].as_str()), (200, Some("approved")), "{v}");
    let (st, v) = call("POST", &url("/v1/allocations/a1/approve"), Some(&s.admin), None);
    assert_eq!((st, error_code(&v)), (409, "conflict"), "approving twice: {v}");

    // Activate: its agent or admin, not another agent.
    let (st, v) = call("POST", &url("/v1/allocations/a1/activate"), Some(bob), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("POST", &url("/v1/allocations/a1/activate"), Some(alice), None);
    assert_eq!((st, v["status"].as_str()), (200, Some("active")), "{v}");
    assert_eq!(call("POST", &url("/v1/allocations/b1/activate"), Some(&s.admin), None).0, 200);
    let (st, v) = call("GET", &url("/v1/allocations"), Some(&s.admin), None);
    assert_eq!((st, v["allocations"].as_array().map(Vec::len)), (200, Some(2)), "an admin sees all in force: {v}");

    // Extend: admin only; bad bodies change nothing.
    let (st, v) = call("POST", &url("/v1/allocations/a1/extend"), Some(alice), Some(json!({"additional_ms": 1_000})));
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    for body in [
        json!({"additional_ms": -1}),
        json!({"additional_ms": 0}),
        json!({"additional_ms": 1, "x": 1}),
        json!({}),
        json!([1_000]),
    ] {
        let (st, v) = call("POST", &url("/v1/allocations/a1/extend"), Some(&s.admin), Some(body.clone()));
        assert_eq!((st, error_code(&v)), (400, "bad_request"), "{body}: {v}");
    }
    assert_eq!(s.host.allocation("a1").unwrap().unwrap().duration_ms, Some(60_000));
    let (st, v) =
        call("POST", &url("/v1/allocations/a1/extend"), Some(&s.admin), Some(json!({"additional_ms": 1_000})));
    assert_eq!((st, v["duration_ms"].as_u64()), (200, Some(61_000)), "{v}");

    // Revoke: admin only, with a reason.
    let (st, v) = call("POST", &url("/v1/allocations/a1/revoke"), Some(alice), Some(json!({"reason": "mine"})));
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("POST", &url("/v1/allocations/a1/revoke"), Some(&s.admin), Some(json!({"reason": " "})));
    assert_eq!((st, error_code(&v)), (400, "bad_request"));
    let (st, v) =
        call("POST", &url("/v1/allocations/a1/revoke"), Some(&s.admin), Some(json!({"reason": "over budget"})));
    assert_eq!((st, v["status"].as_str(), v["revoke_reason"].as_str()), (200, Some("revoked"), Some("over budget")));
    // What its status no longer allows is a conflict, and changes nothing.
    for (action, body) in [("extend", json!({"additional_ms": 1})), ("approve", json!({})), ("activate", json!({}))] {
        let (st, v) = call("POST", &url(&format!("/v1/allocations/a1/{action}")), Some(&s.admin), Some(body));
        assert_eq!((st, error_code(&v)), (409, "conflict"), "{action} a revoked allocation: {v}");
    }
    assert_eq!(s.host.allocation("a1").unwrap().unwrap().duration_ms, Some(61_000));
}
