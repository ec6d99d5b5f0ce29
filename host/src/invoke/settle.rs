//! Stage 4, settle: one ledger transaction posts the fuel burned, releases
//! the rest, charges disk growth, pays the price on success (releases it
//! otherwise) and writes the usage record keyed by the invocation id.

use std::sync::Arc;

use fuelhost_ledger::{AdmissionRecord, Ledger, LedgerError, ResourcesConsumed, Settlement, UsageRecord};

use super::admit::Charge;
use super::reserve::Held;
use super::run::Ran;
use crate::error::InvokeError;

/// Settle `call`, held as `held`, which ran as `ran`, on `ledger` (the
/// last stage to need them: it takes them).
/// `admission`: the decision admitting it, for the audit log, if it was
/// kept back for the settlement. A settlement the ledger's database
/// refused is kept in `later` to be tried again (without the admission,
/// which the caller then records on its own), and the call answers the
/// database's error.
pub(super) fn settle(
    ledger: &Arc<dyn Ledger>,
    later: &crate::unsettled::Unsettled,
    call: Charge,
    held: Held,
    ran: Ran,
    admission: Option<AdmissionRecord>,
) -> Result<UsageRecord, InvokeError> {
    let _settle = tracing::info_span!("settle").entered();
    let settlement = Settlement {
        invocation_id: call.invocation_id,
        artifact: call.artifact,
        caller: call.caller,
        owner: call.owner,
        payer: held.payer,
        resource_policy: call.resource_policy,
        outcome: ran.outcome,
        consumed: ResourcesConsumed {
            fuel: ran.fuel_used,
            memory_peak_bytes: ran.memory_peak,
            disk_bytes: ran.disk_bytes,
            wall_time_ns: ran.wall.as_nanos() as u64,
            cpu_time_ns: 0,
            llm_tokens: ran.llm_tokens,
        },
        cost_model: ran.cost,
        admission,
        output: ran.output,
        error: ran.error,
    };
    match ledger.settle(&settlement) {
        Err(LedgerError::Storage(e)) => {
            let id = settlement.invocation_id.clone();
            later.keep(ledger, Settlement { admission: None, ..settlement });
            Err(InvokeError::SettlementPending(format!(
                "{e}; the call ran, and its settlement is tried again until the database takes it: ask again \
                 under the id `{id}` for its report"
            )))
        }
        other => other.map_err(InvokeError::Ledger),
    }
}
