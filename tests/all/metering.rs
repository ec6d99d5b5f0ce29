//! The two metering modes, chosen per artifact: `fuel` (deterministic) and
//! `cpu_time` (the thread's CPU time around the call, converted to fuel by
//! the cost model, the budget enforced by an epoch deadline). Both charge
//! the payer's fuel budget, both stop a call at the budget, and the ledger
//! stays balanced either way.

use fuelhost::{Limits, Manifest, Metering, Outcome, ResourcePolicy};
use fuelhost_tests::{assert_conserved, fund, guest, manifest, test_host, TestHost};

fn upload(t: &TestHost, guest_name: &str, name: &str, metering: Metering, limits: Limits) -> String {
    let m = Manifest { metering, ..manifest(name, 0, ResourcePolicy::CallerPays, limits) };
    t.host.upload(m, &guest(guest_name)).unwrap().id
}

fn call(t: &TestHost, caller: &str, id: &str, input: &str) -> fuelhost::InvocationReport {
    t.host.invoke(fuelhost::Invocation::new(caller, id, input)).unwrap()
}

#[test]
fn cpu_time_charges_the_cpu_it_measured_and_fuel_stays_deterministic() {
    let t = test_host();
    let fuel = upload(&t, "rust-kernels", "kernels-fuel", Metering::Fuel, Limits::default());
    let cpu = upload(&t, "rust-kernels", "kernels-cpu", Metering::CpuTime, Limits::default());

    let a = call(&t, "bob", &fuel, "fib 22");
    let b = call(&t, "bob", &fuel, "fib 22");
    assert_eq!(a.output, b"17711");
    assert_eq!(a.resources_consumed.fuel, b.resources_consumed.fuel, "fuel metering is deterministic");

    let r = call(&t, "bob", &cpu, "fib 22");
    assert_eq!((r.outcome, r.output.as_slice()), (Outcome::Success, &b"17711"[..]), "{r:?}");
    assert!(r.resources_consumed.fuel > 0, "CPU time is charged: {r:?}");
    // The charge is the CPU time at the cost model's rate (1 ns a unit by
    // default), so it is at most the wall time the call took.
    assert!(r.resources_consumed.fuel <= r.resources_consumed.wall_time_ns, "{r:?}");
    assert_eq!(r.resources_consumed.cpu_time_ns, t.host.cost_model().cpu_time_ns(r.resources_consumed.fuel));
    let bob = t.host.balances("bob").unwrap();
    let records = t.host.usage_records(&fuelhost::UsageQuery::default()).unwrap();
    let charged: u64 = records.iter().map(|r| r.consumed.fuel).sum();
    assert_eq!(bob.fuel.posted, 1_000_000_000 - charged, "bob paid what the usage records say");
    assert_eq!(bob.fuel.held, 0);
    assert_conserved(&t.host);
}

#[test]
fn cpu_time_stops_a_runaway_at_the_budget_and_charges_no_more() {
    let t = test_host();
    t.host.create_agent("carol").unwrap();
    // 30 ms of CPU at the default 1 ns per fuel unit.
    fund(&t.host, "carol", 0, 30_000_000, 0);
    let cpu = upload(&t, "rust-probe", "probe-cpu", Metering::CpuTime, Limits::default());
    let r = call(&t, "carol", &cpu, "loop");
    assert_eq!(r.outcome, Outcome::OutOfFuel, "the budget ran out, not the 10 s timeout: {r:?}");
    assert!(r.resources_consumed.fuel <= 30_000_000, "never more than the budget: {r:?}");
    assert!(r.resources_consumed.fuel > 0);
    let carol = t.host.balances("carol").unwrap();
    assert_eq!(carol.fuel.posted, 30_000_000 - r.resources_consumed.fuel);
    assert_eq!(carol.fuel.held, 0, "the hold is released");
    assert_conserved(&t.host);

    // A budget under one epoch tick (1 ms of CPU; ticks are 10 ms) cannot
    // be enforced, so the call does not run and costs nothing.
    t.host.create_agent("dave").unwrap();
    fund(&t.host, "dave", 0, 1_000_000, 0);
    let r = call(&t, "dave", &cpu, "echo:hi");
    assert_eq!((r.outcome, r.resources_consumed.fuel), (Outcome::OutOfFuel, 0), "{r:?}");
    assert!(r.error.as_deref().unwrap_or("").contains("under one epoch tick"), "{r:?}");
    assert_eq!(t.host.balances("dave").unwrap().fuel.posted, 1_000_000);

    // A budget larger than the timeout's CPU time: the timeout ends it.
    let short =
        upload(&t, "rust-probe", "probe-cpu-short", Metering::CpuTime, Limits { timeout_ms: 50, ..Limits::default() });
    let r = call(&t, "bob", &short, "loop");
    assert_eq!(r.outcome, Outcome::Timeout, "{r:?}");
    assert!(r.resources_consumed.fuel <= 1_000_000_000);
    assert_conserved(&t.host);
}

#[test]
fn modes_mix_in_one_chain_and_survive_a_restart() {
    let t = test_host();
    let echo = upload(&t, "rust-echo", "echo-fuel", Metering::Fuel, Limits::default());
    let probe = upload(&t, "rust-probe", "probe-cpu", Metering::CpuTime, Limits::default());
    // A CPU-metered artifact invokes a fuel-metered one: each charged its own.
    let r = call(&t, "bob", &probe, &format!("nested:{echo}:hi"));
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let records = t.host.usage_records(&fuelhost::UsageQuery::default()).unwrap();
    assert_eq!(records.len(), 2, "the outer and the nested call");
    assert_conserved(&t.host);

    let dir = t.dir.path().to_path_buf();
    let TestHost { host, dir: keep } = t;
    drop(host);
    let host = fuelhost_tests::builder(&dir).max_instances(8).build().unwrap();
    let info = host.artifacts().into_iter().find(|a| a.id == probe).unwrap();
    assert_eq!(info.manifest.metering, Metering::CpuTime, "the mode is stored with the artifact");
    let r = host.invoke(fuelhost::Invocation::new("bob", &probe, "echo:again")).unwrap();
    assert_eq!((r.outcome, r.output.as_slice()), (Outcome::Success, &b"again"[..]), "{r:?}");
    drop(keep);
}

#[test]
fn manifests_name_the_mode_and_refuse_unknown_ones() {
    let m = Manifest::from_toml(
        "owner = \"alice\"\nname = \"k\"\nversion = \"1\"\nresource_policy = \"caller_pays\"\nmetering = \"cpu_time\"\n",
    )
    .unwrap();
    assert_eq!(m.metering, Metering::CpuTime);
    let err = Manifest::from_toml(
        "owner = \"alice\"\nname = \"k\"\nversion = \"1\"\nresource_policy = \"caller_pays\"\nmetering = \"vibes\"\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown variant `vibes`"), "{err}");
}

/// With deterministic fuel, a fuel-metered artifact runs on fuel alone (no
/// epoch checks): its timeout is counted in fuel at the cost model's rate,
/// so a runaway ends `timeout` having burned exactly that fuel, every time
/// and on any machine; one waiting in host calls still ends at its
/// wall-clock timeout. A call that returns costs the same fuel as on the
/// default engine, and policy plugins keep their wall-clock deadline.
#[test]
fn deterministic_fuel_counts_the_timeout_in_fuel() {
    let dir = tempfile::tempdir().unwrap();
    let host = fuelhost_tests::builder(dir.path())
        .max_instances(8)
        .deterministic_fuel(true)
        .plugin_limits(fuelhost::PluginLimits {
            fuel: 1_000_000_000_000,
            timeout: std::time::Duration::from_millis(100),
            ..Default::default()
        })
        .build()
        .unwrap();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
        fund(&host, agent, 1_000, 1_000_000_000, 1 << 20);
    }
    let limits = Limits { timeout_ms: 50, ..Limits::default() };
    let probe = fuelhost_tests::upload(&host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, limits);
    let runs: Vec<_> = (0..2).map(|_| host.invoke(fuelhost::Invocation::new("bob", &probe, "loop")).unwrap()).collect();
    let timeout_fuel = host.cost_model().fuel_for(std::time::Duration::from_millis(50));
    for r in &runs {
        assert_eq!((r.outcome, r.resources_consumed.fuel), (Outcome::Timeout, timeout_fuel), "{r:?}");
        assert!(r.error.as_deref().unwrap_or("").contains("counted in fuel"), "{r:?}");
    }
    assert_eq!(host.balances("bob").unwrap().fuel.posted, 1_000_000_000 - 2 * timeout_fuel);

    // A guest sleeping in host calls burns next to no fuel: the wall
    // clock, checked at every call into the host, still ends it at its
    // timeout (without that check it would sleep for minutes).
    let started = std::time::Instant::now();
    let r = host.invoke(fuelhost::Invocation::new("bob", &probe, "nap")).unwrap();
    assert_eq!(r.outcome, Outcome::Timeout, "{r:?}");
    assert!(r.resources_consumed.fuel < timeout_fuel / 10, "{r:?}");
    assert!(!r.error.as_deref().unwrap_or("").contains("counted in fuel"), "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{r:?}");

    // The same program costs the same fuel with and without epoch checks.
    let t = test_host();
    let kernels = upload(&t, "rust-kernels", "kernels", Metering::Fuel, Limits::default());
    let on_default = call(&t, "bob", &kernels, "fib 22");
    let m = manifest("kernels", 0, ResourcePolicy::CallerPays, Limits::default());
    let kernels = host.upload(m, &guest("rust-kernels")).unwrap().id;
    let deterministic = host.invoke(fuelhost::Invocation::new("bob", &kernels, "fib 22")).unwrap();
    assert_eq!(deterministic.output, b"17711");
    assert_eq!(deterministic.resources_consumed.fuel, on_default.resources_consumed.fuel);

    // A plugin with all the fuel it wants is still stopped by its deadline.
    host.add_policy_plugin("faulty", &guest("rust-faulty-policy")).unwrap();
    let action = fuelhost::Action {
        kind: "invoke".into(),
        subject: "bob".into(),
        tenant: None,
        target: "loop".into(),
        attributes: vec![],
        price: 0,
        estimated: fuelhost::Usage { fuel: 0, memory_peak_bytes: 0, disk_bytes: 0, llm_tokens: 0, wall_time_ns: 0 },
    };
    let fuelhost::Decision::Deny(reason) = host.check_policy(&action).decision else {
        panic!("a looping plugin denies")
    };
    assert!(reason.contains("timeout"), "{reason}");
    assert_conserved(&host);
}
