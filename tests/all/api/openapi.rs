//! The OpenAPI document: served without a key, generated from the router,
//! so it lists exactly the routes served; each route it lists is routed
//! (never the "no such route" fallback, never 405), and every route but
//! the public ones asks for the bearer key.

use std::collections::BTreeSet;

use fuelhost_server::openapi_of;
use serde_json::Value;

use super::{send, start};

/// The route table the API promises (docs/api.md).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/v1/agents"),
    ("get", "/v1/agents/{id}"),
    ("post", "/v1/agents/{id}/keys"),
    ("get", "/v1/keys"),
    ("post", "/v1/keys"),
    ("delete", "/v1/keys/{key_id}"),
    ("post", "/v1/mint"),
    ("get", "/v1/artifacts"),
    ("post", "/v1/artifacts"),
    ("get", "/v1/artifacts/{owner}/{name_version}"),
    ("delete", "/v1/artifacts/{owner}/{name_version}"),
    ("post", "/v1/invoke"),
    ("post", "/v1/transfers"),
    ("get", "/v1/transfers"),
    ("post", "/v1/grants"),
    ("get", "/v1/grants/{id}"),
    ("delete", "/v1/grants/{id}"),
    ("get", "/v1/usage"),
    ("get", "/v1/top"),
    ("get", "/v1/stats"),
    ("post", "/v1/archive"),
    ("post", "/v1/allocations"),
    ("get", "/v1/allocations"),
    ("get", "/v1/allocations/{id}"),
    ("post", "/v1/allocations/{id}/approve"),
    ("post", "/v1/allocations/{id}/activate"),
    ("post", "/v1/allocations/{id}/extend"),
    ("post", "/v1/allocations/{id}/revoke"),
    ("get", "/v1/policy/rules"),
    ("put", "/v1/policy/rules"),
    ("get", "/v1/policy/plugins"),
    ("put", "/v1/policy/plugins/{name}"),
    ("delete", "/v1/policy/plugins/{name}"),
    ("post", "/v1/policy/check"),
    ("get", "/v1/audit"),
    ("get", "/v1/approvals"),
    ("post", "/v1/approvals/{id}/approve"),
    ("post", "/v1/approvals/{id}/reject"),
    ("post", "/v1/tasks"),
    ("get", "/v1/tasks/{id}"),
    ("post", "/v1/tasks/{id}/cancel"),
    ("get", "/v1/breakers"),
    ("post", "/v1/agents/{id}/heartbeat"),
    ("get", "/v1/health/agents"),
];

const PUBLIC: &[&str] = &["/healthz", "/readyz", "/openapi.json"];

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch", "head", "options", "trace"].contains(&method.as_str()) {
                ops.insert((method.clone(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn the_document_lists_exactly_the_routes_served() {
    let s = start(1 << 20);
    let r = send("GET", &s.url("/openapi.json"), None, &[], b"");
    assert_eq!(r.status, 200, "no key needed: {}", r.text);
    let doc = r.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    assert_eq!(doc, openapi_of(&s.host), "the served document is the generated one");

    let promised: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let documented = operations(&doc);
    assert_eq!(
        documented.difference(&promised).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not in the route table"
    );
    assert_eq!(
        promised.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in the route table but not documented"
    );

    for (method, path) in &documented {
        let op = &doc["paths"][path][method];
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}: no responses");
        assert!(op["summary"].is_string() || op["description"].is_string(), "{method} {path}: undescribed");
        let secured = op["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("api_key").is_some()));
        assert_eq!(secured, !PUBLIC.contains(&path.as_str()), "{method} {path}: security");
        // Routed: the router answers it (whatever the answer), it never
        // falls through to "no such route" or "method not allowed".
        let concrete = path
            .replace("{owner}", "alice")
            .replace("{name_version}", "echo@1")
            .replace("{key_id}", "k_000000000000")
            .replace("{name}", "nope")
            .replace("{id}", "nope");
        let r = send(&method.to_uppercase(), &s.url(&concrete), Some(&s.admin), &[], b"");
        assert_ne!(r.status, 405, "{method} {concrete}: {}", r.text);
        assert!(!r.text.contains("no such route"), "{method} {concrete} is documented but not routed: {}", r.text);
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object(), "the error shape is described");
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());

    // What is not in the table is not routed.
    let r = send("GET", &s.url("/v1/nowhere"), Some(&s.admin), &[], b"");
    assert!(r.status == 404 && r.text.contains("no such route"), "{}", r.text);
    let r = send("PATCH", &s.url("/v1/keys"), Some(&s.admin), &[], b"");
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (405, Some("method_not_allowed")), "{}", r.text);
}
