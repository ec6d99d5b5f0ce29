//! Charged calls per second on the PostgreSQL ledger, beside the SQLite
//! ledger, measured in one run: each call one `reserve` and one `settle`
//! (price, fuel, the usage record), the ledger's whole share of a call.
//! Rows: SQLite (fsync), then PostgreSQL with 1, 2 and 4 hosts (each host
//! its own pool and thread), first each host's calls paid by its own
//! payer, then every host's by one payer (the rows all hosts lock);
//! against a durable server (every commit fsynced) and one without fsync.
//!
//! Run: `cargo bench -p fuelhost-postgres --bench calls`
//! (`FUELHOST_BENCH_SECONDS`, default 3, each row's duration).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fuelhost_ledger::{
    AgentId, Asset, Ledger, Outcome, Reservation, ResourcePolicy, ResourcesConsumed, Settlement, Transfer,
};
use fuelhost_postgres::{PgLedger, ScratchServer};
use fuelhost_sqlite::{Durability, SqliteLedger};

fn id(a: &str) -> AgentId {
    AgentId::new(a).unwrap()
}

/// One charged call's ledger work: reserve, then settle a success.
fn call(ledger: &dyn Ledger, inv: &str, payer: &str) {
    let r = Reservation {
        invocation_id: inv.into(),
        artifact: "owner/echo@1".into(),
        resource_policy: ResourcePolicy::CallerPays,
        caller: id(payer),
        owner: id("owner"),
        payer: id(payer),
        price: 1,
        fuel_limit: 100_000,
        sponsor_grant: None,
        fresh_id: true,
    };
    ledger.reserve(&r).unwrap();
    let s = Settlement {
        invocation_id: r.invocation_id.clone(),
        artifact: r.artifact.clone(),
        caller: r.caller.clone(),
        owner: r.owner.clone(),
        payer: r.payer.clone(),
        resource_policy: r.resource_policy,
        outcome: Outcome::Success,
        consumed: ResourcesConsumed { fuel: 23_837, memory_peak_bytes: 1 << 20, ..Default::default() },
        output: b"ok".to_vec(),
        error: None,
        cost_model: Default::default(),
        admission: None,
    };
    ledger.settle(&s).unwrap();
}

fn fund(ledger: &dyn Ledger, agents: &[String]) {
    for agent in agents.iter().map(String::as_str).chain(["owner"]) {
        let _ = ledger.open_account(&id(agent));
        let _ = ledger.post_one(Transfer::mint(&format!("s-{agent}"), &id(agent), Asset::Scrip, 1 << 40));
        let _ = ledger.post_one(Transfer::mint(&format!("f-{agent}"), &id(agent), Asset::Fuel, 1 << 60));
    }
}

/// Calls per second of one thread per ledger in `hosts`, host `h` paying
/// with `payer(h)`.
fn rate<L: Ledger + Sync>(hosts: &[L], payer: impl Fn(usize) -> String + Sync, duration: Duration, tag: &str) -> f64 {
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for (h, ledger) in hosts.iter().enumerate() {
            let (done, payer) = (&done, &payer);
            s.spawn(move || {
                let payer = payer(h);
                let mut n = 0u64;
                while started.elapsed() < duration {
                    call(ledger, &format!("{tag}-{h}-{n}"), &payer);
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    done.into_inner() as f64 / started.elapsed().as_secs_f64()
}

fn row(what: &str, rate: f64, base: f64) {
    println!("{what:<52} {rate:>10.0} {:>8.2}", rate / base);
}

fn main() {
    let seconds = std::env::var("FUELHOST_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let duration = Duration::from_secs(seconds);
    let payers: Vec<String> = (0..4).map(|h| format!("payer{h}")).collect();
    println!("{:<52} {:>10} {:>8}", "ledger", "calls/s", "ratio");

    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteLedger::open(&dir.path().join("bench.db"), Durability::Full).unwrap();
    fund(&sqlite, &payers);
    let base = rate(std::slice::from_ref(&sqlite), |_| "payer0".into(), duration, "sqlite");
    row("SQLite, fsync, 1 thread", base, base);

    for durable in [true, false] {
        let server = ScratchServer::start_with(durable).unwrap();
        let url = server.fresh_database("bench").unwrap();
        fund(&PgLedger::open(&url, 2).unwrap(), &payers);
        let fsync = if durable { "fsync" } else { "no fsync" };
        for hosts in [1, 2, 4] {
            let ledgers: Vec<PgLedger> = (0..hosts).map(|_| PgLedger::open(&url, 2).unwrap()).collect();
            let own = rate(&ledgers, |h| format!("payer{h}"), duration, &format!("own-{durable}-{hosts}"));
            row(&format!("PostgreSQL, {fsync}, {hosts} host(s), a payer each"), own, base);
            if hosts > 1 {
                let one = rate(&ledgers, |_| "payer0".into(), duration, &format!("one-{durable}-{hosts}"));
                row(&format!("PostgreSQL, {fsync}, {hosts} hosts, one payer"), one, base);
            }
        }
    }
}
