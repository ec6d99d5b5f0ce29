//! Tasks over HTTP: submitted as the key's agent, read and cancelled by
//! their submitter (or an admin), bad input refused; and the heartbeats of
//! the agents that run them.

use serde_json::json;

use super::{agents, call, error_code, mint, start, upload};

#[test]
fn tasks_are_submitted_read_and_cancelled_by_their_submitter() {
    let s = start(8 << 20);
    let url = |p: &str| s.url(p);
    let keys = agents(&s, &["alice", "bob", "carol"]);
    let (alice, bob, carol) = (&keys[0], &keys[1], &keys[2]);
    mint(&s, "bob", "scrip", 1_000);
    // Enough for calls running at once to each hold their limit (1e9).
    mint(&s, "bob", "fuel", 10_000_000_000);
    let manifest =
        json!({"owner": "alice", "name": "echo", "version": "1", "price": 2, "resource_policy": "caller_pays"});
    let (st, v) = upload(&s, alice, manifest, &fuelhost_tests::guest("rust-echo"));
    assert_eq!(st, 201, "{v}");

    let (st, v) = call(
        "POST",
        &url("/v1/tasks"),
        Some(bob),
        Some(json!({"artifact": "alice/echo@1", "input": "hi", "priority": "high", "id": "job-1"})),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["id"].as_str(), v["submitter"].as_str(), v["priority"].as_str()),
        (Some("job-1"), Some("bob"), Some("high"))
    );
    let retried = json!({"artifact": "alice/echo@1", "max_attempts": 4, "backoff_ms": 50});
    let (st, v) = call("POST", &url("/v1/tasks"), Some(bob), Some(retried));
    assert_eq!((st, v["max_attempts"].as_u64(), v["backoff_ms"].as_u64()), (200, Some(4), Some(50)), "{v}");
    let task = s.host.wait_task("job-1", std::time::Duration::from_secs(60)).unwrap();
    assert_eq!(task.state, fuelhost::TaskState::Completed, "{task:?}");
    let (st, v) = call("GET", &url("/v1/tasks/job-1"), Some(bob), None);
    assert_eq!((st, v["state"].as_str()), (200, Some("completed")), "{v}");
    assert_eq!(call("GET", &url("/v1/tasks/job-1"), Some(&s.admin), None).0, 200);
    let (st, v) = call("GET", &url("/v1/tasks/job-1"), Some(carol), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("POST", &url("/v1/tasks/job-1/cancel"), Some(carol), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("POST", &url("/v1/tasks/job-1/cancel"), Some(bob), None);
    assert_eq!((st, error_code(&v)), (409, "not_cancellable"));
    let (st, v) = call("GET", &url("/v1/tasks/nope"), Some(bob), None);
    assert_eq!((st, error_code(&v)), (404, "not_found"));

    // A task that waits for another, with its own timeout; a cycle is refused.
    let (st, v) = call(
        "POST",
        &url("/v1/tasks"),
        Some(bob),
        Some(
            json!({"artifact": "alice/echo@1", "id": "job-2", "input": "x", "depends_on": ["job-3"], "timeout_ms": 5000}),
        ),
    );
    assert_eq!((st, v["depends_on"][0].as_str(), v["timeout_ms"].as_u64()), (200, Some("job-3"), Some(5000)), "{v}");
    let cycle = json!({"artifact": "alice/echo@1", "id": "job-3", "depends_on": ["job-2"]});
    let (st, v) = call("POST", &url("/v1/tasks"), Some(bob), Some(cycle));
    assert_eq!((st, error_code(&v)), (400, "dependency_cycle"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("job-3 -> job-2 -> job-3"), "{v}");
    let (st, v) = call(
        "POST",
        &url("/v1/tasks"),
        Some(bob),
        Some(json!({"artifact": "alice/echo@1", "id": "job-3", "input": "x"})),
    );
    assert_eq!(st, 200, "{v}");
    let task = s.host.wait_task("job-2", std::time::Duration::from_secs(60)).unwrap();
    assert_eq!(task.state, fuelhost::TaskState::Completed, "{task:?}");
    let (st, v) = call("GET", &url("/v1/breakers"), Some(bob), None);
    assert_eq!((st, v["breakers"].as_array().map(Vec::len)), (200, Some(0)), "nothing failed: {v}");

    // Bad input: nothing accepted.
    for (body, needle) in [
        (json!({"artifact": "alice/echo@1", "priority": "urgent"}), "use critical, high, normal or low"),
        (json!({"artifact": "alice/echo@1", "input": "a", "input_base64": "YQ=="}), "not both"),
        (json!({"artifact": "alice/echo@1", "surprise": 1}), "surprise"),
        (json!({"artifact": "alice/echo@1", "capability": "echo"}), "not both"),
        (json!({"capability": "Fly!"}), "a capability is 1 to 64 characters"),
        (json!({"capability": "fly", "route": "fastest"}), "use standard, cost_optimized"),
        (json!({"artifact": "alice/echo@1", "depends_on": ["a", "a"]}), "named twice"),
        (json!({"artifact": "alice/echo@1", "id": "a/b"}), "the id"),
        (json!({"artifact": "alice"}), "not an artifact id"),
    ] {
        let (st, v) = call("POST", &url("/v1/tasks"), Some(bob), Some(body));
        assert_eq!(st, 400, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{v}");
    }
    // What does not exist is not found.
    for (body, needle) in [
        (json!({"artifact": "alice/none@1"}), "unknown artifact"),
        (json!({"capability": "fly"}), "no artifact declares capability `fly`"),
    ] {
        let (st, v) = call("POST", &url("/v1/tasks"), Some(bob), Some(body));
        assert_eq!((st, error_code(&v)), (404, "not_found"), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{v}");
    }
    let (st, v) = call("POST", &url("/v1/tasks"), Some(&s.admin), Some(json!({"artifact": "alice/echo@1"})));
    assert_eq!((st, error_code(&v)), (403, "forbidden"), "a task runs as an agent: {v}");
    assert_eq!(call("POST", &url("/v1/tasks"), None, Some(json!({"artifact": "alice/echo@1"}))).0, 401);
    fuelhost_tests::assert_conserved(&s.host);
}

/// Heartbeats over HTTP: an agent beats for itself (not for another), its
/// health shows on the agent, and an admin lists everyone's.
#[test]
fn agents_send_heartbeats_and_admins_see_their_health() {
    let s = start(8 << 20);
    let url = |p: &str| s.url(p);
    let keys = agents(&s, &["alice", "bob"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    let beat = json!({"ttl_ms": 60000, "status": "indexing"});
    let (st, v) = call("POST", &url("/v1/agents/alice/heartbeat"), Some(alice), Some(beat.clone()));
    assert_eq!((st, v["health"].as_str(), v["status"].as_str()), (200, Some("healthy"), Some("indexing")), "{v}");
    let (st, v) = call("POST", &url("/v1/agents/alice/heartbeat"), Some(bob), Some(beat));
    assert_eq!((st, error_code(&v)), (403, "forbidden"), "{v}");
    let (st, v) = call("POST", &url("/v1/agents/alice/heartbeat"), Some(alice), Some(json!({"ttl_ms": 0})));
    assert_eq!(st, 400, "{v}");
    let (st, v) = call("GET", &url("/v1/agents/alice"), Some(alice), None);
    assert_eq!((st, v["health"]["health"].as_str()), (200, Some("healthy")), "{v}");
    let (st, v) = call("GET", &url("/v1/agents/bob"), Some(bob), None);
    assert_eq!(v["health"]["health"].as_str(), Some("unknown"), "{st} {v}");
    let (st, v) = call("GET", &url("/v1/health/agents"), Some(alice), None);
    assert_eq!((st, error_code(&v)), (403, "forbidden"));
    let (st, v) = call("GET", &url("/v1/health/agents"), Some(&s.admin), None);
    assert_eq!(
        (st, v["agents"].as_array().map(Vec::len), v["agents"][0]["agent"].as_str()),
        (200, Some(1), Some("alice"))
    );
}

/// An agent registered over HTTP with its configuration: budget, limits
/// and rules in force from the start; a bad configuration changes nothing.
#[test]
fn an_agent_is_registered_with_its_configuration() {
    let s = start(8 << 20);
    let url = |p: &str| s.url(p);
    let config = json!({
        "budget": {"scrip": 50, "fuel": 1000000},
        "limits": {"concurrent_tasks": 2},
        "rules": {"quiet": {"effect": "deny", "action": "transfer", "reason": "no transfers"}},
    });
    let (st, v) = call("POST", &url("/v1/agents"), Some(&s.admin), Some(json!({"id": "dora", "config": config})));
    assert_eq!(st, 201, "{v}");
    let key = v["api_key"].as_str().unwrap().to_string();
    let (st, v) = call("GET", &url("/v1/agents/dora"), Some(&key), None);
    assert_eq!((st, v["balances"]["scrip"]["posted"].as_u64()), (200, Some(50)), "{v}");
    let alloc = s.host.allocation(&fuelhost::registration::allocation_id("dora")).unwrap().unwrap();
    assert_eq!(alloc.status, fuelhost::AllocationStatus::Active);
    assert_eq!(s.host.policy_rules()[0].name, "dora/quiet");
    let (st, v) = call("POST", &url("/v1/agents"), Some(&s.admin), Some(json!({"id": "dora", "config": config})));
    assert_eq!((st, error_code(&v)), (409, "conflict"), "{v}");
    for bad in [
        json!({"rules": {"x": {"effect": "deny"}}}),
        json!({"rules": {"": {"effect": "allow"}}}),
        json!({"rules": {"x": {"effect": "allow", "scope": "moon"}}}),
        json!({"rules": [{"name": "x", "effect": "allow"}]}),
        json!({"limits": {"gold": 1}}),
        json!({"budget": {"scrip": -1}}),
    ] {
        let (st, v) = call("POST", &url("/v1/agents"), Some(&s.admin), Some(json!({"id": "eve", "config": bad})));
        assert_eq!(st, 400, "{v}");
    }
    assert!(!s.host.ledger().has_account("eve").unwrap(), "a refused registration creates nothing");
}
