//! Settlement throughput on SQLite (fsync per commit), with and without
//! group commit, from one thread and from eight. Each iteration settles one
//! invocation reserved beforehand (reserving is not timed), so the time per
//! iteration is the cost of a settlement and its commit; throughput is its
//! inverse.
//!
//! Run: `cargo bench -p fuelhost --bench ledger`

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use fuelhost::{
    AgentId, Asset, CostModel, Durability, Ledger, Outcome, Reservation, ResourcePolicy, ResourcesConsumed, Settlement,
    SqliteLedger,
};

fn ledger(dir: &std::path::Path, group_commit: bool) -> SqliteLedger {
    let ledger = SqliteLedger::open(&dir.join("ledger.db"), Durability::Full).unwrap().group_commit(group_commit);
    for agent in ["alice", "bob"] {
        ledger.open_account(&AgentId::new(agent).unwrap()).unwrap();
    }
    let bob = AgentId::new("bob").unwrap();
    ledger.post_one(fuelhost_ledger::Transfer::mint("scrip", &bob, Asset::Scrip, 1 << 50)).unwrap();
    ledger.post_one(fuelhost_ledger::Transfer::mint("fuel", &bob, Asset::Fuel, 1 << 60)).unwrap();
    ledger
}

fn reservation(id: &str) -> Reservation {
    Reservation {
        invocation_id: id.to_string(),
        artifact: "alice/echo@1".into(),
        resource_policy: ResourcePolicy::CallerPays,
        caller: AgentId::new("bob").unwrap(),
        owner: AgentId::new("alice").unwrap(),
        payer: AgentId::new("bob").unwrap(),
        price: 1,
        fuel_limit: 100_000,
        sponsor_grant: None,
        fresh_id: false,
    }
}

fn settlement(id: &str) -> Settlement {
    let r = reservation(id);
    Settlement {
        invocation_id: r.invocation_id,
        artifact: r.artifact,
        caller: r.caller,
        owner: r.owner,
        payer: r.payer,
        resource_policy: r.resource_policy,
        outcome: Outcome::Success,
        consumed: ResourcesConsumed { fuel: 3_500, ..ResourcesConsumed::default() },
        output: b"ok".to_vec(),
        error: None,
        cost_model: CostModel::default(),
        admission: None,
    }
}

fn settle_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("settle");
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    for (id, threads, group_commit) in [
        ("1-thread-no-group-commit", 1, false),
        ("1-thread-group-commit", 1, true),
        ("8-threads-no-group-commit", 8, false),
        ("8-threads-group-commit", 8, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(dir.path(), group_commit);
        let mut round = 0u64;
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                round += 1;
                let ids: Vec<String> = (0..iters).map(|i| format!("r{round}-{i}")).collect();
                for id in &ids {
                    ledger.reserve(&reservation(id)).unwrap();
                }
                let started = Instant::now();
                std::thread::scope(|s| {
                    for chunk in ids.chunks(ids.len().div_ceil(threads).max(1)) {
                        let ledger = &ledger;
                        s.spawn(move || {
                            for id in chunk {
                                ledger.settle(&settlement(id)).unwrap();
                            }
                        });
                    }
                });
                started.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, settle_throughput);
criterion_main!(benches);
