//! Egress: an artifact's outgoing HTTP requests (`wasi:http`), allowed only
//! to hosts a policy explicitly allows, and only to the addresses those
//! hosts resolve to that are safe to reach.
//!
//! 1. The request is an `http-request` action (target: `host:port`;
//!    attributes `method`, `url`) put to the policy chain in the
//!    artifact's principal's name. It goes on only if a rule **allowed**
//!    it explicitly and no plugin denied it: with no rule naming the host,
//!    the answer is no.
//! 2. The host name is resolved once (`address`). Each address on the
//!    public internet may be used; each that reaches into the host's own
//!    network (loopback, private, link-local with the cloud metadata
//!    service, reserved) only if an `http-connect` action for it (target
//!    `ip:port`, attributes `host` and `address-class`) is allowed
//!    explicitly by a rule: a permitted name that resolves to
//!    `169.254.169.254` reaches nothing.
//! 3. The connection goes to the vetted addresses only (`send`), never to
//!    a second resolution of the name.
//!
//! A refused request fails inside the guest (`HTTP-request-denied`, or
//! `destination-IP-prohibited` for addresses); every decision is audited.
//! A redirect is a new request from the guest, checked the same way.
//! Policy plugins get no network at all.

mod address;
mod send;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::bindings::Action;
pub use address::{classify, AddressClass};
use fuelhost_ledger::AgentId;
use fuelhost_policy::Judge;

/// Send `request` to a destination the operator configured (a language
/// model provider): resolved and connected to as it is, since the
/// operator, not an artifact, chose it. The policy chain has been asked
/// already (`crate::llm`).
pub(crate) async fn send_configured(
    request: http::Request<WasiBody>,
    options: RequestOptions,
) -> Result<send::Sent, Error> {
    let (host, port) = destination(request.uri());
    let addresses: Vec<SocketAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| Error::DnsError { rcode: None, info_code: None })?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    send::send(request, Some(options), host, addresses).await
}

/// Who is asking, for the policy chain.
pub struct EgressScope {
    /// The artifact's principal (its owner).
    pub principal: AgentId,
    /// The invocation.
    pub invocation: String,
    /// The artifact.
    pub artifact: String,
    /// Decides each request (deny unless a rule allowed it).
    pub judge: Arc<dyn Judge>,
}

/// The `wasi:http` hooks of one sandbox: `None` scope denies everything.
#[derive(Default)]
pub struct EgressHooks {
    /// Set for artifacts.
    pub scope: Option<Arc<EgressScope>>,
}

type SendResult = wasmtime_wasi_http::Result<send::Sent>;

/// The URL without what may be a secret: user info and the query string
/// (tokens, keys) are replaced, so the audit log never holds them.
pub fn redacted_url(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or("");
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    let query = if uri.query().is_some() { "?<redacted>" } else { "" };
    format!("{scheme}://{host}{port}{}{query}", uri.path())
}

/// The host (without IPv6 brackets) and port a request goes to.
fn destination(uri: &http::Uri) -> (String, u16) {
    let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    (host, port)
}

impl EgressScope {
    /// Put `action` to the chain as the host does, requiring an explicit
    /// allow; `deny_default` says why when nothing allowed it.
    fn decide(&self, mut action: Action, deny_default: String) -> bool {
        let verdict = self.judge.judge_explicit(Some(&self.invocation), &mut action, Some(deny_default));
        verdict.refusal().is_none()
    }

    fn action(&self, kind: &crate::actions::ActionKind, target: String, mut attributes: Vec<(&str, String)>) -> Action {
        attributes.push(("via-artifact", self.artifact.clone()));
        kind.action(self.principal.to_string(), target, attributes, 0, crate::bindings::NO_USAGE)
    }

    /// Whether the request may go out to its host name (step 1).
    fn permits(&self, request: &http::Request<WasiBody>) -> bool {
        let uri = request.uri();
        let (host, port) = destination(uri);
        let target = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let deny = format!("no rule allows requests to {target}; add an `allow` rule for action `http-request`");
        let attributes = vec![("method", request.method().to_string()), ("url", redacted_url(uri))];
        self.decide(self.action(&crate::actions::HTTP_REQUEST, target, attributes), deny)
    }

    /// Whether `address`, which `host` resolved to, may be connected to
    /// (step 2).
    fn permits_address(&self, host: &str, address: SocketAddr) -> bool {
        let class = classify(address.ip());
        if class == AddressClass::Public {
            return true;
        }
        let deny = format!(
            "`{host}` resolves to {address}, a {} address; requests into the host's own network need a rule \
             allowing action `http-connect` to it",
            class.as_str()
        );
        let attributes = vec![("host", host.to_string()), ("address-class", class.as_str().to_string())];
        let allowed = self.decide(self.action(&crate::actions::HTTP_CONNECT, address.to_string(), attributes), deny);
        if !allowed {
            tracing::info!(%host, %address, class = class.as_str(), "outgoing request to an address refused");
        }
        allowed
    }

    /// Resolve `host` and keep the addresses that may be reached. (The
    /// checks run on a blocking thread: they may run policy plugins, which
    /// block, and this runs on the runtime's workers.)
    async fn vetted(self: Arc<Self>, host: String, port: u16) -> Result<Vec<SocketAddr>, Error> {
        let resolved: Vec<SocketAddr> = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|_| Error::DnsError { rcode: None, info_code: None })?
                .collect(),
        };
        if resolved.is_empty() {
            return Err(Error::DestinationNotFound);
        }
        let vetted = tokio::task::spawn_blocking(move || {
            resolved.into_iter().filter(|a| self.permits_address(&host, *a)).collect::<Vec<SocketAddr>>()
        })
        .await
        .map_err(|e| Error::InternalError(Some(format!("vetting the addresses failed: {e}"))))?;
        if vetted.is_empty() {
            return Err(Error::DestinationIpProhibited);
        }
        Ok(vetted)
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
        let Some(scope) = self.scope.clone().filter(|s| s.permits(&request)) else {
            return Box::new(async { Err(Error::HttpRequestDenied) });
        };
        Box::new(async move {
            let (host, port) = destination(request.uri());
            let addresses = scope.vetted(host.clone(), port).await?;
            send::send(request, options, host, addresses).await
        })
    }
}
