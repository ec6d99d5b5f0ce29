//! Invoking an artifact, as the key's agent.

use axum::extract::State;
use axum::Json;
use fuelhost_api::requests::Invoke;

use super::{blocking, input_bytes, ApiError, ApiResult, ApiState, Caller, ErrorBody, JsonBody};
use fuelhost::Invocation;

/// Invoke an artifact as the key's agent.
#[utoipa::path(post, path = "/v1/invoke", tag = "artifacts", security(("api_key" = [])), request_body = Invoke,
    responses(
        (status = 200, description = "the report: `outcome`, the output once (`output` when it is UTF-8 \
                                      text, else `output_base64`; for a call by function, the result as \
                                      JSON text), `resources_consumed`, `charged_to`, `price_paid`, ...",
                                      body = Object),
        (status = 202, description = "`pending_approval`: a policy parked it", body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, description = "not enough scrip or budget", body = ErrorBody),
        (status = 403, description = "denied by a policy or an allocation", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, description = "`invalid_arguments`: `args` do not fit the function's types, or the \
                                      artifact is not called by function (nothing charged)", body = ErrorBody),
    ))]
pub(super) async fn invoke(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(req): JsonBody<Invoke>,
) -> ApiResult<Json<fuelhost::InvocationReport>> {
    let me = caller.agent()?;
    let by_function = req.export.is_some() || req.call.is_some();
    let has_input = req.input.is_some() || req.input_base64.is_some();
    let input = match (req.export, req.args, req.call) {
        (Some(_), _, Some(_)) => return Err(ApiError::bad_request("give `call` or `export` (with `args`), not both")),
        (_, _, Some(_)) | (Some(_), _, None) if has_input => {
            return Err(ApiError::bad_request("give `export` (with `args`), `call` or `input`: one of them"))
        }
        (None, Some(_), _) => return Err(ApiError::bad_request("`args` needs `export`: the function to call")),
        (None, None, Some(call)) => fuelhost::TypedInput::encode_call(&call),
        (Some(export), args, None) => {
            fuelhost::TypedInput::encode(&export, args.unwrap_or_else(|| serde_json::json!([])))
        }
        (None, None, None) => input_bytes(req.input, req.input_base64)?,
    };
    blocking(move || {
        let artifact = String::from(req.artifact);
        if by_function && state.host.artifact_exports(&artifact)?.is_some_and(|e| e.is_empty()) {
            return Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_arguments",
                format!("`{artifact}` is called with `input`, not by function: it exports `run` alone"),
            ));
        }
        let mut inv = Invocation::new(me.to_string(), artifact, input);
        inv.fuel_limit = req.fuel_limit;
        inv.id = req.id.map(String::from);
        // Serialised once, straight from the report: the output travels
        // once, as text or as base64.
        Ok(Json(state.host.invoke(inv)?))
    })
    .await
}
