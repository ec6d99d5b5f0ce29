//! Policies over HTTP: the plugin chain (add, replace, list, remove; raw
//! or multipart), dry-run checks that run nothing and record nothing, and
//! admin-only access.

use fuelhost_tests::guest;
use serde_json::json;

use super::{agents, assert_needs_key, call, error_code, multipart, send, start};

#[test]
fn plugins_are_managed_and_actions_checked_without_a_trace() {
    let s = start(4 << 20);
    let keys = agents(&s, &["alice", "bob"]);
    let bob = &keys[1];
    let limit = guest("rust-spend-limit");
    let put = |key: &str, name: &str, headers: &[(&str, &str)], body: &[u8]| {
        send("PUT", &s.url(&format!("/v1/policy/plugins/{name}")), Some(key), headers, body)
    };

    let v = assert_needs_key(&s, "GET", "/v1/policy/plugins", &s.admin, 200);
    assert_eq!(v, json!({"plugins": []}));
    assert_eq!(call("GET", &s.url("/v1/policy/plugins"), Some(bob), None).0, 403);

    // Refusals change nothing.
    let r = put(bob, "limit", &[], &limit);
    assert_eq!((r.status, error_code(&r.body)), (403, "forbidden"));
    let r = put(&s.admin, "Bad%20Name", &[], &limit);
    assert_eq!((r.status, error_code(&r.body)), (400, "bad_request"), "{}", r.text);
    let r = put(&s.admin, "echo", &[], &guest("rust-echo"));
    assert_eq!((r.status, error_code(&r.body)), (422, "invalid_component"), "an artifact is no plugin: {}", r.text);
    let (ct, body) = multipart(&[("manifest", b"{}"), ("component", &limit)]);
    let r = put(&s.admin, "limit", &[("Content-Type", &ct)], &body);
    assert!(r.status == 400 && r.text.contains("manifest"), "plugins take no manifest: {}", r.text);
    assert!(s.host.policy_plugins().is_empty());

    // Add raw, replace from a form, add a second; chain order is kept.
    let r = put(&s.admin, "limit", &[], &limit);
    assert_eq!((r.status, &r.body), (200, &json!({"plugins": ["limit"]})), "{}", r.text);
    let r = put(&s.admin, "other", &[], &guest("wat-spend-limit"));
    assert_eq!(r.body, json!({"plugins": ["limit", "other"]}), "{}", r.text);
    let (ct, body) = multipart(&[("component", &limit)]);
    let r = put(&s.admin, "limit", &[("Content-Type", &ct)], &body);
    assert_eq!((r.status, &r.body), (200, &json!({"plugins": ["limit", "other"]})), "replaced in place: {}", r.text);

    // A dry-run check: plugins and rules decide; nothing is audited.
    let rules = "[[rule]]\nname = \"closed\"\neffect = \"deny\"\naction = \"invoke\"\ntarget = \"alice/secret@*\"\nreason = \"closed\"\n";
    let r = send("PUT", &s.url("/v1/policy/rules"), Some(&s.admin), &[], rules.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text);
    // The same rules as JSON; a rule set with a problem changes nothing.
    let json_rules = json!({"rules": {"closed": {"effect": "deny", "action": "invoke",
                                                 "target": "alice/secret@*", "reason": "closed"}}});
    let as_json = [("Content-Type", "application/json")];
    let r = send("PUT", &s.url("/v1/policy/rules"), Some(&s.admin), &as_json, json_rules.to_string().as_bytes());
    assert_eq!((r.status, r.body["rules"][0]["name"].as_str()), (200, Some("closed")), "{}", r.text);
    for bad in [
        json!({"rules": {"x": {"effect": "deny"}}}),
        json!({"rules": {"x": {"effect": "require_approval", "approvers": []}}}),
        json!({"rules": {"x": {"effect": "allow", "scope": "planet:mars"}}}),
        json!({"rules": {"x": {"effect": "allow", "name": "y"}}}),
        json!({"rules": {"x": {"effect": "allow", "when": [{"field": "price"}]}}}),
        json!({"rules": {"": {"effect": "allow"}}}),
        json!({"rules": [{"name": "x", "effect": "allow"}]}),
        json!({"rule": {}}),
        json!([{"name": "x", "effect": "allow"}]),
    ] {
        let r = send("PUT", &s.url("/v1/policy/rules"), Some(&s.admin), &as_json, bad.to_string().as_bytes());
        assert_eq!((r.status, error_code(&r.body)), (400, "bad_request"), "{bad}: {}", r.text);
    }
    assert_eq!(s.host.policy_rules().len(), 1);
    let audited = s.host.audit_log().unwrap().len();
    let check = |body: serde_json::Value| call("POST", &s.url("/v1/policy/check"), Some(&s.admin), Some(body));
    let (st, v) = check(json!({"kind": "invoke", "subject": "bob", "target": "alice/echo@1", "price": 500}));
    assert_eq!((st, v["decision"].as_str(), v["decided_by"].as_str()), (200, Some("deny"), Some("limit")), "{v}");
    assert!(v["reason"].as_str().unwrap().contains("spend limit"), "{v}");
    assert_eq!(v["recorded"], false);
    let (_, v) = check(json!({"kind": "invoke", "subject": "bob", "target": "alice/secret@1"}));
    assert_eq!((v["decision"].as_str(), v["decided_by"].as_str()), (Some("deny"), Some("rule closed")), "{v}");
    let (_, v) = check(json!({"kind": "transfer", "subject": "bob", "target": "alice", "price": 5,
                              "attributes": {"asset": "scrip"}, "estimated": {"fuel": 1}}));
    assert_eq!((v["decision"].as_str(), v["decided_by"].clone()), (Some("allow"), serde_json::Value::Null), "{v}");
    assert_eq!(s.host.audit_log().unwrap().len(), audited, "a check is not a decision");
    for body in [
        json!({"kind": "teleport", "subject": "bob", "target": "x"}),
        json!({"kind": "invoke", "subject": "bob"}),
        json!({"kind": "invoke", "subject": "bob", "target": "x", "price": -1}),
        json!({"kind": "invoke", "subject": "bob", "target": "x", "verdict": "allow"}),
    ] {
        let (st, v) = check(body.clone());
        assert_eq!((st, error_code(&v)), (400, "bad_request"), "{body}: {v}");
    }
    let (st, v) = call(
        "POST",
        &s.url("/v1/policy/check"),
        Some(bob),
        Some(json!({"kind": "invoke", "subject": "bob", "target": "x"})),
    );
    assert_eq!((st, error_code(&v)), (403, "forbidden"));

    // Removal: admin only; an unknown name is a 404.
    let (st, v) = call("DELETE", &s.url("/v1/policy/plugins/limit"), Some(bob), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("DELETE", &s.url("/v1/policy/plugins/limit"), Some(&s.admin), None);
    assert_eq!((st, v), (200, json!({"plugins": ["other"]})));
    let (st, v) = call("DELETE", &s.url("/v1/policy/plugins/limit"), Some(&s.admin), None);
    assert_eq!((st, error_code(&v)), (404, "not_found"));
    assert_eq!(s.host.policy_plugins(), ["other"]);
}
