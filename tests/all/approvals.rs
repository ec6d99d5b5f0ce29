//! Approvals: a `require_approval` verdict parks the invocation, charging
//! nothing; one of its approvers approves it and it runs exactly once
//! (approving again replays the same result), or rejects it and it never
//! runs; only approvers may decide; pending actions expire; a deny still
//! wins over an approval.

use std::sync::Arc;

use fuelhost::{ApprovalError, Host, Invocation, InvokeError, Limits, ManualClock, PendingState, ResourcePolicy};
use fuelhost_tests::{assert_conserved, fund, guest, manifest};

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
    let host = fuelhost_tests::builder(dir.path())
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

    let report1 = host.approve(&pending, "carol").unwrap().into_report().unwrap();
    assert!(report1.success, "{:?}", report1.error);
    assert_eq!(report1.invocation_id, pending);
    assert_eq!(bob0.scrip.posted - host.balances("bob").unwrap().scrip.posted, 7, "charged once");
    // A second approval, by the same or another approver, replays.
    let report2 = host.approve(&pending, "dave").unwrap().into_report().unwrap();
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
    let report1 = host.approve_as_admin(&pending).unwrap().into_report().unwrap();
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

/// Rules that park big transfers and alice's uploads for carol.
const MONEY_RULES: &str = r#"
[[rule]]
name = "big-transfers-need-a-nod"
effect = "require_approval"
action = "transfer"
approvers = ["carol", "alice"]
when = [{ field = "price", greater_than = 100 }]

[[rule]]
name = "uploads-need-a-nod"
effect = "require_approval"
action = "upload"
target = "alice/*"
approvers = ["carol"]
"#;

fn transfer(id: &str, amount: u64) -> fuelhost::TransferRequest {
    fuelhost::TransferRequest {
        id: id.into(),
        from: "bob".try_into().unwrap(),
        to: "alice".try_into().unwrap(),
        asset: fuelhost::Asset::Scrip,
        amount,
        memo: "for the report".into(),
    }
}

#[test]
fn a_parked_transfer_is_made_once_when_approved_and_never_when_rejected() {
    let (host, _clock, _dir, _report) = world();
    host.set_policy_rules(&format!("{RULES}{MONEY_RULES}")).unwrap();
    let scrip = |agent: &str| host.balances(agent).unwrap().scrip.available();
    let (bob0, alice0) = (scrip("bob"), scrip("alice"));

    // Small transfers pass; a big one waits, and asking again waits too.
    host.transfer(&transfer("t-small", 50)).unwrap();
    for _ in 0..2 {
        match host.transfer(&transfer("t-big", 500)).unwrap_err() {
            fuelhost::HostError::PendingApproval { id, approvers } => {
                assert_eq!((id.as_str(), approvers.as_str()), ("transfer:t-big", "carol, alice"));
            }
            other => panic!("expected a pending approval, got {other}"),
        }
    }
    assert_eq!((scrip("bob"), scrip("alice")), (bob0 - 50, alice0 + 50), "nothing moved while parked");
    let listed = host.pending_actions(Some("carol")).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].kind.as_str(), listed[0].subject.as_str(), listed[0].target.as_str()),
        ("transfer", "bob", "alice")
    );
    assert_eq!(listed[0].details.as_ref().unwrap()["amount"], 500, "the approver sees the amount");

    // The same id for another amount is a conflict, not another parking.
    let other = host.transfer(&transfer("t-big", 5_000)).unwrap_err();
    assert!(other.to_string().contains("with other content"), "{other}");
    assert!(
        matches!(
            host.invoke(Invocation::new("bob", &_report, "x").id("transfer:t-big")),
            Err(InvokeError::InvalidId(_))
        ),
        "an invocation may not take a parked transfer's name"
    );

    // Neither the sender nor the recipient may approve it; carol may, once.
    assert!(matches!(host.approve("transfer:t-big", "bob"), Err(ApprovalError::NotAnApprover { .. })));
    assert!(matches!(host.approve("transfer:t-big", "alice"), Err(ApprovalError::Beneficiary { .. })));
    let made = match host.approve("transfer:t-big", "carol").unwrap() {
        fuelhost::Approved::Transfer(t) => t,
        other => panic!("expected the transfer, got {other:?}"),
    };
    assert_eq!((made.id.as_str(), made.amount), ("t-big", 500));
    for _ in 0..2 {
        assert!(
            matches!(host.approve_as_admin("transfer:t-big").unwrap(), fuelhost::Approved::Transfer(t) if t.id == "t-big")
        );
        host.transfer(&transfer("t-big", 500)).unwrap(); // a replay of the transfer made
    }
    assert_eq!((scrip("bob"), scrip("alice")), (bob0 - 550, alice0 + 550), "moved exactly once");

    // Rejected: never made, and asking again under its id is refused.
    assert!(host.transfer(&transfer("t-no", 200)).is_err());
    host.reject("transfer:t-no", "carol", "too much").unwrap();
    let again = host.transfer(&transfer("t-no", 200)).unwrap_err().to_string();
    assert!(again.contains("already Rejected by carol"), "{again}");
    assert_eq!(scrip("bob"), bob0 - 550);

    // Approved, but bob cannot pay: it waits again, saying why, and can be
    // rejected; nothing moved.
    assert!(host.transfer(&transfer("t-dear", 1_000_000)).is_err());
    let failed = host.approve("transfer:t-dear", "carol").unwrap_err();
    assert!(matches!(failed, ApprovalError::Transfer(_)), "{failed}");
    let waiting = host.pending_action("transfer:t-dear").unwrap().unwrap();
    assert_eq!(waiting.state, PendingState::Pending);
    assert!(waiting.reason.unwrap().contains("was not made"));
    host.reject("transfer:t-dear", "carol", "no").unwrap();
    assert_eq!(scrip("bob"), bob0 - 550);
    assert_conserved(&host);
}

#[test]
fn a_parked_upload_is_uploaded_once_when_approved() {
    let (host, _clock, _dir, _report) = world();
    host.set_policy_rules(&format!("{RULES}{MONEY_RULES}")).unwrap();
    let component = guest("rust-echo");
    let gated = || manifest("gated", 3, ResourcePolicy::CallerPays, Limits::default());
    let id = match host.upload(gated(), &component).unwrap_err() {
        fuelhost::UploadError::PendingApproval { id, approvers } => {
            assert_eq!(approvers, "carol");
            id
        }
        other => panic!("expected a pending approval, got {other}"),
    };
    assert_eq!(id, "upload:alice:gated@0.1.0");
    assert!(host.artifact("alice/gated@0.1.0").is_none(), "not uploaded while parked");
    let parked = host.pending_action(&id).unwrap().unwrap();
    let details = parked.details.unwrap();
    assert_eq!((details["name"].as_str(), details["size"].as_u64()), (Some("gated"), Some(component.len() as u64)));

    let made = match host.approve(&id, "carol").unwrap() {
        fuelhost::Approved::Upload(info) => info,
        other => panic!("expected the artifact, got {other:?}"),
    };
    assert_eq!(made.id, "alice/gated@0.1.0");
    assert_eq!(details["sha256"].as_str(), Some(made.digest.as_str()), "the approver saw what was uploaded");
    assert!(host.pending_action(&id).unwrap().unwrap().input.is_empty(), "the parked copy is dropped");
    match host.approve_as_admin(&id).unwrap() {
        fuelhost::Approved::Upload(again) => assert_eq!(again.digest, made.digest),
        other => panic!("expected the artifact, got {other:?}"),
    }
    let report = host.invoke(Invocation::new("bob", &made.id, "hello")).unwrap();
    assert!(report.success, "{:?}", report.error);
    // Uploading it again is a conflict, not another parking.
    assert!(matches!(host.upload(gated(), &component), Err(fuelhost::UploadError::AlreadyExists(_))));
}

#[test]
fn a_parked_upload_is_checked_first_and_bounded() {
    let (host, _clock, _dir, _report) = world();
    host.set_policy_rules(&format!("{RULES}{MONEY_RULES}")).unwrap();
    let version = |n: u32| {
        let mut m = manifest("gated", 3, ResourcePolicy::CallerPays, Limits::default());
        m.version = format!("0.{n}.0");
        m
    };
    // What the upload would refuse is refused before parking.
    assert!(matches!(host.upload(version(0), b"junk"), Err(fuelhost::UploadError::NotAComponent(_))));
    assert!(host.pending_actions(None).unwrap().is_empty(), "nothing parked");

    // Other bytes under a parked version: a conflict. Rejected: parked afresh.
    let echo = guest("rust-echo");
    let probe = guest("rust-probe");
    assert!(matches!(host.upload(version(1), &echo), Err(fuelhost::UploadError::PendingApproval { .. })));
    assert!(matches!(host.upload(version(1), &probe), Err(fuelhost::UploadError::ParkedWithOtherBytes(_))));
    host.reject("upload:alice:gated@0.1.0", "carol", "not this one").unwrap();
    assert!(host.pending_action("upload:alice:gated@0.1.0").unwrap().unwrap().input.is_empty(), "dropped");
    assert!(matches!(host.upload(version(1), &probe), Err(fuelhost::UploadError::PendingApproval { .. })));
    match host.approve("upload:alice:gated@0.1.0", "carol").unwrap() {
        fuelhost::Approved::Upload(made) => assert_eq!(made.digest, host.artifact("alice/gated@0.1.0").unwrap().digest),
        other => panic!("expected the artifact, got {other:?}"),
    }

    // At most MAX_PARKED_UPLOADS wait at once per agent.
    for n in 2..2 + fuelhost::MAX_PARKED_UPLOADS as u32 {
        assert!(matches!(host.upload(version(n), &echo), Err(fuelhost::UploadError::PendingApproval { .. })));
    }
    let over = host.upload(version(99), &echo).unwrap_err().to_string();
    assert!(over.contains("uploads waiting for approval"), "{over}");
}
