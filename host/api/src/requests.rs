//! The bodies a client sends, one type per route that takes one, in the
//! order of the routes. Each refuses an unknown field and documents its
//! defaults; values with a grammar (ids, artifact ids, agents) are the
//! [`grammar`](crate::grammar) types, checked as they are read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::grammar::{AgentIdSchema, ArtifactRef, AssetSchema, ClientId};
use fuelhost::{AgentId, Asset, Period, Resource};

/// `POST /v1/agents`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// 1 to 64 characters of a-z, 0-9, '-' and '_'.
    #[schema(value_type = AgentIdSchema)]
    pub id: AgentId,
    /// Tenant, for scoped policy rules.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Workspace within the tenant (needs the tenant).
    #[serde(default)]
    pub workspace: Option<String>,
    /// Its configuration: `budget` `{scrip, fuel, disk_bytes, llm_tokens}` minted now,
    /// `limits` `{resource: quota}` of an allocation activated for it,
    /// `rules` (policy rules, scoped to it). Registering again with the
    /// same configuration changes nothing.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Option<fuelhost::registration::AgentConfig>,
}

/// `POST /v1/agents/{id}/heartbeat`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// How long this heartbeat keeps the agent healthy, ms (default
    /// 30000, at most a day).
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    /// What the agent is doing, shown with its health (at most 256 bytes).
    #[serde(default)]
    pub status: Option<String>,
}

/// `POST /v1/mint`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mint {
    /// Transfer id: minting again with it never mints twice.
    pub id: ClientId,
    /// Who receives.
    #[schema(value_type = AgentIdSchema)]
    pub agent: AgentId,
    /// `scrip`, `fuel`, `disk_bytes` or `llm_tokens`.
    #[schema(value_type = AssetSchema)]
    pub asset: Asset,
    /// How much, above zero.
    #[schema(minimum = 1)]
    pub amount: u64,
}

/// `POST /v1/transfers`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    /// Idempotency key.
    pub id: ClientId,
    /// The recipient.
    #[schema(value_type = AgentIdSchema)]
    pub to: AgentId,
    /// How much, above zero.
    #[schema(minimum = 1)]
    pub amount: u64,
    /// Default `scrip`.
    #[serde(default = "scrip")]
    #[schema(value_type = AssetSchema)]
    pub asset: Asset,
    /// Free text.
    #[serde(default)]
    pub memo: String,
}

fn scrip() -> Asset {
    Asset::Scrip
}

/// `POST /v1/grants`: a sponsor grant made by the key's agent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// Idempotency key and the grant's id.
    pub id: ClientId,
    /// Whose calls the sponsor pays the resources of.
    #[schema(value_type = AgentIdSchema)]
    pub beneficiary: AgentId,
    /// Most fuel paid over the grant's life.
    pub fuel_limit: u64,
    /// Most disk bytes paid over the grant's life (default 0).
    #[serde(default)]
    pub disk_limit: u64,
    /// Unix ms after which it no longer applies (default: never).
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
    /// Artifact ids it applies to (default: any).
    #[serde(default)]
    pub artifacts: Vec<ArtifactRef>,
}

/// `POST /v1/invoke`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invoke {
    /// `owner/name@version`.
    pub artifact: ArtifactRef,
    /// Input as text.
    #[serde(default)]
    pub input: Option<String>,
    /// Input as base64 (instead of `input`).
    #[serde(default)]
    pub input_base64: Option<String>,
    /// Most fuel the call may burn (default: the artifact's limit).
    #[serde(default)]
    pub fuel_limit: Option<u64>,
    /// Invocation id, for idempotency (default: a fresh one).
    #[serde(default)]
    pub id: Option<ClientId>,
    /// For an artifact called by function (its typed exports, listed by
    /// `GET /v1/artifacts/{id}`): the function to call (`add`, or
    /// `<interface>#<function>`), instead of `input`.
    #[serde(default)]
    pub export: Option<String>,
    /// With `export`: its arguments, a JSON array in parameter order (or an
    /// object by parameter name), checked against the function's types.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub args: Option<serde_json::Value>,
    /// Instead of `export` and `args`: the call written in WAVE, as
    /// `wasmtime run --invoke` takes it (`add(1, 2)`).
    #[serde(default)]
    pub call: Option<String>,
}

/// `POST /v1/tasks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    /// `owner/name@version` (or give `capability` instead).
    #[serde(default)]
    pub artifact: Option<ArtifactRef>,
    /// Hand the task to an artifact declaring this capability, chosen by
    /// `route` within `max_price` and your scrip.
    #[serde(default)]
    pub capability: Option<String>,
    /// `standard` (the default), `cost_optimized`, `latency_optimized` or
    /// `quality_optimized`.
    #[serde(default)]
    pub route: Option<String>,
    /// The most you will pay per attempt when handed over by capability.
    #[serde(default)]
    pub max_price: Option<u64>,
    /// Input as text.
    #[serde(default)]
    pub input: Option<String>,
    /// Input as base64 (instead of `input`).
    #[serde(default)]
    pub input_base64: Option<String>,
    /// `critical`, `high`, `normal` (the default) or `low`.
    #[serde(default)]
    pub priority: Option<String>,
    /// Most fuel the task's invocation may burn.
    #[serde(default)]
    pub fuel_limit: Option<u64>,
    /// Task id, for idempotency (default: a fresh one).
    #[serde(default)]
    pub id: Option<ClientId>,
    /// The most attempts (default 1: no retry); a failed attempt is
    /// retried after `backoff_ms`, doubled each time, with jitter.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// The first retry's delay, ms (default 1000).
    #[serde(default)]
    pub backoff_ms: Option<u64>,
    /// Cap on each attempt's wall time, ms (the artifact's timeout still
    /// caps it); an attempt stopped by it ends `timed_out`.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Ids of your tasks that must complete first (submitted before or
    /// after this one); if one fails, is cancelled or times out, this one
    /// fails. A cycle is refused (`dependency_cycle`).
    #[serde(default)]
    pub depends_on: Vec<ClientId>,
}

/// `POST /v1/allocations`: the fields of an allocation request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAllocation {
    /// Idempotency key and the allocation's id.
    pub id: ClientId,
    /// The agent it is for (an agent's key: itself).
    #[schema(value_type = AgentIdSchema)]
    pub agent: AgentId,
    /// Quota per resource (`fuel`, `disk_bytes`, `api_calls`,
    /// `llm_tokens`, `budget_usd_micros`, `memory_bytes`,
    /// `concurrent_tasks`), per period.
    #[schema(value_type = Object)]
    pub quotas: BTreeMap<Resource, u64>,
    /// 1 (lowest) to 10. Default 5.
    #[serde(default)]
    pub priority: Option<u8>,
    /// Life once activated, ms. Default: until revoked.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// `{length_ms, rollover: "reset" | "carry_over"}`. Default: one period.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub period: Option<Period>,
    /// Approve at once (admin only).
    #[serde(default)]
    pub auto_approve: bool,
    /// Alert threshold, percent. Default 80.
    #[serde(default)]
    pub soft_threshold_percent: Option<u8>,
    /// Refusal threshold, percent. Default 100.
    #[serde(default)]
    pub hard_threshold_percent: Option<u8>,
}

/// `POST /v1/allocations/{id}/extend`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Extend {
    /// How much longer it lasts, ms (above zero).
    pub additional_ms: u64,
}

/// `POST /v1/allocations/{id}/revoke`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    /// Why; recorded with the allocation.
    pub reason: String,
}

/// `POST /v1/approvals/{id}/reject`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// Why; recorded with the action.
    pub reason: String,
}

/// Resources an action is expected to use.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Estimate {
    /// Fuel.
    pub fuel: u64,
    /// Peak linear memory, bytes.
    pub memory_peak_bytes: u64,
    /// Disk growth, bytes.
    pub disk_bytes: u64,
    /// LLM tokens.
    pub llm_tokens: u64,
    /// Wall time, nanoseconds.
    pub wall_time_ns: u64,
}

/// `POST /v1/policy/check`: a hypothetical action.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyCheck {
    /// `invoke`, `upload`, `transfer`, `approve`, `file-open` or `http-request`.
    pub kind: String,
    /// Who would act (an agent).
    pub subject: String,
    /// What it would act on (an artifact id, an agent, a path, a URL...).
    pub target: String,
    /// The subject's tenant. When neither tenant nor workspace is given,
    /// the subject's stored membership is used, as in a real check.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The subject's workspace.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Attributes, as the host would send them (`asset`, `size`, `mode`...).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Price in scrip.
    #[serde(default)]
    pub price: u64,
    /// Expected resources.
    #[serde(default)]
    pub estimated: Estimate,
}
