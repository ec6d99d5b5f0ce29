//! The API's core path end to end: agents, keys, upload, invoke,
//! transfers, usage, audit, rules and approvals, with auth failures and
//! bad input; and the metrics page counting exactly what happened.

use fuelhost_tests::guest;
use serde_json::json;

use super::{call, error_code, start, upload};

#[test]
fn the_api_end_to_end_with_auth_and_bad_input() {
    let s = start(8 << 20);
    let url = |p: &str| format!("{}{p}", s.base);
    assert_eq!(call("GET", &url("/healthz"), None, None).0, 200);
    assert_eq!(call("GET", &url("/readyz"), None, None).0, 200);

    // Auth failures.
    let (st, v) = call("GET", &url("/v1/artifacts"), None, None);
    assert_eq!((st, error_code(&v)), (401, "unauthorized"));
    assert!(v["error"]["message"].as_str().unwrap().contains("Bearer"));
    assert_eq!(call("GET", &url("/v1/artifacts"), Some("fh_nope"), None).0, 401);

    // Agents and keys (admin only).
    let mut keys = std::collections::HashMap::new();
    for id in ["alice", "bob", "carol"] {
        let (st, v) = call("POST", &url("/v1/agents"), Some(&s.admin), Some(json!({"id": id})));
        assert_eq!(st, 201, "{v}");
        keys.insert(id, v["api_key"].as_str().unwrap().to_string());
    }
    let (alice, bob, carol) = (keys["alice"].clone(), keys["bob"].clone(), keys["carol"].clone());
    let (st, v) = call("POST", &url("/v1/agents"), Some(&bob), Some(json!({"id": "mallory"})));
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("POST", &url("/v1/agents"), Some(&s.admin), Some(json!({"id": "Bad Name"})));
    assert_eq!((st, error_code(&v)), (400, "bad_request"));
    assert_eq!(call("POST", &url("/v1/agents"), Some(&s.admin), Some(json!({"id": "alice"}))).0, 409);
    for (asset, amount) in [("scrip", 1_000), ("fuel", 100_000_000)] {
        let (st, v) = call(
            "POST",
            &url("/v1/mint"),
            Some(&s.admin),
            Some(json!({"id": format!("seed-{asset}"), "agent": "bob", "asset": asset, "amount": amount})),
        );
        assert_eq!(st, 200, "{v}");
    }

    // Upload: only as oneself; bad components refused, nothing stored.
    let manifest =
        json!({"owner": "alice", "name": "echo", "version": "1", "price": 5, "resource_policy": "caller_pays"});
    let (st, v) = upload(&s, &bob, manifest.clone(), &guest("rust-echo"));
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = upload(&s, &alice, manifest.clone(), b"not wasm");
    assert_eq!((st, error_code(&v)), (422, "invalid_component"));
    let (st, v) = upload(&s, &alice, manifest.clone(), &vec![0u8; 2 << 20]);
    assert_eq!((st, error_code(&v)), (413, "too_large"));
    let (st, v) = upload(
        &s,
        &alice,
        json!({"owner": "alice", "name": "echo", "version": "1", "colour": "red", "resource_policy": "caller_pays"}),
        &guest("rust-echo"),
    );
    assert_eq!(st, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("colour"), "{v}");
    assert!(s.host.artifacts().is_empty(), "failed uploads store nothing");
    let (st, v) = upload(&s, &alice, manifest, &guest("rust-echo"));
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["id"], "alice/echo@1");

    // Invoke, as oneself.
    let (st, v) =
        call("POST", &url("/v1/invoke"), Some(&bob), Some(json!({"artifact": "alice/echo@1", "input": "hi there"})));
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["output"].as_str(), v["charged_to"].as_str(), v["price_paid"].as_u64()),
        (Some("hi there"), Some("bob"), Some(5))
    );
    assert!(v["resources_consumed"]["fuel"].as_u64().unwrap() > 0);
    let (st, v) = call("POST", &url("/v1/invoke"), Some(&bob), Some(json!({"artifact": "alice/nope@1"})));
    assert_eq!((st, error_code(&v)), (404, "not_found"));
    let (st, v) =
        call("POST", &url("/v1/invoke"), Some(&carol), Some(json!({"artifact": "alice/echo@1", "input": "x"})));
    assert_eq!((st, error_code(&v)), (402, "insufficient_funds"), "carol has no scrip");

    // Bad JSON: malformed, unknown fields, negative amounts; nothing moves.
    let bob0 = s.host.balances("bob").unwrap();
    let res = ureq::post(&url("/v1/transfers"))
        .set("Authorization", &format!("Bearer {bob}"))
        .set("Content-Type", "application/json")
        .send_string("{not json");
    let Err(ureq::Error::Status(400, r)) = res else { panic!("malformed JSON must be a 400") };
    assert_eq!(error_code(&serde_json::from_str(&r.into_string().unwrap()).unwrap()), "bad_request");
    let (st, v) = call(
        "POST",
        &url("/v1/transfers"),
        Some(&bob),
        Some(json!({"id": "t1", "to": "alice", "amount": 10, "sneaky": true})),
    );
    assert!(st == 400 && v["error"]["message"].as_str().unwrap().contains("sneaky"), "{st} {v}");
    let (st, _) =
        call("POST", &url("/v1/transfers"), Some(&bob), Some(json!({"id": "t1", "to": "alice", "amount": -10})));
    assert_eq!(st, 400);
    let (st, v) =
        call("POST", &url("/v1/transfers"), Some(&bob), Some(json!({"id": "t1", "to": "alice", "amount": 100_000})));
    assert_eq!((st, error_code(&v)), (402, "insufficient_funds"));
    assert_eq!(s.host.balances("bob").unwrap(), bob0);
    let (st, v) =
        call("POST", &url("/v1/transfers"), Some(&bob), Some(json!({"id": "t1", "to": "alice", "amount": 10})));
    assert_eq!(st, 201, "{v}");
    assert_eq!(bob0.scrip.posted - s.host.balances("bob").unwrap().scrip.posted, 10);

    // Reading: oneself or admin only.
    assert_eq!(call("GET", &url("/v1/agents/bob"), Some(&bob), None).0, 200);
    let (st, v) = call("GET", &url("/v1/agents/alice"), Some(&bob), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("GET", &url("/v1/agents/alice"), Some(&s.admin), None);
    assert_eq!(st, 200);
    assert_eq!(v["balances"]["scrip"]["posted"], 15);
    let (st, v) = call("GET", &url("/v1/usage"), Some(&bob), None);
    assert_eq!((st, v["records"].as_array().unwrap().len()), (200, 1));
    assert!(!v["records"][0]["output"].as_str().unwrap().is_empty(), "the caller sees its output: {v}");
    // The owner sees what bob's call cost, not what it returned to bob.
    let (st, v) = call("GET", &url("/v1/usage"), Some(&alice), None);
    assert_eq!((st, v["records"].as_array().unwrap().len()), (200, 1));
    assert_eq!(
        (v["records"][0]["output"].clone(), v["records"][0]["price_paid"].clone()),
        (json!(""), json!(5)),
        "{v}"
    );
    assert_eq!(call("GET", &url("/v1/usage?agent=alice"), Some(&bob), None).0, 403);
    assert_eq!(call("GET", &url("/v1/audit"), Some(&bob), None).0, 403);
    let (st, v) = call("GET", &url("/v1/audit?kind=invoke"), Some(&s.admin), None);
    // bob's call and carol's (admitted, then short of scrip); the unknown
    // artifact was refused before any policy was asked.
    assert_eq!((st, v["entries"].as_array().unwrap().len()), (200, 2));

    // Rules and approvals.
    let rules = "[[rule]]\nname = \"nod\"\neffect = \"require_approval\"\naction = \"invoke\"\ntarget = \"alice/echo@*\"\napprovers = [\"carol\"]\n";
    let put = |key: &str| match ureq::put(&url("/v1/policy/rules"))
        .set("Authorization", &format!("Bearer {key}"))
        .send_string(rules)
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(put(&bob), 403);
    assert_eq!(put(&s.admin), 200);
    let bad = ureq::put(&url("/v1/policy/rules"))
        .set("Authorization", &format!("Bearer {}", s.admin))
        .send_string("[[rule]]\nname = \"x\"\neffect = \"deny\"\n");
    let Err(ureq::Error::Status(400, r)) = bad else { panic!("a bad rule set must be a 400") };
    assert!(r.into_string().unwrap().contains("line 1"));
    let (st, v) =
        call("POST", &url("/v1/invoke"), Some(&bob), Some(json!({"artifact": "alice/echo@1", "input": "later"})));
    assert_eq!((st, error_code(&v)), (202, "pending_approval"));
    let (_, v) = call("GET", &url("/v1/approvals"), Some(&carol), None);
    let pending = v["pending"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(call("POST", &url(&format!("/v1/approvals/{pending}/approve")), Some(&bob), None).0, 403);
    // The admin key sees every parked action.
    let (st, v) = call("GET", &url("/v1/approvals"), Some(&s.admin), None);
    assert_eq!((st, v["pending"][0]["id"].as_str()), (200, Some(pending.as_str())), "{v}");
    let (st, v) = call("POST", &url(&format!("/v1/approvals/{pending}/approve")), Some(&carol), None);
    assert_eq!((st, v["success"].as_bool()), (200, Some(true)), "{v}");
    // An admin decides any parked action.
    let (st, v) =
        call("POST", &url("/v1/invoke"), Some(&bob), Some(json!({"artifact": "alice/echo@1", "input": "again"})));
    assert_eq!((st, error_code(&v)), (202, "pending_approval"));
    let (_, v) = call("GET", &url("/v1/approvals"), Some(&s.admin), None);
    let second = v["pending"][0]["id"].as_str().unwrap().to_string();
    let (st, v) = call(
        "POST",
        &url(&format!("/v1/approvals/{second}/reject")),
        Some(&s.admin),
        Some(json!({"reason": "not now"})),
    );
    assert_eq!((st, v["state"].as_str(), v["resolved_by"].as_str()), (200, Some("rejected"), Some("@admin")), "{v}");
    fuelhost_tests::assert_conserved(&s.host);
    assert_eq!(call("GET", &url("/v1/nowhere"), Some(&bob), None).0, 404);
}

/// The value of the sample `name{labels}` in a Prometheus text page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
}

#[test]
fn metrics_count_exactly_what_happened() {
    let s = start(8 << 20);
    let url = |p: &str| format!("{}{p}", s.base);
    let scrape = |key: &str| match ureq::get(&url("/metrics")).set("Authorization", &format!("Bearer {key}")).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    };
    let mut keys = std::collections::HashMap::new();
    for id in ["alice", "bob"] {
        let (_, v) = call("POST", &url("/v1/agents"), Some(&s.admin), Some(json!({"id": id})));
        keys.insert(id, v["api_key"].as_str().unwrap().to_string());
    }
    call(
        "POST",
        &url("/v1/mint"),
        Some(&s.admin),
        Some(json!({"id": "f", "agent": "bob", "asset": "fuel", "amount": 50_000_000})),
    );
    let manifest = json!({"owner": "alice", "name": "probe", "version": "1", "resource_policy": "caller_pays", "limits": {"fuel": 1_000_000}});
    assert_eq!(upload(&s, &keys["alice"], manifest, &guest("rust-probe")).0, 201);
    assert_eq!(scrape(&keys["bob"]).0, 403, "metrics need an admin key");
    let before = scrape(&s.admin).1;
    assert_eq!(sample(&before, "fuelhost_tasks_total{agent_id=\"bob\",status=\"success\"}"), None);

    let mut fuel = 0;
    for input in ["echo:a", "echo:b", "loop"] {
        let (st, v) = call(
            "POST",
            &url("/v1/invoke"),
            Some(&keys["bob"]),
            Some(json!({"artifact": "alice/probe@1", "input": input})),
        );
        assert_eq!(st, 200, "{v}");
        fuel += v["resources_consumed"]["fuel"].as_u64().unwrap();
    }
    let page = scrape(&s.admin).1;
    assert_eq!(sample(&page, "fuelhost_tasks_total{agent_id=\"bob\",status=\"success\"}"), Some(2.0));
    assert_eq!(sample(&page, "fuelhost_tasks_total{agent_id=\"bob\",status=\"out_of_fuel\"}"), Some(1.0));
    assert_eq!(sample(&page, "fuelhost_invocations_total{artifact=\"alice/probe@1\",outcome=\"success\"}"), Some(2.0));
    assert_eq!(sample(&page, "fuelhost_fuel_total{agent_id=\"bob\"}"), Some(fuel as f64));
    assert_eq!(sample(&page, "fuelhost_fuel_consumed_total{artifact=\"alice/probe@1\"}"), Some(fuel as f64));
    // Three invocations and one upload were judged, all allowed.
    assert_eq!(sample(&page, "fuelhost_policy_decisions_total{decision=\"allow\"}"), Some(4.0));
    assert_eq!(sample(&page, "fuelhost_agents_active"), Some(1.0));
    assert_eq!(sample(&page, "fuelhost_task_duration_seconds_count"), Some(3.0));
    assert_eq!(sample(&page, "fuelhost_task_duration_seconds_bucket{le=\"+Inf\"}"), Some(3.0));
}
