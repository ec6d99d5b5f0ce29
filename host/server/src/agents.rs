//! Agents and API keys: creating agents (with their first key), reading
//! an agent, issuing, listing and revoking keys.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use fuelhost::AgentHealth;
use fuelhost_api::replies::{AdminKeyReply, AgentReply, AgentsHealth, IssuedKeyReply, KeyList, KeyRevoked, ListedKey};
use fuelhost_api::requests::{Heartbeat, NewAgent};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{agent_id, blocking, next_page, query, ApiError, ApiResult, ApiState, Caller, ErrorBody, JsonBody};
use fuelhost::AgentId;
use fuelhost::Membership;
use fuelhost::Revocation;

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
        (status = 200, body = AgentReply),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub(super) async fn show_agent(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentReply>> {
    caller.may_read(&id)?;
    blocking(move || {
        let balances = state.host.balances(&id)?;
        let m = state.host.membership(&id)?;
        let health = state.host.agent_health(&id);
        Ok(Json(AgentReply { id, balances, tenant: m.tenant, workspace: m.workspace, health }))
    })
    .await
}

/// The agent is alive (that agent's key, or an admin's): healthy until
/// `ttl_ms` passes without another heartbeat, then unhealthy.
#[utoipa::path(post, path = "/v1/agents/{id}/heartbeat", tag = "agents", security(("api_key" = [])),
    params(("id" = String, Path, description = "the agent")), request_body = Heartbeat,
    responses(
        (status = 200, description = "`{agent, health, last_heartbeat_ms, ttl_ms, status}`", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub(super) async fn heartbeat(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Heartbeat>,
) -> ApiResult<Json<AgentHealth>> {
    caller.may_act_for(&id, "send the heartbeats of")?;
    blocking(move || {
        let ttl = req.ttl_ms.map(std::time::Duration::from_millis);
        Ok(Json(state.host.heartbeat(&id, ttl, req.status)?))
    })
    .await
}

/// The health of every agent that ever sent a heartbeat (admin).
#[utoipa::path(get, path = "/v1/health/agents", tag = "agents", security(("api_key" = [])),
    responses(
        (status = 200, body = AgentsHealth),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn agents_health(State(state): State<ApiState>, caller: Caller) -> ApiResult<Json<AgentsHealth>> {
    caller.admin()?;
    Ok(Json(AgentsHealth { agents: state.host.agents_health() }))
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
        (status = 200, body = KeyRevoked),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "no such key", body = ErrorBody),
        (status = 409, description = "the last admin key", body = ErrorBody),
    ))]
pub(super) async fn revoke_key(
    State(state): State<ApiState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> ApiResult<Json<KeyRevoked>> {
    caller.admin()?;
    blocking(move || match state.keys.revoke(&key_id).map_err(ApiError::internal)? {
        Revocation::Revoked => {
            if let Some(limiter) = &state.limiter {
                limiter.forget(&key_id);
            }
            Ok(Json(KeyRevoked { key_id, revoked: true }))
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
