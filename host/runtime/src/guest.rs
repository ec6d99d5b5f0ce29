//! What every guest's store holds, artifact or policy plugin alike: a
//! [`GuestCtx`] (a WASI context granting what its builder granted, the
//! resource table, the [`GuestLimiter`], the console capture, the fuel the
//! running import owes, when waits must end, how much it logged), and the
//! functions that build and read such a store. A store's data type gives
//! the runtime its context through the [`Guest`] trait; each kind of guest
//! has a data type of its own, holding only what its imports need.

use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView};

use crate::engine::ticks_for;
use crate::hostcall::{per_byte, LOG_BYTE_MILLI, LOG_LINE, PER_BYTE_MILLI};
use crate::limiter::GuestLimiter;
use crate::wait::WaitLimit;

/// Bytes of stdout plus stderr kept per call; past it the streams close.
const CONSOLE_CAPACITY: usize = 64 << 10;

/// Longest log line kept; a longer one is cut (and still paid for whole).
const MAX_LOG_LINE: usize = 4096;

/// The most a guest may log in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCap {
    /// Bytes over all its lines.
    pub max_bytes: u64,
    /// Lines.
    pub max_lines: u64,
}

/// The runtime's part of a guest's store data.
pub struct GuestCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory, table and instance caps.
    pub limiter: GuestLimiter,
    /// Names the guest in log lines: `artifact owner/name@version` or
    /// `policy NAME`.
    pub log_source: String,
    /// The invocation the guest runs for, in log lines (empty for none).
    pub invocation: String,
    /// What the guest wrote to stdout and stderr (bounded): logged, and its
    /// tail quoted when the guest traps (a Python traceback, a Rust panic
    /// message).
    pub console: MemoryOutputPipe,
    /// Fuel the running import owes for the host's work, taken as it
    /// returns (see [`crate::hostcall`]).
    pub host_fuel: u64,
    /// When any wait in the host must end (see [`crate::io`]).
    pub wait_limit: Option<WaitLimit>,
    /// The most it may log; `None`: no cap.
    pub log_cap: Option<LogCap>,
    /// Bytes and lines logged so far.
    pub logged: (u64, u64),
}

/// A store's data that carries a [`GuestCtx`]: what the runtime's
/// boundary, waits and limiter need of any guest.
pub trait Guest: Send + 'static {
    /// The guest's context.
    fn guest(&mut self) -> &mut GuestCtx;
    /// The guest's context, to read.
    fn guest_ref(&self) -> &GuestCtx;
}

/// A WASI builder that grants nothing: no network, no name lookups. The
/// caller adds what it grants (an artifact its owner's directory).
pub fn closed_wasi() -> WasiCtxBuilder {
    let mut b = WasiCtxBuilder::new();
    b.allow_blocking_current_thread(true).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    b
}

impl GuestCtx {
    /// A guest context over the WASI `wasi` builds (its stdout and stderr
    /// are captured here), with `limiter`'s caps.
    pub fn new(wasi: WasiCtxBuilder, limiter: GuestLimiter, log_source: String) -> GuestCtx {
        GuestCtx::with_stdout(wasi, limiter, log_source, None)
    }

    /// [`GuestCtx::new`], with the guest's stdout going to `stdout` (a
    /// command's output) instead of the console, when given; stderr always
    /// goes to the console.
    pub fn with_stdout(
        mut wasi: WasiCtxBuilder,
        limiter: GuestLimiter,
        log_source: String,
        stdout: Option<MemoryOutputPipe>,
    ) -> GuestCtx {
        let console = MemoryOutputPipe::new(CONSOLE_CAPACITY);
        wasi.stdout(stdout.unwrap_or_else(|| console.clone())).stderr(console.clone());
        GuestCtx {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter,
            log_source,
            invocation: String::new(),
            console,
            host_fuel: 0,
            wait_limit: None,
            log_cap: None,
            logged: (0, 0),
        }
    }

    /// The WASI view of this guest (for a store data type's `WasiView`).
    pub fn wasi(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }

    /// The resource table.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Charge `fuel` for the host's work in the import running now: taken
    /// from the guest's fuel as the import returns.
    pub fn charge(&mut self, fuel: u64) {
        self.host_fuel = self.host_fuel.saturating_add(fuel);
    }

    /// The last `max` bytes the guest wrote to stdout/stderr, trimmed.
    pub fn console_tail(&self, max: usize) -> String {
        let bytes = self.console.contents();
        let start = bytes.len().saturating_sub(max);
        String::from_utf8_lossy(&bytes[start..]).trim().to_string()
    }

    /// Log `message` at `level` for the guest: charged per line and byte,
    /// counted against its [`LogCap`] (past it the run stops with
    /// [`CapReached::Log`]), cut to 4 KiB, written to the host's log under
    /// the target `fuelhost::guest`.
    pub fn log(&mut self, level: tracing::Level, message: String) -> wasmtime::Result<()> {
        self.charge(LOG_LINE + per_byte(message.len(), PER_BYTE_MILLI + LOG_BYTE_MILLI));
        let (bytes, lines) = (self.logged.0 + message.len() as u64, self.logged.1 + 1);
        self.logged = (bytes, lines);
        if let Some(LogCap { max_bytes, max_lines }) = self.log_cap {
            if bytes > max_bytes || lines > max_lines {
                return Err(wasmtime::Error::new(CapReached::Log { bytes, lines, max_bytes, max_lines }));
            }
        }
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let (source, invocation) = (self.log_source.as_str(), self.invocation.as_str());
        match level {
            tracing::Level::TRACE => tracing::trace!(target: "fuelhost::guest", source, invocation, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(target: "fuelhost::guest", source, invocation, "{message}"),
            tracing::Level::INFO => tracing::info!(target: "fuelhost::guest", source, invocation, "{message}"),
            tracing::Level::WARN => tracing::warn!(target: "fuelhost::guest", source, invocation, "{message}"),
            tracing::Level::ERROR => tracing::error!(target: "fuelhost::guest", source, invocation, "{message}"),
        }
        Ok(())
    }
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

/// A store for one call: `fuel`, an epoch deadline `deadline` from now
/// (none on an engine without epoch checks), the guest's limiter.
pub fn new_store<T: Guest>(
    engine: &Engine,
    data: T,
    fuel: Option<u64>,
    deadline: Option<Duration>,
    tick: Duration,
) -> wasmtime::Result<Store<T>> {
    let mut store = Store::new(engine, data);
    store.limiter(|s| &mut s.guest().limiter);
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

/// Why a guest's run stopped with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// It burned all its fuel.
    OutOfFuel,
    /// It exhausted its wasm stack.
    StackOverflow,
    /// It ran past its deadline (or was cancelled).
    Timeout,
    /// It trapped after a memory growth was refused.
    MemoryLimit,
    /// It logged past its [`LogCap`].
    LogLimit,
    /// Any other trap.
    Trap,
}

impl Stop {
    /// The stable snake_case name (the ledger's outcome of the same name).
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::OutOfFuel => "out_of_fuel",
            Stop::StackOverflow => "stack_overflow",
            Stop::Timeout => "timeout",
            Stop::MemoryLimit => "memory_limit",
            Stop::LogLimit => "log_limit",
            Stop::Trap => "trap",
        }
    }
}

/// Why a call that failed with `err` stopped; `memory_refused`: whether
/// its limiter refused a growth.
pub fn classify_trap(err: &wasmtime::Error, memory_refused: bool) -> Stop {
    if let Some(CapReached::Log { .. }) = err.downcast_ref::<CapReached>() {
        return Stop::LogLimit;
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Stop::OutOfFuel,
        Some(Trap::StackOverflow) => Stop::StackOverflow,
        Some(Trap::Interrupt) => Stop::Timeout,
        _ if memory_refused => Stop::MemoryLimit,
        _ => Stop::Trap,
    }
}
