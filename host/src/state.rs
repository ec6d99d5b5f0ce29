//! What a host holds: its database, ledger, registry, policy chain, audit
//! log, scheduler, slots and settings ([`HostInner`]), shared by the
//! facade (`host`), the invocation pipeline (`invoke`) and, through narrow
//! traits, the guest imports (`policy::Judge`, `scheduler::TaskDesk`,
//! `sandbox::NestedInvoker`) and the scheduler's workers
//! (`scheduler::TaskRunner`).

use std::path::PathBuf;
use std::sync::Arc;

use fuelhost_ledger::{AgentId, Ledger};
use fuelhost_runtime::{EngineSettings, EpochTicker, Slots};
use fuelhost_sqlite::Database;

use crate::approvals::Approvals;
use crate::audit::AuditLog;
use crate::cost::CostModel;
use crate::disk::AgentDirs;
use crate::host_limits::HostLimits;
use crate::membership::Memberships;
use crate::registry::Registry;
use crate::scheduler::{Scheduler, Task, TaskError, TaskRequest};
use fuelhost_policy::{PolicyChain, Verdict};

/// Settings key of the stored cost model.
pub(crate) const COST_MODEL_SETTING: &str = "cost_model";
/// Settings key of the declarative policy rules (TOML text).
pub(crate) const RULES_SETTING: &str = "policy_rules";

/// A host's link to the database it shares with other hosts (see
/// `changes`).
pub(crate) struct Shared {
    pub(crate) db: fuelhost_postgres::Database,
    /// Hears the other hosts' notices while the host lives.
    pub(crate) listener: std::sync::OnceLock<fuelhost_postgres::Listener>,
}

impl Shared {
    /// The link to `db`, not yet listening (`changes::follow` starts it).
    pub(crate) fn new(db: fuelhost_postgres::Database) -> Shared {
        Shared { db, listener: std::sync::OnceLock::new() }
    }
}

/// The state behind a [`Host`](crate::Host) and its clones.
pub(crate) struct HostInner {
    /// The data directory's SQLite file, unless the host keeps everything
    /// in a database other hosts share.
    pub(crate) db: Option<Arc<Database>>,
    /// The stores' database (the same file as `db` on SQLite).
    pub(crate) store: Arc<dyn fuelhost_store::Sql>,
    /// The database other hosts share, when the host is on one.
    pub(crate) shared: Option<Shared>,
    pub(crate) metrics: crate::telemetry::Metrics,
    pub(crate) memberships: Memberships,
    /// Live API keys resolved so far (see `crate::keys`).
    pub(crate) key_cache: Arc<crate::keys::KeyCache>,
    pub(crate) approvals: Approvals,
    pub(crate) cost_model: std::sync::RwLock<CostModel>,
    pub(crate) settings: EngineSettings,
    pub(crate) limits: HostLimits,
    pub(crate) slots: Arc<Slots>,
    pub(crate) ledger: Arc<dyn Ledger>,
    /// Settlements the ledger's database refused, tried again.
    pub(crate) unsettled: crate::unsettled::Unsettled,
    pub(crate) registry: Registry,
    pub(crate) policy: Arc<PolicyChain>,
    pub(crate) audit: AuditLog,
    pub(crate) agent_dirs: AgentDirs,
    pub(crate) _ticker: EpochTicker,
    /// Held while the host is open (see `data_dir`).
    pub(crate) _data_dir_lock: crate::data_dir::DataDirLock,
    pub(crate) scheduler: Arc<Scheduler>,
    pub(crate) liveness: crate::liveness::Liveness,
    pub(crate) retention: crate::retention::Retainer,
    /// The language-model providers artifacts' `llm` imports reach.
    pub(crate) llm: Arc<crate::llm::Providers>,
}

impl Drop for HostInner {
    fn drop(&mut self) {
        self.scheduler.stop();
        self.unsettled.settle_now(&*self.ledger);
    }
}

impl HostInner {
    pub(crate) fn cost_model(&self) -> CostModel {
        *self.cost_model.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Check `req`'s submitter and artifact exist (choosing the artifact
    /// when it names a capability), then queue it.
    pub(crate) fn submit_task(&self, mut req: TaskRequest) -> Result<Task, TaskError> {
        AgentId::new(req.submitter.clone()).map_err(|e| TaskError::Invalid(e.to_string()))?;
        for id in req.id.iter().chain(&req.depends_on) {
            crate::host_limits::check_id("task id", id).map_err(TaskError::Invalid)?;
        }
        if !self.ledger.has_account(&req.submitter).map_err(|e| TaskError::Invalid(e.to_string()))? {
            return Err(TaskError::Invalid(format!("unknown agent `{}`; create it first", req.submitter)));
        }
        // A resubmission (same id) returns the task accepted before, without
        // choosing again.
        let resubmitted = req.id.as_deref().is_some_and(|id| self.scheduler.get(id).is_ok());
        if let (Some(capability), false) = (&req.capability, resubmitted) {
            req.artifact = self.route(capability, req.route_mode, &req.submitter, req.max_price)?.artifact;
        }
        if !resubmitted && self.registry.info(&req.artifact).is_none() {
            return Err(TaskError::NoArtifact(format!("unknown artifact `{}`; upload it first", req.artifact)));
        }
        self.scheduler.submit(&req)
    }

    /// The artifact a task of `submitter` naming `capability` goes to now,
    /// by `mode` (see `scheduler::route`), within `max_price` and the
    /// submitter's available scrip; artifacts whose circuit breaker is open
    /// are passed over while any other is left.
    pub(crate) fn route(
        &self,
        capability: &str,
        mode: crate::scheduler::RouteMode,
        submitter: &str,
        max_price: Option<u64>,
    ) -> Result<crate::scheduler::Choice, TaskError> {
        let declaring: Vec<_> = self
            .registry
            .list()
            .into_iter()
            .filter(|a| a.manifest.capabilities.iter().any(|c| c == capability))
            .collect();
        if declaring.is_empty() {
            return Err(TaskError::NoArtifact(format!(
                "no artifact declares capability `{capability}`; upload one with it in its manifest's `capabilities`"
            )));
        }
        let open: std::collections::HashSet<String> = self
            .scheduler
            .breakers()
            .into_iter()
            .filter(|b| b.state == crate::scheduler::BreakerState::Open)
            .map(|b| b.artifact)
            .collect();
        let usable: Vec<_> = declaring.iter().filter(|a| !open.contains(&a.id)).collect();
        let pool: Vec<_> = if usable.is_empty() { declaring.iter().collect() } else { usable };
        let candidates: Vec<crate::scheduler::Candidate> = pool
            .iter()
            .map(|a| {
                let q =
                    fuelhost_ledger::UsageQuery { artifact: Some(a.id.clone()), limit: Some(50), ..Default::default() };
                let records = self.ledger.usage_records(&q).unwrap_or_default();
                let judged: Vec<_> =
                    records.iter().filter(|r| !matches!(r.outcome, fuelhost_ledger::Outcome::Aborted)).collect();
                let ok: Vec<_> = judged.iter().filter(|r| r.outcome == fuelhost_ledger::Outcome::Success).collect();
                crate::scheduler::Candidate {
                    artifact: a.id.clone(),
                    price: a.manifest.price,
                    latency_ms: (!ok.is_empty()).then(|| {
                        ok.iter().map(|r| r.consumed.wall_time_ns as f64 / 1e6).sum::<f64>() / ok.len() as f64
                    }),
                    quality: a.manifest.quality.unwrap_or(50),
                    reliability: (!judged.is_empty()).then(|| ok.len() as f64 / judged.len() as f64),
                }
            })
            .collect();
        // The price cap is firm: candidates above it are out. Within it,
        // what the submitter can pay decides, and when that is too little
        // for all of them the cheapest is tried (its call says why it
        // could not be paid).
        let cap = max_price.unwrap_or(u64::MAX);
        let candidates: Vec<_> = candidates.into_iter().filter(|c| c.price <= cap).collect();
        if candidates.is_empty() {
            return Err(TaskError::OverMaxPrice(format!(
                "every artifact declaring capability `{capability}` costs more than the task's max_price of {cap}"
            )));
        }
        let available =
            AgentId::new(submitter).ok().and_then(|a| self.ledger.balances(&a).ok()).map_or(0, |b| b.scrip.available());
        crate::scheduler::route_choose(&candidates, mode, available).ok_or_else(|| {
            TaskError::NoArtifact(format!("no artifact declaring capability `{capability}` can take it"))
        })
    }

    pub(crate) fn agent_dir(&self, agent: &AgentId) -> PathBuf {
        self.agent_dirs.path(agent)
    }
}

impl fuelhost_policy::Judge for HostInner {
    fn judge_explicit(
        &self,
        invocation: Option<&str>,
        action: &mut crate::bindings::Action,
        explicit: Option<String>,
    ) -> Verdict {
        let verdict = self.judge_unrecorded_explicit(action, explicit);
        if let Some(id) = invocation {
            // A decision within a call comes after the one admitting it.
            self.audit.flush_admission(id);
        }
        self.audit.record(invocation, action, &verdict);
        verdict
    }

    fn judge_admission(&self, invocation: &str, action: &mut crate::bindings::Action) -> Verdict {
        let verdict = self.judge_unrecorded_explicit(action, None);
        if matches!(verdict.decision, crate::bindings::Decision::Allow) {
            // Kept back for the call's settlement (see `audit`).
            self.audit.defer_admission(invocation, action, &verdict);
        } else {
            self.audit.record(Some(invocation), action, &verdict);
        }
        verdict
    }
}

impl HostInner {
    /// The chain's verdict on `action` (its subject's memberships stamped
    /// on it first), counted in the metrics, not yet in the audit log.
    fn judge_unrecorded_explicit(&self, action: &mut crate::bindings::Action, explicit: Option<String>) -> Verdict {
        self.memberships.stamp(action);
        let verdict = self.policy.check_explicit(action, explicit);
        self.metrics.decision(verdict.decision_name());
        verdict
    }
}

impl crate::scheduler::TaskDesk for HostInner {
    fn submit(&self, req: TaskRequest) -> Result<Task, TaskError> {
        self.submit_task(req)
    }

    fn task(&self, id: &str) -> Result<Task, TaskError> {
        self.scheduler.get(id)
    }
}
