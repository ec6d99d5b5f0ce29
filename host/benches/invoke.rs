//! Instantiate + call, side by side in one run: raw wasmtime without fuel,
//! raw wasmtime with fuel, and a fully charged fuelhost invocation (policy
//! chain, reserve, run, settle on SQLite). Plus the cost of fuel metering
//! on a compute loop.
//!
//! Run: `scripts/setup.sh && cargo bench -p fuelhost --bench invoke`

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use fuelhost::loadgen::{prepare, CALLER};
use fuelhost::{Durability, Host, Invocation, Metering, REFERENCE_KERNEL};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};

#[path = "common/raw_guest.rs"]
mod raw_guest;
use raw_guest::{Raw, RawMetering};

/// A trivial component: `answer: func() -> u32`.
const TRIVIAL: &str = r#"(component
    (core module $m (func (export "f") (result i32) i32.const 42))
    (core instance $i (instantiate $m))
    (func (export "answer") (result u32) (canon lift (core func $i "f"))))"#;

fn engine(fuel: bool) -> Engine {
    let mut config = Config::new();
    config.consume_fuel(fuel).allocation_strategy(InstanceAllocationStrategy::pooling());
    Engine::new(&config).unwrap()
}

fn instantiate_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiate_call");
    for (id, fuel) in [("wasmtime-no-fuel", false), ("wasmtime-fuel", true)] {
        let engine = engine(fuel);
        let component = Component::new(&engine, TRIVIAL).unwrap();
        let pre = Linker::<()>::new(&engine).instantiate_pre(&component).unwrap();
        group.bench_function(id, |b| {
            b.iter(|| {
                let mut store = Store::new(&engine, ());
                if fuel {
                    store.set_fuel(1_000_000).unwrap();
                }
                let instance = pre.instantiate(&mut store).unwrap();
                let answer = instance.get_typed_func::<(), (u32,)>(&mut store, "answer").unwrap();
                answer.call(&mut store, ()).unwrap()
            })
        });
    }

    // A fully charged invocation of the Rust echo artifact, when the guests
    // are built (scripts/setup.sh).
    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    if let Ok(echo) = std::fs::read(format!("{guests}/rust-echo.wasm")) {
        for (id, durability) in [
            ("fuelhost-charged-invoke-fsync", Durability::Full),
            ("fuelhost-charged-invoke-no-fsync", Durability::Process),
        ] {
            let (host, artifact, dir) = charged_host(id, durability, &echo);
            group.bench_function(id, |b| b.iter(|| host.invoke(Invocation::new(CALLER, &artifact, "x")).unwrap()));
            let _ = std::fs::remove_dir_all(&dir);
        }
    } else {
        eprintln!("skipping the fuelhost invocations: guests not built (run scripts/setup.sh)");
    }
    group.finish();
}

/// A host in a fresh temporary directory with `component` uploaded and a
/// funded caller (`loadgen::prepare`); remove the directory when done.
fn charged_host(tag: &str, durability: Durability, component: &[u8]) -> (Host, String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("fuelhost-bench-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let host = Host::builder().data_dir(&dir).durability(durability).build().unwrap();
    let artifact = prepare(&host, "bench", component, Metering::Fuel).unwrap();
    (host, artifact, dir)
}

/// The same real guest (rust-kernels, asked for a trivial `hash 1`) on raw
/// wasmtime with the pooling allocator and fuel, and as a fully charged
/// fuelhost invocation: what fuelhost adds around one call.
fn same_guest(c: &mut Criterion) {
    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    let Ok(bytes) = std::fs::read(format!("{guests}/rust-kernels.wasm")) else {
        eprintln!("skipping the same-guest group: guests not built (run scripts/setup.sh)");
        return;
    };
    let mut group = c.benchmark_group("same_guest_hash_1");
    let raw = Raw::new(&bytes, RawMetering { fuel: true, epoch: true, pooling: true });
    group.bench_function("wasmtime-wasi-instantiate-call", |b| b.iter(|| raw.run("hash 1")));
    for (id, durability) in
        [("fuelhost-charged-fsync", Durability::Full), ("fuelhost-charged-no-fsync", Durability::Process)]
    {
        let (host, artifact, dir) = charged_host(id, durability, &bytes);
        group.bench_function(id, |b| b.iter(|| host.invoke(Invocation::new(CALLER, &artifact, "hash 1")).unwrap()));
        let _ = std::fs::remove_dir_all(&dir);
    }
    group.finish();
}

/// Fully charged invocations of rust-echo from 1, 2 and 8 threads at once
/// (fsync per commit): the time per invocation is wall time over all the
/// threads' calls, so its inverse is throughput.
fn charged_concurrent(c: &mut Criterion) {
    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    let Ok(echo) = std::fs::read(format!("{guests}/rust-echo.wasm")) else {
        eprintln!("skipping the concurrent group: guests not built (run scripts/setup.sh)");
        return;
    };
    let mut group = c.benchmark_group("charged_concurrent_fsync");
    group.sample_size(20);
    let (host, artifact, dir) = charged_host("concurrent", Durability::Full, &echo);
    for threads in [1u64, 2, 8] {
        group.bench_function(format!("threads-{threads}"), |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(threads);
                let started = std::time::Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..threads {
                        scope.spawn(|| {
                            for _ in 0..per_thread {
                                host.invoke(Invocation::new(CALLER, &artifact, "x")).unwrap();
                            }
                        });
                    }
                });
                started.elapsed().mul_f64(iters as f64 / (per_thread * threads) as f64)
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn fuel_metering(c: &mut Criterion) {
    let mut group = c.benchmark_group("fuel_metering_spin_100k");
    for (id, fuel) in [("no-fuel", false), ("fuel", true)] {
        let engine = engine(fuel);
        let component = Component::new(&engine, REFERENCE_KERNEL).unwrap();
        let pre = Linker::<()>::new(&engine).instantiate_pre(&component).unwrap();
        let mut store = Store::new(&engine, ());
        if fuel {
            store.set_fuel(u64::MAX / 2).unwrap();
        }
        let instance = pre.instantiate(&mut store).unwrap();
        let spin = instance.get_typed_func::<(u32,), (u32,)>(&mut store, "spin").unwrap();
        group.bench_function(id, |b| b.iter(|| spin.call(&mut store, (100_000,)).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, instantiate_call, same_guest, charged_concurrent, fuel_metering);
criterion_main!(benches);
