//! What a call costs to keep, in memory and on disk.
//!
//! **Memory per call in flight**: the resident set (RSS) of a host with 1, 64
//! and 256 calls running at once, each a guest sleeping in a host wait
//! (`rust-hostile`, `sleep:MS`), against the same number of threads
//! sleeping without a call; and what the pooling allocator reserves.
//!
//! The host is built with 300 instance slots and no per-agent cap below
//! them. Each row starts N threads that invoke at once, samples the
//! process's RSS (`/proc/self/status`) halfway through their sleep, and
//! subtracts the RSS of N threads that only sleep: what is left is the
//! calls' own memory (the store, the instance and its pool slot's touched
//! pages, the WASI context, the call's ledger state, the invoking thread's
//! stack beyond an idle one's), divided by N.
//!
//! **Bytes per call**: the database file's growth over 20,000 settled calls
//! of the same guest (`echo:ok`, two bytes of output), after the host
//! closed (the settlement journal projected, the WAL checkpointed), and
//! each table's and index's share (SQLite's `dbstat`).
//!
//! Run: `cargo bench -p fuelhost --bench footprint` (`FUELHOST_MEMORY_CALLS`,
//! default `1,64,256`, the memory rows; `FUELHOST_DISK_CALLS`, default
//! 20,000, the calls the disk is measured over).

use std::time::Duration;

use fuelhost::loadgen::{prepare, CALLER};
use fuelhost::{Durability, Host, HostLimits, Invocation, Metering};

#[path = "common/table_bench.rs"]
mod table_bench;

/// How long each call sleeps; RSS is sampled halfway.
const SLEEP: Duration = Duration::from_millis(1_500);

/// Instance slots of the host measured.
const SLOTS: u32 = 300;

/// A field of `/proc/self/status` (`VmRSS`, `VmSize`), in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// RSS, KiB, sampled halfway through `n` threads each running `work`.
fn rss_while(n: usize, work: &(dyn Fn() + Sync)) -> u64 {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|_| s.spawn(work)).collect();
        std::thread::sleep(SLEEP / 2);
        let rss = status_kib("VmRSS");
        for h in handles {
            h.join().expect("a call failed");
        }
        rss
    })
}

fn main() {
    if !table_bench::selected("footprint") {
        return;
    }
    let Some(guest) = table_bench::guest("rust-hostile", "footprint") else { return };
    memory_per_call(&guest);
    bytes_per_call(&guest);
}

/// The memory table.
fn memory_per_call(guest: &[u8]) {
    let rows: Vec<usize> = std::env::var("FUELHOST_MEMORY_CALLS")
        .unwrap_or_else(|_| "1,64,256".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let dir = std::env::temp_dir().join(format!("fuelhost-memory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (rss_before, size_before) = (status_kib("VmRSS"), status_kib("VmSize"));
    let host = Host::builder()
        .data_dir(&dir)
        .durability(Durability::Process)
        .max_instances(SLOTS)
        .limits(HostLimits { max_calls_per_agent: SLOTS, ..HostLimits::default() })
        .build()
        .unwrap();
    let artifact = prepare(&host, "sleeper", guest, Metering::Fuel).unwrap();
    let input = format!("sleep:{}", SLEEP.as_millis()).into_bytes();
    // One call first, so the code is mapped and the ledger warm.
    host.invoke(Invocation::new(CALLER, artifact.clone(), input.clone())).unwrap();
    let (rss_idle, size_idle) = (status_kib("VmRSS"), status_kib("VmSize"));
    println!(
        "host with {SLOTS} slots, idle: RSS {:.1} MiB (+{:.1} MiB for the host), virtual {:.1} GiB \
         (+{:.1} GiB reserved by the host, mostly the pooling allocator's slots)",
        rss_idle as f64 / 1024.0,
        (rss_idle.saturating_sub(rss_before)) as f64 / 1024.0,
        size_idle as f64 / (1024.0 * 1024.0),
        (size_idle.saturating_sub(size_before)) as f64 / (1024.0 * 1024.0),
    );
    println!();
    println!("| calls in flight | RSS MiB | RSS of as many idle threads, MiB | per call, KiB |");
    println!("| --- | --- | --- | --- |");
    for n in rows {
        let idle = rss_while(n, &|| std::thread::sleep(SLEEP));
        let calls = rss_while(n, &|| {
            let report = host.invoke(Invocation::new(CALLER, artifact.clone(), input.clone())).unwrap();
            assert!(report.success, "{:?}", report.error);
        });
        println!(
            "| {n} | {:.1} | {:.1} | {:.0} |",
            calls as f64 / 1024.0,
            idle as f64 / 1024.0,
            calls.saturating_sub(idle) as f64 / n as f64
        );
    }
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The disk table: bytes per settled call, and where they are.
fn bytes_per_call(guest: &[u8]) {
    let calls: u64 = std::env::var("FUELHOST_DISK_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dir = std::env::temp_dir().join(format!("fuelhost-disk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("fuelhost.db");
    let host = Host::builder().data_dir(&dir).durability(Durability::Process).build().unwrap();
    let artifact = prepare(&host, "echo", guest, Metering::Fuel).unwrap();
    drop(host);
    let before = pages_by_table(&db);
    let host = Host::builder().data_dir(&dir).durability(Durability::Process).build().unwrap();
    for _ in 0..calls {
        let report = host.invoke(Invocation::new(CALLER, artifact.clone(), b"echo:ok".to_vec())).unwrap();
        assert!(report.success, "{:?}", report.error);
    }
    drop(host);
    let after = pages_by_table(&db);
    let total = |m: &std::collections::BTreeMap<String, u64>| m.values().sum::<u64>();
    println!();
    println!(
        "{calls} calls grew the database by {:.1} MiB: {:.0} bytes per call",
        (total(&after) - total(&before)) as f64 / (1 << 20) as f64,
        (total(&after) - total(&before)) as f64 / calls as f64
    );
    println!();
    println!("| table or index | bytes per call |");
    println!("| --- | --- |");
    let mut grown: Vec<(String, u64)> =
        after.iter().map(|(name, b)| (name.clone(), b.saturating_sub(*before.get(name).unwrap_or(&0)))).collect();
    grown.sort_by_key(|g| std::cmp::Reverse(g.1));
    for (name, bytes) in grown.into_iter().filter(|(_, b)| *b as f64 / calls as f64 >= 0.5) {
        println!("| {name} | {:.0} |", bytes as f64 / calls as f64);
    }
    archived(&dir, calls, total(&before));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same database a month on, with a 30-day horizon: how fast the
/// calls' history moves to the archive, what stays in the database, and
/// what the archive holds per call.
fn archived(dir: &std::path::Path, calls: u64, empty: u64) {
    let month_on = fuelhost::ManualClock::new(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
            + 31 * 86_400_000,
    );
    let retention = fuelhost::Retention { usage_days: Some(30), audit_days: Some(30), ..Default::default() };
    let host = Host::builder()
        .data_dir(dir)
        .durability(Durability::Process)
        .clock(std::sync::Arc::new(month_on))
        .retention(retention)
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let report = host.archive_history().unwrap();
    let took = started.elapsed();
    drop(host);
    // The background mover may have taken some before the call above.
    let kept = pages_by_table(&dir.join("fuelhost.db")).values().sum::<u64>();
    let archive_bytes: u64 = ["usage", "audit"]
        .iter()
        .filter_map(|k| std::fs::read_dir(dir.join("archive").join(k)).ok())
        .flatten()
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum();
    println!();
    println!(
        "Archived a month on (30-day horizon): {} records and {} audit entries in {:.2} s ({:.0} records/s); \
         the tables hold {:.1} KiB more than before the calls (summaries and totals; the pages freed stay in the \
         file for new rows), the archive files {:.0} bytes per call",
        report.usage.records,
        report.audit.entries,
        took.as_secs_f64(),
        report.usage.records as f64 / took.as_secs_f64(),
        (kept as f64 - empty as f64) / 1024.0,
        archive_bytes as f64 / calls as f64,
    );
}

/// Bytes of pages each table and index of the closed database `db` holds
/// (its WAL checkpointed into it first).
fn pages_by_table(db: &std::path::Path) -> std::collections::BTreeMap<String, u64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    let mut stmt = conn.prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}
