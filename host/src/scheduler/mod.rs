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
//! the epoch callback checks at every tick (under deterministic fuel, at
//! every call into the host instead): the guest stops, the invocation
//! settles `aborted` (charged for the fuel it burned, no price) and the
//! task ends `cancelled`.
//!
//! Tasks are reachable from the embedding API ([`crate::Host::submit_task`]),
//! over HTTP (`/v1/tasks`) and from the CLI (`fuelhost task`). Guests
//! submit through the `tasks` import (`capabilities`), as their owner.
//!
//! **Handoff** (`route`): a task may name a capability instead of an
//! artifact; the artifact is chosen at submission and again at each
//! attempt among those declaring it (breakers open passed over).
//!
//! **Circuit breakers** (`breaker`): an artifact whose attempts keep
//! failing by its own fault stops being run for a cool-down; a task taken
//! meanwhile fails that attempt `circuit_open` without running and is
//! retried by its policy once the breaker lets a trial through.
//!
//! **Dependencies.** A task may wait for other tasks of its submitter,
//! named by id, submitted before or after it. It is parked (counted in its
//! agent's depth, never taken) until all of them completed, then queued,
//! aged from its submission. When one of them fails, is cancelled or times
//! out, the task fails with that reason, and so on down its dependants. A
//! submission that would close a cycle is refused with the cycle.
//!
//! **Timeouts.** A task may cap each attempt's wall time below its
//! artifact's timeout; an attempt stopped by either ends `timed_out`
//! (charged for the fuel it burned) and is retried like a failure.
//!
//! A failed attempt with attempts left goes back to `pending` with a due
//! time (`backoff` doubled per retry, ±20% jitter); the queue holds it
//! until then, and a restart keeps the due time.

mod breaker;
pub mod queue;
mod route;
mod store;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use breaker::{Admission, Breakers};
pub use breaker::{BreakerState, BreakerStatus};
pub use queue::{Priority, QueueFull, RunQueue};
pub use route::RouteMode;
pub(crate) use route::{choose as route_choose, Candidate, Choice};
use store::Readiness;
pub use store::{Task, TaskState};

use crate::invocation::Invocation;
use crate::invocation::InvocationReport;
use fuelhost_sqlite::Database;

/// What the scheduler's workers need of the host: a capability routed to
/// an artifact, and an invocation run through the pipeline.
pub(crate) trait TaskRunner: Send + Sync {
    /// The artifact a task of `submitter` naming `capability` goes to now.
    fn route(
        &self,
        capability: &str,
        mode: RouteMode,
        submitter: &str,
        max_price: Option<u64>,
    ) -> Result<Choice, TaskError>;
    /// Run `req` as an invocation from outside the host.
    fn run(self: Arc<Self>, req: Invocation) -> Result<InvocationReport, crate::error::InvokeError>;
}

/// What an artifact's `tasks` import reaches: it submits tasks (as its
/// principal, which the import sets) and reads them. What the import holds
/// instead of the host.
pub(crate) trait TaskDesk: Send + Sync {
    /// Check `req` (its submitter and artifact exist; a capability is
    /// routed to an artifact), then queue it.
    fn submit(&self, req: TaskRequest) -> Result<Task, TaskError>;
    /// The task `id`.
    fn task(&self, id: &str) -> Result<Task, TaskError>;
}

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
    /// Worker threads (default: four per core, at most 32: a worker
    /// mostly waits for its settlement's fsync, and more of them share
    /// one; at 1,000 tasks/s on two cores, eight workers kept the p99
    /// start delay at 8 ms where two let it reach 60 ms).
    pub workers: usize,
    /// A task's effective priority rises one class per this much waiting.
    pub aging_step: Duration,
    /// Most tasks one agent may have queued.
    pub max_queued_per_agent: usize,
    /// Failures in a row (by the artifact's fault) that open its breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses before letting a trial through.
    pub breaker_cool_down: Duration,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            workers: (4 * std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)).min(32),
            aging_step: Duration::from_secs(5),
            max_queued_per_agent: 10_000,
            breaker_failures: 5,
            breaker_cool_down: Duration::from_secs(30),
        }
    }
}

/// The scheduler's numbers, for the metrics.
#[derive(Default)]
pub(crate) struct SchedulerSnapshot {
    /// Tasks queued and ready to run (not parked, not waiting a backoff).
    pub queued: usize,
    /// Tasks running now.
    pub running: usize,
    /// Retries scheduled since the host started, by artifact.
    pub retries: std::collections::BTreeMap<String, u64>,
    /// The circuit breakers that have seen a failure.
    pub breakers: Vec<BreakerStatus>,
}

/// The queue, its workers and the tasks' states.
pub(crate) struct Scheduler {
    db: Arc<Database>,
    ledger: Arc<dyn fuelhost_ledger::Ledger>,
    /// Tasks each agent has running (taken from the queue, not yet ended).
    running_by_agent: Mutex<std::collections::HashMap<String, usize>>,
    /// Each agent's `concurrent_tasks` cap, and when it was read.
    caps: Mutex<std::collections::HashMap<String, (Option<u64>, Instant)>>,
    queue: Mutex<RunQueue>,
    /// Signalled when a task is queued or the scheduler stops.
    queued: Condvar,
    /// Signalled when a task reaches a final state.
    finished: Condvar,
    finished_lock: Mutex<()>,
    stopping: AtomicBool,
    /// The cancel flag of each running task.
    running: Mutex<std::collections::HashMap<String, Arc<AtomicBool>>>,
    /// When each task queued straight from its submission (or from its
    /// dependencies completing) was queued.
    queued_at: Mutex<std::collections::HashMap<String, Instant>>,
    /// Delays from queued to taken of the latest tasks, ns.
    start_delays: Mutex<std::collections::VecDeque<u64>>,
    /// Running tasks a drain interrupted: put back as pending, not
    /// cancelled.
    drained: Mutex<std::collections::HashSet<String>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    breakers: Breakers,
    /// Retries scheduled since the host started, by artifact.
    retries: Mutex<std::collections::BTreeMap<String, u64>>,
    epoch: Instant,
    epoch_ms: i64,
}

impl Scheduler {
    /// A scheduler on `db`, with every pending task (and every task a stop
    /// interrupted) queued again.
    pub(crate) fn open(
        db: Arc<Database>,
        settings: &SchedulerSettings,
        ledger: Arc<dyn fuelhost_ledger::Ledger>,
    ) -> Result<Scheduler, TaskError> {
        let scheduler = Scheduler {
            db,
            ledger: ledger.clone(),
            running_by_agent: Mutex::default(),
            caps: Mutex::default(),
            queue: Mutex::new(RunQueue::new(settings.aging_step.as_millis() as i64, settings.max_queued_per_agent)),
            queued: Condvar::new(),
            finished: Condvar::new(),
            finished_lock: Mutex::new(()),
            stopping: AtomicBool::new(false),
            running: Mutex::new(std::collections::HashMap::new()),
            drained: Mutex::default(),
            queued_at: Mutex::default(),
            start_delays: Mutex::default(),
            workers: Mutex::new(Vec::new()),
            breakers: Breakers::new(settings.breaker_failures, settings.breaker_cool_down.as_millis() as i64),
            retries: Mutex::default(),
            epoch: Instant::now(),
            epoch_ms: fuelhost_sqlite::now_ms(),
        };
        for task in store::in_states(&scheduler.db, &[TaskState::Running])? {
            let record = match &task.invocation_id {
                Some(inv) => ledger.usage_record(inv).map_err(|e| TaskError::Invalid(e.to_string()))?,
                None => None,
            };
            let cancelled = Some("cancelled by request");
            match record {
                _ if task.cancel_requested => {
                    store::finish(&scheduler.db, &task.id, TaskState::Running, TaskState::Cancelled, cancelled)?;
                }
                // Stopped by the stop itself (recovery aborts unsettled
                // calls, a drain interrupts running ones): not the task's
                // doing, so it runs again.
                Some(r) if r.outcome == fuelhost_ledger::Outcome::Aborted => store::requeue(&scheduler.db, &task.id)?,
                Some(r) => {
                    let (state, error) = outcome_state(r.outcome, r.error.as_deref());
                    let retry = matches!(state, TaskState::Failed | TaskState::TimedOut)
                        && task.attempts < task.max_attempts
                        && store::retry(&scheduler.db, &task.id, fuelhost_sqlite::now_ms(), error)?;
                    if !retry {
                        store::finish(&scheduler.db, &task.id, TaskState::Running, state, error)?;
                    }
                }
                None => store::requeue(&scheduler.db, &task.id)?,
            }
        }
        // A cancel asked for while a task ran, whose retry was recorded.
        for task in store::in_states(&scheduler.db, &[TaskState::Pending])? {
            if task.cancel_requested {
                store::finish(
                    &scheduler.db,
                    &task.id,
                    TaskState::Pending,
                    TaskState::Cancelled,
                    Some("cancelled by request"),
                )?;
            }
        }
        // A pending task whose dependency ended without completing fails,
        // which may doom tasks waiting for it in turn: until none is left.
        let pending = loop {
            let mut waiting = Vec::new();
            let mut doomed = false;
            for task in store::in_states(&scheduler.db, &[TaskState::Pending])? {
                let readiness = store::readiness(&scheduler.db.read(), &task.id, &task.submitter)?;
                match readiness {
                    Readiness::Doomed(why) => {
                        store::finish(&scheduler.db, &task.id, TaskState::Pending, TaskState::Failed, Some(&why))?;
                        doomed = true;
                    }
                    other => waiting.push((task, other)),
                }
            }
            if !doomed {
                break waiting;
            }
        };
        {
            let mut queue = scheduler.lock_queue();
            for (task, readiness) in pending {
                // Accepted before the stop: queued whatever the depth limit says now.
                match (readiness, task.next_attempt_ms) {
                    (Readiness::Waiting, _) => {
                        queue.restore(&task.submitter, &task.id, task.priority, task.created_ms, true);
                    }
                    (_, Some(due)) => queue.push_after(&task.submitter, &task.id, task.priority, due),
                    (_, None) => queue.restore(&task.submitter, &task.id, task.priority, task.created_ms, false),
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
        let id = req.id.clone().unwrap_or_else(|| format!("task-{:x}-{:016x}", fuelhost_sqlite::now_ms(), rand_u64()));
        let deps = checked_dependencies(&id, &req.depends_on)?;
        // The queue lock is held across the insert, so the depth check and
        // the push agree, and no worker sees the id before its row exists.
        let mut queue = self.lock_queue();
        if let Some(existing) = store::get(&self.db.read(), &id)? {
            let same_work = match &req.capability {
                Some(capability) => existing.capability.as_ref() == Some(capability),
                None => existing.capability.is_none() && existing.artifact == req.artifact,
            };
            if existing.submitter != req.submitter || !same_work {
                return Err(TaskError::Invalid(format!("task id `{id}` is already used by another task")));
            }
            return Ok(existing);
        }
        if queue.depth(&req.submitter) >= queue.max_depth() {
            return Err(QueueFull::Depth { agent: req.submitter.clone(), max_depth: queue.max_depth() }.into());
        }
        if let Some(cycle) = store::cycle_through(&self.db.read(), &id, &deps)? {
            return Err(TaskError::Cycle(cycle));
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
                timeout_ms: req.timeout.map(|t| t.as_millis().min(u64::MAX as u128) as u64),
                depends_on: &deps,
                capability: req.capability.as_deref(),
                route_mode: req.capability.as_ref().map(|_| req.route_mode),
                max_price: req.max_price,
            },
        )?;
        let readiness =
            if deps.is_empty() { Readiness::Ready } else { store::readiness(&self.db.read(), &id, &req.submitter)? };
        let doomed = match readiness {
            Readiness::Ready => {
                queue.push(&req.submitter, &id, req.priority, self.now_ms())?;
                self.queued_at.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), Instant::now());
                false
            }
            Readiness::Waiting => queue.park(&req.submitter, &id, req.priority, self.now_ms()).map(|()| false)?,
            Readiness::Doomed(why) => {
                store::finish(&self.db, &id, TaskState::Pending, TaskState::Failed, Some(&why))?;
                true
            }
        };
        drop(queue);
        self.queued.notify_one();
        // Tasks already waiting for this id (submitted before it) may now
        // be doomed (if it is another agent's) or, if it failed, fail.
        self.release_dependants(&id);
        if doomed {
            self.notify_finished();
            return self.get(&id);
        }
        Ok(task)
    }

    /// Task `id` ended or was just submitted: queue the parked tasks that
    /// waited only for it, and fail those it dooms, and theirs in turn.
    fn release_dependants(&self, id: &str) {
        let mut ended = vec![id.to_string()];
        while let Some(id) = ended.pop() {
            let mut queue = self.lock_queue();
            // Only a parked task can be waiting: with none, there is
            // nothing to look up (the common case, on every submit and end).
            if !queue.has_parked() {
                return;
            }
            let mut failed_any = false;
            let dependants = match store::pending_dependants(&self.db.read(), &id) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(task = %id, error = %e, "reading a task's dependants failed; they wait for the next open");
                    continue;
                }
            };
            for dependant in dependants {
                if !queue.is_parked(&dependant) {
                    continue;
                }
                let readiness =
                    self.get(&dependant).and_then(|t| Ok(store::readiness(&self.db.read(), &dependant, &t.submitter)?));
                match readiness {
                    Ok(Readiness::Ready) => {
                        queue.unpark(&dependant);
                        self.queued_at
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(dependant.clone(), Instant::now());
                        self.queued.notify_one();
                    }
                    Ok(Readiness::Waiting) => {}
                    Ok(Readiness::Doomed(why)) => {
                        queue.remove(&dependant);
                        let failed =
                            store::finish(&self.db, &dependant, TaskState::Pending, TaskState::Failed, Some(&why));
                        if let Err(e) = failed {
                            tracing::error!(task = %dependant, error = %e, "failing a doomed task failed; it is failed at the next open");
                        }
                        ended.push(dependant);
                        failed_any = true;
                    }
                    Err(e) => tracing::error!(task = %dependant, error = %e, "checking a waiting task failed"),
                }
            }
            drop(queue);
            if failed_any {
                self.notify_finished();
            }
        }
    }

    /// The task `id`.
    pub(crate) fn get(&self, id: &str) -> Result<Task, TaskError> {
        store::get(&self.db.read(), id)?.ok_or_else(|| TaskError::Unknown(id.to_string()))
    }

    /// Cancel a task: a pending one is taken out of the queue; a running
    /// one is stopped at the next epoch tick (it ends `cancelled`, its
    /// invocation `aborted` and charged for the fuel it burned), and is
    /// returned still running. Under deterministic fuel a fuel run stops
    /// at its next call into the host; one that makes none ends as it
    /// would have, and is then `cancelled` unless it completed.
    pub(crate) fn cancel(&self, id: &str) -> Result<Task, TaskError> {
        let mut queue = self.lock_queue();
        let task = self.get(id)?;
        if task.state == TaskState::Running {
            // Recorded first, so the task ends cancelled whatever its
            // attempt is doing: about to start, running, or being retried.
            store::request_cancel(&self.db, id)?;
            if let Some(flag) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
                flag.store(true, Ordering::SeqCst);
            }
            return self.get(id);
        }
        if task.state != TaskState::Pending {
            return Err(TaskError::NotCancellable(id.to_string(), task.state.as_str()));
        }
        queue.remove(id);
        self.queued_at.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        // Durable before the caller is told.
        store::cancel_pending(&self.db, id, "cancelled by request")?;
        drop(queue);
        self.notify_finished();
        self.release_dependants(id);
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

    /// Stop taking tasks, give the running ones until `deadline` to end,
    /// then interrupt the rest at the next epoch tick (each charged the
    /// fuel it burned and put back as pending, to run again at the next
    /// open), and wait for the workers to exit. How many were interrupted.
    pub(crate) fn drain(&self, deadline: Duration) -> usize {
        self.stopping.store(true, Ordering::SeqCst);
        drop(self.lock_queue());
        self.queued.notify_all();
        let until = Instant::now() + deadline;
        let running = || self.running.lock().unwrap_or_else(|p| p.into_inner()).len();
        while running() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let interrupted = {
            let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            let mut drained = self.drained.lock().unwrap_or_else(|p| p.into_inner());
            for (id, flag) in running.iter() {
                drained.insert(id.clone());
                flag.store(true, Ordering::SeqCst);
            }
            running.len()
        };
        self.stop();
        interrupted
    }

    /// Start `n` workers of `scheduler` running tasks on `runner` (the
    /// host). They hold it weakly: a dropped host stops them.
    pub(crate) fn start_workers(scheduler: &Arc<Scheduler>, runner: Weak<dyn TaskRunner>, n: usize) {
        for i in 0..n {
            let (weak, worker) = (runner.clone(), scheduler.clone());
            let spawned =
                std::thread::Builder::new().name(format!("fuelhost-task-{i}")).spawn(move || work(weak, worker));
            match spawned {
                Ok(handle) => scheduler.workers.lock().unwrap_or_else(|p| p.into_inner()).push(handle),
                Err(e) => tracing::error!(error = %e, "starting a task worker failed"),
            }
        }
    }

    /// How long the latest tasks waited from queued to taken by a worker.
    pub(crate) fn start_delays(&self) -> Vec<Duration> {
        self.start_delays.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|&ns| Duration::from_nanos(ns)).collect()
    }

    /// Every artifact's circuit breaker that has seen a failure.
    pub(crate) fn breakers(&self) -> Vec<BreakerStatus> {
        self.breakers.statuses(self.now_ms())
    }

    /// What the metrics show of the scheduler now.
    pub(crate) fn snapshot(&self) -> SchedulerSnapshot {
        SchedulerSnapshot {
            queued: self.lock_queue().len(),
            running: self.running.lock().unwrap_or_else(|p| p.into_inner()).len(),
            retries: self.retries.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            breakers: self.breakers(),
        }
    }

    /// The `concurrent_tasks` cap of `agent`'s active allocations (the
    /// smallest), read at most once a second.
    fn concurrency_cap(&self, agent: &str) -> Option<u64> {
        const FRESH: Duration = Duration::from_secs(1);
        let mut caps = self.caps.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cap, read)) = caps.get(agent) {
            if read.elapsed() < FRESH {
                return *cap;
            }
        }
        let cap = fuelhost_ledger::AgentId::new(agent)
            .ok()
            .and_then(|a| self.ledger.allocations_of(&a).ok())
            .unwrap_or_default()
            .iter()
            .filter(|a| a.status == fuelhost_ledger::AllocationStatus::Active)
            .filter_map(|a| a.quota(fuelhost_ledger::Resource::ConcurrentTasks).map(|q| q.quota))
            .min();
        caps.insert(agent.to_string(), (cap, Instant::now()));
        cap
    }

    /// Whether `agent` may start another task: under its cap.
    fn may_start(&self, agent: &str) -> bool {
        let running = self.running_by_agent.lock().unwrap_or_else(|p| p.into_inner()).get(agent).copied();
        match running {
            None | Some(0) => true,
            Some(n) => self.concurrency_cap(agent).is_none_or(|cap| (n as u64) < cap),
        }
    }

    /// A task of `agent` taken by [`Scheduler::next`] ended.
    fn done_running(&self, agent: &str) {
        let mut running = self.running_by_agent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(agent) {
            *n -= 1;
            if *n == 0 {
                running.remove(agent);
            }
        }
        drop(running);
        // An agent at its cap may start another now (told under the queue
        // lock, so a worker about to wait cannot miss it).
        let _queue = self.lock_queue();
        self.queued.notify_one();
    }

    /// The next task to run and its agent, waiting for one; `None` when
    /// stopping. An agent at its `concurrent_tasks` cap is passed over.
    fn next(&self) -> Option<(String, String)> {
        let mut queue = self.lock_queue();
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return None;
            }
            if let Some((agent, id)) = queue.pop(self.now_ms(), |agent| self.may_start(agent)) {
                if let Some(at) = self.queued_at.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
                    let mut delays = self.start_delays.lock().unwrap_or_else(|p| p.into_inner());
                    if delays.len() == START_DELAYS_KEPT {
                        delays.pop_front();
                    }
                    delays.push_back(at.elapsed().as_nanos() as u64);
                }
                *self.running_by_agent.lock().unwrap_or_else(|p| p.into_inner()).entry(agent.clone()).or_default() += 1;
                return Some((agent, id));
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
    /// left, after its backoff and not before `not_before_ms`; whether it
    /// did.
    fn retry(&self, id: &str, error: Option<&str>, not_before_ms: Option<i64>) -> bool {
        // Read under the queue lock, which a cancel holds: a cancel asked
        // for before now ends the task; one after finds it pending.
        let mut queue = self.lock_queue();
        let Ok(task) = self.get(id) else { return false };
        if task.cancel_requested || task.attempts >= task.max_attempts {
            return false;
        }
        let due = (self.now_ms() + backoff_ms(task.backoff_ms, task.attempts)).max(not_before_ms.unwrap_or(0));
        match store::retry(&self.db, id, due, error) {
            Ok(true) => {
                *self.retries.lock().unwrap_or_else(|p| p.into_inner()).entry(task.artifact.clone()).or_default() += 1;
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
    fn run(&self, host: &Weak<dyn TaskRunner>, id: &str) {
        // Registered before the task is marked running, so that a cancel
        // or a drain from then on finds its flag.
        let cancel = Arc::new(AtomicBool::new(false));
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), cancel.clone());
        self.attempt(host, id, cancel);
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// One attempt of task `id`, with its cancel flag.
    fn attempt(&self, host: &Weak<dyn TaskRunner>, id: &str, cancel: Arc<AtomicBool>) {
        let work = match store::start(&self.db, id) {
            Ok(Some(work)) => work,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(task = id, error = %e, "starting a task failed; it stays pending until the next open");
                return;
            }
        };
        if cancel.load(Ordering::SeqCst) {
            // Cancelled or drained before it could start.
            if self.drained.lock().unwrap_or_else(|p| p.into_inner()).remove(id) {
                if let Err(e) = store::requeue(&self.db, id) {
                    tracing::error!(task = id, error = %e, "putting back a drained task failed; the next open does");
                }
            } else {
                self.end_attempt(id, TaskState::Cancelled, Some("cancelled by request".into()), false, None);
            }
            return;
        }
        let mut artifact = work.artifact.clone();
        if let (Some(capability), Some(strong)) = (&work.capability, host.upgrade()) {
            // Handed over by capability: choose again for this attempt (an
            // artifact whose breaker opened meanwhile is passed over).
            let mode = work.route_mode.unwrap_or_default();
            match strong.route(capability, mode, &work.submitter, work.max_price) {
                Ok(choice) if choice.artifact != artifact => {
                    if let Err(e) = store::set_artifact(&self.db, id, &choice.artifact) {
                        tracing::warn!(task = id, error = %e, "recording the chosen artifact failed");
                    }
                    artifact = choice.artifact;
                }
                Ok(_) => {}
                Err(e) => {
                    drop(strong);
                    self.end_attempt(id, TaskState::Failed, Some(e.to_string()), true, None);
                    return;
                }
            }
        }
        let admission = self.breakers.admit(&artifact, self.now_ms());
        if let Admission::Refuse { until_ms } = admission {
            let error = format!(
                "circuit_open: artifact `{artifact}` failed too often in a row; its breaker lets a trial through \
                 at {until_ms} (Unix ms); this attempt did not run and was not charged"
            );
            self.end_attempt(id, TaskState::Failed, Some(error), true, Some(until_ms));
            return;
        }
        let mut req = Invocation::new(work.submitter, artifact.clone(), work.input).id(work.invocation_id);
        if let Some(fuel) = work.fuel_limit {
            req = req.fuel_limit(fuel);
        }
        if let Some(ms) = work.timeout_ms {
            req = req.timeout(Duration::from_millis(ms));
        }
        req.cancel = Some(cancel);
        let outcome = host.upgrade().map(|strong| strong.run(req));
        if let Some(Err(crate::error::InvokeError::Busy(busy))) = &outcome {
            // Nothing ran, nothing was charged, and it is not the
            // artifact's fault: try again shortly, the attempt not counted.
            self.postpone(id, busy);
            return;
        }
        let ran = match &outcome {
            Some(Ok(report)) => Some(report.outcome),
            _ => None,
        };
        if self.breakers.record(&artifact, admission, ran, self.now_ms()) {
            tracing::warn!(artifact = %artifact, "circuit breaker opened: its tasks wait out the cool-down");
        }
        let drained = self.drained.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        let aborted = matches!(&outcome, Some(Ok(r)) if r.outcome == fuelhost_ledger::Outcome::Aborted);
        if drained && aborted {
            // Interrupted by a drain (not one that ended first): it runs
            // again at the next open.
            if let Err(e) = store::requeue(&self.db, id) {
                tracing::error!(task = id, error = %e, "putting back a drained task failed; the next open does");
            }
            return;
        }
        let (state, error, retryable) = match outcome {
            None => return, // the host is gone: the next open recovers it
            Some(Ok(report)) => {
                let (s, e) = outcome_state(report.outcome, report.error.as_deref());
                (s, e.map(str::to_string), s != TaskState::Cancelled)
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
        self.end_attempt(id, state, error, retryable, None);
    }

    /// Put task `id`, whose attempt found the host busy, back in the queue
    /// for a little later, its attempt not counted.
    fn postpone(&self, id: &str, busy: &fuelhost_runtime::Busy) {
        let mut queue = self.lock_queue();
        let Ok(task) = self.get(id) else { return };
        let due = self.now_ms() + BUSY_RETRY_MS;
        match store::postpone(&self.db, id, due) {
            Ok(true) => {
                tracing::debug!(task = id, reason = %busy, "the host was busy; the task runs again shortly");
                queue.push_after(&task.submitter, id, task.priority, due);
                drop(queue);
                self.queued.notify_one();
            }
            Ok(false) => {}
            Err(e) => tracing::error!(task = id, error = %e, "postponing a task failed; it is rerun at the next open"),
        }
    }

    /// Record how an attempt of running task `id` ended: retried if it
    /// failed, may be retried and has attempts left (not before
    /// `not_before_ms`), else finished.
    fn end_attempt(
        &self,
        id: &str,
        state: TaskState,
        error: Option<String>,
        retryable: bool,
        not_before_ms: Option<i64>,
    ) {
        let failed = matches!(state, TaskState::Failed | TaskState::TimedOut);
        if failed && retryable && self.retry(id, error.as_deref(), not_before_ms) {
            return;
        }
        // A cancel asked for while it ran ends it cancelled, not failed.
        let (state, error) = match self.get(id) {
            Ok(t) if t.cancel_requested && state != TaskState::Completed => {
                (TaskState::Cancelled, Some("cancelled by request".to_string()))
            }
            _ => (state, error),
        };
        if let Err(e) = store::finish(&self.db, id, TaskState::Running, state, error.as_deref()) {
            tracing::error!(task = id, error = %e, "recording a task's end failed; it is finished at the next open");
            return;
        }
        self.notify_finished();
        self.release_dependants(id);
    }
}

/// The delay before the retry that follows attempt `attempt` (1-based):
/// `base` doubled per earlier retry, ±20% jitter, at most an hour.
fn backoff_ms(base: u64, attempt: u32) -> i64 {
    let exp = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(20)).min(3_600_000);
    let jitter = 0.8 + 0.4 * (rand_u64() % 1_000) as f64 / 1_000.0;
    (exp as f64 * jitter) as i64
}

/// The task state an invocation's `outcome` ends an attempt in, and why.
fn outcome_state(outcome: fuelhost_ledger::Outcome, error: Option<&str>) -> (TaskState, Option<&str>) {
    use fuelhost_ledger::Outcome;
    match outcome {
        Outcome::Success => (TaskState::Completed, None),
        Outcome::Timeout => (TaskState::TimedOut, Some(error.unwrap_or("timed out"))),
        Outcome::Aborted => (TaskState::Cancelled, Some(error.unwrap_or("cancelled while running"))),
        _ => (TaskState::Failed, Some(error.unwrap_or("the invocation failed"))),
    }
}

/// How long a task whose attempt found the host busy waits, ms.
const BUSY_RETRY_MS: i64 = 50;

/// How many start delays are kept (the latest).
const START_DELAYS_KEPT: usize = 1 << 20;

/// Most tasks one task may wait for.
const MAX_DEPENDENCIES: usize = 64;

/// `deps`, refused if one is empty, named twice, `id` itself, or if there
/// are too many.
fn checked_dependencies(id: &str, deps: &[String]) -> Result<Vec<String>, TaskError> {
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

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

/// A worker: run tasks until the scheduler stops.
fn work(host: Weak<dyn TaskRunner>, scheduler: Arc<Scheduler>) {
    while let Some((agent, id)) = scheduler.next() {
        scheduler.run(&host, &id);
        scheduler.done_running(&agent);
    }
}
