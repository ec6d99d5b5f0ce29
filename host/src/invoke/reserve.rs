//! Stage 2, reserve: one ledger transaction holds the price from the
//! caller and the fuel (the call's limit capped by the payer's budget) from
//! the payer. Not enough of either refuses the call, nothing charged. A
//! sponsor grant used up by concurrent calls since admission is resolved
//! again here (the payer may change), at most eight times.

use fuelhost_ledger::{AgentId, Asset, Ledger, LedgerError, Reservation, Reserved, SponsorGrantStatus};

use super::admit::Charge;
use super::payer::resolve_payer;
use crate::error::InvokeError;

/// What reservation holds for a call, and who ended up paying.
pub(super) struct Held {
    /// What the ledger holds: fuel, disk, the allocation's memory cap.
    pub reserved: Reserved,
    /// Who pays for resources.
    pub payer: AgentId,
    /// The sponsor grant paying, if one does.
    pub sponsorship: Option<SponsorGrantStatus>,
}

/// Hold what `call` may spend on `ledger`.
pub(super) fn reserve(ledger: &dyn Ledger, call: &Charge) -> Result<Held, InvokeError> {
    let _reserve = tracing::info_span!("reserve").entered();
    let (mut sponsorship, mut payer) = (call.sponsorship.clone(), call.payer.clone());
    let mut attempts = 0;
    loop {
        let reservation = Reservation {
            invocation_id: call.invocation_id.clone(),
            artifact: call.artifact.clone(),
            resource_policy: call.resource_policy,
            caller: call.caller.clone(),
            owner: call.owner.clone(),
            payer: payer.clone(),
            price: call.price,
            fuel_limit: call.fuel_limit,
            sponsor_grant: sponsorship.as_ref().map(|g| g.grant.id.clone()),
            fresh_id: call.fresh_id,
        };
        match ledger.reserve(&reservation) {
            Ok(reserved) => return Ok(Held { reserved, payer, sponsorship }),
            Err(LedgerError::GrantUnavailable(_)) if attempts < 8 => {
                attempts += 1;
                (sponsorship, payer) =
                    resolve_payer(ledger, &call.caller, &call.owner, &call.artifact, call.resource_policy)?;
            }
            Err(LedgerError::Insufficient { account, asset: Asset::Scrip, available, .. }) => {
                return Err(InvokeError::InsufficientScrip { agent: account, available, price: call.price });
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
    }
}
