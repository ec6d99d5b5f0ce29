//! Calibration: how long a unit of fuel takes on this machine, measured on
//! a reference kernel. The cost model itself ([`CostModel`]) is the
//! ledger's.

use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use fuelhost_ledger::CostModel;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

/// What `calibrate` measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calibration {
    /// Measured CPU time per fuel unit, picoseconds.
    pub picos_per_fuel: u64,
    /// Fuel the reference kernel burned per run.
    pub fuel_per_run: u64,
    /// Best (least disturbed) wall time of one run, nanoseconds.
    pub best_run_ns: u64,
    /// Runs measured.
    pub runs: u32,
}

/// The reference kernel, a component exporting `spin: func(n: u32) -> u32`:
/// an FNV-style hash loop, a mix of arithmetic, locals and branches like
/// most guest code. The benchmarks measure fuel overhead on it too.
pub const REFERENCE_KERNEL: &str = r#"(component
    (core module $m
        (func (export "spin") (param $n i32) (result i32) (local $h i32)
            (local.set $h (i32.const 2166136261))
            (block $done (loop $next
                (br_if $done (i32.eqz (local.get $n)))
                (local.set $h (i32.mul (i32.xor (local.get $h) (local.get $n)) (i32.const 16777619)))
                (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                (br $next)))
            (local.get $h)))
    (core instance $i (instantiate $m))
    (func (export "spin") (param "n" u32) (result u32) (canon lift (core func $i "spin"))))"#;

/// Measure CPU time per fuel unit on this machine: run the reference
/// kernel `runs` times with fuel metering and keep the fastest run (the
/// one least disturbed by other load).
pub fn calibrate(runs: u32) -> wasmtime::Result<Calibration> {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config)?;
    let component = Component::new(&engine, REFERENCE_KERNEL)?;
    let pre = Linker::<()>::new(&engine).instantiate_pre(&component)?;
    let mut store = Store::new(&engine, ());
    store.set_fuel(u64::MAX / 2)?;
    let instance = pre.instantiate(&mut store)?;
    let spin = instance.get_typed_func::<(u32,), (u32,)>(&mut store, "spin")?;
    const ITERATIONS: u32 = 20_000_000;
    let mut best = u64::MAX;
    let mut fuel_per_run = 0;
    for _ in 0..runs.max(1) {
        let before = store.get_fuel()?;
        let started = Instant::now();
        spin.call(&mut store, (ITERATIONS,))?;
        let elapsed = started.elapsed().as_nanos() as u64;
        fuel_per_run = before - store.get_fuel()?;
        best = best.min(elapsed);
    }
    let picos_per_fuel = ((best as u128 * 1_000) / fuel_per_run.max(1) as u128).max(1) as u64;
    Ok(Calibration { picos_per_fuel, fuel_per_run, best_run_ns: best, runs: runs.max(1) })
}
