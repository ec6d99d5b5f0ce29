//! Stage 3, run: a fresh sandbox instantiates the artifact from its
//! `InstancePre` and calls `run`, metered (fuel, or CPU time), capped
//! (memory, stack, wall clock, disk at each write, logs, output) and
//! cancellable; how it ended becomes an [`Outcome`] and an error message.
//! From here on every path settles, so no hold outlives the call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuelhost_ledger::Outcome;
use fuelhost_runtime::concurrent::finish;
use fuelhost_runtime::{new_store, when_a_slot_is_free, GuestLimiter, Meter};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::admit::Admitted;
use super::reserve::Held;
use crate::bindings::artifact::fuelhost::host::ledger::CallContext;
use crate::bindings::{RunError, WitResourcePolicy};
use crate::cost::CostModel;
use crate::disk::AgentDir;
use crate::disk::DiskMeter;
use crate::manifest::{Metering, ResourcePolicy};
use crate::registry::Code;
use crate::sandbox::NestedInvoker;
use crate::sandbox::{classify_trap, CallScope, CommandIo, Sandbox};
use crate::scheduler::TaskDesk;
use crate::state::HostInner;
use crate::telemetry::{Stage, StageClock};
use crate::typed::TypedCall;
use fuelhost_ledger::{AgentId, Ledger};
use fuelhost_policy::Judge;
use std::path::PathBuf;

/// Bytes of guest console output quoted in a trap's error.
const CONSOLE_TAIL: usize = 1024;

/// How a run ended, and what it used: what settlement charges.
pub(super) struct Ran {
    /// How it ended.
    pub outcome: Outcome,
    /// Its output (empty unless it succeeded).
    pub output: Vec<u8>,
    /// Why it failed, for the caller.
    pub error: Option<String>,
    /// Fuel it burned (nested calls' fuel is their payers').
    pub fuel_used: u64,
    /// Highest total linear memory, bytes.
    pub memory_peak: u64,
    /// What its writes grew the owner's directory by.
    pub disk_bytes: u64,
    /// LLM tokens its `llm` requests used.
    pub llm_tokens: u64,
    /// Wall time from the sandbox's setup to the run's end.
    pub wall: Duration,
    /// The cost model the run was metered by (settlement prices by it too).
    pub cost: CostModel,
}

fn describe_run_error(e: &RunError) -> String {
    match e {
        RunError::InvalidInput(m) => format!("invalid input: {m}"),
        RunError::Denied(m) => format!("denied: {m}"),
        RunError::Failed(m) => format!("failed: {m}"),
    }
}

fn trap_message(e: &wasmtime::Error) -> String {
    if let Some(cap) = e.downcast_ref::<fuelhost_runtime::CapReached>() {
        return cap.to_string();
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(t) => t.to_string(),
        None => e.to_string(),
    }
}

/// What the run stage needs of the host: where the owner's files are, how
/// the call is metered, and the services its imports reach. Built from
/// the host by [`RunEnv::of`]; a test builds one from parts.
pub(super) struct RunEnv {
    /// The owner's directory, which the guest sees as `/`.
    pub dir: PathBuf,
    /// Its entry count and lock, for the disk meter.
    pub agent_dir: Arc<AgentDir>,
    /// The ledger (disk holds, the guest's reads and transfers).
    pub ledger: Arc<dyn Ledger>,
    /// Decides what the guest asks about.
    pub judge: Arc<dyn Judge>,
    /// Runs its nested invocations.
    pub nested: Arc<dyn NestedInvoker>,
    /// Queues its tasks.
    pub tasks: Arc<dyn TaskDesk>,
    /// The cost model, read once for the whole call.
    pub cost: CostModel,
    /// Whether fuel runs are timed by fuel alone (`deterministic_fuel`).
    pub deterministic_fuel: bool,
    /// The engines' epoch tick.
    pub tick: Duration,
    /// The language-model providers its `llm` import reaches.
    pub llm: Arc<crate::llm::Providers>,
}

impl RunEnv {
    /// The environment `host` gives a call of `owner`'s artifact.
    pub(super) fn of(host: &Arc<HostInner>, owner: &AgentId) -> RunEnv {
        RunEnv {
            dir: host.agent_dir(owner),
            agent_dir: host.agent_dirs.get(owner),
            ledger: host.ledger.clone(),
            judge: host.clone(),
            nested: host.clone(),
            tasks: host.clone(),
            // One read of the cost model for the whole call: metering,
            // deadline and settlement agree.
            cost: host.cost_model(),
            deterministic_fuel: host.settings.deterministic_fuel,
            tick: host.settings.epoch_tick,
            llm: host.llm.clone(),
        }
    }
}

/// How a run is held to its time and fuel, decided before it starts.
struct Plan {
    /// The wall-clock limit: the artifact's, within the request's.
    timeout: Duration,
    /// A fuel run timed by fuel alone (`deterministic_fuel`).
    deterministic: bool,
    /// Under deterministic fuel, the timeout counted in fuel, when under
    /// the budget.
    timeout_fuel: Option<u64>,
    /// Fuel the guest is told it has: the budget, or the timeout's fuel.
    fuel_limit: u64,
    /// Fuel set in the store (fuel metering only).
    store_fuel: Option<u64>,
    /// The first epoch deadline, if the engine checks epochs.
    deadline: Option<Duration>,
    /// A CPU-time budget under one epoch tick: it cannot be enforced, so
    /// the call does not run.
    too_small: bool,
}

/// Fuel metering stops the run at the budget by itself; its timeout is an
/// epoch deadline, or, under deterministic fuel, its timeout fuel (and the
/// wall clock at calls into the host). CPU-time metering checks the meter
/// at every epoch tick (see `cpu_time_watch`); its first deadline is the
/// budget's CPU time rounded down to whole ticks, so the run never passes
/// its budget (CPU time never exceeds wall time). A budget under one tick
/// cannot be enforced: such a call does not run.
fn plan(metering: Metering, budget_fuel: u64, timeout: Duration, env: &RunEnv) -> Plan {
    // Under deterministic fuel a fuel run's timeout is fuel too: the
    // timeout's CPU time at the cost model's rate, when under its budget.
    let deterministic = metering == Metering::Fuel && env.deterministic_fuel;
    let timeout_fuel = deterministic.then(|| env.cost.fuel_for(timeout)).filter(|&f| f < budget_fuel);
    let fuel_limit = timeout_fuel.unwrap_or(budget_fuel);
    let tick = env.tick;
    let (store_fuel, deadline) = match metering {
        Metering::Fuel => (Some(fuel_limit), (!deterministic).then_some(timeout)),
        Metering::CpuTime => {
            let budget = Duration::from_nanos(env.cost.cpu_time_ns(budget_fuel));
            let whole_ticks = tick * (budget.as_nanos() / tick.as_nanos().max(1)).min(u32::MAX as u128) as u32;
            (None, Some(if budget < timeout { whole_ticks } else { timeout }))
        }
    };
    let too_small = metering == Metering::CpuTime && deadline.is_some_and(|d| d.is_zero());
    Plan { timeout, deterministic, timeout_fuel, fuel_limit, store_fuel, deadline, too_small }
}

/// What the call's imports reach: its context, its parties, the services.
fn call_scope(
    env: RunEnv,
    call: &Admitted,
    held: &Held,
    plan: &Plan,
    (disk, llm_tokens): (Arc<DiskMeter>, Arc<AtomicU64>),
    depth: u32,
) -> CallScope {
    let Admitted { charge, artifact, limits, root, .. } = call;
    let (reserved, payer) = (&held.reserved, &held.payer);
    let manifest = &artifact.info.manifest;
    let context = CallContext {
        invocation_id: charge.invocation_id.clone(),
        artifact: artifact.info.id.clone(),
        caller: charge.caller.to_string(),
        owner: charge.owner.to_string(),
        payer: payer.to_string(),
        resource_policy: match manifest.resource_policy {
            ResourcePolicy::CallerPays => WitResourcePolicy::CallerPays,
            ResourcePolicy::OwnerPays => WitResourcePolicy::OwnerPays,
        },
        price: charge.price,
        fuel_limit: plan.fuel_limit,
    };
    let sponsorship = held.sponsorship.as_ref().map(|g| {
        let left = env.ledger.sponsorship(&g.grant.id).ok().flatten();
        let left = left.map(|s| s.grant.fuel_limit.saturating_sub(s.fuel_spent).saturating_sub(reserved.fuel));
        (g.grant.id.clone(), g.grant.sponsor.clone(), left.unwrap_or(0))
    });
    CallScope {
        context,
        principal: charge.owner.clone(),
        parties: [charge.caller.clone(), charge.owner.clone(), payer.clone()],
        ledger: env.ledger,
        judge: env.judge,
        transfers: 0,
        nested: env.nested,
        tasks: env.tasks,
        depth,
        nested_calls: 0,
        nested_fuel: 0,
        dir: env.dir,
        disk,
        root: root.clone(),
        limits: *limits,
        meter: match manifest.metering {
            Metering::Fuel => Meter::Fuel,
            Metering::CpuTime => Meter::cpu_time(env.cost.picos_per_fuel, reserved.fuel),
        },
        sponsorship,
        llm: env.llm,
        llm_tokens,
    }
}

/// What a run that got a store left: its result, the fuel it burned, its
/// limiter, the tail of its console.
struct Executed {
    result: wasmtime::Result<Result<Vec<u8>, RunError>>,
    fuel_used: u64,
    limiter: GuestLimiter,
    console: String,
}

/// Build the store for `sandbox`, install its watches and boundary (the
/// run ends by `ends`), and call `run`.
fn execute(
    sandbox: Sandbox,
    call: &Admitted,
    held: &Held,
    plan: &Plan,
    (cost, tick, ends): (CostModel, Duration, Instant),
    clock: &mut StageClock,
    stdout: Option<&MemoryOutputPipe>,
) -> wasmtime::Result<Executed> {
    let (req, artifact) = (&call.req, &call.artifact);
    let metering = artifact.info.manifest.metering;
    let budget_fuel = held.reserved.fuel;
    let mut store = new_store(artifact.pre.engine(), sandbox, plan.store_fuel, plan.deadline, tick)?;
    match (metering, req.cancel.clone()) {
        (Metering::CpuTime, cancel) => cpu_time_watch(&mut store, cost, tick, ends, cancel),
        (Metering::Fuel, Some(cancel)) if !plan.deterministic => cancel_watch(&mut store, cancel, ends),
        (Metering::Fuel, _) => {}
    }
    // Host calls cost fuel, and under deterministic fuel the wall clock is
    // read where the guest calls into the host; every wait in the host
    // ends at the deadline.
    let boundary = fuelhost_runtime::boundary::Boundary {
        fuel: metering == Metering::Fuel,
        deadline: plan.deterministic.then_some(ends),
        cancel: req.cancel.clone().filter(|_| plan.deterministic),
    };
    fuelhost_runtime::boundary::install(&mut store, boundary);
    store.data_mut().guest.wait_limit =
        Some(fuelhost_runtime::WaitLimit { deadline: ends, cancel: req.cancel.clone() });
    store.data_mut().call.meter.restart();
    clock.mark(Stage::Setup);
    let result = if plan.too_small {
        Err(wasmtime::Trap::OutOfFuel.into())
    } else {
        call_by_kind(&mut store, call, (tick, ends), clock, stdout)
    };
    clock.mark(Stage::Call);
    // Nested calls' fuel is charged to their payers, not here.
    let scope = &store.data().call;
    let spent = match scope.meter.cpu_fuel_spent() {
        Some(cpu) => cpu.min(budget_fuel),
        None => plan.store_fuel.unwrap_or(budget_fuel).saturating_sub(store.get_fuel().unwrap_or(0)),
    };
    let fuel_used = spent.saturating_sub(scope.nested_fuel);
    let limiter = store.data().guest.limiter.clone();
    let console = store.data().guest.console_tail(CONSOLE_TAIL);
    if !console.is_empty() {
        tracing::debug!(target: "fuelhost::guest", %console, "guest console output");
    }
    // An HTTP response's body has ended once the store (its writer) is gone.
    drop(store);
    let result = match &req.http {
        Some(exchange) => super::http::answered(result, exchange, ends, call.limits.output_bytes),
        None => result,
    };
    Ok(Executed { result, fuel_used, limiter, console })
}

/// Instantiate the artifact in `store` and call it as its kind is called
/// (`run`, a typed export, an HTTP handler, a command; WASI 0.2 or 0.3),
/// marking the instantiation on `clock`. A component-model-async call's
/// waits on the host end at `ends` or a cancel too (its compute ends by
/// fuel and epochs, as any).
fn call_by_kind(
    store: &mut wasmtime::Store<Sandbox>,
    call: &Admitted,
    (tick, ends): (Duration, Instant),
    clock: &mut StageClock,
    stdout: Option<&MemoryOutputPipe>,
) -> wasmtime::Result<Result<Vec<u8>, RunError>> {
    let (req, artifact) = (&call.req, &call.artifact);
    let cancel = req.cancel.as_deref();
    match (&*artifact.pre, &call.typed) {
        (Code::Run(pre), _) => {
            let instance = when_a_slot_is_free(ends, || pre.instantiate(&mut *store));
            clock.mark(Stage::Instantiate);
            instance.and_then(|inst| inst.call_run(&mut *store, &req.input))
        }
        (Code::Exports { pre, concurrent, .. }, Some(typed)) => {
            // What the host copies out of the guest at once (the
            // result, lifted into values) is held to the output limit:
            // a larger result could not be returned anyway.
            let most = usize::try_from(call.limits.output_bytes).unwrap_or(usize::MAX).max(64 << 10);
            store.set_hostcall_fuel(most);
            if *concurrent {
                let instance =
                    when_a_slot_is_free(ends, || finish(pre.instantiate_async(&mut *store), ends, cancel, tick));
                clock.mark(Stage::Instantiate);
                instance.and_then(|inst| call_typed_concurrently(&mut *store, &inst, typed, (ends, cancel, tick)))
            } else {
                let instance = when_a_slot_is_free(ends, || pre.instantiate(&mut *store));
                clock.mark(Stage::Instantiate);
                instance.and_then(|inst| call_typed(&mut *store, &inst, typed))
            }
        }
        (Code::Exports { .. }, None) => Err(wasmtime::format_err!("a call by function was not checked at admission")),
        (Code::Http(pre), _) => {
            let instance = when_a_slot_is_free(ends, || pre.instantiate(&mut *store));
            clock.mark(Stage::Instantiate);
            match &req.http {
                Some(exchange) => instance
                    .and_then(|proxy| super::http::handle(&mut *store, &proxy, exchange, call.limits.output_bytes)),
                None => Err(wasmtime::format_err!("an HTTP call without its request was not refused at admission")),
            }
        }
        (Code::AsyncHttp(pre), _) => {
            let instance = when_a_slot_is_free(ends, || finish(pre.instantiate_async(&mut *store), ends, cancel, tick));
            clock.mark(Stage::Instantiate);
            match &req.http {
                Some(exchange) => instance.and_then(|service| {
                    let waits = (ends, cancel, tick);
                    super::http::handle_concurrently(&mut *store, &service, exchange, call.limits.output_bytes, waits)
                }),
                None => Err(wasmtime::format_err!("an HTTP call without its request was not refused at admission")),
            }
        }
        (Code::Command(pre), _) => {
            let instance = when_a_slot_is_free(ends, || pre.instantiate(&mut *store));
            clock.mark(Stage::Instantiate);
            instance.and_then(|command| {
                let ran = command.wasi_cli_run().call_run(&mut *store);
                let stderr = store.data().guest.console_tail(CONSOLE_TAIL);
                command_ended(ran, stdout, call.limits.output_bytes, &stderr)
            })
        }
        (Code::AsyncCommand(pre), _) => {
            let instance = when_a_slot_is_free(ends, || finish(pre.instantiate_async(&mut *store), ends, cancel, tick));
            clock.mark(Stage::Instantiate);
            instance.and_then(|command| {
                let run = store.run_concurrent(async |s| command.wasi_cli_run().call_run(s).await);
                let ran = finish(run, ends, cancel, tick).and_then(|ran| ran);
                let stderr = store.data().guest.console_tail(CONSOLE_TAIL);
                command_ended(ran, stdout, call.limits.output_bytes, &stderr)
            })
        }
    }
}

/// Call the typed export `typed` of `instance`; its results as JSON, the
/// call's output.
fn call_typed(
    store: &mut wasmtime::Store<Sandbox>,
    instance: &wasmtime::component::Instance,
    typed: &TypedCall,
) -> wasmtime::Result<Result<Vec<u8>, RunError>> {
    let func = instance
        .get_func(&mut *store, typed.index)
        .ok_or_else(|| wasmtime::format_err!("the export checked at admission is not a function of the instance"))?;
    let mut results = vec![wasmtime::component::Val::Bool(false); typed.results];
    func.call(&mut *store, &typed.params, &mut results)?;
    Ok(Ok(serde_json::to_vec(&crate::typed::results_json(&results))?))
}

/// [`call_typed`] for a component-model-async component: the export
/// called with `call_async` (concurrently, for an `async func`), its
/// waits held to `waits` (the deadline, the cancel flag, the tick).
fn call_typed_concurrently(
    store: &mut wasmtime::Store<Sandbox>,
    instance: &wasmtime::component::Instance,
    typed: &TypedCall,
    (ends, cancel, tick): (Instant, Option<&std::sync::atomic::AtomicBool>, Duration),
) -> wasmtime::Result<Result<Vec<u8>, RunError>> {
    let func = instance
        .get_func(&mut *store, typed.index)
        .ok_or_else(|| wasmtime::format_err!("the export checked at admission is not a function of the instance"))?;
    let mut results = vec![wasmtime::component::Val::Bool(false); typed.results];
    finish(func.call_async(&mut *store, &typed.params, &mut results), ends, cancel, tick)?;
    Ok(Ok(serde_json::to_vec(&crate::typed::results_json(&results))?))
}

/// What a command's run returns: its stdout when it exited with code 0,
/// else a failure naming the code and quoting the end of its stderr. Its
/// stdout past `limit` (the pipe holds a byte more) is returned as it is,
/// for [`ending`] to refuse as over the output limit, whatever the
/// command did after.
fn command_ended(
    ran: wasmtime::Result<Result<(), ()>>,
    stdout: Option<&MemoryOutputPipe>,
    limit: u64,
    stderr: &str,
) -> wasmtime::Result<Result<Vec<u8>, RunError>> {
    let out = stdout.map(|s| s.contents().to_vec()).unwrap_or_default();
    if out.len() as u64 > limit {
        return Ok(Ok(out));
    }
    let code = match ran {
        Ok(Ok(())) => 0,
        Ok(Err(())) => 1,
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => exit.0,
            None => return Err(e),
        },
    };
    if code == 0 {
        return Ok(Ok(out));
    }
    let mut why = format!("the command exited with code {code}");
    if !stderr.is_empty() {
        why.push_str("; stderr: ");
        why.push_str(stderr.trim_end());
    }
    Ok(Err(RunError::Failed(why)))
}

/// How the run ended, from what `execute` returned: the outcome, the
/// output, the error for the caller, the fuel burned, the memory peak.
fn ending(
    run: wasmtime::Result<Executed>,
    call: &Admitted,
    plan: &Plan,
    cost: CostModel,
) -> (Outcome, Vec<u8>, Option<String>, u64, u64) {
    let output_bytes = call.limits.output_bytes;
    match run {
        Ok(Executed { result: Ok(Ok(output)), fuel_used, limiter, .. }) if output.len() as u64 > output_bytes => {
            let message = format!(
                "output_limit: the output was {} bytes, over the artifact's limit of {output_bytes} bytes \
                 (limits.output_bytes); it was dropped",
                output.len(),
            );
            (Outcome::OutputLimit, Vec::new(), Some(message), fuel_used, limiter.memory_peak())
        }
        Ok(Executed { result: Ok(Ok(output)), fuel_used, limiter, .. }) => {
            (Outcome::Success, output, None, fuel_used, limiter.memory_peak())
        }
        Ok(Executed { result: Ok(Err(run_error)), fuel_used, limiter, .. }) => {
            (Outcome::RunError, Vec::new(), Some(describe_run_error(&run_error)), fuel_used, limiter.memory_peak())
        }
        Ok(Executed { result: Err(trap), fuel_used, limiter, console }) => {
            let cancelled = call.req.cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst));
            let outcome = match classify_trap(&trap, limiter.memory_refused()) {
                Outcome::Timeout if cancelled => Outcome::Aborted,
                Outcome::OutOfFuel if plan.timeout_fuel.is_some() => Outcome::Timeout,
                other => other,
            };
            // Spending the timeout fuel calls into the host, where the
            // wall clock may be found past too: the fuel says which came
            // first.
            let mut message = match (outcome, plan.timeout_fuel) {
                (Outcome::Aborted, _) => "aborted: cancelled while running; charged for the fuel it burned".to_string(),
                (Outcome::Timeout, Some(fuel)) if fuel_used >= fuel => format!(
                    "timeout: the run spent its timeout of {} ms counted in fuel ({fuel} fuel at {} ps per fuel; \
                     under deterministic fuel, compute is timed by fuel, not by the wall clock)",
                    plan.timeout.as_millis(),
                    cost.picos_per_fuel
                ),
                // A cap's message names its outcome already.
                (Outcome::LogLimit, _) => trap_message(&trap),
                _ => format!("{outcome}: {}", trap_message(&trap)),
            };
            if !console.is_empty() {
                message.push_str("; guest output: ");
                message.push_str(&console);
            }
            (outcome, Vec::new(), Some(message), fuel_used, limiter.memory_peak())
        }
        Err(setup) => (Outcome::Trap, Vec::new(), Some(format!("sandbox setup failed: {setup:#}")), 0, 0),
    }
}

/// Run the admitted, reserved `call` at nesting `depth` in `env`, marking
/// its setup, instantiation and call on `clock` (the teardown is what is
/// left when it returns).
pub(super) fn run(env: RunEnv, call: &Admitted, held: &Held, depth: u32, clock: &mut StageClock) -> Ran {
    let _run = tracing::info_span!("run").entered();
    let (cost, tick, reserved) = (env.cost, env.tick, &held.reserved);
    let manifest = &call.artifact.info.manifest;
    let timeout = Duration::from_millis(call.limits.timeout_ms).min(call.req.timeout.unwrap_or(Duration::MAX));
    let plan = plan(manifest.metering, reserved.fuel, timeout, &env);
    let disk = Arc::new(DiskMeter::new(
        env.agent_dir.clone(),
        env.ledger.clone(),
        &call.charge.invocation_id,
        held.payer.clone(),
        reserved.disk_bytes,
    ));
    let llm_tokens = Arc::new(AtomicU64::new(0));
    let scope = call_scope(env, call, held, &plan, (disk.clone(), llm_tokens.clone()), depth);
    // The payer's allocation may cap memory below the artifact's own limit.
    let memory_limit = call.limits.memory_bytes;
    let memory_cap = reserved.memory_bytes.map_or(memory_limit, |cap| cap.min(memory_limit));
    let started = Instant::now();
    // A command reads the input from stdin, and its stdout is the output.
    let command = matches!(&*call.artifact.pre, Code::Command(_) | Code::AsyncCommand(_)).then(|| CommandIo {
        stdin: call.req.input.clone(),
        stdout: MemoryOutputPipe::new(
            usize::try_from(call.limits.output_bytes.saturating_add(1)).unwrap_or(usize::MAX),
        ),
        args: std::iter::once(manifest.name.clone()).chain(manifest.command.args.iter().cloned()).collect(),
        env: manifest.command.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    });
    let stdout = command.as_ref().map(|c| c.stdout.clone());
    let log_source = format!("artifact {}", call.artifact.info.id);
    let run = Sandbox::for_artifact(GuestLimiter::new(memory_cap), scope, log_source, command).and_then(|sandbox| {
        execute(sandbox, call, held, &plan, (cost, tick, started + timeout), clock, stdout.as_ref())
    });
    let wall = started.elapsed();
    let (outcome, output, error, fuel_used, memory_peak) = ending(run, call, &plan, cost);
    let (error, fuel_used) = if plan.too_small {
        let message = format!(
            "out_of_fuel: the budget of {} fuel is {} µs of CPU, under one epoch tick ({} ms), the least a cpu_time \
             artifact can be held to: nothing ran; give the call more fuel",
            reserved.fuel,
            cost.cpu_time_ns(reserved.fuel) / 1000,
            tick.as_millis()
        );
        (Some(message), 0)
    } else {
        (error, fuel_used)
    };
    // Every write was checked as it happened: the run grew the directory
    // by what its meter counted, and a run that met the quota and did not
    // succeed ended because of it.
    let disk_bytes = disk.grown();
    let (outcome, output, error) = match disk.refused() {
        Some(quota) if matches!(outcome, Outcome::RunError | Outcome::Trap) => {
            let mut message = quota.to_string();
            if let Some(guest) = error {
                message.push_str(&format!("; the guest then reported: {guest}"));
            }
            (Outcome::DiskLimit, Vec::new(), Some(message))
        }
        _ => (outcome, output, error),
    };
    let llm_tokens = llm_tokens.load(Ordering::SeqCst);
    Ran { outcome, output, error, fuel_used, memory_peak, disk_bytes, llm_tokens, wall, cost }
}

/// Watch a cancellable run of a fuel-metered artifact: at every epoch
/// tick, stop it if it was cancelled or its wall-clock timeout passed.
fn cancel_watch(
    store: &mut wasmtime::Store<Sandbox>,
    cancel: Arc<std::sync::atomic::AtomicBool>,
    wall_deadline: Instant,
) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if cancel.load(Ordering::SeqCst) || Instant::now() >= wall_deadline {
            return Err(wasmtime::Trap::Interrupt.into());
        }
        Ok(wasmtime::UpdateDeadline::Continue(1))
    });
}

/// Hold a CPU-time run to its budget: at each deadline, stop it if it was
/// cancelled or its wall-clock timeout passed (`timeout`) or less than one
/// tick of CPU is left of its budget (`out_of_fuel`); else sleep again for
/// the CPU left, rounded down to whole ticks (one tick when cancellable),
/// or until the timeout.
fn cpu_time_watch(
    store: &mut wasmtime::Store<Sandbox>,
    cost: CostModel,
    tick: Duration,
    wall_deadline: Instant,
    cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
) {
    if cancel.is_some() {
        store.set_epoch_deadline(1);
    }
    store.epoch_deadline_callback(move |ctx| {
        let now = Instant::now();
        if now >= wall_deadline || cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) {
            return Err(wasmtime::Trap::Interrupt.into());
        }
        let left_fuel = ctx.data().call.meter.cpu_fuel_left().unwrap_or(0);
        let left = Duration::from_nanos(cost.cpu_time_ns(left_fuel));
        if left < tick {
            return Err(wasmtime::Trap::OutOfFuel.into());
        }
        let by_budget = (left.as_nanos() / tick.as_nanos().max(1)) as u64;
        let by_wall = fuelhost_runtime::ticks_for(wall_deadline - now, tick);
        let by_cancel = if cancel.is_some() { 1 } else { u64::MAX };
        Ok(wasmtime::UpdateDeadline::Continue(by_budget.min(by_wall).min(by_cancel).max(1)))
    });
}
