//! Tasks: submitted durably, run by workers as their submitter and charged
//! like any invocation, ordered by priority with aging and by agents taking
//! turns, limited in depth per agent, cancellable while pending, and
//! neither lost nor run twice across a restart.

use std::path::Path;
use std::time::Duration;

use fuelhost::{Host, Limits, Priority, ResourcePolicy, SchedulerSettings, TaskError, TaskRequest, TaskState};
use fuelhost_tests::{assert_conserved, fund, upload};

const WAIT: Duration = Duration::from_secs(60);

fn open(dir: &Path, workers: usize, max_queued: usize) -> Host {
    let settings = SchedulerSettings { workers, max_queued_per_agent: max_queued, ..SchedulerSettings::default() };
    fuelhost_tests::builder(dir).scheduler(settings).build().unwrap()
}

/// A host with alice's echo (price 2) and funded agents bob and carol.
fn setup(dir: &Path, workers: usize) -> (Host, String) {
    let host = open(dir, workers, 1_000);
    for agent in ["alice", "bob", "carol"] {
        host.create_agent(agent).unwrap();
        fund(&host, agent, 1_000, 1_000_000_000, 0);
    }
    let echo = upload(&host, "rust-echo", "echo", 2, ResourcePolicy::CallerPays, Limits::default());
    (host, echo)
}

/// A host with one worker, alice's probe (price 3) allowed to run for two
/// minutes, and bob funded to run it that long.
fn looping_setup(dir: &Path) -> (Host, String) {
    let host = open(dir, 1, 1_000);
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
    }
    fund(&host, "bob", 1_000, 1_000_000_000_000, 0);
    let probe = upload(&host, "rust-probe", "probe", 3, ResourcePolicy::CallerPays, long_limits());
    (host, probe)
}

/// Limits that let a probe loop for two minutes.
fn long_limits() -> Limits {
    Limits { fuel: 1_000_000_000_000, timeout_ms: 120_000, ..Limits::default() }
}

/// Wait (up to `WAIT`) until task `id` is running.
fn wait_until_running(host: &Host, id: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while host.task(id).unwrap().state != TaskState::Running {
        assert!(std::time::Instant::now() < deadline, "task {id} never started");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The order tasks ran in: their admissions in the audit log.
fn run_order(host: &Host) -> Vec<String> {
    host.audit_log()
        .unwrap()
        .into_iter()
        .filter_map(|e| e.invocation)
        .filter_map(|inv| inv.strip_prefix("task/").map(|rest| rest.rsplit_once('/').unwrap().0.to_string()))
        .collect()
}

#[test]
fn a_task_runs_as_its_submitter_and_is_charged_once() {
    let dir = tempfile::tempdir().unwrap();
    let (host, echo) = setup(dir.path(), 2);
    let task = host.submit_task(TaskRequest::new("bob", &echo, "hi").id("t1")).unwrap();
    assert_eq!(task.state, TaskState::Pending);
    let again = host.submit_task(TaskRequest::new("bob", &echo, "hi").id("t1")).unwrap();
    assert_eq!(again.id, "t1", "the same id is the same task");
    let done = host.wait_task("t1", WAIT).unwrap();
    assert_eq!(done.state, TaskState::Completed, "{done:?}");
    assert_eq!(done.attempts, 1);
    let record = host.ledger().usage_record(done.invocation_id.as_deref().unwrap()).unwrap().unwrap();
    assert_eq!((record.caller.as_str(), record.price_paid), ("bob", 2));
    assert_eq!(host.balances("bob").unwrap().scrip.posted, 998);
    let other = host.submit_task(TaskRequest::new("carol", &echo, "hi").id("t1")).unwrap_err();
    assert!(other.to_string().contains("already used by another task"), "{other}");
    assert_conserved(&host);
}

#[test]
fn bad_requests_are_refused_with_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (host, echo) = setup(dir.path(), 0);
    let err = host.submit_task(TaskRequest::new("nobody", &echo, "x")).unwrap_err();
    assert!(err.to_string().contains("unknown agent `nobody`"), "{err}");
    let err = host.submit_task(TaskRequest::new("bob", "alice/none@1.0.0", "x")).unwrap_err();
    assert!(err.to_string().contains("unknown artifact `alice/none@1.0.0`"), "{err}");
    assert!(matches!(host.task("missing").unwrap_err(), TaskError::Unknown(_)));
}

/// One worker, started after everything is queued: critical first, then
/// agents take turns at the same class, low last.
#[test]
fn priority_first_then_agents_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let (host, echo) = setup(dir.path(), 0);
    let submit = |agent: &str, id: &str, p: Priority| {
        host.submit_task(TaskRequest::new(agent, &echo, "x").id(id).priority(p)).unwrap();
    };
    submit("bob", "bob-low", Priority::Low);
    for i in 0..4 {
        submit("bob", &format!("bob-{i}"), Priority::Normal);
    }
    submit("carol", "carol-0", Priority::Normal);
    submit("carol", "carol-1", Priority::Normal);
    submit("carol", "carol-critical", Priority::Critical);
    host.start_task_workers(1);
    host.wait_task("bob-low", WAIT).unwrap();
    assert_eq!(
        run_order(&host),
        ["carol-critical", "bob-0", "carol-0", "bob-1", "carol-1", "bob-2", "bob-3", "bob-low"]
    );
}

#[test]
fn a_full_queue_refuses_and_cancelling_makes_room() {
    let dir = tempfile::tempdir().unwrap();
    let (host, echo) = setup(dir.path(), 0);
    drop(host);
    let host = open(dir.path(), 0, 2);
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("a")).unwrap();
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("b")).unwrap();
    let err = host.submit_task(TaskRequest::new("bob", &echo, "x").id("c")).unwrap_err();
    assert!(matches!(err, TaskError::QueueFull { max_depth: 2, .. }), "{err}");
    assert!(err.to_string().contains("already has 2 tasks queued"), "{err}");
    host.submit_task(TaskRequest::new("carol", &echo, "x").id("d")).unwrap();

    let cancelled = host.cancel_task("a").unwrap();
    assert_eq!(cancelled.state, TaskState::Cancelled);
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("c")).unwrap();
    host.start_task_workers(1);
    for id in ["b", "c", "d"] {
        assert_eq!(host.wait_task(id, WAIT).unwrap().state, TaskState::Completed);
    }
    assert_eq!(host.task("a").unwrap().state, TaskState::Cancelled, "a cancelled task never runs");
    let err = host.cancel_task("b").unwrap_err();
    assert!(err.to_string().contains("is already completed"), "{err}");
    assert_eq!(host.ledger().usage_records(&Default::default()).unwrap().len(), 3);
}

/// Accepted tasks survive a stop: pending ones run after it, one that was
/// running and had settled is finished from its usage record (not run
/// again), one that was running and had not settled runs again.
#[test]
fn no_task_is_lost_or_run_twice_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (host, echo) = setup(dir.path(), 0);
    for id in ["p1", "p2"] {
        host.submit_task(TaskRequest::new("bob", &echo, "x").id(id)).unwrap();
    }
    host.submit_task(TaskRequest::new("carol", &echo, "x").id("settled")).unwrap();
    host.submit_task(TaskRequest::new("carol", &echo, "x").id("interrupted")).unwrap();
    host.cancel_task("p2").unwrap();
    host.start_task_workers(1);
    assert_eq!(host.wait_task("settled", WAIT).unwrap().state, TaskState::Completed);
    for id in ["p1", "interrupted"] {
        host.wait_task(id, WAIT).unwrap();
    }
    drop(host);

    // As if the host had stopped mid-task: "settled" after its invocation
    // settled, "interrupted" before (its invocation id never settled).
    {
        let mut tables = fuelhost_tests::tables(dir.path());
        tables.execute("UPDATE tasks SET state = 'running', finished_ms = NULL WHERE id = 'settled'");
        tables.execute(
            "UPDATE tasks SET state = 'running', finished_ms = NULL, invocation_id = 'task/interrupted/0' WHERE id = 'interrupted'",
        );
        tables.execute("UPDATE tasks SET state = 'pending', finished_ms = NULL WHERE id = 'p1'");
    }
    let records_before = {
        let host = open(dir.path(), 0, 1_000);
        let settled = host.task("settled").unwrap();
        assert_eq!((settled.state, settled.attempts), (TaskState::Completed, 1), "finished from its record");
        assert_eq!(host.task("interrupted").unwrap().state, TaskState::Pending, "queued again");
        assert_eq!(host.task("p2").unwrap().state, TaskState::Cancelled);
        host.ledger().usage_records(&Default::default()).unwrap().len()
    };
    let host = open(dir.path(), 1, 1_000);
    for id in ["p1", "interrupted"] {
        let t = host.wait_task(id, WAIT).unwrap();
        assert_eq!((t.state, t.attempts), (TaskState::Completed, 2), "{t:?}");
    }
    assert_eq!(host.ledger().usage_records(&Default::default()).unwrap().len(), records_before + 2);
    assert_conserved(&host);
}

/// Cancelling a running task stops its guest at the next epoch tick: the
/// task ends `cancelled`, its invocation `aborted`, charged the fuel it
/// burned and no price.
#[test]
fn cancelling_a_running_task_stops_it_and_charges_what_it_burned() {
    let dir = tempfile::tempdir().unwrap();
    let (host, probe) = looping_setup(dir.path());
    host.submit_task(TaskRequest::new("bob", &probe, "loop").id("spin")).unwrap();
    wait_until_running(&host, "spin");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(host.cancel_task("spin").unwrap().state, TaskState::Running, "it stops at the next tick");
    let done = host.wait_task("spin", WAIT).unwrap();
    assert_eq!(done.state, TaskState::Cancelled, "{done:?}");
    let record = host.ledger().usage_record(done.invocation_id.as_deref().unwrap()).unwrap().unwrap();
    assert_eq!((record.outcome, record.price_paid), (fuelhost::Outcome::Aborted, 0));
    assert!(record.consumed.fuel > 0, "it burned fuel before it stopped");
    let bob = host.balances("bob").unwrap();
    assert_eq!((bob.scrip.posted, bob.fuel.posted), (1_000, 1_000_000_000_000 - record.consumed.fuel));
    assert!(host.cancel_task("spin").unwrap_err().to_string().contains("is already cancelled"));
    assert_conserved(&host);
}

/// Under deterministic fuel a running task has no epoch checks to stop
/// it: a cancel reaches it at its next call into the host. A task asleep
/// in host calls ends `cancelled`, charged the little fuel it burned.
#[test]
fn under_deterministic_fuel_a_cancel_stops_a_task_at_its_next_host_call() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SchedulerSettings { workers: 1, ..SchedulerSettings::default() };
    let host = fuelhost_tests::builder(dir.path()).scheduler(settings).deterministic_fuel(true).build().unwrap();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
    }
    fund(&host, "bob", 1_000, 1_000_000_000_000, 0);
    let probe = upload(&host, "rust-probe", "probe", 3, ResourcePolicy::CallerPays, long_limits());
    host.submit_task(TaskRequest::new("bob", &probe, "nap").id("sleepy")).unwrap();
    wait_until_running(&host, "sleepy");
    std::thread::sleep(Duration::from_millis(50));
    host.cancel_task("sleepy").unwrap();
    let done = host.wait_task("sleepy", WAIT).unwrap();
    assert_eq!(done.state, TaskState::Cancelled, "{done:?}");
    let record = host.ledger().usage_record(done.invocation_id.as_deref().unwrap()).unwrap().unwrap();
    assert_eq!((record.outcome, record.price_paid), (fuelhost::Outcome::Aborted, 0));
    assert!(record.consumed.wall_time_ns < 30_000_000_000, "stopped long before its two-minute timeout");
    assert_conserved(&host);
}

/// A failed attempt is retried after its backoff, up to the task's most
/// attempts; each attempt is its own charged invocation.
#[test]
fn failed_attempts_are_retried_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _) = setup(dir.path(), 1);
    let probe = upload(&host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    let req = TaskRequest::new("bob", &probe, "trap").id("flaky").retries(3, Duration::from_millis(10));
    host.submit_task(req).unwrap();
    let done = host.wait_task("flaky", WAIT).unwrap();
    assert_eq!((done.state, done.attempts, done.max_attempts), (TaskState::Failed, 3, 3), "{done:?}");
    assert!(done.error.as_deref().unwrap_or("").contains("trap"), "{done:?}");
    for attempt in 1..=3 {
        let record = host.ledger().usage_record(&format!("task/flaky/{attempt}")).unwrap();
        assert!(record.is_some_and(|r| r.outcome == fuelhost::Outcome::Trap), "attempt {attempt}");
    }
    assert_conserved(&host);
}

/// A retry runs after the cause of the failure went away: the task
/// completes on its second attempt.
#[test]
fn a_retry_succeeds_once_the_cause_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _) = setup(dir.path(), 1);
    let probe = upload(&host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    let req = TaskRequest::new("bob", &probe, "read:later.txt").id("patient").retries(5, Duration::from_millis(300));
    host.submit_task(req).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let t = host.task("patient").unwrap();
        if t.attempts == 1 && t.state == TaskState::Pending {
            assert!(t.next_attempt_ms.is_some(), "{t:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline && !t.state.is_final(), "{t:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(host.agent_dir("alice").unwrap().join("later.txt"), "here now").unwrap();
    let done = host.wait_task("patient", WAIT).unwrap();
    assert_eq!((done.state, done.attempts), (TaskState::Completed, 2), "{done:?}");
    let record = host.ledger().usage_record(done.invocation_id.as_deref().unwrap()).unwrap().unwrap();
    assert_eq!(record.output, b"here now");
}

/// A task waits for its dependencies, even ones submitted after it: it is
/// not taken while they are pending, and starts only after they completed.
#[test]
fn a_task_runs_only_after_its_dependencies_completed() {
    let dir = tempfile::tempdir().unwrap();
    let (host, echo) = setup(dir.path(), 2);
    let last = host.submit_task(TaskRequest::new("bob", &echo, "x").id("last").after("first").after("second")).unwrap();
    assert_eq!(last.depends_on, vec!["first".to_string(), "second".to_string()]);
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("first")).unwrap();
    assert_eq!(host.wait_task("first", WAIT).unwrap().state, TaskState::Completed);
    std::thread::sleep(Duration::from_millis(100));
    let waiting = host.task("last").unwrap();
    assert_eq!((waiting.state, waiting.attempts), (TaskState::Pending, 0), "`second` is not even submitted");
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("second")).unwrap();
    let last = host.wait_task("last", WAIT).unwrap();
    assert_eq!(last.state, TaskState::Completed, "{last:?}");
    for dep in ["first", "second"] {
        let dep = host.task(dep).unwrap();
        assert!(last.started_ms.unwrap() >= dep.finished_ms.unwrap(), "{dep:?} ended after {last:?} started");
    }
    assert_conserved(&host);
}

/// A dependency that fails, or is cancelled, fails the tasks waiting for
/// it, with the reason, down the chain; they never run or charge.
#[test]
fn a_failed_or_cancelled_dependency_fails_its_dependants() {
    let dir = tempfile::tempdir().unwrap();
    let (host, echo) = setup(dir.path(), 0);
    let probe = upload(&host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    host.submit_task(TaskRequest::new("bob", &probe, "trap").id("breaks")).unwrap();
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("child").after("breaks")).unwrap();
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("grandchild").after("child")).unwrap();
    host.submit_task(TaskRequest::new("carol", &echo, "x").id("dropped")).unwrap();
    host.submit_task(TaskRequest::new("carol", &echo, "x").id("orphan").after("dropped")).unwrap();
    host.cancel_task("dropped").unwrap();
    let orphan = host.task("orphan").unwrap();
    assert_eq!(orphan.state, TaskState::Failed);
    assert!(orphan.error.as_deref().unwrap().contains("dependency `dropped` ended cancelled"), "{orphan:?}");

    host.start_task_workers(1);
    assert_eq!(host.wait_task("breaks", WAIT).unwrap().state, TaskState::Failed);
    let child = host.wait_task("child", WAIT).unwrap();
    let grandchild = host.wait_task("grandchild", WAIT).unwrap();
    assert_eq!((child.state, grandchild.state), (TaskState::Failed, TaskState::Failed));
    assert!(child.error.as_deref().unwrap().contains("dependency `breaks` ended failed"), "{child:?}");
    assert!(grandchild.error.as_deref().unwrap().contains("dependency `child` ended failed"), "{grandchild:?}");
    assert_eq!((child.attempts, grandchild.attempts, orphan.attempts), (0, 0, 0), "none of them ran");
    // Submitted after its dependency failed: failed at once.
    let late = host.submit_task(TaskRequest::new("bob", &echo, "x").id("late").after("breaks")).unwrap();
    assert_eq!(late.state, TaskState::Failed, "{late:?}");
    // Another agent's task is not a dependency.
    let foreign = host.submit_task(TaskRequest::new("carol", &echo, "x").id("foreign").after("child")).unwrap();
    assert!(foreign.error.as_deref().unwrap().contains("another agent's task"), "{foreign:?}");
    assert_eq!(host.ledger().usage_records(&Default::default()).unwrap().len(), 1, "only `breaks` ran");
    assert_conserved(&host);
}

/// A dependency that would close a cycle is refused at submission, with
/// the cycle; so is a task waiting for itself.
#[test]
fn a_dependency_cycle_is_refused_at_submission() {
    let dir = tempfile::tempdir().unwrap();
    let (host, echo) = setup(dir.path(), 0);
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("a").after("b")).unwrap();
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("b").after("c")).unwrap();
    let err = host.submit_task(TaskRequest::new("bob", &echo, "x").id("c").after("a")).unwrap_err();
    assert!(matches!(&err, TaskError::Cycle(path) if path == &["c", "a", "b", "c"]), "{err:?}");
    assert!(err.to_string().contains("c -> a -> b -> c"), "{err}");
    assert!(matches!(host.task("c").unwrap_err(), TaskError::Unknown(_)), "a refused task is not recorded");
    let err = host.submit_task(TaskRequest::new("bob", &echo, "x").id("self").after("self")).unwrap_err();
    assert!(err.to_string().contains("self -> self"), "{err}");
    // Without the closing edge, `c` is accepted and the chain runs.
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("c")).unwrap();
    host.start_task_workers(1);
    assert_eq!(host.wait_task("a", WAIT).unwrap().state, TaskState::Completed);
}

/// A task's own timeout stops a run the artifact would let go on: the task
/// ends `timed_out`, its invocation charged the fuel it burned.
#[test]
fn a_task_timeout_stops_the_run_and_charges_what_it_burned() {
    let dir = tempfile::tempdir().unwrap();
    let (host, probe) = looping_setup(dir.path());
    let req = TaskRequest::new("bob", &probe, "loop").id("slow").timeout(Duration::from_millis(200));
    host.submit_task(req).unwrap();
    let done = host.wait_task("slow", WAIT).unwrap();
    assert_eq!((done.state, done.timeout_ms), (TaskState::TimedOut, Some(200)), "{done:?}");
    assert!(done.finished_ms.unwrap() - done.started_ms.unwrap() < 60_000, "{done:?}");
    let record = host.ledger().usage_record(done.invocation_id.as_deref().unwrap()).unwrap().unwrap();
    assert_eq!((record.outcome, record.price_paid), (fuelhost::Outcome::Timeout, 0));
    assert!(record.consumed.fuel > 0, "it burned fuel before it stopped");
    assert_eq!(host.balances("bob").unwrap().fuel.posted, 1_000_000_000_000 - record.consumed.fuel);
    assert_conserved(&host);
}

/// A task waiting for another survives a restart still waiting, and runs
/// once its dependency completes after it.
#[test]
fn a_waiting_task_waits_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (host, echo) = setup(dir.path(), 0);
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("then").after("first")).unwrap();
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("never").after("doomed")).unwrap();
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("doomed")).unwrap();
    drop(host);
    {
        fuelhost_tests::tables(dir.path())
            .execute("UPDATE tasks SET state = 'failed', error = 'gone' WHERE id = 'doomed'");
    }
    let host = open(dir.path(), 1, 1_000);
    let never = host.task("never").unwrap();
    assert_eq!(never.state, TaskState::Failed, "failed at open: its dependency had failed");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(host.task("then").unwrap().state, TaskState::Pending);
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("first")).unwrap();
    assert_eq!(host.wait_task("then", WAIT).unwrap().state, TaskState::Completed);
}

/// An artifact that keeps failing opens its circuit breaker: its next task
/// does not run (nor is charged) until the cool-down ends, then runs as the
/// trial, and its success closes the breaker; all of it in the metrics.
#[test]
fn a_failing_artifact_opens_its_breaker_until_a_trial_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SchedulerSettings {
        workers: 1,
        breaker_failures: 2,
        breaker_cool_down: Duration::from_secs(2),
        ..SchedulerSettings::default()
    };
    let host = fuelhost_tests::builder(dir.path()).scheduler(settings).build().unwrap();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
        fund(&host, agent, 1_000, 1_000_000_000, 0);
    }
    let probe = upload(&host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    for id in ["t1", "t2"] {
        host.submit_task(TaskRequest::new("bob", &probe, "trap").id(id)).unwrap();
        assert_eq!(host.wait_task(id, WAIT).unwrap().state, TaskState::Failed);
    }
    let breakers = host.circuit_breakers();
    assert_eq!((breakers.len(), breakers[0].state, breakers[0].times_opened), (1, fuelhost::BreakerState::Open, 1));
    // Kept: a restart finds it open as it was.
    drop(host);
    let host = fuelhost_tests::builder(dir.path()).scheduler(settings).build().unwrap();
    let reopened = host.circuit_breakers();
    assert_eq!((reopened[0].open_until_ms, reopened[0].times_opened), (breakers[0].open_until_ms, 1));

    host.submit_task(TaskRequest::new("bob", &probe, "echo:fine").id("t3").retries(3, Duration::from_millis(10)))
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let refused = loop {
        let t = host.task("t3").unwrap();
        if t.attempts == 1 && t.state == TaskState::Pending {
            break t;
        }
        assert!(std::time::Instant::now() < deadline && !t.state.is_final(), "{t:?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(refused.error.as_deref().unwrap().contains("circuit_open"), "{refused:?}");
    assert!(refused.next_attempt_ms.unwrap() >= breakers[0].open_until_ms.unwrap(), "retried after the cool-down");
    assert!(host.ledger().usage_record("task/t3/1").unwrap().is_none(), "the refused attempt did not run");
    let done = host.wait_task("t3", WAIT).unwrap();
    assert_eq!((done.state, done.attempts), (TaskState::Completed, 2), "{done:?}");
    assert_eq!(host.circuit_breakers()[0].state, fuelhost::BreakerState::Closed);
    let metrics = host.metrics_text();
    assert!(metrics.contains(&format!("fuelhost_circuit_breaker_opened_total{{artifact=\"{probe}\"}} 1")), "{metrics}");
    assert!(metrics.contains(&format!("fuelhost_circuit_breaker_state{{artifact=\"{probe}\"}} 0")), "{metrics}");
    assert!(metrics.contains(&format!("fuelhost_task_retries_total{{artifact=\"{probe}\"}} 1")), "{metrics}");
    assert_conserved(&host);
}

/// An agent's `concurrent_tasks` allocation caps how many of its tasks run
/// at once: with two workers and a cap of one, its tasks run one after the
/// other, and another agent's task is not held up behind them.
#[test]
fn the_concurrent_tasks_allocation_caps_an_agents_running_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _) = setup(dir.path(), 0);
    let probe = upload(&host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, long_limits());
    let quotas = [(fuelhost::Resource::ConcurrentTasks, 1)].into_iter().collect::<std::collections::BTreeMap<_, _>>();
    let mut req = fuelhost::AllocationRequest::new("one-at-a-time", "bob".try_into().unwrap(), quotas);
    req.auto_approve = true;
    host.request_allocation(&req).unwrap();
    host.activate_allocation("one-at-a-time").unwrap();
    fund(&host, "bob", 0, 1_000_000_000_000, 0);
    let ids = ["b1", "b2", "b3"];
    for id in ids {
        host.submit_task(TaskRequest::new("bob", &probe, "spin:30000000").id(id)).unwrap();
    }
    host.submit_task(TaskRequest::new("carol", &probe, "echo:free").id("c1")).unwrap();
    host.start_task_workers(2);
    let mut tasks: Vec<_> = ids.iter().map(|id| host.wait_task(id, WAIT).unwrap()).collect();
    assert!(tasks.iter().all(|t| t.state == TaskState::Completed), "{tasks:?}");
    tasks.sort_by_key(|t| t.started_ms);
    for pair in tasks.windows(2) {
        assert!(pair[1].started_ms.unwrap() >= pair[0].finished_ms.unwrap(), "ran at once: {pair:?}");
    }
    let carol = host.wait_task("c1", WAIT).unwrap();
    assert_eq!(carol.state, TaskState::Completed);
    assert!(carol.finished_ms.unwrap() <= tasks[2].started_ms.unwrap(), "carol waited behind bob's cap: {carol:?}");
}

/// Draining: no task starts any more; a task that ends within the deadline
/// completes; one still running at the deadline is interrupted, charged
/// what it burned, and is pending again for the next open.
#[test]
fn a_drain_lets_running_tasks_finish_until_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (host, echo) = setup(dir.path(), 0);
    let probe = upload(&host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, long_limits());
    host.submit_task(TaskRequest::new("bob", &probe, "spin:100000000").id("short")).unwrap();
    fund(&host, "bob", 0, 1_000_000_000_000, 0);
    fund(&host, "carol", 0, 1_000_000_000_000, 0);
    host.submit_task(TaskRequest::new("carol", &probe, "loop").id("endless")).unwrap();
    host.start_task_workers(2);
    let deadline = std::time::Instant::now() + WAIT;
    while ["short", "endless"].iter().any(|id| host.task(id).unwrap().state == TaskState::Pending) {
        assert!(std::time::Instant::now() < deadline, "the tasks never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    host.submit_task(TaskRequest::new("bob", &echo, "x").id("queued")).unwrap();
    assert_eq!(host.drain_tasks(Duration::from_secs(3)), 1, "only the endless task was interrupted");
    assert_eq!(host.task("short").unwrap().state, TaskState::Completed);
    assert_eq!(host.task("queued").unwrap().state, TaskState::Pending, "nothing starts during a drain");
    let endless = host.task("endless").unwrap();
    assert_eq!((endless.state, endless.attempts), (TaskState::Pending, 1), "{endless:?}");
    let record = host.ledger().usage_record("task/endless/1").unwrap().unwrap();
    assert_eq!(record.outcome, fuelhost::Outcome::Aborted);
    assert!(record.consumed.fuel > 0);
    assert_conserved(&host);
    drop(host);
    // As if the put-back had been lost in a crash: the task is found
    // running with an aborted record, which a stop made, not a cancel: it
    // runs again. One whose cancel was asked for ends cancelled.
    {
        fuelhost_tests::tables(dir.path()).execute("UPDATE tasks SET state = 'running' WHERE id = 'endless'");
    }
    let host = open(dir.path(), 0, 1_000);
    assert_eq!(host.task("endless").unwrap().state, TaskState::Pending, "still pending after the restart");
    drop(host);
    {
        fuelhost_tests::tables(dir.path())
            .execute("UPDATE tasks SET state = 'running', cancel_requested = 1 WHERE id = 'short'");
    }
    let host = open(dir.path(), 0, 1_000);
    assert_eq!(host.task("short").unwrap().state, TaskState::Cancelled, "its cancel was asked for");
    assert_eq!(host.task("endless").unwrap().state, TaskState::Pending);
    host.cancel_task("endless").unwrap();
    host.start_task_workers(1);
    assert_eq!(host.wait_task("queued", WAIT).unwrap().state, TaskState::Completed);
}

/// An artifact queues tasks through the `tasks` import, as its owner: the
/// task runs and is charged as the owner's, the artifact can read its
/// state (and no one else's), and a rule can forbid it.
#[test]
fn an_artifact_queues_tasks_as_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let (host, echo) = setup(dir.path(), 1);
    let probe = upload(&host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    let invoke = |input: String| host.invoke(fuelhost::Invocation::new("bob", &probe, input)).unwrap();
    let report = invoke(format!("submit:{echo}:from a guest"));
    assert!(report.success, "{report:?}");
    let id = report.output_text().strip_prefix("task=").unwrap().to_string();
    let task = host.wait_task(&id, WAIT).unwrap();
    assert_eq!((task.state, task.submitter.as_str()), (TaskState::Completed, "alice"), "{task:?}");
    let record = host.ledger().usage_record(task.invocation_id.as_deref().unwrap()).unwrap().unwrap();
    assert_eq!((record.caller.as_str(), record.output.as_slice()), ("alice", &b"from a guest"[..]));
    assert_eq!(invoke(format!("task-state:{id}")).output_text(), "state=TaskState::Completed attempts=1");

    // Only the owner's tasks are visible.
    host.submit_task(TaskRequest::new("carol", &echo, "x").id("carols")).unwrap();
    let hidden = invoke("task-state:carols".into());
    assert!(hidden.error.as_deref().unwrap().contains("Unknown"), "{hidden:?}");

    host.set_policy_rules(
        "[[rule]]\nname = \"no-guest-tasks\"\neffect = \"deny\"\naction = \"task-submit\"\nreason = \"not here\"\n",
    )
    .unwrap();
    let denied = invoke(format!("submit:{echo}:again"));
    assert!(!denied.success && denied.error.as_deref().unwrap().contains("not here"), "{denied:?}");
    assert_conserved(&host);
}

/// A task that names a capability is handed to an artifact declaring it:
/// the cheapest when cost matters most, the best when quality does, the
/// best within the submitter's price cap; the task shows which ran.
#[test]
fn a_task_naming_a_capability_goes_to_the_artifact_its_mode_prefers() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _) = setup(dir.path(), 1);
    for (name, price, quality) in [("cheap", 1, 40), ("mid", 10, 70), ("premium", 50, 95)] {
        let mut m = fuelhost_tests::manifest(name, price, ResourcePolicy::CallerPays, Limits::default());
        m.capabilities = vec!["echo".into(), "repeat".into()];
        m.quality = Some(quality);
        host.upload(m, &fuelhost_tests::guest("rust-echo")).unwrap();
    }
    let submit = |id: &str, mode: fuelhost::RouteMode, max_price: Option<u64>| {
        let mut req = TaskRequest::for_capability("bob", "echo", mode, "routed").id(id);
        req.max_price = max_price;
        host.submit_task(req).unwrap();
        let t = host.wait_task(id, WAIT).unwrap();
        assert_eq!((t.state, t.capability.as_deref()), (TaskState::Completed, Some("echo")), "{t:?}");
        t.artifact
    };
    assert_eq!(submit("by-cost", fuelhost::RouteMode::CostOptimized, None), "alice/cheap@0.1.0");
    assert_eq!(submit("by-quality", fuelhost::RouteMode::QualityOptimized, None), "alice/premium@0.1.0");
    assert_eq!(submit("capped", fuelhost::RouteMode::QualityOptimized, Some(20)), "alice/mid@0.1.0");
    let mut tight = TaskRequest::for_capability("bob", "echo", fuelhost::RouteMode::QualityOptimized, "x");
    tight.max_price = Some(0);
    let err = host.submit_task(tight).unwrap_err();
    assert!(err.to_string().contains("costs more than the task's max_price of 0"), "{err}");
    // Too little scrip for any: the cheapest is tried, and says why it failed.
    host.create_agent("dave").unwrap();
    fund(&host, "dave", 0, 1_000_000_000, 0);
    host.submit_task(
        TaskRequest::for_capability("dave", "echo", fuelhost::RouteMode::QualityOptimized, "x").id("poor"),
    )
    .unwrap();
    let poor = host.wait_task("poor", WAIT).unwrap();
    assert_eq!((poor.state, poor.artifact.as_str()), (TaskState::Failed, "alice/cheap@0.1.0"), "{poor:?}");
    assert!(poor.error.as_deref().unwrap().contains("scrip"), "{poor:?}");
    // From inside a guest, as its owner (alice), cheapest first.
    let probe = upload(&host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    let report = host.invoke(fuelhost::Invocation::new("bob", &probe, "submit-capability:echo:via a guest")).unwrap();
    let id = report.output_text().strip_prefix("task=").unwrap_or_else(|| panic!("{report:?}")).to_string();
    let t = host.wait_task(&id, WAIT).unwrap();
    assert_eq!(
        (t.state, t.submitter.as_str(), t.artifact.as_str()),
        (TaskState::Completed, "alice", "alice/cheap@0.1.0")
    );
    // Submitting the same id again returns the same task.
    let again =
        TaskRequest::for_capability("bob", "echo", fuelhost::RouteMode::CostOptimized, "routed").id("by-quality");
    assert_eq!(host.submit_task(again).unwrap().artifact, "alice/premium@0.1.0");
    let record = host.ledger().usage_record("task/by-quality/1").unwrap().unwrap();
    assert_eq!((record.artifact.as_str(), record.price_paid), ("alice/premium@0.1.0", 50));
    let err =
        host.submit_task(TaskRequest::for_capability("bob", "fly", fuelhost::RouteMode::Standard, "x")).unwrap_err();
    assert!(err.to_string().contains("no artifact declares capability `fly`"), "{err}");
    assert_conserved(&host);
}

/// Low priority is never starved: a low task that has waited long enough
/// competes as critical and runs before a flood of fresh high-priority
/// tasks, even one agent's flood.
#[test]
fn a_waiting_low_task_is_not_starved_by_a_flood_of_high_ones() {
    let dir = tempfile::tempdir().unwrap();
    let settings =
        SchedulerSettings { workers: 0, aging_step: Duration::from_millis(20), ..SchedulerSettings::default() };
    let host = fuelhost_tests::builder(dir.path()).scheduler(settings).build().unwrap();
    for agent in ["alice", "bob", "carol"] {
        host.create_agent(agent).unwrap();
        fund(&host, agent, 1_000, 1_000_000_000, 0);
    }
    let echo = upload(&host, "rust-echo", "echo", 0, ResourcePolicy::CallerPays, Limits::default());
    host.submit_task(TaskRequest::new("carol", &echo, "x").id("patient").priority(Priority::Low)).unwrap();
    // Three aging steps: low -> normal -> high -> critical.
    std::thread::sleep(Duration::from_millis(80));
    for i in 0..20 {
        host.submit_task(TaskRequest::new("bob", &echo, "x").id(format!("flood-{i}")).priority(Priority::High))
            .unwrap();
    }
    host.start_task_workers(1);
    for i in 0..20 {
        host.wait_task(&format!("flood-{i}"), WAIT).unwrap();
    }
    host.wait_task("patient", WAIT).unwrap();
    let order = run_order(&host);
    assert_eq!(order.first().map(String::as_str), Some("patient"), "{order:?}");
}
