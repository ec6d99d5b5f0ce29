//! Throughput side by side in one run: the same Rust guest (`rust-kernels`
//! asked for `hash 1`, as in `invoke`'s `same_guest_hash_1` group) called
//! back to back by 1, 2 and 8 threads, on raw wasmtime (fuel and epoch, a
//! WASI context per call: the floor any host pays), once on wasmtime's
//! default pooling allocator and once on the engine fuelhost builds
//! (`fuelhost_runtime::build_engine`), and fully charged by fuelhost, with
//! and without an fsync per settlement. Prints calls per second and
//! latency percentiles per row, each row's share of raw wasmtime's
//! throughput on fuelhost's engine at the same thread count (the fair
//! floor: the same pools, resets and meters), and a second table with
//! each fuelhost row's per-call budget, stage by stage.
//!
//! Run: `scripts/setup.sh && cargo bench -p fuelhost --bench throughput`
//! (`FUELHOST_BENCH_SECONDS`, default 3, sets each row's duration).

use std::time::{Duration, Instant};

use fuelhost::loadgen::quantile;
use fuelhost::Durability;

#[path = "common/raw_guest.rs"]
mod raw_guest;
#[path = "common/table_bench.rs"]
mod table_bench;
use raw_guest::{Raw, RawMetering};

/// Every call's input: one round of the hash kernel.
const INPUT: &str = "hash 1";

/// One row of the table.
struct Row {
    name: String,
    threads: usize,
    per_second: f64,
    p50_us: f64,
    p99_us: f64,
    /// Where fuelhost's calls spent their time (none for raw rows).
    stages: Option<fuelhost::telemetry::StageBudget>,
}

/// The row that fuelhost's rows are compared with.
const FAIR_RAW: &str = "raw wasmtime, fuelhost's engine";

/// Raw wasmtime: `threads` threads calling `raw` for `duration`.
fn raw_row(name: &str, raw: &Raw, threads: usize, duration: Duration) -> Row {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut latencies: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut l = Vec::new();
                    while Instant::now() < deadline {
                        let call = Instant::now();
                        assert!(!raw.run(INPUT).is_empty());
                        l.push(call.elapsed().as_nanos() as u64);
                    }
                    l
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| quantile(&latencies, q) as f64 / 1000.0;
    Row {
        name: name.into(),
        threads,
        per_second: latencies.len() as f64 / seconds,
        p50_us: at(0.50),
        p99_us: at(0.99),
        stages: None,
    }
}

/// fuelhost: a fresh embedded host, `threads` threads invoking for
/// `duration`, every call charged.
fn fuelhost_row(guest: &[u8], durability: Durability, threads: usize, duration: Duration) -> Row {
    let report = table_bench::fuelhost_load("throughput", guest, INPUT, durability, threads, duration);
    let name = match durability {
        Durability::Full => "fuelhost, fsync per settlement",
        Durability::Process => "fuelhost, no fsync",
    };
    Row {
        name: name.into(),
        threads,
        per_second: report.per_second,
        p50_us: report.p50_us,
        p99_us: report.p99_us,
        stages: Some(report.stages),
    }
}

fn main() {
    if !table_bench::selected("throughput") {
        return;
    }
    let Some(guest) = table_bench::guest("rust-kernels", "throughput") else { return };
    let duration = table_bench::row_duration();
    let metering = RawMetering { fuel: true, epoch: true, pooling: true };
    let default_pool = Raw::new(&guest, metering);
    let engine = fuelhost_runtime::build_engine(&fuelhost::EngineSettings::default(), fuelhost_runtime::Metering::Fuel)
        .expect("fuelhost's engine builds");
    let fair = Raw::on(engine, &guest, metering);
    let mut rows = Vec::new();
    for threads in [1, 2, 8] {
        rows.push(raw_row("raw wasmtime, default pooling", &default_pool, threads, duration));
        rows.push(raw_row(FAIR_RAW, &fair, threads, duration));
        rows.push(fuelhost_row(&guest, Durability::Process, threads, duration));
        rows.push(fuelhost_row(&guest, Durability::Full, threads, duration));
    }
    println!("| configuration | threads | calls/s | p50 µs | p99 µs | of raw wasmtime's on fuelhost's engine |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for row in &rows {
        let raw = rows.iter().find(|r| r.name == FAIR_RAW && r.threads == row.threads).unwrap();
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0}% |",
            row.name,
            row.threads,
            row.per_second,
            row.p50_us,
            row.p99_us,
            100.0 * row.per_second / raw.per_second
        );
    }
    stage_table(&rows);
}

/// Each fuelhost row's per-call budget: mean µs per settled call in each
/// stage of the pipeline.
fn stage_table(rows: &[Row]) {
    use fuelhost::telemetry::Stage;
    println!();
    let names: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    println!("| per call, µs | threads | {} | total |", names.join(" | "));
    println!("| --- | --- |{} --- |", " --- |".repeat(names.len()));
    for row in rows {
        let Some(stages) = &row.stages else { continue };
        let cells: Vec<String> = Stage::ALL.iter().map(|&s| format!("{:.1}", stages.per_call_us(s))).collect();
        println!("| {} | {} | {} | {:.1} |", row.name, row.threads, cells.join(" | "), stages.total_per_call_us());
    }
}
