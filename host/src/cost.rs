//! The cost model: how fuel becomes CPU time, and resources become money
//! where an allocation has a money budget. Integers throughout.
//!
//! - **CPU time** = fuel x `picos_per_fuel` / 1000 (nanoseconds). The rate
//!   depends on the machine: `fuelhost calibrate` measures it on a
//!   reference kernel and stores it with the host's data, where a host
//!   opening that data finds it. Until calibrated, 1 ns per fuel unit.
//! - **Money** (micro-USD) = CPU seconds x `usd_micros_per_cpu_second`,
//!   plus MiB of disk growth x `usd_micros_per_disk_mib`, rounded up so
//!   that a call that burned anything is never free. Both prices default
//!   to 0: money is charged only where the operator sets a price.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

/// Prices and rates of the cost model. Every field documents its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostModel {
    /// CPU time per fuel unit, picoseconds. Default: 1,000 (1 ns), until
    /// `fuelhost calibrate` measures this machine.
    pub picos_per_fuel: u64,
    /// Price of one CPU second, micro-USD. Default: 0.
    pub usd_micros_per_cpu_second: u64,
    /// Price of one MiB of disk growth, micro-USD. Default: 0.
    pub usd_micros_per_disk_mib: u64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel { picos_per_fuel: 1_000, usd_micros_per_cpu_second: 0, usd_micros_per_disk_mib: 0 }
    }
}

impl CostModel {
    /// CPU time of `fuel` units, nanoseconds.
    pub fn cpu_time_ns(&self, fuel: u64) -> u64 {
        ((fuel as u128 * self.picos_per_fuel as u128) / 1_000).min(u64::MAX as u128) as u64
    }

    /// Fuel that takes `time` of CPU, rounded down: how a deterministic
    /// fuel run counts its timeout.
    pub fn fuel_for(&self, time: std::time::Duration) -> u64 {
        (time.as_nanos().saturating_mul(1_000) / self.picos_per_fuel.max(1) as u128).min(u64::MAX as u128) as u64
    }

    /// Money cost of `fuel` and `disk_bytes`, micro-USD, rounded up.
    pub fn cost_usd_micros(&self, fuel: u64, disk_bytes: u64) -> u64 {
        let cpu = self.cpu_time_ns(fuel) as u128 * self.usd_micros_per_cpu_second as u128;
        let disk = disk_bytes as u128 * self.usd_micros_per_disk_mib as u128;
        let total = cpu.div_ceil(1_000_000_000) + disk.div_ceil(1 << 20);
        total.min(u64::MAX as u128) as u64
    }
}

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
