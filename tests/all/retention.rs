//! Retention through the host: past their horizons, usage records and
//! audit entries move to archive files; balances, totals and conservation
//! stay; settings that would break idempotency are refused.

use std::sync::Arc;

use fuelhost::{Host, Invocation, Limits, ManualClock, ResourcePolicy, Retention, UsageQuery};
use fuelhost_tests::{assert_conserved, fund, upload};

const DAY_MS: i64 = 86_400_000;

fn host(dir: &std::path::Path, clock: &ManualClock, retention: Retention) -> Result<Host, fuelhost::HostError> {
    fuelhost_tests::builder(dir).max_instances(4).clock(Arc::new(clock.clone())).retention(retention).build()
}

fn lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
    fuelhost_tests::archive_lines(&[dir.to_path_buf()])
}

#[test]
fn history_past_its_horizon_moves_to_the_archive_and_the_money_stays() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64,
    );
    let retention = Retention { usage_days: Some(30), audit_days: Some(7), ..Retention::default() };
    let host = host(dir.path(), &clock, retention).unwrap();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
        fund(&host, agent, 1_000, 1_000_000_000, 1 << 20);
    }
    let id = upload(&host, "rust-echo", "echo", 3, ResourcePolicy::CallerPays, Limits::default());
    for i in 0..20 {
        assert!(host.invoke(Invocation::new("bob", &id, format!("call-{i}"))).unwrap().success);
    }
    let (bob, alice, stats) = (host.balances("bob").unwrap(), host.balances("alice").unwrap(), host.stats().unwrap());

    // Inside the horizons, nothing moves.
    let none = host.archive_history().unwrap();
    assert_eq!((none.usage.records, none.audit.entries), (0, 0));
    assert_eq!(host.usage_records(&UsageQuery::default()).unwrap().len(), 20);

    clock.advance(31 * DAY_MS);
    let report = host.archive_history().unwrap();
    assert_eq!(report.archive_dir, dir.path().join("archive"));
    // (The background mover may have taken some first.)
    let usage = lines(&dir.path().join("archive/usage"));
    assert_eq!(usage.len(), 20, "every record archived once");
    assert!(usage.iter().all(|l| l["caller"] == "bob" && l["price_paid"] == 3), "{usage:?}");
    assert!(host.usage_records(&UsageQuery::default()).unwrap().is_empty());
    // The newest audit entry stays, so the log's positions go on from it.
    let left = host.audit_log().unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    let archived_audit = lines(&dir.path().join("archive/audit"));
    let archived_max = archived_audit.iter().map(|l| l["seq"].as_i64().unwrap()).max().unwrap();
    assert!(left[0].seq > archived_max);

    // The money is where it was, and the totals still count every call.
    assert_eq!((host.balances("bob").unwrap(), host.balances("alice").unwrap()), (bob, alice));
    assert_eq!(host.stats().unwrap(), stats);
    assert_conserved(&host);
    let price = fuelhost_tests::archived_prices(&host);
    assert_eq!(price, 60, "the hour's summary carries every price paid");

    // Calls go on after the move, and their entries are numbered after
    // every archived one.
    assert!(host.invoke(Invocation::new("bob", &id, "after")).unwrap().success);
    assert!(host.audit_log().unwrap().iter().all(|e| e.seq > archived_max));
    assert_conserved(&host);
}

#[test]
fn a_horizon_that_would_forget_replays_at_once_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let err = host(dir.path(), &clock, Retention { usage_days: Some(0), ..Retention::default() }).err().unwrap();
    assert!(err.to_string().contains("usage_days must be at least 1"), "{err}");
    let err = host(dir.path(), &clock, Retention { every_minutes: 0, ..Retention::default() }).err().unwrap();
    assert!(err.to_string().contains("every_minutes"), "{err}");
}
