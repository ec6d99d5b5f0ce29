//! Approvals over HTTP: the actions an agent may approve, and approving
//! (which runs the action, once) or rejecting them. An agent never decides
//! on what it asked for itself; an admin key sees and decides every parked
//! action.

use axum::extract::{Path, State};
use axum::Json;
use fuelhost::{Approved, PendingAction};
use fuelhost_api::replies::PendingList;
use fuelhost_api::requests::Reject;

use super::{blocking, ApiResult, ApiState, Caller, ErrorBody, JsonBody};

/// Actions waiting for the key's agent to approve them (with an admin key:
/// every parked action), oldest first.
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", security(("api_key" = [])),
    responses(
        (status = 200, body = PendingList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn approvals(State(state): State<ApiState>, caller: Caller) -> ApiResult<Json<PendingList>> {
    let me = caller.acting_agent().cloned();
    blocking(move || Ok(Json(PendingList { pending: state.host.pending_actions(me.as_ref().map(|a| a.as_str()))? })))
        .await
}

/// Approve a parked action as the key's agent (one of its approvers, not
/// the agent that asked for it) or as an admin: it is done once, and the
/// answer is what was done: an invocation's report, the transfer, or the
/// artifact uploaded.
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "approvals", security(("api_key" = [])),
    params(("id" = String, Path, description = "the parked action")),
    responses(
        (status = 200, description = "what was done: an invocation's report, a transfer, or an artifact", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, description = "the approved transfer or invocation cannot be paid for: it waits again", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "already decided", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "the approved upload does not compile: it waits again", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(super) async fn approve(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Approved>> {
    let me = caller.acting_agent().cloned();
    blocking(move || match me {
        Some(me) => Ok(Json(state.host.approve(&id, me.as_str())?)),
        None => Ok(Json(state.host.approve_as_admin(&id)?)),
    })
    .await
}

/// Reject a parked action as the key's agent (one of its approvers, not
/// its requester) or as an admin: it never runs.
#[utoipa::path(post, path = "/v1/approvals/{id}/reject", tag = "approvals", security(("api_key" = [])),
    params(("id" = String, Path, description = "the parked action")), request_body = Reject,
    responses(
        (status = 200, description = "the parked action, `rejected`", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    ))]
pub(super) async fn reject(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Reject>,
) -> ApiResult<Json<PendingAction>> {
    let me = caller.acting_agent().cloned();
    if req.reason.trim().is_empty() {
        return Err(super::ApiError::bad_request("say why in `reason`"));
    }
    blocking(move || match me {
        Some(me) => Ok(Json(state.host.reject(&id, me.as_str(), &req.reason)?)),
        None => Ok(Json(state.host.reject_as_admin(&id, &req.reason)?)),
    })
    .await
}
