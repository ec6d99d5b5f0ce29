//! [`Host`], the embedding API, and [`HostBuilder`], its configuration.
//!
//! A host owns one data directory:
//!
//! ```text
//! DATA/fuelhost.db     SQLite (WAL): ledger, artifacts, plugins, audit
//! DATA/blobs/          component bytes, by SHA-256
//! DATA/compiled/       precompiled code, by SHA-256 and engine settings
//! DATA/agents/NAME/    each agent's own directory (an artifact's `/`;
//!                      elsewhere with `HostBuilder::agents_dir`)
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::approvals::{ApprovalError, Approvals, Decider, Parked, PendingAction, PendingState};
use crate::audit::{AuditEntry, AuditLog, AuditQuery};
use crate::bindings::Decision;
use crate::cost::{Calibration, CostModel};
use crate::disk::AgentDirs;
use crate::error::{HostError, InvokeError, UploadError};
use crate::host_limits::HostLimits;
use crate::invocation::{Invocation, InvocationReport};
use crate::manifest::Manifest;
use crate::membership::{Membership, Memberships};
use crate::registry::{ArtifactInfo, Registry};
use crate::scheduler::{Scheduler, SchedulerSettings, Task, TaskError, TaskRequest};
use crate::state::HostInner;
use fuelhost_ledger::AgentId;
use fuelhost_ledger::{
    Alert, Allocation, AllocationRequest, AllocationTransition, Asset, Balances, Clock, ConsumerStats, Distribution,
    Ledger, LedgerQuery, Resource, ServiceStats, SponsorGrant, SponsorGrantStatus, SystemClock, Transfer,
    TransferRequest, UbiSource, UsageQuery, UsageRecord,
};
use fuelhost_policy::rules::{Rule, RuleSet};
use fuelhost_policy::Judge as _;
use fuelhost_policy::{PluginLimits, PolicyChain, Verdict};
use fuelhost_runtime::Slots;
use fuelhost_runtime::{CacheStats, CodeCache};
use fuelhost_runtime::{EngineSettings, Engines, EpochTicker};
use fuelhost_sqlite::SqliteLedger;
use fuelhost_sqlite::{Database, Durability};
use fuelhost_store::settings;

/// Configures and opens a [`Host`].
#[derive(Debug, Clone)]
pub struct HostBuilder {
    data_dir: PathBuf,
    compile_cache_dir: Option<PathBuf>,
    engine: EngineSettings,
    max_component_bytes: usize,
    max_loaded_artifacts: usize,
    plugin_limits: PluginLimits,
    durability: Durability,
    clock: Arc<dyn Clock>,
    cost_model: Option<CostModel>,
    approval_ttl: Duration,
    scheduler: SchedulerSettings,
    limits: HostLimits,
    retention: crate::retention::Retention,
    database: Option<String>,
    host_name: Option<String>,
    agents_dir: Option<PathBuf>,
    llm_providers: Vec<crate::llm::LlmProvider>,
}

impl Default for HostBuilder {
    fn default() -> Self {
        HostBuilder {
            data_dir: PathBuf::from("fuelhost-data"),
            compile_cache_dir: None,
            engine: EngineSettings::default(),
            max_component_bytes: 32 << 20,
            max_loaded_artifacts: DEFAULT_MAX_LOADED_ARTIFACTS,
            plugin_limits: PluginLimits::default(),
            durability: Durability::default(),
            clock: Arc::new(SystemClock),
            cost_model: None,
            approval_ttl: Duration::from_secs(3_600),
            scheduler: SchedulerSettings::default(),
            limits: HostLimits::default(),
            retention: crate::retention::Retention::default(),
            database: None,
            host_name: None,
            agents_dir: None,
            llm_providers: Vec::new(),
        }
    }
}

impl HostBuilder {
    /// Keep the ledger and every store in the PostgreSQL database at `url`
    /// (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`), which any
    /// number of hosts may share, instead of the data directory's SQLite
    /// file. The data directory still holds this host's caches (component
    /// bytes, compiled code) and the agents' directories. See
    /// `docs/architecture.md`, "Several hosts over one database".
    pub fn database(mut self, url: impl Into<String>) -> Self {
        self.database = Some(url.into());
        self
    }

    /// The name this host goes by on a shared database: the same across
    /// its restarts, and no other host's (a host that opens takes over at
    /// once what earlier runs of its name left in flight). Default: the
    /// machine's name and the data directory's path.
    pub fn host_name(mut self, name: impl Into<String>) -> Self {
        self.host_name = Some(name.into());
        self
    }

    /// Keep the agents' directories (each artifact's `/`) here instead of
    /// `DATA/agents`: hosts sharing a database give it one shared
    /// filesystem, so a file one host's call writes is there for the
    /// next call on any host. (An agent's entry cap is then counted by
    /// each host as it sees its own writes.)
    pub fn agents_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.agents_dir = Some(dir.into());
        self
    }

    /// How long call history and the audit log stay in the database
    /// before they move to archive files (default: forever). See
    /// [`crate::Retention`].
    pub fn retention(mut self, retention: crate::retention::Retention) -> Self {
        self.retention = retention;
        self
    }

    /// How tasks are scheduled: workers, aging, queue depth per agent.
    /// Default: one worker per core.
    pub fn scheduler(mut self, settings: SchedulerSettings) -> Self {
        self.scheduler = settings;
        self
    }

    /// The most a manifest may ask for and a request may carry, and how
    /// many calls each agent may run at once. Default:
    /// [`HostLimits::default`].
    pub fn limits(mut self, limits: HostLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Where the database, components and agent directories live.
    /// Default: `./fuelhost-data`.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = dir.into();
        self
    }

    /// Keep precompiled code here instead of `DATA/compiled` (several hosts
    /// on one machine may share it). Default: `DATA/compiled`.
    pub fn compile_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.compile_cache_dir = Some(dir.into());
        self
    }

    /// The most artifacts whose code is held loaded at once (default
    /// 4,096). Past it, the ones called least recently are unloaded and
    /// loaded again from the compile cache by their next call, so a host
    /// may hold any number of artifacts: loaded code costs about 210 KiB
    /// and 3 memory mappings per distinct component (far more for an
    /// interpreter's), and a process stops near 65,000 mappings.
    /// Artifacts of the same bytes share their code.
    pub fn max_loaded_artifacts(mut self, n: usize) -> Self {
        self.max_loaded_artifacts = n;
        self
    }

    /// Largest component accepted by an upload, in bytes. Default: 32 MiB.
    pub fn max_component_bytes(mut self, bytes: usize) -> Self {
        self.max_component_bytes = bytes;
        self
    }

    /// Guest instances alive at once (pooling allocator slots). Default: 64.
    pub fn max_instances(mut self, n: u32) -> Self {
        self.engine.max_instances = n;
        self
    }

    /// Largest linear memory of any guest, bytes. Default: 1 GiB.
    pub fn max_memory_bytes(mut self, bytes: u64) -> Self {
        self.engine.max_memory_bytes = bytes;
        self
    }

    /// Wasm stack per call, bytes. Default: 512 KiB.
    pub fn max_wasm_stack(mut self, bytes: usize) -> Self {
        self.engine.max_wasm_stack = bytes;
        self
    }

    /// Epoch tick, the granularity of timeouts. Default: 10 ms.
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.engine.epoch_tick = tick;
        self
    }

    /// Run fuel-metered artifacts on fuel alone: cheaper, and the same
    /// outcome and bill on every host with the same cost model, with the
    /// wall clock checked only at calls into the host (see
    /// [`EngineSettings::deterministic_fuel`]). Default: off.
    pub fn deterministic_fuel(mut self, on: bool) -> Self {
        self.engine.deterministic_fuel = on;
        self
    }

    /// Limits of each policy plugin check. Default: [`PluginLimits::default`].
    pub fn plugin_limits(mut self, limits: PluginLimits) -> Self {
        self.plugin_limits = limits;
        self
    }

    /// How hard each ledger commit is pushed to disk. Default:
    /// [`Durability::Full`] (fsync per commit).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The clock the ledger reads for expiries and periods. Default: the
    /// system clock; tests and simulations pass a `ManualClock`.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long a parked action waits for approval before it expires.
    /// Default: one hour.
    pub fn approval_ttl(mut self, ttl: Duration) -> Self {
        self.approval_ttl = ttl;
        self
    }

    /// The cost model (CPU time per fuel unit, prices). Default: what
    /// `fuelhost calibrate` stored in the data directory, else
    /// [`CostModel::default`].
    pub fn cost_model(mut self, model: CostModel) -> Self {
        self.cost_model = Some(model);
        self
    }

    /// Let artifacts' `llm` imports reach `provider` (an OpenAI-compatible
    /// chat-completions endpoint); call once per provider. Its key is read
    /// from its `api_key_env` when the host is built. See
    /// `docs/architecture.md`, "Language models".
    pub fn llm_provider(mut self, provider: crate::llm::LlmProvider) -> Self {
        self.llm_providers.push(provider);
        self
    }

    /// Open the host: create or open the data directory and database, load
    /// every stored artifact and policy plugin.
    pub fn build(self) -> Result<Host, HostError> {
        let dir_err = |path: &Path| {
            let path = path.display().to_string();
            move |source| HostError::DataDir { path, source }
        };
        self.retention.check()?;
        let llm = Arc::new(crate::llm::Providers::new(self.llm_providers.clone()).map_err(HostError::Invalid)?);
        std::fs::create_dir_all(&self.data_dir).map_err(dir_err(&self.data_dir))?;
        let data_dir_lock = crate::data_dir::lock(&self.data_dir)?;
        let agents = self.agents_dir.clone().unwrap_or_else(|| self.data_dir.join("agents"));
        std::fs::create_dir_all(&agents).map_err(dir_err(&agents))?;
        let storage = match &self.database {
            None => Storage::open_file(&self.data_dir, self.durability, self.clock.clone())?,
            Some(url) => {
                let name = self.host_name.clone().unwrap_or_else(|| default_host_name(&self.data_dir));
                Storage::open_shared(url, &name, self.engine.max_instances, self.clock.clone())?
            }
        };
        let store = storage.store.clone();
        let engines = Engines::new(&self.engine).map_err(|e| HostError::Engine(format!("{e:#}")))?;
        let ticker = EpochTicker::start(engines.clone(), self.engine.epoch_tick);
        let compiled = self.compile_cache_dir.clone().unwrap_or_else(|| self.data_dir.join("compiled"));
        let cache = CodeCache::open(self.data_dir.join("blobs"), compiled.clone()).map_err(dir_err(&compiled))?;
        if self.max_loaded_artifacts == 0 {
            return Err(HostError::Invalid("max_loaded_artifacts must be at least 1 (the default is 4096)".into()));
        }
        let registry =
            Registry::open(engines.clone(), store.clone(), cache, self.max_component_bytes, self.max_loaded_artifacts)?;
        let policy = Arc::new(PolicyChain::new(engines.policy().clone(), self.plugin_limits, self.engine.epoch_tick));
        for plugin in registry.stored_plugins()? {
            policy.install(plugin);
        }
        let ledger = storage.ledger.clone();
        let aborted = ledger.abort_unsettled()?;
        if !aborted.is_empty() {
            tracing::warn!(count = aborted.len(), "released the holds of invocations interrupted by a previous stop");
        }
        let cost_model = match self.cost_model {
            Some(m) => m,
            None => match settings::get(&*store, COST_MODEL_SETTING)? {
                Some(json) => serde_json::from_str(&json).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "stored cost model unreadable; using the default");
                    CostModel::default()
                }),
                None => CostModel::default(),
            },
        };
        if let Some(text) = settings::get(&*store, RULES_SETTING)? {
            policy.set_rules(RuleSet::from_toml(&text)?);
        }
        let scheduler = Scheduler::open(store.clone(), &self.scheduler, ledger.clone())
            .map_err(|e| HostError::Invalid(format!("reopening the task queue: {e}")))?;
        let scheduler = Arc::new(scheduler);
        let memberships = Memberships::new(store.clone());
        let approvals = Approvals::new(store.clone(), self.clock.clone(), self.approval_ttl.as_millis() as i64);
        let liveness = crate::liveness::Liveness::open(store.clone(), self.clock.clone())?;
        let inner = HostInner {
            db: storage.file.clone(),
            store,
            shared: storage.shared,
            metrics: Default::default(),
            memberships,
            key_cache: Default::default(),
            approvals,
            cost_model: std::sync::RwLock::new(cost_model),
            ledger,
            unsettled: Default::default(),
            audit: storage.audit,
            registry,
            policy,
            slots: Slots::new(self.engine.max_instances, self.limits.calls_per_agent(self.engine.max_instances)),
            settings: self.engine,
            limits: self.limits,
            agent_dirs: AgentDirs::new(agents, self.limits.max_dir_entries),
            _ticker: ticker,
            _data_dir_lock: data_dir_lock,
            scheduler,
            liveness,
            retention: crate::retention::Retainer {
                dir: self.retention.archive_dir.clone().unwrap_or_else(|| self.data_dir.join("archive")),
                settings: self.retention,
                clock: self.clock.clone(),
            },
            llm,
        };
        let inner = Arc::new(inner);
        crate::changes::follow(&inner);
        Scheduler::start_workers(&inner.scheduler, runner(&inner), self.scheduler.workers);
        warm_in_background(&inner);
        archive_in_background(&inner);
        Ok(Host { inner })
    }
}

/// Where a host keeps its ledger and stores.
struct Storage {
    /// The data directory's SQLite file, when that is where.
    file: Option<Arc<Database>>,
    store: Arc<dyn fuelhost_store::Sql>,
    ledger: Arc<dyn Ledger>,
    audit: AuditLog,
    /// The database other hosts share, when that is where.
    shared: Option<crate::state::Shared>,
}

impl Storage {
    /// The data directory's SQLite file.
    fn open_file(data_dir: &Path, durability: Durability, clock: Arc<dyn Clock>) -> Result<Storage, HostError> {
        let db = Arc::new(Database::open(&data_dir.join("fuelhost.db"), durability)?);
        Ok(Storage {
            file: Some(db.clone()),
            store: db.clone(),
            ledger: Arc::new(SqliteLedger::with_clock(db.clone(), clock)),
            audit: AuditLog::new(db),
            shared: None,
        })
    }

    /// The PostgreSQL database at `url`, as the host `name`: a pool of a
    /// connection per call slot and a few more, and this host's lease.
    fn open_shared(url: &str, name: &str, slots: u32, clock: Arc<dyn Clock>) -> Result<Storage, HostError> {
        let opened = |e: fuelhost_postgres::OpenError| HostError::Invalid(e.to_string());
        let db = fuelhost_postgres::Database::open(url, slots.clamp(4, 64) + 4).map_err(opened)?;
        let ledger = fuelhost_postgres::PgLedger::new(db.clone(), name, fuelhost_postgres::DEFAULT_LEASE)
            .map_err(|e| HostError::Invalid(format!("taking this host's lease in {}: {e}", db.url())))?
            .with_clock(clock);
        let store: Arc<dyn fuelhost_store::Sql> = Arc::new(db.clone());
        Ok(Storage {
            file: None,
            store: store.clone(),
            ledger: Arc::new(ledger),
            audit: AuditLog::shared(store, name),
            shared: Some(crate::state::Shared::new(db)),
        })
    }
}

/// The name a host goes by on a shared database unless told: this
/// machine's name and the data directory's path, which no other host on
/// the machine has (the directory is locked) and a restart keeps.
fn default_host_name(data_dir: &Path) -> String {
    let machine = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_string());
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!("{machine}:{}", dir.display())
}

/// Compile the artifacts the compile cache lacked at start, one after
/// another (wasmtime compiles each one's functions on every core), on a
/// thread of its own while the host serves; a call to one not reached yet
/// compiles it first. Ends when none is left or the host is gone.
fn warm_in_background(inner: &Arc<HostInner>) {
    if inner.registry.warming().is_none() {
        return;
    }
    let host = Arc::downgrade(inner);
    let spawned = std::thread::Builder::new().name("fuelhost-warm".into()).spawn(move || {
        let started = std::time::Instant::now();
        while let Some(inner) = host.upgrade() {
            if !inner.registry.warm_one() {
                tracing::info!(ms = started.elapsed().as_millis() as u64, "every artifact is compiled");
                return;
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "starting the background compiler failed; artifacts compile on their first call");
    }
}

/// When a retention horizon is set: move what is past it to the archive
/// at start, then every `every_minutes`, on a thread of its own, until the
/// host is gone (it holds the host only while it moves).
fn archive_in_background(inner: &Arc<HostInner>) {
    if !inner.retention.settings.archives() {
        return;
    }
    let host = Arc::downgrade(inner);
    let every = inner.retention.every();
    let spawned = std::thread::Builder::new().name("fuelhost-archive".into()).spawn(move || loop {
        match host.upgrade() {
            Some(inner) => crate::retention::log(inner.retention.archive(inner.ledger.as_ref(), &inner.audit)),
            None => return,
        }
        // A second at a time, so the thread ends soon after the host.
        let mut waited = Duration::ZERO;
        while waited < every {
            std::thread::sleep(Duration::from_secs(1).min(every - waited));
            waited += Duration::from_secs(1);
            if host.strong_count() == 0 {
                return;
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "starting the archive mover failed; history is kept until the next start");
    }
}

/// How many artifacts' code a host holds loaded unless told otherwise.
pub const DEFAULT_MAX_LOADED_ARTIFACTS: usize = 4_096;

use crate::state::{COST_MODEL_SETTING, RULES_SETTING};

/// A fuelhost: registry, ledger, policy chain and sandboxes behind one
/// handle. Cheap to clone; clones share everything; safe to use from many
/// threads at once.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

/// What approving a parked action did (as JSON: the report, the
/// transfer or the artifact itself).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum Approved {
    /// The invocation ran: its report.
    Invocation(InvocationReport),
    /// The transfer was made.
    Transfer(Transfer),
    /// The artifact was uploaded.
    Upload(ArtifactInfo),
}

impl Approved {
    /// The report, when an invocation was approved.
    pub fn into_report(self) -> Option<InvocationReport> {
        match self {
            Approved::Invocation(report) => Some(report),
            _ => None,
        }
    }
}

impl Host {
    /// Move the history past the retention horizons (see
    /// [`HostBuilder::retention`]) to the archive now, as the background
    /// mover does every `every_minutes`. Nothing moves when no horizon is
    /// set.
    pub fn archive_history(&self) -> Result<crate::ArchiveReport, HostError> {
        self.inner.retention.archive(self.inner.ledger.as_ref(), &self.inner.audit)
    }

    /// The API keys, stored beside the ledger: who may speak for which
    /// agent (the HTTP server authenticates every request against them).
    pub fn api_keys(&self) -> crate::ApiKeys {
        crate::ApiKeys::new(self.inner.store.clone(), self.inner.key_cache.clone())
    }

    /// The host's metrics in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let registry = &self.inner.registry;
        let artifacts = crate::telemetry::ArtifactCounts {
            registered: registry.len(),
            loaded: registry.loaded(),
            compiling: registry.warming().unwrap_or(0),
        };
        let (scheduler, agents) = (self.inner.scheduler.snapshot(), self.inner.liveness.all());
        self.inner.metrics.render(&*self.inner.ledger, &scheduler, &agents, artifacts)
    }

    /// The wall time of each pipeline stage, summed over the calls settled
    /// since the host started: the difference of two snapshots
    /// ([`crate::telemetry::StageBudget::since`]) is the per-call budget
    /// of the calls in between.
    pub fn stage_budget(&self) -> crate::telemetry::StageBudget {
        self.inner.metrics.stages.snapshot()
    }

    /// Start configuring a host.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// Put an agent in a tenant and a workspace, for scoped policy rules
    /// (`tenant:NAME`, `workspace:TENANT/NAME`).
    pub fn set_membership(&self, agent: &str, membership: &Membership) -> Result<(), HostError> {
        let agent = AgentId::new(agent)?;
        if !self.inner.ledger.has_account(agent.as_str())? {
            return Err(HostError::Ledger(fuelhost_ledger::LedgerError::UnknownAccount(agent.to_string())));
        }
        if membership.workspace.is_some() && membership.tenant.is_none() {
            return Err(HostError::Invalid("a workspace belongs to a tenant: give the tenant too".into()));
        }
        Ok(self.inner.memberships.set(agent.as_str(), membership)?)
    }

    /// An agent's tenant and workspace.
    pub fn membership(&self, agent: &str) -> Result<Membership, HostError> {
        Ok(self.inner.memberships.get(AgentId::new(agent)?.as_str())?)
    }

    /// Register an agent: an account with zero balances and an empty
    /// directory.
    pub fn create_agent(&self, id: &str) -> Result<AgentId, HostError> {
        let agent = AgentId::new(id)?;
        self.inner.ledger.open_account(&agent)?;
        let dir = self.inner.agent_dir(&agent);
        std::fs::create_dir_all(&dir)
            .map_err(|source| HostError::DataDir { path: dir.display().to_string(), source })?;
        Ok(agent)
    }

    /// Create `amount` of `asset` for `agent` (scrip, or a fuel or disk
    /// budget). Privileged: only the embedder can mint. Idempotent by
    /// `transfer_id`.
    pub fn mint(&self, transfer_id: &str, agent: &str, asset: Asset, amount: u64) -> Result<Transfer, HostError> {
        let agent = AgentId::new(agent)?;
        Ok(self.inner.ledger.post_one(Transfer::mint(transfer_id, &agent, asset, amount))?)
    }

    /// Move an asset between agents. Idempotent by `req.id`. The policy
    /// chain judges the `transfer` action (subject: the sender) first; a
    /// replay of a transfer already made returns it without judging again.
    /// A `require_approval` verdict parks it as pending action
    /// `transfer:<id>` ([`HostError::PendingApproval`]); approving it makes
    /// it, once.
    pub fn transfer(&self, req: &TransferRequest) -> Result<Transfer, HostError> {
        self.transfer_approved(req, None)
    }

    /// [`Host::transfer`]; `approved_by` set when an approver let it through,
    /// which satisfies `require_approval` (never a deny).
    fn transfer_approved(&self, req: &TransferRequest, approved_by: Option<&str>) -> Result<Transfer, HostError> {
        if self.inner.ledger.transfer_record(&req.id)?.is_some() {
            return Ok(self.inner.ledger.post_one(Transfer::requested(req))?);
        }
        let mut action = crate::actions::TRANSFER.action(
            req.from.to_string(),
            req.to.to_string(),
            vec![("asset", req.asset.to_string()), ("transfer", req.id.clone())],
            if req.asset == Asset::Scrip { req.amount } else { 0 },
            crate::bindings::NO_USAGE,
        );
        let verdict = self.inner.judge(None, &mut action);
        match &verdict.decision {
            Decision::RequireApproval(approvers) if approved_by.is_none() => {
                let id = format!("transfer:{}", req.id);
                let parked =
                    self.park(&id, req.from.as_str(), req.to.as_str(), approvers, &verdict, Parked::Transfer(req));
                return Err(match parked {
                    Ok((id, approvers)) => HostError::PendingApproval { id, approvers },
                    Err(e @ ApprovalError::AlreadyDecided { .. }) => HostError::Denied(e.to_string()),
                    Err(e @ (ApprovalError::IdTaken { .. } | ApprovalError::Differs { .. })) => {
                        HostError::Ledger(fuelhost_ledger::LedgerError::IdConflict(e.to_string()))
                    }
                    Err(e) => HostError::Approvals(e.to_string()),
                });
            }
            Decision::RequireApproval(_) | Decision::Allow => {}
            Decision::Deny(_) => return Err(HostError::Denied(verdict.refusal().unwrap_or_default())),
        }
        Ok(self.inner.ledger.post_one(Transfer::requested(req))?)
    }

    /// Park an action a policy wants approved: the error that says so, or
    /// why it cannot wait (its id names another parked action, or it was
    /// already rejected or expired under this id).
    fn park(
        &self,
        id: &str,
        subject: &str,
        target: &str,
        approvers: &[String],
        verdict: &Verdict,
        action: Parked<'_>,
    ) -> Result<(String, String), ApprovalError> {
        let parked =
            self.inner.approvals.park(id, subject, target, approvers, verdict.decided_by.as_deref(), action)?;
        match parked.state {
            PendingState::Pending => {
                tracing::info!(pending = %parked.id, kind = %parked.kind, "parked for approval");
                // Say so when none of its approvers may decide on it.
                let may_decide = approvers.iter().any(|a| parked.check_decider(a).is_ok());
                let who = match may_decide {
                    true => approvers.join(", "),
                    false => format!(
                        "an administrator (its approvers, {}, asked for it or receive it, and may not decide on it)",
                        approvers.join(", ")
                    ),
                };
                Ok((parked.id, who))
            }
            // Approved: its approval is making it right now, or failed to;
            // the caller replays by approving it again.
            state => Err(ApprovalError::AlreadyDecided { id: parked.id, state, by: parked.resolved_by }),
        }
    }

    /// Take scrip out of circulation: `agent` -> `@burn`. Idempotent by id.
    pub fn burn(&self, transfer_id: &str, agent: &str, amount: u64) -> Result<Transfer, HostError> {
        Ok(self.inner.ledger.post_one(Transfer::burn(transfer_id, &AgentId::new(agent)?, amount))?)
    }

    /// Mint scrip into the public-goods pool. Privileged. Idempotent by id.
    pub fn mint_to_pool(&self, transfer_id: &str, amount: u64) -> Result<Transfer, HostError> {
        Ok(self.inner.ledger.post_one(Transfer::mint_to_pool(transfer_id, amount))?)
    }

    /// An agent gives scrip to the public-goods pool. Idempotent by id.
    pub fn deposit_to_pool(&self, transfer_id: &str, agent: &str, amount: u64) -> Result<Transfer, HostError> {
        Ok(self.inner.ledger.post_one(Transfer::pool_deposit(transfer_id, &AgentId::new(agent)?, amount))?)
    }

    /// Pay a grant from the public-goods pool. Privileged. Idempotent by id.
    pub fn grant_from_pool(&self, transfer_id: &str, agent: &str, amount: u64) -> Result<Transfer, HostError> {
        Ok(self.inner.ledger.post_one(Transfer::pool_grant(transfer_id, &AgentId::new(agent)?, amount))?)
    }

    /// Split `amount` scrip equally over every agent; the remainder of the
    /// division stays in the source. Privileged. Idempotent by id.
    pub fn distribute_ubi(&self, id: &str, source: UbiSource, amount: u64) -> Result<Distribution, HostError> {
        Ok(self.inner.ledger.distribute_ubi(id, source, amount)?)
    }

    /// Let `grant.sponsor` pay the resources of `grant.beneficiary`'s calls
    /// to `caller_pays` artifacts, within the grant's limits. Idempotent by
    /// `grant.id`.
    pub fn grant_sponsorship(&self, grant: &SponsorGrant) -> Result<(), HostError> {
        Ok(self.inner.ledger.grant_sponsorship(grant)?)
    }

    /// Stop a sponsor grant from paying for further calls.
    pub fn revoke_sponsorship(&self, id: &str) -> Result<(), HostError> {
        Ok(self.inner.ledger.revoke_sponsorship(id)?)
    }

    /// A sponsor grant and what it has paid so far.
    pub fn sponsorship(&self, id: &str) -> Result<Option<SponsorGrantStatus>, HostError> {
        Ok(self.inner.ledger.sponsorship(id)?)
    }

    /// Request an allocation: quotas per resource, priority, duration,
    /// period. Idempotent by `req.id`.
    pub fn request_allocation(&self, req: &AllocationRequest) -> Result<Allocation, HostError> {
        Ok(self.inner.ledger.request_allocation(req)?)
    }

    /// Approve a pending allocation.
    pub fn approve_allocation(&self, id: &str) -> Result<Allocation, HostError> {
        Ok(self.inner.ledger.transition_allocation(id, &AllocationTransition::Approve)?)
    }

    /// Activate an approved allocation: its clock starts now.
    pub fn activate_allocation(&self, id: &str) -> Result<Allocation, HostError> {
        Ok(self.inner.ledger.transition_allocation(id, &AllocationTransition::Activate)?)
    }

    /// Lengthen an allocation's duration.
    pub fn extend_allocation(&self, id: &str, additional_ms: u64) -> Result<Allocation, HostError> {
        Ok(self.inner.ledger.transition_allocation(id, &AllocationTransition::Extend { additional_ms })?)
    }

    /// Revoke an allocation, saying why.
    pub fn revoke_allocation(&self, id: &str, reason: &str) -> Result<Allocation, HostError> {
        Ok(self.inner.ledger.transition_allocation(id, &AllocationTransition::Revoke { reason: reason.to_string() })?)
    }

    /// An allocation with its usage this period.
    pub fn allocation(&self, id: &str) -> Result<Option<Allocation>, HostError> {
        Ok(self.inner.ledger.allocation(id)?)
    }

    /// Report usage metered outside the host (LLM tokens, money) against an
    /// agent's active allocation. Idempotent by `id`.
    pub fn record_usage(
        &self,
        id: &str,
        agent: &str,
        resource: Resource,
        amount: u64,
    ) -> Result<Allocation, HostError> {
        Ok(self.inner.ledger.record_usage(id, &AgentId::new(agent)?, resource, amount)?)
    }

    /// Budget alerts, oldest first.
    pub fn alerts(&self) -> Result<Vec<Alert>, HostError> {
        Ok(self.inner.ledger.alerts(None)?)
    }

    /// Measure this machine's CPU time per fuel unit (`runs` runs of the
    /// reference kernel), store it with the host's data and use it from now
    /// on. Prices in the current cost model are kept.
    pub fn calibrate(&self, runs: u32) -> Result<Calibration, HostError> {
        let calibration = crate::cost::calibrate(runs).map_err(|e| HostError::Engine(format!("{e:#}")))?;
        let _in_step = self.inner.registry.in_step();
        let mut model = self.inner.cost_model();
        model.picos_per_fuel = calibration.picos_per_fuel;
        let json = serde_json::to_string(&model).map_err(|e| HostError::Engine(e.to_string()))?;
        settings::set(&*self.inner.store, COST_MODEL_SETTING, &json)?;
        *self.inner.cost_model.write().unwrap_or_else(|p| p.into_inner()) = model;
        Ok(calibration)
    }

    /// The cost model in use.
    pub fn cost_model(&self) -> CostModel {
        self.inner.cost_model()
    }

    /// Usage records matching `q`, newest first.
    pub fn usage_records(&self, q: &UsageQuery) -> Result<Vec<UsageRecord>, HostError> {
        Ok(self.inner.ledger.usage_records(q)?)
    }

    /// The agents that paid for the most fuel in a period, most first.
    pub fn top_consumers(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ConsumerStats>, HostError> {
        Ok(self.inner.ledger.top_consumers(from_ms, to_ms, limit)?)
    }

    /// Whether the host can serve: `Err` (saying why) when its database
    /// refuses writes. Constant time: it reads no table and waits for no
    /// lock, so a readiness probe never holds up a call.
    pub fn readiness(&self) -> Result<(), String> {
        match &self.inner.db {
            Some(db) => db.writable(),
            None => Ok(()),
        }
    }

    /// How many artifacts still wait for their code to be compiled (a start
    /// whose compile cache lacked them), `None` when none does. The host
    /// serves meanwhile; a call to one of them compiles it first.
    pub fn warming(&self) -> Option<usize> {
        self.inner.registry.warming()
    }

    /// How many artifacts have their code loaded now (at most
    /// [`HostBuilder::max_loaded_artifacts`]).
    pub fn loaded_artifacts(&self) -> usize {
        self.inner.registry.loaded()
    }

    /// Service-wide statistics.
    pub fn stats(&self) -> Result<ServiceStats, HostError> {
        Ok(self.inner.ledger.stats()?)
    }

    /// An agent's balances.
    pub fn balances(&self, agent: &str) -> Result<Balances, HostError> {
        let agent = AgentId::new(agent)?;
        Ok(self.inner.ledger.balances(&agent)?)
    }

    /// The ledger, read-only: usage records, transfers, balances, totals.
    /// Every change goes through the host's own methods (`mint`,
    /// `transfer`, `invoke`, ...), which put it to the policy chain.
    pub fn ledger(&self) -> &dyn LedgerQuery {
        &*self.inner.ledger
    }

    /// The maxima a manifest is held to: this host's limits, and the most
    /// memory its engine gives an instance.
    pub fn manifest_maxima(&self) -> (HostLimits, u64) {
        (self.inner.limits, self.inner.settings.max_memory_bytes)
    }

    /// Upload an artifact component with its manifest. The policy chain
    /// judges the `upload` action (subject: the owner) first. A
    /// `require_approval` verdict parks it, component and all, as pending
    /// action `upload:<owner>:<name>@<version>`
    /// ([`UploadError::PendingApproval`]); approving it uploads it, once.
    pub fn upload(&self, manifest: Manifest, component: &[u8]) -> Result<ArtifactInfo, UploadError> {
        self.upload_approved(manifest, component, None)
    }

    /// [`Host::upload`]; `approved_by` set when an approver let it through.
    fn upload_approved(
        &self,
        manifest: Manifest,
        component: &[u8],
        approved_by: Option<&str>,
    ) -> Result<ArtifactInfo, UploadError> {
        manifest.validate()?;
        manifest.validate_within(&self.inner.limits, self.inner.settings.max_memory_bytes)?;
        let owner_exists =
            || self.inner.ledger.has_account(manifest.owner.as_str()).map_err(|e| UploadError::Storage(e.to_string()));
        let mut action = crate::actions::UPLOAD.action(
            manifest.owner.to_string(),
            manifest.artifact_id(),
            vec![("size", component.len().to_string()), ("resource-policy", manifest.resource_policy.to_string())],
            manifest.price,
            crate::bindings::Usage {
                fuel: manifest.limits.fuel,
                memory_peak_bytes: manifest.limits.memory_bytes,
                disk_bytes: 0,
                llm_tokens: 0,
                wall_time_ns: 0,
            },
        );
        let verdict = self.inner.judge(None, &mut action);
        match &verdict.decision {
            Decision::RequireApproval(approvers) if approved_by.is_none() => {
                // What the upload itself would refuse is refused now, not
                // after an approver approved it.
                self.inner.registry.check_upload(&manifest, component, owner_exists()?)?;
                let id = format!("upload:{}", manifest.artifact_id().replacen('/', ":", 1));
                let target = manifest.artifact_id();
                let parked = self.park(
                    &id,
                    manifest.owner.as_str(),
                    &target,
                    approvers,
                    &verdict,
                    Parked::Upload { manifest: &manifest, component },
                );
                return Err(match parked {
                    Ok((id, approvers)) => UploadError::PendingApproval { id, approvers },
                    Err(ApprovalError::Differs { id, .. }) => UploadError::ParkedWithOtherBytes(id),
                    Err(e @ ApprovalError::TooManyParked { .. }) => UploadError::Denied(e.to_string()),
                    Err(e @ ApprovalError::Storage(_)) => UploadError::Storage(e.to_string()),
                    Err(e) => UploadError::Internal(e.to_string()),
                });
            }
            Decision::RequireApproval(_) | Decision::Allow => {}
            Decision::Deny(_) => return Err(UploadError::Denied(verdict.refusal().unwrap_or_default())),
        }
        let owner_exists = owner_exists()?;
        self.inner.registry.upload(manifest, component, owner_exists)
    }

    /// Every uploaded artifact.
    pub fn artifacts(&self) -> Vec<ArtifactInfo> {
        self.inner.registry.list()
    }

    /// The artifact `id` (`owner/name@version`), if it is uploaded.
    pub fn artifact(&self, id: &str) -> Option<ArtifactInfo> {
        self.inner.registry.info(id)
    }

    /// How artifact `id` is called, `None` if there is no such artifact:
    /// `run` (the `artifact` world, with an input), `exports` (by
    /// function), `command` (`wasi:cli/command`, the input as stdin) or
    /// `http` (`wasi:http/proxy`, by HTTP requests to its route). Read
    /// without loading its code when its bytes were linked on this machine
    /// before; else its code is loaded (compiled, if it never was).
    pub fn artifact_kind(&self, id: &str) -> Result<Option<&'static str>, HostError> {
        let interface = self.interface(id)?;
        Ok(interface.map(|i| match i.kind.as_str() {
            "exports" => "exports",
            "command" => "command",
            "http" => "http",
            _ => "run",
        }))
    }

    /// How artifact `id` is called (see [`Host::artifact_kind`]).
    fn interface(&self, id: &str) -> Result<Option<Arc<crate::registry::Interface>>, HostError> {
        self.inner.registry.interface(id).map_err(|e| HostError::Load { id: id.to_string(), reason: e.to_string() })
    }

    /// The id of `owner`'s artifact `name` of the highest version, if any
    /// (what `/run/{owner}/{name}/...` calls when no version is given).
    pub fn latest_artifact(&self, owner: &str, name: &str) -> Option<String> {
        self.inner.registry.latest(owner, name)
    }

    /// The functions artifact `id` is called by, with
    /// [`Invocation::export`] (none for an artifact of the `artifact`
    /// world, called through `run`); `None` if there is no such artifact.
    /// Read as [`Host::artifact_kind`] is.
    pub fn artifact_exports(&self, id: &str) -> Result<Option<Vec<crate::ExportedFunction>>, HostError> {
        Ok(self.interface(id)?.map(|i| i.exports.clone()))
    }

    /// Delete the artifact `id`: no new invocation finds it, now or after a
    /// restart; invocations already running finish. Its id may be uploaded
    /// again. Not put to the policy chain: like minting, this is the
    /// embedder's (or an admin's, or over the API the owner's) privilege.
    /// Returns what was deleted, or `None` when there was no such artifact.
    pub fn delete_artifact(&self, id: &str) -> Result<Option<ArtifactInfo>, HostError> {
        self.inner.registry.delete(id)
    }

    /// Add a policy plugin at the end of the chain, or replace the plugin of
    /// the same name in place. Checks in flight finish on the old chain.
    pub fn add_policy_plugin(&self, name: &str, component: &[u8]) -> Result<(), UploadError> {
        self.inner.registry.upload_plugin(name, component, |plugin| self.inner.policy.install(plugin))
    }

    /// Remove a policy plugin from the chain (and from storage); whether
    /// there was one. Checks in flight finish on the old chain.
    pub fn remove_policy_plugin(&self, name: &str) -> Result<bool, UploadError> {
        let mut live = false;
        let stored = self.inner.registry.remove_plugin(name, || live = self.inner.policy.remove(name))?;
        Ok(stored || live)
    }

    /// Replace the declarative policy rules with those in `toml` (see
    /// [`RuleSet`]). The text is checked first: on an error
    /// nothing changes, and the message names the line. Stored with the
    /// host's data.
    pub fn set_policy_rules(&self, toml: &str) -> Result<(), HostError> {
        let rules = RuleSet::from_toml(toml)?;
        crate::actions::check_rules(rules.rules()).map_err(HostError::Invalid)?;
        let _in_step = self.inner.registry.in_step();
        settings::set(&*self.inner.store, RULES_SETTING, toml)?;
        self.inner.policy.set_rules(rules);
        Ok(())
    }

    /// Replace the declarative policy rules with `rules` (checked already:
    /// read from JSON, or built in code); kept as TOML like
    /// [`Host::set_policy_rules`].
    pub fn replace_policy_rules(&self, rules: RuleSet) -> Result<(), HostError> {
        crate::actions::check_rules(rules.rules()).map_err(HostError::Invalid)?;
        #[derive(serde::Serialize)]
        struct Rules<'a> {
            rule: &'a [Rule],
        }
        let toml = toml::to_string(&Rules { rule: rules.rules() })
            .map_err(|e| HostError::Invalid(format!("writing the rules: {e}")))?;
        let _in_step = self.inner.registry.in_step();
        settings::set(&*self.inner.store, RULES_SETTING, &toml)?;
        self.inner.policy.set_rules(rules);
        Ok(())
    }

    /// The declarative policy rules in force, in the order they are tried.
    pub fn policy_rules(&self) -> Vec<Rule> {
        self.inner.policy.rules().rules().to_vec()
    }

    /// Actions waiting for approval, oldest first: those `approver` may
    /// decide (it is among their approvers and did not ask for them), or
    /// every one when `None` (what an administrator sees).
    pub fn pending_actions(&self, approver: Option<&str>) -> Result<Vec<PendingAction>, ApprovalError> {
        self.inner.approvals.pending(approver)
    }

    /// A parked action, whatever its state.
    pub fn pending_action(&self, id: &str) -> Result<Option<PendingAction>, ApprovalError> {
        self.inner.approvals.get(id)
    }

    /// Approve the parked action `id` as `approver` (one of its approvers,
    /// and not the agent that asked for it; the approval is itself an
    /// `approve` action put to the policy chain), then do it, once: run the
    /// invocation, make the transfer, upload the artifact. Approving it
    /// again, by anyone, returns what was done without doing it again.
    /// The action is put to the policy chain once more as it is done: a
    /// deny still refuses it; `require_approval` is satisfied.
    pub fn approve(&self, id: &str, approver: &str) -> Result<Approved, ApprovalError> {
        self.decide_approval(id, Decider::Agent(approver))
    }

    /// [`Host::approve`] as an administrator, who may decide any parked
    /// action (recorded as approved by [`crate::ADMIN_DECIDER`]).
    pub fn approve_as_admin(&self, id: &str) -> Result<Approved, ApprovalError> {
        self.decide_approval(id, Decider::Admin)
    }

    fn decide_approval(&self, id: &str, decider: Decider<'_>) -> Result<Approved, ApprovalError> {
        let parked = self.inner.approvals.get(id)?.ok_or_else(|| ApprovalError::Unknown(id.to_string()))?;
        if let Decider::Agent(agent) = decider {
            // Refused before the policy chain is asked: not an approver.
            parked.check_decider(agent)?;
        }
        let action = crate::actions::APPROVE.action(
            decider.name().to_string(),
            id.to_string(),
            vec![
                ("action-kind", parked.kind.clone()),
                ("action-target", parked.target.clone()),
                ("requested-by", parked.subject.clone()),
            ],
            0,
            crate::bindings::NO_USAGE,
        );
        let mut action = action;
        let verdict = self.inner.judge(Some(id), &mut action);
        if let Decision::Deny(_) = verdict.decision {
            return Err(ApprovalError::Denied(verdict.refusal().unwrap_or_default()));
        }
        let approved = self.inner.approvals.decide(id, decider, None)?;
        let by = approved.resolved_by.clone();
        match approved.kind.as_str() {
            "transfer" => {
                let req: TransferRequest = approved
                    .details
                    .and_then(|d| serde_json::from_value(d).ok())
                    .ok_or_else(|| ApprovalError::Internal(format!("the parked transfer `{id}` lost its request")))?;
                match self.transfer_approved(&req, by.as_deref()) {
                    Ok(made) => Ok(Approved::Transfer(made)),
                    Err(e) => {
                        self.inner.approvals.reopen(id, &format!("the approved transfer was not made: {e}"))?;
                        Err(ApprovalError::Transfer(e))
                    }
                }
            }
            "upload" => {
                let mut details = approved.details.unwrap_or_default();
                let sha256 = details["sha256"].as_str().unwrap_or_default().to_string();
                let made_already = || self.artifact(&approved.target).filter(|a| a.digest == sha256);
                if let Some(made) = made_already() {
                    self.inner.approvals.drop_component(id)?;
                    return Ok(Approved::Upload(made)); // approved again: made already
                }
                if let Some(fields) = details.as_object_mut() {
                    fields.remove("size");
                    fields.remove("sha256");
                }
                let manifest: Manifest = serde_json::from_value(details)
                    .map_err(|e| ApprovalError::Internal(format!("the parked upload `{id}` lost its manifest: {e}")))?;
                let made = match self.upload_approved(manifest, &approved.input, by.as_deref()) {
                    Ok(made) => made,
                    // Another approval of it made it meanwhile.
                    Err(UploadError::AlreadyExists(_)) if made_already().is_some() => made_already().unwrap(),
                    Err(e) => {
                        self.inner.approvals.reopen(id, &format!("the approved upload was not made: {e}"))?;
                        return Err(ApprovalError::Upload(e));
                    }
                };
                self.inner.approvals.drop_component(id)?;
                Ok(Approved::Upload(made))
            }
            _ => {
                let mut invocation = Invocation::new(approved.subject, approved.target, approved.input);
                invocation.fuel_limit = approved.fuel_limit;
                invocation.id = Some(approved.id);
                invocation.approved_by = by;
                Ok(Approved::Invocation(crate::invoke::invoke(&self.inner, invocation)?))
            }
        }
    }

    /// Reject the parked invocation `id` as `approver` (one of its
    /// approvers, not its requester), saying why. It will never run.
    pub fn reject(&self, id: &str, approver: &str, reason: &str) -> Result<PendingAction, ApprovalError> {
        self.inner.approvals.decide(id, Decider::Agent(approver), Some(reason))
    }

    /// [`Host::reject`] as an administrator.
    pub fn reject_as_admin(&self, id: &str, reason: &str) -> Result<PendingAction, ApprovalError> {
        self.inner.approvals.decide(id, Decider::Admin, Some(reason))
    }

    /// Names of the policy plugins, in chain order.
    pub fn policy_plugins(&self) -> Vec<String> {
        self.inner.policy.names()
    }

    /// Put an action to the policy chain without doing it (and without
    /// auditing it), exactly as given: unlike the host's own checks, its
    /// `tenant` and `workspace` are not replaced by the subject's.
    pub fn check_policy(&self, action: &crate::bindings::Action) -> Verdict {
        self.inner.policy.check(action)
    }

    /// Invoke an artifact: admit, reserve, run, settle, report.
    pub fn invoke(&self, invocation: Invocation) -> Result<InvocationReport, InvokeError> {
        if let Some(id) = &invocation.id {
            crate::host_limits::check_id("invocation id", id).map_err(InvokeError::InvalidId)?;
            // Parked transfers and uploads are named by these prefixes; an
            // invocation parked under one would block them.
            if let Some(prefix) = ["transfer:", "upload:"].into_iter().find(|p| id.starts_with(p)) {
                return Err(InvokeError::InvalidId(format!(
                    "invocation id `{id}` starts with `{prefix}`, which names parked {}s: choose another id",
                    prefix.trim_end_matches(':')
                )));
            }
        }
        crate::invoke::invoke(&self.inner, invocation)
    }

    /// Submit an invocation as a task: it is recorded durably, queued by
    /// priority and run by a worker as `submitter`. Submitting the same id
    /// again returns the task already accepted.
    pub fn submit_task(&self, req: TaskRequest) -> Result<Task, TaskError> {
        self.inner.submit_task(req)
    }

    /// The task `id`.
    pub fn task(&self, id: &str) -> Result<Task, TaskError> {
        self.inner.scheduler.get(id)
    }

    /// Cancel task `id`: a pending one at once, a running one at the next
    /// epoch tick (see [`EngineSettings::deterministic_fuel`] for fuel runs
    /// that have none).
    pub fn cancel_task(&self, id: &str) -> Result<Task, TaskError> {
        self.inner.scheduler.cancel(id)
    }

    /// Wait until task `id` is completed, failed or cancelled, or
    /// `timeout` passes; returns it as it is then.
    pub fn wait_task(&self, id: &str, timeout: Duration) -> Result<Task, TaskError> {
        self.inner.scheduler.wait(id, timeout)
    }

    /// `agent` is alive, for `ttl` (default 30 s), doing `status`: its
    /// health is `healthy` until the TTL passes without another heartbeat,
    /// then `unhealthy`.
    pub fn heartbeat(
        &self,
        agent: &str,
        ttl: Option<Duration>,
        status: Option<String>,
    ) -> Result<crate::liveness::AgentHealth, HostError> {
        let id = AgentId::new(agent)?;
        if !self.inner.ledger.has_account(id.as_str())? {
            return Err(HostError::Ledger(fuelhost_ledger::LedgerError::UnknownAccount(agent.to_string())));
        }
        self.inner.liveness.beat(id.as_str(), ttl, status).map_err(|e| match e {
            crate::liveness::HeartbeatError::Invalid(m) => HostError::Invalid(m),
            crate::liveness::HeartbeatError::Storage(e) => HostError::Store(e),
        })
    }

    /// `agent`'s health by its heartbeats (`unknown` if it never sent one).
    pub fn agent_health(&self, agent: &str) -> crate::liveness::AgentHealth {
        self.inner.liveness.health(agent)
    }

    /// The health of every agent that ever sent a heartbeat.
    pub fn agents_health(&self) -> Vec<crate::liveness::AgentHealth> {
        self.inner.liveness.all()
    }

    /// Every artifact's circuit breaker that has seen a failed task since
    /// the host started: closed, open (until when) or half-open.
    pub fn circuit_breakers(&self) -> Vec<crate::scheduler::BreakerStatus> {
        self.inner.scheduler.breakers()
    }

    /// How long each of the latest tasks (up to about a million) waited
    /// from being queued (at submission, or when its last dependency
    /// completed) to a worker taking it; retries waiting out a backoff are
    /// not counted.
    pub fn task_start_delays(&self) -> Vec<Duration> {
        self.inner.scheduler.start_delays()
    }

    /// Shut the scheduler down: no task starts any more; running tasks get
    /// until `deadline` to end, then are interrupted (charged what they
    /// burned) and put back as pending for the next open. Returns how many
    /// were still running at the deadline. Invocations outside tasks are
    /// not affected. Under deterministic fuel a fuel-metered run is
    /// interrupted at its next call into the host, else the drain waits
    /// for it to end (its timeout, counted in fuel, bounds how long).
    pub fn drain_tasks(&self, deadline: Duration) -> usize {
        self.inner.scheduler.drain(deadline)
    }

    /// Start `n` more task workers (the builder starts its own).
    pub fn start_task_workers(&self, n: usize) {
        Scheduler::start_workers(&self.inner.scheduler, runner(&self.inner), n);
    }

    /// The directory an agent's artifacts see as `/`.
    pub fn agent_dir(&self, agent: &str) -> Result<PathBuf, HostError> {
        Ok(self.inner.agent_dir(&AgentId::new(agent)?))
    }

    /// Every recorded policy decision, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>, HostError> {
        self.catch_up_audit();
        Ok(self.inner.audit.entries()?)
    }

    /// Admitted calls' decisions reach the log with their settlements'
    /// projection: that first. A host that cannot write (after a failed
    /// fsync) still reads the log, without the latest admissions.
    fn catch_up_audit(&self) {
        if let Err(e) = self.inner.ledger.catch_up() {
            tracing::warn!(error = %e, "projecting the settlement journal failed; the audit log may lag");
        }
    }

    /// The recorded policy decisions matching `q`, oldest first.
    pub fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, HostError> {
        self.catch_up_audit();
        Ok(self.inner.audit.query(q)?)
    }

    /// How often components were compiled, and loaded precompiled, since
    /// this host opened.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.registry.cache_stats()
    }
}

/// The host as the scheduler's workers hold it: weakly.
fn runner(inner: &Arc<HostInner>) -> std::sync::Weak<dyn crate::scheduler::TaskRunner> {
    let weak: std::sync::Weak<HostInner> = Arc::downgrade(inner);
    weak
}
