//! Allocations, after the Resource Allocation Protocol: an agent's quota
//! envelope per resource and per period, with a lifecycle.
//!
//! Budgets (fuel, disk, scrip) stay ledger balances; an allocation limits
//! how much of them, and of resources the host does not hold as balances
//! (API calls, LLM tokens, a money budget), an agent may consume per
//! period, and caps its memory and concurrent tasks.
//!
//! Lifecycle: `pending` -> `approved` -> `active` -> `exhausted` /
//! `expired` / `revoked`. An agent with any allocation past `pending` is
//! *governed*: it can be charged only while one of its allocations is
//! active. An agent that never had one is limited by its budgets alone.
//!
//! Periods are computed lazily from the activation time: whenever an
//! allocation is touched, the periods that ended since are rolled
//! (`reset`: usage starts again from zero; `carry_over`: what was left
//! unused is added to the next period's quota). An `exhausted` allocation
//! becomes `active` again when a new period starts. Because it is derived
//! from stored times, this is correct across restarts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::agent::AgentId;

/// What an allocation sets quotas on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// Fuel burned, per period.
    Fuel,
    /// Disk growth, bytes per period.
    DiskBytes,
    /// Invocations paid for, per period.
    ApiCalls,
    /// LLM tokens, per period (reported with `record_usage`).
    LlmTokens,
    /// Money, in micro-USD, per period (reported with `record_usage`, or
    /// derived from fuel by the host's cost model).
    BudgetUsdMicros,
    /// Cap on a sandbox's linear memory, bytes (not consumed).
    MemoryBytes,
    /// Cap on invocations running at once (not consumed).
    ConcurrentTasks,
}

impl Resource {
    /// Every resource, in a fixed order.
    pub const ALL: [Resource; 7] = [
        Resource::Fuel,
        Resource::DiskBytes,
        Resource::ApiCalls,
        Resource::LlmTokens,
        Resource::BudgetUsdMicros,
        Resource::MemoryBytes,
        Resource::ConcurrentTasks,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Fuel => "fuel",
            Resource::DiskBytes => "disk_bytes",
            Resource::ApiCalls => "api_calls",
            Resource::LlmTokens => "llm_tokens",
            Resource::BudgetUsdMicros => "budget_usd_micros",
            Resource::MemoryBytes => "memory_bytes",
            Resource::ConcurrentTasks => "concurrent_tasks",
        }
    }

    /// The value named `s` (as written by `as_str`), if any.
    pub fn parse(s: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// A cap limits what is in use at once; it is never used up.
    pub fn is_cap(self) -> bool {
        matches!(self, Resource::MemoryBytes | Resource::ConcurrentTasks)
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to unused quota when a period ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rollover {
    /// Start the next period from the quota again.
    Reset,
    /// Add what was left unused to the next period's quota.
    CarryOver,
}

/// A repeating accounting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// Length, milliseconds (at least one second).
    pub length_ms: u64,
    /// What unused quota does at the period's end.
    pub rollover: Rollover,
}

/// Lifecycle state of an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocationStatus {
    /// Waiting for approval.
    Pending,
    /// Approved, not yet active.
    Approved,
    /// In use: charges draw from it.
    Active,
    /// A quota hit its hard threshold: no further charges this period.
    Exhausted,
    /// Its duration ended.
    Expired,
    /// Cancelled, with a reason.
    Revoked,
}

impl AllocationStatus {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AllocationStatus::Pending => "pending",
            AllocationStatus::Approved => "approved",
            AllocationStatus::Active => "active",
            AllocationStatus::Exhausted => "exhausted",
            AllocationStatus::Expired => "expired",
            AllocationStatus::Revoked => "revoked",
        }
    }

    /// The value named `s` (as written by `as_str`), if any.
    pub fn parse(s: &str) -> Option<AllocationStatus> {
        [
            AllocationStatus::Pending,
            AllocationStatus::Approved,
            AllocationStatus::Active,
            AllocationStatus::Exhausted,
            AllocationStatus::Expired,
            AllocationStatus::Revoked,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for AllocationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn default_priority() -> u8 {
    5
}
fn default_soft() -> u8 {
    80
}
fn default_hard() -> u8 {
    100
}

/// A request for an allocation. User-written (API, config), so serde with
/// `deny_unknown_fields`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationRequest {
    /// Idempotency key and the allocation's id.
    pub id: String,
    /// The agent it is for.
    pub agent: AgentId,
    /// Quota per resource (per period, when there is a period).
    pub quotas: BTreeMap<Resource, u64>,
    /// 1 (lowest) to 10 (highest). Default 5.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// How long it lasts once activated, ms; `None`: until revoked.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Repeating period; `None`: one period for the whole life.
    #[serde(default)]
    pub period: Option<Period>,
    /// Approve at once instead of waiting in `pending`.
    #[serde(default)]
    pub auto_approve: bool,
    /// Usage percent at which an alert is raised, once per period.
    /// Default 80.
    #[serde(default = "default_soft")]
    pub soft_threshold_percent: u8,
    /// Usage percent at which charges are refused and the allocation is
    /// `exhausted`. Default 100.
    #[serde(default = "default_hard")]
    pub hard_threshold_percent: u8,
}

impl AllocationRequest {
    /// A request with the defaults: priority 5, no duration, no period,
    /// pending, thresholds 80% / 100%.
    pub fn new(id: impl Into<String>, agent: AgentId, quotas: BTreeMap<Resource, u64>) -> AllocationRequest {
        AllocationRequest {
            id: id.into(),
            agent,
            quotas,
            priority: default_priority(),
            duration_ms: None,
            period: None,
            auto_approve: false,
            soft_threshold_percent: default_soft(),
            hard_threshold_percent: default_hard(),
        }
    }

    /// Why the request cannot be accepted, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.id.is_empty() || self.id.len() > 128 {
            return Some("id must be 1 to 128 characters".into());
        }
        if self.quotas.is_empty() {
            return Some("quotas must name at least one resource".into());
        }
        if let Some((r, q)) = self.quotas.iter().find(|(_, q)| **q > i64::MAX as u64) {
            return Some(format!("quota for {r} ({q}) exceeds {}", i64::MAX));
        }
        if !(1..=10).contains(&self.priority) {
            return Some(format!("priority must be 1 to 10, not {}", self.priority));
        }
        if self.soft_threshold_percent == 0 || self.soft_threshold_percent > self.hard_threshold_percent {
            return Some("soft threshold must be above 0 and at most the hard threshold".into());
        }
        if self.hard_threshold_percent == 0 || self.hard_threshold_percent > 100 {
            return Some("hard threshold must be 1 to 100 percent".into());
        }
        if let Some(p) = self.period {
            if p.length_ms < 1_000 {
                return Some("period length must be at least 1000 ms".into());
            }
        }
        if self.duration_ms == Some(0) {
            return Some("duration must be above zero".into());
        }
        None
    }
}

/// One quota and its use in the current period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUsage {
    /// The resource.
    pub resource: Resource,
    /// Quota per period.
    pub quota: u64,
    /// Unused quota carried into this period (carry-over only).
    pub carried: u64,
    /// Used this period (for caps: always 0).
    pub used: u64,
    /// Held by running invocations (for caps: what is in use now).
    pub held: u64,
}

impl QuotaUsage {
    /// This period's limit: quota plus carry.
    pub fn limit(&self) -> u64 {
        self.quota.saturating_add(self.carried)
    }

    /// Percent of this period's limit used (0 to 100+, rounded down).
    pub fn percent_used(&self) -> u64 {
        let limit = self.limit();
        if limit == 0 {
            return if self.used > 0 { 100 } else { 0 };
        }
        ((self.used as u128 * 100) / limit as u128) as u64
    }

    /// Limit at the hard threshold.
    pub fn hard_limit(&self, hard_percent: u8) -> u64 {
        ((self.limit() as u128 * hard_percent as u128) / 100) as u64
    }
}

/// An allocation as stored, with its current period's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Its id.
    pub id: String,
    /// Whose.
    pub agent: AgentId,
    /// Lifecycle state.
    pub status: AllocationStatus,
    /// 1 to 10.
    pub priority: u8,
    /// Quotas and usage this period.
    pub quotas: Vec<QuotaUsage>,
    /// The period, if it repeats.
    pub period: Option<Period>,
    /// Periods elapsed since activation (0 for the first).
    pub period_index: u64,
    /// Life after activation, ms.
    pub duration_ms: Option<u64>,
    /// When it was activated (Unix ms).
    pub activated_at_ms: Option<i64>,
    /// When it expires (Unix ms).
    pub expires_at_ms: Option<i64>,
    /// Alert threshold, percent.
    pub soft_threshold_percent: u8,
    /// Refusal threshold, percent.
    pub hard_threshold_percent: u8,
    /// Why it was revoked.
    pub revoke_reason: Option<String>,
}

/// What an allocation lets one call use (see [`Allocation::hold_call`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallCaps {
    /// Fuel it may burn.
    pub fuel: u64,
    /// Disk it may grow by (None: no quota).
    pub disk_bytes: Option<u64>,
    /// Memory cap (None: no quota).
    pub memory_bytes: Option<u64>,
}

/// What one call charged, for its allocation (see
/// [`Allocation::settle_call`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallUsage {
    /// Fuel held for it when it reserved.
    pub fuel_held: u64,
    /// Fuel charged.
    pub fuel: u64,
    /// Disk charged.
    pub disk_bytes: u64,
    /// Money cost of it.
    pub cost_usd_micros: u64,
    /// Language-model tokens charged.
    pub llm_tokens: u64,
}

/// An alert an allocation raises (see [`Allocation::thresholds`]); a
/// backend records each once per allocation, kind and period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// Which.
    pub kind: AlertKind,
    /// On which quota (none for an expiry).
    pub resource: Option<Resource>,
    /// Percent used then.
    pub percent: u64,
}

fn remaining(q: &QuotaUsage, hard: u8) -> u64 {
    q.hard_limit(hard).saturating_sub(q.used).saturating_sub(q.held)
}

impl Allocation {
    /// Bring it up to `now_ms`: roll the periods that ended (an exhausted
    /// allocation is active again in a new period), expire it. Whether it
    /// changed, and the alert its expiry raises.
    pub fn refresh(&mut self, now_ms: i64) -> (bool, Option<Raised>) {
        if !matches!(self.status, AllocationStatus::Active | AllocationStatus::Exhausted) {
            return (false, None);
        }
        let Some(activated) = self.activated_at_ms else { return (false, None) };
        let mut changed = false;
        let index = period_index(self.period, activated, now_ms);
        if index > self.period_index {
            let rollover = self.period.map(|p| p.rollover).unwrap_or(Rollover::Reset);
            for q in &mut self.quotas {
                roll_quota(q, rollover, index - self.period_index);
            }
            self.period_index = index;
            if self.status == AllocationStatus::Exhausted {
                self.status = AllocationStatus::Active;
            }
            changed = true;
        }
        if self.expires_at_ms.is_some_and(|t| now_ms >= t) {
            self.status = AllocationStatus::Expired;
            return (true, Some(Raised { kind: AlertKind::Expired, resource: None, percent: 0 }));
        }
        (changed, None)
    }

    /// Take one call's share: an API call, a concurrent task, and up to
    /// `fuel_wanted` fuel, held until it settles. The refusal's reason
    /// when a quota is used up or the concurrency cap reached.
    pub fn hold_call(&mut self, fuel_wanted: u64) -> Result<CallCaps, String> {
        let refuse = |what: String| format!("allocation `{}`: {what}", self.id);
        let hard = self.hard_threshold_percent;
        let mut caps = CallCaps { fuel: fuel_wanted, disk_bytes: None, memory_bytes: None };
        for q in &self.quotas {
            let left = remaining(q, hard);
            match q.resource {
                Resource::ApiCalls if left == 0 => return Err(refuse("API call quota used up this period".into())),
                Resource::Fuel if left == 0 => return Err(refuse("fuel quota used up this period".into())),
                Resource::Fuel => caps.fuel = caps.fuel.min(left),
                Resource::LlmTokens | Resource::BudgetUsdMicros if left == 0 => {
                    return Err(refuse(format!("{} quota used up this period", q.resource)))
                }
                Resource::DiskBytes => caps.disk_bytes = Some(left),
                Resource::MemoryBytes => caps.memory_bytes = Some(q.quota),
                Resource::ConcurrentTasks if q.held >= q.quota => {
                    return Err(refuse(format!("{} invocations already running, the cap is {}", q.held, q.quota)))
                }
                _ => {}
            }
        }
        for q in &mut self.quotas {
            match q.resource {
                Resource::ApiCalls | Resource::ConcurrentTasks => q.held += 1,
                Resource::Fuel => q.held += caps.fuel,
                _ => {}
            }
        }
        Ok(caps)
    }

    /// Turn a call's holds into use. `served` is false for a call a
    /// stopped host left: it counts no API call.
    pub fn settle_call(&mut self, usage: &CallUsage, served: bool) {
        for q in &mut self.quotas {
            match q.resource {
                Resource::ApiCalls => {
                    q.held = q.held.saturating_sub(1);
                    q.used += u64::from(served);
                }
                Resource::ConcurrentTasks => q.held = q.held.saturating_sub(1),
                Resource::Fuel => {
                    q.held = q.held.saturating_sub(usage.fuel_held);
                    q.used += usage.fuel;
                }
                Resource::DiskBytes => q.used += usage.disk_bytes,
                Resource::LlmTokens => q.used = q.used.saturating_add(usage.llm_tokens),
                Resource::BudgetUsdMicros => q.used = q.used.saturating_add(usage.cost_usd_micros),
                _ => {}
            }
        }
    }

    /// Add usage reported from outside the host (LLM tokens, money, ...)
    /// to its quota on `resource`; then [`Allocation::thresholds`]. Why
    /// not, when it has no such quota or the resource is a cap.
    pub fn add_usage(&mut self, resource: Resource, amount: u64) -> Result<(), String> {
        let id = self.id.clone();
        let q = self
            .quotas
            .iter_mut()
            .find(|q| q.resource == resource)
            .ok_or_else(|| format!("allocation `{id}` has no {resource} quota"))?;
        if resource.is_cap() {
            return Err(format!("{resource} is a cap, not a consumable"));
        }
        q.used = q.used.saturating_add(amount);
        Ok(())
    }

    /// Apply the thresholds after use changed: an alert at the soft one,
    /// `exhausted` (and its alert) at the hard one.
    pub fn thresholds(&mut self) -> Vec<Raised> {
        let mut raised = Vec::new();
        for q in self.quotas.clone().iter().filter(|q| !q.resource.is_cap()) {
            let percent = q.percent_used();
            if percent >= self.soft_threshold_percent as u64 {
                raised.push(Raised { kind: AlertKind::SoftThreshold, resource: Some(q.resource), percent });
            }
            if q.used >= q.hard_limit(self.hard_threshold_percent) && self.status == AllocationStatus::Active {
                self.status = AllocationStatus::Exhausted;
                raised.push(Raised { kind: AlertKind::Exhausted, resource: Some(q.resource), percent });
            }
        }
        raised
    }

    /// The quota on `resource`, if any.
    pub fn quota(&self, resource: Resource) -> Option<&QuotaUsage> {
        self.quotas.iter().find(|q| q.resource == resource)
    }

    /// Percent used of `resource` this period, if it has a quota.
    pub fn usage_percent(&self, resource: Resource) -> Option<u64> {
        self.quota(resource).map(QuotaUsage::percent_used)
    }
}

/// A step in an allocation's lifecycle that someone asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocationTransition {
    /// `pending` -> `approved`.
    Approve,
    /// `approved` -> `active`: its periods and duration start now. An
    /// agent has at most one active allocation.
    Activate,
    /// Lengthen its duration (and expiry) by `additional_ms`; allowed
    /// until it expires or is revoked.
    Extend {
        /// Milliseconds more.
        additional_ms: u64,
    },
    /// Cancel it, with a reason (kept to 500 characters); no further
    /// charge draws from it.
    Revoke {
        /// Why.
        reason: String,
    },
}

impl AllocationTransition {
    /// The verb, as in "cannot approve allocation `a`".
    pub fn verb(&self) -> &'static str {
        match self {
            AllocationTransition::Approve => "approve",
            AllocationTransition::Activate => "activate",
            AllocationTransition::Extend { .. } => "extend",
            AllocationTransition::Revoke { .. } => "revoke",
        }
    }

    /// `a` after this transition at `now_ms`, or why its status does not
    /// allow it. (That an agent has one active allocation at most is the
    /// backend's to check: it needs the agent's other allocations.)
    pub fn apply(&self, mut a: Allocation, now_ms: i64) -> Result<Allocation, String> {
        use AllocationStatus::*;
        match self {
            AllocationTransition::Approve if a.status == Pending => a.status = Approved,
            AllocationTransition::Activate if a.status == Approved => {
                a.status = Active;
                a.activated_at_ms = Some(now_ms);
                a.expires_at_ms = a.duration_ms.map(|d| now_ms.saturating_add(d as i64));
                a.period_index = 0;
            }
            AllocationTransition::Extend { additional_ms }
                if matches!(a.status, Pending | Approved | Active | Exhausted) =>
            {
                let more = (*additional_ms).min(i64::MAX as u64);
                // A duration past the 64-bit signed range is as good as none.
                a.duration_ms = a.duration_ms.map(|d| d.saturating_add(more).min(i64::MAX as u64));
                a.expires_at_ms = a.expires_at_ms.map(|t| t.saturating_add(more as i64));
            }
            AllocationTransition::Revoke { reason } if !matches!(a.status, Revoked | Expired) => {
                a.status = Revoked;
                a.revoke_reason = Some(reason.chars().take(500).collect());
            }
            _ => return Err(format!("cannot {} allocation `{}`: it is {}", self.verb(), a.id, a.status)),
        }
        Ok(a)
    }
}

/// What raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Usage crossed the soft threshold.
    SoftThreshold,
    /// Usage reached the hard threshold: the allocation is exhausted.
    Exhausted,
    /// The allocation's duration ended.
    Expired,
}

impl AlertKind {
    /// The stable snake_case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::SoftThreshold => "soft_threshold",
            AlertKind::Exhausted => "exhausted",
            AlertKind::Expired => "expired",
        }
    }

    /// The value named `s` (as written by `as_str`), if any.
    pub fn parse(s: &str) -> Option<AlertKind> {
        [AlertKind::SoftThreshold, AlertKind::Exhausted, AlertKind::Expired].into_iter().find(|k| k.as_str() == s)
    }
}

/// A budget alert: raised at most once per allocation, kind and period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// The allocation.
    pub allocation: String,
    /// Its agent.
    pub agent: AgentId,
    /// The resource that crossed the threshold (none for expiry).
    pub resource: Option<Resource>,
    /// What happened.
    pub kind: AlertKind,
    /// The period it happened in.
    pub period_index: u64,
    /// Usage percent at the time.
    pub percent: u64,
    /// Unix ms.
    pub at_ms: i64,
}

/// The state of an allocation's period at `now_ms`: how many periods have
/// passed since activation.
pub fn period_index(period: Option<Period>, activated_at_ms: i64, now_ms: i64) -> u64 {
    match period {
        Some(p) if now_ms > activated_at_ms => ((now_ms - activated_at_ms) as u64) / p.length_ms,
        _ => 0,
    }
}

/// Roll one quota forward by `periods` elapsed periods (at least one).
pub fn roll_quota(q: &mut QuotaUsage, rollover: Rollover, periods: u64) {
    if periods == 0 || q.resource.is_cap() {
        return;
    }
    q.carried = match rollover {
        Rollover::Reset => 0,
        Rollover::CarryOver => {
            let left = q.limit().saturating_sub(q.used);
            // Each fully skipped period carries its whole quota.
            left.saturating_add(q.quota.saturating_mul(periods - 1))
        }
    };
    q.used = 0;
}

/// Thirty days, the period of a contract's monthly cap.
pub const MONTH_MS: u64 = 30 * 24 * 3_600_000;

/// An allocation priced by a contract: a monthly money budget of
/// `monthly_cap_usd_micros` and as many API calls as it buys at
/// `per_request_usd_micros` each (rounded down), per 30-day period, reset
/// monthly. A $0.15 per-request price with a $50 cap gives $50 and 333
/// calls.
pub fn contract_allocation(
    id: impl Into<String>,
    agent: AgentId,
    per_request_usd_micros: u64,
    monthly_cap_usd_micros: u64,
) -> Result<AllocationRequest, String> {
    if per_request_usd_micros == 0 {
        return Err("per-request price must be above zero".into());
    }
    let calls = monthly_cap_usd_micros / per_request_usd_micros;
    let quotas = BTreeMap::from([(Resource::BudgetUsdMicros, monthly_cap_usd_micros), (Resource::ApiCalls, calls)]);
    let mut req = AllocationRequest::new(id, agent, quotas);
    req.period = Some(Period { length_ms: MONTH_MS, rollover: Rollover::Reset });
    Ok(req)
}

/// Scale `base` by an agent's reputation, given in permille (0 to 1000):
/// priority = reputation / 100, clamped to 1..=10 (0.95 -> 9, 0.40 -> 4);
/// every quota multiplied by 1.0 + (reputation - 0.5), clamped to
/// 0.5..=1.5 (0.95 -> x1.45, 0.40 -> x0.90), rounded down.
pub fn reputation_scaled(base: &AllocationRequest, reputation_permille: u16) -> AllocationRequest {
    let rep = i64::from(reputation_permille.min(1000));
    let multiplier_permille = (1000 + (rep - 500)).clamp(500, 1500) as u128;
    let mut req = base.clone();
    req.priority = (rep / 100).clamp(1, 10) as u8;
    for quota in req.quotas.values_mut() {
        *quota = ((*quota as u128 * multiplier_permille) / 1000).min(i64::MAX as u128) as u64;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocation(status: AllocationStatus) -> Allocation {
        Allocation {
            id: "a1".into(),
            agent: AgentId::new("alice").unwrap(),
            status,
            priority: 5,
            quotas: Vec::new(),
            period: None,
            period_index: 3,
            duration_ms: Some(1_000),
            activated_at_ms: None,
            expires_at_ms: None,
            soft_threshold_percent: 80,
            hard_threshold_percent: 100,
            revoke_reason: None,
        }
    }

    #[test]
    fn the_lifecycle_moves_one_allowed_step_at_a_time() {
        use AllocationStatus::*;
        let approved = AllocationTransition::Approve.apply(allocation(Pending), 0).unwrap();
        assert_eq!(approved.status, Approved);
        let active = AllocationTransition::Activate.apply(approved, 500).unwrap();
        assert_eq!(
            (active.status, active.activated_at_ms, active.expires_at_ms, active.period_index),
            (Active, Some(500), Some(1_500), 0)
        );
        let longer = AllocationTransition::Extend { additional_ms: 250 }.apply(active, 600).unwrap();
        assert_eq!((longer.duration_ms, longer.expires_at_ms), (Some(1_250), Some(1_750)));
        let revoked = AllocationTransition::Revoke { reason: "x".repeat(600) }.apply(longer, 700).unwrap();
        assert_eq!((revoked.status, revoked.revoke_reason.as_ref().map(String::len)), (Revoked, Some(500)));

        let refused = AllocationTransition::Activate.apply(allocation(Pending), 0).unwrap_err();
        assert_eq!(refused, "cannot activate allocation `a1`: it is pending");
        for t in
            [AllocationTransition::Extend { additional_ms: 1 }, AllocationTransition::Revoke { reason: String::new() }]
        {
            assert!(t.apply(allocation(Revoked), 0).is_err(), "{t:?} of a revoked allocation");
        }
    }

    #[test]
    fn an_extension_past_the_signed_range_saturates() {
        let mut a = allocation(AllocationStatus::Active);
        a.expires_at_ms = Some(i64::MAX - 10);
        let a = AllocationTransition::Extend { additional_ms: u64::MAX }.apply(a, 0).unwrap();
        assert_eq!((a.duration_ms, a.expires_at_ms), (Some(i64::MAX as u64), Some(i64::MAX)));
    }
}
