//! Declarative policy rules: globs and conditions, priorities and allow
//! exceptions, errors that name the bad line, persistence, the `upload`
//! action, plugin removal, and live updates while checks run.

use fuelhost::{Action, Decision, HostError, Invocation, InvokeError, Limits, ResourcePolicy, UploadError, Usage};
use fuelhost_tests::{guest, manifest, test_host, upload};

const RULES: &str = r#"
[[rule]]
name = "no-dear-calls-to-alice"
effect = "deny"
action = "invoke"
target = "alice/*"
reason = "alice's artifacts take no calls over 50 scrip"
when = [{ field = "price", greater_than = 50 }]

[[rule]]
name = "bob-is-trusted"
effect = "allow"
priority = 10
subject = "bob"
when = [{ field = "resource-policy", equals = "caller_pays" }]

[[rule]]
name = "reports-need-a-nod"
effect = "require_approval"
action = "invoke"
target = "*/report@*"
approvers = ["carol"]
"#;

fn action(kind: &str, subject: &str, target: &str, price: u64, policy: &str) -> Action {
    Action {
        kind: kind.into(),
        subject: subject.into(),
        tenant: None,
        target: target.into(),
        attributes: vec![fuelhost::Attribute { key: "resource-policy".into(), value: policy.into() }],
        price,
        estimated: Usage { fuel: 0, memory_peak_bytes: 0, disk_bytes: 0, llm_tokens: 0, wall_time_ns: 0 },
    }
}

#[test]
fn rules_decide_by_priority_with_allow_exceptions() {
    let t = test_host();
    t.host.set_policy_rules(RULES).unwrap();
    let check = |a: Action| t.host.check_policy(&a);
    let v = check(action("invoke", "dave", "alice/echo@1", 51, "owner_pays"));
    assert!(matches!(&v.decision, Decision::Deny(r) if r.contains("no calls over 50")), "{v:?}");
    assert_eq!(v.decided_by.as_deref(), Some("rule no-dear-calls-to-alice"));
    assert!(matches!(check(action("invoke", "dave", "alice/echo@1", 50, "owner_pays")).decision, Decision::Allow));
    assert!(matches!(check(action("invoke", "dave", "bob/echo@1", 500, "owner_pays")).decision, Decision::Allow));
    // bob's higher-priority allow is an exception to the deny...
    assert!(matches!(check(action("invoke", "bob", "alice/echo@1", 51, "caller_pays")).decision, Decision::Allow));
    // ...only where its condition holds.
    assert!(matches!(check(action("invoke", "bob", "alice/echo@1", 51, "owner_pays")).decision, Decision::Deny(_)));
    let v = check(action("invoke", "dave", "zed/report@2", 0, "owner_pays"));
    assert!(matches!(&v.decision, Decision::RequireApproval(who) if who == &["carol".to_string()]), "{v:?}");
    assert_eq!(t.host.policy_rules().first().map(|r| r.name.as_str()), Some("bob-is-trusted"), "priority order");

    // An allow rule does not silence the plugins.
    t.host.add_policy_plugin("spend-limit", &guest("rust-spend-limit")).unwrap();
    let v = check(action("invoke", "bob", "alice/echo@1", 101, "caller_pays"));
    assert_eq!(v.decided_by.as_deref(), Some("spend-limit"));

    // In the pipeline: refused before anything is charged, and audited.
    let dear = upload(&t.host, "rust-echo", "dear", 60, ResourcePolicy::OwnerPays, Limits::default());
    let bob0 = t.host.balances("bob").unwrap();
    t.host.create_agent("dave").unwrap();
    fuelhost_tests::fund(&t.host, "dave", 100, 1_000_000, 0);
    let err = t.host.invoke(Invocation::new("dave", &dear, "x")).unwrap_err();
    assert!(matches!(err, InvokeError::Denied(_)));
    assert!(err.to_string().contains("denied by policy `rule no-dear-calls-to-alice`"), "{err}");
    assert_eq!(t.host.balances("bob").unwrap(), bob0);
    let audit = t.host.audit_log().unwrap();
    assert!(audit
        .iter()
        .any(|e| e.decided_by.as_deref() == Some("rule no-dear-calls-to-alice") && e.subject == "dave"));
}

#[test]
fn bad_rules_are_refused_with_the_line_and_change_nothing() {
    let t = test_host();
    t.host.set_policy_rules(RULES).unwrap();
    let cases = [
        ("[[rule]]\nname = \"a\"\neffect = \"deny\"\nreason = \"r\"\nactoin = \"invoke\"\n", "line 5"),
        ("[[rule]]\nname = \"a\"\neffect = \"forbid\"\n", "line 3"),
        ("\n\n[[rule]]\nname = \"no-reason\"\neffect = \"deny\"\n", "rule `no-reason` at line 3: a `deny` rule needs a `reason`"),
        ("[[rule]]\nname = \"x\"\neffect = \"require_approval\"\n", "needs `approvers`"),
        (
            "[[rule]]\nname = \"x\"\neffect = \"allow\"\nwhen = [{ field = \"price\", equals = \"1\", less_than = 2 }]\n",
            "exactly one of",
        ),
        ("[[rule]]\nname = \"d\"\neffect = \"allow\"\n[[rule]]\nname = \"d\"\neffect = \"allow\"\n", "two rules are named `d`"),
    ];
    for (text, expected) in cases {
        let err = t.host.set_policy_rules(text).unwrap_err();
        assert!(matches!(err, HostError::Rules(_)), "{err:?}");
        assert!(err.to_string().contains(expected), "{expected:?} not in: {err}");
    }
    assert_eq!(t.host.policy_rules().len(), 3, "the old rules still stand");
}

#[test]
fn rules_survive_a_restart_and_uploads_are_judged() {
    let dir = tempfile::tempdir().unwrap();
    let open = || fuelhost_tests::builder(dir.path()).max_instances(4).build().unwrap();
    {
        let host = open();
        host.create_agent("alice").unwrap();
        host.set_policy_rules(
            "[[rule]]\nname = \"no-free-lunch\"\neffect = \"deny\"\naction = \"upload\"\nreason = \"artifacts must have a price\"\nwhen = [{ field = \"price\", less_than = 1 }]\n",
        )
        .unwrap();
    }
    let host = open();
    assert_eq!(host.policy_rules().len(), 1);
    let err = host
        .upload(manifest("free", 0, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo"))
        .unwrap_err();
    assert!(matches!(err, UploadError::Denied(_)), "{err:?}");
    assert!(err.to_string().contains("artifacts must have a price"));
    assert!(host.artifacts().is_empty());
    host.upload(manifest("priced", 1, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo")).unwrap();
    let kinds: Vec<_> = host.audit_log().unwrap().into_iter().map(|e| (e.kind, e.decision)).collect();
    assert_eq!(kinds, vec![("upload".into(), "deny".into()), ("upload".into(), "allow".into())]);
}

#[test]
fn plugins_and_rules_change_live_while_checks_run() {
    let t = test_host();
    let spend = guest("rust-spend-limit");
    let dear = action("invoke", "bob", "alice/x@1", 500, "caller_pays");
    let deny_all = "[[rule]]\nname = \"closed\"\neffect = \"deny\"\nreason = \"closed\"\n";
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let checkers: Vec<_> = (0..3)
            .map(|_| {
                let (host, dear, stop) = (&t.host, &dear, &stop);
                s.spawn(move || {
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let v = host.check_policy(dear);
                        // Every verdict comes from one whole version: no
                        // rule and no plugin, the plugin, or the rule.
                        match (&v.decision, v.decided_by.as_deref()) {
                            (Decision::Allow, None) => {}
                            (Decision::Deny(r), Some("spend-limit")) => assert!(r.contains("over the limit of 100")),
                            (Decision::Deny(r), Some("rule closed")) => assert_eq!(r, "closed"),
                            other => panic!("inconsistent verdict {other:?}"),
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for _ in 0..5 {
            t.host.add_policy_plugin("spend-limit", &spend).unwrap();
            t.host.set_policy_rules(deny_all).unwrap();
            t.host.set_policy_rules("").unwrap();
            assert!(t.host.remove_policy_plugin("spend-limit").unwrap());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let checks: usize = checkers.into_iter().map(|c| c.join().unwrap()).sum();
        assert!(checks > 0);
    });
    assert!(t.host.policy_plugins().is_empty());
    assert!(!t.host.remove_policy_plugin("spend-limit").unwrap(), "already gone");
}

/// Rules scoped to a tenant, a workspace or an agent govern only their
/// members' actions; across levels a deny wins, and a more specific allow
/// cannot lift a broader deny; the host stamps the subject's membership, so
/// a guest cannot borrow another tenant's rules.
#[test]
fn scoped_rules_inherit_tenant_to_workspace_to_agent_and_deny_wins() {
    let t = test_host();
    t.host.create_agent("dave").unwrap();
    fuelhost_tests::fund(&t.host, "dave", 1_000, 100_000_000, 0);
    let m = |tenant: &str, ws: &str| fuelhost::Membership { tenant: Some(tenant.into()), workspace: Some(ws.into()) };
    t.host.set_membership("bob", &m("acme", "research")).unwrap();
    t.host.set_membership("dave", &m("acme", "sales")).unwrap();
    assert!(t.host.set_membership("bob", &fuelhost::Membership { tenant: None, workspace: Some("x".into()) }).is_err());
    t.host
        .set_policy_rules(
            r#"
[[rule]]
name = "acme-no-dear-calls"
scope = "tenant:acme"
effect = "deny"
action = "invoke"
reason = "acme caps calls at 20 scrip"
when = [{ field = "price", greater_than = 20 }]

[[rule]]
name = "research-may-spend"
scope = "workspace:acme/research"
effect = "allow"
action = "invoke"

[[rule]]
name = "research-reports-need-a-nod"
scope = "workspace:acme/research"
effect = "require_approval"
priority = 5
target = "*/report@*"
approvers = ["carol"]

[[rule]]
name = "dave-not-on-fridays"
scope = "agent:dave"
effect = "deny"
action = "invoke"
target = "*/echo@*"
reason = "dave may not call echo"
"#,
        )
        .unwrap();
    let cheap = upload(&t.host, "rust-echo", "echo", 10, ResourcePolicy::CallerPays, Limits::default());
    let dear = upload(&t.host, "rust-echo", "dear", 50, ResourcePolicy::CallerPays, Limits::default());
    let report = upload(&t.host, "rust-echo", "report", 1, ResourcePolicy::CallerPays, Limits::default());
    let call = |who: &str, id: &str| t.host.invoke(Invocation::new(who, id, "x"));
    // The tenant's deny holds in every workspace: research's allow cannot lift it.
    let err = call("bob", &dear).unwrap_err();
    assert!(err.to_string().contains("acme caps calls at 20 scrip"), "{err}");
    assert!(call("bob", &cheap).unwrap().success);
    // A workspace rule binds its members only.
    assert!(matches!(call("bob", &report).unwrap_err(), InvokeError::PendingApproval { .. }));
    assert!(call("dave", &report).unwrap().success, "sales has no approval rule");
    // An agent rule binds that agent only.
    assert!(call("dave", &cheap).unwrap_err().to_string().contains("dave may not call echo"));
    // alice is in no tenant: acme's rules do not apply to her.
    assert!(call("alice", &dear).unwrap().success);
    // The audit shows the stamped tenant's rule deciding.
    let audit = t.host.audit_log().unwrap();
    assert!(audit.iter().any(|e| e.subject == "bob" && e.decided_by.as_deref() == Some("rule acme-no-dear-calls")));
    let err =
        t.host.set_policy_rules("[[rule]]\nname = \"x\"\nscope = \"planet:mars\"\neffect = \"allow\"\n").unwrap_err();
    assert!(err.to_string().contains("use `global`, `tenant:NAME`"), "{err}");
}

/// Transfers an embedder makes for agents are judged too, and the audit
/// log can be queried by subject, kind and decision.
#[test]
fn transfers_are_judged_and_the_audit_is_queryable() {
    let t = test_host();
    t.host
        .set_policy_rules(
            "[[rule]]\nname = \"small-transfers\"\neffect = \"deny\"\naction = \"transfer\"\nreason = \"transfers over 500 need a human\"\nwhen = [{ field = \"price\", greater_than = 500 }]\n",
        )
        .unwrap();
    let transfer = |id: &str, amount: u64| fuelhost::TransferRequest {
        id: id.into(),
        from: "bob".try_into().unwrap(),
        to: "alice".try_into().unwrap(),
        asset: fuelhost::Asset::Scrip,
        amount,
        memo: String::new(),
    };
    let err = t.host.transfer(&transfer("big", 600)).unwrap_err();
    assert!(matches!(err, HostError::Denied(_)), "{err:?}");
    assert!(err.to_string().contains("transfers over 500 need a human"));
    t.host.transfer(&transfer("small", 100)).unwrap();
    assert_eq!(t.host.balances("alice").unwrap().scrip.posted, 1_100);
    // Once made, a transfer replays whatever the rules say now.
    t.host
        .set_policy_rules(
            "[[rule]]\nname = \"frozen\"\neffect = \"deny\"\naction = \"transfer\"\nreason = \"frozen\"\n",
        )
        .unwrap();
    assert_eq!(t.host.transfer(&transfer("small", 100)).unwrap().amount, 100);
    assert!(t.host.transfer(&transfer("new", 1)).is_err());
    assert_eq!(t.host.balances("alice").unwrap().scrip.posted, 1_100);

    let q = |subject: Option<&str>, kind: Option<&str>, decision: Option<&str>| {
        t.host
            .query_audit(&fuelhost::AuditQuery {
                subject: subject.map(String::from),
                kind: kind.map(String::from),
                decision: decision.map(String::from),
                ..fuelhost::AuditQuery::default()
            })
            .unwrap()
    };
    assert_eq!(q(Some("bob"), Some("transfer"), None).len(), 3);
    let denied = q(None, None, Some("deny"));
    assert_eq!(denied.len(), 2);
    assert_eq!(denied[0].decided_by.as_deref(), Some("rule small-transfers"));
    assert!(q(Some("alice"), None, None).is_empty());
    let one = t.host.query_audit(&fuelhost::AuditQuery { limit: Some(1), ..Default::default() }).unwrap();
    assert_eq!(one.len(), 1);
}

#[test]
fn the_example_rules_file_is_valid_and_decides_as_it_says() {
    let t = test_host();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/policy-rules.toml")).unwrap();
    t.host.set_policy_rules(&text).unwrap();
    assert_eq!(t.host.policy_rules().len(), 4);
    let v = t.host.check_policy(&action("http-request", "bob", "169.254.169.254:80", 0, "caller_pays"));
    assert!(matches!(v.decision, Decision::Deny(ref r) if r.contains("metadata")), "{:?}", v.decision);
    // bob's exception covers his calls, even dear ones to alice...
    let v = t.host.check_policy(&action("invoke", "bob", "alice/echo@1", 500, "caller_pays"));
    assert!(matches!(v.decision, Decision::Allow), "{:?}", v.decision);
    // ...not anyone else's.
    let v = t.host.check_policy(&action("invoke", "dave", "alice/echo@1", 500, "caller_pays"));
    assert!(matches!(v.decision, Decision::Deny(_)), "{:?}", v.decision);
}
