//! Allocations over HTTP: requesting one, listing and reading them, and
//! their lifecycle (approve, activate, extend, revoke).

use fuelhost_api::replies::AllocationList;
use fuelhost_api::requests::{Extend, NewAllocation, Revoke};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{agent_id, blocking, query, ApiError, ApiResult, ApiState, Caller, ErrorBody, JsonBody};
use fuelhost::{Allocation, AllocationRequest};

/// Request an allocation: an agent's key for itself (pending until an
/// admin approves it), an admin's for any agent.
#[utoipa::path(post, path = "/v1/allocations", tag = "allocations", security(("api_key" = [])),
    request_body = NewAllocation,
    responses(
        (status = 201, description = "the allocation", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    ))]
pub(super) async fn request_allocation(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewAllocation>,
) -> ApiResult<(StatusCode, Json<Allocation>)> {
    let agent = req.agent;
    if let Some(me) = caller.acting_agent().filter(|me| **me != agent) {
        return Err(ApiError::forbidden(format!("`{me}` may not request an allocation for `{agent}`")));
    }
    if req.auto_approve && caller.acting_agent().is_some() {
        return Err(ApiError::forbidden(
            "only an admin may auto-approve an allocation; leave out auto_approve and ask an admin to approve it",
        ));
    }
    let mut request = AllocationRequest::new(String::from(req.id), agent, req.quotas);
    request.priority = req.priority.unwrap_or(request.priority);
    request.duration_ms = req.duration_ms;
    request.period = req.period;
    request.auto_approve = req.auto_approve;
    for (name, percent) in [("soft", req.soft_threshold_percent), ("hard", req.hard_threshold_percent)] {
        if percent.is_some_and(|p| p == 0 || p > 100) {
            return Err(ApiError::bad_request(format!("{name}_threshold_percent must be 1 to 100")));
        }
    }
    request.hard_threshold_percent = req.hard_threshold_percent.unwrap_or(request.hard_threshold_percent);
    // An alert threshold above the refusal threshold alerts at the refusal.
    request.soft_threshold_percent =
        req.soft_threshold_percent.unwrap_or(request.soft_threshold_percent).min(request.hard_threshold_percent);
    if let Some(problem) = request.problem() {
        return Err(ApiError::bad_request(problem));
    }
    blocking(move || {
        if !state.host.ledger().has_account(request.agent.as_str())? {
            return Err(ApiError::not_found(format!("no agent `{}`", request.agent)));
        }
        Ok((StatusCode::CREATED, Json(state.host.request_allocation(&request)?)))
    })
    .await
}

/// `GET /v1/allocations` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// Whose allocations: an agent's key may leave it out (itself); an
    /// admin who leaves it out gets every allocation in force.
    agent: Option<String>,
}

/// An agent's allocations, oldest first (an agent: its own; admin: any
/// agent's, or every allocation in force).
#[utoipa::path(get, path = "/v1/allocations", tag = "allocations", security(("api_key" = [])), params(ListParams),
    responses(
        (status = 200, body = AllocationList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub(super) async fn list_allocations(
    State(state): State<ApiState>,
    caller: Caller,
    q: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<AllocationList>> {
    let q = query(q)?;
    let agent = match (caller.acting_agent(), q.agent) {
        (Some(me), None) => me.clone(),
        (_, Some(named)) => {
            caller.may_read(&named)?;
            agent_id(named)?
        }
        (None, None) => {
            return blocking(move || {
                Ok(Json(AllocationList { allocations: state.host.ledger().allocations_in_force()? }))
            })
            .await
        }
    };
    blocking(move || {
        if !state.host.ledger().has_account(agent.as_str())? {
            return Err(ApiError::not_found(format!("no agent `{agent}`")));
        }
        Ok(Json(AllocationList { allocations: state.host.ledger().allocations_of(&agent)? }))
    })
    .await
}

/// The allocation `id`, if `caller` may read it (its agent, or admin).
fn allocation_for(state: &ApiState, caller: &Caller, id: &str) -> ApiResult<Allocation> {
    let a = state.host.allocation(id)?.ok_or_else(|| ApiError::not_found(format!("no allocation `{id}`")))?;
    caller.may_read(a.agent.as_str())?;
    Ok(a)
}

/// One allocation, with its usage this period (its agent, or admin).
#[utoipa::path(get, path = "/v1/allocations/{id}", tag = "allocations", security(("api_key" = [])),
    params(("id" = String, Path, description = "the allocation")),
    responses(
        (status = 200, description = "the allocation", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub(super) async fn show_allocation(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Allocation>> {
    blocking(move || Ok(Json(allocation_for(&state, &caller, &id)?))).await
}

/// Approve a pending allocation (admin).
#[utoipa::path(post, path = "/v1/allocations/{id}/approve", tag = "allocations", security(("api_key" = [])),
    params(("id" = String, Path, description = "the allocation")),
    responses(
        (status = 200, description = "the allocation, `approved`", body = Object),
        (status = 400, description = "not pending", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "its status does not allow this", body = ErrorBody),
    ))]
pub(super) async fn approve_allocation(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Allocation>> {
    caller.admin()?;
    blocking(move || Ok(Json(state.host.approve_allocation(&id)?))).await
}

/// Activate an approved allocation: its clock starts now (admin, or the
/// allocation's agent).
#[utoipa::path(post, path = "/v1/allocations/{id}/activate", tag = "allocations", security(("api_key" = [])),
    params(("id" = String, Path, description = "the allocation")),
    responses(
        (status = 200, description = "the allocation, `active`", body = Object),
        (status = 400, description = "not approved", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "its status does not allow this", body = ErrorBody),
    ))]
pub(super) async fn activate_allocation(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Allocation>> {
    blocking(move || {
        let a = state.host.allocation(&id)?.ok_or_else(|| ApiError::not_found(format!("no allocation `{id}`")))?;
        caller.may_act_for(a.agent.as_str(), "activate an allocation of")?;
        Ok(Json(state.host.activate_allocation(&id)?))
    })
    .await
}

/// Lengthen an allocation's duration (admin).
#[utoipa::path(post, path = "/v1/allocations/{id}/extend", tag = "allocations", security(("api_key" = [])),
    params(("id" = String, Path, description = "the allocation")), request_body = Extend,
    responses(
        (status = 200, description = "the allocation", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "its status does not allow this", body = ErrorBody),
    ))]
pub(super) async fn extend_allocation(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Extend>,
) -> ApiResult<Json<Allocation>> {
    caller.admin()?;
    blocking(move || Ok(Json(state.host.extend_allocation(&id, req.additional_ms)?))).await
}

/// Revoke an allocation, saying why (admin).
#[utoipa::path(post, path = "/v1/allocations/{id}/revoke", tag = "allocations", security(("api_key" = [])),
    params(("id" = String, Path, description = "the allocation")), request_body = Revoke,
    responses(
        (status = 200, description = "the allocation, `revoked`", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "its status does not allow this", body = ErrorBody),
    ))]
pub(super) async fn revoke_allocation(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Revoke>,
) -> ApiResult<Json<Allocation>> {
    caller.admin()?;
    if req.reason.trim().is_empty() {
        return Err(ApiError::bad_request("say why in `reason`"));
    }
    blocking(move || Ok(Json(state.host.revoke_allocation(&id, &req.reason)?))).await
}
