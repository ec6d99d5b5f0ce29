//! Metering overhead per kernel, every configuration side by side in one
//! run: native Rust, wasm with no metering, wasmtime's fuel, epoch
//! interruption, fuel plus epoch, and fuelhost invocations in its metering
//! modes (`fuel` on the default engine, with epoch checks for wall-clock
//! deadlines; `fuel` under deterministic fuel, on fuel alone; `cpu_time`;
//! each with its sandbox and ledger around the same guest). The kernels
//! are the crate `fuelhost-kernels`, natively and as the `rust-kernels`
//! guest; each is sized to run for 13 to 25 ms as wasm so that
//! instantiating and charging a call (about 0.06 ms) is under 0.5% of it.
//! Every wasm configuration uses the pooling allocator, as fuelhost does.
//!
//! After criterion's groups, each fuelhost mode is also run in pairs with
//! the wasmtime configuration that compiles the same checks (deterministic
//! fuel with `fuel`, default fuel with `fuel+epoch`, CPU time with
//! `epoch`): one run of each, alternately, so the machine's drift hits
//! both alike. The median of the per-pair ratios is printed and written to
//! `<target>/criterion/paired-kernels.json`, which `scripts/bench-report.py`
//! reads. A control pair, wasmtime's fuel against the same configuration
//! on a second engine, shows how far apart identical code reads here.
//!
//! Run: `scripts/setup.sh && cargo bench -p fuelhost --bench kernels`

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use fuelhost::loadgen::{prepare, CALLER};
use fuelhost::{Durability, Host, Invocation, Metering};

#[path = "common/raw_guest.rs"]
mod raw_guest;
use raw_guest::{Raw, RawMetering};

/// The kernels and the commands that size them.
fn kernels() -> Vec<(&'static str, String)> {
    let text: String =
        (0..300_000).map(|i| ["the ", "metered ", "agent ", "pays ", "fuel, ", "Fuel. "][i % 6]).collect();
    vec![
        ("hash", "hash 10000000".to_string()),
        ("fib", "fib 33".to_string()),
        ("mem", "mem 4194304 12".to_string()),
        ("words", format!("words {text}")),
    ]
}

/// A host with the guest uploaded (fuel and CPU-time) and a funded caller;
/// no fsync per commit so the ledger's share is its CPU, not the disk.
/// Calls get a fuel budget and a timeout no kernel comes near.
fn fuelhost(bytes: &[u8], deterministic_fuel: bool) -> (Host, [String; 2], std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("fuelhost-bench-kernels-{}-{deterministic_fuel}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let host = Host::builder()
        .data_dir(&dir)
        .durability(Durability::Process)
        .deterministic_fuel(deterministic_fuel)
        .build()
        .unwrap();
    let fuel = prepare(&host, "kernels-fuel", bytes, Metering::Fuel).unwrap();
    let cpu = prepare(&host, "kernels-cpu", bytes, Metering::CpuTime).unwrap();
    (host, [fuel, cpu], dir)
}

fn metering_overhead(c: &mut Criterion) {
    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    let Ok(bytes) = std::fs::read(format!("{guests}/rust-kernels.wasm")) else {
        eprintln!("skipping: the rust-kernels guest is not built (run scripts/setup.sh)");
        return;
    };
    let configs = [
        ("wasm", RawMetering { fuel: false, epoch: false, pooling: true }),
        ("fuel", RawMetering { fuel: true, epoch: false, pooling: true }),
        ("epoch", RawMetering { fuel: false, epoch: true, pooling: true }),
        ("fuel+epoch", RawMetering { fuel: true, epoch: true, pooling: true }),
    ];
    let raws: Vec<(&str, Raw)> = configs.iter().map(|(id, m)| (*id, Raw::new(&bytes, *m))).collect();
    let raw = |id: &str| &raws.iter().find(|(r, _)| *r == id).expect("a raw configuration").1;
    let mut paired = Vec::new();
    // The control pair: wasmtime's fuel against itself on a second engine
    // (the same code, loaded elsewhere): how far apart two identical
    // configurations read on this machine.
    let fuel_again = Raw::new(&bytes, configs[1].1);
    let (host, [fuel_artifact, cpu_artifact], dir) = fuelhost(&bytes, false);
    let (deterministic, [deterministic_artifact, _], deterministic_dir) = fuelhost(&bytes, true);
    for (kernel, command) in kernels() {
        let expected = fuelhost_kernels::run(&command).unwrap();
        let mut group = c.benchmark_group(format!("kernel_{kernel}"));
        group.sample_size(20).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
        group.bench_function("native", |b| b.iter(|| fuelhost_kernels::run(std::hint::black_box(&command))));
        for (id, raw) in &raws {
            assert_eq!(raw.run(&command), expected.as_bytes(), "{id} computes what native does");
            group.bench_function(*id, |b| b.iter(|| raw.run(&command)));
        }
        // Each fuelhost mode and the wasmtime configuration that compiles
        // the same checks into the code.
        let fuelhosts = [
            ("fuelhost-fuel", "fuel+epoch", &host, &fuel_artifact),
            ("fuelhost-fuel-deterministic", "fuel", &deterministic, &deterministic_artifact),
            ("fuelhost-cpu-time", "epoch", &host, &cpu_artifact),
        ];
        for (id, _, host, artifact) in fuelhosts {
            let report = host.invoke(Invocation::new(CALLER, artifact, command.as_str())).unwrap();
            assert_eq!(report.output, expected.as_bytes(), "{id} computes what native does");
            group.bench_function(id, |b| {
                b.iter(|| host.invoke(Invocation::new(CALLER, artifact, command.as_str())).unwrap())
            });
        }
        group.finish();

        let mut record = |id: &str, raw_id: &str, ratio: f64| {
            println!("paired {kernel}: {id} / {raw_id} = x{ratio:.3}");
            paired.push(format!(r#"{{"kernel":"{kernel}","fuelhost":"{id}","wasmtime":"{raw_id}","ratio":{ratio}}}"#));
        };
        record("fuel-again", "fuel", paired_ratio(|| raw("fuel").run(&command), || fuel_again.run(&command)));
        for (id, raw_id, host, artifact) in fuelhosts {
            let ratio = paired_ratio(
                || raw(raw_id).run(&command),
                || host.invoke(Invocation::new(CALLER, artifact, command.as_str())).unwrap(),
            );
            record(id, raw_id, ratio);
        }
    }
    let out = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("criterion/paired-kernels.json")));
    if let Some(out) = out {
        if let Err(e) = std::fs::write(&out, format!("[{}]\n", paired.join(",\n"))) {
            eprintln!("writing {}: {e}", out.display());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&deterministic_dir);
}

/// Rounds of the paired comparison.
const PAIRED_ROUNDS: usize = 41;

/// Run `wasmtime` and `fuelhost` alternately (the order flipping each
/// round) and return the median of fuelhost's time over wasmtime's.
fn paired_ratio<A, B>(wasmtime: impl Fn() -> A, fuelhost: impl Fn() -> B) -> f64 {
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64()
    };
    let (w, f) = (|| drop(std::hint::black_box(wasmtime())), || drop(std::hint::black_box(fuelhost())));
    w();
    f();
    let mut ratios: Vec<f64> = (0..PAIRED_ROUNDS)
        .map(|round| {
            let (tw, tf) = if round % 2 == 0 {
                let tw = time(&w);
                (tw, time(&f))
            } else {
                let tf = time(&f);
                (time(&w), tf)
            };
            tf / tw
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

criterion_group!(benches, metering_overhead);
criterion_main!(benches);
