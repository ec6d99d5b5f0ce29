//! An invocation as its caller sees it: the request ([`Invocation`]) and
//! what came of it ([`InvocationReport`]). Plain data, shared by the
//! pipeline that runs it (`invoke`), the scheduler that queues it and the
//! host's API.

use std::sync::Arc;

use fuelhost_ledger::{AgentId, Outcome, ResourcesConsumed, UsageRecord};
use serde::Serialize;

/// A request to invoke an artifact.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The invoking agent.
    pub caller: String,
    /// `owner/name@version`.
    pub artifact: String,
    /// Bytes passed to `run`.
    pub input: Vec<u8>,
    /// Fuel cap for this call; the artifact's own limit caps it too.
    pub fuel_limit: Option<u64>,
    /// Idempotency key; generated when absent.
    pub id: Option<String>,
    /// Wall-time cap for this call; the artifact's own timeout caps it too.
    pub timeout: Option<std::time::Duration>,
    /// Set only by an approval: the approver whose approval satisfies a
    /// `require_approval` verdict for this run.
    pub(crate) approved_by: Option<String>,
    /// Set only by the scheduler: raised to stop the run at the next
    /// epoch tick (outcome `aborted`, charged for what it burned).
    pub(crate) cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Set only for nested calls: the agent whose outermost call this one
    /// runs within, whose share of instance slots it takes.
    pub(crate) root: Option<AgentId>,
    /// Set only for a call of a `wasi:http/proxy` artifact: its request,
    /// and the way back for its response (see [`Invocation::http`]).
    pub(crate) http: Option<Arc<crate::proxy::Exchange>>,
}

impl Invocation {
    /// `caller` invokes `artifact` with `input`.
    pub fn new(caller: impl Into<String>, artifact: impl Into<String>, input: impl Into<Vec<u8>>) -> Invocation {
        Invocation {
            caller: caller.into(),
            artifact: artifact.into(),
            input: input.into(),
            fuel_limit: None,
            id: None,
            timeout: None,
            approved_by: None,
            cancel: None,
            root: None,
            http: None,
        }
    }

    /// `caller` sends `request` to `artifact`, a `wasi:http/proxy`
    /// component (its incoming handler gets it, the path and query as
    /// given). The [`crate::ProxyAnswer`] gets the response's head as soon
    /// as the component sets it, and its body as it streams; the
    /// invocation's report (returned by [`crate::Host::invoke`], after
    /// settlement) says what was charged. The price is paid on a 2xx.
    pub fn http(
        caller: impl Into<String>,
        artifact: impl Into<String>,
        request: http::Request<bytes::Bytes>,
    ) -> (Invocation, crate::ProxyAnswer) {
        let (exchange, answer) = crate::proxy::Exchange::new(request);
        let mut inv = Invocation::new(caller, artifact, Vec::new());
        inv.http = Some(Arc::new(exchange));
        (inv, answer)
    }

    /// `caller` calls function `export` of `artifact` (one of its typed
    /// exports: `add`, or `<interface>#<function>`) with `args`, a JSON
    /// array in parameter order or an object by parameter name. The input
    /// is `{"export": ..., "args": ...}` (see [`crate::TypedInput`]), as a
    /// nested call or a task passes it too; the output is the function's
    /// result as JSON.
    pub fn export(
        caller: impl Into<String>,
        artifact: impl Into<String>,
        export: &str,
        args: serde_json::Value,
    ) -> Invocation {
        Invocation::new(caller, artifact, crate::TypedInput::encode(export, args))
    }

    /// `caller` calls a function of `artifact` (one of its typed exports)
    /// written as a WAVE function call, as `wasmtime run --invoke` takes
    /// it: `add(1, 2)`. The output is the function's result as JSON.
    pub fn call(caller: impl Into<String>, artifact: impl Into<String>, call: &str) -> Invocation {
        Invocation::new(caller, artifact, crate::TypedInput::encode_call(call))
    }

    /// Cap the fuel of this call.
    pub fn fuel_limit(mut self, fuel: u64) -> Invocation {
        self.fuel_limit = Some(fuel);
        self
    }

    /// Stop this call after `timeout` of wall time, if that comes before
    /// the artifact's own timeout (outcome `timeout`, charged for the fuel
    /// it burned).
    pub fn timeout(mut self, timeout: std::time::Duration) -> Invocation {
        self.timeout = Some(timeout);
        self
    }

    /// Use `id` as the invocation id: a second call with the same id returns
    /// the first one's report and is not charged again.
    pub fn id(mut self, id: impl Into<String>) -> Invocation {
        self.id = Some(id.into());
        self
    }
}

/// What an invocation did and what it cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct InvocationReport {
    /// The invocation id.
    pub invocation_id: String,
    /// `owner/name@version`.
    pub artifact: String,
    /// Whether `run` returned output.
    pub success: bool,
    /// The output (empty unless `success`; in JSON: `output` when UTF-8,
    /// else `output_base64`).
    #[serde(flatten, with = "fuelhost_ledger::guest_output")]
    pub output: Vec<u8>,
    /// How it ended.
    pub outcome: Outcome,
    /// What went wrong, when it did.
    pub error: Option<String>,
    /// Resources charged.
    pub resources_consumed: ResourcesConsumed,
    /// Whose budget paid for them.
    pub charged_to: AgentId,
    /// Scrip paid to the owner.
    pub price_paid: u64,
    /// Money cost of the resources charged, micro-USD (0 unless the
    /// operator priced CPU time or disk in the cost model).
    pub cost_usd_micros: u64,
    /// True when this report was recorded by an earlier call with the same id.
    pub replayed: bool,
}

impl InvocationReport {
    pub(crate) fn from_record(r: UsageRecord, replayed: bool) -> InvocationReport {
        InvocationReport {
            invocation_id: r.invocation_id,
            artifact: r.artifact,
            success: r.outcome == Outcome::Success,
            output: r.output,
            outcome: r.outcome,
            error: r.error,
            resources_consumed: r.consumed,
            charged_to: r.charged_to,
            price_paid: r.price_paid,
            cost_usd_micros: r.cost_usd_micros,
            replayed,
        }
    }

    /// The output as UTF-8 text (lossy).
    pub fn output_text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }
}
