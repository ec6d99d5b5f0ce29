//! Sponsor grants: a sponsor pays the resources of another agent's calls,
//! within a spend limit, until an expiry, for the artifacts it names; the
//! price stays the caller's. Concurrent calls never overspend a grant.

use fuelhost::{Invocation, InvokeError, Limits, Outcome, ResourcePolicy, SponsorGrant};
use fuelhost_tests::{assert_conserved, fund, test_host, upload};

fn grant(id: &str, fuel_limit: u64) -> SponsorGrant {
    SponsorGrant {
        id: id.into(),
        sponsor: "carol".try_into().unwrap(),
        beneficiary: "bob".try_into().unwrap(),
        fuel_limit,
        disk_limit: 0,
        expires_at_ms: None,
        artifacts: vec![],
    }
}

fn setup() -> (fuelhost_tests::TestHost, String) {
    let t = test_host();
    t.host.create_agent("carol").unwrap();
    fund(&t.host, "carol", 0, 1_000_000_000, 0);
    let id = upload(
        &t.host,
        "rust-probe",
        "probe",
        5,
        ResourcePolicy::CallerPays,
        Limits { fuel: 100_000, ..Limits::default() },
    );
    (t, id)
}

#[test]
fn a_grant_moves_resource_charges_to_the_sponsor_but_not_the_price() {
    let (t, id) = setup();
    t.host.grant_sponsorship(&grant("g1", 1_000_000)).unwrap();
    t.host.grant_sponsorship(&grant("g1", 1_000_000)).unwrap();
    let (bob0, carol0) = (t.host.balances("bob").unwrap(), t.host.balances("carol").unwrap());
    let r = t.host.invoke(Invocation::new("bob", &id, "spin:1000")).unwrap();
    assert_eq!(r.charged_to.as_str(), "carol");
    let (bob1, carol1) = (t.host.balances("bob").unwrap(), t.host.balances("carol").unwrap());
    assert_eq!(bob1.fuel, bob0.fuel);
    assert_eq!(carol0.fuel.posted - carol1.fuel.posted, r.resources_consumed.fuel);
    assert_eq!(bob0.scrip.posted - bob1.scrip.posted, 5, "the caller still pays the price");
    assert_eq!(t.host.sponsorship("g1").unwrap().unwrap().fuel_spent, r.resources_consumed.fuel);
    assert_conserved(&t.host);
}

#[test]
fn the_spend_limit_caps_fuel_and_an_exhausted_grant_stops_paying() {
    let (t, id) = setup();
    t.host.grant_sponsorship(&grant("small", 150_000)).unwrap();
    let r = t.host.invoke(Invocation::new("bob", &id, "loop")).unwrap();
    assert_eq!((r.outcome, r.resources_consumed.fuel, r.charged_to.as_str()), (Outcome::OutOfFuel, 100_000, "carol"));
    let r = t.host.invoke(Invocation::new("bob", &id, "loop")).unwrap();
    assert_eq!((r.resources_consumed.fuel, r.charged_to.as_str()), (50_000, "carol"), "capped by what is left");
    assert_eq!(t.host.sponsorship("small").unwrap().unwrap().fuel_spent, 150_000);
    let r = t.host.invoke(Invocation::new("bob", &id, "loop")).unwrap();
    assert_eq!(r.charged_to.as_str(), "bob", "an exhausted grant no longer applies");
    assert_conserved(&t.host);
}

#[test]
fn expired_revoked_and_filtered_grants_do_not_apply() {
    let (t, id) = setup();
    let other = upload(&t.host, "rust-echo", "echo", 0, ResourcePolicy::CallerPays, Limits::default());
    t.host.grant_sponsorship(&SponsorGrant { expires_at_ms: Some(1), ..grant("expired", 1_000_000) }).unwrap();
    assert_eq!(t.host.invoke(Invocation::new("bob", &id, "echo:x")).unwrap().charged_to.as_str(), "bob");
    t.host
        .grant_sponsorship(&SponsorGrant { artifacts: vec![other.clone()], ..grant("only-echo", 1_000_000) })
        .unwrap();
    assert_eq!(t.host.invoke(Invocation::new("bob", &id, "echo:x")).unwrap().charged_to.as_str(), "bob");
    assert_eq!(t.host.invoke(Invocation::new("bob", &other, "x")).unwrap().charged_to.as_str(), "carol");
    t.host.revoke_sponsorship("only-echo").unwrap();
    assert_eq!(t.host.invoke(Invocation::new("bob", &other, "x")).unwrap().charged_to.as_str(), "bob");
    assert!(
        t.host.grant_sponsorship(&SponsorGrant { fuel_limit: 5, ..grant("expired", 1_000_000) }).is_err(),
        "id reuse"
    );
    assert!(t
        .host
        .grant_sponsorship(&SponsorGrant { sponsor: "bob".try_into().unwrap(), ..grant("self", 1) })
        .is_err());
}

#[test]
fn concurrent_calls_never_overspend_a_grant() {
    let (t, id) = setup();
    const LIMIT: u64 = 1_250_000;
    t.host.grant_sponsorship(&grant("shared", LIMIT)).unwrap();
    let sponsored: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let host = t.host.clone();
                let id = id.clone();
                s.spawn(move || {
                    (0..5)
                        .map(|_| match host.invoke(Invocation::new("bob", &id, "loop")) {
                            Ok(r) if r.charged_to.as_str() == "carol" => r.resources_consumed.fuel,
                            Ok(_) => 0,
                            Err(InvokeError::InsufficientBudget { .. }) => 0,
                            Err(e) => panic!("{e}"),
                        })
                        .sum::<u64>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let status = t.host.sponsorship("shared").unwrap().unwrap();
    assert_eq!(status.fuel_spent, sponsored);
    assert!(sponsored <= LIMIT, "{sponsored} > {LIMIT}");
    assert_conserved(&t.host);
}
