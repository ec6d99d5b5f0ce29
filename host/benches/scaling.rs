//! How calls scale from one thread to two (and more), one layer at a
//! time: raw wasmtime on its default pooling allocator, raw wasmtime on
//! the engine fuelhost builds (`fuelhost_runtime::build_engine`: the same
//! pools, resets and meters), and fuelhost without fsync, each row with
//! its calls per second and the ratio of N threads to one. The guest and
//! its input are the throughput bench's (`rust-kernels`, `hash 1`).
//!
//! Run: `cargo bench -p fuelhost --bench scaling` (`FUELHOST_BENCH_SECONDS`,
//! default 3, sets each row's duration; `FUELHOST_BENCH_THREADS`, default
//! `1,2`, the thread counts; `FUELHOST_SCALING_ROWS`, default
//! `default,engine,fuelhost`, which rows).

use std::time::{Duration, Instant};

use fuelhost::{Durability, EngineSettings};

#[path = "common/raw_guest.rs"]
mod raw_guest;
#[path = "common/table_bench.rs"]
mod table_bench;
use raw_guest::{Raw, RawMetering};

const INPUT: &str = "hash 1";

/// Calls per second of `threads` threads calling `raw` for `duration`.
fn raw_rate(raw: &Raw, threads: usize, duration: Duration) -> f64 {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let calls: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        assert!(!raw.run(INPUT).is_empty());
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    calls as f64 / started.elapsed().as_secs_f64()
}

/// Calls per second of a fresh embedded host without fsync.
fn fuelhost_rate(guest: &[u8], threads: usize, duration: Duration) -> f64 {
    table_bench::fuelhost_load("scaling", guest, INPUT, Durability::Process, threads, duration).per_second
}

fn main() {
    if !table_bench::selected("scaling") {
        return;
    }
    let Some(guest) = table_bench::guest("rust-kernels", "scaling") else { return };
    let duration = table_bench::row_duration();
    let threads: Vec<usize> = std::env::var("FUELHOST_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    let metering = RawMetering { fuel: true, epoch: true, pooling: true };
    let default_pool = Raw::new(&guest, metering);
    let engine = fuelhost_runtime_engine();
    let fuelhost_pool = Raw::on(engine, &guest, metering);
    println!("| configuration | threads | calls/s | of one thread's |");
    println!("| --- | --- | --- | --- |");
    let table = |name: &str, rate: &dyn Fn(usize) -> f64| {
        let one = rate(1);
        println!("| {name} | 1 | {one:.0} | 1.00 |");
        for &n in threads.iter().filter(|&&n| n != 1) {
            let r = rate(n);
            println!("| {name} | {n} | {r:.0} | {:.2} |", r / one);
        }
    };
    let rows = std::env::var("FUELHOST_SCALING_ROWS").unwrap_or_else(|_| "default,engine,fuelhost".into());
    if rows.contains("default") {
        table("raw wasmtime, default pooling", &|n| raw_rate(&default_pool, n, duration));
    }
    if rows.contains("engine") {
        table("raw wasmtime, fuelhost's engine", &|n| raw_rate(&fuelhost_pool, n, duration));
    }
    if rows.contains("fuelhost") {
        table("fuelhost, no fsync", &|n| fuelhost_rate(&guest, n, duration));
    }
}

/// The engine fuelhost builds for fuel-metered artifacts, with its
/// default settings.
fn fuelhost_runtime_engine() -> wasmtime::Engine {
    fuelhost_runtime::build_engine(&EngineSettings::default(), fuelhost_runtime::Metering::Fuel).unwrap()
}
