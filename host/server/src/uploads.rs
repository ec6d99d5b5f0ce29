//! Reading an uploaded component from a request: either the raw body, or
//! a `multipart/form-data` body whose part `component` holds the bytes and
//! whose part `manifest` (when the route takes one) holds the manifest as
//! JSON or TOML text. Any other part is refused, as is a part given twice.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;

use super::{ApiError, ApiResult, ApiState};
use fuelhost::Manifest;

/// What an upload request carried.
pub(super) struct Upload {
    /// The component.
    pub(super) component: Bytes,
    /// The manifest part, parsed; `None` for a raw body or a form without one.
    pub(super) manifest: Option<Manifest>,
}

fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// A manifest part: JSON when it looks like JSON, else TOML.
fn parse_manifest(text: &str) -> ApiResult<Manifest> {
    let parsed = if text.trim_start().starts_with('{') { Manifest::from_json(text) } else { Manifest::from_toml(text) };
    parsed.map_err(|e| ApiError::bad_request(format!("the `manifest` part: {e}")))
}

/// Read the upload in `req`; `parts` names the multipart parts the route
/// takes (`component`, and `manifest` where a manifest may come along).
pub(super) async fn read(state: &ApiState, req: Request, parts: &[&str]) -> ApiResult<Upload> {
    let too_large = |status: StatusCode, text: String| super::rejected(state, status, text);
    if !is_multipart(&req) {
        let component = Bytes::from_request(req, state).await.map_err(|e| too_large(e.status(), e.body_text()))?;
        return Ok(Upload { component, manifest: None });
    }
    let mut form = Multipart::from_request(req, state).await.map_err(|e| too_large(e.status(), e.body_text()))?;
    let (mut component, mut manifest) = (None, None);
    while let Some(field) = form.next_field().await.map_err(|e| too_large(e.status(), e.body_text()))? {
        let name = field.name().unwrap_or_default().to_string();
        if !parts.contains(&name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown form part `{name}`: this route takes {}",
                parts.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(" and ")
            )));
        }
        let data = field.bytes().await.map_err(|e| too_large(e.status(), e.body_text()))?;
        let slot = if name == "component" { &mut component } else { &mut manifest };
        if slot.replace(data).is_some() {
            return Err(ApiError::bad_request(format!("the form part `{name}` is given twice")));
        }
    }
    let component =
        component.ok_or_else(|| ApiError::bad_request("the form has no `component` part (the .wasm bytes)"))?;
    let manifest = match manifest {
        Some(bytes) => Some(parse_manifest(
            std::str::from_utf8(&bytes).map_err(|_| ApiError::bad_request("the `manifest` part must be UTF-8 text"))?,
        )?),
        None => None,
    };
    Ok(Upload { component, manifest })
}
