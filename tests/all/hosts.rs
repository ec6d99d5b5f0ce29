//! Several hosts in one process over one PostgreSQL database: what each
//! keeps in memory stays in step with the database when its own changes
//! race the changes it hears of from the others, and work submitted through
//! two hosts at once under one id is recorded once. Run in the suite's
//! PostgreSQL pass (`scripts/test.sh`); on the embedded file a host is
//! alone, and these say so and pass over it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuelhost::{Host, Invocation, Limits, ManualClock, ResourcePolicy, Retention, TaskError, TaskRequest, UsageQuery};
use fuelhost_tests::{fund, guest, manifest, postgres_database, postgres_server, shared_compile_cache, tables};

/// Two hosts (`a`, `b`) of one fresh database, with `alice` and `bob`
/// funded; `None` when the suite runs on SQLite.
fn two_hosts(test: &str, dir: &Path) -> Option<(Host, Host)> {
    two_hosts_with(test, dir, |b| b)
}

/// [`two_hosts`], each host's builder given to `configure` first.
fn two_hosts_with(
    test: &str,
    dir: &Path,
    configure: impl Fn(fuelhost::HostBuilder) -> fuelhost::HostBuilder,
) -> Option<(Host, Host)> {
    let Some(server) = postgres_server() else {
        eprintln!("{test}: needs several hosts over one PostgreSQL database; run on the suite's PostgreSQL pass");
        return None;
    };
    let url = postgres_database(&server, &dir.join("a"));
    let open = |name: &str| {
        configure(Host::builder())
            .data_dir(dir.join(name))
            .compile_cache_dir(shared_compile_cache())
            .database(url.clone())
            .host_name(name)
            .build()
            .expect("host opens")
    };
    let (a, b) = (open("a"), open("b"));
    for agent in ["alice", "bob"] {
        a.create_agent(agent).unwrap();
        fund(&a, agent, 1_000, 1_000_000_000, 1 << 20);
    }
    Some((a, b))
}

/// Wait until `done` holds (another host's change arrives within a
/// second or so), or fail saying what did not happen.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The same task id submitted through two hosts at once, many times over:
/// one task each time, and every submit answered with it (a submit sent
/// again is idempotent, whichever host it reaches), never a storage error.
#[test]
fn one_task_id_submitted_through_two_hosts_at_once_is_one_task() {
    let dir = tempfile::tempdir().unwrap();
    let Some((a, b)) = two_hosts("one_task_id_submitted_through_two_hosts_at_once_is_one_task", dir.path()) else {
        return;
    };
    let echo =
        a.upload(manifest("echo", 1, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo")).unwrap().id;
    eventually("host b holds the upload", || b.artifact(&echo).is_some());
    let (a, b) = (Arc::new(a), Arc::new(b));
    for round in 0..20 {
        let id = format!("same-{round}");
        let submits: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
            .into_iter()
            .map(|host| {
                let (echo, id) = (echo.clone(), id.clone());
                std::thread::spawn(move || host.submit_task(TaskRequest::new("bob", &echo, "hi").id(&id)))
            })
            .collect();
        for submit in submits {
            let task = submit.join().unwrap().unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(task.id, id);
        }
        // Another agent's submit under that id is refused for what it is.
        let other = b.submit_task(TaskRequest::new("alice", &echo, "hi").id(&id)).unwrap_err();
        assert!(matches!(other, TaskError::Invalid(_)), "{other}");
    }
    let stored = tables(&dir.path().join("a")).count("SELECT COUNT(*) FROM tasks WHERE id LIKE 'same-%'");
    assert_eq!(stored, 20);
}

/// Host `a` deletes artifacts that host `b` uploads, each right after its
/// upload, while `a` hears of the uploads: the notice of an upload, read
/// before the delete and applied after it, would bring the artifact back
/// on `a` (callable there, and gone everywhere else). None comes back.
#[test]
fn a_delete_is_not_undone_by_the_notice_of_the_upload_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let Some((a, b)) = two_hosts("a_delete_is_not_undone_by_the_notice_of_the_upload_before_it", dir.path()) else {
        return;
    };
    let bytes = guest("rust-echo");
    let mut ids = Vec::new();
    for i in 0..40 {
        let id = b
            .upload(manifest(&format!("gone{i}"), 1, ResourcePolicy::CallerPays, Limits::default()), &bytes)
            .unwrap()
            .id;
        assert!(a.delete_artifact(&id).unwrap().is_some() || a.artifact(&id).is_none());
        ids.push(id);
    }
    // Every notice delivered and applied: one more change, made last, seen.
    let last = b.upload(manifest("last", 1, ResourcePolicy::CallerPays, Limits::default()), &bytes).unwrap().id;
    eventually("host a hears of the last upload", || a.artifact(&last).is_some());
    let back: Vec<&String> = ids.iter().filter(|id| a.artifact(id).is_some()).collect();
    assert!(back.is_empty(), "deleted on host a, yet held there again: {back:?}");
    eventually("host b hears of the deletes", || ids.iter().all(|id| b.artifact(id).is_none()));
}

/// Every line of the archive files of `kind` under each host's archive
/// directory.
fn archived(dir: &Path, kind: &str) -> Vec<serde_json::Value> {
    fuelhost_tests::archive_lines(&["a", "b"].map(|host| dir.join(host).join("archive").join(kind)))
}

/// Two hosts moving the same history past its horizon at once, each to
/// its own archive directory, several times over: every usage record and
/// audit entry is archived exactly once, by one host or the other, and the
/// money stays where it was.
#[test]
fn two_hosts_archiving_at_once_archive_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let clock = ManualClock::new(now);
    let retention = Retention { usage_days: Some(30), audit_days: Some(7), ..Retention::default() };
    let Some((a, b)) = two_hosts_with("two_hosts_archiving_at_once_archive_every_record_once", dir.path(), |builder| {
        builder.clock(Arc::new(clock.clone())).retention(retention.clone())
    }) else {
        return;
    };
    let echo =
        a.upload(manifest("echo", 3, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo")).unwrap().id;
    eventually("host b holds the upload", || b.artifact(&echo).is_some());
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut calls = 0;
    for round in 0..3 {
        for i in 0..30 {
            let host = if i % 2 == 0 { &a } else { &b };
            assert!(host.invoke(Invocation::new("bob", &echo, format!("r{round}-{i}"))).unwrap().success);
            calls += 1;
        }
        let (bob, alice) = (a.balances("bob").unwrap(), a.balances("alice").unwrap());
        clock.advance(31 * 86_400_000);
        let movers: Vec<_> =
            [a.clone(), b.clone()].into_iter().map(|host| std::thread::spawn(move || host.archive_history())).collect();
        for mover in movers {
            mover.join().unwrap().unwrap();
        }
        assert!(a.usage_records(&UsageQuery::default()).unwrap().is_empty(), "round {round}: every record moved");
        assert_eq!((a.balances("bob").unwrap(), a.balances("alice").unwrap()), (bob, alice), "round {round}");
        fuelhost_tests::assert_conserved(&a);
    }
    let usage = archived(dir.path(), "usage");
    let mut ids: Vec<&str> = usage.iter().map(|l| l["invocation_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((usage.len(), ids.len()), (calls, calls), "every record archived once");
    let audit = archived(dir.path(), "audit");
    let mut seqs: Vec<i64> = audit.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), audit.len(), "no audit entry archived twice");
    let price = fuelhost_tests::archived_prices(&a);
    assert_eq!(price, 3 * calls as u64, "the summaries carry every price paid");
}
