//! Registering an agent with its configuration in one call: the account
//! and its directory, a starting budget, limits (the quotas of an
//! allocation activated for it) and policies (rules scoped to it).
//!
//! Every step is idempotent and keyed by the agent: the budget is minted
//! under ids `register/<agent>/<asset>`, the allocation is
//! `register/<agent>`, the rules are named `<agent>/<name>`. Registering
//! again with the same configuration changes nothing, and finishes what an
//! interrupted registration left undone; registering again with other
//! rules replaces the agent's rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::HostError;
use crate::Host;
use fuelhost_ledger::{Allocation, AllocationRequest, AllocationStatus, Asset, LedgerError, Resource};
use fuelhost_policy::rules::{Rule, RuleSet};

/// What an agent is registered with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Minted to the agent at registration.
    #[serde(default)]
    pub budget: AgentBudget,
    /// Quotas per period of the agent's own allocation (`fuel`,
    /// `api_calls`, `concurrent_tasks`, ...); none: no allocation.
    #[serde(default)]
    pub limits: BTreeMap<Resource, u64>,
    /// Rules governing the agent's actions (their scope is set to the
    /// agent; their names are prefixed with it). Written as a map from
    /// name to rule ([`fuelhost_policy::rules::by_name`]).
    #[serde(default, with = "fuelhost_policy::rules::by_name")]
    pub rules: Vec<Rule>,
}

/// A starting budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentBudget {
    /// Scrip.
    #[serde(default)]
    pub scrip: u64,
    /// Fuel.
    #[serde(default)]
    pub fuel: u64,
    /// Disk bytes.
    #[serde(default)]
    pub disk_bytes: u64,
    /// LLM tokens.
    #[serde(default)]
    pub llm_tokens: u64,
}

/// What registration did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Registration {
    /// The agent.
    pub agent: String,
    /// Whether this call created it (false: it existed).
    pub created: bool,
    /// Its allocation, when it has limits.
    pub allocation: Option<Allocation>,
    /// The names of its rules in force.
    pub rules: Vec<String>,
}

/// The id of the allocation registration makes for `agent`.
pub fn allocation_id(agent: &str) -> String {
    format!("register/{agent}")
}

impl Host {
    /// Register `agent` with its configuration: create it (if new), mint
    /// its budget, activate an allocation with its limits, put its rules in
    /// force. Idempotent: see [`crate::registration`].
    pub fn register_agent(&self, agent: &str, config: &AgentConfig) -> Result<Registration, HostError> {
        register(self, agent, config)
    }
}

/// Register `agent` with `config` on `host` (see the module docs).
fn register(host: &Host, agent: &str, config: &AgentConfig) -> Result<Registration, HostError> {
    // Check everything that can be checked before changing anything: the
    // rules as written (a scope they give is replaced, but must be one),
    // then merged with everyone else's.
    RuleSet::new(config.rules.clone()).map_err(HostError::Rules)?;
    let scope = format!("agent:{agent}");
    let own: Vec<Rule> = config
        .rules
        .iter()
        .cloned()
        .map(|mut r| {
            if !r.name.starts_with(&format!("{agent}/")) {
                r.name = format!("{agent}/{}", r.name);
            }
            r.scope = scope.clone();
            r
        })
        .collect();
    let mut merged: Vec<Rule> = host.policy_rules().into_iter().filter(|r| r.scope != scope).collect();
    merged.extend(own.iter().cloned());
    let rules = RuleSet::new(merged).map_err(HostError::Rules)?;

    let created = match host.create_agent(agent) {
        Ok(_) => true,
        Err(HostError::Ledger(LedgerError::AccountExists(_))) => false,
        Err(e) => return Err(e),
    };
    for (asset, amount) in [
        (Asset::Scrip, config.budget.scrip),
        (Asset::Fuel, config.budget.fuel),
        (Asset::DiskBytes, config.budget.disk_bytes),
        (Asset::LlmTokens, config.budget.llm_tokens),
    ] {
        if amount > 0 {
            host.mint(&format!("register/{agent}/{asset}"), agent, asset, amount)?;
        }
    }
    let allocation = if config.limits.is_empty() {
        None
    } else {
        let id = allocation_id(agent);
        let mut req = AllocationRequest::new(&id, crate::AgentId::new(agent)?, config.limits.clone());
        req.auto_approve = true;
        let a = host.request_allocation(&req)?;
        Some(match a.status {
            AllocationStatus::Approved => host.activate_allocation(&id)?,
            _ => a,
        })
    };
    if !own.is_empty() || host.policy_rules().iter().any(|r| r.scope == scope) {
        host.replace_policy_rules(rules)?;
    }
    Ok(Registration { agent: agent.to_string(), created, allocation, rules: own.into_iter().map(|r| r.name).collect() })
}
