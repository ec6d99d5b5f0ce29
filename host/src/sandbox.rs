//! The sandbox one guest call runs in: a fresh [`Store`] whose data is a
//! [`Sandbox`], with fuel, an epoch deadline, a [`GuestLimiter`] for
//! memory, tables and instances, and a WASI context that grants nothing but
//! (for artifacts) the owner's own directory, mounted at `/`.
//!
//! Which directory: the artifact's **owner**'s. The artifact is the owner's
//! code acting as its principal, so it may keep the owner's state; the
//! caller's files are never exposed to code the caller did not write.
//! Disk growth is still charged to the payer, checked at each write (see
//! `crate::disk`).
//!
//! This module also turns a trap into a typed [`Outcome`].

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::audit::AuditLog;
use crate::bindings::artifact::fuelhost::host::ledger::CallContext;
use crate::engine::ticks_for;
use crate::policy::PolicyChain;
use fuelhost_ledger::AgentId;
use fuelhost_ledger::{Ledger, Outcome};

/// Caps on what one guest instance may allocate.
#[derive(Debug, Clone)]
pub struct GuestLimiter {
    memory_limit: usize,
    memory_total: usize,
    memory_peak: usize,
    memory_refused: bool,
}

impl GuestLimiter {
    /// A limiter allowing `memory_limit` bytes over all linear memories.
    pub fn new(memory_limit: u64) -> GuestLimiter {
        GuestLimiter {
            memory_limit: usize::try_from(memory_limit).unwrap_or(usize::MAX),
            memory_total: 0,
            memory_peak: 0,
            memory_refused: false,
        }
    }

    /// Highest total linear memory seen, in bytes.
    pub fn memory_peak(&self) -> u64 {
        self.memory_peak as u64
    }

    /// Whether a memory growth was refused.
    pub fn memory_refused(&self) -> bool {
        self.memory_refused
    }
}

/// Most table elements one table may hold.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.memory_total - current.min(self.memory_total) + desired;
        if total > self.memory_limit {
            self.memory_refused = true;
            return Ok(false);
        }
        self.memory_total = total;
        self.memory_peak = self.memory_peak.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

/// What a running artifact may reach through the `ledger` and `policy`
/// imports: the call's context, and the services answering them.
pub struct CallScope {
    /// The context the guest reads.
    pub context: CallContext,
    /// The artifact's principal (its owner).
    pub principal: AgentId,
    /// The parties whose balances the guest may read.
    pub parties: [AgentId; 3],
    /// The ledger.
    pub ledger: Arc<dyn Ledger>,
    /// The policy chain answering the guest's `policy.check`.
    pub policy: Arc<PolicyChain>,
    /// Where decisions are recorded.
    pub audit: AuditLog,
    /// Transfers the guest made so far (numbers their ids).
    pub transfers: u32,
    /// The host, for nested invocations.
    pub host: std::sync::Arc<crate::host::HostInner>,
    /// Nesting depth: 0 for a call from outside the host.
    pub depth: u32,
    /// Nested invocations made so far (numbers their ids).
    pub nested_calls: u32,
    /// Fuel burned by nested invocations (charged to their own payers,
    /// taken out of this run's fuel, so not charged again here).
    pub nested_fuel: u64,
    /// The sponsor grant paying for this call, if any, and what it has
    /// left after this call's hold.
    pub sponsorship: Option<(String, AgentId, u64)>,
    /// How this run's fuel is counted.
    pub meter: Meter,
    /// The principal's directory, which the guest sees as `/`.
    pub dir: std::path::PathBuf,
    /// What the run's writes have grown `dir` by, checked at each write
    /// against the payer's disk budget.
    pub disk: Arc<crate::disk::DiskMeter>,
    /// The agent whose outermost call this one runs within (the caller,
    /// unless this is a nested call): its share of instance slots.
    pub root: AgentId,
    /// The call's limits (the manifest's, held to the host's maxima).
    pub limits: crate::manifest::Limits,
    /// Bytes and lines the guest logged so far.
    pub logged: (u64, u64),
}

/// A per-call cap the guest ran into while it ran: it ends the run with an
/// outcome of its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapReached {
    /// It logged more than `limits.log_bytes` or `limits.log_lines`.
    #[error(
        "log_limit: the guest logged {bytes} bytes in {lines} lines, over its limits of {max_bytes} bytes and \
         {max_lines} lines (limits.log_bytes, limits.log_lines); it was stopped there"
    )]
    Log {
        /// Bytes logged, the refused line included.
        bytes: u64,
        /// Lines logged, the refused line included.
        lines: u64,
        /// `limits.log_bytes`.
        max_bytes: u64,
        /// `limits.log_lines`.
        max_lines: u64,
    },
}

/// How a run's fuel is counted: by wasmtime in the store, or from the
/// thread's CPU time (the artifact's [`crate::Metering`]).
pub enum Meter {
    /// The store's fuel counter.
    Fuel,
    /// CPU time of the calling thread since `started`, at `picos_per_fuel`
    /// picoseconds a fuel unit, against a budget of `budget` fuel.
    CpuTime {
        /// The thread's CPU time when the run started (a run stays on its
        /// thread from start to end).
        started: Duration,
        /// The cost model's rate.
        picos_per_fuel: u64,
        /// Fuel reserved for the run.
        budget: u64,
    },
}

impl Meter {
    /// Start counting CPU time now.
    pub fn cpu_time(picos_per_fuel: u64, budget: u64) -> Meter {
        Meter::CpuTime {
            started: cpu_time::ThreadTime::now().as_duration(),
            picos_per_fuel: picos_per_fuel.max(1),
            budget,
        }
    }

    /// Start counting again from now (just before the guest runs, so the
    /// host's own setup is not billed).
    pub fn restart(&mut self) {
        if let Meter::CpuTime { started, .. } = self {
            *started = cpu_time::ThreadTime::now().as_duration();
        }
    }

    /// CPU time spent so far, as fuel; `None` when the store counts fuel.
    pub fn cpu_fuel_spent(&self) -> Option<u64> {
        match self {
            Meter::Fuel => None,
            Meter::CpuTime { started, picos_per_fuel, .. } => {
                let elapsed = cpu_time::ThreadTime::now().as_duration().saturating_sub(*started);
                let picos = elapsed.as_nanos().saturating_mul(1000);
                Some((picos / *picos_per_fuel as u128).min(u64::MAX as u128) as u64)
            }
        }
    }

    /// Fuel left of the budget, by CPU time; `None` when the store counts
    /// fuel.
    pub fn cpu_fuel_left(&self) -> Option<u64> {
        match self {
            Meter::Fuel => None,
            Meter::CpuTime { budget, .. } => self.cpu_fuel_spent().map(|spent| budget.saturating_sub(spent)),
        }
    }
}

/// The data of one guest's [`Store`].
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory, table and instance caps.
    pub limiter: GuestLimiter,
    /// Set for artifacts, `None` for policy plugins.
    pub call: Option<CallScope>,
    /// Names the guest in log lines: `artifact owner/name@version` or
    /// `policy NAME`.
    pub log_source: String,
    /// `wasi:http` state, and the hooks that put each outgoing request to
    /// the policy chain.
    pub http: wasmtime_wasi_http::WasiHttpCtx,
    /// Decides each outgoing request.
    pub egress: crate::egress::EgressHooks,
    /// What the guest wrote to stdout and stderr (bounded): logged, and its
    /// tail quoted when the guest traps (a Python traceback, a Rust panic
    /// message).
    pub console: MemoryOutputPipe,
    /// Fuel the running import owes for the host's work, taken as it
    /// returns (see `crate::hostcall`).
    pub host_fuel: u64,
    /// When any wait in the host must end (see `capabilities::io`).
    pub wait_limit: Option<crate::capabilities::WaitLimit>,
}

/// Bytes of stdout plus stderr kept per call; past it the streams close.
const CONSOLE_CAPACITY: usize = 64 << 10;

impl Sandbox {
    /// The last `max` bytes the guest wrote to stdout/stderr, trimmed.
    pub fn console_tail(&self, max: usize) -> String {
        let bytes = self.console.contents();
        let start = bytes.len().saturating_sub(max);
        String::from_utf8_lossy(&bytes[start..]).trim().to_string()
    }
}

impl wasmtime_wasi_http::WasiHttpView for Sandbox {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView { hooks: &mut self.egress, table: &mut self.table, ctx: &mut self.http }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

fn closed_wasi() -> WasiCtxBuilder {
    let mut b = WasiCtxBuilder::new();
    b.allow_blocking_current_thread(true).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    b
}

impl Sandbox {
    /// A sandbox for an artifact: the owner's directory (`call.dir`) at `/`,
    /// nothing else.
    pub fn for_artifact(limiter: GuestLimiter, call: CallScope, log_source: String) -> wasmtime::Result<Sandbox> {
        let mut b = closed_wasi();
        b.preopened_dir(&call.dir, "/", FsPerms::ReadWrite)?;
        let console = MemoryOutputPipe::new(CONSOLE_CAPACITY);
        b.stdout(console.clone()).stderr(console.clone());
        let egress = crate::egress::EgressHooks {
            scope: Some(Arc::new(crate::egress::EgressScope {
                principal: call.principal.clone(),
                invocation: call.context.invocation_id.clone(),
                artifact: call.context.artifact.clone(),
                policy: call.policy.clone(),
                audit: call.audit.clone(),
                host: call.host.clone(),
            })),
        };
        Ok(Sandbox {
            wasi: b.build(),
            table: ResourceTable::new(),
            limiter,
            call: Some(call),
            log_source,
            console,
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            egress,
            host_fuel: 0,
            wait_limit: None,
        })
    }

    /// A sandbox for a policy plugin: an empty WASI, no ledger.
    pub fn for_plugin(limiter: GuestLimiter, log_source: String) -> Sandbox {
        let console = MemoryOutputPipe::new(CONSOLE_CAPACITY);
        let wasi = closed_wasi().stdout(console.clone()).stderr(console.clone()).build();
        Sandbox {
            wasi,
            table: ResourceTable::new(),
            limiter,
            call: None,
            log_source,
            console,
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            egress: crate::egress::EgressHooks::default(),
            host_fuel: 0,
            wait_limit: None,
        }
    }
}

/// A store for one call: `fuel`, an epoch deadline `deadline` from now
/// (none on an engine without epoch checks), the limiter.
pub fn new_store(
    engine: &Engine,
    sandbox: Sandbox,
    fuel: Option<u64>,
    deadline: Option<Duration>,
    tick: Duration,
) -> wasmtime::Result<Store<Sandbox>> {
    let mut store = Store::new(engine, sandbox);
    store.limiter(|s| &mut s.limiter);
    if let Some(fuel) = fuel {
        store.set_fuel(fuel)?;
    }
    if let Some(deadline) = deadline {
        store.set_epoch_deadline(ticks_for(deadline, tick));
        store.epoch_deadline_trap();
    }
    Ok(store)
}

/// Run `instantiate`, waiting while the instance pool is full (other calls
/// hold every slot) until `deadline`: under load a call queues for a slot
/// instead of failing. Any other error, or a full pool at the deadline, is
/// returned as it is.
pub fn when_a_slot_is_free<T>(
    deadline: std::time::Instant,
    mut instantiate: impl FnMut() -> wasmtime::Result<T>,
) -> wasmtime::Result<T> {
    let mut wait = Duration::from_millis(1);
    loop {
        match instantiate() {
            Err(e)
                if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some()
                    && std::time::Instant::now() + wait < deadline =>
            {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// The typed outcome of a call that failed with `err`.
pub fn classify_trap(err: &wasmtime::Error, memory_refused: bool) -> Outcome {
    if let Some(CapReached::Log { .. }) = err.downcast_ref::<CapReached>() {
        return Outcome::LogLimit;
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Outcome::OutOfFuel,
        Some(Trap::StackOverflow) => Outcome::StackOverflow,
        Some(Trap::Interrupt) => Outcome::Timeout,
        _ if memory_refused => Outcome::MemoryLimit,
        _ => Outcome::Trap,
    }
}
