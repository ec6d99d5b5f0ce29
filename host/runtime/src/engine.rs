//! The wasmtime engines guests run on, and the epoch ticker that gives
//! invocations a deadline.
//!
//! One engine per [`Metering`] mode, alike but for what they compile into
//! the code: the pooling instance allocator (instantiation in
//! microseconds, a fixed number of slots), a bounded wasm stack. The fuel
//! engine compiles fuel checks, and epoch checks too unless
//! [`EngineSettings::deterministic_fuel`] is on; the CPU-time engine
//! compiles epoch checks only, and is built on first use, so a host whose
//! artifacts all meter fuel reserves one pool only. Policy plugins run on
//! an engine of their own, with fuel and epoch checks (their wall-clock
//! deadline), and a pool of their own: a host whose artifact slots are
//! all taken still decides policy, and plugins never take an artifact's
//! slot (see `crate::slots`).
//!
//! Component-model-async code (WASI 0.3 components, `async func`
//! exports) runs on engines of its own, alike but for their concurrency
//! support, built on first use: that support costs every store and
//! instance some setup (measured: raw instantiate + call 25% to 40% slower
//! on one thread), which components that do not use it should not pay.
//!
//! The pools are sized so that their component instances run out first:
//! every other pool total (core instances, memories, tables) is the
//! per-component maximum times the slots, so a call that holds a slot
//! always finds the rest.

use std::sync::{mpsc, Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::meter::Metering;

/// Engine settings an embedder may change. Every field documents its
/// default.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Guest instances (artifacts and policy plugins) that may be alive at
    /// once; the pooling allocator reserves this many slots. Default: 64.
    pub max_instances: u32,
    /// Largest linear memory any guest may have, in bytes; an artifact's
    /// own `limits.memory_bytes` is capped by it. Default: 1 GiB.
    pub max_memory_bytes: u64,
    /// Wasm stack per invocation, in bytes; deeper recursion ends the call
    /// with `stack_overflow`. Default: 512 KiB.
    pub max_wasm_stack: usize,
    /// How often the epoch advances: the granularity of timeouts.
    /// Default: 10 ms.
    pub epoch_tick: Duration,
    /// Run fuel-metered artifacts on fuel alone, without epoch checks.
    /// Default: false.
    ///
    /// Off, a fuel-metered run also stops on the wall clock: at its
    /// timeout, a task's cancel or a drain's deadline, at the next epoch
    /// tick. The epoch checks cost what wasmtime's fuel plus epoch costs
    /// over fuel alone (`docs/benchmarks.md`: x1.24 as a geometric mean of
    /// its kernels, x1.54 on call-heavy code).
    ///
    /// On, the run costs what wasmtime's bare fuel costs. Its compute is
    /// bounded by fuel alone: its timeout is counted in fuel at the cost
    /// model's rate (`timeout` / `picos_per_fuel`), so a run that makes no
    /// host call has the same outcome and bill on every host with the same
    /// cost model. The wall clock (timeout, cancel, drain) is still checked
    /// at every call into the host and return from it, which includes the
    /// bulk memory instructions and memory growth (one fuel each, however
    /// much they do), so a guest waiting in host calls or copying memory
    /// still ends at its timeout. CPU-time artifacts and policy plugins
    /// keep their epoch deadlines either way.
    pub deterministic_fuel: bool,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            max_instances: 64,
            max_memory_bytes: 1 << 30,
            max_wasm_stack: 512 << 10,
            epoch_tick: Duration::from_millis(10),
            deterministic_fuel: false,
        }
    }
}

/// The host's engines: the fuel one, the policy plugins' one, and the
/// CPU-time one and the concurrent ones once needed.
#[derive(Clone)]
pub struct Engines {
    fuel: Engine,
    policy: Engine,
    cpu_time: Arc<OnceLock<Engine>>,
    /// For component-model-async code: fuel, then CPU time.
    concurrent: Arc<[OnceLock<Engine>; 2]>,
    settings: EngineSettings,
}

impl Engines {
    /// Build the fuel and policy engines now; the CPU-time engine waits
    /// for its first artifact.
    pub fn new(settings: &EngineSettings) -> wasmtime::Result<Engines> {
        let fuel = build_engine(settings, Metering::Fuel)?;
        let interruptible = EngineSettings { deterministic_fuel: false, ..settings.clone() };
        let policy = build_engine(&interruptible, Metering::Fuel)?;
        Ok(Engines {
            fuel,
            policy,
            cpu_time: Arc::new(OnceLock::new()),
            concurrent: Arc::new([OnceLock::new(), OnceLock::new()]),
            settings: settings.clone(),
        })
    }

    /// The engine of artifacts metering fuel.
    pub fn fuel(&self) -> &Engine {
        &self.fuel
    }

    /// The engine of policy plugins: fuel and epoch checks.
    pub fn policy(&self) -> &Engine {
        &self.policy
    }

    /// The engine for artifacts metered by `metering`.
    pub fn get(&self, metering: Metering) -> wasmtime::Result<&Engine> {
        match metering {
            Metering::Fuel => Ok(&self.fuel),
            Metering::CpuTime => {
                if let Some(e) = self.cpu_time.get() {
                    return Ok(e);
                }
                let engine = build_engine(&self.settings, Metering::CpuTime)?;
                Ok(self.cpu_time.get_or_init(|| engine))
            }
        }
    }

    /// The engine for component-model-async artifacts metered by
    /// `metering`, built on first use.
    pub fn concurrent(&self, metering: Metering) -> wasmtime::Result<&Engine> {
        let cell = &self.concurrent[metering as usize];
        if let Some(e) = cell.get() {
            return Ok(e);
        }
        let engine = build_engine_for(&self.settings, metering, true)?;
        Ok(cell.get_or_init(|| engine))
    }

    /// The engine for component-model-async artifacts metered by
    /// `metering`, if one was built.
    pub fn concurrent_if_built(&self, metering: Metering) -> Option<&Engine> {
        self.concurrent[metering as usize].get()
    }

    /// Every engine built so far that has epoch checks.
    fn ticked(&self) -> impl Iterator<Item = &Engine> {
        let deterministic = self.settings.deterministic_fuel;
        let fuel = (!deterministic).then_some(&self.fuel);
        let concurrent_fuel = self.concurrent[Metering::Fuel as usize].get().filter(|_| !deterministic);
        let concurrent_cpu = self.concurrent[Metering::CpuTime as usize].get();
        fuel.into_iter().chain([&self.policy]).chain(self.cpu_time.get()).chain(concurrent_fuel).chain(concurrent_cpu)
    }
}

/// Build the engine for `settings` and `metering`.
pub fn build_engine(settings: &EngineSettings, metering: Metering) -> wasmtime::Result<Engine> {
    build_engine_for(settings, metering, false)
}

/// Build the engine for `settings` and `metering`, for component-model-async
/// code when `concurrent`.
pub fn build_engine_for(settings: &EngineSettings, metering: Metering, concurrent: bool) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let n = settings.max_instances.max(1);
    // A component built by componentize-py holds a dozen core instances,
    // several memories and a large function table: size slots for it.
    // Every total is the per-component maximum times the slots, so that
    // component instances run out first: a call holding a slot always
    // instantiates (reserved address space, not memory).
    const CORE_INSTANCES: u32 = 64;
    const MEMORIES: u32 = 8;
    const TABLES: u32 = 16;
    pool.total_component_instances(n)
        .total_core_instances(n * CORE_INSTANCES)
        .total_memories(n * MEMORIES)
        .total_tables(n * TABLES)
        .total_stacks(n)
        .max_core_instances_per_component(CORE_INSTANCES)
        .max_memories_per_component(MEMORIES)
        .max_tables_per_component(TABLES)
        .max_memory_size(settings.max_memory_bytes as usize)
        .table_elements(100_000)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        // Reset what a call dirtied by writing it back (up to 1 MiB of a
        // memory, 64 KiB of a table) instead of `madvise`, which makes the
        // kernel flush the TLBs of every other core and the next call fault
        // the pages back in. Where the kernel has `PAGEMAP_SCAN` (Linux
        // 6.7+), only the pages the call really touched are rewritten,
        // wherever they are (a Rust guest's stack sits at 1 MiB, its heap
        // above); without it only the lowest 64 KiB are, as a blind
        // `memset` of more costs more than it saves.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(if pagemap_scan_available() { 1 << 20 } else { 64 << 10 })
        .table_keep_resident(64 << 10);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(metering == Metering::Fuel)
        .epoch_interruption(metering == Metering::CpuTime || !settings.deterministic_fuel)
        .max_wasm_stack(settings.max_wasm_stack)
        .cranelift_opt_level(OptLevel::Speed)
        // WASI 0.3 and component-model-async components (async lifts,
        // streams, futures) on the concurrent engines; they are called
        // through `run_concurrent` (see `crate::concurrent`).
        .concurrency_support(concurrent)
        .wasm_component_model_async(concurrent)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Whether this kernel answers the `PAGEMAP_SCAN` ioctl (Linux 6.7+).
fn pagemap_scan_available() -> bool {
    PoolingAllocationConfig::is_pagemap_scan_available()
}

/// A thread that advances the engines' epochs every tick until dropped.
pub struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Start ticking `engines` every `tick` (an engine built later is
    /// ticked from its first tick on).
    pub fn start(engines: Engines, tick: Duration) -> EpochTicker {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fuelhost-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engines.ticked().for_each(Engine::increment_epoch);
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Epoch ticks for a deadline of `timeout`, at least one.
pub fn ticks_for(timeout: Duration, tick: Duration) -> u64 {
    let t = tick.as_nanos().max(1);
    (timeout.as_nanos().div_ceil(t) as u64).max(1)
}
