//! Charging: the right payer under each resource policy, price only on
//! success, rejection before running when funds are short, exactly-once
//! settlement, and conservation across mixed runs.

use fuelhost::{Asset, Invocation, InvokeError, Limits, Outcome, ResourcePolicy};
use fuelhost_tests::{assert_conserved, fund, test_host, upload};

#[test]
fn caller_pays_charges_fuel_to_the_caller_and_the_price_to_the_owner() {
    let t = test_host();
    let id = upload(&t.host, "rust-echo", "echo", 7, ResourcePolicy::CallerPays, Limits::default());
    let (bob0, alice0) = (t.host.balances("bob").unwrap(), t.host.balances("alice").unwrap());
    let r = t.host.invoke(Invocation::new("bob", &id, "hi")).unwrap();
    assert!(r.success);
    assert_eq!(r.output, b"hi");
    assert_eq!(r.charged_to.as_str(), "bob");
    assert_eq!(r.price_paid, 7);
    let (bob1, alice1) = (t.host.balances("bob").unwrap(), t.host.balances("alice").unwrap());
    assert_eq!(bob0.scrip.posted - bob1.scrip.posted, 7);
    assert_eq!(alice1.scrip.posted - alice0.scrip.posted, 7);
    assert_eq!(bob0.fuel.posted - bob1.fuel.posted, r.resources_consumed.fuel);
    assert_eq!(alice1.fuel, alice0.fuel, "the owner's fuel is untouched under caller_pays");
    assert_eq!((bob1.scrip.held, bob1.fuel.held), (0, 0), "no hold outlives the call");
    assert_conserved(&t.host);
}

#[test]
fn owner_pays_charges_fuel_to_the_owner() {
    let t = test_host();
    let id = upload(&t.host, "rust-echo", "echo", 7, ResourcePolicy::OwnerPays, Limits::default());
    let (bob0, alice0) = (t.host.balances("bob").unwrap(), t.host.balances("alice").unwrap());
    let r = t.host.invoke(Invocation::new("bob", &id, "hi")).unwrap();
    assert_eq!(r.charged_to.as_str(), "alice");
    let (bob1, alice1) = (t.host.balances("bob").unwrap(), t.host.balances("alice").unwrap());
    assert_eq!(bob1.fuel, bob0.fuel, "the caller's fuel is untouched under owner_pays");
    assert_eq!(alice0.fuel.posted - alice1.fuel.posted, r.resources_consumed.fuel);
    assert_eq!(bob0.scrip.posted - bob1.scrip.posted, 7);
    assert_conserved(&t.host);
}

#[test]
fn short_of_scrip_or_fuel_is_rejected_before_running_and_charges_nothing() {
    let t = test_host();
    t.host.create_agent("poor").unwrap();
    fund(&t.host, "poor", 3, 1_000_000, 0);
    t.host.create_agent("idle").unwrap();
    fund(&t.host, "idle", 100, 0, 0);
    let id = upload(&t.host, "rust-probe", "probe", 5, ResourcePolicy::CallerPays, Limits::default());
    let snapshot = |a: &str| t.host.balances(a).unwrap();
    let (poor0, idle0, alice0) = (snapshot("poor"), snapshot("idle"), snapshot("alice"));

    let err = t.host.invoke(Invocation::new("poor", &id, "write:should-not-exist:x")).unwrap_err();
    assert!(matches!(err, InvokeError::InsufficientScrip { available: 3, price: 5, .. }), "{err:?}");
    assert!(err.to_string().contains("nothing was charged"));
    let err = t.host.invoke(Invocation::new("idle", &id, "write:should-not-exist:x")).unwrap_err();
    assert!(matches!(err, InvokeError::InsufficientBudget { asset: Asset::Fuel, .. }), "{err:?}");

    assert_eq!((snapshot("poor"), snapshot("idle"), snapshot("alice")), (poor0, idle0, alice0));
    assert!(!t.host.agent_dir("alice").unwrap().join("should-not-exist").exists(), "no guest code ran");
    assert_conserved(&t.host);
}

#[test]
fn fuel_is_the_payers_budget_capped_by_the_calls_limit() {
    let t = test_host();
    t.host.create_agent("thrifty").unwrap();
    fund(&t.host, "thrifty", 100, 50_000, 0);
    let id = upload(&t.host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    // Budget below the limit: the guest gets the budget, and burns it all.
    let r = t.host.invoke(Invocation::new("thrifty", &id, "spin:100000000")).unwrap();
    assert_eq!(r.outcome, Outcome::OutOfFuel);
    assert_eq!(r.resources_consumed.fuel, 50_000);
    assert_eq!(t.host.balances("thrifty").unwrap().fuel.available(), 0);
    // The call's own limit below the budget: the limit applies.
    let r = t.host.invoke(Invocation::new("bob", &id, "spin:100000000").fuel_limit(20_000)).unwrap();
    assert_eq!((r.outcome, r.resources_consumed.fuel), (Outcome::OutOfFuel, 20_000));
    let r = t.host.invoke(Invocation::new("bob", &id, "fuel-left").fuel_limit(1_000_000)).unwrap();
    let left: u64 = r.output_text().parse().unwrap();
    assert!(left < 1_000_000 && left > 900_000, "{left}");
    assert_conserved(&t.host);
}

#[test]
fn a_retry_with_the_same_invocation_id_is_not_charged_twice() {
    let t = test_host();
    let id = upload(&t.host, "rust-echo", "echo", 10, ResourcePolicy::CallerPays, Limits::default());
    let first = t.host.invoke(Invocation::new("bob", &id, "once").id("order-42")).unwrap();
    let after_first = t.host.balances("bob").unwrap();
    let second = t.host.invoke(Invocation::new("bob", &id, "once").id("order-42")).unwrap();
    assert!(!first.replayed && second.replayed);
    assert_eq!(second.output, first.output);
    assert_eq!(second.resources_consumed, first.resources_consumed);
    assert_eq!(t.host.balances("bob").unwrap(), after_first);
    assert_eq!(t.host.ledger().usage_record("order-42").unwrap().unwrap().price_paid, 10);
}

#[test]
fn an_invocation_id_replays_only_for_its_own_caller_and_artifact() {
    let t = test_host();
    let echo = upload(&t.host, "rust-echo", "echo", 10, ResourcePolicy::CallerPays, Limits::default());
    let other = upload(&t.host, "rust-echo", "echo2", 1, ResourcePolicy::CallerPays, Limits::default());
    t.host.invoke(Invocation::new("bob", &echo, "bob's secret").id("job-17")).unwrap();
    let before = (t.host.balances("alice").unwrap(), t.host.balances("bob").unwrap());
    // Another caller with the same id neither reads bob's output nor runs.
    let err = t.host.invoke(Invocation::new("alice", &echo, "x").id("job-17")).unwrap_err();
    assert!(err.to_string().contains("belongs to another call"), "{err}");
    // Nor does bob's id replay for another artifact.
    let err = t.host.invoke(Invocation::new("bob", &other, "x").id("job-17")).unwrap_err();
    assert!(matches!(err, fuelhost::InvokeError::IdTaken(_)), "{err}");
    assert_eq!((t.host.balances("alice").unwrap(), t.host.balances("bob").unwrap()), before, "nothing moved");
    assert_conserved(&t.host);
}

#[test]
fn scrip_and_fuel_are_conserved_across_mixed_successes_and_failures() {
    let t = test_host();
    let echo = upload(&t.host, "rust-echo", "echo", 4, ResourcePolicy::CallerPays, Limits::default());
    let probe = upload(
        &t.host,
        "rust-probe",
        "probe",
        3,
        ResourcePolicy::OwnerPays,
        Limits { fuel: 2_000_000, ..Limits::default() },
    );
    let (bob0, alice0) = (t.host.balances("bob").unwrap(), t.host.balances("alice").unwrap());
    let inputs = [
        (&echo, "a"),
        (&probe, "loop"),
        (&echo, ""),
        (&probe, "trap"),
        (&probe, "echo:ok"),
        (&echo, "b"),
        (&probe, "recurse"),
        (&probe, "spin:1000"),
    ];
    let mut paid = 0;
    let mut bob_fuel = 0;
    let mut alice_fuel = 0;
    for (artifact, input) in inputs {
        let r = t.host.invoke(Invocation::new("bob", artifact.as_str(), input)).unwrap();
        assert_eq!(r.price_paid > 0, r.success, "price only on success ({input})");
        paid += r.price_paid;
        match r.charged_to.as_str() {
            "bob" => bob_fuel += r.resources_consumed.fuel,
            _ => alice_fuel += r.resources_consumed.fuel,
        }
    }
    assert_eq!(paid, 4 + 3 + 4 + 3);
    let (bob1, alice1) = (t.host.balances("bob").unwrap(), t.host.balances("alice").unwrap());
    assert_eq!(bob0.scrip.posted - bob1.scrip.posted, paid);
    assert_eq!(alice1.scrip.posted - alice0.scrip.posted, paid);
    assert_eq!(bob0.fuel.posted - bob1.fuel.posted, bob_fuel);
    assert_eq!(alice0.fuel.posted - alice1.fuel.posted, alice_fuel);
    assert_conserved(&t.host);
}

#[test]
fn concurrent_invocations_keep_the_books_balanced() {
    let t = test_host();
    let id = upload(
        &t.host,
        "rust-probe",
        "probe",
        1,
        ResourcePolicy::CallerPays,
        Limits { fuel: 1_000_000, ..Limits::default() },
    );
    let bob0 = t.host.balances("bob").unwrap();
    let reports: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let host = t.host.clone();
                let id = id.clone();
                s.spawn(move || {
                    (0..10)
                        .map(|j| {
                            host.invoke(Invocation::new("bob", &id, if (i + j) % 3 == 0 { "loop" } else { "echo:x" }))
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let paid: u64 = reports.iter().map(|r| r.price_paid).sum();
    let fuel: u64 = reports.iter().map(|r| r.resources_consumed.fuel).sum();
    let bob1 = t.host.balances("bob").unwrap();
    assert_eq!(bob0.scrip.posted - bob1.scrip.posted, paid);
    assert_eq!(bob0.fuel.posted - bob1.fuel.posted, fuel);
    assert_eq!(
        reports.iter().filter(|r| r.outcome == Outcome::OutOfFuel).count() as u64 * 1_000_000,
        reports.iter().filter(|r| r.outcome == Outcome::OutOfFuel).map(|r| r.resources_consumed.fuel).sum::<u64>()
    );
    assert_conserved(&t.host);
}
