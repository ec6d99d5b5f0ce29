//! Invoking an artifact, as the key's agent.

use axum::extract::State;
use axum::Json;
use fuelhost_api::requests::Invoke;

use super::{blocking, input_bytes, ApiResult, ApiState, Caller, ErrorBody, JsonBody};
use fuelhost::Invocation;

/// Invoke an artifact as the key's agent.
#[utoipa::path(post, path = "/v1/invoke", tag = "artifacts", security(("api_key" = [])), request_body = Invoke,
    responses(
        (status = 200, description = "the report: `outcome`, the output once (`output` when it is UTF-8 \
                                      text, else `output_base64`), `resources_consumed`, `charged_to`, \
                                      `price_paid`, ...", body = Object),
        (status = 202, description = "`pending_approval`: a policy parked it", body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, description = "not enough scrip or budget", body = ErrorBody),
        (status = 403, description = "denied by a policy or an allocation", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    ))]
pub(super) async fn invoke(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<Invoke>,
) -> ApiResult<Json<fuelhost::InvocationReport>> {
    let me = caller.agent()?;
    let input = input_bytes(req.input, req.input_base64)?;
    blocking(move || {
        let mut inv = Invocation::new(me.to_string(), String::from(req.artifact), input);
        inv.fuel_limit = req.fuel_limit;
        inv.id = req.id.map(String::from);
        // Serialised once, straight from the report: the output travels
        // once, as text or as base64.
        Ok(Json(state.host.invoke(inv)?))
    })
    .await
}
