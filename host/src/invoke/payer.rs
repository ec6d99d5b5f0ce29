//! Who pays for a call's resources, shared by admission (which decides
//! with it) and reservation (which resolves it again when a sponsor grant
//! ran out in between).

use fuelhost_ledger::{AgentId, LedgerQuery, SponsorGrantStatus};

use crate::error::InvokeError;
use crate::manifest::ResourcePolicy;

/// Who pays for resources: the owner under `owner_pays`; under
/// `caller_pays` the caller, unless a sponsor grant covers the caller for
/// this artifact.
pub(super) fn resolve_payer(
    ledger: &dyn LedgerQuery,
    caller: &AgentId,
    owner: &AgentId,
    artifact: &str,
    policy: ResourcePolicy,
) -> Result<(Option<SponsorGrantStatus>, AgentId), InvokeError> {
    Ok(match policy {
        ResourcePolicy::OwnerPays => (None, owner.clone()),
        ResourcePolicy::CallerPays if caller == owner => (None, caller.clone()),
        ResourcePolicy::CallerPays => match ledger.sponsorship_for(caller, artifact).map_err(InvokeError::Ledger)? {
            Some(grant) => {
                let sponsor = grant.grant.sponsor.clone();
                (Some(grant), sponsor)
            }
            None => (None, caller.clone()),
        },
    })
}
