//! Artifacts: listing, uploading (raw body with a `Fuelhost-Manifest`
//! header, or a multipart form), reading one, deleting one.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::Json;
use fuelhost_api::replies::{ArtifactDeleted, ArtifactList};
use utoipa::ToSchema;

use super::{blocking, uploads, ApiError, ApiResult, ApiState, Caller, ErrorBody, Principal};
use fuelhost::ArtifactInfo;
use fuelhost::Manifest;

/// The header carrying the manifest (JSON) of a raw upload.
const MANIFEST_HEADER: &str = "fuelhost-manifest";

/// The multipart form of an upload, as the OpenAPI document describes it
/// (it is read by [`uploads::read`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(super) struct UploadForm {
    /// The manifest, JSON or TOML.
    manifest: String,
    /// The component (.wasm).
    #[schema(content_media_type = "application/wasm")]
    component: Vec<u8>,
}

/// Every artifact (any key).
#[utoipa::path(get, path = "/v1/artifacts", tag = "artifacts", security(("api_key" = [])),
    responses((status = 200, body = ArtifactList), (status = 401, body = ErrorBody)))]
pub(super) async fn list_artifacts(State(state): State<ApiState>, _caller: Caller) -> Json<ArtifactList> {
    Json(ArtifactList { artifacts: state.host.artifacts() })
}

/// Upload an artifact (the owner's key): the component as the body with
/// the manifest as JSON in the `Fuelhost-Manifest` header, or a
/// `multipart/form-data` body with parts `manifest` (JSON or TOML) and
/// `component`.
#[utoipa::path(post, path = "/v1/artifacts", tag = "artifacts", security(("api_key" = [])),
    request_body(content((inline(UploadForm) = "multipart/form-data"))),
    responses(
        (status = 201, description = "`{id, manifest, digest, size, uploaded_ms}`", body = Object),
        (status = 202, description = "`pending_approval`: a policy parked it as pending action \
            `upload:<owner>:<name>@<version>`; uploaded once an approver approves it", body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "not the owner, or a policy denied it", body = ErrorBody),
        (status = 409, description = "the id exists", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "not a valid artifact component", body = ErrorBody),
    ))]
pub(super) async fn upload(
    State(state): State<ApiState>,
    caller: Caller,
    req: Request,
) -> ApiResult<(StatusCode, Json<ArtifactInfo>)> {
    let me = caller.agent()?;
    let header = req
        .headers()
        .get(MANIFEST_HEADER)
        .map(|v| v.to_str().map(str::to_string))
        .transpose()
        .map_err(|_| ApiError::bad_request("the `Fuelhost-Manifest` header must be UTF-8 JSON"))?;
    let upload = uploads::read(&state, req, &["manifest", "component"]).await?;
    let manifest = match (header, upload.manifest) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("the manifest came twice (header and form part): send it one way"))
        }
        (Some(json), None) => Manifest::from_json(&json).map_err(|e| ApiError::bad_request(e.to_string()))?,
        (None, Some(m)) => m,
        (None, None) => {
            return Err(ApiError::bad_request(
                "send the manifest as JSON in the `Fuelhost-Manifest` header, or as the `manifest` part of a \
                 multipart/form-data upload",
            ))
        }
    };
    if manifest.owner != me {
        return Err(ApiError::forbidden(format!("`{me}` may not upload as `{}`", manifest.owner)));
    }
    blocking(move || Ok((StatusCode::CREATED, Json(state.host.upload(manifest, &upload.component)?)))).await
}

/// `owner/name@version` from the path, or why it is not one.
fn artifact_id(owner: &str, name_version: &str) -> ApiResult<String> {
    if !name_version.contains('@') {
        return Err(ApiError::bad_request(format!(
            "`{name_version}` is not `name@version`: address an artifact as /v1/artifacts/OWNER/NAME@VERSION"
        )));
    }
    Ok(format!("{owner}/{name_version}"))
}

/// One artifact: its manifest, digest, size and upload time (any key).
#[utoipa::path(get, path = "/v1/artifacts/{owner}/{name_version}", tag = "artifacts", security(("api_key" = [])),
    params(
        ("owner" = String, Path, description = "the owning agent"),
        ("name_version" = String, Path, description = "`name@version`"),
    ),
    responses(
        (status = 200, description = "`{id, manifest, digest, size, uploaded_ms}`, `called_by` (`run`, \
                                      `exports`, `command` or `http`), `route` for a `wasi:http/proxy` \
                                      component, and `exports` (each function's `name`, `params`, \
                                      `results`, `args_schema` and `result_schema`) for an artifact \
                                      called by function", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub(super) async fn show_artifact(
    State(state): State<ApiState>,
    _caller: Caller,
    Path((owner, name_version)): Path<(String, String)>,
) -> ApiResult<Json<ArtifactShown>> {
    let id = artifact_id(&owner, &name_version)?;
    // Its exports are read from its code, loaded (compiled, if it never
    // was) here when no call loaded it yet.
    blocking(move || {
        let info = state.host.artifact(&id).ok_or_else(|| ApiError::not_found(format!("no artifact `{id}`")))?;
        // Code that no longer loads still leaves the artifact shown.
        let (exports, called_by) = match (state.host.artifact_exports(&id), state.host.artifact_kind(&id)) {
            (Ok(exports), Ok(kind)) => (exports.unwrap_or_default(), kind),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(artifact = %id, error = %e, "its code does not load; shown without its exports");
                (Vec::new(), None)
            }
        };
        let route = (called_by == Some("http")).then(|| format!("/run/{id}/"));
        Ok(Json(ArtifactShown { info, called_by, route, exports }))
    })
    .await
}

/// One artifact as `GET /v1/artifacts/{owner}/{name_version}` shows it.
#[derive(serde::Serialize)]
pub(super) struct ArtifactShown {
    #[serde(flatten)]
    info: ArtifactInfo,
    /// The functions it is called by, with `export` and `args` (empty for
    /// an artifact of the `artifact` world, called with `input`): each
    /// one's name, parameters and results in WIT, and the JSON Schema of
    /// its arguments and result.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exports: Vec<fuelhost::ExportedFunction>,
    /// How it is called: `run` (with `input`), `exports` (by function),
    /// `command` (`input` as stdin) or `http` (by HTTP requests to
    /// `route`); absent when its code does not load.
    #[serde(skip_serializing_if = "Option::is_none")]
    called_by: Option<&'static str>,
    /// For a `wasi:http/proxy` component: where its requests go.
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<String>,
}

/// Delete an artifact (its owner's key, or admin): no new invocation finds
/// it; invocations already running finish.
#[utoipa::path(delete, path = "/v1/artifacts/{owner}/{name_version}", tag = "artifacts", security(("api_key" = [])),
    params(
        ("owner" = String, Path, description = "the owning agent"),
        ("name_version" = String, Path, description = "`name@version`"),
    ),
    responses(
        (status = 200, body = ArtifactDeleted),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub(super) async fn delete_artifact(
    State(state): State<ApiState>,
    caller: Caller,
    Path((owner, name_version)): Path<(String, String)>,
) -> ApiResult<Json<ArtifactDeleted>> {
    let id = artifact_id(&owner, &name_version)?;
    let info = state.host.artifact(&id).ok_or_else(|| ApiError::not_found(format!("no artifact `{id}`")))?;
    if let Principal::Agent(me) = &caller.principal {
        if *me != info.manifest.owner {
            return Err(ApiError::forbidden(format!("`{me}` may not delete `{id}`: only its owner or an admin")));
        }
    }
    blocking(move || match state.host.delete_artifact(&id)? {
        Some(artifact) => Ok(Json(ArtifactDeleted { deleted: true, artifact })),
        None => Err(ApiError::not_found(format!("no artifact `{id}`"))),
    })
    .await
}
