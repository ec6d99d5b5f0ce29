//! The errors fuelhost reports to the people and programs using it. Each
//! variant names what failed and says what to do about it.

use crate::manifest::ManifestError;
use fuelhost_ledger::InvalidAgentId;
use fuelhost_ledger::{Asset, LedgerError};

/// Opening the host or managing agents failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The data directory or a file in it could not be used.
    #[error("data directory `{path}`: {source}")]
    DataDir {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// A store (keys, settings, approvals, ...) failed; nothing changed.
    #[error("database: {0}")]
    Store(#[from] fuelhost_store::StoreError),
    /// The wasmtime engine could not be configured.
    #[error("engine: {0}")]
    Engine(String),
    /// A stored artifact or plugin could not be loaded again.
    #[error("loading `{id}` from the registry: {reason}")]
    Load {
        /// Artifact or plugin id.
        id: String,
        /// Why.
        reason: String,
    },
    /// A malformed agent id.
    #[error(transparent)]
    InvalidAgent(#[from] InvalidAgentId),
    /// A request that makes no sense; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// The policy chain refused the action; nothing changed.
    #[error("{0}")]
    Denied(String),
    /// The ledger refused.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Policy rules that cannot be loaded.
    #[error(transparent)]
    Rules(#[from] fuelhost_policy::rules::RulesError),
    /// Moving history to the archive failed; what did not move stays in
    /// the database.
    #[error("archiving: {0}")]
    Archive(String),
    /// Parking an action for approval failed in storage.
    #[error("approvals storage: {0}")]
    Approvals(String),
    /// A policy parked the transfer until one of its approvers approves it
    /// (then it is made once) or rejects it. Nothing moved.
    #[error("needs approval by {approvers}: parked as pending action `{id}`; nothing moved yet")]
    PendingApproval {
        /// The pending action (`transfer:` and the transfer's id).
        id: String,
        /// Who may approve.
        approvers: String,
    },
}

/// An upload (artifact or policy plugin) was refused. The registry is
/// unchanged.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Over the size limit.
    #[error("component is {size} bytes, over the upload limit of {max} bytes; strip debug info (wasm-tools strip) or raise HostBuilder::max_component_bytes")]
    TooLarge {
        /// Size of the upload.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The manifest is wrong.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The owner has no account.
    #[error("owner `{0}` is not a known agent: create the agent before uploading")]
    UnknownOwner(String),
    /// This id is taken.
    #[error("`{0}` is already uploaded; versions are immutable, so upload a new version")]
    AlreadyExists(String),
    /// Not a component at all.
    #[error("{0}")]
    NotAComponent(String),
    /// The component does not compile.
    #[error("component does not compile: {0}")]
    Invalid(String),
    /// It imports something the host does not provide.
    #[error("component imports something the `{1}` world does not provide: {0}; {offered}", offered = offered(.1))]
    UnsatisfiableImport(String, &'static str),
    /// It does not export what the world requires.
    #[error("component does not fit the `{1}` world: {0}")]
    MissingExport(String, &'static str),
    /// The policy chain refused the upload.
    #[error("{0}")]
    Denied(String),
    /// The artifact id is parked for approval with other bytes or another
    /// manifest.
    #[error("`{0}` is waiting for approval with other bytes or another manifest: wait until it is decided, or upload another version")]
    ParkedWithOtherBytes(String),
    /// A policy parked the upload until one of its approvers approves it
    /// (then it is uploaded once) or rejects it.
    #[error("needs approval by {approvers}: parked as pending action `{id}`; not uploaded yet")]
    PendingApproval {
        /// The pending action (`upload:` and `owner:name@version`).
        id: String,
        /// Who may approve.
        approvers: String,
    },
    /// The bytes or metadata could not be stored: the database or the
    /// disk failed, and the same upload may succeed later.
    #[error("storing the upload failed: {0}")]
    Storage(String),
    /// The database refused what fuelhost asked of it, or what it holds is
    /// not what fuelhost wrote: a fault of fuelhost's, not the upload's;
    /// sending it again will not help.
    #[error("storing the upload failed: {0}")]
    Internal(String),
}

impl From<fuelhost_store::StoreError> for UploadError {
    fn from(e: fuelhost_store::StoreError) -> Self {
        if e.is_unavailable() {
            UploadError::Storage(e.to_string())
        } else {
            UploadError::Internal(e.to_string())
        }
    }
}

/// An invocation was refused before its guest ran (nothing was charged), or
/// the host failed around it.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No such artifact.
    #[error("unknown artifact `{0}`: upload it first, or check owner/name@version")]
    UnknownArtifact(String),
    /// The caller has no account.
    #[error("caller `{0}` is not a known agent")]
    UnknownCaller(String),
    /// A malformed agent id.
    #[error(transparent)]
    InvalidAgent(#[from] InvalidAgentId),
    /// The policy chain said no.
    #[error("{0}")]
    Denied(String),
    /// The caller cannot pay the price.
    #[error("`{agent}` has {available} scrip available, the price is {price}: nothing was charged")]
    InsufficientScrip {
        /// The caller.
        agent: String,
        /// Available scrip.
        available: u64,
        /// The price.
        price: u64,
    },
    /// The payer has no budget left for this resource.
    #[error("payer `{agent}` has no {asset} budget left ({available} available): nothing was charged")]
    InsufficientBudget {
        /// The payer.
        agent: String,
        /// The exhausted resource.
        asset: Asset,
        /// What was available.
        available: u64,
    },
    /// A policy requires approval: the invocation is parked under `id`
    /// until one of the approvers approves it (then it runs once) or
    /// rejects it. Nothing was charged.
    #[error("needs approval by {approvers}: parked as pending action `{id}`; nothing was charged")]
    PendingApproval {
        /// The pending action (and the invocation id it will run under).
        id: String,
        /// Who may approve.
        approvers: String,
    },
    /// The payer's allocation does not allow the charge (used up, expired,
    /// revoked, or at its concurrency cap).
    #[error("{0}: nothing was charged")]
    AllocationRefused(String),
    /// This invocation id is being run right now.
    #[error("invocation `{0}` is already in progress")]
    InProgress(String),
    /// This invocation id was used by another caller or for another
    /// artifact: ids are the caller's retry keys, not a way to read (or
    /// pre-empt) someone else's call.
    #[error("invocation id `{0}` belongs to another call: pick a fresh id (ids are retry keys, one per call)")]
    IdTaken(String),
    /// A caller-chosen id that breaks the id grammar (see
    /// [`crate::check_id`]).
    #[error("{0}")]
    InvalidId(String),
    /// The input is larger than the artifact takes.
    #[error(
        "the input is {size} bytes, over `{artifact}`'s limit of {limit} bytes (`limits.input_bytes`): send less; \
         nothing was charged"
    )]
    InputTooLarge {
        /// The artifact.
        artifact: String,
        /// Size of the input.
        size: u64,
        /// Its limit.
        limit: u64,
    },
    /// The artifact is called by function, and the input did not name one
    /// of its exports with arguments of the right types: nothing was
    /// charged.
    #[error("invalid arguments for `{artifact}`: {problem}")]
    InvalidArguments {
        /// The artifact.
        artifact: String,
        /// What was wrong, and what to send.
        problem: String,
    },
    /// The artifact is not called that way: an HTTP request to an artifact
    /// that is not a `wasi:http/proxy` component, or a call with an input
    /// to one that is. Nothing was charged.
    #[error("`{artifact}` is not called that way: {problem}")]
    WrongCall {
        /// The artifact.
        artifact: String,
        /// How it is called instead.
        problem: String,
    },
    /// No instance slot was free for the call (see `fuelhost_runtime::Slots`): it ran
    /// nothing and was charged nothing; retry shortly.
    #[error(transparent)]
    Busy(#[from] fuelhost_runtime::Busy),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(LedgerError),
    /// The sandbox could not be set up (not the guest's fault).
    #[error("setting up the sandbox failed: {0}")]
    Sandbox(String),
    /// The call ran, and the database refused its settlement: it is tried
    /// again until taken (ask again under the same id for the report).
    #[error("{0}")]
    SettlementPending(String),
}

/// What a component of `world` may import, for an upload refused over an
/// import.
fn offered(world: &str) -> &'static str {
    match world {
        "artifact" => {
            "an artifact (of any world) may import WASI 0.2 (cli, clocks, filesystem, io, random, sockets), \
             WASI 0.3 (cli, clocks, random, sockets), wasi:http/outgoing-handler@0.2 and \
             fuelhost:host/{ledger,policy,log,invoke,tasks}@0.1.0, and nothing else"
        }
        _ => "a policy plugin may import fuelhost:host/log@0.1.0 and WASI 0.2, and nothing else",
    }
}
