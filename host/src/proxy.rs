//! `wasi:http/proxy` artifacts: the HTTP request a call hands to the
//! component's incoming handler, and its response on the way back.
//!
//! The request arrives whole (held to the artifact's input limit). The
//! response's head goes back as soon as the component sets it; its body
//! streams out as the component writes it, counted against the output
//! limit, a copy (up to that limit) kept as the call's output. Its last
//! chunk, and its end, are sent only when the exchange is dropped, after
//! the call settled, so a client that read a response to its end knows it
//! was charged. A run that fails after the head went out cuts the body
//! with an error, so the client never takes a half answer for a whole one.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// A response of a `wasi:http/proxy` artifact: its head, as the component
/// set it, and its body as it streams. The body ends with `Ok` chunks
/// only when the call succeeded and settled; an `Err` item says why it
/// was cut.
pub struct ProxyResponse {
    /// The status the component answered.
    pub status: http::StatusCode,
    /// Its headers.
    pub headers: http::HeaderMap,
    /// The call's invocation id.
    pub invocation_id: String,
    /// The body, chunk by chunk.
    pub body: mpsc::UnboundedReceiver<Result<Bytes, String>>,
}

/// What a caller of [`crate::Invocation::http`] waits on: the response's
/// head, once the component sets it. Dropped unanswered when the call
/// ended without a response (refused, or the component failed first):
/// the invocation's result says why.
pub type ProxyAnswer = oneshot::Receiver<ProxyResponse>;

/// How a `wasi:http/proxy` call answered, once its run is over.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answered {
    /// A response, its body read to the end (or cut at the output limit).
    Response {
        /// Its status.
        status: u16,
        /// The body's first bytes: up to the output limit, and one more
        /// when it was longer.
        kept: Vec<u8>,
        /// Why the body failed, if it did.
        body_error: Option<String>,
    },
    /// The component answered with an `error-code` instead.
    Error(String),
    /// It returned without setting a response.
    Nothing,
    /// Its body had not ended by the call's deadline.
    Unfinished,
}

/// One call's request and the way back for its response.
pub(crate) struct Exchange {
    request: Mutex<Option<http::Request<Bytes>>>,
    /// Size of the request's body.
    pub(crate) request_bytes: u64,
    head: Mutex<Option<oneshot::Sender<ProxyResponse>>>,
    /// The client's end of the body: the last sender, dropped with the
    /// exchange (after settlement).
    client: Mutex<Option<mpsc::UnboundedSender<Result<Bytes, String>>>>,
    body: Mutex<Body>,
    ended: Condvar,
}

/// The response body as the forwarder has read it.
#[derive(Default)]
struct Body {
    status: Option<u16>,
    error_code: Option<String>,
    kept: Vec<u8>,
    total: u64,
    failed: Option<String>,
    ended: bool,
    /// The last chunk read, sent when the exchange ends (after settlement).
    held: Option<Bytes>,
    forwarder: Option<wasmtime_wasi::runtime::AbortOnDropJoinHandle<()>>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange").field("request_bytes", &self.request_bytes).finish_non_exhaustive()
    }
}

impl Exchange {
    /// An exchange for `request`; the receiver gets the response's head.
    pub(crate) fn new(request: http::Request<Bytes>) -> (Exchange, ProxyAnswer) {
        let (tx, rx) = oneshot::channel();
        let exchange = Exchange {
            request_bytes: request.body().len() as u64,
            request: Mutex::new(Some(request)),
            head: Mutex::new(Some(tx)),
            client: Mutex::new(None),
            body: Mutex::new(Body::default()),
            ended: Condvar::new(),
        };
        (exchange, rx)
    }

    /// The request, for the one run that hands it over.
    pub(crate) fn take_request(&self) -> Option<http::Request<Bytes>> {
        lock(&self.request).take()
    }

    fn body(&self) -> MutexGuard<'_, Body> {
        self.body.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The component set its response (`response-outparam.set`): send the
    /// head to the caller and forward the body as it comes, on a task of
    /// its own (see [`Exchange::answer`]).
    pub(crate) fn respond<B>(
        self: &Arc<Self>,
        result: Result<http::Response<B>, String>,
        invocation_id: String,
        limit: u64,
    ) where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Debug,
    {
        if let Some(forward) = self.answer(result, invocation_id, limit) {
            let forwarder = wasmtime_wasi::runtime::spawn(forward);
            self.body().forwarder = Some(forwarder);
        }
    }

    /// The component answered: send the head to the caller, and return
    /// what forwards the body as it comes, keeping up to `limit` bytes (and
    /// one more, when there are more), for the caller to run where the
    /// body's writer makes progress (a task of its own for WASI 0.2; the
    /// store's concurrent run for WASI 0.3, whose body the guest writes
    /// after returning). Nothing to forward when it answered an error code.
    pub(crate) fn answer<B>(
        self: &Arc<Self>,
        result: Result<http::Response<B>, String>,
        invocation_id: String,
        limit: u64,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Debug,
    {
        let response = match result {
            Ok(r) => r,
            Err(code) => {
                self.body().error_code = Some(code);
                lock(&self.head).take();
                return None;
            }
        };
        let (parts, body) = response.into_parts();
        let (tx, rx) = mpsc::unbounded_channel();
        *lock(&self.client) = Some(tx.clone());
        self.body().status = Some(parts.status.as_u16());
        let head = ProxyResponse { status: parts.status, headers: parts.headers, invocation_id, body: rx };
        if let Some(sender) = lock(&self.head).take() {
            // A caller that stopped waiting still has the body read, so
            // the component's writes never block.
            let _ = sender.send(head);
        }
        let me = Arc::clone(self);
        Some(async move {
            use http_body_util::BodyExt as _;
            let mut body = std::pin::pin!(body);
            loop {
                let frame = body.frame().await;
                let mut state = me.body();
                match frame {
                    None => state.ended = true,
                    Some(Err(e)) => {
                        state.failed = Some(format!("{e:?}"));
                        state.ended = true;
                    }
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else { continue };
                        state.total = state.total.saturating_add(data.len() as u64);
                        let room = (limit.saturating_add(1)).saturating_sub(state.kept.len() as u64) as usize;
                        state.kept.extend_from_slice(&data[..data.len().min(room)]);
                        // One chunk is held back, sent when the call has
                        // settled: a body of known length is not whole
                        // before.
                        if state.total <= limit {
                            if let Some(before) = state.held.replace(data) {
                                let _ = tx.send(Ok(before));
                            }
                        }
                    }
                }
                if state.ended {
                    drop(state);
                    me.ended.notify_all();
                    return;
                }
            }
        })
    }

    /// How the component answered, once its store is gone (so its body's
    /// writer is too): waits for the body's end until `deadline`.
    pub(crate) fn answered(&self, deadline: Instant) -> Answered {
        let mut state = self.body();
        loop {
            if let Some(code) = state.error_code.take() {
                return Answered::Error(code);
            }
            let Some(status) = state.status else { return Answered::Nothing };
            if state.ended {
                return Answered::Response {
                    status,
                    kept: std::mem::take(&mut state.kept),
                    body_error: state.failed.take(),
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Answered::Unfinished;
            }
            state = self.ended.wait_timeout(state, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Cut the body the client is reading, saying why.
    pub(crate) fn cut(&self, why: &str) {
        if let Some(client) = lock(&self.client).take() {
            let _ = client.send(Err(why.to_string()));
        }
        if let Some(forwarder) = self.body().forwarder.take() {
            forwarder.abort();
        }
    }
}

impl Drop for Exchange {
    /// The call has settled: the body's last chunk goes out, and its end.
    fn drop(&mut self) {
        if let Some(client) = lock(&self.client).take() {
            if let Some(last) = self.body().held.take() {
                let _ = client.send(Ok(last));
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
