//! The ledger over HTTP: minting, transfers, sponsor grants, usage
//! records, top consumers and service statistics.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use fuelhost::Transfer;
use fuelhost_api::replies::{StatsReply, TopConsumers, TransferPage, UsagePage};
use fuelhost_api::requests::{Mint, NewGrant, NewTransfer};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{blocking, next_page, query, ApiError, ApiResult, ApiState, Caller, ErrorBody, JsonBody, Principal};
use fuelhost::{Asset, SponsorGrant, SponsorGrantStatus, TransferQuery, TransferRequest, UsageQuery};

/// Mint scrip or a resource budget for an agent (admin; idempotent by id).
#[utoipa::path(post, path = "/v1/mint", tag = "ledger", security(("api_key" = [])), request_body = Mint,
    responses(
        (status = 200, description = "the transfer", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    ))]
pub(super) async fn mint(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<Mint>,
) -> ApiResult<Json<Transfer>> {
    caller.admin()?;
    blocking(move || Ok(Json(state.host.mint(req.id.as_str(), req.agent.as_str(), req.asset, req.amount)?))).await
}

/// Transfer from the key's agent to another (judged by the policy chain;
/// idempotent by id).
#[utoipa::path(post, path = "/v1/transfers", tag = "ledger", security(("api_key" = [])), request_body = NewTransfer,
    responses(
        (status = 201, description = "the transfer", body = Object),
        (status = 202, description = "`pending_approval`: a policy parked it as pending action `transfer:<id>`; \
            nothing moved until an approver approves it", body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    ))]
pub(super) async fn transfer(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewTransfer>,
) -> ApiResult<(StatusCode, Json<Transfer>)> {
    let me = caller.agent()?;
    blocking(move || {
        let t = state.host.transfer(&TransferRequest {
            id: req.id.into(),
            from: me,
            to: req.to,
            asset: req.asset,
            amount: req.amount,
            memo: req.memo,
        })?;
        Ok((StatusCode::CREATED, Json(t)))
    })
    .await
}

/// `GET /v1/transfers` query, as the OpenAPI document describes it (it is
/// parsed as a [`TransferQuery`]).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct TransfersParams {
    /// Transfers this agent sent or received (an agent's key: itself only).
    agent: Option<String>,
    /// Transfers before this position (the `next` of the previous page).
    before: Option<i64>,
    /// At most this many, newest first (default 100, at most 10,000).
    limit: Option<usize>,
}

/// Posted transfers, newest first: an agent sees those it is party to; an
/// admin all, or one agent's.
#[utoipa::path(get, path = "/v1/transfers", tag = "ledger", security(("api_key" = [])), params(TransfersParams),
    responses(
        (status = 200, description = "`{transfers: [...], next}`: each transfer with its position `seq`; \
                                      `next`, when set, asks for the following page (`before=next`)", body = TransferPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn list_transfers(
    State(state): State<ApiState>,
    caller: Caller,
    q: Result<Query<TransferQuery>, QueryRejection>,
) -> ApiResult<Json<TransferPage>> {
    let mut q = query(q)?;
    if let Principal::Agent(me) = &caller.principal {
        match &q.agent {
            Some(a) if a != me => return Err(ApiError::forbidden(format!("`{me}` may not read `{a}`'s transfers"))),
            _ => q.agent = Some(me.clone()),
        }
    }
    let limit = q.limit.unwrap_or(100).min(10_000);
    blocking(move || {
        let transfers = state.host.ledger().transfer_listing(&q)?;
        let next = next_page(&transfers, limit, |t| t.seq);
        Ok(Json(TransferPage { transfers, next }))
    })
    .await
}

/// Sponsor another agent's calls (the sponsor's key; idempotent by id).
#[utoipa::path(post, path = "/v1/grants", tag = "ledger", security(("api_key" = [])), request_body = NewGrant,
    responses(
        (status = 201, description = "the grant's status: `{grant, fuel_spent, disk_spent, revoked}`", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    ))]
pub(super) async fn create_grant(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewGrant>,
) -> ApiResult<(StatusCode, Json<SponsorGrantStatus>)> {
    let me = caller.agent()?;
    let grant = SponsorGrant {
        id: req.id.into(),
        sponsor: me,
        beneficiary: req.beneficiary,
        fuel_limit: req.fuel_limit,
        disk_limit: req.disk_limit,
        expires_at_ms: req.expires_at_ms,
        artifacts: req.artifacts.into_iter().map(String::from).collect(),
    };
    blocking(move || {
        state.host.grant_sponsorship(&grant)?;
        let status = state
            .host
            .sponsorship(&grant.id)?
            .ok_or_else(|| ApiError::internal(format!("grant `{}` was recorded but cannot be read", grant.id)))?;
        Ok((StatusCode::CREATED, Json(status)))
    })
    .await
}

/// The grant `id`, if `caller` may see it: its sponsor and beneficiary
/// may, and admins; `revoke` narrows that to the sponsor and admins.
fn grant_for(state: &ApiState, caller: &Caller, id: &str, revoke: bool) -> ApiResult<SponsorGrantStatus> {
    let status = state.host.sponsorship(id)?.ok_or_else(|| ApiError::not_found(format!("no sponsor grant `{id}`")))?;
    if let Principal::Agent(me) = &caller.principal {
        let g = &status.grant;
        let allowed = *me == g.sponsor || (!revoke && *me == g.beneficiary);
        if !allowed {
            let who = if revoke { "its sponsor" } else { "its sponsor and beneficiary" };
            return Err(ApiError::forbidden(format!(
                "`{me}` may not {} grant `{id}`: only {who} or an admin",
                if revoke { "revoke" } else { "read" }
            )));
        }
    }
    Ok(status)
}

/// A sponsor grant and what it has paid (its sponsor, beneficiary or admin).
#[utoipa::path(get, path = "/v1/grants/{id}", tag = "ledger", security(("api_key" = [])),
    params(("id" = String, Path, description = "the grant")),
    responses(
        (status = 200, description = "`{grant, fuel_spent, disk_spent, revoked}`", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub(super) async fn show_grant(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SponsorGrantStatus>> {
    blocking(move || Ok(Json(grant_for(&state, &caller, &id, false)?))).await
}

/// Revoke a sponsor grant: it pays for no further call (its sponsor or
/// admin).
#[utoipa::path(delete, path = "/v1/grants/{id}", tag = "ledger", security(("api_key" = [])),
    params(("id" = String, Path, description = "the grant")),
    responses(
        (status = 200, description = "the grant's status, `revoked: true`", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub(super) async fn revoke_grant(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SponsorGrantStatus>> {
    blocking(move || {
        grant_for(&state, &caller, &id, true)?;
        state.host.revoke_sponsorship(&id)?;
        let status =
            state.host.sponsorship(&id)?.ok_or_else(|| ApiError::not_found(format!("no sponsor grant `{id}`")))?;
        Ok(Json(status))
    })
    .await
}

/// `GET /v1/usage` query, as the OpenAPI document describes it (it is
/// parsed as a [`UsageQuery`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct UsageParams {
    /// Records where this agent was caller, owner or payer (an agent's
    /// key: itself only).
    agent: Option<String>,
    /// Records of this artifact.
    artifact: Option<String>,
    /// Settled at or after, Unix ms.
    from_ms: Option<i64>,
    /// Settled before, Unix ms.
    to_ms: Option<i64>,
    /// Records before this position (the `next` of the previous page).
    before: Option<i64>,
    /// At most this many (default 100, at most 10,000).
    limit: Option<usize>,
}

/// Usage records, newest first (an agent: its own; admin: any).
#[utoipa::path(get, path = "/v1/usage", tag = "ledger", security(("api_key" = [])), params(UsageParams),
    responses(
        (status = 200, description = "`{records: [...], next}`: each record with its position `seq`; \
                                      `next`, when set, asks for the following page (`before=next`)", body = UsagePage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn usage(
    State(state): State<ApiState>,
    caller: Caller,
    q: Result<Query<UsageQuery>, QueryRejection>,
) -> ApiResult<Json<UsagePage>> {
    let mut q = query(q)?;
    if let Principal::Agent(me) = &caller.principal {
        match &q.agent {
            Some(a) if a != me => return Err(ApiError::forbidden(format!("`{me}` may not read `{a}`'s usage"))),
            _ => q.agent = Some(me.clone()),
        }
    }
    let reader = caller.acting_agent().cloned();
    let limit = q.limit.unwrap_or(100).min(10_000);
    blocking(move || {
        let mut records = state.host.usage_records(&q)?;
        let next = next_page(&records, limit, |r| r.seq);
        // An owner or payer sees what a call cost, not what its caller sent
        // back: outputs and errors are the caller's alone.
        if let Some(me) = reader {
            for r in records.iter_mut().filter(|r| r.caller != me) {
                r.output.clear();
                r.error = None;
            }
        }
        Ok(Json(UsagePage { records, next }))
    })
    .await
}

/// `GET /v1/top` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct TopParams {
    /// Rank by `fuel` (default), `disk_bytes` or `llm_tokens` charged.
    #[param(value_type = Option<String>)]
    asset: Option<Asset>,
    /// Settled at or after, Unix ms.
    since_ms: Option<i64>,
    /// Settled before, Unix ms.
    until_ms: Option<i64>,
    /// At most this many (default 10, at most 10,000).
    limit: Option<usize>,
}

/// The agents charged the most, most first (admin).
#[utoipa::path(get, path = "/v1/top", tag = "ledger", security(("api_key" = [])), params(TopParams),
    responses(
        (status = 200, description = "`{top: [{agent, invocations, fuel, disk_bytes, cost_usd_micros, llm_tokens}]}`", body = TopConsumers),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn top(
    State(state): State<ApiState>,
    caller: Caller,
    q: Result<Query<TopParams>, QueryRejection>,
) -> ApiResult<Json<TopConsumers>> {
    caller.admin()?;
    let q = query(q)?;
    blocking(move || {
        let top = state.host.ledger().top_consumers_by(
            q.asset.unwrap_or(Asset::Fuel),
            q.since_ms,
            q.until_ms,
            q.limit.unwrap_or(10),
        )?;
        Ok(Json(TopConsumers { top }))
    })
    .await
}

/// Service-wide statistics and the cost model in use (admin).
#[utoipa::path(get, path = "/v1/stats", tag = "ledger", security(("api_key" = [])),
    responses(
        (status = 200, body = StatsReply),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn stats(State(state): State<ApiState>, caller: Caller) -> ApiResult<Json<StatsReply>> {
    caller.admin()?;
    blocking(move || Ok(Json(StatsReply { stats: state.host.stats()?, cost_model: state.host.cost_model() }))).await
}

/// Move the history past the retention horizons (`[retention]` in
/// `serve.toml`) to the archive now, as the server does on its own every
/// `every_minutes` (admin). Without a horizon nothing moves.
#[utoipa::path(post, path = "/v1/archive", tag = "ledger", security(("api_key" = [])),
    responses(
        (status = 200, description = "what moved: `usage` (records, charges, files), `audit` (entries, files)",
            body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 500, body = ErrorBody),
    ))]
pub(super) async fn archive(State(state): State<ApiState>, caller: Caller) -> ApiResult<Json<fuelhost::ArchiveReport>> {
    caller.admin()?;
    blocking(move || Ok(Json(state.host.archive_history()?))).await
}
