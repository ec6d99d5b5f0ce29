//! Hostile guests and hostile callers: every limit holds while the call
//! runs, not after it, and the host keeps serving. The guest is
//! `rust-hostile`, which attacks on command (disk, host calls, logs,
//! outputs, sleeps, nesting); ids and approvals are attacked from outside.

use fuelhost::{Host, HostLimits, Invocation, InvocationReport, InvokeError, Limits, Outcome, ResourcePolicy};
use fuelhost_tests::{assert_conserved, fund, guest, manifest};

const MIB: u64 = 1 << 20;

/// A host whose agents `alice` (owns the hostile artifact) and `bob`
/// (calls it) have 1,000 scrip, 1e10 fuel and `disk` bytes of disk.
fn world(limits: HostLimits, disk: u64, artifact_limits: Limits) -> (Host, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let host = fuelhost_tests::builder(dir.path()).max_instances(16).limits(limits).build().unwrap();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
        fund(&host, agent, 1_000, 10_000_000_000, disk);
    }
    let id = host
        .upload(manifest("hostile", 1, ResourcePolicy::CallerPays, artifact_limits), &guest("rust-hostile"))
        .unwrap()
        .id;
    (host, dir, id)
}

fn call(host: &Host, id: &str, cmd: &str) -> InvocationReport {
    host.invoke(Invocation::new("bob", id, cmd)).unwrap()
}

/// Bytes of the file `name` in alice's directory (0 if absent).
fn on_disk(host: &Host, name: &str) -> u64 {
    std::fs::metadata(host.agent_dir("alice").unwrap().join(name)).map(|m| m.len()).unwrap_or(0)
}

fn disk_left(host: &Host, agent: &str) -> u64 {
    host.balances(agent).unwrap().disk_bytes.available()
}

/// A 200 MiB stream of writes with 1 MiB of budget stops at 1 MiB: the
/// write that would pass it fails with WASI's quota error, nothing over
/// the budget lands on disk, and what landed is what is charged.
#[test]
fn disk_is_enforced_at_each_write() {
    let (host, _dir, id) = world(HostLimits::default(), MIB, Limits::default());
    let r = call(&host, &id, &format!("fill:big:{}", 200 * MIB));
    assert_eq!(r.outcome, Outcome::Success, "{:?}", r.error);
    assert_eq!(r.output_text(), format!("wrote {MIB} then QuotaExceeded"));
    assert_eq!(on_disk(&host, "big"), MIB);
    assert_eq!(r.resources_consumed.disk_bytes, MIB);
    assert_eq!(disk_left(&host, "bob"), 0);

    // A guest that traps on the refusal ends `disk_limit`, charged what
    // landed (nothing: the budget is spent).
    let r = call(&host, &id, &format!("fill-then-trap:more:{}", 50 * MIB));
    assert_eq!(r.outcome, Outcome::DiskLimit, "{:?}", r.error);
    assert!(r.error.as_deref().unwrap().contains("payer bob has 0 left"), "{:?}", r.error);
    assert_eq!((on_disk(&host, "more"), r.resources_consumed.disk_bytes, r.price_paid), (0, 0, 0));

    // With no disk budget left a call that writes nothing still runs.
    let r = call(&host, &id, "echo:still-serving");
    assert_eq!((r.outcome, r.output_text().as_str()), (Outcome::Success, "still-serving"));
    assert_conserved(&host);
}

/// Growth is counted by apparent size: a byte written far past the end, or
/// a file grown by setting its size, needs budget for the whole hole.
#[test]
fn sparse_writes_and_set_size_need_budget_for_the_hole() {
    let (host, _dir, id) = world(HostLimits::default(), MIB, Limits::default());
    for cmd in [format!("at:sparse:{}", 1u64 << 40), format!("setlen:grown:{}", 1u64 << 30)] {
        let r = call(&host, &id, &cmd);
        assert_eq!(r.output_text(), "QuotaExceeded", "{cmd}: {:?}", r.error);
    }
    assert_eq!((on_disk(&host, "sparse"), on_disk(&host, "grown")), (0, 0));
    // Within the budget both work, and are charged their size.
    let r = call(&host, &id, &format!("setlen:grown:{}", MIB / 2));
    assert_eq!((r.output_text().as_str(), r.resources_consumed.disk_bytes), ("set", MIB / 2));
    let r = call(&host, &id, &format!("at:sparse:{}", MIB / 4));
    assert_eq!((r.output_text().as_str(), r.resources_consumed.disk_bytes), ("wrote", MIB / 4 + 1));
    assert_eq!(disk_left(&host, "bob"), MIB / 4 - 1);
    assert_conserved(&host);
}

/// An agent's directory holds a bounded number of entries: creating
/// files or directories past it fails with the quota error, and no later
/// call walks the directory (there is no per-call scan to slow down).
#[test]
fn the_number_of_entries_is_bounded() {
    let limits = HostLimits { max_dir_entries: 100, ..HostLimits::default() };
    let (host, _dir, id) = world(limits, MIB, Limits::default());
    let r = call(&host, &id, "files:f:1000");
    assert_eq!(r.output_text(), "made 99 then QuotaExceeded", "{:?}", r.error);
    let r = call(&host, &id, "dirs:d:10");
    assert_eq!(r.outcome, Outcome::DiskLimit, "{:?}", r.error);
    assert!(r.error.as_deref().unwrap().contains("max_dir_entries"), "{:?}", r.error);
    let files = || std::fs::read_dir(host.agent_dir("alice").unwrap().join("f")).unwrap().count();
    assert_eq!(files(), 99);
    // Removing one makes room for one: `f/0` is made again, `f/99` is not.
    assert_eq!(call(&host, &id, "rm:f/0").output_text(), "removed");
    assert_eq!(files(), 98);
    assert_eq!(call(&host, &id, "files:f:1000").output_text(), "made 99 then QuotaExceeded");
    assert_eq!(files(), 99);
}

/// Concurrent calls of one payer share its disk budget exactly: together
/// they never land more than it.
#[test]
fn concurrent_writers_of_one_payer_share_its_budget() {
    let (host, _dir, id) = world(HostLimits::default(), MIB, Limits::default());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (host, id) = (host.clone(), id.clone());
            std::thread::spawn(move || call(&host, &id, &format!("fill:part{i}:{}", MIB / 2)))
        })
        .collect();
    let reports: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let charged: u64 = reports.iter().map(|r| r.resources_consumed.disk_bytes).sum();
    let landed: u64 = (0..4).map(|i| on_disk(&host, &format!("part{i}"))).sum();
    assert_eq!(charged, landed, "what landed is what was charged");
    assert!(landed <= MIB, "{landed} bytes landed on a budget of {MIB}");
    assert!(landed >= MIB - (64 << 10) * 4, "the budget was used: {landed}");
    assert_eq!(disk_left(&host, "bob"), MIB - landed);
    assert_conserved(&host);
}

/// Ids a caller chooses have a grammar that host-made ids fall outside:
/// no `/` (nested calls are `<id>/n<k>`), no `..`, no NUL, at most 128
/// characters. A bad one is refused before anything happens.
#[test]
fn hostile_ids_are_refused() {
    let (host, _dir, id) = world(HostLimits::default(), MIB, Limits::default());
    let bob0 = host.balances("bob").unwrap();
    for bad in ["x/n1", "..", "a\0b", &"i".repeat(1 << 20), ""] {
        let err = host.invoke(Invocation::new("bob", &id, "echo:x").id(bad)).unwrap_err();
        assert!(matches!(err, InvokeError::InvalidId(_)), "{bad:?}: {err}");
    }
    let task = fuelhost::TaskRequest::new("bob", &id, "echo:x").id("t/1");
    assert!(host.submit_task(task).is_err());
    assert_eq!(host.balances("bob").unwrap(), bob0, "nothing charged");
    assert!(call(&host, &id, "echo:fine").success);
}

/// A manifest asking for more than the host allows is refused at upload,
/// naming the field and the maximum; an input over the artifact's limit
/// is refused before anything is charged.
#[test]
fn manifests_and_inputs_are_held_to_the_hosts_maxima() {
    let (host, _dir, id) = world(HostLimits::default(), MIB, Limits { input_bytes: 1024, ..Limits::default() });
    let huge = Limits { memory_bytes: 1 << 40, ..Limits::default() };
    let err = host.upload(manifest("huge", 0, ResourcePolicy::CallerPays, huge), &guest("rust-hostile")).unwrap_err();
    assert!(err.to_string().contains("limits.memory_bytes") && err.to_string().contains("maximum"), "{err}");
    let greedy = Limits { output_bytes: 1 << 40, ..Limits::default() };
    let err =
        host.upload(manifest("greedy", 0, ResourcePolicy::CallerPays, greedy), &guest("rust-hostile")).unwrap_err();
    assert!(err.to_string().contains("limits.output_bytes"), "{err}");

    let bob0 = host.balances("bob").unwrap();
    let err = host.invoke(Invocation::new("bob", &id, vec![b'x'; 2048])).unwrap_err();
    assert!(matches!(err, InvokeError::InputTooLarge { size: 2048, limit: 1024, .. }), "{err}");
    assert_eq!(host.balances("bob").unwrap(), bob0);
}

/// Host calls cost fuel: an endless loop of cheap host calls ends
/// `out_of_fuel` within its budget, not at its timeout, and a bounded
/// number of them costs what the cost model says.
#[test]
fn host_calls_cost_fuel() {
    let limits = Limits { fuel: 20_000_000, timeout_ms: 60_000, ..Limits::default() };
    let (host, _dir, id) = world(HostLimits::default(), MIB, limits);
    let started = std::time::Instant::now();
    let r = call(&host, &id, "hostcalls-forever");
    assert_eq!(r.outcome, Outcome::OutOfFuel, "{:?}", r.error);
    assert_eq!(r.resources_consumed.fuel, 20_000_000);
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "ended by its fuel, not its timeout");
    // 1,000 more calls cost at least 1,000 crossings more.
    let few = call(&host, &id, "hostcalls:10").resources_consumed.fuel;
    let many = call(&host, &id, "hostcalls:1010").resources_consumed.fuel;
    assert!(many - few >= 1_000 * fuelhost::HOST_CALL_CROSSING_FUEL, "{few} -> {many}");
    assert_conserved(&host);
}

/// A guest logs within its limits; past them it is stopped `log_limit`
/// at once, having written at most its limit to the host's log.
#[test]
fn logs_are_bounded_while_the_guest_runs() {
    let limits = Limits { log_bytes: 64 << 10, log_lines: 100, ..Limits::default() };
    let (host, _dir, id) = world(HostLimits::default(), MIB, limits);
    assert_eq!(call(&host, &id, "logs:50:100").outcome, Outcome::Success);
    let r = call(&host, &id, "logs:1000000:4096");
    assert_eq!(r.outcome, Outcome::LogLimit, "{:?}", r.error);
    assert!(r.error.as_deref().unwrap().contains("limits.log_bytes"), "{:?}", r.error);
    let r = call(&host, &id, "logs:1000000:1");
    assert_eq!(r.outcome, Outcome::LogLimit, "{:?}", r.error);
    assert_eq!(r.price_paid, 0);
    assert_conserved(&host);
}

/// An output over the artifact's limit is dropped, the call ends
/// `output_limit`, charged what it burned and paying no price.
#[test]
fn outputs_are_bounded() {
    let (host, _dir, id) = world(HostLimits::default(), MIB, Limits { output_bytes: MIB, ..Limits::default() });
    let r = call(&host, &id, &format!("output:{MIB}"));
    assert_eq!((r.outcome, r.output.len() as u64), (Outcome::Success, MIB));
    let r = call(&host, &id, &format!("output:{}", 16 * MIB));
    assert_eq!((r.outcome, r.output.len(), r.price_paid), (Outcome::OutputLimit, 0, 0), "{:?}", r.error);
    assert!(r.resources_consumed.fuel > 0);
    let recorded = host.ledger().usage_record(&r.invocation_id).unwrap().unwrap();
    assert!(recorded.output.is_empty(), "the dropped output is not stored either");
    assert_conserved(&host);
}

/// A guest asleep in a host wait is stopped at its deadline (charged what
/// it used), not when it wakes.
#[test]
fn a_sleeping_guest_ends_at_its_timeout() {
    let (host, _dir, id) = world(HostLimits::default(), MIB, Limits { timeout_ms: 300, ..Limits::default() });
    let started = std::time::Instant::now();
    let r = call(&host, &id, "sleep:20000");
    assert_eq!(r.outcome, Outcome::Timeout, "{:?}", r.error);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(r.price_paid, 0);
    assert!(call(&host, &id, "sleep:1").success);
}

/// A call makes at most `limits.nested_calls` nested invocations; past
/// that the `invoke` import answers `unavailable`.
#[test]
fn nested_calls_are_bounded() {
    let (host, _dir, id) = world(HostLimits::default(), MIB, Limits { nested_calls: 5, ..Limits::default() });
    let r = call(&host, &id, &format!("nested:{id}:100"));
    assert!(r.output_text().starts_with("nested 5 then InvokeError::Unavailable"), "{}", r.output_text());
    assert!(r.output_text().contains("limits.nested_calls"), "{}", r.output_text());
}

/// One agent's sleeping calls cannot starve another's: it holds at most
/// three quarters of the instance slots, its calls past that are refused
/// `busy` at once (retryable, charged nothing, not a trap), and another
/// agent's ordinary call gets a slot without waiting out the sleepers.
#[test]
fn sleepers_cannot_starve_another_agent() {
    let (host, _dir, id) = world(HostLimits::default(), MIB, Limits { timeout_ms: 2_000, ..Limits::default() });
    host.create_agent("mallory").unwrap();
    fund(&host, "mallory", 1_000, 100_000_000_000, 0);
    let mallory0 = host.balances("mallory").unwrap();
    let (sleeping, refused) = std::thread::scope(|scope| {
        let sleepers: Vec<_> =
            (0..20).map(|_| scope.spawn(|| host.invoke(Invocation::new("mallory", &id, "sleep:60000")))).collect();
        std::thread::sleep(std::time::Duration::from_millis(300));
        // Sixteen slots, twelve of them mallory's at most: bob is served.
        let started = std::time::Instant::now();
        let r = call(&host, &id, "echo:served");
        assert_eq!((r.outcome, r.output_text().as_str()), (Outcome::Success, "served"));
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "bob waited {:?}", started.elapsed());
        let results: Vec<_> = sleepers.into_iter().map(|s| s.join().unwrap()).collect();
        let refused = results.iter().filter(|r| matches!(r, Err(InvokeError::Busy(_)))).count();
        let sleeping: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
        (sleeping, refused)
    });
    assert_eq!((sleeping.len(), refused), (12, 8), "mallory holds 12 of 16 slots");
    assert!(sleeping.iter().all(|r| r.outcome == Outcome::Timeout), "{:?}", sleeping[0]);
    // Only the calls that ran were charged: the refused ones cost nothing.
    let charged: u64 = sleeping.iter().map(|r| r.resources_consumed.fuel).sum();
    assert_eq!(mallory0.fuel.posted - host.balances("mallory").unwrap().fuel.posted, charged);
    assert_conserved(&host);
}
