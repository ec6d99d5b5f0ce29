//! The HTTP API (`fuelhost serve`): JSON in and out, a bearer API key on
//! every request but the health checks, one error shape
//! (`{"error": {"code", "message"}}`).
//!
//! An agent's key acts as that agent only: it invokes as itself, transfers
//! its own scrip, uploads only artifacts it owns, reads only its own
//! balances, usage and approvals. Admin keys create agents and keys, mint,
//! read the audit log and set the policy rules. The host's calls block
//! (they run guests and commit to SQLite), so handlers run them on tokio's
//! blocking pool.

mod error;
mod keys;

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use self::error::ApiError;
pub use self::keys::{ApiKeys, Principal};
use crate::agent::AgentId;
use crate::audit::AuditQuery;
use crate::ledger::{Asset, TransferRequest, UsageQuery};
use crate::manifest::Manifest;
use crate::membership::Membership;
use crate::{Host, Invocation};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    host: Host,
    keys: Arc<ApiKeys>,
}

impl ApiState {
    /// The API over `host`.
    pub fn new(host: Host) -> ApiState {
        let keys = Arc::new(ApiKeys::new(host.database()));
        ApiState { host, keys }
    }

    /// Make the bootstrap admin key if the data directory has none yet;
    /// returns it (to be shown once).
    pub fn bootstrap_admin_key(&self) -> Result<Option<String>, String> {
        if self.keys.has_admin()? {
            return Ok(None);
        }
        self.keys.create(None).map(Some)
    }
}

/// The router, with request bodies capped at `max_body_bytes`.
pub fn router(state: ApiState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/agents", post(create_agent))
        .route("/v1/agents/{id}", get(show_agent))
        .route("/v1/agents/{id}/keys", post(create_key))
        .route("/v1/mint", post(mint))
        .route("/v1/artifacts", get(list_artifacts).post(upload))
        .route("/v1/invoke", post(invoke))
        .route("/v1/transfers", post(transfer))
        .route("/v1/usage", get(usage))
        .route("/v1/audit", get(audit))
        .route("/v1/policy/rules", get(rules).put(set_rules))
        .route("/v1/approvals", get(approvals))
        .route("/v1/approvals/{id}/approve", post(approve))
        .route("/v1/approvals/{id}/reject", post(reject))
        .fallback(|| async { ApiError::not_found("no such route; see the README for the API") })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// Serve `router` on `listener` until `shutdown` resolves; requests in
/// flight finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

type ApiResult<T> = Result<T, ApiError>;

/// Run a blocking host call off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("the request's task failed: {e}")))?
}

fn principal(state: &ApiState, headers: &HeaderMap) -> ApiResult<Principal> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("send an API key: `Authorization: Bearer <key>`"))?;
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <key>`"))?;
    state.keys.principal(key.trim()).ok_or_else(|| unauthorized("unknown or revoked API key"))
}

fn admin(state: &ApiState, headers: &HeaderMap) -> ApiResult<()> {
    match principal(state, headers)? {
        Principal::Admin => Ok(()),
        Principal::Agent(_) => Err(ApiError::forbidden("this route needs an admin key")),
    }
}

fn agent(state: &ApiState, headers: &HeaderMap) -> ApiResult<AgentId> {
    match principal(state, headers)? {
        Principal::Agent(a) => Ok(a),
        Principal::Admin => Err(ApiError::forbidden("this route acts as an agent: use that agent's key")),
    }
}

/// Admins may read anyone; an agent only itself.
fn may_read(state: &ApiState, headers: &HeaderMap, whom: &str) -> ApiResult<()> {
    match principal(state, headers)? {
        Principal::Admin => Ok(()),
        Principal::Agent(a) if a.as_str() == whom => Ok(()),
        Principal::Agent(a) => Err(ApiError::forbidden(format!("`{a}` may not read `{whom}`'s data"))),
    }
}

fn body<T>(json: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    json.map(|Json(t)| t).map_err(|e| ApiError::bad_request(e.body_text()))
}

async fn metrics(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult<String> {
    admin(&state, &headers)?;
    Ok(state.host.metrics_text())
}

async fn ready(State(state): State<ApiState>) -> ApiResult<Json<Value>> {
    blocking(move || {
        state.host.stats()?;
        Ok(Json(json!({"status": "ready"})))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAgent {
    id: String,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    workspace: Option<String>,
}

async fn create_agent(
    State(state): State<ApiState>,
    headers: HeaderMap,
    req: Result<Json<NewAgent>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    admin(&state, &headers)?;
    let req = body(req)?;
    blocking(move || {
        let id = state.host.create_agent(&req.id)?;
        if req.tenant.is_some() || req.workspace.is_some() {
            state.host.set_membership(id.as_str(), &Membership { tenant: req.tenant, workspace: req.workspace })?;
        }
        issue_key(&state, &id)
    })
    .await
}

/// Make a key for `id` and answer with it: the only time it is shown.
fn issue_key(state: &ApiState, id: &AgentId) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = state.keys.create(Some(id)).map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "api_key": key}))))
}

async fn create_key(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    admin(&state, &headers)?;
    blocking(move || {
        let id = AgentId::new(id).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if !state.host.ledger().has_account(id.as_str())? {
            return Err(ApiError::not_found(format!("no agent `{id}`")));
        }
        issue_key(&state, &id)
    })
    .await
}

async fn show_agent(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    may_read(&state, &headers, &id)?;
    blocking(move || {
        let balances = state.host.balances(&id)?;
        let m = state.host.membership(&id)?;
        Ok(Json(json!({"id": id, "balances": balances, "tenant": m.tenant, "workspace": m.workspace})))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mint {
    id: String,
    agent: String,
    asset: Asset,
    amount: u64,
}

async fn mint(
    State(state): State<ApiState>,
    headers: HeaderMap,
    req: Result<Json<Mint>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    admin(&state, &headers)?;
    let req = body(req)?;
    blocking(move || {
        Ok(Json(serde_json::to_value(state.host.mint(&req.id, &req.agent, req.asset, req.amount)?).unwrap_or_default()))
    })
    .await
}

async fn list_artifacts(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    principal(&state, &headers)?;
    Ok(Json(json!({"artifacts": state.host.artifacts()})))
}

/// Upload: the body is the component; the manifest is JSON in the
/// `Fuelhost-Manifest` header. The owner must be the key's agent.
async fn upload(
    State(state): State<ApiState>,
    headers: HeaderMap,
    component: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let me = agent(&state, &headers)?;
    let component = component.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the body is over the server's size limit (--max-body-bytes)",
            )
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    let manifest = headers
        .get("fuelhost-manifest")
        .ok_or_else(|| ApiError::bad_request("send the manifest as JSON in the `Fuelhost-Manifest` header"))?
        .to_str()
        .map_err(|_| ApiError::bad_request("the `Fuelhost-Manifest` header must be UTF-8 JSON"))?;
    let manifest = Manifest::from_json(manifest).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if manifest.owner != me {
        return Err(ApiError::forbidden(format!("`{me}` may not upload as `{}`", manifest.owner)));
    }
    blocking(move || {
        Ok((
            StatusCode::CREATED,
            Json(serde_json::to_value(state.host.upload(manifest, &component)?).unwrap_or_default()),
        ))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invoke {
    artifact: String,
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    input_base64: Option<String>,
    #[serde(default)]
    fuel_limit: Option<u64>,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Serialize)]
struct InvokeReply {
    #[serde(flatten)]
    report: crate::InvocationReport,
    output_text: String,
    output_base64: String,
}

async fn invoke(
    State(state): State<ApiState>,
    headers: HeaderMap,
    req: Result<Json<Invoke>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let me = agent(&state, &headers)?;
    let req = body(req)?;
    let input = match (req.input, req.input_base64) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("give `input` or `input_base64`, not both")),
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| ApiError::bad_request(format!("`input_base64` is not base64: {e}")))?,
        (None, None) => Vec::new(),
    };
    blocking(move || {
        let mut inv = Invocation::new(me.to_string(), req.artifact, input);
        inv.fuel_limit = req.fuel_limit;
        inv.id = req.id;
        let report = state.host.invoke(inv)?;
        let reply = InvokeReply {
            output_text: report.output_text(),
            output_base64: base64::engine::general_purpose::STANDARD.encode(&report.output),
            report,
        };
        let mut value = serde_json::to_value(reply).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(obj) = value.as_object_mut() {
            obj.remove("output");
        }
        Ok(Json(value))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTransfer {
    id: String,
    to: String,
    amount: u64,
    #[serde(default = "scrip")]
    asset: Asset,
    #[serde(default)]
    memo: String,
}

fn scrip() -> Asset {
    Asset::Scrip
}

async fn transfer(
    State(state): State<ApiState>,
    headers: HeaderMap,
    req: Result<Json<NewTransfer>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let me = agent(&state, &headers)?;
    let req = body(req)?;
    let to = AgentId::new(req.to).map_err(|e| ApiError::bad_request(e.to_string()))?;
    blocking(move || {
        let t = state.host.transfer(&TransferRequest {
            id: req.id,
            from: me,
            to,
            asset: req.asset,
            amount: req.amount,
            memo: req.memo,
        })?;
        Ok((StatusCode::CREATED, Json(serde_json::to_value(t).unwrap_or_default())))
    })
    .await
}

async fn usage(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(mut q): Query<UsageQuery>,
) -> ApiResult<Json<Value>> {
    match principal(&state, &headers)? {
        Principal::Admin => {}
        Principal::Agent(me) => match &q.agent {
            Some(a) if *a != me => return Err(ApiError::forbidden(format!("`{me}` may not read `{a}`'s usage"))),
            _ => q.agent = Some(me),
        },
    }
    blocking(move || Ok(Json(json!({"records": state.host.usage_records(&q)?})))).await
}

async fn audit(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    admin(&state, &headers)?;
    blocking(move || Ok(Json(json!({"entries": state.host.query_audit(&q)?})))).await
}

async fn rules(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    admin(&state, &headers)?;
    Ok(Json(json!({"rules": state.host.policy_rules()})))
}

async fn set_rules(State(state): State<ApiState>, headers: HeaderMap, text: String) -> ApiResult<Json<Value>> {
    admin(&state, &headers)?;
    blocking(move || {
        state.host.set_policy_rules(&text)?;
        Ok(Json(json!({"rules": state.host.policy_rules()})))
    })
    .await
}

async fn approvals(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let me = agent(&state, &headers)?;
    blocking(move || Ok(Json(json!({"pending": state.host.pending_actions(Some(me.as_str()))?})))).await
}

async fn approve(State(state): State<ApiState>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let me = agent(&state, &headers)?;
    blocking(move || Ok(Json(serde_json::to_value(state.host.approve(&id, me.as_str())?).unwrap_or_default()))).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reject {
    reason: String,
}

async fn reject(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    req: Result<Json<Reject>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let me = agent(&state, &headers)?;
    let req = body(req)?;
    blocking(move || {
        Ok(Json(serde_json::to_value(state.host.reject(&id, me.as_str(), &req.reason)?).unwrap_or_default()))
    })
    .await
}
