//! An artifact written in Python (componentize-py): it runs, reads the
//! ledger context, keeps state in its owner's directory, and is charged
//! under `owner_pays` like any other.

use fuelhost::{Invocation, Limits, Outcome, ResourcePolicy};
use fuelhost_tests::{assert_conserved, test_host, upload};

#[test]
fn python_wordfreq_counts_words_keeps_a_total_and_charges_the_owner() {
    let t = test_host();
    let id = upload(&t.host, "python-wordfreq", "wordfreq", 10, ResourcePolicy::OwnerPays, Limits::default());
    let alice0 = t.host.balances("alice").unwrap();
    let r = t.host.invoke(Invocation::new("bob", &id, "the cat and the hat")).unwrap();
    assert_eq!(r.outcome, Outcome::Success, "{:?}", r.error);
    let json: serde_json::Value = serde_json::from_slice(&r.output).unwrap();
    assert_eq!(json["words"], 5);
    assert_eq!(json["top"][0], serde_json::json!(["the", 2]));
    assert_eq!(json["total_seen"], 5);
    assert_eq!(r.charged_to.as_str(), "alice");
    assert!(r.resources_consumed.fuel > 0);
    let alice1 = t.host.balances("alice").unwrap();
    assert_eq!(alice0.fuel.posted - alice1.fuel.posted, r.resources_consumed.fuel);
    assert_eq!(alice1.scrip.posted - alice0.scrip.posted, 10);

    let r = t.host.invoke(Invocation::new("bob", &id, "two more")).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&r.output).unwrap();
    assert_eq!(json["total_seen"], 7, "state kept in alice's directory");
    assert_eq!(std::fs::read_to_string(t.host.agent_dir("alice").unwrap().join("wordfreq-total.txt")).unwrap(), "7");

    let r = t.host.invoke(Invocation::new("bob", &id, "  ")).unwrap();
    assert_eq!(r.outcome, Outcome::RunError);
    assert!(r.error.unwrap().contains("input has no words"));
    assert_conserved(&t.host);
}
