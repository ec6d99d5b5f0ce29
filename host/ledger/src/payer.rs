//! Who pays for the resources an invocation burns: the payer an artifact
//! names, which the ledger charges.

use serde::{Deserialize, Serialize};

/// Who pays for the resources an invocation burns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourcePolicy {
    /// The invoking agent's budget pays.
    CallerPays,
    /// The artifact owner's budget pays.
    OwnerPays,
}

impl ResourcePolicy {
    /// The stable snake_case name, as in manifests and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourcePolicy::CallerPays => "caller_pays",
            ResourcePolicy::OwnerPays => "owner_pays",
        }
    }

    /// Read a name written by [`ResourcePolicy::as_str`]; anything else is
    /// `caller_pays`, the policy that never charges a third party.
    pub fn from_stored(s: &str) -> ResourcePolicy {
        if s == "owner_pays" {
            ResourcePolicy::OwnerPays
        } else {
            ResourcePolicy::CallerPays
        }
    }
}

impl std::fmt::Display for ResourcePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
