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
//! Each stage is a module of its own (`admit`, `reserve`, `run`, `settle`,
//! `report`), taking what the stage before returned and returning a typed
//! result to the next; none calls back into an earlier one. The driver,
//! [`pipeline`], reads top to bottom. Each invocation runs in an
//! `invocation` span and stages 1 to 4 in child spans named after them;
//! see `telemetry` for the fields. A [`StageClock`] times the stages (the
//! run split into setup, instantiate, call and teardown) for the host's
//! stage budget.

mod admit;
mod http;
mod payer;
mod report;
mod reserve;
mod run;
mod settle;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use self::admit::Admission;
use crate::error::InvokeError;
use crate::invocation::{Invocation, InvocationReport};
use crate::sandbox::NestedInvoker;
use crate::state::HostInner;
use crate::telemetry::{Stage, StageClock};

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
        InvokeError::InvalidArguments { .. } => "invalid_arguments",
        InvokeError::WrongCall { .. } => "wrong_call",
        InvokeError::Busy(_) => "busy",
        InvokeError::Ledger(_) => "ledger_error",
        InvokeError::Sandbox(_) => "sandbox_error",
        InvokeError::SettlementPending(_) => "settlement_pending",
    }
}

/// One invocation, stage by stage (see the module docs): admit, reserve,
/// run, settle, report, under `span`, the invocation's.
fn pipeline(
    host: &Arc<HostInner>,
    req: Invocation,
    depth: u32,
    span: &tracing::Span,
) -> Result<InvocationReport, InvokeError> {
    let mut clock = StageClock::start();
    let artifacts = |id: &str| {
        host.registry.get(id).map_err(|e| {
            InvokeError::Sandbox(format!("loading the code of `{id}` failed ({e}); nothing was charged, try again"))
        })
    };
    let call = match admit::admit(&admit::AdmitEnv::of(host, &artifacts), req, depth, span)? {
        Admission::Replay(report) => return Ok(report),
        Admission::Admitted(call) => call,
    };
    clock.mark(Stage::Admit);
    let held = reserve::reserve(&*host.ledger, &call.charge)
        .inspect_err(|_| host.audit.flush_admission(&call.charge.invocation_id))?;
    span.record("payer", held.payer.as_str());
    clock.mark(Stage::Reserve);
    let ran = run::run(run::RunEnv::of(host, &call.charge.owner), &call, &held, depth, &mut clock);
    clock.mark(Stage::Teardown);
    // The slot is held until the call has settled; so is an HTTP
    // response's last chunk (see `crate::proxy`).
    let admit::Admitted { charge, _slot, req, .. } = *call;
    // The admission, if still kept back, goes with the settlement (or, should
    // that fail, on its own).
    let kept = host.audit.take_admission(&charge.invocation_id);
    let id = charge.invocation_id.clone();
    let record =
        settle::settle(&host.ledger, &host.unsettled, charge, held, ran, kept.as_ref().map(|k| k.record.clone()))
            .inspect_err(|_| {
                if let Some(k) = &kept {
                    host.audit.record_admission(&id, k);
                }
                if let Some(exchange) = &req.http {
                    exchange.cut("the call's settlement did not complete; its report is pending");
                }
            })?;
    drop(req);
    clock.mark(Stage::Settle);
    let report = report::report(&host.metrics, record);
    clock.mark(Stage::Report);
    host.metrics.stages.add(&clock);
    Ok(report)
}
