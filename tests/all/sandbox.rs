//! Sandbox limits: each way a guest can misbehave ends in its own typed
//! outcome, is charged what it burned, and leaves the host serving.

use fuelhost::{Invocation, Limits, Outcome, ResourcePolicy};
use fuelhost_tests::{assert_conserved, test_host, upload};

fn probe(t: &fuelhost_tests::TestHost, limits: Limits) -> String {
    upload(&t.host, "rust-probe", "probe", 3, ResourcePolicy::CallerPays, limits)
}

fn still_serving(t: &fuelhost_tests::TestHost, id: &str) {
    let r = t.host.invoke(Invocation::new("bob", id, "echo:still here")).unwrap();
    assert_eq!((r.outcome, r.output_text().as_str()), (Outcome::Success, "still here"));
}

#[test]
fn endless_loop_runs_out_of_fuel_and_is_charged_exactly_its_fuel() {
    let t = test_host();
    let id = probe(&t, Limits { fuel: 3_000_000, ..Limits::default() });
    let before = t.host.balances("bob").unwrap();
    let owner_before = t.host.balances("alice").unwrap();
    let r = t.host.invoke(Invocation::new("bob", &id, "loop")).unwrap();
    assert_eq!(r.outcome, Outcome::OutOfFuel);
    assert!(!r.success);
    assert_eq!(r.resources_consumed.fuel, 3_000_000);
    assert_eq!(r.price_paid, 0);
    let after = t.host.balances("bob").unwrap();
    assert_eq!(before.fuel.available() - after.fuel.available(), 3_000_000);
    assert_eq!(after.scrip, before.scrip, "no price for a failed call");
    assert_eq!(t.host.balances("alice").unwrap(), owner_before);
    still_serving(&t, &id);
    assert_conserved(&t.host);
}

#[test]
fn endless_loop_with_ample_fuel_times_out() {
    let t = test_host();
    let id = probe(&t, Limits { fuel: 500_000_000_000, timeout_ms: 200, ..Limits::default() });
    fuelhost_tests::fund(&t.host, "bob", 0, 500_000_000_000, 0);
    let r = t.host.invoke(Invocation::new("bob", &id, "loop")).unwrap();
    assert_eq!(r.outcome, Outcome::Timeout, "{:?}", r.error);
    // The wall clock ended it, not the fuel.
    assert!(r.resources_consumed.fuel > 0 && r.resources_consumed.fuel < 500_000_000_000);
    still_serving(&t, &id);
    assert_conserved(&t.host);
}

#[test]
fn growing_memory_past_the_cap_ends_in_memory_limit() {
    let t = test_host();
    let id = probe(&t, Limits { memory_bytes: 16 << 20, ..Limits::default() });
    let r = t.host.invoke(Invocation::new("bob", &id, "grow")).unwrap();
    assert_eq!(r.outcome, Outcome::MemoryLimit, "{:?}", r.error);
    assert!(r.resources_consumed.memory_peak_bytes <= 16 << 20);
    assert!(r.resources_consumed.memory_peak_bytes > 8 << 20);
    // Under the cap, allocation works and the peak is recorded.
    let r = t.host.invoke(Invocation::new("bob", &id, "alloc:4")).unwrap();
    assert_eq!(r.outcome, Outcome::Success);
    assert!(r.resources_consumed.memory_peak_bytes >= 4 << 20);
    still_serving(&t, &id);
}

#[test]
fn unbounded_recursion_ends_in_stack_overflow() {
    let t = test_host();
    let id = probe(&t, Limits::default());
    let r = t.host.invoke(Invocation::new("bob", &id, "recurse")).unwrap();
    assert_eq!(r.outcome, Outcome::StackOverflow, "{:?}", r.error);
    still_serving(&t, &id);
}

#[test]
fn a_trap_is_reported_with_the_guests_own_message() {
    let t = test_host();
    let id = probe(&t, Limits::default());
    let r = t.host.invoke(Invocation::new("bob", &id, "trap")).unwrap();
    assert_eq!(r.outcome, Outcome::Trap);
    let error = r.error.unwrap();
    assert!(error.contains("probe asked to trap"), "{error}");
    assert_eq!(r.price_paid, 0);
    still_serving(&t, &id);
}

#[test]
fn run_errors_are_reported_charged_and_unpaid() {
    let t = test_host();
    let id = probe(&t, Limits::default());
    let r = t.host.invoke(Invocation::new("bob", &id, "no-such-command")).unwrap();
    assert_eq!(r.outcome, Outcome::RunError);
    assert!(r.error.unwrap().contains("unknown probe command `no-such-command`"));
    assert!(r.resources_consumed.fuel > 0);
    assert_eq!(r.price_paid, 0);
}

#[test]
fn guests_get_no_environment_no_arguments() {
    let t = test_host();
    let id = probe(&t, Limits::default());
    let r = t.host.invoke(Invocation::new("bob", &id, "env")).unwrap();
    assert_eq!(r.output_text(), "vars=0 args=0");
}

#[test]
fn more_calls_than_instance_slots_are_told_busy_never_trap() {
    // Two slots; eight threads each spinning a guest: a call waits briefly
    // for a free slot, then is refused `busy` (retryable, charged
    // nothing). None traps for want of a slot, and each retried call runs.
    let dir = tempfile::tempdir().unwrap();
    let host = fuelhost_tests::builder(dir.path())
        .max_instances(2)
        .limits(fuelhost::HostLimits { max_calls_per_agent: 2, ..fuelhost::HostLimits::default() })
        .build()
        .unwrap();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
    }
    fuelhost_tests::fund(&host, "bob", 1_000, 1_000_000_000_000, 0);
    let id = upload(&host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    let fuel0 = host.balances("bob").unwrap().fuel.posted;
    let (outcomes, busy): (Vec<Outcome>, Vec<u32>) = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut busy = 0;
                    loop {
                        match host.invoke(Invocation::new("bob", &id, "spin:3000000")) {
                            Ok(r) => return (r.outcome, busy),
                            Err(fuelhost::InvokeError::Busy(_)) => busy += 1,
                            Err(e) => panic!("only `busy` may refuse a call here: {e}"),
                        }
                    }
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).unzip()
    });
    assert_eq!(outcomes, vec![Outcome::Success; 8]);
    let charged: u64 = host.usage_records(&Default::default()).unwrap().iter().map(|r| r.consumed.fuel).sum();
    assert_eq!(fuel0 - host.balances("bob").unwrap().fuel.posted, charged, "busy refusals charged nothing");
    assert_eq!(host.usage_records(&Default::default()).unwrap().len(), 8, "and left no record: {busy:?}");
    assert_conserved(&host);
}
