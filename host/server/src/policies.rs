//! Policies over HTTP (admin): the declarative rules, the plugin chain,
//! dry-run checks of hypothetical actions, and the audit log of real
//! decisions.

use fuelhost_api::replies::{AuditPage, PluginList, PolicyDecision, RuleList};
use fuelhost_api::requests::PolicyCheck;

use axum::extract::rejection::{QueryRejection, StringRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{blocking, query, uploads, ApiError, ApiResult, ApiState, Caller, ErrorBody, JsonBody};
use fuelhost::AuditQuery;
use fuelhost::HostError;
use fuelhost::{Action, Attribute, Decision, Usage};
use fuelhost::{Rule, RuleSet};

use crate::grammar::ACTION_KINDS;

/// The declarative rules in force, in the order they are tried.
#[utoipa::path(get, path = "/v1/policy/rules", tag = "policies", security(("api_key" = [])),
    responses(
        (status = 200, body = RuleList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn rules(State(state): State<ApiState>, caller: Caller) -> ApiResult<Json<RuleList>> {
    caller.admin()?;
    Ok(Json(RuleList { rules: state.host.policy_rules() }))
}

/// Replace the rules with the body, TOML (`[[rule]]` tables) or JSON
/// (`{"rules": {name: rule}}`, with `Content-Type: application/json`); on
/// an error nothing changes and the message names the line or the rule.
#[utoipa::path(put, path = "/v1/policy/rules", tag = "policies", security(("api_key" = [])),
    request_body(content((String = "application/toml"), (RuleSetBody = "application/json")),
        description = "the rule set: TOML `[[rule]]` tables, or JSON `{\"rules\": {name: rule}}`; an empty one clears every rule"),
    responses(
        (status = 200, body = RuleList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn set_rules(
    State(state): State<ApiState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Json<RuleList>> {
    caller.admin()?;
    let json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if json {
        let JsonBody(body) = JsonBody::<RuleSetBody>::from_request(req, &state).await?;
        let rules = RuleSet::new(body.rules).map_err(HostError::Rules)?;
        return blocking(move || {
            state.host.replace_policy_rules(rules)?;
            Ok(Json(RuleList { rules: state.host.policy_rules() }))
        })
        .await;
    }
    let text = String::from_request(req, &state)
        .await
        .map_err(|e: StringRejection| super::rejected(&state, e.status(), e.body_text()))?;
    blocking(move || {
        state.host.set_policy_rules(&text)?;
        Ok(Json(RuleList { rules: state.host.policy_rules() }))
    })
    .await
}

/// `PUT /v1/policy/rules` as JSON (its schema is written out in the
/// document, from `policy::rules`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleSetBody {
    /// The rules by name; none clears them.
    #[serde(default, with = "fuelhost::rules_by_name")]
    #[schema(value_type = Object)]
    rules: Vec<Rule>,
}

/// The policy plugins' names, in chain order.
#[utoipa::path(get, path = "/v1/policy/plugins", tag = "policies", security(("api_key" = [])),
    responses(
        (status = 200, body = PluginList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn plugins(State(state): State<ApiState>, caller: Caller) -> ApiResult<Json<PluginList>> {
    caller.admin()?;
    Ok(Json(PluginList { plugins: state.host.policy_plugins() }))
}

/// Add a policy plugin at the end of the chain, or replace the one of that
/// name in place. Body: the component, raw or as the multipart part
/// `component`.
#[utoipa::path(put, path = "/v1/policy/plugins/{name}", tag = "policies", security(("api_key" = [])),
    params(("name" = String, Path, description = "1 to 64 characters of a-z, 0-9, '-' and '_'")),
    request_body(content(("application/wasm"), ("multipart/form-data"))),
    responses(
        (status = 200, body = PluginList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
pub(super) async fn put_plugin(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    req: Request,
) -> ApiResult<Json<PluginList>> {
    caller.admin()?;
    let upload = uploads::read(&state, req, &["component"]).await?;
    blocking(move || {
        state.host.add_policy_plugin(&name, &upload.component)?;
        Ok(Json(PluginList { plugins: state.host.policy_plugins() }))
    })
    .await
}

/// Remove a policy plugin from the chain.
#[utoipa::path(delete, path = "/v1/policy/plugins/{name}", tag = "policies", security(("api_key" = [])),
    params(("name" = String, Path, description = "the plugin")),
    responses(
        (status = 200, body = PluginList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub(super) async fn delete_plugin(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginList>> {
    caller.admin()?;
    blocking(move || {
        if !state.host.remove_policy_plugin(&name)? {
            return Err(ApiError::not_found(format!("no policy plugin `{name}`; GET /v1/policy/plugins lists them")));
        }
        Ok(Json(PluginList { plugins: state.host.policy_plugins() }))
    })
    .await
}

/// Put a hypothetical action to the policy chain (rules, then plugins)
/// without doing anything: nothing runs, and the decision is neither
/// audited nor counted in the metrics.
#[utoipa::path(post, path = "/v1/policy/check", tag = "policies", security(("api_key" = [])),
    request_body = PolicyCheck,
    responses(
        (status = 200, description = "`{decision, reason, approvers, decided_by, allowed_by, latency_us, recorded: false}`; \
                                      `decided_by` is `rule NAME` or a plugin's name", body = PolicyDecision),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn check(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<PolicyCheck>,
) -> ApiResult<Json<PolicyDecision>> {
    caller.admin()?;
    if !ACTION_KINDS.contains(&req.kind.as_str()) {
        return Err(ApiError::bad_request(format!(
            "unknown action kind `{}`: use one of {}",
            req.kind,
            ACTION_KINDS.join(", ")
        )));
    }
    let mut req = req;
    // A workspace given as an attribute is the workspace (the field wins).
    let named_workspace = req.attributes.remove("workspace");
    if req.workspace.is_none() {
        req.workspace = named_workspace;
    }
    blocking(move || {
        let (tenant, workspace) = match (req.tenant, req.workspace) {
            (None, None) => match state.host.membership(&req.subject) {
                Ok(m) => (m.tenant, m.workspace),
                Err(_) => (None, None),
            },
            given => given,
        };
        let mut attributes: Vec<Attribute> =
            req.attributes.into_iter().map(|(key, value)| Attribute { key, value }).collect();
        if let Some(ws) = workspace {
            attributes.push(Attribute { key: "workspace".into(), value: ws });
        }
        let e = req.estimated;
        let action = Action {
            kind: req.kind,
            subject: req.subject,
            tenant,
            target: req.target,
            attributes,
            price: req.price,
            estimated: Usage {
                fuel: e.fuel,
                memory_peak_bytes: e.memory_peak_bytes,
                disk_bytes: e.disk_bytes,
                llm_tokens: e.llm_tokens,
                wall_time_ns: e.wall_time_ns,
            },
        };
        let verdict = state.host.check_policy(&action);
        let (reason, approvers) = match &verdict.decision {
            Decision::Allow => (None, None),
            Decision::Deny(reason) => (Some(reason.clone()), None),
            Decision::RequireApproval(who) => (None, Some(who.clone())),
        };
        Ok(Json(PolicyDecision {
            decision: verdict.decision_name().to_string(),
            reason,
            approvers,
            decided_by: verdict.decided_by,
            allowed_by: verdict.allowed_by,
            latency_us: verdict.latency.as_micros() as u64,
            recorded: false,
        }))
    })
    .await
}

/// `GET /v1/audit` query, as the OpenAPI document describes it (it is
/// parsed as an [`AuditQuery`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct AuditParams {
    /// Decisions about this subject.
    subject: Option<String>,
    /// Of this action kind.
    kind: Option<String>,
    /// `allow`, `deny` or `require_approval`.
    decision: Option<String>,
    /// Within this invocation.
    invocation: Option<String>,
    /// At or after, Unix ms.
    since_ms: Option<i64>,
    /// Before, Unix ms.
    until_ms: Option<i64>,
    /// Newest first (default false: oldest first).
    newest_first: Option<bool>,
    /// After this position (oldest first, the `next` of the previous page).
    after: Option<i64>,
    /// Before this position (newest first, the `next` of the previous page).
    before: Option<i64>,
    /// At most this many (default 1,000).
    limit: Option<usize>,
}

/// Recorded policy decisions, oldest first, or newest first with
/// `newest_first=true` (admin).
#[utoipa::path(get, path = "/v1/audit", tag = "policies", security(("api_key" = [])), params(AuditParams),
    responses(
        (status = 200, description = "`{entries: [...], next}`: each entry with its position `seq`; `next`, \
                                      when set, asks for the following page (`after=next`, or `before=next` \
                                      newest first)", body = AuditPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn audit(
    State(state): State<ApiState>,
    caller: Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    caller.admin()?;
    let q = query(q)?;
    let limit = q.limit.unwrap_or(1_000);
    blocking(move || {
        let entries = state.host.query_audit(&q)?;
        let next = super::next_page(&entries, limit, |e| e.seq);
        Ok(Json(AuditPage { entries, next }))
    })
    .await
}
