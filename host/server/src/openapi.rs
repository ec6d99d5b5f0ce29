//! The OpenAPI document: its fixed parts (title, version, the bearer
//! security scheme, tags) and the route serving it. The paths come from
//! the `#[utoipa::path]` of each handler, collected as the router is built.

use axum::extract::State;
use axum::Json;
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

use super::ApiState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fuelhost",
        description = "A WebAssembly component host for agent economies. Send `Authorization: Bearer KEY` on every \
                       route but /healthz, /readyz and /openapi.json. Errors: `{\"error\": {\"code\", \"message\"}}`."
    ),
    modifiers(&BearerKey),
    tags(
        (name = "service", description = "health, metrics, this document"),
        (name = "agents", description = "agents and their API keys"),
        (name = "artifacts", description = "components agents upload and invoke"),
        (name = "ledger", description = "minting, transfers, sponsor grants, usage and statistics"),
        (name = "allocations", description = "quota envelopes and their lifecycle"),
        (name = "policies", description = "rules, plugins, dry-run checks and the audit log"),
        (name = "approvals", description = "actions parked for approval"),
        (name = "tasks", description = "invocations submitted as tasks, queued and run by the host's workers"),
    )
)]
struct ApiDoc;

/// Adds the `api_key` bearer scheme the routes name.
struct BearerKey;

impl utoipa::Modify for BearerKey {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document without paths.
pub(super) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This document (no key needed).
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "the OpenAPI 3 document", body = Value)))]
pub(super) async fn document(State(state): State<ApiState>) -> Json<Value> {
    Json((*state.openapi).clone())
}
