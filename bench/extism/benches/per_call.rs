//! One call of a trivial guest that echoes its input, side by side:
//!
//! - `wasmtime-instantiate-call`: raw wasmtime, a fresh store from the
//!   pooling allocator and a typed call of a trivial component (the floor);
//! - `extism-call`: an Extism plug-in created once, called again and again
//!   (Extism's usual use; the instance is reused between calls);
//! - `extism-instantiate-call`: a fresh Extism plug-in from its compiled
//!   form, then the call (isolation like fuelhost's fresh store per call);
//! - `fuelhost-invoke`: a fully charged fuelhost invocation of rust-echo
//!   (policy, reserve, run in a fresh sandbox, settle; commits reach the
//!   OS, no fsync).

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use extism::{CompiledPlugin, Manifest as ExtismManifest, Plugin, PluginBuilder, Wasm};
use fuelhost::loadgen::{prepare, CALLER};
use fuelhost::{Durability, Host, Invocation};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};

const TRIVIAL: &str = r#"(component
    (core module $m (func (export "f") (result i32) i32.const 42))
    (core instance $i (instantiate $m))
    (func (export "answer") (result u32) (canon lift (core func $i "f"))))"#;

fn per_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_call_trivial");

    let mut config = Config::new();
    config.consume_fuel(true).allocation_strategy(InstanceAllocationStrategy::pooling());
    let engine = Engine::new(&config).unwrap();
    let component = Component::new(&engine, TRIVIAL).unwrap();
    let pre = Linker::<()>::new(&engine).instantiate_pre(&component).unwrap();
    group.bench_function("wasmtime-instantiate-call", |b| {
        b.iter(|| {
            let mut store = Store::new(&engine, ());
            store.set_fuel(1_000_000).unwrap();
            let instance = pre.instantiate(&mut store).unwrap();
            let answer = instance.get_typed_func::<(), (u32,)>(&mut store, "answer").unwrap();
            answer.call(&mut store, ()).unwrap()
        })
    });

    let wasm = wat::parse_file(concat!(env!("CARGO_MANIFEST_DIR"), "/echo.wat")).unwrap();
    let manifest = ExtismManifest::new([Wasm::data(wasm)]);
    let mut plugin = Plugin::new(&manifest, [], false).unwrap();
    assert_eq!(plugin.call::<&[u8], Vec<u8>>("echo", b"x").unwrap(), b"x");
    group.bench_function("extism-call", |b| b.iter(|| plugin.call::<&[u8], Vec<u8>>("echo", b"x").unwrap()));
    let compiled = CompiledPlugin::new(PluginBuilder::new(manifest)).unwrap();
    group.bench_function("extism-instantiate-call", |b| {
        b.iter(|| {
            let mut plugin = Plugin::new_from_compiled(&compiled).unwrap();
            plugin.call::<&[u8], Vec<u8>>("echo", b"x").unwrap()
        })
    });

    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    let echo = std::fs::read(format!("{guests}/rust-echo.wasm")).expect("rust-echo is built (scripts/setup.sh)");
    let dir = std::env::temp_dir().join(format!("fuelhost-bench-extism-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let host = Host::builder().data_dir(&dir).durability(Durability::Process).build().unwrap();
    let artifact = prepare(&host, "echo", &echo, fuelhost::Metering::Fuel).unwrap();
    group.bench_function("fuelhost-invoke", |b| b.iter(|| host.invoke(Invocation::new(CALLER, &artifact, "x")).unwrap()));
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, per_call);
criterion_main!(benches);
