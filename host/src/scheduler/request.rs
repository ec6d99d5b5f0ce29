//! What a submitter asks for ([`TaskRequest`]) and why a submission or a
//! lookup fails ([`TaskError`]); the checks a request passes before it is
//! stored.

use std::time::Duration;

use super::{Priority, QueueFull, RouteMode};

/// A task to submit.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// The submitting agent; the invocation's caller.
    pub submitter: String,
    /// `owner/name@version`.
    pub artifact: String,
    /// Bytes passed to `run`.
    pub input: Vec<u8>,
    /// Its priority class.
    pub priority: Priority,
    /// Fuel cap for its invocation.
    pub fuel_limit: Option<u64>,
    /// Idempotency key: submitting the same id again returns the task
    /// already accepted.
    pub id: Option<String>,
    /// The most attempts (1, the default: no retry). A failed attempt
    /// (a trap, a timeout, a run error, a refusal that may pass, such as
    /// too little scrip) is retried after `backoff`, doubled each time,
    /// with ±20% jitter; a denial or an unknown artifact is not.
    pub max_attempts: u32,
    /// The first retry's delay.
    pub backoff: Duration,
    /// Cap on each attempt's wall time (the artifact's timeout still caps
    /// it too).
    pub timeout: Option<Duration>,
    /// Tasks (of the same submitter, by id) that must complete first.
    pub depends_on: Vec<String>,
    /// Hand the task to an artifact declaring this capability instead of
    /// `artifact` (which is then ignored): chosen at submission and again
    /// at each attempt, by `route_mode`, within `max_price` and what the
    /// submitter can pay.
    pub capability: Option<String>,
    /// How candidates for `capability` are weighed.
    pub route_mode: RouteMode,
    /// The most the submitter will pay per attempt when handed over.
    pub max_price: Option<u64>,
}

impl TaskRequest {
    /// `submitter` asks for `artifact` to run on `input`, at normal priority.
    pub fn new(submitter: impl Into<String>, artifact: impl Into<String>, input: impl Into<Vec<u8>>) -> TaskRequest {
        TaskRequest {
            submitter: submitter.into(),
            artifact: artifact.into(),
            input: input.into(),
            priority: Priority::Normal,
            fuel_limit: None,
            id: None,
            max_attempts: 1,
            backoff: Duration::from_secs(1),
            timeout: None,
            depends_on: Vec::new(),
            capability: None,
            route_mode: RouteMode::Standard,
            max_price: None,
        }
    }

    /// `submitter` asks for any artifact declaring `capability` to run on
    /// `input`, chosen by `mode`.
    pub fn for_capability(
        submitter: impl Into<String>,
        capability: impl Into<String>,
        mode: RouteMode,
        input: impl Into<Vec<u8>>,
    ) -> TaskRequest {
        let mut req = TaskRequest::new(submitter, String::new(), input);
        req.capability = Some(capability.into());
        req.route_mode = mode;
        req
    }

    /// Run only after task `id` (the same submitter's) completed.
    pub fn after(mut self, id: impl Into<String>) -> TaskRequest {
        self.depends_on.push(id.into());
        self
    }

    /// Stop each attempt after `timeout` of wall time.
    pub fn timeout(mut self, timeout: Duration) -> TaskRequest {
        self.timeout = Some(timeout);
        self
    }

    /// Retry a failed attempt, up to `max_attempts` in all, the first
    /// retry after `backoff`.
    pub fn retries(mut self, max_attempts: u32, backoff: Duration) -> TaskRequest {
        self.max_attempts = max_attempts.max(1);
        self.backoff = backoff;
        self
    }

    /// Set the priority class.
    pub fn priority(mut self, priority: Priority) -> TaskRequest {
        self.priority = priority;
        self
    }

    /// Set the idempotency key.
    pub fn id(mut self, id: impl Into<String>) -> TaskRequest {
        self.id = Some(id.into());
        self
    }
}

/// Why a task was not accepted or changed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The submitter's queue is full.
    #[error("`{agent}` already has {max_depth} tasks queued, the most an agent may; wait for some to finish")]
    QueueFull {
        /// The agent.
        agent: String,
        /// Its limit.
        max_depth: usize,
    },
    /// The request names an agent or artifact that does not exist, or an
    /// id already used for another task.
    #[error("{0}")]
    Invalid(String),
    /// Waiting for these dependencies would wait forever.
    #[error("the dependencies make a cycle: {}; a task cannot wait for itself, even through others", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// No task has this id.
    #[error("no task `{0}`")]
    Unknown(String),
    /// The task's artifact does not exist, or no artifact declares the
    /// capability it asks for (or none that is usable).
    #[error("{0}")]
    NoArtifact(String),
    /// Every artifact declaring the capability costs more than the task's
    /// `max_price`.
    #[error("{0}")]
    OverMaxPrice(String),
    /// The task already ended.
    #[error("task `{0}` is already {1}; only a pending or running task can be cancelled")]
    NotCancellable(String, &'static str),
    /// The database failed; nothing changed.
    #[error("task storage: {0}")]
    Storage(#[from] fuelhost_store::StoreError),
}

impl From<QueueFull> for TaskError {
    fn from(QueueFull::Depth { agent, max_depth }: QueueFull) -> Self {
        TaskError::QueueFull { agent, max_depth }
    }
}

/// Most tasks one task may wait for.
const MAX_DEPENDENCIES: usize = 64;

/// `deps`, refused if one is empty, named twice, `id` itself, or if there
/// are too many.
pub(super) fn checked_dependencies(id: &str, deps: &[String]) -> Result<Vec<String>, TaskError> {
    let mut out: Vec<String> = Vec::with_capacity(deps.len());
    for d in deps {
        if d.is_empty() {
            return Err(TaskError::Invalid("a dependency is an empty task id; name the task to wait for".into()));
        }
        if d == id {
            return Err(TaskError::Cycle(vec![id.to_string(), id.to_string()]));
        }
        if out.contains(d) {
            return Err(TaskError::Invalid(format!("`{d}` is named twice in depends_on; name each task once")));
        }
        out.push(d.clone());
    }
    if out.len() > MAX_DEPENDENCIES {
        return Err(TaskError::Invalid(format!(
            "a task may wait for at most {MAX_DEPENDENCIES} tasks, not {}; chain them through intermediate tasks",
            out.len()
        )));
    }
    Ok(out)
}
