//! HTTP requests to `wasi:http/proxy` artifacts, at
//! `/run/{owner}/{name}/...` (the highest version) or
//! `/run/{owner}/{name}@{version}/...`: the caller authenticated by its
//! key like any call, charged like any call, the request handed to the
//! component's incoming handler with the path after the route, the
//! response streamed back.
//!
//! What the component gets: the method, the path and query after the
//! route (`/` when there is none), the headers but the caller's
//! `Authorization` and the hop-by-hop ones, and the body (held to the
//! artifact's input limit). What the caller gets: the component's
//! status, headers and body, with `fuelhost-invocation-id`. A call refused
//! before it ran answers as `POST /v1/invoke` does (`402`, `403`, `422`,
//! ...); a run that ended without a response answers `502` (`504` on a
//! timeout) with the invocation's report.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fuelhost::{Invocation, Outcome};

use super::{ApiError, ApiState, Caller};

/// Headers that belong to one connection, not to the request (RFC 9110
/// 7.6.1), and the caller's key: never handed to the component.
const WITHHELD: [&str; 9] = [
    "authorization",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// The header naming the invocation in every answer of the route.
pub(crate) const INVOCATION_ID: &str = "fuelhost-invocation-id";

/// `/run/{owner}/{name}`: the component's `/`.
pub(super) async fn run_root(
    state: State<ApiState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    req: Request,
) -> Response {
    run(state, caller, owner, name, String::new(), req).await
}

/// `/run/{owner}/{name}/{*path}`.
pub(super) async fn run_path(
    state: State<ApiState>,
    caller: Caller,
    Path((owner, name, path)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    run(state, caller, owner, name, path, req).await
}

async fn run(
    State(state): State<ApiState>,
    caller: Caller,
    owner: String,
    name: String,
    path: String,
    req: Request,
) -> Response {
    match forward(state, caller, owner, name, path, req).await {
        Ok(response) | Err(response) => response,
    }
}

async fn forward(
    state: ApiState,
    caller: Caller,
    owner: String,
    name: String,
    path: String,
    req: Request,
) -> Result<Response, Response> {
    let me = caller.agent().map_err(IntoResponse::into_response)?;
    let artifact = match name.split_once('@') {
        Some(_) => format!("{owner}/{name}"),
        None => state.host.latest_artifact(&owner, &name).ok_or_else(|| {
            ApiError::not_found(format!("`{owner}` has no artifact named `{name}`; see GET /v1/artifacts"))
                .into_response()
        })?,
    };
    let (parts, body) = req.into_parts();
    // The body was read whole (and held to the API's limit) before routing.
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::bad_request(format!("the request body could not be read: {e}")).into_response())?;
    let mut path_and_query = format!("/{path}");
    if let Some(query) = parts.uri.query() {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    let mut request = axum::http::Request::builder()
        .method(parts.method)
        .uri(&path_and_query)
        .body(body)
        .map_err(|e| ApiError::bad_request(format!("the request cannot be handed on: {e}")).into_response())?;
    for (name, value) in &parts.headers {
        if !WITHHELD.contains(&name.as_str()) {
            request.headers_mut().append(name.clone(), value.clone());
        }
    }
    if !request.headers().contains_key(header::HOST) {
        request.headers_mut().insert(header::HOST, HeaderValue::from_static("localhost"));
    }
    let (inv, answer) = Invocation::http(me.to_string(), artifact, request);
    let host = state.host.clone();
    let span = tracing::Span::current();
    let mut ran = tokio::task::spawn_blocking(move || span.in_scope(|| host.invoke(inv)));
    let mut answer = answer;
    // The head comes while the call runs, or never.
    let (head, done) = tokio::select! {
        biased;
        head = &mut answer => (head.ok(), None),
        done = &mut ran => (answer.try_recv().ok(), Some(done)),
    };
    if let Some(head) = head {
        // The body streams on; the call settles meanwhile, and its report
        // is logged, not sent: the status was.
        if done.is_none() {
            tokio::spawn(async move {
                if let Ok(Err(e)) = ran.await {
                    tracing::warn!(error = %e, "an HTTP call failed after its response began");
                }
            });
        }
        let mut response = Response::new(axum::body::Body::new(Streamed(head.body)));
        *response.status_mut() = head.status;
        *response.headers_mut() = head.headers;
        if let Ok(id) = HeaderValue::from_str(&head.invocation_id) {
            response.headers_mut().insert(HeaderName::from_static(INVOCATION_ID), id);
        }
        return Ok(response);
    }
    let done = match done {
        Some(done) => done,
        None => ran.await,
    };
    // No response: the call was refused, or ran and gave none.
    let report = match done {
        Ok(result) => result.map_err(|e| ApiError::from(e).into_response())?,
        Err(e) => return Err(ApiError::internal(format!("the call's task failed: {e}")).into_response()),
    };
    let status = match report.outcome {
        Outcome::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    let id = HeaderValue::from_str(&report.invocation_id).ok();
    let mut response = (status, axum::Json(report)).into_response();
    if let Some(id) = id {
        response.headers_mut().insert(HeaderName::from_static(INVOCATION_ID), id);
    }
    Ok(response)
}

/// The component's response body as it streams; an error cuts it.
struct Streamed(tokio::sync::mpsc::UnboundedReceiver<Result<Bytes, String>>);

impl http_body::Body for Streamed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        match self.0.poll_recv(cx) {
            Poll::Ready(Some(Ok(data))) => Poll::Ready(Some(Ok(http_body::Frame::data(data)))),
            Poll::Ready(Some(Err(why))) => Poll::Ready(Some(Err(std::io::Error::other(why)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
