//! The wasmtime engine every guest runs on, and the epoch ticker that gives
//! invocations a wall-clock deadline.
//!
//! One [`Engine`] per host: fuel metering and epoch interruption on, the
//! pooling instance allocator (instantiation in microseconds, a fixed
//! number of slots), a bounded wasm stack.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

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
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            max_instances: 64,
            max_memory_bytes: 1 << 30,
            max_wasm_stack: 512 << 10,
            epoch_tick: Duration::from_millis(10),
        }
    }
}

/// Build the engine for `settings`.
pub fn build_engine(settings: &EngineSettings) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let n = settings.max_instances.max(1);
    // A component built by componentize-py holds a dozen core instances,
    // several memories and a large function table: size slots for it.
    pool.total_component_instances(n)
        .total_core_instances(n * 16)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .total_stacks(n)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_memory_size(settings.max_memory_bytes as usize)
        .table_elements(100_000)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(settings.max_wasm_stack)
        .cranelift_opt_level(OptLevel::Speed)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// A thread that advances the engine's epoch every tick until dropped.
pub struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Start ticking `engine` every `tick`.
    pub fn start(engine: Engine, tick: Duration) -> EpochTicker {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fuelhost-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
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
