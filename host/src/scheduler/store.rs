//! The `tasks` table: every accepted task and its state, in the ledger's
//! database, so the queue survives a restart; and `task_dependencies`, the
//! edges from each task to the tasks it waits for.

use serde::Serialize;

use super::queue::Priority;
use fuelhost_ledger::now_ms;
use fuelhost_store::{self as sql, params, Commit, Row, Sql, StoreError, Tx};

/// The topic of changes to tasks (see `fuelhost_store::Tx::notify`): the
/// key is the task's id. Every write of a task's row tells it, so hosts
/// sharing a database queue, drop and wait for each other's tasks.
pub(crate) const TOPIC: &str = "tasks";

/// The topic of changes to circuit breakers: the key is the artifact.
pub(crate) const BREAKERS: &str = "breakers";

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Queued, waiting for a worker.
    Pending,
    /// A worker is running its invocation.
    Running,
    /// Its invocation succeeded.
    Completed,
    /// Its invocation failed, was refused, or ran out of a limit.
    Failed,
    /// Cancelled before it ran, or stopped while running.
    Cancelled,
    /// Its invocation ran past its timeout (the task's or the artifact's,
    /// whichever is shorter) and was stopped.
    TimedOut,
}

impl TaskState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
            TaskState::TimedOut => "timed_out",
        }
    }

    fn parse(s: &str) -> TaskState {
        match s {
            "pending" => TaskState::Pending,
            "running" => TaskState::Running,
            "completed" => TaskState::Completed,
            "cancelled" => TaskState::Cancelled,
            "timed_out" => TaskState::TimedOut,
            _ => TaskState::Failed,
        }
    }

    /// Whether the task will not change any more.
    pub fn is_final(self) -> bool {
        matches!(self, TaskState::Completed | TaskState::Failed | TaskState::Cancelled | TaskState::TimedOut)
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Task {
    /// Its id (the idempotency key when the submitter gave one).
    pub id: String,
    /// The agent that submitted it; the invocation's caller.
    pub submitter: String,
    /// `owner/name@version`.
    pub artifact: String,
    /// Its priority class.
    pub priority: Priority,
    /// Where it is.
    pub state: TaskState,
    /// How many times a worker started it.
    pub attempts: u32,
    /// The most attempts it may have (1: no retry).
    pub max_attempts: u32,
    /// When a pending retry may start (Unix ms), if it waits out a backoff.
    pub next_attempt_ms: Option<i64>,
    /// The invocation that ran it (its usage record has the output).
    pub invocation_id: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Unix ms of submission, start and end.
    pub created_ms: i64,
    /// When a worker last started it.
    pub started_ms: Option<i64>,
    /// When it reached a final state.
    pub finished_ms: Option<i64>,
    /// The first retry's delay; each next one doubles it.
    pub backoff_ms: u64,
    /// The task's own cap on each attempt's wall time, if it set one.
    pub timeout_ms: Option<u64>,
    /// The tasks it waits for (the same submitter's), which must all
    /// complete before it runs.
    pub depends_on: Vec<String>,
    /// The capability it was handed over by, if it named one instead of an
    /// artifact: `artifact` is then the one chosen for its latest attempt.
    pub capability: Option<String>,
    /// How candidates for the capability are weighed.
    pub route_mode: Option<super::RouteMode>,
    /// The most the submitter will pay per attempt when handed over.
    pub max_price: Option<u64>,
    /// Someone asked to cancel it while it ran: it ends `cancelled`
    /// instead of being retried or run again.
    pub cancel_requested: bool,
}

/// What a worker needs to run a task.
pub(crate) struct Work {
    /// `task/<id>/<attempt>`: each attempt is its own invocation.
    pub invocation_id: String,
    pub submitter: String,
    pub artifact: String,
    pub input: Vec<u8>,
    pub fuel_limit: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub capability: Option<String>,
    pub route_mode: Option<super::RouteMode>,
    pub max_price: Option<u64>,
}

const COLUMNS: &str = "id, submitter, artifact, priority, state, attempts, invocation_id, error, created_ms, \
     started_ms, finished_ms, max_attempts, not_before_ms, backoff_ms, timeout_ms, capability, route_mode, max_price, \
     cancel_requested";

fn from_row(r: &Row) -> Result<Task, StoreError> {
    Ok(Task {
        id: r.get(0)?,
        submitter: r.get(1)?,
        artifact: r.get(2)?,
        priority: Priority::parse(&r.get::<String>(3)?).unwrap_or(Priority::Normal),
        state: TaskState::parse(&r.get::<String>(4)?),
        attempts: r.get(5)?,
        invocation_id: r.get(6)?,
        error: r.get(7)?,
        created_ms: r.get(8)?,
        started_ms: r.get(9)?,
        finished_ms: r.get(10)?,
        max_attempts: r.get(11)?,
        next_attempt_ms: r.get(12)?,
        backoff_ms: r.get(13)?,
        timeout_ms: r.get(14)?,
        depends_on: Vec::new(),
        capability: r.get(15)?,
        route_mode: r.get::<Option<String>>(16)?.and_then(|m| super::RouteMode::parse(&m)),
        max_price: r.get(17)?,
        cancel_requested: r.get(18)?,
    })
}

/// The first column of each row of `sql`, as text.
fn texts(tx: &mut dyn Tx, sql: &str, id: &str) -> Result<Vec<String>, StoreError> {
    tx.query(sql, params![id])?.iter().map(|r| r.get(0)).collect()
}

pub(crate) fn get(tx: &mut dyn Tx, id: &str) -> Result<Option<Task>, StoreError> {
    let Some(row) = tx.query_opt(&format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1"), params![id])? else {
        return Ok(None);
    };
    let mut task = from_row(&row)?;
    task.depends_on = texts(tx, "SELECT depends_on FROM task_dependencies WHERE task = ?1 ORDER BY depends_on", id)?;
    Ok(Some(task))
}

/// The pending tasks that wait for `id`.
pub(crate) fn pending_dependants(tx: &mut dyn Tx, id: &str) -> Result<Vec<String>, StoreError> {
    texts(
        tx,
        "SELECT d.task FROM task_dependencies d JOIN tasks t ON t.id = d.task
         WHERE d.depends_on = ?1 AND t.state = 'pending' ORDER BY t.created_ms, t.id",
        id,
    )
}

/// Whether a task may run yet, by the states of the tasks it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Every dependency completed (or it has none).
    Ready,
    /// Some dependency has not ended yet, or is not submitted yet.
    Waiting,
    /// A dependency ended without completing: the task cannot run; why.
    Doomed(String),
}

/// Whether `id` (submitted by `submitter`) may run yet. A dependency
/// submitted by another agent dooms it: a task waits only for its own
/// submitter's tasks.
pub(crate) fn readiness(tx: &mut dyn Tx, id: &str, submitter: &str) -> Result<Readiness, StoreError> {
    let rows = tx.query(
        "SELECT d.depends_on, t.submitter, t.state, t.error FROM task_dependencies d
         LEFT JOIN tasks t ON t.id = d.depends_on WHERE d.task = ?1 ORDER BY d.depends_on",
        params![id],
    )?;
    let mut ready = Readiness::Ready;
    for r in &rows {
        let dep: String = r.get(0)?;
        let Some(owner) = r.get::<Option<String>>(1)? else {
            ready = Readiness::Waiting;
            continue;
        };
        if owner != submitter {
            return Ok(Readiness::Doomed(format!(
                "dependency `{dep}` is another agent's task; a task may wait only for its submitter's tasks"
            )));
        }
        let state = TaskState::parse(&r.get::<String>(2)?);
        match state {
            TaskState::Completed => {}
            TaskState::Failed | TaskState::Cancelled | TaskState::TimedOut => {
                let why = r.get::<Option<String>>(3)?.map(|e| format!(": {e}")).unwrap_or_default();
                return Ok(Readiness::Doomed(format!("dependency `{dep}` ended {}{why}", state.as_str())));
            }
            TaskState::Pending | TaskState::Running => ready = Readiness::Waiting,
        }
    }
    Ok(ready)
}

/// If `id` waiting for `deps` would close a cycle, the cycle, from `id`
/// back to it (`a -> b -> a`); the graph is walked through the
/// dependencies already recorded, including those on tasks not yet
/// submitted.
pub(crate) fn cycle_through(tx: &mut dyn Tx, id: &str, deps: &[String]) -> Result<Option<Vec<String>>, StoreError> {
    // Depth-first, each node once, remembering how it was reached.
    let mut came_from: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut stack: Vec<String> = Vec::new();
    for d in deps {
        if came_from.insert(d.clone(), id.to_string()).is_none() {
            stack.push(d.clone());
        }
    }
    while let Some(node) = stack.pop() {
        if node == id {
            let mut path = vec![id.to_string()];
            let mut at = came_from[id].clone();
            while at != id {
                path.push(at.clone());
                at = came_from[&at].clone();
            }
            path.push(id.to_string());
            path.reverse();
            return Ok(Some(path));
        }
        let next = texts(tx, "SELECT depends_on FROM task_dependencies WHERE task = ?1", &node)?;
        for n in next {
            if !came_from.contains_key(&n) {
                came_from.insert(n.clone(), node.clone());
                stack.push(n);
            }
        }
    }
    Ok(None)
}

/// Tasks in `states`, oldest first (their `depends_on` left empty).
pub(crate) fn in_states(db: &dyn Sql, states: &[TaskState]) -> Result<Vec<Task>, StoreError> {
    let list = states.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(",");
    sql::read(db, |tx| {
        tx.query(&format!("SELECT {COLUMNS} FROM tasks WHERE state IN ({list}) ORDER BY created_ms, id"), params![])?
            .iter()
            .map(from_row)
            .collect()
    })
}

pub(crate) struct NewTask<'a> {
    pub id: &'a str,
    pub submitter: &'a str,
    pub artifact: &'a str,
    pub input: &'a [u8],
    pub priority: Priority,
    pub fuel_limit: Option<u64>,
    pub max_attempts: u32,
    pub backoff_ms: u64,
    pub timeout_ms: Option<u64>,
    pub depends_on: &'a [String],
    pub capability: Option<&'a str>,
    pub route_mode: Option<super::RouteMode>,
    pub max_price: Option<u64>,
}

/// Record a new pending task and what it waits for (durable before it
/// returns): `(task, true)`; or, if its id is taken (by an earlier submit
/// through any host), the task stored under it and `false`, nothing
/// written.
pub(crate) fn insert(db: &dyn Sql, t: &NewTask<'_>) -> Result<(Task, bool), StoreError> {
    sql::write(db, Commit::Durable, |tx| {
        let inserted = tx.execute(
            "INSERT INTO tasks (id, submitter, artifact, input, priority, fuel_limit, state, created_ms,
                max_attempts, backoff_ms, timeout_ms, capability, route_mode, max_price)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (id) DO NOTHING",
            params![
                t.id,
                t.submitter,
                t.artifact,
                t.input,
                t.priority.as_str(),
                t.fuel_limit,
                now_ms(),
                t.max_attempts.max(1),
                t.backoff_ms,
                t.timeout_ms,
                t.capability,
                t.route_mode.map(|m| m.as_str()),
                t.max_price,
            ],
        )? > 0;
        if inserted {
            for dep in t.depends_on {
                tx.execute(
                    "INSERT INTO task_dependencies (task, depends_on) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![t.id, dep],
                )?;
            }
            tx.notify(TOPIC, t.id)?;
        }
        let task = get(tx, t.id)?.ok_or_else(|| StoreError::Refused(format!("the task `{}` was not stored", t.id)))?;
        Ok((task, inserted))
    })
}

// A task's moves after its submission (start, end, retry) are deferred:
// committed with the next durable commit, at the latest its invocation's
// settlement, or by the flusher a few ms later. A crash that loses one is
// safe: a start lost means the attempt runs again under the same
// invocation id (`task/<id>/<n>`), which the ledger settles at most once;
// an end or a retry lost is rebuilt at open from the usage record.

/// Mark `id` running as its next attempt (invocation `task/<id>/<n>`) and
/// return its work; `None` if it is no longer pending (cancelled
/// meanwhile).
pub(crate) fn start(db: &dyn Sql, id: &str, host: Option<&str>) -> Result<Option<Work>, StoreError> {
    sql::write(db, Commit::Deferred, |tx| {
        let n = tx.execute(
            "UPDATE tasks SET state = 'running', attempts = attempts + 1, started_ms = ?2, host = ?3,
                invocation_id = 'task/' || id || '/' || (attempts + 1)
             WHERE id = ?1 AND state = 'pending'",
            params![id, now_ms(), host],
        )?;
        if n == 0 {
            return Ok(None);
        }
        tx.notify(TOPIC, id)?;
        let columns =
            "submitter, artifact, input, fuel_limit, invocation_id, timeout_ms, capability, route_mode, max_price";
        let r = tx.query_one(&format!("SELECT {columns} FROM tasks WHERE id = ?1"), params![id])?;
        Ok(Some(Work {
            submitter: r.get(0)?,
            artifact: r.get(1)?,
            input: r.get(2)?,
            fuel_limit: r.get(3)?,
            invocation_id: r.get(4)?,
            timeout_ms: r.get(5)?,
            capability: r.get(6)?,
            route_mode: r.get::<Option<String>>(7)?.and_then(|m| super::RouteMode::parse(&m)),
            max_price: r.get(8)?,
        }))
    })
}

/// Run one statement on task `id` as a write of its own, telling the
/// other hosts; whether it changed a row.
fn change(
    db: &dyn Sql,
    commit: Commit,
    id: &str,
    sql: &str,
    params: &[fuelhost_store::Value],
) -> Result<bool, StoreError> {
    sql::write(db, commit, |tx| {
        let n = tx.execute(sql, params)?;
        if n > 0 {
            tx.notify(TOPIC, id)?;
        }
        Ok(n > 0)
    })
}

/// Record that `id`'s current attempt runs `artifact` (chosen by
/// capability).
pub(crate) fn set_artifact(db: &dyn Sql, id: &str, artifact: &str) -> Result<(), StoreError> {
    change(db, Commit::Deferred, id, "UPDATE tasks SET artifact = ?2 WHERE id = ?1", params![id, artifact]).map(drop)
}

/// Record, durably, that running task `id` is to be cancelled; whether it
/// was running.
pub(crate) fn request_cancel(db: &dyn Sql, id: &str) -> Result<bool, StoreError> {
    change(
        db,
        Commit::Durable,
        id,
        "UPDATE tasks SET cancel_requested = 1 WHERE id = ?1 AND state = 'running'",
        params![id],
    )
}

/// Cancel pending task `id`, durably (the caller is told it is done);
/// whether it was pending.
pub(crate) fn cancel_pending(db: &dyn Sql, id: &str, why: &str) -> Result<bool, StoreError> {
    change(
        db,
        Commit::Durable,
        id,
        "UPDATE tasks SET state = 'cancelled', error = ?2, finished_ms = ?3 WHERE id = ?1 AND state = 'pending'",
        params![id, why, now_ms()],
    )
}

/// Move `id` from `from` to the final `state`.
pub(crate) fn finish(
    db: &dyn Sql,
    id: &str,
    from: TaskState,
    state: TaskState,
    error: Option<&str>,
) -> Result<bool, StoreError> {
    change(
        db,
        Commit::Deferred,
        id,
        "UPDATE tasks SET state = ?3, error = ?4, finished_ms = ?5 WHERE id = ?1 AND state = ?2",
        params![id, from.as_str(), state.as_str(), error, now_ms()],
    )
}

/// Put a failed attempt of `id` back as pending, not to start before
/// `not_before_ms`; whether it did (not if a cancel was asked for).
pub(crate) fn retry(db: &dyn Sql, id: &str, not_before_ms: i64, error: Option<&str>) -> Result<bool, StoreError> {
    change(
        db,
        Commit::Deferred,
        id,
        "UPDATE tasks SET state = 'pending', not_before_ms = ?2, error = ?3
         WHERE id = ?1 AND state = 'running' AND cancel_requested = 0",
        params![id, not_before_ms, error],
    )
}

/// Put a task whose attempt found the host busy (it ran nothing and was
/// charged nothing) back as pending, due at `not_before_ms`, its attempt
/// not counted.
pub(crate) fn postpone(db: &dyn Sql, id: &str, not_before_ms: i64) -> Result<bool, StoreError> {
    change(
        db,
        Commit::Deferred,
        id,
        "UPDATE tasks SET state = 'pending', not_before_ms = ?2, attempts = attempts - 1
         WHERE id = ?1 AND state = 'running' AND cancel_requested = 0",
        params![id, not_before_ms],
    )
}

/// Put a task interrupted by a stop back in the queue.
pub(crate) fn requeue(db: &dyn Sql, id: &str) -> Result<(), StoreError> {
    change(
        db,
        Commit::Deferred,
        id,
        "UPDATE tasks SET state = 'pending' WHERE id = ?1 AND state = 'running'",
        params![id],
    )
    .map(drop)
}

/// Keep what of `artifact`'s breaker is shared (see `breaker`), and tell
/// the other hosts.
pub(crate) fn save_breaker(
    db: &dyn Sql,
    artifact: &str,
    open_until_ms: Option<i64>,
    times_opened: u64,
) -> Result<(), StoreError> {
    sql::write(db, Commit::Durable, |tx| {
        tx.execute(
            "INSERT INTO breakers (artifact, open_until_ms, times_opened) VALUES (?1, ?2, ?3)
             ON CONFLICT (artifact) DO UPDATE SET open_until_ms = excluded.open_until_ms,
                 times_opened = excluded.times_opened",
            params![artifact, open_until_ms, times_opened],
        )?;
        tx.notify(BREAKERS, artifact)
    })
}

/// The kept breakers (of `artifact` alone, when given): artifact, open
/// until when, times opened.
pub(crate) fn breakers(db: &dyn Sql, artifact: Option<&str>) -> Result<Vec<(String, Option<i64>, u64)>, StoreError> {
    sql::read(db, |tx| {
        let rows = match artifact {
            Some(a) => {
                tx.query("SELECT artifact, open_until_ms, times_opened FROM breakers WHERE artifact = ?1", params![a])?
            }
            None => tx.query("SELECT artifact, open_until_ms, times_opened FROM breakers", params![])?,
        };
        rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).collect()
    })
}

/// The host run that started each running task (none: a task started by
/// a host alone with its database, or before runs were recorded).
pub(crate) fn running_hosts(db: &dyn Sql) -> Result<std::collections::HashMap<String, Option<String>>, StoreError> {
    sql::read(db, |tx| {
        tx.query("SELECT id, host FROM tasks WHERE state = 'running'", params![])?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect()
    })
}
