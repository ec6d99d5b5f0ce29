//! Tasks over HTTP: submit an invocation as a task (as the key's agent),
//! read it, cancel it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fuelhost::Task;
use fuelhost_api::replies::BreakerList;
use fuelhost_api::requests::Submit;

use super::{blocking, input_bytes, ApiError, ApiResult, ApiState, Caller, ErrorBody, JsonBody};
use fuelhost::{Priority, TaskError, TaskRequest};

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        let message = e.to_string();
        match e {
            TaskError::QueueFull { .. } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", message),
            TaskError::Invalid(_) => ApiError::bad_request(message),
            TaskError::Cycle(_) => ApiError::new(StatusCode::BAD_REQUEST, "dependency_cycle", message),
            TaskError::Unknown(_) | TaskError::NoArtifact(_) => ApiError::not_found(message),
            TaskError::OverMaxPrice(_) => ApiError::new(StatusCode::PAYMENT_REQUIRED, "over_max_price", message),
            TaskError::NotCancellable(..) => ApiError::new(StatusCode::CONFLICT, "not_cancellable", message),
            TaskError::Storage(ref s) if s.is_unavailable() => ApiError::unavailable(message),
            TaskError::Storage(_) => ApiError::internal(message),
        }
    }
}

/// Submit an invocation as a task, run later by the host's workers as the
/// key's agent.
#[utoipa::path(post, path = "/v1/tasks", tag = "tasks", security(("api_key" = [])), request_body = Submit,
    responses(
        (status = 200, description = "the task: `id`, `state`, `priority`, ...", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 402, description = "`over_max_price`: every artifact with the capability costs more", body = ErrorBody),
        (status = 404, description = "no such artifact, or none with the capability", body = ErrorBody),
        (status = 429, description = "`queue_full`: the agent has the most tasks queued it may", body = ErrorBody),
    ))]
pub(super) async fn submit(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<Submit>,
) -> ApiResult<Json<Task>> {
    let me = caller.agent()?;
    let input = input_bytes(req.input, req.input_base64)?;
    let priority = match req.priority.as_deref() {
        None => Priority::Normal,
        Some(p) => Priority::parse(p)
            .ok_or_else(|| ApiError::bad_request(format!("`priority` is `{p}`; use critical, high, normal or low")))?,
    };
    let route = match req.route.as_deref() {
        None => fuelhost::RouteMode::Standard,
        Some(r) => fuelhost::RouteMode::parse(r).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`route` is `{r}`; use standard, cost_optimized, latency_optimized or quality_optimized"
            ))
        })?,
    };
    let mut task = match (req.artifact, req.capability) {
        (Some(artifact), None) => TaskRequest::new(me.to_string(), String::from(artifact), input),
        (None, Some(capability)) if !fuelhost::valid_name(&capability) => {
            return Err(ApiError::bad_request(format!(
                "`capability` is `{}`; a capability is 1 to 64 characters of a-z, 0-9, '-' and '_'",
                capability.escape_debug()
            )))
        }
        (None, Some(capability)) => TaskRequest::for_capability(me.to_string(), capability, route, input),
        _ => return Err(ApiError::bad_request("give either `artifact` or `capability` (one of them, not both)")),
    };
    task.max_price = req.max_price;
    blocking(move || {
        let mut task = task.priority(priority);
        task.fuel_limit = req.fuel_limit;
        task.id = req.id.map(String::from);
        let backoff = std::time::Duration::from_millis(req.backoff_ms.unwrap_or(1_000));
        task = task.retries(req.max_attempts.unwrap_or(1), backoff);
        task.timeout = req.timeout_ms.map(std::time::Duration::from_millis);
        task.depends_on = req.depends_on.into_iter().map(String::from).collect();
        Ok(Json(state.host.submit_task(task)?))
    })
    .await
}

/// A task: its submitter's key or an admin key.
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "tasks", security(("api_key" = [])),
    params(("id" = String, Path, description = "the task")),
    responses(
        (status = 200, description = "the task", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub(super) async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Task>> {
    blocking(move || {
        let task = state.host.task(&id)?;
        caller.may_read(&task.submitter)?;
        Ok(Json(task))
    })
    .await
}

/// Cancel a task: a pending one never runs; a running one stops at the
/// next epoch tick (under deterministic fuel, at its next call into the
/// host, or when it ends), charged for the fuel it burned.
#[utoipa::path(post, path = "/v1/tasks/{id}/cancel", tag = "tasks", security(("api_key" = [])),
    params(("id" = String, Path, description = "the task")),
    responses(
        (status = 200, description = "the task (`cancelled`, or still `running` until it stops)", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`not_cancellable`: it already ended", body = ErrorBody),
    ))]
pub(super) async fn cancel(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Task>> {
    blocking(move || {
        let task = state.host.task(&id)?;
        caller.may_act_for(&task.submitter, "cancel the tasks of")?;
        Ok(Json(state.host.cancel_task(&id)?))
    })
    .await
}

/// The circuit breaker of every artifact whose tasks failed since the host
/// started: `closed`, `open` (until `open_until_ms`) or `half_open`.
#[utoipa::path(get, path = "/v1/breakers", tag = "tasks", security(("api_key" = [])),
    responses(
        (status = 200, description = "`breakers`: artifact, state, consecutive_failures, open_until_ms, times_opened",
            body = BreakerList),
        (status = 401, body = ErrorBody),
    ))]
pub(super) async fn breakers(State(state): State<ApiState>, _caller: Caller) -> ApiResult<Json<BreakerList>> {
    Ok(Json(BreakerList { breakers: state.host.circuit_breakers() }))
}
