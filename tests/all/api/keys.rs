//! Agents and keys: key ids, more keys per agent, listing (never the
//! secret), revocation (a revoked key is refused at once; the last admin
//! key cannot be revoked).

use serde_json::json;

use super::{agents, assert_needs_key, call, error_code, start};

#[test]
fn keys_are_issued_listed_and_revoked() {
    let s = start(1 << 20);
    let (st, v) = call(
        "POST",
        &s.url("/v1/agents"),
        Some(&s.admin),
        Some(json!({"id": "alice", "tenant": "acme", "workspace": "research"})),
    );
    assert_eq!(st, 201, "{v}");
    let alice = v["api_key"].as_str().unwrap().to_string();
    let alice_key_id = v["key_id"].as_str().unwrap().to_string();
    assert!(alice_key_id.starts_with("k_") && alice_key_id.len() == 14, "{alice_key_id}");
    let v = assert_needs_key(&s, "GET", "/v1/agents/alice", &alice, 200);
    assert_eq!((v["tenant"].as_str(), v["workspace"].as_str()), (Some("acme"), Some("research")));
    let bob = agents(&s, &["bob"]).remove(0);

    // A second key for alice: both work, and are distinct.
    let (st, v) = call("POST", &s.url("/v1/agents/alice/keys"), Some(&s.admin), None);
    assert_eq!((st, v["id"].as_str()), (201, Some("alice")), "{v}");
    let alice2 = v["api_key"].as_str().unwrap().to_string();
    let alice2_id = v["key_id"].as_str().unwrap().to_string();
    assert_ne!(alice2, alice);
    assert_ne!(alice2_id, alice_key_id);
    assert_eq!(call("GET", &s.url("/v1/agents/alice"), Some(&alice2), None).0, 200);

    // Listing: admin only, ids not secrets.
    let v = assert_needs_key(&s, "GET", "/v1/keys", &s.admin, 200);
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 4, "admin, alice x2, bob: {v}");
    assert!(keys.iter().any(|k| k["agent"].is_null() && k["revoked_ms"].is_null()), "the admin key: {v}");
    assert!(keys.iter().all(|k| k["created_ms"].as_i64().unwrap() > 0));
    let text = v.to_string();
    for secret in [&alice, &alice2, &bob, &s.admin] {
        assert!(!text.contains(secret.as_str()), "a listing never shows a key");
    }
    let (st, v) = call("GET", &s.url("/v1/keys"), Some(&bob), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));

    // Revocation: admin only; the key is refused at once, the other stays.
    let path = format!("/v1/keys/{alice_key_id}");
    let (st, v) = call("DELETE", &s.url(&path), Some(&alice2), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("DELETE", &s.url(&path), None, None);
    assert_eq!((st, error_code(&v)), (401, "unauthorized"));
    let (st, v) = call("DELETE", &s.url(&path), Some(&s.admin), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!({"key_id": alice_key_id, "revoked": true}));
    let (st, v) = call("GET", &s.url("/v1/agents/alice"), Some(&alice), None);
    assert_eq!((st, error_code(&v)), (401, "unauthorized"), "a revoked key is refused");
    assert_eq!(call("GET", &s.url("/v1/agents/alice"), Some(&alice2), None).0, 200);
    let (_, v) = call("GET", &s.url("/v1/keys"), Some(&s.admin), None);
    let listed = v["keys"].as_array().unwrap().iter().find(|k| k["key_id"] == alice_key_id.as_str()).unwrap().clone();
    assert!(listed["revoked_ms"].as_i64().unwrap() > 0, "{listed}");
    assert_eq!(call("DELETE", &s.url(&path), Some(&s.admin), None).0, 200, "revoking again changes nothing");

    // Unknown ids, and the last admin key.
    let (st, v) = call("DELETE", &s.url("/v1/keys/k_000000000000"), Some(&s.admin), None);
    assert_eq!((st, error_code(&v)), (404, "not_found"), "{v}");
    for bad in ["nonsense", "k_zzzzzzzzzzzz", "k_0000000000000"] {
        let (st, v) = call("DELETE", &s.url(&format!("/v1/keys/{bad}")), Some(&s.admin), None);
        assert_eq!((st, error_code(&v)), (400, "bad_request"), "not a key id, {bad}: {v}");
    }
    let admin_id = keys.iter().find(|k| k["agent"].is_null()).unwrap()["key_id"].as_str().unwrap().to_string();
    let (st, v) = call("DELETE", &s.url(&format!("/v1/keys/{admin_id}")), Some(&s.admin), None);
    assert_eq!((st, error_code(&v)), (409, "conflict"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("last live admin key"), "{v}");
    assert_eq!(call("GET", &s.url("/v1/keys"), Some(&s.admin), None).0, 200, "the admin key still works");

    // Rotation: a second admin key, then the first can go.
    let (st, v) = call("POST", &s.url("/v1/keys"), Some(&bob), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"), "agents make no admin keys");
    let (st, v) = call("POST", &s.url("/v1/keys"), Some(&s.admin), None);
    assert_eq!(st, 201, "{v}");
    let admin2 = v["api_key"].as_str().unwrap().to_string();
    assert_eq!(v["admin"], true);
    assert_eq!(call("DELETE", &s.url(&format!("/v1/keys/{admin_id}")), Some(&admin2), None).0, 200);
    assert_eq!(call("GET", &s.url("/v1/keys"), Some(&s.admin), None).0, 401, "the rotated key is refused");
    let new_id = v["key_id"].as_str().unwrap().to_string();
    let (st, _) = call("DELETE", &s.url(&format!("/v1/keys/{new_id}")), Some(&admin2), None);
    assert_eq!(st, 409, "the new key is now the last admin key");

    // Keys for agents: admin only, and only for agents that exist.
    let (st, v) = call("POST", &s.url("/v1/agents/bob/keys"), Some(&bob), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("POST", &s.url("/v1/agents/nobody/keys"), Some(&admin2), None);
    assert_eq!((st, error_code(&v)), (404, "not_found"));
    let (st, v) = call("POST", &s.url("/v1/agents/Not%20Valid/keys"), Some(&admin2), None);
    assert_eq!((st, error_code(&v)), (400, "bad_request"));
    // A workspace without its tenant writes nothing.
    let (st, v) = call("POST", &s.url("/v1/agents"), Some(&admin2), Some(json!({"id": "carol", "workspace": "w"})));
    assert_eq!((st, error_code(&v)), (400, "bad_request"));
    assert!(!s.host.ledger().has_account("carol").unwrap());
    let (_, v) = call("GET", &s.url("/v1/keys"), Some(&admin2), None);
    assert_eq!(v["keys"].as_array().unwrap().len(), 5, "two admin keys (one revoked) and three agent keys");
}
