//! Approvals: a `require_approval` verdict parks the invocation, charging
//! nothing; one of its approvers approves it and it runs exactly once
//! (approving again replays the same result), or rejects it and it never
//! runs; only approvers may decide; pending actions expire; a deny still
//! wins over an approval.

use std::sync::Arc;

use fuelhost::{ApprovalError, Host, Invocation, InvokeError, Limits, ManualClock, PendingState, ResourcePolicy};
use fuelhost_tests::{assert_conserved, fund, guest, manifest, shared_compile_cache};

const RULES: &str = r#"
[[rule]]
name = "reports-need-a-nod"
effect = "require_approval"
action = "invoke"
target = "alice/report@*"
approvers = ["carol", "dave"]
"#;

fn world() -> (Host, ManualClock, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let host = Host::builder()
        .data_dir(dir.path())
        .compile_cache_dir(shared_compile_cache())
        .max_instances(4)
        .clock(Arc::new(clock.clone()))
        .approval_ttl(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    for a in ["alice", "bob", "carol", "dave"] {
        host.create_agent(a).unwrap();
        fund(&host, a, 1_000, 100_000_000, 1 << 20);
    }
    host.set_policy_rules(RULES).unwrap();
    let id = host
        .upload(manifest("report", 7, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-probe"))
        .unwrap()
        .id;
    (host, clock, dir, id)
}

fn park(host: &Host, artifact: &str, input: &str) -> String {
    match host.invoke(Invocation::new("bob", artifact, input)).unwrap_err() {
        InvokeError::PendingApproval { id, approvers } => {
            assert_eq!(approvers, "carol, dave");
            id
        }
        other => panic!("expected a pending approval, got {other}"),
    }
}

#[test]
fn an_approved_action_runs_exactly_once() {
    let (host, _clock, _dir, report) = world();
    let bob0 = host.balances("bob").unwrap();
    let pending = park(&host, &report, "write:counter.txt:ran");
    assert_eq!(host.balances("bob").unwrap(), bob0, "parking charges nothing");
    assert!(!host.agent_dir("alice").unwrap().join("counter.txt").exists(), "nothing ran yet");
    let listed = host.pending_actions(Some("carol")).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].subject.as_str(), listed[0].required_by.as_deref()),
        ("bob", Some("rule reports-need-a-nod"))
    );
    assert!(host.pending_actions(Some("alice")).unwrap().is_empty(), "alice approves nothing");

    let report1 = host.approve(&pending, "carol").unwrap();
    assert!(report1.success, "{:?}", report1.error);
    assert_eq!(report1.invocation_id, pending);
    assert_eq!(bob0.scrip.posted - host.balances("bob").unwrap().scrip.posted, 7, "charged once");
    // A second approval, by the same or another approver, replays.
    let report2 = host.approve(&pending, "dave").unwrap();
    assert!(report2.replayed);
    assert_eq!(report2.resources_consumed, report1.resources_consumed);
    assert_eq!(bob0.scrip.posted - host.balances("bob").unwrap().scrip.posted, 7, "still once");
    let state = host.pending_action(&pending).unwrap().unwrap();
    assert_eq!((state.state, state.resolved_by.as_deref()), (PendingState::Approved, Some("carol")));
    assert!(host.pending_actions(None).unwrap().is_empty());
    assert!(matches!(host.reject(&pending, "dave", "too late"), Err(ApprovalError::AlreadyDecided { .. })));
    assert_conserved(&host);
}

#[test]
fn only_approvers_decide_rejected_actions_never_run_and_silence_expires() {
    let (host, clock, _dir, report) = world();
    let pending = park(&host, &report, "write:x.txt:ran");
    let err = host.approve(&pending, "bob").unwrap_err();
    assert!(matches!(err, ApprovalError::NotAnApprover { .. }), "{err}");
    assert!(err.to_string().contains("its approvers are carol, dave"));
    let rejected = host.reject(&pending, "dave", "not this quarter").unwrap();
    assert_eq!((rejected.state, rejected.reason.as_deref()), (PendingState::Rejected, Some("not this quarter")));
    assert!(matches!(
        host.approve(&pending, "carol"),
        Err(ApprovalError::AlreadyDecided { state: PendingState::Rejected, .. })
    ));
    assert!(!host.agent_dir("alice").unwrap().join("x.txt").exists());

    let late = park(&host, &report, "echo:late");
    clock.advance(61_000);
    assert!(host.pending_actions(None).unwrap().is_empty());
    assert!(matches!(
        host.approve(&late, "carol"),
        Err(ApprovalError::AlreadyDecided { state: PendingState::Expired, .. })
    ));
    assert!(matches!(host.approve("no-such", "carol"), Err(ApprovalError::Unknown(_))));
}

#[test]
fn approvals_are_policy_checked_and_never_override_a_deny() {
    let (host, _clock, _dir, report) = world();
    let pending = park(&host, &report, "echo:x");
    host.set_policy_rules(&format!(
        "{RULES}\n[[rule]]\nname = \"dave-approves-nothing\"\neffect = \"deny\"\naction = \"approve\"\nsubject = \"dave\"\nreason = \"dave is on leave\"\n"
    ))
    .unwrap();
    let err = host.approve(&pending, "dave").unwrap_err();
    assert!(err.to_string().contains("dave is on leave"), "{err}");
    assert_eq!(host.pending_action(&pending).unwrap().unwrap().state, PendingState::Pending);
    // Now reports are closed outright: carol's approval cannot run it.
    host.set_policy_rules(&format!(
        "{RULES}\n[[rule]]\nname = \"closed\"\neffect = \"deny\"\npriority = 5\ntarget = \"alice/report@*\"\naction = \"invoke\"\nreason = \"reports are closed\"\n"
    ))
    .unwrap();
    let err = host.approve(&pending, "carol").unwrap_err();
    assert!(err.to_string().contains("reports are closed"), "{err}");
    assert!(host.ledger().usage_record(&pending).unwrap().is_none(), "nothing ran");
}

/// Separation of duties: an agent listed among the approvers of a rule
/// still cannot approve (or reject, or see as its own to decide) an action
/// it asked for itself; another approver can, and an administrator sees
/// and decides every parked action.
#[test]
fn no_agent_decides_its_own_request_and_an_admin_decides_any() {
    let (host, _clock, _dir, report) = world();
    host.set_policy_rules(&RULES.replace(r#"["carol", "dave"]"#, r#"["bob", "carol"]"#)).unwrap();
    let bob0 = host.balances("bob").unwrap();
    let pending = match host.invoke(Invocation::new("bob", &report, "write:self.txt:ran")).unwrap_err() {
        InvokeError::PendingApproval { id, .. } => id,
        other => panic!("expected a pending approval, got {other}"),
    };
    let err = host.approve(&pending, "bob").unwrap_err();
    assert!(matches!(err, ApprovalError::OwnRequest { .. }), "{err}");
    assert!(err.to_string().contains("may not decide on it"), "{err}");
    assert!(matches!(host.reject(&pending, "bob", "mine"), Err(ApprovalError::OwnRequest { .. })));
    assert!(host.pending_actions(Some("bob")).unwrap().is_empty(), "bob has nothing of his own to decide");
    assert_eq!(host.pending_actions(Some("carol")).unwrap().len(), 1);
    assert!(!host.agent_dir("alice").unwrap().join("self.txt").exists(), "nothing ran");
    assert_eq!(host.balances("bob").unwrap(), bob0, "nothing charged");

    // An administrator sees every parked action and may decide any.
    assert_eq!(host.pending_actions(None).unwrap().len(), 1);
    let report1 = host.approve_as_admin(&pending).unwrap();
    assert!(report1.success, "{:?}", report1.error);
    let decided = host.pending_action(&pending).unwrap().unwrap();
    assert_eq!(decided.resolved_by.as_deref(), Some(fuelhost::ADMIN_DECIDER));
    let second = match host.invoke(Invocation::new("bob", &report, "echo:again")).unwrap_err() {
        InvokeError::PendingApproval { id, .. } => id,
        other => panic!("expected a pending approval, got {other}"),
    };
    let rejected = host.reject_as_admin(&second, "not today").unwrap();
    assert_eq!(rejected.state, PendingState::Rejected);
    assert_conserved(&host);
}
