//! Metering overhead per kernel, every configuration side by side in one
//! run: native Rust, wasm with no metering, wasmtime's fuel, epoch
//! interruption, fuel plus epoch, and fuelhost invocations in both its
//! metering modes (`fuel`, `cpu_time`; each with its sandbox and ledger
//! around the same guest). The kernels are the crate
//! `fuelhost-kernels`, natively and as the `rust-kernels` guest; each is
//! sized to run for milliseconds so instantiation is noise.
//!
//! Run: `scripts/setup.sh && cargo bench -p fuelhost --bench kernels`

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fuelhost::{Asset, Durability, Host, Invocation, Limits, Manifest, Metering, ResourcePolicy};
use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The kernels and the commands that size them.
fn kernels() -> Vec<(&'static str, String)> {
    let text: String = (0..6000).map(|i| ["the ", "metered ", "agent ", "pays ", "fuel, ", "Fuel. "][i % 6]).collect();
    vec![
        ("hash", "hash 3000000".to_string()),
        ("fib", "fib 27".to_string()),
        ("mem", "mem 4194304 4".to_string()),
        ("words", format!("words {text}")),
    ]
}

#[derive(Clone, Copy)]
struct RawMetering {
    fuel: bool,
    epoch: bool,
}

struct Ctx {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The guest on raw wasmtime with `metering`: WASI, and the fuelhost
/// imports as traps (the kernels never call them).
struct Raw {
    engine: Engine,
    pre: wasmtime::component::InstancePre<Ctx>,
    metering: RawMetering,
}

impl Raw {
    fn new(bytes: &[u8], metering: RawMetering) -> Raw {
        let mut config = Config::new();
        config.consume_fuel(metering.fuel).epoch_interruption(metering.epoch);
        let engine = Engine::new(&config).unwrap();
        let component = Component::new(&engine, bytes).unwrap();
        let mut linker = Linker::<Ctx>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        trap_fuelhost_imports(&engine, &component, &mut linker);
        let pre = linker.instantiate_pre(&component).unwrap();
        Raw { engine, pre, metering }
    }

    fn run(&self, command: &str) -> Vec<u8> {
        let ctx = Ctx { wasi: WasiCtx::builder().build(), table: ResourceTable::new() };
        let mut store = Store::new(&self.engine, ctx);
        if self.metering.fuel {
            store.set_fuel(u64::MAX / 2).unwrap();
        }
        if self.metering.epoch {
            store.set_epoch_deadline(u64::MAX / 2);
        }
        let instance = self.pre.instantiate(&mut store).unwrap();
        let run = instance.get_func(&mut store, "run").expect("the artifact exports `run`");
        let input = Val::List(command.bytes().map(Val::U8).collect());
        let mut out = [Val::Bool(false)];
        run.call(&mut store, &[input], &mut out).unwrap();
        match &out[0] {
            Val::Result(Ok(Some(v))) => match v.as_ref() {
                Val::List(bytes) => bytes.iter().map(|b| if let Val::U8(b) = b { *b } else { 0 }).collect(),
                other => panic!("unexpected output {other:?}"),
            },
            other => panic!("the kernel failed: {other:?}"),
        }
    }
}

/// Define every function of the guest's `fuelhost:host/*` imports as a
/// trap. (`define_unknown_imports_as_traps` would also shadow WASI
/// interfaces the linker serves under an older patch version.)
fn trap_fuelhost_imports(engine: &Engine, component: &Component, linker: &mut Linker<Ctx>) {
    use wasmtime::component::types::ComponentItem;
    for (name, item) in component.component_type().imports(engine) {
        let (true, ComponentItem::ComponentInstance(instance)) = (name.starts_with("fuelhost:host/"), item.ty) else {
            continue;
        };
        let mut inst = linker.instance(name).unwrap();
        for (func, item) in instance.exports(engine) {
            if let ComponentItem::ComponentFunc(_) = item.ty {
                inst.func_new(func, |_, _, _, _| Err(wasmtime::format_err!("not available in this benchmark")))
                    .unwrap();
            }
        }
    }
}

/// A host with the guest uploaded and a funded caller; no fsync per commit
/// so the ledger's share is its CPU, not the disk.
fn fuelhost(bytes: &[u8]) -> (Host, [String; 2], std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("fuelhost-bench-kernels-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let host = Host::builder().data_dir(&dir).durability(Durability::Process).build().unwrap();
    host.create_agent("alice").unwrap();
    host.create_agent("bob").unwrap();
    host.mint("s", "bob", Asset::Scrip, 1 << 40).unwrap();
    host.mint("f", "bob", Asset::Fuel, 1 << 60).unwrap();
    let manifest = |name: &str, metering| Manifest {
        owner: "alice".try_into().unwrap(),
        name: name.into(),
        version: "1".into(),
        price: 0,
        resource_policy: ResourcePolicy::CallerPays,
        description: String::new(),
        limits: Limits { fuel: 1 << 40, timeout_ms: 60_000, ..Limits::default() },
        metering,
    };
    let fuel = host.upload(manifest("kernels-fuel", Metering::Fuel), bytes).unwrap().id;
    let cpu = host.upload(manifest("kernels-cpu", Metering::CpuTime), bytes).unwrap().id;
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
        ("wasm", RawMetering { fuel: false, epoch: false }),
        ("fuel", RawMetering { fuel: true, epoch: false }),
        ("epoch", RawMetering { fuel: false, epoch: true }),
        ("fuel+epoch", RawMetering { fuel: true, epoch: true }),
    ];
    let raws: Vec<(&str, Raw)> = configs.iter().map(|(id, m)| (*id, Raw::new(&bytes, *m))).collect();
    let (host, [fuel_artifact, cpu_artifact], dir) = fuelhost(&bytes);
    for (kernel, command) in kernels() {
        let expected = fuelhost_kernels::run(&command).unwrap();
        let mut group = c.benchmark_group(format!("kernel_{kernel}"));
        group.sample_size(20).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
        group.bench_function("native", |b| b.iter(|| fuelhost_kernels::run(std::hint::black_box(&command))));
        for (id, raw) in &raws {
            assert_eq!(raw.run(&command), expected.as_bytes(), "{id} computes what native does");
            group.bench_function(*id, |b| b.iter(|| raw.run(&command)));
        }
        for (id, artifact) in [("fuelhost-fuel", &fuel_artifact), ("fuelhost-cpu-time", &cpu_artifact)] {
            let report = host.invoke(Invocation::new("bob", artifact, command.as_str())).unwrap();
            assert_eq!(report.output, expected.as_bytes(), "{id} computes what native does");
            group.bench_function(id, |b| {
                b.iter(|| host.invoke(Invocation::new("bob", artifact, command.as_str())).unwrap())
            });
        }
        group.finish();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, metering_overhead);
criterion_main!(benches);
