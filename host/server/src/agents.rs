//! Agents and API keys: creating agents (with their first key), reading
//! an agent, issuing, listing and revoking keys.

use crate::grammar::AgentIdSchema;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::{agent_id, blocking, next_page, query, ApiError, ApiResult, ApiState, Caller, ErrorBody, JsonBody};
use fuelhost::AgentId;
use fuelhost::Membership;
use fuelhost::{KeyInfo, Revocation};

/// `POST /v1/agents`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAgent {
    /// 1 to 64 characters of a-z, 0-9, '-' and '_'.
    #[schema(value_type = AgentIdSchema)]
    id: AgentId,
    /// Tenant, for scoped policy rules.
    #[serde(default)]
    tenant: Option<String>,
    /// Workspace within the tenant (needs the tenant).
    #[serde(default)]
    workspace: Option<String>,
    /// Its configuration: `budget` `{scrip, fuel, disk_bytes}` minted now,
    /// `limits` `{resource: quota}` of an allocation activated for it,
    /// `rules` (policy rules, scoped to it). Registering again with the
    /// same configuration changes nothing.
    #[serde(default)]
    #[schema(value_type = Object)]
    config: Option<fuelhost::registration::AgentConfig>,
}

/// A key just issued: shown this once.
#[derive(Serialize, ToSchema)]
pub(super) struct IssuedKeyReply {
    /// The agent.
    id: String,
    /// The bearer token. Keep it: it is never shown again.
    api_key: String,
    /// The key's public id, for listing and revoking.
    key_id: String,
}

/// `GET /v1/keys`.
#[derive(Serialize, ToSchema)]
pub(super) struct KeyList {
    /// The page of keys, in order of their ids.
    keys: Vec<ListedKey>,
    /// When set, the next page is `?after=<next>`.
    next: Option<String>,
}

/// A key as listed: never the secret.
#[derive(Serialize, ToSchema)]
pub(super) struct ListedKey {
    /// Public id (`k_` and 12 hex digits).
    key_id: String,
    /// The agent it acts as; `null` for an admin key.
    agent: Option<String>,
    /// When it was made, Unix ms.
    created_ms: i64,
    /// When it was revoked, Unix ms; `null` while it is live.
    revoked_ms: Option<i64>,
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

/// `GET /v1/keys` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct KeysParams {
    /// Keys after this key id (the `next` of the previous page).
    after: Option<String>,
    /// At most this many (default 100, at most 10,000).
    limit: Option<usize>,
}

/// Create an agent and its first API key (admin).
#[utoipa::path(post, path = "/v1/agents", tag = "agents", security(("api_key" = [])), request_body = NewAgent,
    responses(
        (status = 201, body = IssuedKeyReply),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "the agent exists", body = ErrorBody),
    ))]
pub(super) async fn create_agent(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewAgent>,
) -> ApiResult<(StatusCode, Json<IssuedKeyReply>)> {
    caller.admin()?;
    let id = req.id;
    let membership = Membership { tenant: req.tenant, workspace: req.workspace };
    if membership.workspace.is_some() && membership.tenant.is_none() {
        return Err(ApiError::bad_request("a workspace belongs to a tenant: give the tenant too"));
    }
    blocking(move || {
        match &req.config {
            None => {
                state.host.create_agent(id.as_str())?;
            }
            Some(config) => {
                if !state.host.register_agent(id.as_str(), config)?.created {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "conflict",
                        format!("agent `{id}` exists; its configuration is as asked"),
                    ));
                }
            }
        }
        if membership.tenant.is_some() {
            state.host.set_membership(id.as_str(), &membership)?;
        }
        issue_key(&state, &id)
    })
    .await
}

/// Make a key for `id` and answer with it: the only time it is shown.
fn issue_key(state: &ApiState, id: &AgentId) -> ApiResult<(StatusCode, Json<IssuedKeyReply>)> {
    let key = state.keys.create(Some(id)).map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(IssuedKeyReply { id: id.to_string(), api_key: key.key, key_id: key.key_id })))
}

/// Another API key for an agent (admin).
#[utoipa::path(post, path = "/v1/agents/{id}/keys", tag = "agents", security(("api_key" = [])),
    params(("id" = String, Path, description = "the agent")),
    responses(
        (status = 201, body = IssuedKeyReply),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "no such agent", body = ErrorBody),
    ))]
pub(super) async fn create_key(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<IssuedKeyReply>)> {
    caller.admin()?;
    let id = agent_id(id)?;
    blocking(move || {
        if !state.host.ledger().has_account(id.as_str())? {
            return Err(ApiError::not_found(format!("no agent `{id}`: create it with POST /v1/agents")));
        }
        issue_key(&state, &id)
    })
    .await
}

/// An agent's balances and membership (that agent or admin).
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", security(("api_key" = [])),
    params(("id" = String, Path, description = "the agent")),
    responses(
        (status = 200, description = "`{id, balances, tenant, workspace, health}`", body = Value),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub(super) async fn show_agent(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.may_read(&id)?;
    blocking(move || {
        let balances = state.host.balances(&id)?;
        let m = state.host.membership(&id)?;
        let health = state.host.agent_health(&id);
        Ok(Json(
            json!({"id": id, "balances": balances, "tenant": m.tenant, "workspace": m.workspace, "health": health}),
        ))
    })
    .await
}

/// `POST /v1/agents/{id}/heartbeat`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Heartbeat {
    /// How long this heartbeat keeps the agent healthy, ms (default
    /// 30000, at most a day).
    #[serde(default)]
    ttl_ms: Option<u64>,
    /// What the agent is doing, shown with its health (at most 256 bytes).
    #[serde(default)]
    status: Option<String>,
}

/// The agent is alive (that agent's key, or an admin's): healthy until
/// `ttl_ms` passes without another heartbeat, then unhealthy.
#[utoipa::path(post, path = "/v1/agents/{id}/heartbeat", tag = "agents", security(("api_key" = [])),
    params(("id" = String, Path, description = "the agent")), request_body = Heartbeat,
    responses(
        (status = 200, description = "`{agent, health, last_heartbeat_ms, ttl_ms, status}`", body = Value),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub(super) async fn heartbeat(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Heartbeat>,
) -> ApiResult<Json<Value>> {
    caller.may_act_for(&id, "send the heartbeats of")?;
    blocking(move || {
        let ttl = req.ttl_ms.map(std::time::Duration::from_millis);
        Ok(Json(json!(state.host.heartbeat(&id, ttl, req.status)?)))
    })
    .await
}

/// The health of every agent that ever sent a heartbeat (admin).
#[utoipa::path(get, path = "/v1/health/agents", tag = "agents", security(("api_key" = [])),
    responses(
        (status = 200, description = "`{agents: [{agent, health, last_heartbeat_ms, ttl_ms, status}]}`", body = Value),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn agents_health(State(state): State<ApiState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.admin()?;
    Ok(Json(json!({"agents": state.host.agents_health()})))
}

/// A new admin key, shown once. With it the bootstrap key can be rotated:
/// make a new one, then revoke the old.
#[derive(Serialize, ToSchema)]
pub(super) struct AdminKeyReply {
    /// The bearer token. Keep it: it is never shown again.
    api_key: String,
    /// The key's public id, for listing and revoking.
    key_id: String,
    /// Always true: the key administers the server.
    admin: bool,
}

/// Another admin key (admin).
#[utoipa::path(post, path = "/v1/keys", tag = "agents", security(("api_key" = [])),
    responses(
        (status = 201, body = AdminKeyReply),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn create_admin_key(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<AdminKeyReply>)> {
    caller.admin()?;
    blocking(move || {
        let key = state.keys.create(None).map_err(ApiError::internal)?;
        Ok((StatusCode::CREATED, Json(AdminKeyReply { api_key: key.key, key_id: key.key_id, admin: true })))
    })
    .await
}

/// API keys, live and revoked, without the secrets, a page at a time
/// (admin).
#[utoipa::path(get, path = "/v1/keys", tag = "agents", security(("api_key" = [])), params(KeysParams),
    responses(
        (status = 200, body = KeyList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn list_keys(
    State(state): State<ApiState>,
    caller: Caller,
    q: Result<Query<KeysParams>, QueryRejection>,
) -> ApiResult<Json<KeyList>> {
    caller.admin()?;
    let q = query(q)?;
    let limit = q.limit.unwrap_or(100).min(10_000);
    blocking(move || {
        let keys = state.keys.list(q.after.as_deref(), limit).map_err(ApiError::internal)?;
        let next = next_page(&keys, limit, |k| k.key_id.clone());
        Ok(Json(KeyList { keys: keys.into_iter().map(ListedKey::from).collect(), next }))
    })
    .await
}

/// Revoke an API key by its id (admin). The last live admin key cannot be
/// revoked.
#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "agents", security(("api_key" = [])),
    params(("key_id" = String, Path, description = "the key's public id, `k_` and 12 hex digits")),
    responses(
        (status = 200, description = "`{key_id, revoked: true}`", body = Value),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "no such key", body = ErrorBody),
        (status = 409, description = "the last admin key", body = ErrorBody),
    ))]
pub(super) async fn revoke_key(
    State(state): State<ApiState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.admin()?;
    blocking(move || match state.keys.revoke(&key_id).map_err(ApiError::internal)? {
        Revocation::Revoked => {
            if let Some(limiter) = &state.limiter {
                limiter.forget(&key_id);
            }
            Ok(Json(json!({"key_id": key_id, "revoked": true})))
        }
        Revocation::Unknown => {
            Err(ApiError::not_found(format!("no API key `{key_id}`; GET /v1/keys lists the key ids")))
        }
        Revocation::LastAdmin => Err(ApiError::conflict(format!(
            "`{key_id}` is the last live admin key: without one nobody could create agents or keys; \
             make another first (POST /v1/keys), then revoke this one"
        ))),
    })
    .await
}
