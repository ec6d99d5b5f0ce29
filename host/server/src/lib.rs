//! # fuelhost-server
//!
//! The HTTP API (`fuelhost serve`): JSON in and out, a bearer API key on
//! every request but the health checks and the OpenAPI document, one
//! error shape (`{"error": {"code", "message"}}`).
//!
//! **What it owns.** The router (every route comes with its OpenAPI
//! description, so the document at `/openapi.json` lists exactly the
//! routes served), its configuration ([`ApiConfig`]) and authentication:
//! a layer resolves the bearer key once per request, applies the key's
//! rate limit and leaves a `Caller` for the handlers, which decide what
//! that caller may do. The handlers live in one module per area.
//!
//! An agent's key acts as that agent only: it invokes as itself, transfers
//! its own scrip, uploads only artifacts it owns, reads only its own
//! balances, usage and approvals. Admin keys create agents and keys, mint,
//! read the audit log and set the policies. The host's calls block (they
//! run guests and commit to SQLite), so handlers run them on tokio's
//! blocking pool, inside the request's span.
//!
//! **What it must not know.** The host's insides. It speaks to a
//! [`fuelhost::Host`] through its public methods and types only, the
//! same API an embedder uses: every charge it asks for goes through the
//! host's policy chain, and the keys it checks are the host's
//! ([`fuelhost::Host::api_keys`]).
//!
//! **Where to start reading.** `routes` lists every route; `Caller`
//! and the `authenticate` layer say who is asking; `contract` makes the
//! OpenAPI document exact (patterns, ranges, the host's own maxima);
//! `error` maps the host's errors to statuses and codes.

mod agents;
mod allocations;
mod approvals;
mod artifacts;
mod contract;
mod error;
use fuelhost_api::grammar;
mod health;
mod invoke;
mod json_body;
mod ledger;
mod mcp;
mod openapi;
mod policies;
mod proxy;
mod ratelimit;
mod request_id;
mod tasks;
mod uploads;

use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use self::error::{ApiError, ErrorBody, ErrorDetail};
pub(crate) use self::json_body::JsonBody;
pub use self::ratelimit::RateLimit;
use self::ratelimit::RateLimiter;
use self::request_id::KeyId;
pub use self::request_id::REQUEST_ID_HEADER;
use fuelhost::AgentId;
use fuelhost::{ApiKeys, Host, Principal};

/// How the API serves: embeddable in the server's TOML configuration as
/// `[api]` (and `[api.rate_limit]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Largest request body (a component upload), bytes. Default 33 MiB.
    pub max_body_bytes: usize,
    /// Requests per API key; `None` (the default): unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Longest a client may take to send a request's body, milliseconds;
    /// a slower one gets `408` and its connection is freed. Default 60 s.
    pub body_timeout_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { max_body_bytes: 33 << 20, rate_limit: None, body_timeout_ms: 60_000 }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    host: Host,
    keys: Arc<ApiKeys>,
    limiter: Option<Arc<RateLimiter>>,
    max_body_bytes: usize,
    body_timeout: std::time::Duration,
    openapi: Arc<serde_json::Value>,
}

impl ApiState {
    /// The API over `host`.
    pub fn new(host: Host) -> ApiState {
        let keys = Arc::new(host.api_keys());
        ApiState {
            host,
            keys,
            limiter: None,
            max_body_bytes: ApiConfig::default().max_body_bytes,
            body_timeout: std::time::Duration::from_millis(ApiConfig::default().body_timeout_ms),
            openapi: Arc::new(serde_json::Value::Null),
        }
    }

    /// Make the bootstrap admin key if the data directory has none yet;
    /// returns it (to be shown once).
    pub fn bootstrap_admin_key(&self) -> Result<Option<String>, String> {
        if self.keys.has_admin()? {
            return Ok(None);
        }
        self.keys.create(None).map(|k| Some(k.key))
    }
}

/// Every route, each with its OpenAPI description.
fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi::document))
        .routes(routes!(agents::create_agent))
        .routes(routes!(agents::show_agent))
        .routes(routes!(agents::create_key))
        .routes(routes!(agents::list_keys, agents::create_admin_key))
        .routes(routes!(agents::revoke_key))
        .routes(routes!(ledger::mint))
        .routes(routes!(artifacts::list_artifacts, artifacts::upload))
        .routes(routes!(artifacts::show_artifact, artifacts::delete_artifact))
        .routes(routes!(invoke::invoke))
        .routes(routes!(ledger::transfer, ledger::list_transfers))
        .routes(routes!(ledger::create_grant))
        .routes(routes!(ledger::show_grant, ledger::revoke_grant))
        .routes(routes!(ledger::usage))
        .routes(routes!(ledger::top))
        .routes(routes!(ledger::stats))
        .routes(routes!(ledger::archive))
        .routes(routes!(allocations::request_allocation, allocations::list_allocations))
        .routes(routes!(allocations::show_allocation))
        .routes(routes!(allocations::approve_allocation))
        .routes(routes!(allocations::activate_allocation))
        .routes(routes!(allocations::extend_allocation))
        .routes(routes!(allocations::revoke_allocation))
        .routes(routes!(policies::rules, policies::set_rules))
        .routes(routes!(policies::plugins))
        .routes(routes!(policies::put_plugin, policies::delete_plugin))
        .routes(routes!(policies::check))
        .routes(routes!(policies::audit))
        .routes(routes!(approvals::approvals))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::reject))
        .routes(routes!(tasks::submit))
        .routes(routes!(tasks::show))
        .routes(routes!(tasks::cancel))
        .routes(routes!(tasks::breakers))
        .routes(routes!(agents::heartbeat))
        .routes(routes!(agents::agents_health))
}

/// The OpenAPI 3 document of every route [`router`] serves, as served:
/// the handlers' descriptions made precise by the contract (`contract`).
/// Manifest maxima are a default host's; a server's document states its
/// host's ([`openapi_of`]).
pub fn openapi() -> serde_json::Value {
    let engine = fuelhost::EngineSettings::default();
    document(routes().into_openapi(), fuelhost::HostLimits::default(), engine.max_memory_bytes)
}

/// The document a server on `host` serves: [`openapi`] with the manifest
/// maxima of `host`.
pub fn openapi_of(host: &Host) -> serde_json::Value {
    let (limits, max_memory) = host.manifest_maxima();
    document(routes().into_openapi(), limits, max_memory)
}

fn document(generated: utoipa::openapi::OpenApi, limits: fuelhost::HostLimits, max_memory: u64) -> serde_json::Value {
    let mut doc = serde_json::to_value(&generated).unwrap_or_default();
    contract::tighten(&mut doc, &limits, max_memory);
    doc
}

/// The router, configured by `config`.
pub fn router(state: ApiState, config: &ApiConfig) -> Router {
    let (router, document) = routes().split_for_parts();
    let mut state = state;
    state.limiter = config.rate_limit.map(|l| Arc::new(RateLimiter::new(l)));
    state.max_body_bytes = config.max_body_bytes;
    state.body_timeout = std::time::Duration::from_millis(config.body_timeout_ms.max(1));
    let (limits, max_memory) = state.host.manifest_maxima();
    state.openapi = Arc::new(self::document(document, limits, max_memory));
    router
        .route("/mcp", axum::routing::post(mcp::post).get(mcp::other).delete(mcp::other))
        .route("/run/{owner}/{name}", axum::routing::any(proxy::run_root))
        .route("/run/{owner}/{name}/", axum::routing::any(proxy::run_root))
        .route("/run/{owner}/{name}/{*path}", axum::routing::any(proxy::run_path))
        .fallback(|| async { ApiError::not_found("no such route; the routes are listed at GET /openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method; see GET /openapi.json",
            )
        })
        .layer(from_fn(contract::check_params))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), read_body_first))
        .layer(from_fn_with_state(state.clone(), authenticate))
        .layer(from_fn(request_id::trace_requests))
        .with_state(state)
}

/// Read the whole request body before anything answers. A refusal that
/// came before the body was read (a bad key, a forbidden upload) would
/// make the server close the connection under a client still sending, and
/// that client would see a broken pipe instead of the answer. Runs after
/// authentication: only a request with a live (and rate-limited) key has
/// its body kept; any other body is read and dropped as it arrives, so an
/// anonymous sender holds no memory. A body over the limit is read on (and
/// dropped) up to four times the limit so its sender gets the `413`; past
/// that the connection is cut. A `Content-Length` over four times the
/// limit is refused at once.
async fn read_body_first(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    use http_body_util::BodyExt as _;
    let limit = state.max_body_bytes;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit.saturating_mul(4)) {
        return ApiError::too_large(Some(limit)).into_response();
    }
    let keep = req.extensions().get::<Caller>().is_some();
    let (parts, mut body) = req.into_parts();
    let mut buf = Vec::new();
    let mut dropped = 0usize;
    let deadline = tokio::time::Instant::now() + state.body_timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => {
                return ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!(
                        "the request body did not arrive within {} ms; send it faster",
                        state.body_timeout.as_millis()
                    ),
                )
                .into_response()
            }
        };
        let Ok(frame) = frame else {
            return ApiError::bad_request("the request body could not be read to its end").into_response();
        };
        let Ok(chunk) = frame.into_data() else { continue };
        if !keep {
            dropped += chunk.len();
            if dropped > limit.saturating_mul(4) {
                break;
            }
            continue;
        }
        if dropped > 0 || buf.len() + chunk.len() > limit {
            dropped += chunk.len();
            if dropped > limit.saturating_mul(4) {
                break;
            }
        } else {
            buf.extend_from_slice(&chunk);
        }
    }
    if keep && dropped > 0 {
        return ApiError::too_large(Some(limit)).into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(buf))).await
}

/// Serve `router` on `listener` until `shutdown` resolves; requests in
/// flight finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // A streamed response is several writes: without TCP_NODELAY, each
    // small one after the first waits out the client's delayed ACK (40 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
        }
    });
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

type ApiResult<T> = Result<T, ApiError>;

/// Run a blocking host call off the async workers, inside the request's
/// span.
/// A guest's input given as text (`input`) or base64 (`input_base64`).
fn input_bytes(input: Option<String>, input_base64: Option<String>) -> ApiResult<Vec<u8>> {
    use base64::Engine as _;
    match (input, input_base64) {
        (Some(_), Some(_)) => Err(ApiError::bad_request("give `input` or `input_base64`, not both")),
        (Some(text), None) => Ok(text.into_bytes()),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| ApiError::bad_request(format!("`input_base64` is not base64: {e}"))),
        (None, None) => Ok(Vec::new()),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| ApiError::internal(format!("the request's task failed: {e}")))?
}

/// The authenticated caller of a request; extracting it refuses requests
/// without a live key (`401`).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    principal: Principal,
}

/// Why a request that sent an `Authorization` header is not authenticated.
#[derive(Debug, Clone)]
struct AuthProblem(&'static str);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let message = parts
            .extensions
            .get::<AuthProblem>()
            .map(|p| p.0)
            .unwrap_or("send an API key: `Authorization: Bearer <key>`");
        Err(ApiError::unauthorized(message))
    }
}

impl Caller {
    /// Admin keys only.
    fn admin(&self) -> ApiResult<()> {
        match &self.principal {
            Principal::Admin => Ok(()),
            Principal::Agent(_) => Err(ApiError::forbidden("this route needs an admin key")),
        }
    }

    /// Agent keys only: the agent the key acts as.
    fn agent(&self) -> ApiResult<AgentId> {
        match &self.principal {
            Principal::Agent(a) => Ok(a.clone()),
            Principal::Admin => Err(ApiError::forbidden(
                "this route acts as an agent: use that agent's key (it was shown once, when the agent was made; an admin \
                 makes another with `fuelhost key create AGENT` or POST /v1/agents/{id}/keys)",
            )),
        }
    }

    /// The agent the key acts as, `None` for an admin key.
    fn acting_agent(&self) -> Option<&AgentId> {
        match &self.principal {
            Principal::Agent(a) => Some(a),
            Principal::Admin => None,
        }
    }

    /// Admins may read anyone's data; an agent only its own.
    fn may_read(&self, whom: &str) -> ApiResult<()> {
        match &self.principal {
            Principal::Admin => Ok(()),
            Principal::Agent(a) if a.as_str() == whom => Ok(()),
            Principal::Agent(a) => Err(ApiError::forbidden(format!("`{a}` may not read `{whom}`'s data"))),
        }
    }

    /// Admins may act for anyone; an agent only for itself. Says what
    /// `what` was refused.
    fn may_act_for(&self, whom: &str, what: &str) -> ApiResult<()> {
        match &self.principal {
            Principal::Admin => Ok(()),
            Principal::Agent(a) if a.as_str() == whom => Ok(()),
            Principal::Agent(a) => Err(ApiError::forbidden(format!("`{a}` may not {what} `{whom}`'s"))),
        }
    }
}

/// The bearer key in `headers`: `None` without an `Authorization` header.
fn bearer(headers: &HeaderMap) -> Option<Result<&str, AuthProblem>> {
    let value = headers.get(header::AUTHORIZATION)?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(AuthProblem("the Authorization header must be `Bearer <key>`")),
    )
}

/// The authentication layer: resolve the key, take a token from its
/// bucket, leave the [`Caller`] for the handlers and the key id for the
/// request log. Requests without a live key pass through uncounted (the
/// routes that need a key refuse them).
async fn authenticate(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let auth = match bearer(req.headers()) {
        None => None,
        Some(Err(problem)) => {
            req.extensions_mut().insert(problem);
            None
        }
        Some(Ok(key)) => {
            // A live key resolved before is known at once; any other is
            // read off the async workers: the key table may be a database's.
            let found = match state.keys.authenticate_cached(key) {
                Some(known) => Ok(Some(known)),
                None => {
                    let (keys, key) = (state.keys.clone(), key.to_string());
                    tokio::task::spawn_blocking(move || keys.authenticate(&key))
                        .await
                        .unwrap_or_else(|e| Err(format!("the authentication task failed: {e}")))
                }
            };
            match found {
                Ok(Some(auth)) => Some(auth),
                Ok(None) => {
                    req.extensions_mut().insert(AuthProblem("unknown or revoked API key"));
                    None
                }
                // Not known whether the key is live: not a 401.
                Err(e) => return ApiError::unavailable(format!("checking the API key: {e}")).into_response(),
            }
        }
    };
    let Some(auth) = auth else {
        return next.run(req).await;
    };
    tracing::Span::current().record("key_id", auth.key_id.as_str());
    let key_id = KeyId(auth.key_id.clone());
    if let Some(limiter) = &state.limiter {
        if let Err(wait) = limiter.take(&auth.key_id) {
            let mut res = rate_limited(limiter.limit(), wait);
            res.extensions_mut().insert(key_id);
            return res;
        }
    }
    req.extensions_mut().insert(Caller { principal: auth.principal });
    let mut res = next.run(req).await;
    res.extensions_mut().insert(key_id);
    res
}

/// `429 rate_limited`, saying the limit and when to retry, with
/// `Retry-After` (whole seconds, at least one).
fn rate_limited(limit: RateLimit, wait: std::time::Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut res = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "this API key is over its limit of {} requests per second (bursts of up to {}); retry in {secs} s",
            limit.per_second, limit.burst
        ),
    )
    .into_response();
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

/// A rejected body as the API reports it: `413 too_large` for an
/// oversize body, else `400 bad_request` with the parser's message.
fn rejected(state: &ApiState, status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(Some(state.max_body_bytes))
    } else {
        ApiError::bad_request(text)
    }
}

/// The query string, or why it cannot be read.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(t)| t).map_err(|e| ApiError::bad_request(e.body_text()))
}

/// The cursor of the page after `page` (asked for with `limit`), read from
/// its last item by `cursor`: `None` when `page` was the last.
fn next_page<T, C>(page: &[T], limit: usize, cursor: impl Fn(&T) -> C) -> Option<C> {
    if page.len() < limit {
        return None;
    }
    page.last().map(cursor)
}

/// A path segment that must be an agent id.
fn agent_id(id: String) -> ApiResult<AgentId> {
    AgentId::new(id).map_err(|e| ApiError::bad_request(e.to_string()))
}
