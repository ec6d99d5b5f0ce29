//! The replies the server answers with, for every route whose answer is
//! more than one of the host's own values: an agent with its balances,
//! a page of a listing with its cursor, a key just issued, a policy
//! decision. A route that answers with one domain value (a `Transfer`,
//! an `Allocation`, an `InvocationReport`, a `Task`, ...) answers with
//! that type itself.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use fuelhost::{
    AgentHealth, Allocation, ArtifactInfo, AuditEntry, Balances, BreakerStatus, ConsumerStats, CostModel, KeyInfo,
    Listed, PendingAction, Rule, ServiceStats, Transfer, UsageRecord,
};

/// A key just issued: shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedKeyReply {
    /// The agent.
    pub id: String,
    /// The bearer token. Keep it: it is never shown again.
    pub api_key: String,
    /// The key's public id, for listing and revoking.
    pub key_id: String,
}

/// `GET /v1/keys`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    /// The page of keys, in order of their ids.
    pub keys: Vec<ListedKey>,
    /// When set, the next page is `?after=<next>`.
    pub next: Option<String>,
}

/// A key as listed: never the secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ListedKey {
    /// Public id (`k_` and 12 hex digits).
    pub key_id: String,
    /// The agent it acts as; `null` for an admin key.
    pub agent: Option<String>,
    /// When it was made, Unix ms.
    pub created_ms: i64,
    /// When it was revoked, Unix ms; `null` while it is live.
    pub revoked_ms: Option<i64>,
}

impl From<KeyInfo> for ListedKey {
    fn from(k: KeyInfo) -> ListedKey {
        ListedKey {
            key_id: k.key_id,
            agent: k.agent.map(String::from),
            created_ms: k.created_ms,
            revoked_ms: k.revoked_ms,
        }
    }
}

/// A new admin key, shown once. With it the bootstrap key can be rotated:
/// make a new one, then revoke the old.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AdminKeyReply {
    /// The bearer token. Keep it: it is never shown again.
    pub api_key: String,
    /// The key's public id, for listing and revoking.
    pub key_id: String,
    /// Always true: the key administers the server.
    pub admin: bool,
}

/// `GET /v1/artifacts`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArtifactList {
    /// Every artifact, sorted by id: `{id, manifest, digest, size, uploaded_ms}`.
    #[schema(value_type = Vec<Object>)]
    pub artifacts: Vec<ArtifactInfo>,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The error inside [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable, snake_case: `bad_request`, `unauthorized`,
    /// `forbidden`, `not_found`, `conflict`, `too_large`,
    /// `rate_limited`, ...
    #[schema(example = "bad_request")]
    pub code: String,
    /// What was wrong and how to fix it.
    pub message: String,
}

/// `GET /v1/agents/{id}`: an agent, its balances and its health.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentReply {
    /// The agent.
    pub id: String,
    /// `{scrip, fuel, disk_bytes}`, each `{posted, held}`.
    #[schema(value_type = Object)]
    pub balances: Balances,
    /// Its tenant, if any.
    pub tenant: Option<String>,
    /// Its workspace within the tenant, if any.
    pub workspace: Option<String>,
    /// `{agent, health, last_heartbeat_ms, ttl_ms, status}`.
    #[schema(value_type = Object)]
    pub health: AgentHealth,
}

/// `GET /v1/health/agents`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentsHealth {
    /// Every agent that ever sent a heartbeat: `{agent, health,
    /// last_heartbeat_ms, ttl_ms, status}`.
    #[schema(value_type = Vec<Object>)]
    pub agents: Vec<AgentHealth>,
}

/// `DELETE /v1/keys/{key_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyRevoked {
    /// The key.
    pub key_id: String,
    /// Always true: it no longer authenticates.
    pub revoked: bool,
}

/// `DELETE /v1/artifacts/{owner}/{name@version}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArtifactDeleted {
    /// Always true.
    pub deleted: bool,
    /// What was deleted.
    #[schema(value_type = Object)]
    pub artifact: ArtifactInfo,
}

/// `GET /v1/transfers`: a page of transfers, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransferPage {
    /// Each transfer with its position `seq`.
    #[schema(value_type = Vec<Object>)]
    pub transfers: Vec<Listed<Transfer>>,
    /// When set, the next page is `?before=<next>`.
    pub next: Option<i64>,
}

/// `GET /v1/usage`: a page of usage records, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsagePage {
    /// Each record with its position `seq`.
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<UsageRecord>,
    /// When set, the next page is `?before=<next>`.
    pub next: Option<i64>,
}

/// `GET /v1/top`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopConsumers {
    /// The agents that consumed most, most first.
    #[schema(value_type = Vec<Object>)]
    pub top: Vec<ConsumerStats>,
}

/// `GET /v1/stats`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatsReply {
    /// Service-wide counts and totals.
    #[schema(value_type = Object)]
    pub stats: ServiceStats,
    /// The cost model in use.
    #[schema(value_type = Object)]
    pub cost_model: CostModel,
}

/// `GET /v1/allocations`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AllocationList {
    /// Allocations, each with its current period's usage.
    #[schema(value_type = Vec<Object>)]
    pub allocations: Vec<Allocation>,
}

/// `GET /v1/policy/rules` (and the answer to changing them).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RuleList {
    /// The rules in force, in order of evaluation.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<Rule>,
}

/// `GET /v1/policy/plugins` (and the answer to changing them).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PluginList {
    /// The policy chain's plugins, in the order they are asked.
    pub plugins: Vec<String>,
}

/// `POST /v1/policy/check`: what the policy chain would decide.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyDecision {
    /// `allow`, `deny` or `require_approval`.
    pub decision: String,
    /// Why, for a deny.
    pub reason: Option<String>,
    /// Who may approve, for `require_approval`.
    pub approvers: Option<Vec<String>>,
    /// `rule NAME` or the plugin whose verdict stood; none when all allowed.
    pub decided_by: Option<String>,
    /// The rule that explicitly allowed the action, if one did.
    pub allowed_by: Option<String>,
    /// Time the chain took, microseconds.
    pub latency_us: u64,
    /// Always false: a check is neither audited nor counted.
    pub recorded: bool,
}

/// `GET /v1/audit`: a page of the policy decisions recorded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Each entry with its position `seq`.
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<AuditEntry>,
    /// When set, the next page is `?after=<next>`.
    pub next: Option<i64>,
}

/// `GET /v1/approvals`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingList {
    /// Actions parked for approval that the key may see.
    #[schema(value_type = Vec<Object>)]
    pub pending: Vec<PendingAction>,
}

/// `GET /v1/breakers`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BreakerList {
    /// Each artifact's circuit breaker that has seen a failed task.
    #[schema(value_type = Vec<Object>)]
    pub breakers: Vec<BreakerStatus>,
}
