//! No request stalls the others: on a ledger of a million usage records
//! (and their audit rows), invocation throughput and p99 are measured
//! alone, then again, in the same run, while a reader thread asks without
//! pause (a round every 50 ms) for readiness, an agent's usage, its
//! transfers, its audit entries, the top consumers, the statistics and an
//! agent's health.
//!
//! Then agent creation over the API (an agent and its key), timed for a
//! thousand agents on a fresh host and again after a hundred thousand.
//!
//! Run: `scripts/setup.sh && cargo bench -p fuelhost-server --bench contention`
//! (`FUELHOST_BENCH_RECORDS`, default 1,000,000; `FUELHOST_BENCH_SECONDS`,
//! default 5 per phase).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fuelhost::loadgen::{prepare, run, LoadConfig, LoadReport, CALLER, OWNER};
use fuelhost::{AuditQuery, Durability, Host, Metering, TransferQuery, UsageQuery};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Add `n` settled calls (usage records and their audit rows) straight to
/// the database of a closed host: a ledger as a busy year leaves it.
fn generate(db: &std::path::Path, n: u64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; BEGIN;").unwrap();
    let start: i64 = conn.query_row("SELECT COALESCE(MAX(rowid), 0) + 1 FROM usage_records", [], |r| r.get(0)).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    {
        let mut usage = conn
            .prepare(
                "INSERT INTO usage_records (invocation_id, artifact, caller, owner, charged_to, resource_policy,
                    outcome, fuel, memory_peak_bytes, disk_bytes, wall_time_ns, cpu_time_ns, price_paid,
                    cost_usd_micros, output, error, settled_ms, rowid, postings)
                 VALUES (?1, 'owner/old@1', ?2, 'owner', ?2, 'caller_pays', 'success', 1000, 65536, 0, 50000, 0, 1,
                    0, x'6f6b', NULL, ?3, ?4, 0)",
            )
            .unwrap();
        let mut audit = conn
            .prepare(
                "INSERT INTO audit (at_ms, invocation, kind, subject, target, decision, decided_by, reason, latency_us)
                 VALUES (?1, ?2, 'invoke', ?3, 'owner/old@1', 'allow', NULL, NULL, 3)",
            )
            .unwrap();
        for i in 0..n {
            // A thousand agents share the history; the benchmark's caller
            // has its share of it.
            let agent = if i % 1000 == 0 { CALLER.to_string() } else { format!("agent-{}", i % 1000) };
            let id = format!("old-{i}");
            let at = now - (n - i) as i64;
            usage.execute(rusqlite::params![id, agent, at, start + i as i64]).unwrap();
            audit.execute(rusqlite::params![at, id, agent]).unwrap();
        }
    }
    // The counters are filled from the records at the next open.
    conn.execute_batch("COMMIT; PRAGMA user_version = 0;").unwrap();
}

/// The reads of one round, in order.
const READS: [&str; 7] = [
    "readiness",
    "the caller's usage, 100",
    "the caller's transfers, 100",
    "the caller's audit entries, 100",
    "top consumers, 10",
    "statistics",
    "an agent's health",
];

/// How often the reader makes its round.
const READ_EVERY: Duration = Duration::from_millis(50);

fn line(label: &str, r: &LoadReport) -> String {
    format!("{label:<34} {:>10.0} {:>9.0} {:>9.0}", r.per_second, r.p50_us, r.p99_us)
}

fn main() {
    let records = env("FUELHOST_BENCH_RECORDS", 1_000_000);
    let seconds = env("FUELHOST_BENCH_SECONDS", 5);
    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    let Ok(echo) = std::fs::read(format!("{guests}/rust-echo.wasm")) else {
        eprintln!("contention: rust-echo.wasm is missing from {guests}: run scripts/setup.sh");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let open = || Host::builder().data_dir(dir.path()).durability(Durability::Process).build().unwrap();
    let artifact = {
        let host = open();
        prepare(&host, "echo", &echo, Metering::Fuel).unwrap()
    };
    let started = Instant::now();
    generate(&dir.path().join("fuelhost.db"), records);
    let generated = started.elapsed();
    let started = Instant::now();
    let host = open();
    let reopened = started.elapsed();
    println!(
        "ledger: {records} usage records and audit rows generated in {:.1} s; host reopened in {:.1} s \
         (counters filled from the records once)\n",
        generated.as_secs_f64(),
        reopened.as_secs_f64()
    );
    let config = LoadConfig {
        caller: CALLER.into(),
        artifact,
        input: b"hello".to_vec(),
        threads: 2,
        duration: Duration::from_secs(seconds),
    };
    let alone = run(&host, &config);
    let stop = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    // The slowest of each read, microseconds.
    let slowest: [AtomicU64; READS.len()] = Default::default();
    let busy = std::thread::scope(|scope| {
        scope.spawn(|| {
            let caller = CALLER.try_into().ok();
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                for (i, slot) in slowest.iter().enumerate() {
                    let t = Instant::now();
                    match i {
                        0 => host.readiness().unwrap(),
                        1 => drop(
                            host.usage_records(&UsageQuery {
                                agent: caller.clone(),
                                limit: Some(100),
                                ..Default::default()
                            })
                            .unwrap(),
                        ),
                        2 => drop(
                            host.ledger()
                                .transfer_listing(&TransferQuery {
                                    agent: caller.clone(),
                                    limit: Some(100),
                                    ..Default::default()
                                })
                                .unwrap(),
                        ),
                        3 => drop(
                            host.query_audit(&AuditQuery {
                                subject: Some(CALLER.into()),
                                limit: Some(100),
                                ..Default::default()
                            })
                            .unwrap(),
                        ),
                        4 => drop(host.top_consumers(None, None, 10).unwrap()),
                        5 => drop(host.stats().unwrap()),
                        _ => drop(host.agent_health(OWNER)),
                    }
                    slot.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
                reads.fetch_add(1, Ordering::Relaxed);
                // Paced as a busy operator's dashboard and probes would be.
                next += READ_EVERY;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        let busy = run(&host, &config);
        stop.store(true, Ordering::Relaxed);
        busy
    });
    let reads = reads.load(Ordering::Relaxed);
    println!("{:<34} {:>10} {:>9} {:>9}", "invocations, 2 threads", "calls/s", "p50 µs", "p99 µs");
    println!("{}", line("alone", &alone));
    println!("{}", line("beside the reader", &busy));
    println!(
        "\nthroughput x{:.2}, p99 x{:.2} beside the reader, which made {reads} rounds of {} reads, one round every \
         {} ms; the slowest of each read:",
        busy.per_second / alone.per_second,
        busy.p99_us / alone.p99_us.max(1.0),
        READS.len(),
        READ_EVERY.as_millis()
    );
    for (name, slot) in READS.iter().zip(&slowest) {
        println!("  {name:<40} {:>8} µs", slot.load(Ordering::Relaxed));
    }
    agent_creation(env("FUELHOST_BENCH_AGENTS", 100_000));
}

/// Agents (and their first keys) created per second through the API: the
/// first thousand, then a thousand more after `many`.
fn agent_creation(many: u64) {
    use tower::ServiceExt;
    let dir = tempfile::tempdir().unwrap();
    let host = Host::builder().data_dir(dir.path()).durability(Durability::Process).build().unwrap();
    let state = fuelhost_server::ApiState::new(host);
    let admin = state.bootstrap_admin_key().unwrap().unwrap();
    let router = fuelhost_server::router(state, &fuelhost_server::ApiConfig::default());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut made = 0u64;
    let mut create = |n: u64| -> f64 {
        let started = Instant::now();
        for _ in 0..n {
            let body = format!("{{\"id\": \"a{made}\"}}");
            made += 1;
            let req = axum::http::Request::post("/v1/agents")
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            let res = runtime.block_on(router.clone().oneshot(req)).unwrap();
            assert_eq!(res.status(), 201);
        }
        n as f64 / started.elapsed().as_secs_f64()
    };
    let first = create(1_000);
    create(many);
    let later = create(1_000);
    println!(
        "\nagents created over the API: {first:.0}/s for the first thousand, {later:.0}/s for a thousand after \
         {many} more (x{:.2})",
        later / first
    );
}
