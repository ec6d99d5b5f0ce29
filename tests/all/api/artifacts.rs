//! Artifacts over HTTP: multipart uploads (JSON or TOML manifest), reading
//! one, deleting one (owner or admin; then it cannot be invoked and is not
//! listed), and the refusals that store nothing.

use fuelhost_tests::guest;
use serde_json::json;

use super::{agents, assert_needs_key, call, error_code, mint, multipart, send, start, upload};

#[test]
fn artifacts_upload_as_forms_read_and_delete() {
    let s = start(4 << 20);
    let keys = agents(&s, &["alice", "bob"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    mint(&s, "bob", "scrip", 100);
    mint(&s, "bob", "fuel", 50_000_000);
    let echo = guest("rust-echo");
    let form = |parts: &[(&str, &[u8])]| {
        let (ct, body) = multipart(parts);
        send("POST", &s.url("/v1/artifacts"), Some(alice), &[("Content-Type", &ct)], &body)
    };

    // Refusals first: none of them stores anything.
    let json_manifest = json!({"owner": "alice", "name": "echo", "version": "1.0.0", "price": 2,
                               "resource_policy": "caller_pays"})
    .to_string();
    let r = form(&[("component", &echo)]);
    assert_eq!((r.status, error_code(&r.body)), (400, "bad_request"), "no manifest: {}", r.text);
    let r = form(&[("manifest", json_manifest.as_bytes())]);
    assert!(r.status == 400 && r.text.contains("component"), "no component: {}", r.text);
    let r = form(&[("manifest", json_manifest.as_bytes()), ("component", &echo), ("extra", b"x")]);
    assert!(r.status == 400 && r.text.contains("extra"), "unknown part: {}", r.text);
    let r = form(&[("manifest", json_manifest.as_bytes()), ("component", &echo), ("component", &echo)]);
    assert!(r.status == 400 && r.text.contains("twice"), "a part twice: {}", r.text);
    let r = form(&[("manifest", b"owner = \"alice\"\nname = \"x\"\ncolour = \"red\""), ("component", &echo)]);
    assert!(r.status == 400 && r.text.contains("colour"), "bad TOML manifest: {}", r.text);
    let r = form(&[("manifest", json_manifest.as_bytes()), ("component", &vec![7u8; (4 << 20) + (32 << 10)])]);
    assert_eq!((r.status, error_code(&r.body)), (413, "too_large"), "{}", r.text);
    let (ct, body) = multipart(&[("manifest", json_manifest.as_bytes()), ("component", &echo)]);
    let r = send("POST", &s.url("/v1/artifacts"), Some(bob), &[("Content-Type", &ct)], &body);
    assert_eq!((r.status, error_code(&r.body)), (403, "forbidden"), "bob may not upload as alice");
    let r = send(
        "POST",
        &s.url("/v1/artifacts"),
        Some(alice),
        &[("Content-Type", &ct), ("Fuelhost-Manifest", &json_manifest)],
        &body,
    );
    assert!(r.status == 400 && r.text.contains("twice"), "manifest twice: {}", r.text);
    assert!(s.host.artifacts().is_empty(), "refused uploads store nothing");

    // A form with a JSON manifest, and one with a TOML manifest.
    let r = form(&[("manifest", json_manifest.as_bytes()), ("component", &echo)]);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["id"], "alice/echo@1.0.0");
    let toml_manifest = "owner = \"alice\"\nname = \"echo-toml\"\nversion = \"2\"\nresource_policy = \"caller_pays\"\n";
    let r = form(&[("manifest", toml_manifest.as_bytes()), ("component", &echo)]);
    assert_eq!((r.status, r.body["id"].as_str()), (201, Some("alice/echo-toml@2")), "{}", r.text);
    let (st, _) = upload(
        &s,
        alice,
        json!({"owner": "alice", "name": "raw", "version": "1",
                                          "resource_policy": "caller_pays"}),
        &echo,
    );
    assert_eq!(st, 201);

    // Reading: any key.
    let v = assert_needs_key(&s, "GET", "/v1/artifacts/alice/echo@1.0.0", bob, 200);
    assert_eq!(
        (v["id"].as_str(), v["manifest"]["price"].as_u64(), v["size"].as_u64()),
        (Some("alice/echo@1.0.0"), Some(2), Some(echo.len() as u64))
    );
    assert_eq!(v["digest"].as_str().unwrap().len(), 64);
    assert!(v["uploaded_ms"].as_i64().unwrap() > 0, "{v}");
    let (st, v) = call("GET", &s.url("/v1/artifacts/alice/nope@1"), Some(bob), None);
    assert_eq!((st, error_code(&v)), (404, "not_found"));
    let (st, v) = call("GET", &s.url("/v1/artifacts/alice/echo"), Some(bob), None);
    assert_eq!((st, error_code(&v)), (400, "bad_request"), "no version: {v}");
    let (_, v) = call("GET", &s.url("/v1/artifacts"), Some(bob), None);
    assert_eq!(v["artifacts"].as_array().unwrap().len(), 3);

    // Deleting: not by another agent; by the owner; by an admin.
    let (st, v) =
        call("POST", &s.url("/v1/invoke"), Some(bob), Some(json!({"artifact": "alice/echo@1.0.0", "input": "a"})));
    assert_eq!(st, 200, "{v}");
    let (st, v) = call("DELETE", &s.url("/v1/artifacts/alice/echo@1.0.0"), Some(bob), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("DELETE", &s.url("/v1/artifacts/alice/echo@1.0.0"), None, None);
    assert_eq!((st, error_code(&v)), (401, "unauthorized"));
    assert!(s.host.artifact("alice/echo@1.0.0").is_some());
    let (st, v) = call("DELETE", &s.url("/v1/artifacts/alice/echo@1.0.0"), Some(alice), None);
    assert_eq!((st, v["deleted"].as_bool(), v["artifact"]["id"].as_str()), (200, Some(true), Some("alice/echo@1.0.0")));
    let (st, v) =
        call("POST", &s.url("/v1/invoke"), Some(bob), Some(json!({"artifact": "alice/echo@1.0.0", "input": "b"})));
    assert_eq!((st, error_code(&v)), (404, "not_found"), "a deleted artifact cannot be invoked");
    let (_, v) = call("GET", &s.url("/v1/artifacts"), Some(bob), None);
    let ids: Vec<&str> = v["artifacts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["alice/echo-toml@2", "alice/raw@1"]);
    let (st, v) = call("DELETE", &s.url("/v1/artifacts/alice/echo@1.0.0"), Some(alice), None);
    assert_eq!((st, error_code(&v)), (404, "not_found"), "deleting twice");
    assert_eq!(call("DELETE", &s.url("/v1/artifacts/alice/raw@1"), Some(&s.admin), None).0, 200);
    assert_eq!(s.host.artifacts().len(), 1);
}

/// An artifact called by function over HTTP: its exports and their JSON
/// Schemas are shown with it, `POST /v1/invoke` takes `export` and `args`,
/// and arguments of the wrong type are a 400 that says which and why.
#[test]
fn an_artifact_called_by_function_over_http() {
    let s = start(4 << 20);
    let keys = agents(&s, &["alice", "bob"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    mint(&s, "bob", "scrip", 100);
    mint(&s, "bob", "fuel", 50_000_000);
    let manifest =
        json!({"owner": "alice", "name": "adder", "version": "1", "price": 3, "resource_policy": "caller_pays"});
    let (st, v) = upload(&s, alice, manifest, &guest("rust-adder"));
    assert_eq!(st, 201, "{v}");

    let v = assert_needs_key(&s, "GET", "/v1/artifacts/alice/adder@1", bob, 200);
    let add = &v["exports"][0];
    assert_eq!((add["name"].as_str(), add["interface"].as_str()), (Some("add"), Some("docs:adder/add@0.1.0")));
    assert_eq!(add["params"], json!([{"name": "a", "wit": "u32"}, {"name": "b", "wit": "u32"}]));
    assert_eq!(add["args_schema"]["prefixItems"][0]["type"], "integer");

    let invoke = |body: serde_json::Value| call("POST", &s.url("/v1/invoke"), Some(bob), Some(body));
    let (st, v) = invoke(json!({"artifact": "alice/adder@1", "export": "add", "args": [20, 22]}));
    assert_eq!((st, v["output"].as_str(), v["price_paid"].as_u64()), (200, Some("42"), Some(3)), "{v}");
    let (st, v) = invoke(json!({"artifact": "alice/adder@1", "call": "add(1, 2)"}));
    assert_eq!((st, v["output"].as_str(), v["price_paid"].as_u64()), (200, Some("3"), Some(3)), "{v}");
    let (st, v) = invoke(json!({"artifact": "alice/adder@1", "call": "add(1, 2)", "export": "add"}));
    assert_eq!(st, 400, "{v}");
    let (st, v) = invoke(json!({"artifact": "alice/adder@1", "export": "add", "args": [1, "x"]}));
    assert_eq!((st, error_code(&v)), (422, "invalid_arguments"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains(r#"argument b: expected u32, got "x""#), "{v}");
    let (st, v) = invoke(json!({"artifact": "alice/adder@1", "args": [1, 2]}));
    assert!(st == 400 && v["error"]["message"].as_str().unwrap().contains("`args` needs `export`"), "{v}");
    let (st, v) = invoke(json!({"artifact": "alice/adder@1", "export": "add", "input": "x"}));
    assert_eq!(st, 400, "{v}");
    // An artifact of the `artifact` world is called with `input`.
    let (st, _) = upload(
        &s,
        alice,
        json!({"owner": "alice", "name": "echo", "version": "1",
                                           "resource_policy": "caller_pays"}),
        &guest("rust-echo"),
    );
    assert_eq!(st, 201);
    let (st, v) = invoke(json!({"artifact": "alice/echo@1", "export": "run", "args": ["x"]}));
    assert!(st == 422 && v["error"]["message"].as_str().unwrap().contains("called with `input`"), "{v}");
    // Only the successful call was charged.
    let (_, b) = call("GET", &s.url("/v1/agents/bob"), Some(bob), None);
    assert_eq!(b["balances"]["scrip"]["posted"].as_u64(), Some(94), "{b}");
}
