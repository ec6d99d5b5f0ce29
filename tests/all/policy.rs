//! The policy chain: a Rust plugin judges invocations before anything is
//! charged, answers the artifact's own `policy` import in its principal's
//! name, judges guest transfers, and every decision is audited.

use fuelhost::{Action, Decision, Invocation, InvokeError, Limits, Outcome, ResourcePolicy, Usage};
use fuelhost_tests::{assert_conserved, guest, test_host, upload};

#[test]
fn a_denied_invocation_charges_nothing_and_is_audited() {
    let t = test_host();
    t.host.add_policy_plugin("spend-limit", &guest("rust-spend-limit")).unwrap();
    let cheap = upload(&t.host, "rust-echo", "cheap", 100, ResourcePolicy::CallerPays, Limits::default());
    let dear = upload(&t.host, "rust-probe", "dear", 101, ResourcePolicy::CallerPays, Limits::default());
    let (bob0, alice0) = (t.host.balances("bob").unwrap(), t.host.balances("alice").unwrap());
    let err = t.host.invoke(Invocation::new("bob", &dear, "write:ran.txt:x")).unwrap_err();
    assert!(matches!(err, InvokeError::Denied(_)));
    let msg = err.to_string();
    assert!(msg.contains("denied by policy `spend-limit`") && msg.contains("over the limit of 100"), "{msg}");
    assert_eq!((t.host.balances("bob").unwrap(), t.host.balances("alice").unwrap()), (bob0, alice0));
    assert!(!t.host.agent_dir("alice").unwrap().join("ran.txt").exists());

    assert!(t.host.invoke(Invocation::new("bob", &cheap, "ok")).unwrap().success, "at the limit is allowed");
    let audit: Vec<_> = t.host.audit_log().unwrap().into_iter().filter(|e| e.kind == "invoke").collect();
    let decisions: Vec<_> =
        audit.iter().map(|e| (e.target.as_str(), e.decision.as_str(), e.decided_by.as_deref())).collect();
    assert_eq!(
        decisions,
        vec![("alice/dear@0.1.0", "deny", Some("spend-limit")), ("alice/cheap@0.1.0", "allow", None)]
    );
    assert!(audit.iter().all(|e| e.kind == "invoke" && e.subject == "bob" && e.invocation.is_some()));
    assert_conserved(&t.host);
}

#[test]
fn the_artifacts_policy_import_is_answered_by_the_chain_in_its_principals_name() {
    let t = test_host();
    t.host.add_policy_plugin("spend-limit", &guest("rust-spend-limit")).unwrap();
    let id = upload(&t.host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    let r = t.host.invoke(Invocation::new("bob", &id, "policy:read-news:example.org")).unwrap();
    assert_eq!(r.output_text(), "allow");
    let entry = t.host.audit_log().unwrap().into_iter().find(|e| e.kind == "read-news").unwrap();
    assert_eq!(entry.subject, "alice", "a guest cannot speak for `someone-else`");
}

#[test]
fn guest_transfers_are_put_to_the_chain() {
    let t = test_host();
    t.host.add_policy_plugin("spend-limit", &guest("rust-spend-limit")).unwrap();
    t.host.create_agent("carol").unwrap();
    fuelhost_tests::fund(&t.host, "alice", 5_000, 0, 0);
    let id = upload(&t.host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    let r = t.host.invoke(Invocation::new("bob", &id, "transfer:carol:1001")).unwrap();
    assert_eq!(r.outcome, Outcome::RunError);
    assert!(r.error.unwrap().contains("over the limit of 1000 per transfer"));
    assert!(t.host.invoke(Invocation::new("bob", &id, "transfer:carol:1000")).unwrap().success);
    assert_eq!(t.host.balances("carol").unwrap().scrip.posted, 1_000);
    assert_conserved(&t.host);
}

#[test]
fn checks_without_plugins_allow_and_plugins_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let open = || fuelhost_tests::builder(dir.path()).max_instances(4).build().unwrap();
    let action = Action {
        kind: "invoke".into(),
        subject: "bob".into(),
        tenant: None,
        target: "alice/x@1".into(),
        attributes: vec![],
        price: 500,
        estimated: Usage { fuel: 0, memory_peak_bytes: 0, disk_bytes: 0, llm_tokens: 0, wall_time_ns: 0 },
    };
    {
        let host = open();
        assert!(matches!(host.check_policy(&action).decision, Decision::Allow));
        host.add_policy_plugin("spend-limit", &guest("rust-spend-limit")).unwrap();
        host.add_policy_plugin("spend-limit", &guest("rust-spend-limit")).unwrap();
        assert_eq!(host.policy_plugins(), vec!["spend-limit"], "same name replaces in place");
    }
    let host = open();
    assert_eq!(host.policy_plugins(), vec!["spend-limit"]);
    let verdict = host.check_policy(&action);
    assert!(matches!(verdict.decision, Decision::Deny(_)));
    assert_eq!(verdict.decided_by.as_deref(), Some("spend-limit"));
}

#[test]
fn a_plugin_that_traps_loops_or_exhausts_memory_fails_closed() {
    let t = test_host();
    t.host.add_policy_plugin("faulty", &guest("rust-faulty-policy")).unwrap();
    let action = |target: &str| Action {
        kind: "invoke".into(),
        subject: "bob".into(),
        tenant: None,
        target: target.into(),
        attributes: vec![],
        price: 0,
        estimated: Usage { fuel: 0, memory_peak_bytes: 0, disk_bytes: 0, llm_tokens: 0, wall_time_ns: 0 },
    };
    for (target, outcome) in [("trap", "trap"), ("loop", "out_of_fuel"), ("grow", "memory_limit")] {
        let verdict = t.host.check_policy(&action(target));
        let Decision::Deny(reason) = verdict.decision else { panic!("{target}: a faulty plugin must deny") };
        assert!(reason.contains("policy plugin `faulty` failed") && reason.contains(outcome), "{target}: {reason}");
        assert!(reason.contains("fail closed"));
    }
    assert!(matches!(t.host.check_policy(&action("fine")).decision, Decision::Allow), "still serving");

    // An invocation the faulty plugin chokes on is refused and costs nothing.
    let id = upload(&t.host, "rust-echo", "echo", 1, ResourcePolicy::CallerPays, Limits::default());
    let bob0 = t.host.balances("bob").unwrap();
    assert!(t.host.invoke(Invocation::new("bob", &id, "hi")).unwrap().success);
    assert_eq!(bob0.scrip.posted - t.host.balances("bob").unwrap().scrip.posted, 1);
    let audit = t.host.audit_log().unwrap();
    assert!(audit.iter().any(|e| e.decision == "allow" && e.target == id));
    assert_conserved(&t.host);
}

/// An admitted call's decision is written with its settlement (journaled,
/// or through the tables when a sponsor pays), or on its own when the call
/// never settles (its reservation refused): once each way, with the
/// decision's time and latency, and still there after a restart.
#[test]
fn every_admission_is_audited_once_whichever_way_the_call_ends() {
    let dir = tempfile::tempdir().unwrap();
    let open = || fuelhost_tests::builder(dir.path()).max_instances(4).build().unwrap();
    let host = open();
    for agent in ["alice", "bob", "carol", "dave"] {
        host.create_agent(agent).unwrap();
    }
    fuelhost_tests::fund(&host, "bob", 1_000, 1_000_000_000, 1 << 20);
    fuelhost_tests::fund(&host, "carol", 1_000, 1_000_000_000, 0);
    fuelhost_tests::fund(&host, "dave", 1_000, 0, 0);
    let echo = upload(&host, "rust-echo", "echo", 1, ResourcePolicy::CallerPays, Limits::default());
    let probe = upload(&host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    let grant = fuelhost::SponsorGrant {
        id: "g".into(),
        sponsor: "carol".try_into().unwrap(),
        beneficiary: "dave".try_into().unwrap(),
        fuel_limit: 1_000_000_000,
        disk_limit: 0,
        expires_at_ms: None,
        artifacts: vec![],
    };
    host.grant_sponsorship(&grant).unwrap();
    let before = now_ms();
    let fast = host.invoke(with_id("bob", &echo, "a", "fast-1")).unwrap();
    let sponsored = host.invoke(with_id("dave", &echo, "b", "sponsored-1")).unwrap();
    assert_eq!(sponsored.charged_to.as_str(), "carol");
    host.revoke_sponsorship("g").unwrap();
    let refused = host.invoke(with_id("dave", &echo, "c", "refused-1"));
    assert!(matches!(refused, Err(InvokeError::InsufficientBudget { .. })), "{refused:?}");
    // A call judged on something else within it: its admission comes first.
    assert!(host.invoke(with_id("bob", &probe, "write:f.txt:x", "writes-1")).unwrap().success);
    // A replay is answered from the record: no second decision.
    assert!(host.invoke(with_id("bob", &echo, "a", "fast-1")).unwrap().replayed);

    let check = |host: &fuelhost::Host| {
        let kinds: Vec<_> = host
            .audit_log()
            .unwrap()
            .into_iter()
            .filter(|e| e.invocation.as_deref() == Some("writes-1"))
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["invoke", "file-open"], "a call's decisions in the order taken");
        let audit: Vec<_> = host
            .audit_log()
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "invoke" && e.invocation.as_deref() != Some("writes-1"))
            .collect();
        let ids: Vec<_> = audit.iter().map(|e| e.invocation.as_deref().unwrap()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ["fast-1", "refused-1", "sponsored-1"], "{audit:?}");
        for e in &audit {
            assert_eq!((e.decision.as_str(), e.target.as_str()), ("allow", echo.as_str()), "{e:?}");
            assert!(e.at_ms >= before && e.at_ms <= now_ms(), "{e:?}");
        }
        let bob = audit.iter().find(|e| e.invocation.as_deref() == Some("fast-1")).unwrap();
        assert_eq!(bob.subject, "bob");
    };
    check(&host);
    assert_eq!(fast.price_paid, 1);
    drop(host);
    check(&open());
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn with_id(caller: &str, artifact: &str, input: &str, id: &str) -> Invocation {
    let mut call = Invocation::new(caller, artifact, input);
    call.id = Some(id.into());
    call
}

/// A call that runs on has its admission written while it runs (after a
/// few milliseconds kept back for its settlement), so a crash in the
/// middle of a long call does not lose the decision that let it run.
#[test]
fn a_long_call_is_audited_while_it_runs() {
    let t = test_host();
    let slow = upload(&t.host, "rust-hostile", "slow", 0, ResourcePolicy::CallerPays, Limits::default());
    let host = t.host.clone();
    let call = std::thread::spawn(move || host.invoke(with_id("bob", &slow, "sleep:1500", "slow-1")));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let seen = t.host.audit_log().unwrap().iter().any(|e| e.invocation.as_deref() == Some("slow-1"));
        if seen {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the running call's admission was not written within a second");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!call.is_finished(), "the call was still running when its admission was read");
    assert!(call.join().unwrap().unwrap().success);
    let entries: Vec<_> =
        t.host.audit_log().unwrap().into_iter().filter(|e| e.invocation.as_deref() == Some("slow-1")).collect();
    assert_eq!(entries.len(), 1, "written once: {entries:?}");
}
