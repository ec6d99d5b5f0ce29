//! The workers: each takes the next task its agent may start (the
//! queue's order, the agent's `concurrent_tasks` cap), runs one attempt as
//! an invocation of its submitter, and records how it ended: completed,
//! retried after a backoff, parked while the host is busy, failed down its
//! dependants, or cancelled.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::breaker::Admission;
use super::{store, Scheduler, TaskRunner, TaskState, START_DELAYS_KEPT};
use crate::invocation::Invocation;

impl Scheduler {
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

    /// Read again, at most once a second each, the `concurrent_tasks` caps
    /// of the agents running tasks now (the only ones [`Scheduler::may_start`]
    /// asks about): before the queue's lock is taken, never under it, since
    /// a read is a round trip to the database.
    fn refresh_caps(&self) {
        const FRESH: Duration = Duration::from_secs(1);
        let agents: Vec<String> =
            self.running_by_agent.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        for agent in agents {
            let fresh = self
                .caps
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&agent)
                .is_some_and(|(_, read)| read.elapsed() < FRESH);
            if fresh {
                continue;
            }
            let cap = fuelhost_ledger::AgentId::new(&agent)
                .ok()
                .and_then(|a| self.ledger.allocations_of(&a).ok())
                .unwrap_or_default()
                .iter()
                .filter(|a| a.status == fuelhost_ledger::AllocationStatus::Active)
                .filter_map(|a| a.quota(fuelhost_ledger::Resource::ConcurrentTasks).map(|q| q.quota))
                .min();
            self.caps.lock().unwrap_or_else(|p| p.into_inner()).insert(agent, (cap, Instant::now()));
        }
    }

    /// Whether `agent` may start another task: under its `concurrent_tasks`
    /// cap (the smallest of its active allocations'), as last read.
    fn may_start(&self, agent: &str) -> bool {
        let running = self.running_by_agent.lock().unwrap_or_else(|p| p.into_inner()).get(agent).copied();
        match running {
            None | Some(0) => true,
            Some(n) => {
                let cap = self.caps.lock().unwrap_or_else(|p| p.into_inner()).get(agent).and_then(|(cap, _)| *cap);
                cap.is_none_or(|cap| (n as u64) < cap)
            }
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
        self.refresh_caps();
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
        let Ok(task) = self.get(id) else { return false };
        if task.cancel_requested || task.attempts >= task.max_attempts {
            return false;
        }
        let due = (self.now_ms() + backoff_ms(task.backoff_ms, task.attempts)).max(not_before_ms.unwrap_or(0));
        // Only a running task no cancel was asked for moves (one statement):
        // a cancel asked for before ends it cancelled; one after finds it
        // pending.
        match store::retry(&*self.db, id, due, error) {
            Ok(true) => {
                *self.retries.lock().unwrap_or_else(|p| p.into_inner()).entry(task.artifact.clone()).or_default() += 1;
                self.lock_queue().push_after(&task.submitter, id, task.priority, due);
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
        let run = self.ledger.host_run();
        let work = match store::start(&*self.db, id, run.as_deref()) {
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
                if let Err(e) = store::requeue(&*self.db, id) {
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
                    if let Err(e) = store::set_artifact(&*self.db, id, &choice.artifact) {
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
        if let Some(Err(crate::error::InvokeError::SettlementPending(_))) = &outcome {
            // It ran; its settlement is tried again in the background. The
            // task stays running until its usage record says how it ended
            // (`Scheduler::settle_interrupted`): never a second attempt.
            self.settling.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string());
            return;
        }
        let ran = match &outcome {
            Some(Ok(report)) => Some(report.outcome),
            _ => None,
        };
        let before = self.breakers.shared(&artifact);
        if self.breakers.record(&artifact, admission, ran, self.now_ms()) {
            tracing::warn!(artifact = %artifact, "circuit breaker opened: its tasks wait out the cool-down");
        }
        let (open_until_ms, times_opened) = self.breakers.shared(&artifact);
        if (open_until_ms, times_opened) != before {
            if let Err(e) = store::save_breaker(&*self.db, &artifact, open_until_ms, times_opened) {
                tracing::error!(artifact = %artifact, error = %e, "keeping a circuit breaker failed; other hosts count for themselves");
            }
        }
        let drained = self.drained.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        let aborted = matches!(&outcome, Some(Ok(r)) if r.outcome == fuelhost_ledger::Outcome::Aborted);
        if drained && aborted {
            // Interrupted by a drain (not one that ended first): it runs
            // again at the next open.
            if let Err(e) = store::requeue(&*self.db, id) {
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
                        | E::InvalidArguments { .. }
                        | E::WrongCall { .. }
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
        let Ok(task) = self.get(id) else { return };
        let due = self.now_ms() + BUSY_RETRY_MS;
        match store::postpone(&*self.db, id, due) {
            Ok(true) => {
                tracing::debug!(task = id, reason = %busy, "the host was busy; the task runs again shortly");
                self.lock_queue().push_after(&task.submitter, id, task.priority, due);
                self.queued.notify_one();
            }
            // A cancel was asked for: it ends cancelled, having run nothing.
            Ok(false) => self.end_attempt(id, TaskState::Cancelled, Some("cancelled by request".into()), false, None),
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
        if let Err(e) = store::finish(&*self.db, id, TaskState::Running, state, error.as_deref()) {
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
pub(super) fn outcome_state(outcome: fuelhost_ledger::Outcome, error: Option<&str>) -> (TaskState, Option<&str>) {
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

pub(super) fn rand_u64() -> u64 {
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
