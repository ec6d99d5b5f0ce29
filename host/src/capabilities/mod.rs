//! The host side of each WIT interface a guest imports (`ledger`, `policy`,
//! `log`, `invoke`, `tasks`, and 0.2.0's `llm`), and the two linkers that wire them, with
//! WASI, into guests. `filesystem` mediates the WASI filesystem an
//! artifact sees (policy checks on opens, disk quotas on writes).
//!
//! Everything a guest asks for is checked here: it reads only the balances
//! of the call's parties, moves only its principal's scrip (held until
//! settlement, and put to the policy chain as a `transfer` action), and its
//! policy questions are asked in its principal's name.

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, StoreContextMut};

use crate::bindings::artifact::fuelhost::host::{invoke, ledger, log, policy, tasks, types};
use crate::bindings::{Action, Attribute, Decision};
use crate::sandbox::Sandbox;
use fuelhost_ledger::AgentId;
use fuelhost_ledger::{GuestTransfer, LedgerError as HostLedgerError};
use fuelhost_runtime::hostcall::{per_byte, CHEAP_IMPORT, HOST_DECISION, LEDGER_READ, NESTED_INVOKE, PER_BYTE_MILLI};

mod filesystem;
mod llm;
mod nested;

impl types::Host for Sandbox {}

fn ledger_error(e: HostLedgerError) -> ledger::LedgerError {
    match e {
        HostLedgerError::UnknownAccount(a) => ledger::LedgerError::UnknownAgent(a),
        HostLedgerError::Insufficient { available, .. } => ledger::LedgerError::InsufficientScrip(available),
        HostLedgerError::Invalid(m) | HostLedgerError::Overflow(m) => ledger::LedgerError::InvalidRequest(m),
        other => ledger::LedgerError::Unavailable(other.to_string()),
    }
}

impl ledger::Host for Sandbox {
    fn context(&mut self) -> wasmtime::Result<ledger::CallContext> {
        self.guest.charge(CHEAP_IMPORT);
        Ok(self.call.context.clone())
    }

    fn fuel_left(&mut self) -> wasmtime::Result<u64> {
        // Shadowed in `artifact_linker` by a function that reads the store's
        // fuel; this body is never reached.
        Err(wasmtime::format_err!("fuel-left is answered by the linker"))
    }

    fn balance(&mut self, agent: String) -> wasmtime::Result<Result<ledger::AccountBalance, ledger::LedgerError>> {
        self.guest.charge(LEDGER_READ);
        let call = &self.call;
        if !call.parties.iter().any(|p| p.as_str() == agent) {
            return Ok(Err(ledger::LedgerError::NotPermitted(format!(
                "`{agent}` is not a party of this call; an artifact may read only its caller's, owner's and payer's balances"
            ))));
        }
        let id = AgentId::trusted(agent);
        Ok(call
            .ledger
            .balances(&id)
            .map(|b| ledger::AccountBalance {
                scrip: b.scrip.available(),
                fuel: b.fuel.available(),
                disk_bytes: b.disk_bytes.available(),
            })
            .map_err(ledger_error))
    }

    fn allocation(
        &mut self,
        agent: String,
    ) -> wasmtime::Result<Result<Option<ledger::AllocationStatus>, ledger::LedgerError>> {
        self.guest.charge(LEDGER_READ);
        let call = &self.call;
        if !call.parties.iter().any(|p| p.as_str() == agent) {
            return Ok(Err(ledger::LedgerError::NotPermitted(format!(
                "`{agent}` is not a party of this call; an artifact may read only its caller's, owner's and payer's allocations"
            ))));
        }
        let allocations = match call.ledger.allocations_of(&AgentId::trusted(agent)) {
            Ok(a) => a,
            Err(e) => return Ok(Err(ledger_error(e))),
        };
        let newest = allocations.into_iter().rev().find(|a| a.status != fuelhost_ledger::AllocationStatus::Pending);
        Ok(Ok(newest.map(|a| ledger::AllocationStatus {
            id: a.id,
            status: a.status.as_str().to_string(),
            period_index: a.period_index,
            quotas: a
                .quotas
                .iter()
                .map(|q| ledger::Quota {
                    resource: q.resource.as_str().to_string(),
                    limit: q.limit(),
                    used: q.used,
                    held: q.held,
                })
                .collect(),
        })))
    }

    fn sponsorship(&mut self) -> wasmtime::Result<Option<ledger::SponsorshipInfo>> {
        self.guest.charge(CHEAP_IMPORT);
        Ok(self.call.sponsorship.clone().map(|(grant_id, sponsor, fuel_remaining)| ledger::SponsorshipInfo {
            grant_id,
            sponsor: sponsor.to_string(),
            fuel_remaining,
        }))
    }

    fn transfer(
        &mut self,
        to: String,
        amount: u64,
        memo: String,
    ) -> wasmtime::Result<Result<String, ledger::LedgerError>> {
        self.guest.charge(HOST_DECISION + per_byte(memo.len(), PER_BYTE_MILLI));
        let call = &mut self.call;
        let to = match AgentId::new(to) {
            Ok(a) => a,
            Err(e) => return Ok(Err(ledger::LedgerError::InvalidRequest(e.to_string()))),
        };
        let mut action = crate::actions::TRANSFER.action(
            call.principal.to_string(),
            to.to_string(),
            vec![("invocation", call.context.invocation_id.clone()), ("via-artifact", call.context.artifact.clone())],
            amount,
            crate::bindings::NO_USAGE,
        );
        let verdict = call.judge.judge(Some(&call.context.invocation_id), &mut action);
        self.guest.charge(verdict.fuel);
        if let Some(reason) = verdict.refusal() {
            return Ok(Err(ledger::LedgerError::NotPermitted(reason)));
        }
        call.transfers += 1;
        let t = GuestTransfer {
            id: format!("{}/t{}", call.context.invocation_id, call.transfers),
            invocation_id: call.context.invocation_id.clone(),
            from: call.principal.clone(),
            to,
            amount,
            memo: memo.chars().take(256).collect(),
        };
        Ok(call.ledger.hold_guest_transfer(&t).map(|()| t.id).map_err(ledger_error))
    }
}

impl invoke::Host for Sandbox {
    fn invoke(
        &mut self,
        _artifact: String,
        _input: Vec<u8>,
        _fuel_limit: Option<u64>,
    ) -> wasmtime::Result<Result<invoke::InvokeResult, invoke::InvokeError>> {
        // Shadowed in `artifact_linker` by a function that reads and
        // adjusts the store's fuel; this body is never reached.
        Err(wasmtime::format_err!("invoke is answered by the linker"))
    }
}

impl tasks::Host for Sandbox {
    fn submit(&mut self, request: tasks::TaskRequest) -> wasmtime::Result<Result<String, tasks::TaskError>> {
        self.guest.charge(HOST_DECISION + per_byte(request.input.len(), PER_BYTE_MILLI));
        let call = &self.call;
        let priority = match request.priority {
            tasks::Priority::Critical => crate::Priority::Critical,
            tasks::Priority::High => crate::Priority::High,
            tasks::Priority::Normal => crate::Priority::Normal,
            tasks::Priority::Low => crate::Priority::Low,
        };
        let mut action = crate::actions::TASK_SUBMIT.action(
            call.principal.to_string(),
            request.capability.as_ref().map_or_else(|| request.artifact.clone(), |c| format!("capability:{c}")),
            vec![("priority", priority.as_str().into()), ("via-artifact", call.context.artifact.clone())],
            0,
            crate::bindings::NO_USAGE,
        );
        let verdict = call.judge.judge(Some(&call.context.invocation_id), &mut action);
        let plugin_fuel = verdict.fuel;
        if let Some(refusal) = verdict.refusal() {
            self.guest.charge(plugin_fuel);
            return Ok(Err(tasks::TaskError::Denied(refusal)));
        }
        let submitter = call.principal.to_string();
        let mut req = match request.capability {
            None => crate::TaskRequest::new(submitter, request.artifact, request.input),
            Some(capability) => {
                let mode = match request.route {
                    tasks::RouteMode::Standard => crate::RouteMode::Standard,
                    tasks::RouteMode::CostOptimized => crate::RouteMode::CostOptimized,
                    tasks::RouteMode::LatencyOptimized => crate::RouteMode::LatencyOptimized,
                    tasks::RouteMode::QualityOptimized => crate::RouteMode::QualityOptimized,
                };
                crate::TaskRequest::for_capability(submitter, capability, mode, request.input)
            }
        }
        .priority(priority)
        .retries(request.max_attempts, std::time::Duration::from_secs(1));
        req.max_price = request.max_price;
        req.fuel_limit = request.fuel_limit;
        req.id = request.id;
        req.depends_on = request.depends_on;
        req.timeout = request.timeout_ms.map(std::time::Duration::from_millis);
        let submitted = match call.tasks.submit(req) {
            Ok(task) => Ok(task.id),
            Err(e) => Err(task_error(e)),
        };
        self.guest.charge(plugin_fuel);
        Ok(submitted)
    }

    fn status(&mut self, id: String) -> wasmtime::Result<Result<tasks::TaskStatus, tasks::TaskError>> {
        self.guest.charge(LEDGER_READ);
        let call = &self.call;
        let task = match call.tasks.task(&id) {
            Ok(t) if t.submitter == call.principal.as_str() => t,
            // Another agent's task is not this artifact's to see.
            Ok(_) | Err(crate::TaskError::Unknown(_)) => {
                return Ok(Err(tasks::TaskError::Unknown(format!("no task `{id}` submitted by `{}`", call.principal))))
            }
            Err(e) => return Ok(Err(task_error(e))),
        };
        let state = match task.state {
            crate::TaskState::Pending => tasks::TaskState::Pending,
            crate::TaskState::Running => tasks::TaskState::Running,
            crate::TaskState::Completed => tasks::TaskState::Completed,
            crate::TaskState::Failed => tasks::TaskState::Failed,
            crate::TaskState::Cancelled => tasks::TaskState::Cancelled,
            crate::TaskState::TimedOut => tasks::TaskState::TimedOut,
        };
        Ok(Ok(tasks::TaskStatus {
            id: task.id,
            state,
            attempts: task.attempts,
            invocation_id: task.invocation_id,
            error: task.error,
        }))
    }
}

/// A scheduler refusal as the guest sees it.
fn task_error(e: crate::TaskError) -> tasks::TaskError {
    let message = e.to_string();
    match e {
        crate::TaskError::QueueFull { .. } => tasks::TaskError::QueueFull(message),
        crate::TaskError::Invalid(_) | crate::TaskError::NoArtifact(_) | crate::TaskError::OverMaxPrice(_) => {
            tasks::TaskError::Invalid(message)
        }
        crate::TaskError::Cycle(_) => tasks::TaskError::Cycle(message),
        crate::TaskError::Unknown(_) => tasks::TaskError::Unknown(message),
        crate::TaskError::NotCancellable(..) | crate::TaskError::Storage(_) => tasks::TaskError::Unavailable(message),
    }
}

impl policy::Host for Sandbox {
    fn check(&mut self, mut action: Action) -> wasmtime::Result<Decision> {
        self.guest.charge(HOST_DECISION);
        let call = &self.call;
        // A guest asks in its principal's name, never in anyone else's.
        action.subject = call.principal.to_string();
        action.attributes.retain(|a| a.key != "via-artifact");
        action.attributes.push(Attribute { key: "via-artifact".into(), value: call.context.artifact.clone() });
        let verdict = call.judge.judge(Some(&call.context.invocation_id), &mut action);
        self.guest.charge(verdict.fuel);
        Ok(verdict.decision)
    }
}

impl log::Host for Sandbox {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.guest.log(crate::bindings::tracing_level(level), message)
    }
}

/// Fuel the running artifact has left, by its meter.
fn fuel_left(store: &StoreContextMut<'_, Sandbox>) -> u64 {
    match store.data().call.meter.cpu_fuel_left() {
        Some(left) => left,
        None => store.get_fuel().unwrap_or(0),
    }
}

/// The linker for artifacts: WASI 0.2 (and 0.3 on a `concurrent` engine,
/// for component-model-async code), granting only what the sandbox's WASI
/// context grants, `ledger`, `policy` and `log`.
pub fn artifact_linker(engine: &Engine, concurrent: bool) -> wasmtime::Result<Linker<Sandbox>> {
    // (Every import also pays `hostcall::CROSSING` at the boundary.)
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    // WASI 0.3 for component-model-async components, over the same WASI
    // context: stdio, clocks, random, and sockets (which the context
    // denies). Not its filesystem: a write through it would pass the disk
    // meter, which watches WASI 0.2's writes (see `filesystem`); such a
    // component is refused at upload, the import named.
    if concurrent {
        wasmtime_wasi::p3::cli::add_to_linker(&mut linker)?;
        wasmtime_wasi::p3::clocks::add_to_linker(&mut linker)?;
        wasmtime_wasi::p3::random::add_to_linker(&mut linker)?;
        wasmtime_wasi::p3::sockets::add_to_linker(&mut linker)?;
    }
    // Outgoing HTTP, each request decided by the policy chain (see `egress`).
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    if concurrent {
        // WASI 0.3's outgoing requests go through the same hooks.
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    }
    types::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)?;
    ledger::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)?;
    policy::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)?;
    log::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)?;
    invoke::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)?;
    tasks::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)?;
    // `fuelhost:host@0.2.0`'s one interface more.
    crate::bindings::v0_2::fuelhost::host0_2_0::llm::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)?;
    // `fuel-left` and `invoke` need the store (to read and adjust fuel),
    // which generated host traits do not get: answer them directly.
    linker.allow_shadowing(true);
    linker
        .instance("fuelhost:host/ledger@0.1.0")?
        .func_wrap("fuel-left", |store: StoreContextMut<'_, Sandbox>, (): ()| Ok((fuel_left(&store),)))?;
    linker.instance("fuelhost:host/invoke@0.1.0")?.func_wrap(
        "invoke",
        |mut store: StoreContextMut<'_, Sandbox>, (artifact, input, fuel_limit): (String, Vec<u8>, Option<u64>)| {
            let fuel_left = fuel_left(&store);
            store.data_mut().guest.charge(NESTED_INVOKE + per_byte(input.len(), PER_BYTE_MILLI));
            let deadline = store.data().guest.wait_limit.as_ref().map(|w| w.deadline);
            let call = &mut store.data_mut().call;
            let cpu_before = call.meter.cpu_fuel_spent();
            let result = nested::nested(call, artifact, input, fuel_limit, fuel_left, deadline);
            match (cpu_before, call.meter.cpu_fuel_spent()) {
                // A CPU-metered caller: the whole nested call (its guest and
                // the host's work for it) ran on this thread and is charged
                // to the callee's payer, so none of it is the caller's.
                (Some(before), Some(after)) => call.nested_fuel += after.saturating_sub(before),
                // A fuel-metered caller pays the nested call's fuel out of its
                // own counter; it is charged to the callee's payer instead.
                _ => {
                    if let Ok(r) = &result {
                        call.nested_fuel += r.usage.fuel;
                        store.set_fuel(fuel_left.saturating_sub(r.usage.fuel))?;
                    }
                }
            }
            Ok((result,))
        },
    )?;
    filesystem::shadow(&mut linker)?;
    fuelhost_runtime::io::shadow(&mut linker)?;
    linker.allow_shadowing(false);
    Ok(linker)
}
