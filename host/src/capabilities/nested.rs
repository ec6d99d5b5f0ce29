//! The host side of the `invoke` import: a guest invokes another artifact
//! as its principal, within its own limits (nesting depth, number of nested
//! calls, the fuel it has left, its deadline); the call runs through the
//! host's pipeline ([`crate::sandbox::NestedInvoker`]) and is charged to
//! its own payer.

use std::time::Instant;

use fuelhost_ledger::Outcome;

use crate::bindings::artifact::fuelhost::host::invoke as wit_invoke;
use crate::bindings::artifact::fuelhost::host::types::Outcome as WitOutcome;
use crate::bindings::Usage;
use crate::error::InvokeError;
use crate::invocation::Invocation;
use crate::sandbox::CallScope;

/// How deep artifacts may invoke artifacts.
pub const MAX_NESTING: u32 = 4;

/// Answer a guest's `invoke` import: invoke `artifact` as the calling
/// run's principal, with at most `fuel_left` fuel, ending by the calling
/// run's `deadline`.
pub(crate) fn nested(
    scope: &mut CallScope,
    artifact: String,
    input: Vec<u8>,
    fuel_limit: Option<u64>,
    fuel_left: u64,
    deadline: Option<Instant>,
) -> Result<wit_invoke::InvokeResult, wit_invoke::InvokeError> {
    if scope.depth + 1 > MAX_NESTING {
        return Err(wit_invoke::InvokeError::TooDeep(MAX_NESTING));
    }
    if u64::from(scope.nested_calls) >= scope.limits.nested_calls {
        return Err(wit_invoke::InvokeError::Unavailable(format!(
            "nested_calls limit: this call already made {} nested invocations, its limit (limits.nested_calls)",
            scope.nested_calls
        )));
    }
    let fuel = fuel_limit.unwrap_or(u64::MAX).min(fuel_left);
    if fuel == 0 {
        return Err(wit_invoke::InvokeError::OutOfFuel);
    }
    scope.nested_calls += 1;
    let req = Invocation {
        caller: scope.principal.to_string(),
        artifact,
        input,
        fuel_limit: Some(fuel),
        id: Some(format!("{}/n{}", scope.context.invocation_id, scope.nested_calls)),
        timeout: deadline.map(|d| d.saturating_duration_since(Instant::now())),
        approved_by: None,
        cancel: None,
        root: Some(scope.root.clone()),
        http: None,
    };
    match scope.nested.clone().invoke_nested(req, scope.depth + 1) {
        Ok(r) => Ok(wit_invoke::InvokeResult {
            outcome: wit_outcome(r.outcome),
            output: r.output,
            error: r.error,
            usage: Usage {
                fuel: r.resources_consumed.fuel,
                memory_peak_bytes: r.resources_consumed.memory_peak_bytes,
                disk_bytes: r.resources_consumed.disk_bytes,
                llm_tokens: r.resources_consumed.llm_tokens,
                wall_time_ns: r.resources_consumed.wall_time_ns,
            },
            charged_to: r.charged_to.to_string(),
            price_paid: r.price_paid,
        }),
        Err(e) => Err(match e {
            InvokeError::UnknownArtifact(a) => wit_invoke::InvokeError::UnknownArtifact(a),
            e @ (InvokeError::Denied(_) | InvokeError::AllocationRefused(_) | InvokeError::PendingApproval { .. }) => {
                wit_invoke::InvokeError::Denied(e.to_string())
            }
            e @ (InvokeError::InsufficientScrip { .. } | InvokeError::InsufficientBudget { .. }) => {
                wit_invoke::InvokeError::InsufficientFunds(e.to_string())
            }
            other => wit_invoke::InvokeError::Unavailable(other.to_string()),
        }),
    }
}

fn wit_outcome(o: Outcome) -> WitOutcome {
    match o {
        Outcome::Success => WitOutcome::Success,
        Outcome::RunError => WitOutcome::RunError,
        Outcome::OutOfFuel => WitOutcome::OutOfFuel,
        Outcome::MemoryLimit => WitOutcome::MemoryLimit,
        Outcome::StackOverflow => WitOutcome::StackOverflow,
        Outcome::Timeout => WitOutcome::Timeout,
        Outcome::DiskLimit => WitOutcome::DiskLimit,
        // The contract's outcomes are frozen: a newer limit reads as a
        // trap, its error says which.
        Outcome::OutputLimit | Outcome::LogLimit => WitOutcome::Trap,
        Outcome::Trap => WitOutcome::Trap,
        Outcome::Aborted => WitOutcome::Aborted,
    }
}
