//! The sandbox one artifact call runs in: a fresh `Store` whose data is a
//! [`Sandbox`], with fuel, an epoch deadline, a [`GuestLimiter`] for
//! memory, tables and instances, and a WASI context that grants nothing but
//! the owner's own directory, mounted at `/`. (Policy plugins run in a
//! store of their own: `policy::PluginStore`.)
//!
//! Which directory: the artifact's **owner**'s. The artifact is the owner's
//! code acting as its principal, so it may keep the owner's state; the
//! caller's files are never exposed to code the caller did not write.
//! Disk growth is still charged to the payer, checked at each write (see
//! `crate::disk`).
//!
//! This module also turns a trap into the ledger's [`Outcome`].

use std::sync::Arc;

use fuelhost_runtime::{closed_wasi, Guest, GuestCtx, GuestLimiter, LogCap, Meter, Stop};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, WasiCtxView, WasiView};

use crate::bindings::artifact::fuelhost::host::ledger::CallContext;
use crate::error::InvokeError;
use crate::invocation::{Invocation, InvocationReport};
use crate::scheduler::TaskDesk;
use fuelhost_ledger::AgentId;
use fuelhost_ledger::{Ledger, Outcome};
use fuelhost_policy::Judge;

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
    /// Decides what the guest asks about (`policy.check`, file opens,
    /// outgoing requests, transfers).
    pub judge: Arc<dyn Judge>,
    /// Transfers the guest made so far (numbers their ids).
    pub transfers: u32,
    /// Runs the guest's nested invocations.
    pub nested: Arc<dyn NestedInvoker>,
    /// Queues and reads the tasks the guest submits as its principal.
    pub tasks: Arc<dyn TaskDesk>,
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
    /// The language-model providers its `llm` import reaches.
    pub llm: Arc<crate::llm::Providers>,
    /// LLM tokens its requests used so far, as the providers reported
    /// them (held from the payer until the call settles them).
    pub llm_tokens: Arc<std::sync::atomic::AtomicU64>,
}

/// Runs a guest's nested invocation (the `invoke` import) through the
/// host's pipeline, one level deeper. What the import holds instead of the
/// host.
pub trait NestedInvoker: Send + Sync {
    /// Run `req` at nesting depth `depth`.
    fn invoke_nested(self: Arc<Self>, req: Invocation, depth: u32) -> Result<InvocationReport, InvokeError>;
}

/// The data of one artifact call's `Store`: the runtime's guest
/// context, the call's scope (what its `ledger`, `policy`, `invoke` and
/// `tasks` imports reach), and outgoing HTTP.
pub struct Sandbox {
    /// The runtime's part: WASI, limiter, console, fuel owed, waits.
    pub guest: GuestCtx,
    /// What the call's imports may reach.
    pub call: CallScope,
    /// `wasi:http` state, and the hooks that put each outgoing request to
    /// the policy chain.
    pub http: wasmtime_wasi_http::WasiHttpCtx,
    /// Decides each outgoing request.
    pub egress: crate::egress::EgressHooks,
}

impl Guest for Sandbox {
    fn guest(&mut self) -> &mut GuestCtx {
        &mut self.guest
    }

    fn guest_ref(&self) -> &GuestCtx {
        &self.guest
    }
}

impl wasmtime_wasi_http::WasiHttpView for Sandbox {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView { hooks: &mut self.egress, table: self.guest.table(), ctx: &mut self.http }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.guest.wasi()
    }
}

/// What a `wasi:cli/command` artifact's call starts with, and where its
/// output goes.
pub struct CommandIo {
    /// Its standard input: the call's input.
    pub stdin: Vec<u8>,
    /// Its standard output: the call's output (capped a byte past the
    /// artifact's output limit, so that going over it shows).
    pub stdout: MemoryOutputPipe,
    /// Its arguments, its own name first.
    pub args: Vec<String>,
    /// Its environment.
    pub env: Vec<(String, String)>,
}

impl Sandbox {
    /// A sandbox for an artifact: the owner's directory (`call.dir`) at `/`,
    /// nothing else; its log lines name the call's invocation and count
    /// against the manifest's log limits.
    /// A `wasi:cli/command` artifact's call (`command`) gets its input as
    /// stdin, its output captured from stdout, and its arguments and
    /// environment from the manifest.
    pub fn for_artifact(
        limiter: GuestLimiter,
        call: CallScope,
        log_source: String,
        command: Option<CommandIo>,
    ) -> wasmtime::Result<Sandbox> {
        let mut wasi = closed_wasi();
        wasi.preopened_dir(&call.dir, "/", FsPerms::ReadWrite)?;
        let stdout = command.map(|io| {
            wasi.stdin(MemoryInputPipe::new(io.stdin)).args(&io.args).envs(&io.env);
            io.stdout
        });
        let mut guest = GuestCtx::with_stdout(wasi, limiter, log_source, stdout);
        guest.invocation = call.context.invocation_id.clone();
        guest.log_cap = Some(LogCap { max_bytes: call.limits.log_bytes, max_lines: call.limits.log_lines });
        let egress = crate::egress::EgressHooks {
            scope: Some(Arc::new(crate::egress::EgressScope {
                principal: call.principal.clone(),
                invocation: call.context.invocation_id.clone(),
                artifact: call.context.artifact.clone(),
                judge: call.judge.clone(),
            })),
        };
        Ok(Sandbox { guest, call, http: wasmtime_wasi_http::WasiHttpCtx::new(), egress })
    }
}

/// The ledger's outcome of a call that failed with `err`.
pub fn classify_trap(err: &wasmtime::Error, memory_refused: bool) -> Outcome {
    match fuelhost_runtime::classify_trap(err, memory_refused) {
        Stop::OutOfFuel => Outcome::OutOfFuel,
        Stop::StackOverflow => Outcome::StackOverflow,
        Stop::Timeout => Outcome::Timeout,
        Stop::MemoryLimit => Outcome::MemoryLimit,
        Stop::LogLimit => Outcome::LogLimit,
        Stop::Trap => Outcome::Trap,
    }
}
