//! Egress: an artifact's outgoing HTTP requests (`wasi:http`), allowed only
//! to hosts a policy explicitly allows.
//!
//! Each request is an `http-request` action (target: `host:port`;
//! attributes `method`, `url`) put to the policy chain in the artifact's
//! principal's name. It goes out only if a rule **allowed** it explicitly
//! and no plugin denied it: with no rule naming the host, the answer is no.
//! A refused request fails inside the guest with `HTTP-request-denied`;
//! every decision is audited. Policy plugins get no network at all.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::agent::AgentId;
use crate::audit::AuditLog;
use crate::bindings::{Action, Attribute};
use crate::policy::PolicyChain;

/// Who is asking, for the policy chain.
pub struct EgressScope {
    /// The artifact's principal (its owner).
    pub principal: AgentId,
    /// The invocation.
    pub invocation: String,
    /// The artifact.
    pub artifact: String,
    /// The chain that decides.
    pub policy: Arc<PolicyChain>,
    /// Where decisions are recorded.
    pub audit: AuditLog,
    /// The host, for the principal's membership.
    pub host: Arc<crate::host::HostInner>,
}

/// The `wasi:http` hooks of one sandbox: `None` scope denies everything.
#[derive(Default)]
pub struct EgressHooks {
    /// Set for artifacts.
    pub scope: Option<EgressScope>,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

/// The URL without what may be a secret: user info and the query string
/// (tokens, keys) are replaced, so the audit log never holds them.
pub fn redacted_url(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or("");
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    let query = if uri.query().is_some() { "?<redacted>" } else { "" };
    format!("{scheme}://{host}{port}{}{query}", uri.path())
}

impl EgressHooks {
    /// Whether the request may go out.
    fn permits(&self, request: &http::Request<WasiBody>) -> bool {
        let Some(scope) = &self.scope else { return false };
        let uri = request.uri();
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        let target = format!("{}:{port}", uri.host().unwrap_or(""));
        let mut action = Action {
            kind: "http-request".into(),
            subject: scope.principal.to_string(),
            tenant: None,
            target,
            attributes: vec![
                Attribute { key: "method".into(), value: request.method().to_string() },
                Attribute { key: "url".into(), value: redacted_url(uri) },
                Attribute { key: "via-artifact".into(), value: scope.artifact.clone() },
            ],
            price: 0,
            estimated: crate::bindings::NO_USAGE,
        };
        scope.host.memberships.stamp(&mut action);
        let mut verdict = scope.policy.check(&action);
        if verdict.refusal().is_none() && verdict.allowed_by.is_none() {
            // Deny by default: no rule named this host.
            verdict.decision = crate::bindings::Decision::Deny(format!(
                "no rule allows requests to {}; add an `allow` rule for action `http-request`",
                action.target
            ));
            verdict.decided_by = Some("egress default".into());
        }
        scope.audit.record(Some(&scope.invocation), &action, &verdict);
        scope.host.metrics.decision(verdict.decision_name());
        verdict.refusal().is_none()
    }
}

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        _ = fut;
        if !self.permits(&request) {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            ))
        })
    }
}
