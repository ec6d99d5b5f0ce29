//! Allocations (RAP): the lifecycle, quotas enforced inside reserve and
//! settle, soft-threshold alerts once per period, exhaustion, periods that
//! reset or carry over (computed lazily, across restarts), expiry, memory
//! and concurrency caps, and usage reported from outside the host.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fuelhost::{
    AlertKind, AllocationRequest, AllocationStatus, Host, HostError, Invocation, InvokeError, Limits, ManualClock,
    Outcome, Period, Resource, ResourcePolicy, Rollover,
};
use fuelhost_tests::{assert_conserved, fund, guest, manifest};

const HOUR: i64 = 3_600_000;

struct World {
    host: Host,
    clock: ManualClock,
    dir: tempfile::TempDir,
    probe: String,
}

fn open(dir: &std::path::Path, clock: &ManualClock) -> Host {
    fuelhost_tests::builder(dir).max_instances(8).clock(Arc::new(clock.clone())).build().unwrap()
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let host = open(dir.path(), &clock);
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
        fund(&host, agent, 1_000, 1_000_000_000, 1 << 20);
    }
    let probe = host
        .upload(
            manifest("probe", 1, ResourcePolicy::CallerPays, Limits { fuel: 200_000, ..Limits::default() }),
            &guest("rust-probe"),
        )
        .unwrap()
        .id;
    World { host, clock, dir, probe }
}

fn request(id: &str, quotas: &[(Resource, u64)]) -> AllocationRequest {
    let mut r =
        AllocationRequest::new(id, "bob".try_into().unwrap(), quotas.iter().copied().collect::<BTreeMap<_, _>>());
    r.auto_approve = true;
    r
}

fn activate(w: &World, req: &AllocationRequest) {
    w.host.request_allocation(req).unwrap();
    w.host.activate_allocation(&req.id).unwrap();
}

fn call(w: &World, input: &str) -> Result<fuelhost::InvocationReport, InvokeError> {
    w.host.invoke(Invocation::new("bob", &w.probe, input))
}

#[test]
fn lifecycle_transitions_and_idempotent_requests() {
    let w = world();
    let mut req = request("a1", &[(Resource::ApiCalls, 10)]);
    req.auto_approve = false;
    req.priority = 7;
    let a = w.host.request_allocation(&req).unwrap();
    assert_eq!((a.status, a.priority), (AllocationStatus::Pending, 7));
    assert_eq!(w.host.request_allocation(&req).unwrap().status, AllocationStatus::Pending, "replay");
    let mut other = req.clone();
    other.priority = 2;
    assert!(w.host.request_allocation(&other).is_err(), "same id, other request");
    assert!(w.host.activate_allocation("a1").is_err(), "pending cannot activate");
    // A pending allocation does not govern bob yet.
    assert!(call(&w, "echo:x").unwrap().success);
    assert_eq!(w.host.approve_allocation("a1").unwrap().status, AllocationStatus::Approved);
    let a = w.host.activate_allocation("a1").unwrap();
    assert_eq!((a.status, a.activated_at_ms), (AllocationStatus::Active, Some(1_700_000_000_000)));
    let a = w.host.revoke_allocation("a1", "policy violation").unwrap();
    assert_eq!((a.status, a.revoke_reason.as_deref()), (AllocationStatus::Revoked, Some("policy violation")));
    assert!(w.host.revoke_allocation("a1", "again").is_err());
    let err = call(&w, "echo:x").unwrap_err();
    assert!(matches!(err, InvokeError::AllocationRefused(_)), "{err:?}");
    assert!(err.to_string().contains("`a1` is revoked"), "{err}");

    let mut bad = request("bad", &[(Resource::Fuel, 1)]);
    bad.priority = 11;
    let err = w.host.request_allocation(&bad).unwrap_err();
    assert!(err.to_string().contains("priority must be 1 to 10"), "{err}");
    assert!(matches!(
        w.host.approve_allocation("nope"),
        Err(HostError::Ledger(fuelhost::LedgerError::UnknownAllocation(_)))
    ));
}

#[test]
fn api_call_quota_alerts_at_the_soft_threshold_once_and_exhausts_at_the_hard_one() {
    let w = world();
    activate(&w, &request("calls", &[(Resource::ApiCalls, 5)]));
    for _ in 0..5 {
        assert!(call(&w, "echo:x").unwrap().success);
    }
    let a = w.host.allocation("calls").unwrap().unwrap();
    assert_eq!((a.status, a.usage_percent(Resource::ApiCalls)), (AllocationStatus::Exhausted, Some(100)));
    let bob = w.host.balances("bob").unwrap();
    let err = call(&w, "echo:x").unwrap_err();
    assert!(err.to_string().contains("`calls` is exhausted"), "{err}");
    assert_eq!(w.host.balances("bob").unwrap(), bob, "a refused call charges nothing");
    let kinds: Vec<_> = w.host.alerts().unwrap().iter().map(|a| (a.kind, a.percent)).collect();
    assert_eq!(kinds, vec![(AlertKind::SoftThreshold, 80), (AlertKind::Exhausted, 100)], "soft alert once, at 4 of 5");
    assert_conserved(&w.host);
}

#[test]
fn a_fuel_quota_caps_each_call_and_stops_charges_when_used() {
    let w = world();
    activate(&w, &request("fuel", &[(Resource::Fuel, 250_000)]));
    let r = call(&w, "loop").unwrap();
    assert_eq!((r.outcome, r.resources_consumed.fuel), (Outcome::OutOfFuel, 200_000));
    let r = call(&w, "loop").unwrap();
    assert_eq!(r.resources_consumed.fuel, 50_000, "capped by what the quota has left");
    assert!(matches!(call(&w, "echo:x").unwrap_err(), InvokeError::AllocationRefused(_)));
    let a = w.host.allocation("fuel").unwrap().unwrap();
    assert_eq!(a.quota(Resource::Fuel).unwrap().used, 250_000);
    assert_eq!(a.quota(Resource::Fuel).unwrap().held, 0);
}

#[test]
fn periods_reset_or_carry_over_lazily_and_across_a_restart() {
    let w = world();
    let mut reset = request("hourly", &[(Resource::ApiCalls, 2)]);
    reset.period = Some(Period { length_ms: HOUR as u64, rollover: Rollover::Reset });
    activate(&w, &reset);
    call(&w, "echo:1").unwrap();
    call(&w, "echo:2").unwrap();
    assert!(call(&w, "echo:3").is_err());
    w.clock.advance(HOUR);
    assert!(call(&w, "echo:4").unwrap().success, "a new period revives an exhausted allocation");
    let a = w.host.allocation("hourly").unwrap().unwrap();
    assert_eq!((a.period_index, a.status, a.quota(Resource::ApiCalls).unwrap().used), (1, AllocationStatus::Active, 1));
    w.host.revoke_allocation("hourly", "switching to carry-over").unwrap();

    let mut carry = request("carry", &[(Resource::ApiCalls, 3)]);
    carry.period = Some(Period { length_ms: HOUR as u64, rollover: Rollover::CarryOver });
    activate(&w, &carry);
    call(&w, "echo:1").unwrap();
    // Two hours pass across a restart: period 0 left 2 unused, period 1
    // left all 3 unused; period 2 starts with 3 + 2 + 3.
    let dir = w.dir.path().to_path_buf();
    let clock = w.clock.clone();
    drop(w.host);
    clock.advance(2 * HOUR + 5);
    let host = open(&dir, &clock);
    let a = host.allocation("carry").unwrap().unwrap();
    let q = a.quota(Resource::ApiCalls).unwrap();
    assert_eq!((a.period_index, q.carried, q.used, q.limit()), (2, 5, 0, 8));
}

#[test]
fn expiry_stops_charges_and_extension_postpones_it() {
    let w = world();
    let mut req = request("brief", &[(Resource::ApiCalls, 100)]);
    req.duration_ms = Some(10_000);
    activate(&w, &req);
    w.clock.advance(9_000);
    w.host.extend_allocation("brief", 5_000).unwrap();
    w.clock.advance(2_000);
    assert!(call(&w, "echo:x").unwrap().success, "extended past the original expiry");
    w.clock.advance(5_000);
    let err = call(&w, "echo:x").unwrap_err();
    assert!(err.to_string().contains("`brief` is expired"), "{err}");
    assert!(w.host.alerts().unwrap().iter().any(|a| a.kind == AlertKind::Expired && a.allocation == "brief"));
}

#[test]
fn the_memory_cap_bounds_the_sandbox() {
    let w = world();
    let roomy = w
        .host
        .upload(
            manifest("roomy", 0, ResourcePolicy::CallerPays, Limits { fuel: 1 << 32, ..Limits::default() }),
            &guest("rust-probe"),
        )
        .unwrap()
        .id;
    activate(&w, &request("mem", &[(Resource::MemoryBytes, 8 << 20)]));
    let alloc = |mib: u32| w.host.invoke(Invocation::new("bob", &roomy, format!("alloc:{mib}"))).unwrap();
    assert_eq!(alloc(2).outcome, Outcome::Success);
    let r = alloc(16);
    assert_eq!(r.outcome, Outcome::MemoryLimit, "{:?}", r.error);
}

#[test]
fn the_concurrency_cap_refuses_a_second_running_call() {
    let w = world();
    let slow = w
        .host
        .upload(
            manifest(
                "slow",
                0,
                ResourcePolicy::CallerPays,
                Limits { fuel: 1 << 28, timeout_ms: 3_000, ..Limits::default() },
            ),
            &guest("rust-probe"),
        )
        .unwrap()
        .id;
    activate(&w, &request("one-at-a-time", &[(Resource::ConcurrentTasks, 1)]));
    std::thread::scope(|s| {
        let host = w.host.clone();
        let running = s.spawn(move || host.invoke(Invocation::new("bob", &slow, "loop")).unwrap());
        // Wait until the first call holds the only slot.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while w.host.allocation("one-at-a-time").unwrap().unwrap().quota(Resource::ConcurrentTasks).unwrap().held == 0 {
            assert!(std::time::Instant::now() < deadline, "the first call never started");
            std::thread::sleep(Duration::from_millis(2));
        }
        let err = call(&w, "echo:x").unwrap_err();
        assert!(err.to_string().contains("1 invocations already running, the cap is 1"), "{err}");
        assert!(!running.join().unwrap().success, "the endless loop ends by fuel or timeout");
    });
    assert!(call(&w, "echo:x").unwrap().success, "the slot is free again");
}

#[test]
fn usage_reported_from_outside_counts_against_the_allocation() {
    let w = world();
    activate(&w, &request("llm", &[(Resource::LlmTokens, 1_000), (Resource::ApiCalls, 100)]));
    w.host.record_usage("gw-1", "bob", Resource::LlmTokens, 850).unwrap();
    w.host.record_usage("gw-1", "bob", Resource::LlmTokens, 850).unwrap();
    let a = w.host.allocation("llm").unwrap().unwrap();
    assert_eq!((a.quota(Resource::LlmTokens).unwrap().used, a.status), (850, AllocationStatus::Active));
    assert_eq!(w.host.alerts().unwrap().len(), 1, "soft alert at 85%");
    w.host.record_usage("gw-2", "bob", Resource::LlmTokens, 150).unwrap();
    assert_eq!(w.host.allocation("llm").unwrap().unwrap().status, AllocationStatus::Exhausted);
    assert!(call(&w, "echo:x").is_err(), "exhausted by tokens: no more calls this period");
    assert!(w.host.record_usage("gw-3", "alice", Resource::LlmTokens, 1).is_err(), "alice has no allocation");
}
