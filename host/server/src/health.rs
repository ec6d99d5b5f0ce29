//! Service routes: liveness, readiness and the Prometheus metrics page.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, ApiResult, ApiState, Caller, ErrorBody};

/// Liveness: the server answers.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Value)))]
pub(super) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the host can serve (its database takes writes). Answered in
/// constant time, off the database: a probe never holds up a call. While
/// artifacts the compile cache lacked at start are compiled in the
/// background, the status is `warming`, with how many are left: the host
/// serves meanwhile, and a call to one of them compiles it first.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`, or `{\"status\": \"warming\", \"compiling\": n}`", body = Value),
        (status = 503, description = "the database refuses writes; the message says why", body = ErrorBody),
    ))]
pub(super) async fn readyz(State(state): State<ApiState>) -> ApiResult<Json<Value>> {
    match (state.host.readiness(), state.host.warming()) {
        (Ok(()), None) => Ok(Json(json!({"status": "ready"}))),
        (Ok(()), Some(left)) => Ok(Json(json!({"status": "warming", "compiling": left}))),
        (Err(why), _) => Err(ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "not_ready", why)),
    }
}

/// The host's metrics in the Prometheus text format (admin).
#[utoipa::path(get, path = "/metrics", tag = "service", security(("api_key" = [])),
    responses(
        (status = 200, description = "Prometheus text", body = String, content_type = "text/plain"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(super) async fn metrics(State(state): State<ApiState>, caller: Caller) -> ApiResult<String> {
    caller.admin()?;
    Ok(state.host.metrics_text())
}
