//! Stage 1, admit: the request checked (artifact, input size, caller,
//! id), a replay answered from its record, an instance slot taken, the
//! payer resolved, and the `invoke` action put to the policy chain. A deny
//! or a pending approval ends the call here, nothing charged.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fuelhost_ledger::{AgentId, LedgerQuery, SponsorGrantStatus};
use fuelhost_policy::Judge;
use fuelhost_runtime::{Slot, Slots};

use super::payer::resolve_payer;
use crate::approvals::{ApprovalError, Approvals, Parked};
use crate::bindings::{Action, Decision, Usage};
use crate::error::InvokeError;
use crate::host_limits::HostLimits;
use crate::invocation::{Invocation, InvocationReport};
use crate::manifest::{Limits, ResourcePolicy};
use crate::registry::{Code, LoadedArtifact};
use crate::state::HostInner;
use crate::typed::TypedCall;

/// What admission decided: run the call, or answer a retry from its record.
pub(super) enum Admission {
    /// A retry of a settled call: its report, nothing run again.
    Replay(InvocationReport),
    /// A call to reserve and run.
    Admitted(Box<Admitted>),
}

/// Who and what a call charges, as plain data: all the ledger stages
/// (reserve, settle) need, so they can be tested on a ledger alone.
#[derive(Debug, Clone)]
pub(super) struct Charge {
    /// The call's id (the caller's, or a fresh one).
    pub invocation_id: String,
    /// Whether the host made the id (no replay to look for).
    pub fresh_id: bool,
    /// The artifact's id.
    pub artifact: String,
    /// Who pays for resources, as the manifest says.
    pub resource_policy: ResourcePolicy,
    /// The invoking agent.
    pub caller: AgentId,
    /// The artifact's owner.
    pub owner: AgentId,
    /// Who pays for resources (after sponsorship).
    pub payer: AgentId,
    /// The sponsor grant paying, if one does.
    pub sponsorship: Option<SponsorGrantStatus>,
    /// The price the caller pays the owner on success.
    pub price: u64,
    /// Fuel asked for: the request's, within the artifact's limit.
    pub fuel_limit: u64,
}

/// An admitted call: everything the later stages need.
pub(super) struct Admitted {
    /// Who and what it charges.
    pub charge: Charge,
    /// The request (its input, timeout, cancel flag, approval).
    pub req: Invocation,
    /// The artifact, compiled and linked.
    pub artifact: Arc<LoadedArtifact>,
    /// Its limits, held to the host's maxima.
    pub limits: Limits,
    /// The agent whose outermost call this one runs within.
    pub root: AgentId,
    /// For an artifact called by function (its typed exports): the
    /// function and its arguments, checked against its types.
    pub typed: Option<TypedCall>,
    /// The instance slot, held until the call ends.
    pub _slot: Slot,
}

pub(super) fn new_invocation_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("inv-{:x}-{:016x}", fuelhost_sqlite::now_ms(), h.finish())
}

/// Finds an artifact by id, loading its code if it is not loaded:
/// `Ok(None)` when there is no such artifact.
pub(super) type FindArtifact<'a> = dyn Fn(&str) -> Result<Option<Arc<LoadedArtifact>>, InvokeError> + 'a;

/// What admission needs of the host: the artifacts, the ledger's reads,
/// the judge, where approvals wait, the instance slots and the host's
/// limits. Built from the host by [`AdmitEnv::of`]; a test builds one from
/// parts.
pub(super) struct AdmitEnv<'a> {
    /// Finds an artifact by id.
    pub artifacts: &'a FindArtifact<'a>,
    /// The ledger, read only.
    pub ledger: &'a dyn LedgerQuery,
    /// Decides the `invoke` action.
    pub judge: &'a dyn Judge,
    /// Where a call that needs approval waits.
    pub approvals: &'a Approvals,
    /// The instance slots.
    pub slots: &'a Arc<Slots>,
    /// The most a manifest may ask for.
    pub limits: &'a HostLimits,
    /// The engines' memory cap.
    pub max_memory_bytes: u64,
}

impl<'a> AdmitEnv<'a> {
    /// Admission on `host`, finding artifacts with `artifacts` (the host's
    /// registry).
    pub(super) fn of(host: &'a HostInner, artifacts: &'a FindArtifact<'a>) -> Self {
        AdmitEnv {
            artifacts,
            ledger: &*host.ledger,
            judge: host,
            approvals: &host.approvals,
            slots: &host.slots,
            limits: &host.limits,
            max_memory_bytes: host.settings.max_memory_bytes,
        }
    }
}

/// Admit `req` at nesting `depth`; the invocation's `span` records its id,
/// payer and price.
pub(super) fn admit(
    host: &AdmitEnv<'_>,
    mut req: Invocation,
    depth: u32,
    span: &tracing::Span,
) -> Result<Admission, InvokeError> {
    let caller = AgentId::new(req.caller.clone())?;
    let artifact =
        (host.artifacts)(&req.artifact)?.ok_or_else(|| InvokeError::UnknownArtifact(req.artifact.clone()))?;
    let manifest = &artifact.info.manifest;
    let limits = manifest.limits.within(host.limits, host.max_memory_bytes);
    check_call_form(&artifact, &req)?;
    let input_size = req.http.as_ref().map_or(req.input.len() as u64, |h| h.request_bytes);
    if input_size > limits.input_bytes {
        return Err(InvokeError::InputTooLarge {
            artifact: artifact.info.id.clone(),
            size: input_size,
            limit: limits.input_bytes,
        });
    }
    if !host.ledger.has_account(caller.as_str()).map_err(InvokeError::Ledger)? {
        return Err(InvokeError::UnknownCaller(caller.to_string()));
    }
    let fresh_id = req.id.is_none();
    let invocation_id = match req.id.take() {
        Some(id) => match replay(host, id, &caller, &artifact.info.id)? {
            Ok(report) => return Ok(Admission::Replay(report)),
            Err(id) => id,
        },
        None => new_invocation_id(),
    };
    span.record("invocation_id", invocation_id.as_str());
    // A slot before anything is decided or held: a busy host refuses the
    // call here, charging nothing. A nested call holds its caller's slot
    // meanwhile, so it does not wait for one.
    let root = req.root.clone().unwrap_or_else(|| caller.clone());
    let slot = host.slots.acquire(root.as_str(), depth == 0)?;
    // An artifact of typed exports takes `{"export": ..., "args": ...}`,
    // checked here (a known caller, a slot taken: the work is bounded and
    // counted), before anything is charged.
    let typed = match &*artifact.pre {
        Code::Run(_) | Code::Command(_) | Code::AsyncCommand(_) | Code::Http(_) | Code::AsyncHttp(_) => None,
        Code::Exports { pre, functions, .. } => Some(
            crate::typed::prepare(pre.component(), functions, &req.input)
                .map_err(|problem| InvokeError::InvalidArguments { artifact: artifact.info.id.clone(), problem })?,
        ),
    };

    let owner = manifest.owner.clone();
    let (sponsorship, payer) =
        resolve_payer(host.ledger, &caller, &owner, &artifact.info.id, manifest.resource_policy)?;
    let price = if caller == owner { 0 } else { manifest.price };
    span.record("payer", payer.as_str());
    span.record("price", price);
    let charge = Charge {
        invocation_id,
        fresh_id,
        artifact: artifact.info.id.clone(),
        resource_policy: manifest.resource_policy,
        caller,
        owner,
        payer,
        sponsorship,
        price,
        fuel_limit: req.fuel_limit.unwrap_or(limits.fuel).min(limits.fuel),
    };
    // What the policy chain is told is called: the function, or `http`,
    // or `run`.
    let export = match (&typed, &req.http) {
        (Some(t), _) => t.name.as_str(),
        (None, Some(_)) => "http",
        (None, None) => "run",
    };
    decide(host, &charge, &req, (input_size, export), limits.memory_bytes)?;
    Ok(Admission::Admitted(Box::new(Admitted { charge, req, artifact, limits, root, typed, _slot: slot })))
}

/// An HTTP request goes to a `wasi:http/proxy` artifact, and only there.
fn check_call_form(artifact: &LoadedArtifact, req: &Invocation) -> Result<(), InvokeError> {
    let id = &artifact.info.id;
    let (owner, name) = (artifact.info.manifest.owner.as_str(), &artifact.info.manifest.name);
    let problem = match (&*artifact.pre, req.http.is_some()) {
        (Code::Http(_) | Code::AsyncHttp(_), false) => format!(
            "it is a `wasi:http/proxy` component: send it HTTP requests at `/run/{owner}/{name}@{}/...` \
             (the path after it is the component's)",
            artifact.info.manifest.version
        ),
        (Code::Http(_) | Code::AsyncHttp(_), true) => return Ok(()),
        (_, true) => format!(
            "it is a `{}` artifact, not a `wasi:http/proxy` component: call it with `POST /v1/invoke`",
            artifact.kind()
        ),
        (_, false) => return Ok(()),
    };
    Err(InvokeError::WrongCall { artifact: id.clone(), problem })
}

/// The record of a settled call `id` as its replay (`Ok`), if it is
/// `caller`'s call of `artifact`; `Err(id)` when no call settled under
/// that id yet. Another caller's or artifact's id is refused.
fn replay(
    host: &AdmitEnv<'_>,
    id: String,
    caller: &AgentId,
    artifact: &str,
) -> Result<Result<InvocationReport, String>, InvokeError> {
    match host.ledger.usage_record(&id).map_err(InvokeError::Ledger)? {
        // A retry replays its own call only.
        Some(record) if record.caller != *caller || record.artifact != artifact => Err(InvokeError::IdTaken(id)),
        Some(record) => Ok(Ok(InvocationReport::from_record(record, true))),
        None => Ok(Err(id)),
    }
}

/// The `invoke` action of `charge`, as the policy chain sees it.
fn invoke_action(charge: &Charge, input_bytes: u64, export: &str, memory_limit: u64) -> Action {
    let grant = charge.sponsorship.as_ref().map(|g| g.grant.id.clone()).unwrap_or_default();
    crate::actions::INVOKE.action(
        charge.caller.to_string(),
        charge.artifact.clone(),
        vec![
            ("owner", charge.owner.to_string()),
            ("payer", charge.payer.to_string()),
            ("resource-policy", charge.resource_policy.to_string()),
            ("sponsor-grant", grant),
            ("input-bytes", input_bytes.to_string()),
            ("export", export.to_string()),
        ],
        charge.price,
        Usage {
            fuel: charge.fuel_limit,
            memory_peak_bytes: memory_limit,
            disk_bytes: 0,
            llm_tokens: 0,
            wall_time_ns: 0,
        },
    )
}

/// Put the call to the judge (in the `admit` span): a deny refuses it, a
/// `require_approval` parks it until an approver decides (an approved
/// call passes); nothing is charged either way.
fn decide(
    host: &AdmitEnv<'_>,
    charge: &Charge,
    req: &Invocation,
    (input_bytes, export): (u64, &str),
    memory_limit: u64,
) -> Result<(), InvokeError> {
    let _admit = tracing::info_span!("admit").entered();
    let mut action = invoke_action(charge, input_bytes, export, memory_limit);
    // An allow is recorded by the call's settlement, in the same commit
    // (see `audit`); any other decision now.
    let verdict = host.judge.judge_admission(&charge.invocation_id, &mut action);
    match &verdict.decision {
        // An HTTP request cannot wait for a decision that may take hours.
        Decision::RequireApproval(approvers) if req.http.is_some() => Err(InvokeError::Denied(format!(
            "this call needs an approval (by {}), and an HTTP request to a component's route cannot wait for one: \
             ask an approver to change the policy, or call an artifact that does not need one",
            approvers.join(", ")
        ))),
        Decision::RequireApproval(approvers) if req.approved_by.is_none() => {
            let parked = host
                .approvals
                .park(
                    &charge.invocation_id,
                    charge.caller.as_str(),
                    &charge.artifact,
                    approvers,
                    verdict.decided_by.as_deref(),
                    Parked::Invoke { input: &req.input, fuel_limit: req.fuel_limit },
                )
                .map_err(|e| match e {
                    ApprovalError::IdTaken { id, .. } => InvokeError::IdTaken(id),
                    e => InvokeError::Sandbox(e.to_string()),
                })?;
            tracing::info!(pending = %parked.id, "invocation parked for approval");
            Err(InvokeError::PendingApproval { id: parked.id, approvers: approvers.join(", ") })
        }
        // Approved: the approval satisfies `require_approval`, never a deny.
        Decision::RequireApproval(_) => Ok(()),
        _ => match verdict.refusal() {
            Some(reason) => {
                tracing::info!(%reason, "invocation denied");
                Err(InvokeError::Denied(reason))
            }
            None => Ok(()),
        },
    }
}
