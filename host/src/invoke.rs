//! One invocation, end to end:
//!
//! 1. **admit**: the policy chain judges the `invoke` action; a deny (or a
//!    pending approval) rejects it, nothing charged, the decision audited;
//! 2. **reserve**: one ledger transaction holds the price from the caller
//!    and the fuel (the call's limit capped by the payer's budget) from the
//!    payer; not enough of either rejects it, nothing charged;
//! 3. **run**: a fresh sandbox instantiates the artifact from its
//!    `InstancePre` and calls `run`;
//! 4. **settle**: one ledger transaction posts the fuel burned, releases
//!    the rest, charges disk growth, pays the price on success (releases it
//!    otherwise) and writes the usage record keyed by the invocation id;
//! 5. **report**: an [`InvocationReport`].
//!
//! A retry with the same invocation id returns the recorded report and runs
//! nothing: an invocation is charged at most once.
//!
//! Each invocation runs in an `invocation` span and stages 1 to 4 in child
//! spans named after them (`admit`, `reserve`, `run`, `settle`); see
//! `telemetry` for the fields.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bindings::artifact::fuelhost::host::ledger::CallContext;
use crate::bindings::{Action, Attribute, Decision, RunError, Usage, WitResourcePolicy};
use crate::cost::CostModel;
use crate::disk::DiskMeter;
use crate::error::InvokeError;
use crate::invocation::{Invocation, InvocationReport};
use crate::manifest::{Metering, ResourcePolicy};
use crate::sandbox::{classify_trap, CallScope, NestedInvoker, Sandbox};
use crate::state::HostInner;
use fuelhost_ledger::AgentId;
use fuelhost_ledger::{Asset, LedgerError, Outcome, Reservation, ResourcesConsumed, Settlement, SponsorGrantStatus};
use fuelhost_policy::Judge as _;
use fuelhost_runtime::{new_store, when_a_slot_is_free, GuestLimiter, Meter};

/// Bytes of guest console output quoted in a trap's error.
const CONSOLE_TAIL: usize = 1024;

fn new_invocation_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("inv-{:x}-{:016x}", fuelhost_sqlite::now_ms(), h.finish())
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

fn attr(key: &str, value: impl Into<String>) -> Attribute {
    Attribute { key: key.into(), value: value.into() }
}

/// Who pays for resources: the owner under `owner_pays`; under
/// `caller_pays` the caller, unless a sponsor grant covers the caller for
/// this artifact.
fn resolve_payer(
    host: &HostInner,
    caller: &AgentId,
    owner: &AgentId,
    artifact: &str,
    policy: ResourcePolicy,
) -> Result<(Option<SponsorGrantStatus>, AgentId), InvokeError> {
    Ok(match policy {
        ResourcePolicy::OwnerPays => (None, owner.clone()),
        ResourcePolicy::CallerPays if caller == owner => (None, caller.clone()),
        ResourcePolicy::CallerPays => {
            match host.ledger.sponsorship_for(caller, artifact).map_err(InvokeError::Ledger)? {
                Some(grant) => {
                    let sponsor = grant.grant.sponsor.clone();
                    (Some(grant), sponsor)
                }
                None => (None, caller.clone()),
            }
        }
    })
}

impl crate::scheduler::TaskRunner for HostInner {
    fn route(
        &self,
        capability: &str,
        mode: crate::scheduler::RouteMode,
        submitter: &str,
        max_price: Option<u64>,
    ) -> Result<crate::scheduler::Choice, crate::scheduler::TaskError> {
        HostInner::route(self, capability, mode, submitter, max_price)
    }

    fn run(self: Arc<Self>, req: Invocation) -> Result<InvocationReport, InvokeError> {
        invoke(&self, req)
    }
}

impl NestedInvoker for HostInner {
    fn invoke_nested(self: Arc<Self>, req: Invocation, depth: u32) -> Result<InvocationReport, InvokeError> {
        invoke_at(&self, req, depth)
    }
}

/// Run the pipeline for a call from outside the host.
pub(crate) fn invoke(host: &Arc<HostInner>, req: Invocation) -> Result<InvocationReport, InvokeError> {
    invoke_at(host, req, 0)
}

/// Run the pipeline at nesting `depth` inside an `invocation` span (a
/// child of the current span: a nested invocation's is under its caller's
/// `run`), and record how it ended on the span.
fn invoke_at(host: &Arc<HostInner>, req: Invocation, depth: u32) -> Result<InvocationReport, InvokeError> {
    let span = tracing::info_span!(
        "invocation",
        invocation_id = tracing::field::Empty,
        caller = %req.caller,
        artifact = %req.artifact,
        depth,
        payer = tracing::field::Empty,
        price = tracing::field::Empty,
        outcome = tracing::field::Empty,
        fuel = tracing::field::Empty,
    );
    let _entered = span.enter();
    let result = pipeline(host, req, depth, &span);
    match &result {
        Ok(report) => {
            span.record("outcome", report.outcome.as_str());
            span.record("fuel", report.resources_consumed.fuel);
        }
        Err(e) => {
            span.record("outcome", refusal_outcome(e));
        }
    }
    result
}

/// The `outcome` an invocation span records when the call was refused
/// before it ran (nothing charged).
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

fn refusal_outcome(e: &InvokeError) -> &'static str {
    match e {
        InvokeError::UnknownArtifact(_) => "unknown_artifact",
        InvokeError::UnknownCaller(_) => "unknown_caller",
        InvokeError::InvalidAgent(_) => "invalid_agent",
        InvokeError::Denied(_) => "denied",
        InvokeError::InsufficientScrip { .. } => "insufficient_scrip",
        InvokeError::InsufficientBudget { .. } => "insufficient_budget",
        InvokeError::PendingApproval { .. } => "pending_approval",
        InvokeError::AllocationRefused(_) => "allocation_refused",
        InvokeError::InProgress(_) => "in_progress",
        InvokeError::IdTaken(_) => "id_taken",
        InvokeError::InvalidId(_) => "invalid_id",
        InvokeError::InputTooLarge { .. } => "input_too_large",
        InvokeError::Busy(_) => "busy",
        InvokeError::Ledger(_) => "ledger_error",
        InvokeError::Sandbox(_) => "sandbox_error",
    }
}

/// The pipeline itself, each stage in its span (`admit`, `reserve`, `run`,
/// `settle`) under `span`, the invocation's. See the module docs.
fn pipeline(
    host: &Arc<HostInner>,
    req: Invocation,
    depth: u32,
    span: &tracing::Span,
) -> Result<InvocationReport, InvokeError> {
    let caller = AgentId::new(req.caller.clone())?;
    let artifact =
        host.registry.get(&req.artifact).ok_or_else(|| InvokeError::UnknownArtifact(req.artifact.clone()))?;
    let manifest = &artifact.info.manifest;
    let limits = manifest.limits.within(&host.limits, host.settings.max_memory_bytes);
    if req.input.len() as u64 > limits.input_bytes {
        return Err(InvokeError::InputTooLarge {
            artifact: artifact.info.id.clone(),
            size: req.input.len() as u64,
            limit: limits.input_bytes,
        });
    }
    if !host.ledger.has_account(caller.as_str()).map_err(InvokeError::Ledger)? {
        return Err(InvokeError::UnknownCaller(caller.to_string()));
    }
    let fresh_id = req.id.is_none();
    let invocation_id = match req.id {
        Some(id) => {
            if let Some(record) = host.ledger.usage_record(&id).map_err(InvokeError::Ledger)? {
                // A retry replays its own call only.
                if record.caller != caller || record.artifact != artifact.info.id {
                    return Err(InvokeError::IdTaken(id));
                }
                return Ok(InvocationReport::from_record(record, true));
            }
            id
        }
        None => new_invocation_id(),
    };
    span.record("invocation_id", invocation_id.as_str());
    // A slot before anything is decided or held: a busy host refuses the
    // call here, charging nothing. A nested call holds its caller's slot
    // meanwhile, so it does not wait for one.
    let root = req.root.clone().unwrap_or_else(|| caller.clone());
    let _slot = host.slots.acquire(root.as_str(), depth == 0)?;

    let owner = manifest.owner.clone();
    let (mut sponsorship, mut payer) =
        resolve_payer(host, &caller, &owner, &artifact.info.id, manifest.resource_policy)?;
    let fuel_limit = req.fuel_limit.unwrap_or(limits.fuel).min(limits.fuel);
    let memory_limit = limits.memory_bytes;
    let price = if caller == owner { 0 } else { manifest.price };
    span.record("payer", payer.as_str());
    span.record("price", price);

    // 1. Admit.
    let admit = tracing::info_span!("admit").entered();
    let action = Action {
        kind: "invoke".into(),
        subject: caller.to_string(),
        tenant: None,
        target: artifact.info.id.clone(),
        attributes: vec![
            attr("owner", owner.as_str()),
            attr("payer", payer.as_str()),
            attr("resource-policy", manifest.resource_policy.to_string()),
            attr("sponsor-grant", sponsorship.as_ref().map(|g| g.grant.id.as_str()).unwrap_or("")),
        ],
        price,
        estimated: Usage {
            fuel: fuel_limit,
            memory_peak_bytes: memory_limit,
            disk_bytes: 0,
            llm_tokens: 0,
            wall_time_ns: 0,
        },
    };
    let mut action = action;
    let verdict = host.judge(Some(&invocation_id), &mut action);
    match &verdict.decision {
        // Needs approval, and none given yet: park it, charge nothing.
        Decision::RequireApproval(approvers) if req.approved_by.is_none() => {
            let parked = host
                .approvals
                .park(
                    &invocation_id,
                    caller.as_str(),
                    &artifact.info.id,
                    approvers,
                    verdict.decided_by.as_deref(),
                    &req.input,
                    req.fuel_limit,
                )
                .map_err(|e| InvokeError::Sandbox(e.to_string()))?;
            tracing::info!(pending = %parked.id, "invocation parked for approval");
            return Err(InvokeError::PendingApproval { id: parked.id, approvers: approvers.join(", ") });
        }
        // Approved: the approval satisfies `require_approval`, never a deny.
        Decision::RequireApproval(_) => {}
        _ => {
            if let Some(reason) = verdict.refusal() {
                tracing::info!(%reason, "invocation denied");
                return Err(InvokeError::Denied(reason));
            }
        }
    }

    drop(admit);

    // 2. Reserve. A sponsor grant used up by concurrent calls between
    // resolving the payer and reserving sends us back to resolve again.
    let reserve = tracing::info_span!("reserve").entered();
    let mut attempts = 0;
    let reserved = loop {
        let reservation = Reservation {
            invocation_id: invocation_id.clone(),
            artifact: artifact.info.id.clone(),
            resource_policy: manifest.resource_policy,
            caller: caller.clone(),
            owner: owner.clone(),
            payer: payer.clone(),
            price,
            fuel_limit,
            sponsor_grant: sponsorship.as_ref().map(|g| g.grant.id.clone()),
            fresh_id,
        };
        match host.ledger.reserve(&reservation) {
            Ok(reserved) => break reserved,
            Err(LedgerError::GrantUnavailable(_)) if attempts < 8 => {
                attempts += 1;
                (sponsorship, payer) =
                    resolve_payer(host, &caller, &owner, &artifact.info.id, manifest.resource_policy)?;
            }
            Err(LedgerError::Insufficient { account, asset: Asset::Scrip, available, .. }) => {
                return Err(InvokeError::InsufficientScrip { agent: account, available, price });
            }
            Err(LedgerError::Insufficient { account, asset, available, .. }) => {
                return Err(InvokeError::InsufficientBudget { agent: account, asset, available });
            }
            Err(LedgerError::DuplicateInvocation(id)) => return Err(InvokeError::InProgress(id)),
            Err(e @ LedgerError::AllocationRefused { .. }) => {
                return Err(InvokeError::AllocationRefused(e.to_string()))
            }
            Err(other) => return Err(InvokeError::Ledger(other)),
        }
    };

    drop(reserve);
    span.record("payer", payer.as_str());

    // 3. Run. From here on every path settles, so no hold outlives the call.
    let run_span = tracing::info_span!("run").entered();
    let dir = host.agent_dir(&owner);
    let disk = Arc::new(DiskMeter::new(
        host.agent_dirs.get(&owner),
        host.ledger.clone(),
        &invocation_id,
        payer.clone(),
        reserved.disk_bytes,
    ));
    // One read of the cost model for the whole call: metering, deadline and settlement agree.
    let cost = host.cost_model();
    let timeout = Duration::from_millis(limits.timeout_ms).min(req.timeout.unwrap_or(Duration::MAX));
    // Under deterministic fuel a fuel run's timeout is fuel too: the
    // timeout's CPU time at the cost model's rate, when under its budget.
    let deterministic = manifest.metering == Metering::Fuel && host.settings.deterministic_fuel;
    let timeout_fuel = deterministic.then(|| cost.fuel_for(timeout)).filter(|&f| f < reserved.fuel);
    let fuel_limit = timeout_fuel.unwrap_or(reserved.fuel);
    let context = CallContext {
        invocation_id: invocation_id.clone(),
        artifact: artifact.info.id.clone(),
        caller: caller.to_string(),
        owner: owner.to_string(),
        payer: payer.to_string(),
        resource_policy: match manifest.resource_policy {
            ResourcePolicy::CallerPays => WitResourcePolicy::CallerPays,
            ResourcePolicy::OwnerPays => WitResourcePolicy::OwnerPays,
        },
        price,
        fuel_limit,
    };
    let scope = CallScope {
        context,
        principal: owner.clone(),
        parties: [caller.clone(), owner.clone(), payer.clone()],
        ledger: host.ledger.clone(),
        judge: host.clone(),
        transfers: 0,
        nested: host.clone(),
        tasks: host.clone(),
        depth,
        nested_calls: 0,
        nested_fuel: 0,
        dir,
        disk: disk.clone(),
        root,
        limits,
        meter: match manifest.metering {
            Metering::Fuel => Meter::Fuel,
            Metering::CpuTime => Meter::cpu_time(cost.picos_per_fuel, reserved.fuel),
        },
        sponsorship: sponsorship.as_ref().map(|g| {
            (
                g.grant.id.clone(),
                g.grant.sponsor.clone(),
                host.ledger
                    .sponsorship(&g.grant.id)
                    .ok()
                    .flatten()
                    .map(|s| s.grant.fuel_limit.saturating_sub(s.fuel_spent).saturating_sub(reserved.fuel))
                    .unwrap_or(0),
            )
        }),
    };
    // Fuel metering stops the run at the budget by itself; its timeout is
    // an epoch deadline, or, under deterministic fuel, its timeout fuel
    // (and the wall clock at calls into the host). CPU-time metering
    // checks the meter at every epoch tick (see `cpu_time_watch`); its
    // first deadline is the budget's CPU time rounded down to whole
    // ticks, so the run never passes its budget (CPU time never exceeds
    // wall time). A budget under one tick cannot be enforced: such a call
    // does not run.
    let tick = host.settings.epoch_tick;
    let (store_fuel, deadline) = match manifest.metering {
        Metering::Fuel => (Some(fuel_limit), (!deterministic).then_some(timeout)),
        Metering::CpuTime => {
            let budget = Duration::from_nanos(cost.cpu_time_ns(reserved.fuel));
            let whole_ticks = tick * (budget.as_nanos() / tick.as_nanos().max(1)).min(u32::MAX as u128) as u32;
            (None, Some(if budget < timeout { whole_ticks } else { timeout }))
        }
    };
    let too_small = manifest.metering == Metering::CpuTime && deadline.is_some_and(|d| d.is_zero());
    // The payer's allocation may cap memory below the artifact's own limit.
    let memory_cap = reserved.memory_bytes.map_or(memory_limit, |cap| cap.min(memory_limit));
    let started = Instant::now();
    let run = Sandbox::for_artifact(GuestLimiter::new(memory_cap), scope, format!("artifact {}", artifact.info.id))
        .and_then(|sandbox| new_store(artifact.pre.engine(), sandbox, store_fuel, deadline, tick))
        .map(|mut store| {
            match (manifest.metering, req.cancel.clone()) {
                (Metering::CpuTime, cancel) => cpu_time_watch(&mut store, cost, tick, started + timeout, cancel),
                (Metering::Fuel, Some(cancel)) if !deterministic => cancel_watch(&mut store, cancel, started + timeout),
                (Metering::Fuel, _) => {}
            }
            // Host calls cost fuel, and under deterministic fuel the wall
            // clock is read where the guest calls into the host; every
            // wait in the host ends at the deadline.
            fuelhost_runtime::boundary::install(
                &mut store,
                fuelhost_runtime::boundary::Boundary {
                    fuel: manifest.metering == Metering::Fuel,
                    deadline: deterministic.then_some(started + timeout),
                    cancel: req.cancel.clone().filter(|_| deterministic),
                },
            );
            store.data_mut().guest.wait_limit =
                Some(fuelhost_runtime::WaitLimit { deadline: started + timeout, cancel: req.cancel.clone() });
            store.data_mut().call.meter.restart();
            let result = if too_small {
                Err(wasmtime::Trap::OutOfFuel.into())
            } else {
                when_a_slot_is_free(started + timeout, || artifact.pre.instantiate(&mut store))
                    .and_then(|inst| inst.call_run(&mut store, &req.input))
            };
            // Nested calls' fuel is charged to their payers, not here.
            let call = &store.data().call;
            let nested_fuel = call.nested_fuel;
            let spent = match call.meter.cpu_fuel_spent() {
                Some(cpu) => cpu.min(reserved.fuel),
                None => store_fuel.unwrap_or(reserved.fuel).saturating_sub(store.get_fuel().unwrap_or(0)),
            };
            let fuel_used = spent.saturating_sub(nested_fuel);
            let limiter = store.data().guest.limiter.clone();
            let console = store.data().guest.console_tail(CONSOLE_TAIL);
            if !console.is_empty() {
                tracing::debug!(target: "fuelhost::guest", %console, "guest console output");
            }
            (result, fuel_used, limiter, console)
        });
    let wall = started.elapsed();
    let (outcome, output, error, fuel_used, memory_peak) = match run {
        Ok((Ok(Ok(output)), fuel, limiter, _)) if output.len() as u64 > limits.output_bytes => {
            let message = format!(
                "output_limit: the output was {} bytes, over the artifact's limit of {} bytes (limits.output_bytes); \
                 it was dropped",
                output.len(),
                limits.output_bytes
            );
            (Outcome::OutputLimit, Vec::new(), Some(message), fuel, limiter.memory_peak())
        }
        Ok((Ok(Ok(output)), fuel, limiter, _)) => (Outcome::Success, output, None, fuel, limiter.memory_peak()),
        Ok((Ok(Err(run_error)), fuel, limiter, _)) => {
            (Outcome::RunError, Vec::new(), Some(describe_run_error(&run_error)), fuel, limiter.memory_peak())
        }
        Ok((Err(trap), fuel_spent, limiter, console)) => {
            let cancelled = req.cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst));
            let outcome = match classify_trap(&trap, limiter.memory_refused()) {
                Outcome::Timeout if cancelled => Outcome::Aborted,
                Outcome::OutOfFuel if timeout_fuel.is_some() => Outcome::Timeout,
                other => other,
            };
            // Spending the timeout fuel calls into the host, where the
            // wall clock may be found past too: the fuel says which came
            // first.
            let mut message = match (outcome, timeout_fuel) {
                (Outcome::Aborted, _) => "aborted: cancelled while running; charged for the fuel it burned".to_string(),
                (Outcome::Timeout, Some(fuel)) if fuel_spent >= fuel => format!(
                    "timeout: the run spent its timeout of {} ms counted in fuel ({fuel} fuel at {} ps per fuel; \
                     under deterministic fuel, compute is timed by fuel, not by the wall clock)",
                    timeout.as_millis(),
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
            (outcome, Vec::new(), Some(message), fuel_spent, limiter.memory_peak())
        }
        Err(setup) => (Outcome::Trap, Vec::new(), Some(format!("sandbox setup failed: {setup:#}")), 0, 0),
    };
    let (error, fuel_used) = if too_small {
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

    drop(run_span);

    // 4. Settle.
    let _settle = tracing::info_span!("settle").entered();
    let settlement = Settlement {
        invocation_id: invocation_id.clone(),
        artifact: artifact.info.id.clone(),
        caller,
        owner,
        payer,
        resource_policy: manifest.resource_policy,
        outcome,
        consumed: ResourcesConsumed {
            fuel: fuel_used,
            memory_peak_bytes: memory_peak,
            disk_bytes,
            wall_time_ns: wall.as_nanos() as u64,
            cpu_time_ns: 0,
        },
        cost_model: cost,
        output,
        error,
    };
    let record = host.ledger.settle(&settlement).map_err(InvokeError::Ledger)?;

    // 5. Report.
    host.metrics.invocation(
        record.caller.as_str(),
        record.charged_to.as_str(),
        &record.artifact,
        record.outcome.as_str(),
        record.consumed.fuel,
        record.consumed.wall_time_ns as f64 / 1e9,
    );
    tracing::info!(
        outcome = %record.outcome,
        fuel = record.consumed.fuel,
        memory_peak = record.consumed.memory_peak_bytes,
        disk = record.consumed.disk_bytes,
        charged_to = %record.charged_to,
        price_paid = record.price_paid,
        "invocation settled"
    );
    Ok(InvocationReport::from_record(record, false))
}
