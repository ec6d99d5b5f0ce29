//! Approvals: actions a policy said need approval, parked until one of
//! their approvers approves or rejects them.
//!
//! Three kinds of action can wait: an invocation, a transfer an agent asks
//! for, and an upload. A parked action keeps everything needed to do it
//! later (an invocation's input, a transfer's request, an upload's
//! manifest and component). Approving flips it to `approved` in one
//! transaction, then does it under an id fixed when it was parked (the
//! invocation id, the transfer id, the artifact id), each idempotent by
//! that id: a second approval (by the same or another approver), or an
//! approval retried after a crash, returns the one recorded result and
//! never does it twice.
//! Rejecting flips it to `rejected`; a pending action past its time to live
//! is `expired`, checked lazily. All state is in the database.
//!
//! Approvals separate duties: the agent that asked for an action never
//! decides on it, even when a rule lists it among the approvers; an
//! administrator ([`Decider::Admin`]) sees and may decide every parked
//! action.

use std::sync::Arc;

use serde::Serialize;

use fuelhost_ledger::Clock;
use fuelhost_store::{self as store, params, Commit, Row, Sql, StoreError, Tx};

/// Where a parked action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingState {
    /// Waiting for an approver.
    Pending,
    /// Approved; it runs (or ran) once.
    Approved,
    /// Rejected by an approver.
    Rejected,
    /// Nobody decided in time.
    Expired,
}

impl PendingState {
    fn as_str(self) -> &'static str {
        match self {
            PendingState::Pending => "pending",
            PendingState::Approved => "approved",
            PendingState::Rejected => "rejected",
            PendingState::Expired => "expired",
        }
    }

    fn parse(s: &str) -> PendingState {
        match s {
            "approved" => PendingState::Approved,
            "rejected" => PendingState::Rejected,
            "expired" => PendingState::Expired,
            _ => PendingState::Pending,
        }
    }
}

/// An action waiting for (or past) approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PendingAction {
    /// Its id: an invocation's id; `transfer:` and the transfer's id;
    /// `upload:` and the artifact's `owner:name@version`.
    pub id: String,
    /// The action kind: `invoke`, `transfer` or `upload`.
    pub kind: String,
    /// Who asked for it.
    pub subject: String,
    /// What it is aimed at.
    pub target: String,
    /// Who may approve it.
    pub approvers: Vec<String>,
    /// The rule or plugin that asked for approval.
    pub required_by: Option<String>,
    /// Where it stands.
    pub state: PendingState,
    /// The approver who approved or rejected it.
    pub resolved_by: Option<String>,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms after which it expires.
    pub expires_at_ms: i64,
    /// The invocation's input bytes, or the upload's component (empty
    /// once it is uploaded, and in listings).
    #[serde(skip)]
    pub input: Vec<u8>,
    /// The invocation's fuel limit, if the caller set one.
    pub fuel_limit: Option<u64>,
    /// What an approver should see besides the target: a transfer's
    /// request (`{id, from, to, asset, amount, memo}`), an upload's
    /// manifest with the component's `size` and `sha256`. `null` for an
    /// invocation.
    pub details: Option<serde_json::Value>,
}

/// What a parked action needs to be done later, by kind.
#[derive(Debug, Clone)]
pub enum Parked<'a> {
    /// An invocation: its input and fuel limit.
    Invoke {
        /// The input bytes.
        input: &'a [u8],
        /// The caller's fuel limit.
        fuel_limit: Option<u64>,
    },
    /// A transfer an agent asked for.
    Transfer(&'a fuelhost_ledger::TransferRequest),
    /// An upload: the manifest and the component.
    Upload {
        /// The manifest, as the uploader gave it.
        manifest: &'a crate::Manifest,
        /// The component's bytes.
        component: &'a [u8],
    },
}

impl Parked<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Parked::Invoke { .. } => "invoke",
            Parked::Transfer(_) => "transfer",
            Parked::Upload { .. } => "upload",
        }
    }
}

/// Who decides on a parked action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider<'a> {
    /// An agent, which must be one of the action's approvers and not the
    /// agent that asked for it.
    Agent(&'a str),
    /// An administrator (an admin API key, or the embedding program): may
    /// decide any parked action. Recorded as [`ADMIN_DECIDER`].
    Admin,
}

/// How many uploads one agent may have waiting for approval at once: each
/// keeps its component in the database until it is decided.
pub const MAX_PARKED_UPLOADS: i64 = 8;

/// How a decision by an administrator is recorded (`resolved_by`): not a
/// valid agent id, so no agent can be mistaken for it.
pub const ADMIN_DECIDER: &str = "@admin";

impl Decider<'_> {
    /// The name recorded as `resolved_by`, and the subject of the
    /// `approve` action put to the policy chain.
    pub fn name(&self) -> &str {
        match self {
            Decider::Agent(a) => a,
            Decider::Admin => ADMIN_DECIDER,
        }
    }
}

/// Why an approval or rejection did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// No such pending action.
    #[error("no pending action `{0}`")]
    Unknown(String),
    /// The agent is not among its approvers.
    #[error("`{agent}` may not decide on `{id}`: its approvers are {approvers}")]
    NotAnApprover {
        /// The pending action.
        id: String,
        /// Who tried.
        agent: String,
        /// Who may.
        approvers: String,
    },
    /// The agent asked for the action itself: separation of duties.
    #[error(
        "`{agent}` asked for `{id}` and may not decide on it: another of its approvers or an administrator must \
         ({approvers})"
    )]
    OwnRequest {
        /// The pending action.
        id: String,
        /// Who tried (the requester).
        agent: String,
        /// Its approvers.
        approvers: String,
    },
    /// It was already decided (or expired).
    #[error("pending action `{id}` is already {state:?}{}", by.as_ref().map(|b| format!(" by {b}")).unwrap_or_default())]
    AlreadyDecided {
        /// The pending action.
        id: String,
        /// Its state.
        state: PendingState,
        /// Who decided.
        by: Option<String>,
    },
    /// The policy chain refused the approval itself.
    #[error("{0}")]
    Denied(String),
    /// The database could not be reached or could not commit; the same
    /// request may succeed later.
    #[error("approvals storage: {0}")]
    Storage(String),
    /// The database refused what fuelhost asked of it, or a parked action
    /// is not as fuelhost stored it: a fault of fuelhost's.
    #[error("approvals storage: {0}")]
    Internal(String),
    /// The approved invocation could not run (it was refused again, or the
    /// host failed around it).
    #[error("the approved invocation did not run: {0}")]
    Invocation(#[from] crate::error::InvokeError),
    /// The approved transfer was not made (refused again, or not enough
    /// left to send).
    #[error("the approved transfer was not made: {0}")]
    Transfer(crate::error::HostError),
    /// The approved upload was not made (refused again, or the component
    /// does not compile).
    #[error("the approved upload was not made: {0}")]
    Upload(crate::error::UploadError),
    /// The id names a parked action of this kind with other content
    /// (another amount, other bytes, another input).
    #[error(
        "`{id}` is already parked ({state}) with other content: wait until it is decided, or use another id \
         (for an upload, another version)"
    )]
    Differs {
        /// The id.
        id: String,
        /// Where the parked action stands.
        state: PendingState,
    },
    /// An agent has as many uploads waiting as it may.
    #[error("`{subject}` has {max} uploads waiting for approval, the most one agent may: wait until they are decided")]
    TooManyParked {
        /// The uploader.
        subject: String,
        /// The limit.
        max: i64,
    },
    /// The agent receives the transfer it would approve.
    #[error("`{agent}` receives `{id}` and may not decide on it: another of its approvers or an administrator must ({approvers})")]
    Beneficiary {
        /// The pending action.
        id: String,
        /// Who tried (the recipient).
        agent: String,
        /// Its approvers.
        approvers: String,
    },
    /// The id names a parked action of another kind, subject or target.
    #[error("`{id}` already names a parked {kind} by `{subject}` of `{target}`: choose another id for this action")]
    IdTaken {
        /// The id.
        id: String,
        /// The kind of the action parked under it.
        kind: String,
        /// Who asked for it.
        subject: String,
        /// What it was aimed at.
        target: String,
    },
}

impl From<StoreError> for ApprovalError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            ApprovalError::Storage(e.to_string())
        } else {
            ApprovalError::Internal(e.to_string())
        }
    }
}

/// The parked actions, in the database.
pub struct Approvals {
    db: Arc<dyn Sql>,
    clock: Arc<dyn Clock>,
    ttl_ms: i64,
}

/// An empty blob: what an upload's component becomes once it is decided.
const NOTHING: &[u8] = &[];

const COLUMNS: &str = "id, kind, subject, target, approvers, required_by, state, resolved_by, reason, created_ms,
    expires_ms, input, fuel_limit, payload";

/// [`COLUMNS`] without the input, which may be a whole component.
const LISTED: &str = "id, kind, subject, target, approvers, required_by, state, resolved_by, reason, created_ms,
    expires_ms, NULL, fuel_limit, payload";

/// The one action of `id`, if any.
fn find(tx: &mut dyn Tx, id: &str) -> Result<Option<PendingAction>, StoreError> {
    tx.query_opt(&format!("SELECT {COLUMNS} FROM pending_actions WHERE id = ?1"), params![id])?
        .map(|r| from_row(&r))
        .transpose()
}

fn from_row(r: &Row) -> Result<PendingAction, StoreError> {
    let approvers: String = r.get(4)?;
    Ok(PendingAction {
        id: r.get(0)?,
        kind: r.get(1)?,
        subject: r.get(2)?,
        target: r.get(3)?,
        approvers: serde_json::from_str(&approvers).unwrap_or_default(),
        required_by: r.get(5)?,
        state: PendingState::parse(&r.get::<String>(6)?),
        resolved_by: r.get(7)?,
        reason: r.get(8)?,
        created_at_ms: r.get(9)?,
        expires_at_ms: r.get(10)?,
        input: r.get::<Option<Vec<u8>>>(11)?.unwrap_or_default(),
        fuel_limit: r.get(12)?,
        details: r.get::<Option<String>>(13)?.and_then(|p| serde_json::from_str(&p).ok()),
    })
}

/// The JSON kept with a parked action (and shown to approvers).
fn payload(action: &Parked<'_>) -> Option<serde_json::Value> {
    match action {
        Parked::Invoke { .. } => None,
        Parked::Transfer(req) => serde_json::to_value(req).ok(),
        Parked::Upload { manifest, component } => {
            use sha2::Digest;
            let mut value = serde_json::to_value(manifest).ok()?;
            value["size"] = component.len().into();
            value["sha256"] = hex::encode(sha2::Sha256::digest(component)).into();
            Some(value)
        }
    }
}

impl Approvals {
    /// Parked actions in `db`, expiring `ttl_ms` after they are parked.
    pub fn new(db: Arc<dyn Sql>, clock: Arc<dyn Clock>, ttl_ms: i64) -> Approvals {
        Approvals { db, clock, ttl_ms }
    }

    /// Park an action. Idempotent by id: parking the same action under
    /// its id again returns it as parked first, whatever its state;
    /// another action under the id is refused ([`ApprovalError::IdTaken`],
    /// [`ApprovalError::Differs`]). An upload whose earlier parking was
    /// decided (rejected, expired, or approved and since deleted: the host
    /// checked the artifact does not exist) is parked afresh, and an agent
    /// parks at most [`MAX_PARKED_UPLOADS`] uploads at once.
    pub fn park(
        &self,
        id: &str,
        subject: &str,
        target: &str,
        approvers: &[String],
        required_by: Option<&str>,
        action: Parked<'_>,
    ) -> Result<PendingAction, ApprovalError> {
        let now = self.clock.now_ms();
        let (input, fuel_limit) = match &action {
            Parked::Invoke { input, fuel_limit } => (*input, *fuel_limit),
            Parked::Upload { component, .. } => (*component, None),
            Parked::Transfer(_) => (&[][..], None),
        };
        let details = payload(&action);
        let is_upload = matches!(action, Parked::Upload { .. });
        let approvers = serde_json::to_string(approvers).unwrap_or_else(|_| "[]".into());
        let details_text = details.as_ref().map(|p| p.to_string());
        store::write(&*self.db, Commit::Durable, |tx| {
            self.expire(tx)?;
            if let Some(found) = find(tx, id)? {
                if found.kind != action.kind() || found.subject != subject || found.target != target {
                    return Err(ApprovalError::IdTaken {
                        id: id.to_string(),
                        kind: found.kind,
                        subject: found.subject,
                        target: found.target,
                    });
                }
                if !(is_upload && found.state != PendingState::Pending) {
                    let same = found.details == details
                        && (is_upload || (found.input == input && found.fuel_limit == fuel_limit));
                    if !same {
                        return Err(ApprovalError::Differs { id: id.to_string(), state: found.state });
                    }
                    return Ok(found);
                }
                tx.execute("DELETE FROM pending_actions WHERE id = ?1", params![id])?;
            }
            if is_upload {
                let parked: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM pending_actions WHERE kind = 'upload' AND subject = ?1 AND state = 'pending'",
                        params![subject],
                    )?
                    .get(0)?;
                if parked >= MAX_PARKED_UPLOADS {
                    return Err(ApprovalError::TooManyParked { subject: subject.to_string(), max: MAX_PARKED_UPLOADS });
                }
            }
            tx.execute(
                "INSERT INTO pending_actions (id, kind, subject, target, approvers, required_by, state, created_ms,
                    expires_ms, input, fuel_limit, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9, ?10, ?11)",
                params![
                    id,
                    action.kind(),
                    subject,
                    target,
                    &approvers,
                    required_by,
                    now,
                    now.saturating_add(self.ttl_ms),
                    input,
                    fuel_limit,
                    &details_text,
                ],
            )?;
            Ok(find(tx, id)?.ok_or_else(|| StoreError::Refused(format!("the parked action `{id}` was not stored")))?)
        })
    }

    /// An approved transfer or upload that could not be made (not enough
    /// to send, refused again, a component that does not compile) waits
    /// again, saying why: its approvers may approve it once more, or
    /// reject it.
    pub fn reopen(&self, id: &str, why: &str) -> Result<(), ApprovalError> {
        store::write(&*self.db, Commit::Durable, |tx| {
            tx.execute(
                "UPDATE pending_actions SET state = 'pending', resolved_by = NULL, resolved_ms = NULL, reason = ?2
                 WHERE id = ?1 AND state = 'approved' AND kind IN ('transfer', 'upload')",
                params![id, why],
            )
        })?;
        Ok(())
    }

    /// An uploaded component is not kept twice: once the approved upload
    /// is made, its parked copy is dropped.
    pub fn drop_component(&self, id: &str) -> Result<(), ApprovalError> {
        store::write(&*self.db, Commit::Durable, |tx| {
            tx.execute("UPDATE pending_actions SET input = ?2 WHERE id = ?1 AND kind = 'upload'", params![id, NOTHING])
        })?;
        Ok(())
    }

    /// The action `id`, with expiry applied.
    pub fn get(&self, id: &str) -> Result<Option<PendingAction>, ApprovalError> {
        let found = store::read(&*self.db, |tx| find(tx, id))?;
        Ok(found.map(|action| self.as_of_now(action)))
    }

    /// `action` as it stands now: one still pending past its deadline is
    /// expired (so written by the next decision or parking; a read writes
    /// nothing).
    fn as_of_now(&self, mut action: PendingAction) -> PendingAction {
        if action.state == PendingState::Pending && action.expires_at_ms <= self.clock.now_ms() {
            action.state = PendingState::Expired;
        }
        action
    }

    /// Actions still waiting, oldest first; only those `approver` may
    /// decide when given (it is among their approvers and did not ask for
    /// them), every one when `None`.
    pub fn pending(&self, approver: Option<&str>) -> Result<Vec<PendingAction>, ApprovalError> {
        let now = self.clock.now_ms();
        let all: Vec<PendingAction> = store::read(&*self.db, |tx| {
            tx.query(
                &format!(
                    "SELECT {LISTED} FROM pending_actions WHERE state = 'pending' AND expires_ms > ?1
                     ORDER BY created_ms, id"
                ),
                params![now],
            )?
            .iter()
            .map(from_row)
            .collect::<Result<Vec<_>, StoreError>>()
        })?;
        Ok(all.into_iter().filter(|p| approver.is_none_or(|a| p.check_decider(a).is_ok())).collect())
    }

    fn expire(&self, tx: &mut dyn Tx) -> Result<(), StoreError> {
        tx.execute(
            "UPDATE pending_actions SET state = 'expired', input = CASE kind WHEN 'upload' THEN ?2 ELSE input END
             WHERE state = 'pending' AND expires_ms <= ?1",
            params![self.clock.now_ms(), NOTHING],
        )?;
        Ok(())
    }

    /// Decide on `id` as `decider`: approve (`reject = None`) or reject
    /// with a reason. An approved action stays approved: deciding it again
    /// returns it as it is, for the caller to (re)run idempotently.
    pub fn decide(&self, id: &str, decider: Decider<'_>, reject: Option<&str>) -> Result<PendingAction, ApprovalError> {
        let agent = decider.name();
        store::write(&*self.db, Commit::Durable, |tx| {
            self.expire(tx)?;
            let action = find(tx, id)?.ok_or_else(|| ApprovalError::Unknown(id.to_string()))?;
            if let Decider::Agent(agent) = decider {
                action.check_decider(agent)?;
            }
            match (action.state, reject) {
                (PendingState::Pending, None) => {
                    tx.execute(
                        "UPDATE pending_actions SET state = 'approved', resolved_by = ?2, resolved_ms = ?3 WHERE id = ?1",
                        params![id, agent, self.clock.now_ms()],
                    )?;
                }
                (PendingState::Pending, Some(reason)) => {
                    tx.execute(
                        "UPDATE pending_actions SET state = 'rejected', resolved_by = ?2, resolved_ms = ?3, reason = ?4,
                            input = CASE kind WHEN 'upload' THEN ?5 ELSE input END
                         WHERE id = ?1",
                        params![id, agent, self.clock.now_ms(), reason, NOTHING],
                    )?;
                }
                // Approving an approved action again: let the caller rerun it,
                // which replays the one recorded result.
                (PendingState::Approved, None) => return Ok(action),
                (state, _) => {
                    return Err(ApprovalError::AlreadyDecided {
                        id: id.to_string(),
                        state,
                        by: action.resolved_by.clone(),
                    })
                }
            }
            find(tx, id)?.ok_or_else(|| ApprovalError::Unknown(id.to_string()))
        })
    }
}

impl PendingAction {
    /// Whether `agent` may decide on this action: it is one of its
    /// approvers, and not the agent that asked for it.
    pub fn check_decider(&self, agent: &str) -> Result<(), ApprovalError> {
        let approvers = || self.approvers.join(", ");
        if !self.approvers.iter().any(|a| a == agent) {
            return Err(ApprovalError::NotAnApprover {
                id: self.id.clone(),
                agent: agent.to_string(),
                approvers: approvers(),
            });
        }
        if agent == self.subject {
            return Err(ApprovalError::OwnRequest {
                id: self.id.clone(),
                agent: agent.to_string(),
                approvers: approvers(),
            });
        }
        if self.kind == "transfer" && agent == self.target {
            return Err(ApprovalError::Beneficiary {
                id: self.id.clone(),
                agent: agent.to_string(),
                approvers: approvers(),
            });
        }
        Ok(())
    }
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals").field("ttl_ms", &self.ttl_ms).finish()
    }
}

/// The state's stable name.
impl std::fmt::Display for PendingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
