//! The scheduler: invocations submitted as tasks, queued fairly, run by a
//! pool of workers, their state kept in the ledger's database.
//!
//! - `queue` decides which pending task runs next: priority with aging,
//!   agents taking turns, a depth limit per agent.
//! - `store` keeps every task and its state in the `tasks` table.
//! - This module owns the workers. A worker takes the next task, marks it
//!   running, invokes its artifact as its submitter under the invocation
//!   id `task/<id>/<attempt>` (so the ledger charges each attempt at most
//!   once), and records how it ended.
//!
//! At open, pending tasks are queued again. A task that was running when
//! the host stopped is finished from its usage record if its invocation
//! settled, and queued again otherwise (nothing was charged for it).
//!
//! Cancelling a running task raises its invocation's cancel flag, which
//! the epoch callback checks at every tick: the guest stops, the
//! invocation settles `aborted` (charged for the fuel it burned, no
//! price) and the task ends `cancelled`.
//!
//! Tasks are reachable from the embedding API ([`crate::Host::submit_task`]),
//! over HTTP (`/v1/tasks`) and from the CLI (`fuelhost task`). Not built
//! yet: dependencies, circuit breakers, handoff by capability, submitting
//! from a guest.
//!
//! A failed attempt with attempts left goes back to `pending` with a due
//! time (`backoff` doubled per retry, ±20% jitter); the queue holds it
//! until then, and a restart keeps the due time.

pub mod queue;
mod store;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

pub use queue::{Priority, QueueFull, RunQueue};
pub use store::{Task, TaskState};

use crate::db::Database;
use crate::host::HostInner;
use crate::invoke::Invocation;

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
        }
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
    /// No task has this id.
    #[error("no task `{0}`")]
    Unknown(String),
    /// The task already ended.
    #[error("task `{0}` is already {1}; only a pending or running task can be cancelled")]
    NotCancellable(String, &'static str),
    /// The database failed; nothing changed.
    #[error("task storage: {0}")]
    Storage(#[from] rusqlite::Error),
}

impl From<QueueFull> for TaskError {
    fn from(QueueFull::Depth { agent, max_depth }: QueueFull) -> Self {
        TaskError::QueueFull { agent, max_depth }
    }
}

/// How the scheduler runs.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerSettings {
    /// Worker threads.
    pub workers: usize,
    /// A task's effective priority rises one class per this much waiting.
    pub aging_step: Duration,
    /// Most tasks one agent may have queued.
    pub max_queued_per_agent: usize,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            aging_step: Duration::from_secs(5),
            max_queued_per_agent: 10_000,
        }
    }
}

/// The queue, its workers and the tasks' states.
pub(crate) struct Scheduler {
    db: Arc<Database>,
    queue: Mutex<RunQueue>,
    /// Signalled when a task is queued or the scheduler stops.
    queued: Condvar,
    /// Signalled when a task reaches a final state.
    finished: Condvar,
    finished_lock: Mutex<()>,
    stopping: AtomicBool,
    /// The cancel flag of each running task.
    running: Mutex<std::collections::HashMap<String, Arc<AtomicBool>>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    epoch: Instant,
    epoch_ms: i64,
}

impl Scheduler {
    /// A scheduler on `db`, with every pending task (and every task a stop
    /// interrupted) queued again.
    pub(crate) fn open(
        db: Arc<Database>,
        settings: &SchedulerSettings,
        ledger: &dyn crate::ledger::Ledger,
    ) -> Result<Scheduler, TaskError> {
        let scheduler = Scheduler {
            db,
            queue: Mutex::new(RunQueue::new(settings.aging_step.as_millis() as i64, settings.max_queued_per_agent)),
            queued: Condvar::new(),
            finished: Condvar::new(),
            finished_lock: Mutex::new(()),
            stopping: AtomicBool::new(false),
            running: Mutex::new(std::collections::HashMap::new()),
            workers: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            epoch_ms: crate::db::now_ms(),
        };
        for task in store::in_states(&scheduler.db, &[TaskState::Running])? {
            let record = match &task.invocation_id {
                Some(inv) => ledger.usage_record(inv).map_err(|e| TaskError::Invalid(e.to_string()))?,
                None => None,
            };
            match record {
                Some(r) => {
                    let (state, error) =
                        outcome_state(r.outcome == crate::ledger::Outcome::Success, r.error.as_deref());
                    store::finish(&scheduler.db, &task.id, TaskState::Running, state, error)?;
                }
                None => store::requeue(&scheduler.db, &task.id)?,
            }
        }
        {
            let mut queue = scheduler.lock_queue();
            for task in store::in_states(&scheduler.db, &[TaskState::Pending])? {
                // Accepted before the stop: queued whatever the depth limit says now.
                match task.next_attempt_ms {
                    Some(due) => queue.push_after(&task.submitter, &task.id, task.priority, due),
                    None => {
                        let _ = queue.push(&task.submitter, &task.id, task.priority, task.created_ms);
                    }
                }
            }
        }
        Ok(scheduler)
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, RunQueue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Milliseconds on a clock that never goes back, aligned with Unix ms
    /// at open (task ages come from it).
    fn now_ms(&self) -> i64 {
        self.epoch_ms + self.epoch.elapsed().as_millis() as i64
    }

    /// Accept `req` (already validated by the host): record it, queue it.
    pub(crate) fn submit(&self, req: &TaskRequest) -> Result<Task, TaskError> {
        let id = req.id.clone().unwrap_or_else(|| format!("task-{:x}-{:016x}", crate::db::now_ms(), rand_u64()));
        // The queue lock is held across the insert, so the depth check and
        // the push agree, and no worker sees the id before its row exists.
        let mut queue = self.lock_queue();
        if let Some(existing) = store::get(&self.db.read(), &id)? {
            if existing.submitter != req.submitter || existing.artifact != req.artifact {
                return Err(TaskError::Invalid(format!("task id `{id}` is already used by another task")));
            }
            return Ok(existing);
        }
        if queue.depth(&req.submitter) >= queue.max_depth() {
            return Err(QueueFull::Depth { agent: req.submitter.clone(), max_depth: queue.max_depth() }.into());
        }
        let task = store::insert(
            &self.db,
            &store::NewTask {
                id: &id,
                submitter: &req.submitter,
                artifact: &req.artifact,
                input: &req.input,
                priority: req.priority,
                fuel_limit: req.fuel_limit,
                max_attempts: req.max_attempts,
                backoff_ms: req.backoff.as_millis().min(u64::MAX as u128) as u64,
            },
        )?;
        queue.push(&req.submitter, &id, req.priority, self.now_ms())?;
        drop(queue);
        self.queued.notify_one();
        Ok(task)
    }

    /// The task `id`.
    pub(crate) fn get(&self, id: &str) -> Result<Task, TaskError> {
        store::get(&self.db.read(), id)?.ok_or_else(|| TaskError::Unknown(id.to_string()))
    }

    /// Cancel a task: a pending one is taken out of the queue; a running
    /// one is stopped at the next epoch tick (it ends `cancelled`, its
    /// invocation `aborted` and charged for the fuel it burned), and is
    /// returned still running.
    pub(crate) fn cancel(&self, id: &str) -> Result<Task, TaskError> {
        let mut queue = self.lock_queue();
        let task = self.get(id)?;
        if task.state == TaskState::Running {
            if let Some(flag) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
                flag.store(true, Ordering::SeqCst);
            }
            return Ok(task);
        }
        if task.state != TaskState::Pending {
            return Err(TaskError::NotCancellable(id.to_string(), task.state.as_str()));
        }
        queue.remove(id);
        store::finish(&self.db, id, TaskState::Pending, TaskState::Cancelled, Some("cancelled by request"))?;
        drop(queue);
        self.notify_finished();
        self.get(id)
    }

    /// Wait until task `id` reaches a final state, or `timeout` passes.
    pub(crate) fn wait(&self, id: &str, timeout: Duration) -> Result<Task, TaskError> {
        let deadline = Instant::now() + timeout;
        let mut guard = self.finished_lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let task = self.get(id)?;
            let now = Instant::now();
            if task.state.is_final() || now >= deadline {
                return Ok(task);
            }
            guard = self.finished.wait_timeout(guard, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    fn notify_finished(&self) {
        let _guard = self.finished_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.finished.notify_all();
    }

    /// Stop handing out tasks and wait for the workers to exit (a worker
    /// holds the host only while it invokes, so a dropped host finds them
    /// waiting; the one dropping it, if a worker, is not waited for).
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        drop(self.lock_queue());
        self.queued.notify_all();
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        let me = std::thread::current().id();
        for worker in workers {
            if worker.thread().id() != me {
                let _ = worker.join();
            }
        }
    }

    /// Start `n` workers for the host behind `host`. They hold it weakly:
    /// a dropped host stops them.
    pub(crate) fn start_workers(host: &Arc<HostInner>, n: usize) {
        let scheduler = host.scheduler.clone();
        for i in 0..n {
            let (weak, scheduler) = (Arc::downgrade(host), scheduler.clone());
            let spawned =
                std::thread::Builder::new().name(format!("fuelhost-task-{i}")).spawn(move || work(weak, scheduler));
            match spawned {
                Ok(handle) => host.scheduler.workers.lock().unwrap_or_else(|p| p.into_inner()).push(handle),
                Err(e) => tracing::error!(error = %e, "starting a task worker failed"),
            }
        }
    }

    /// The next task to run, waiting for one; `None` when stopping.
    fn next(&self) -> Option<String> {
        let mut queue = self.lock_queue();
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return None;
            }
            if let Some((_, id)) = queue.pop(self.now_ms(), |_| true) {
                return Some(id);
            }
            // Woken by a submit or a stop, or when the next retry comes due.
            let wait = match queue.next_due_ms() {
                Some(due) => Duration::from_millis((due - self.now_ms()).clamp(1, 200) as u64),
                None => Duration::from_millis(200),
            };
            queue = self.queued.wait_timeout(queue, wait).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Schedule the next attempt of failed task `id` if it has attempts
    /// left; whether it did.
    fn retry(&self, id: &str, error: Option<&str>) -> bool {
        let Ok(task) = self.get(id) else { return false };
        if task.attempts >= task.max_attempts {
            return false;
        }
        let due = self.now_ms() + backoff_ms(task.backoff_ms, task.attempts);
        let mut queue = self.lock_queue();
        match store::retry(&self.db, id, due, error) {
            Ok(true) => {
                queue.push_after(&task.submitter, id, task.priority, due);
                drop(queue);
                self.queued.notify_one();
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::error!(task = id, error = %e, "scheduling a retry failed; the task ends failed");
                false
            }
        }
    }

    /// Run task `id` on the host behind `host` and record how it ended.
    /// The host is held only while the invocation runs, and let go before
    /// the end is recorded and waiters are told.
    fn run(&self, host: &Weak<HostInner>, id: &str) {
        let work = match store::start(&self.db, id) {
            Ok(Some(work)) => work,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(task = id, error = %e, "starting a task failed; it stays pending until the next open");
                return;
            }
        };
        let mut req = Invocation::new(work.submitter, work.artifact, work.input).id(work.invocation_id);
        if let Some(fuel) = work.fuel_limit {
            req = req.fuel_limit(fuel);
        }
        let cancel = Arc::new(AtomicBool::new(false));
        req.cancel = Some(cancel.clone());
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), cancel);
        let outcome = host.upgrade().map(|strong| crate::invoke::invoke(&strong, req));
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        let (state, error, retryable) = match outcome {
            None => return, // the host is gone: the next open recovers it
            Some(Ok(report)) if report.outcome == crate::ledger::Outcome::Aborted => {
                (TaskState::Cancelled, report.error.clone(), false)
            }
            Some(Ok(report)) => {
                let (s, e) = outcome_state(report.success, report.error.as_deref());
                (s, e.map(str::to_string), true)
            }
            Some(Err(e)) => {
                use crate::error::InvokeError as E;
                let permanent = matches!(
                    e,
                    E::Denied(_)
                        | E::UnknownArtifact(_)
                        | E::UnknownCaller(_)
                        | E::InvalidAgent(_)
                        | E::IdTaken(_)
                        | E::PendingApproval { .. }
                );
                (TaskState::Failed, Some(e.to_string()), !permanent)
            }
        };
        if state == TaskState::Failed && retryable && self.retry(id, error.as_deref()) {
            return;
        }
        if let Err(e) = store::finish(&self.db, id, TaskState::Running, state, error.as_deref()) {
            tracing::error!(task = id, error = %e, "recording a task's end failed; it is finished at the next open");
        }
        self.notify_finished();
    }
}

/// The delay before the retry that follows attempt `attempt` (1-based):
/// `base` doubled per earlier retry, ±20% jitter, at most an hour.
fn backoff_ms(base: u64, attempt: u32) -> i64 {
    let exp = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(20)).min(3_600_000);
    let jitter = 0.8 + 0.4 * (rand_u64() % 1_000) as f64 / 1_000.0;
    (exp as f64 * jitter) as i64
}

fn outcome_state(success: bool, error: Option<&str>) -> (TaskState, Option<&str>) {
    if success {
        (TaskState::Completed, None)
    } else {
        (TaskState::Failed, Some(error.unwrap_or("the invocation failed")))
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

/// A worker: run tasks until the scheduler stops.
fn work(host: Weak<HostInner>, scheduler: Arc<Scheduler>) {
    while let Some(id) = scheduler.next() {
        scheduler.run(&host, &id);
    }
}
