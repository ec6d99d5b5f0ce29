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
