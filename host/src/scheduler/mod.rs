//! The scheduler: invocations submitted as tasks, queued fairly, run by a
//! pool of workers, their state kept in the ledger's database.
//!
//! - `queue` decides which pending task runs next: priority with aging,
//!   agents taking turns, a depth limit per agent.
//! - `store` keeps every task and its state in the `tasks` table.
//! - `request` is what a submitter asks for, and why a submission fails.
//! - `worker` owns the workers. A worker takes the next task, marks it
//!   running, invokes its artifact as its submitter under the invocation
//!   id `task/<id>/<attempt>` (so the ledger charges each attempt at most
//!   once), and records how it ended.
//! - This module owns the `Scheduler`: opening (recovery), submission,
//!   dependencies, cancelling, waiting, draining.
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
mod request;
mod route;
mod store;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use breaker::Breakers;
pub use breaker::{BreakerState, BreakerStatus};
pub use queue::{Priority, QueueFull, RunQueue};
use request::checked_dependencies;
pub use request::{TaskError, TaskRequest};
pub use route::RouteMode;
pub(crate) use route::{choose as route_choose, Candidate, Choice};
use store::Readiness;

/// What [`Scheduler::record`] found.
enum Recorded {
    /// The task it recorded, and whether it may run yet.
    New(Task, Readiness),
    /// The task an earlier submit recorded under the id.
    Existing(Task),
}

/// `task`, stored under the id `req` asks for, if it is the same work of
/// the same submitter (a submit sent again); else the id is taken.
fn same_work(task: Task, req: &TaskRequest) -> Result<Task, TaskError> {
    let same = match &req.capability {
        Some(capability) => task.capability.as_ref() == Some(capability),
        None => task.capability.is_none() && task.artifact == req.artifact,
    };
    if task.submitter != req.submitter || !same {
        return Err(TaskError::Invalid(format!("task id `{}` is already used by another task", task.id)));
    }
    Ok(task)
}
pub use store::{Task, TaskState};
pub(crate) use store::{BREAKERS, TOPIC};
use worker::{outcome_state, rand_u64};

use crate::invocation::Invocation;
use crate::invocation::InvocationReport;
use fuelhost_store::Sql;

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
    db: Arc<dyn Sql>,
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
    /// How many times [`Scheduler::notify_finished`] was called: a
    /// waiter reads the task outside the lock, then waits only if no task
    /// ended meanwhile.
    finished_lock: Mutex<u64>,
    stopping: AtomicBool,
    /// The cancel flag of each running task.
    running: Mutex<std::collections::HashMap<String, Arc<AtomicBool>>>,
    /// Tasks whose attempt ran here and whose settlement the database
    /// refused (tried again in the background): they stay running until
    /// their usage record says how they ended.
    settling: Mutex<std::collections::HashSet<String>>,
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
        db: Arc<dyn Sql>,
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
            finished_lock: Mutex::new(0),
            stopping: AtomicBool::new(false),
            running: Mutex::new(std::collections::HashMap::new()),
            settling: Mutex::default(),
            drained: Mutex::default(),
            queued_at: Mutex::default(),
            start_delays: Mutex::default(),
            workers: Mutex::new(Vec::new()),
            breakers: Breakers::new(settings.breaker_failures, settings.breaker_cool_down.as_millis() as i64),
            retries: Mutex::default(),
            epoch: Instant::now(),
            epoch_ms: fuelhost_ledger::now_ms(),
        };
        scheduler.follow_breakers(None)?;
        scheduler.settle_interrupted()?;
        // A cancel asked for while a task ran, whose retry was recorded.
        for task in store::in_states(&*scheduler.db, &[TaskState::Pending])? {
            if task.cancel_requested {
                store::finish(
                    &*scheduler.db,
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
            for task in store::in_states(&*scheduler.db, &[TaskState::Pending])? {
                let readiness =
                    fuelhost_store::read(&*scheduler.db, |tx| store::readiness(tx, &task.id, &task.submitter))?;
                match readiness {
                    Readiness::Doomed(why) => {
                        store::finish(&*scheduler.db, &task.id, TaskState::Pending, TaskState::Failed, Some(&why))?;
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

    /// Take the breaker of `artifact` (every kept breaker, when `None`) as
    /// stored: another host opened or closed it (or an earlier run did).
    pub(crate) fn follow_breakers(&self, artifact: Option<&str>) -> Result<(), TaskError> {
        for (artifact, open_until_ms, times_opened) in store::breakers(&*self.db, artifact)? {
            self.breakers.adopt(&artifact, open_until_ms, times_opened);
        }
        Ok(())
    }

    /// Put each running task whose run was interrupted (its host stopped
    /// or died; its call settled as aborted, or never reserved) back as
    /// pending, or end it as its call ended; the ids put back. A task whose
    /// call another live host still runs is that host's, and left alone.
    fn settle_interrupted(&self) -> Result<Vec<String>, TaskError> {
        let ledger_error = |e: fuelhost_ledger::LedgerError| TaskError::Invalid(e.to_string());
        let mut requeued = Vec::new();
        let started_by = store::running_hosts(&*self.db)?;
        let this_run = self.ledger.host_run();
        for task in store::in_states(&*self.db, &[TaskState::Running])? {
            // Running here now: not interrupted.
            if self.running.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&task.id) {
                continue;
            }
            // Started by another host run that is still alive: its own.
            if let Some(Some(run)) = started_by.get(&task.id) {
                if this_run.as_ref() != Some(run) && !self.ledger.host_gone(run).map_err(ledger_error)? {
                    continue;
                }
            }
            let record = match &task.invocation_id {
                Some(inv) if self.ledger.held_elsewhere(inv).map_err(ledger_error)? => continue,
                Some(inv) => self.ledger.usage_record(inv).map_err(ledger_error)?,
                None => None,
            };
            // Ran here, its settlement still tried again: it ends from its
            // usage record once there is one.
            {
                let mut settling = self.settling.lock().unwrap_or_else(|p| p.into_inner());
                if settling.contains(&task.id) {
                    if record.is_none() {
                        continue;
                    }
                    settling.remove(&task.id);
                }
            }
            let cancelled = Some("cancelled by request");
            match record {
                _ if task.cancel_requested => {
                    store::finish(&*self.db, &task.id, TaskState::Running, TaskState::Cancelled, cancelled)?;
                }
                // Stopped by the stop itself (recovery aborts unsettled
                // calls, a drain interrupts running ones): not the task's
                // doing, so it runs again.
                Some(r) if r.outcome == fuelhost_ledger::Outcome::Aborted => {
                    store::requeue(&*self.db, &task.id)?;
                    requeued.push(task.id);
                }
                Some(r) => {
                    let (state, error) = outcome_state(r.outcome, r.error.as_deref());
                    let retry = matches!(state, TaskState::Failed | TaskState::TimedOut)
                        && task.attempts < task.max_attempts
                        && store::retry(&*self.db, &task.id, fuelhost_ledger::now_ms(), error)?;
                    if !retry {
                        store::finish(&*self.db, &task.id, TaskState::Running, state, error)?;
                    } else {
                        requeued.push(task.id);
                    }
                }
                None => {
                    store::requeue(&*self.db, &task.id)?;
                    requeued.push(task.id);
                }
            }
        }
        Ok(requeued)
    }

    /// Take over the tasks of hosts that died (on a database several hosts
    /// share): what [`Scheduler::settle_interrupted`] puts back is queued
    /// here. Called now and again, after the ledger took over their calls.
    pub(crate) fn take_over_interrupted(&self) -> Result<usize, TaskError> {
        let requeued = self.settle_interrupted()?;
        for id in &requeued {
            let Some(task) = fuelhost_store::read(&*self.db, |tx| store::get(tx, id))? else { continue };
            if task.state == TaskState::Pending {
                let due = task.next_attempt_ms.unwrap_or_else(|| self.now_ms());
                self.lock_queue().push_after(&task.submitter, &task.id, task.priority, due);
            }
        }
        if !requeued.is_empty() {
            self.queued.notify_all();
        }
        Ok(requeued.len())
    }

    /// Another host changed task `id` (on a database hosts share): it is
    /// queued here too while it waits to run (whichever host starts it
    /// first runs it: starting is one conditional update), dropped from
    /// this queue once it runs or ended elsewhere, and those waiting here
    /// for its end are woken.
    pub(crate) fn follow(&self, id: &str) -> Result<(), TaskError> {
        match fuelhost_store::read(&*self.db, |tx| store::get(tx, id))? {
            Some(task) => self.hold_as_stored(&task),
            None => Ok(()),
        }
    }

    /// [`Scheduler::follow`] for every task (changes may have been missed).
    pub(crate) fn follow_all(&self) -> Result<(), TaskError> {
        let pending = store::in_states(&*self.db, &[TaskState::Pending])?;
        let waiting: std::collections::HashSet<&str> = pending.iter().map(|t| t.id.as_str()).collect();
        let gone: Vec<String> =
            self.lock_queue().ids().into_iter().filter(|id| !waiting.contains(id.as_str())).collect();
        for id in gone {
            self.follow(&id)?;
        }
        for task in &pending {
            let deps = fuelhost_store::read(&*self.db, |tx| store::get(tx, &task.id))?;
            if let Some(task) = deps {
                self.hold_as_stored(&task)?;
            }
        }
        Ok(())
    }

    /// Hold `task` in this host's queue as its stored state says.
    fn hold_as_stored(&self, task: &Task) -> Result<(), TaskError> {
        match task.state {
            TaskState::Pending => {
                let readiness = if task.depends_on.is_empty() {
                    Readiness::Ready
                } else {
                    fuelhost_store::read(&*self.db, |tx| store::readiness(tx, &task.id, &task.submitter))?
                };
                let mut queue = self.lock_queue();
                if self.running.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&task.id) {
                    return Ok(());
                }
                if queue.contains(&task.id) {
                    if readiness == Readiness::Ready && queue.unpark(&task.id) {
                        drop(queue);
                        self.queued.notify_one();
                    }
                    return Ok(());
                }
                match (readiness, task.next_attempt_ms) {
                    (Readiness::Waiting, _) => {
                        queue.restore(&task.submitter, &task.id, task.priority, task.created_ms, true)
                    }
                    // The host that sees it end fails it.
                    (Readiness::Doomed(_), _) => return Ok(()),
                    (Readiness::Ready, Some(due)) => queue.push_after(&task.submitter, &task.id, task.priority, due),
                    (Readiness::Ready, None) => {
                        queue.restore(&task.submitter, &task.id, task.priority, task.created_ms, false)
                    }
                }
                drop(queue);
                self.queued.notify_one();
            }
            TaskState::Running => {
                self.lock_queue().remove(&task.id);
                if task.cancel_requested {
                    if let Some(flag) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&task.id) {
                        flag.store(true, Ordering::SeqCst);
                    }
                }
            }
            _ => {
                self.lock_queue().remove(&task.id);
                self.notify_finished();
                self.release_dependants(&task.id);
            }
        }
        Ok(())
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
        let id = req.id.clone().unwrap_or_else(|| format!("task-{:x}-{:016x}", fuelhost_ledger::now_ms(), rand_u64()));
        let deps = checked_dependencies(&id, &req.depends_on)?;
        // A place in the submitter's depth is held while the task is
        // recorded (the queue's lock is not held across the database's
        // round trips); the task is queued only once its row exists, so no
        // worker sees the id before.
        let reserved = self.lock_queue().reserve(&req.submitter);
        if let Err(full) = reserved {
            // A submit sent again (its answer lost) is answered even so.
            return match fuelhost_store::read(&*self.db, |tx| store::get(tx, &id))? {
                Some(task) => same_work(task, req),
                None => Err(full.into()),
            };
        }
        let recorded = self.record(&id, &deps, req);
        let mut queue = self.lock_queue();
        queue.unreserve(&req.submitter);
        let (task, readiness) = match recorded? {
            Recorded::New(task, readiness) => (task, readiness),
            Recorded::Existing(task) => return Ok(task),
        };
        let doomed = match readiness {
            Readiness::Ready => {
                queue.restore(&req.submitter, &id, req.priority, self.now_ms(), false);
                self.queued_at.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), Instant::now());
                None
            }
            Readiness::Waiting => {
                queue.restore(&req.submitter, &id, req.priority, self.now_ms(), true);
                None
            }
            Readiness::Doomed(why) => Some(why),
        };
        drop(queue);
        if let Some(why) = &doomed {
            store::finish(&*self.db, &id, TaskState::Pending, TaskState::Failed, Some(why))?;
        }
        self.queued.notify_one();
        // What it waits for may have ended between the read that found it
        // waiting and its parking (or it was cancelled meanwhile): the end's
        // release could not see it parked, so it is looked at once more.
        let doomed = doomed.is_some() || self.reconsider(&id);
        // Tasks already waiting for this id (submitted before it) may now
        // be doomed (if it is another agent's) or, if it failed, fail.
        self.release_dependants(&id);
        if doomed {
            self.notify_finished();
            return self.get(&id);
        }
        Ok(task)
    }

    /// Record task `id` of `req` (waiting for `deps`), with what it waits
    /// for; or, if an earlier submit (through any host) took the id, the
    /// task stored under it, when it is the same work of the same
    /// submitter (a retried submit), else an error.
    fn record(&self, id: &str, deps: &[String], req: &TaskRequest) -> Result<Recorded, TaskError> {
        if let Some(cycle) = fuelhost_store::read(&*self.db, |tx| store::cycle_through(tx, id, deps))? {
            return Err(TaskError::Cycle(cycle));
        }
        let (task, inserted) = store::insert(
            &*self.db,
            &store::NewTask {
                id,
                submitter: &req.submitter,
                artifact: &req.artifact,
                input: &req.input,
                priority: req.priority,
                fuel_limit: req.fuel_limit,
                max_attempts: req.max_attempts,
                backoff_ms: req.backoff.as_millis().min(u64::MAX as u128) as u64,
                timeout_ms: req.timeout.map(|t| t.as_millis().min(u64::MAX as u128) as u64),
                depends_on: deps,
                capability: req.capability.as_deref(),
                route_mode: req.capability.as_ref().map(|_| req.route_mode),
                max_price: req.max_price,
            },
        )?;
        if !inserted {
            return same_work(task, req).map(Recorded::Existing);
        }
        let readiness = if deps.is_empty() {
            Readiness::Ready
        } else {
            fuelhost_store::read(&*self.db, |tx| store::readiness(tx, id, &req.submitter))?
        };
        Ok(Recorded::New(task, readiness))
    }

    /// Task `id` ended or was just submitted: queue the parked tasks that
    /// waited only for it, and fail those it dooms, and theirs in turn.
    fn release_dependants(&self, id: &str) {
        let mut ended = vec![id.to_string()];
        while let Some(id) = ended.pop() {
            // Only a parked task can be waiting: with none, there is
            // nothing to look up (the common case, on every submit and end).
            // The queue's lock is taken for each look and move alone, never
            // across a read: a task moved meanwhile (cancelled, unparked by
            // another release) is passed over.
            if !self.lock_queue().has_parked() {
                return;
            }
            let mut failed_any = false;
            let dependants = match fuelhost_store::read(&*self.db, |tx| store::pending_dependants(tx, &id)) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(task = %id, error = %e, "reading a task's dependants failed; they wait for the next open");
                    continue;
                }
            };
            for dependant in dependants {
                if self.reconsider(&dependant) {
                    ended.push(dependant);
                    failed_any = true;
                }
            }
            if failed_any {
                self.notify_finished();
            }
        }
    }

    /// Look again at parked task `id`: queued if every task it waits for
    /// completed, failed if one ended otherwise (then `true`: its own
    /// dependants are to be looked at in turn), dropped from the queue if
    /// it is no longer pending (cancelled meanwhile).
    fn reconsider(&self, id: &str) -> bool {
        if !self.lock_queue().is_parked(id) {
            return false;
        }
        let readiness = self.get(id).and_then(|t| {
            if t.state != TaskState::Pending {
                return Ok(None);
            }
            Ok(Some(fuelhost_store::read(&*self.db, |tx| store::readiness(tx, id, &t.submitter))?))
        });
        match readiness {
            Ok(None) => drop(self.lock_queue().remove(id)),
            Ok(Some(Readiness::Ready)) => {
                if self.lock_queue().unpark(id) {
                    self.queued_at.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), Instant::now());
                    self.queued.notify_one();
                }
            }
            Ok(Some(Readiness::Waiting)) => {}
            Ok(Some(Readiness::Doomed(why))) => {
                if !self.lock_queue().remove(id) {
                    return false;
                }
                let failed = store::finish(&*self.db, id, TaskState::Pending, TaskState::Failed, Some(&why));
                if let Err(e) = failed {
                    tracing::error!(task = %id, error = %e, "failing a doomed task failed; it is failed at the next open");
                }
                return true;
            }
            Err(e) => tracing::error!(task = %id, error = %e, "checking a waiting task failed"),
        }
        false
    }

    /// The task `id`.
    pub(crate) fn get(&self, id: &str) -> Result<Task, TaskError> {
        fuelhost_store::read(&*self.db, |tx| store::get(tx, id))?.ok_or_else(|| TaskError::Unknown(id.to_string()))
    }

    /// Cancel a task: a pending one is taken out of the queue; a running
    /// one is stopped at the next epoch tick (it ends `cancelled`, its
    /// invocation `aborted` and charged for the fuel it burned), and is
    /// returned still running. Under deterministic fuel a fuel run stops
    /// at its next call into the host; one that makes none ends as it
    /// would have, and is then `cancelled` unless it completed.
    pub(crate) fn cancel(&self, id: &str) -> Result<Task, TaskError> {
        // Each move is one conditional statement on the task's row, so a
        // cancel racing an attempt's start, end or retry (on this host or
        // another) finds the state it acts on, or looks again: a few times
        // at most, since every look follows a move of the task's.
        for _ in 0..16 {
            let task = self.get(id)?;
            match task.state {
                TaskState::Running => {
                    // Recorded first, so the task ends cancelled whatever its
                    // attempt is doing: about to start, running, or ending.
                    if !store::request_cancel(&*self.db, id)? {
                        continue;
                    }
                    if let Some(flag) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
                        flag.store(true, Ordering::SeqCst);
                    }
                    return self.get(id);
                }
                TaskState::Pending => {
                    // Durable before the caller is told.
                    if !store::cancel_pending(&*self.db, id, "cancelled by request")? {
                        continue;
                    }
                    self.lock_queue().remove(id);
                    self.queued_at.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
                    self.notify_finished();
                    self.release_dependants(id);
                    return self.get(id);
                }
                state => return Err(TaskError::NotCancellable(id.to_string(), state.as_str())),
            }
        }
        Err(TaskError::Storage(fuelhost_store::StoreError::Storage(format!(
            "task `{id}` kept changing state while being cancelled; try again"
        ))))
    }

    /// Wait until task `id` reaches a final state, or `timeout` passes.
    pub(crate) fn wait(&self, id: &str, timeout: Duration) -> Result<Task, TaskError> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = *self.finished_lock.lock().unwrap_or_else(|p| p.into_inner());
            let task = self.get(id)?;
            if task.state.is_final() || Instant::now() >= deadline {
                return Ok(task);
            }
            let mut ended = self.finished_lock.lock().unwrap_or_else(|p| p.into_inner());
            while *ended == seen {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                ended = self.finished.wait_timeout(ended, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
            }
        }
    }

    fn notify_finished(&self) {
        *self.finished_lock.lock().unwrap_or_else(|p| p.into_inner()) += 1;
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
}

/// How many start delays are kept (the latest).
const START_DELAYS_KEPT: usize = 1 << 20;
