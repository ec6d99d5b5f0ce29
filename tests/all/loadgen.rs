//! The load generator: what it reports agrees with what the ledger
//! recorded, call for call and fuel unit for fuel unit.

use std::time::Duration;

use fuelhost::loadgen::{run, LoadConfig};
use fuelhost::{Asset, Limits, ResourcePolicy, UsageQuery};
use fuelhost_tests::{guest, manifest, test_host};

#[test]
fn a_load_run_reports_what_the_ledger_recorded() {
    let t = test_host();
    t.host.mint("more-scrip", "bob", Asset::Scrip, 1_000_000).unwrap();
    // Each call holds its whole fuel limit while it runs: room for both threads.
    t.host.mint("more-fuel", "bob", Asset::Fuel, 1_000_000_000_000).unwrap();
    let id = t
        .host
        .upload(manifest("echo", 1, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo"))
        .unwrap()
        .id;
    let report = run(
        &t.host,
        &LoadConfig {
            caller: "bob".into(),
            artifact: id,
            input: b"load".to_vec(),
            threads: 2,
            duration: Duration::from_millis(300),
        },
    );
    assert!(report.invocations > 0, "{report}");
    assert_eq!((report.successes, report.errors), (report.invocations, 0), "{report}");
    let records = t.host.usage_records(&UsageQuery { limit: Some(10_000), ..UsageQuery::default() }).unwrap();
    assert_eq!(records.len() as u64, report.invocations, "one usage record per reported call");
    assert_eq!(records.iter().map(|r| r.consumed.fuel).sum::<u64>(), report.fuel, "fuel as the ledger has it");
    assert!(report.p50_us <= report.p90_us && report.p90_us <= report.p99_us && report.p99_us <= report.max_us);
    assert!(report.per_second > 0.0 && report.fuel_per_second > 0.0);
    let bob = t.host.balances("bob").unwrap();
    assert_eq!(bob.scrip.posted, 1_001_000 - report.invocations, "each call paid its price once");
}

/// The task load generator submits at the asked rate, every task it
/// reports ended, and the start delays come from the scheduler.
#[test]
fn a_task_load_run_submits_steadily_and_sees_every_task_end() {
    let dir = tempfile::tempdir().unwrap();
    let settings = fuelhost::SchedulerSettings { workers: 2, ..fuelhost::SchedulerSettings::default() };
    let host = fuelhost_tests::builder(dir.path()).scheduler(settings).build().unwrap();
    let artifact = fuelhost::loadgen::prepare(&host, "echo", &guest("rust-echo"), fuelhost::Metering::Fuel).unwrap();
    let config = fuelhost::loadgen::TaskLoadConfig {
        caller: fuelhost::loadgen::CALLER.into(),
        artifact,
        input: b"task".to_vec(),
        rate: 200.0,
        submitters: 2,
        duration: Duration::from_millis(500),
    };
    let report = fuelhost::loadgen::run_tasks(&host, &config);
    // 100 asked for; a loaded machine may fall behind, never ahead.
    assert!(report.submitted > 0 && report.submitted <= 102, "{report}");
    assert_eq!((report.completed, report.failed, report.refused), (report.submitted, 0, 0), "{report}");
    assert_eq!(host.task_start_delays().len() as u64, report.submitted, "one start delay per task");
    assert!(report.start_p50_us <= report.start_p99_us && report.start_p99_us <= report.start_max_us, "{report}");
    assert!(report.start_max_us > 0.0, "{report}");
}
