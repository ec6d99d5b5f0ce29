//! # fuelhost
//!
//! A WebAssembly component host for agent economies. Agents upload
//! **artifacts** (components of the `fuelhost:host/artifact` world); other
//! agents **invoke** them. Every invocation runs in a fresh sandbox, metered
//! by fuel, capped in memory, stack and wall-clock time, seeing only its
//! owner's directory, and is **charged**: the price in scrip goes from the
//! caller to the owner, the resources burned come out of the budget of the
//! payer the artifact's [`ResourcePolicy`] names. Every invocation is first
//! put to the **policy chain**: plugins of the `policy-plugin` world, in
//! any language that builds a component.
//!
//! **What this crate owns.** The host itself: the registry of artifacts,
//! the guest imports (`capabilities`, over an artifact's `sandbox`), the
//! invocation pipeline (`invoke`, a module per stage), the scheduler, the
//! audit log, approvals, and the [`Host`] facade over its state
//! (`state::HostInner`). The layers below are crates of their own:
//! `fuelhost-ledger` (the ledger's model and traits), `fuelhost-sqlite`
//! (storage), `fuelhost-runtime` (engines, a guest's store context,
//! meters, the fuel price of host calls), `fuelhost-policy` (rules,
//! plugins, the chain); the HTTP server (`fuelhost-server`) and the
//! command line (`fuelhost-cli`) sit above.
//!
//! **What it must not know.** HTTP, or how a reply is shown: those are the
//! server's and the CLI's, which reach the host through this public API
//! only. Below the facade nothing reaches up to the host: each guest
//! import holds the narrow trait it needs (`Judge`, a task desk, a nested
//! invoker), and the scheduler's workers a task runner.
//!
//! **Where to start reading.** [`Host`], then `invoke/mod.rs` (one
//! invocation, stage by stage), then `capabilities` (what a guest may ask
//! for). The module layers are written down in `scripts/check-layers.py`.
//!
//! The central types and how they meet:
//!
//! - [`Host`] (built by [`HostBuilder`]) is the embedding API; it owns
//!   the rest.
//! - The registry compiles each uploaded component once (a content-addressed
//!   cache keeps the precompiled code across restarts) and keeps an
//!   `InstancePre` per artifact.
//! - [`Ledger`] and [`LedgerQuery`] (crate `fuelhost-ledger`) are the
//!   double-entry ledger's writes and reads; [`Host::ledger`] hands out
//!   the reads only;
//!   [`SqliteLedger`] (crate `fuelhost-sqlite`) the embedded
//!   backend. An invocation holds, then settles; a call no allocation or
//!   sponsor grant governs holds in memory and writes once, at settlement.
//! - [`PolicyChain`] runs policy plugins, each check in a fresh instance.
//! - `invoke` is the pipeline: admit, reserve, run, settle, report, each a
//!   module returning a typed result to the next; its result is an
//!   [`InvocationReport`].
//! - [`scheduler`] runs invocations submitted as tasks ([`Host::submit_task`]):
//!   durable, queued fairly, run by the host's workers.
//! - [`telemetry`] names the pipeline's spans, installs the process-wide
//!   log and OTLP subscriber ([`telemetry::init`]) and renders the
//!   Prometheus metrics ([`Host::metrics_text`]).
//!
//! ```no_run
//! use fuelhost::{Asset, Host, Invocation, Manifest};
//! # fn main() -> anyhow::Result<()> {
//! let host = Host::builder().data_dir("data").build()?;
//! host.create_agent("alice")?;
//! host.create_agent("bob")?;
//! host.mint("seed-bob", "bob", Asset::Scrip, 100)?;
//! host.mint("seed-bob-fuel", "bob", Asset::Fuel, 10_000_000)?;
//! let manifest = Manifest::from_toml(r#"
//!     owner = "alice"
//!     name = "echo"
//!     version = "0.1.0"
//!     price = 5
//!     resource_policy = "caller_pays"
//! "#)?;
//! host.upload(manifest, &std::fs::read("rust-echo.wasm")?)?;
//! let report = host.invoke(Invocation::new("bob", "alice/echo@0.1.0", "hi"))?;
//! println!("{} fuel, charged to {}", report.resources_consumed.fuel, report.charged_to);
//! # Ok(()) }
//! ```

pub mod actions;
mod approvals;
mod audit;
mod bindings;
mod capabilities;
mod changes;
mod cost;
mod data_dir;
mod disk;
mod egress;
mod error;
mod host;
mod host_limits;
mod invocation;
mod invoke;
mod keys;
pub mod liveness;
pub mod llm;
pub mod loadgen;
mod manifest;
mod membership;
mod proxy;
pub mod registration;
mod registry;
mod retention;
mod sandbox;
pub mod scheduler;
mod state;
pub mod telemetry;
mod typed;
mod unsettled;

pub mod demo;

pub use approvals::{ApprovalError, Decider, PendingAction, PendingState, ADMIN_DECIDER, MAX_PARKED_UPLOADS};
pub use audit::{AuditArchived, AuditEntry, AuditQuery};
pub use bindings::{Action, Attribute, Decision, Usage};
pub use cost::{calibrate, Calibration, CostModel, REFERENCE_KERNEL};
pub use error::{HostError, InvokeError, UploadError};
pub use fuelhost_ledger::{
    contract_allocation, reputation_scaled, Alert, AlertKind, Allocation, AllocationRequest, AllocationStatus,
    Archived, Asset, AssetBalance, Balances, Clock, ConsumerStats, Distribution, GuestTransfer, Ledger, LedgerError,
    LedgerQuery, Listed, ManualClock, Outcome, Period, QuotaUsage, Reservation, Reserved, Resource, ResourcesConsumed,
    Rollover, ServiceStats, Settlement, SponsorGrant, SponsorGrantStatus, SystemClock, Transfer, TransferKind,
    TransferQuery, TransferRequest, UbiSource, UsageQuery, UsageRecord, ARCHIVED_PREFIX, BURN_ACCOUNT,
    CONSUMED_ACCOUNT, MINT_ACCOUNT, MONTH_MS, POOL_ACCOUNT,
};
pub use fuelhost_ledger::{AgentId, InvalidAgentId};
pub use fuelhost_policy::rules::{by_name as rules_by_name, Condition, Effect, Rule, RuleSet, RulesError};
pub use fuelhost_policy::{PluginLimits, PolicyChain, Verdict};
pub use fuelhost_runtime::hostcall::CROSSING as HOST_CALL_CROSSING_FUEL;
pub use fuelhost_runtime::Busy;
pub use fuelhost_runtime::CacheStats;
pub use fuelhost_runtime::EngineSettings;
pub use fuelhost_sqlite::{Durability, SqliteLedger};
pub use host::{Approved, Host, HostBuilder};
pub use host_limits::{check_id, HostLimits, MAX_ID_LEN};
pub use invocation::{Invocation, InvocationReport};
pub use keys::{ApiKeys, Authenticated, IssuedKey, KeyInfo, Principal, Revocation};
pub use liveness::{AgentHealth, Health};
pub use llm::LlmProvider;
pub use manifest::{valid_name, CommandStart, Limits, Manifest, ManifestError, Metering, ResourcePolicy};
pub use membership::Membership;
pub use proxy::{ProxyAnswer, ProxyResponse};
pub use registry::ArtifactInfo;
pub use retention::{ArchiveReport, Retention};
pub use scheduler::{
    BreakerState, BreakerStatus, Priority, RouteMode, SchedulerSettings, Task, TaskError, TaskRequest, TaskState,
};
pub use typed::{ArgError, ExportedFunction, TypedInput, TypedParam};
