//! Several `fuelhost serve` processes over one PostgreSQL database (a
//! scratch server of Debian's `postgresql`, started by each test), with
//! clients spread over them: a host killed with SIGKILL mid-load and
//! restarted, a payer's budget raced from every host, a policy changed
//! through one host refusing the next call on another, and the database
//! restarted under load. After each, the ledger is checked from scratch:
//! every acknowledged call recorded once, no call charged twice, every
//! asset summing to zero, no payer below zero, no hold left.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use fuelhost::{AgentId, Asset, Host, Limits, Outcome};

use super::{guest, manifest};
use fuelhost_postgres::ScratchServer;

const BIN: &str = env!("CARGO_BIN_EXE_fuelhost");
const PRICE: u64 = 3;

/// A database on a fresh scratch server, agents `alice` (owning
/// `alice/echo@0.1.0`, price 3, caller pays) and `bob` (funded with
/// `scrip`), and keys: bob's and an admin's.
struct Setup {
    server: ScratchServer,
    url: String,
    dir: tempfile::TempDir,
    bob_key: String,
    admin_key: String,
}

fn setup(scrip: u64) -> Setup {
    let server = ScratchServer::start().expect("a scratch PostgreSQL server starts");
    let url = server.fresh_database("hosts").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = host_on(&url, &dir.path().join("setup"), "setup");
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
    }
    host.mint("seed-scrip", "bob", Asset::Scrip, scrip).unwrap();
    host.mint("seed-fuel", "bob", Asset::Fuel, 1 << 50).unwrap();
    let manifest = manifest("echo", PRICE, Limits::default());
    host.upload(manifest, &guest("rust-echo")).unwrap();
    let bob_key = host.api_keys().create(Some(&AgentId::new("bob").unwrap())).unwrap().key;
    let admin_key = host.api_keys().create(None).unwrap().key;
    Setup { server, url, dir, bob_key, admin_key }
}

/// An embedded host on the shared database (to set up or to check).
fn host_on(url: &str, data: &Path, name: &str) -> Host {
    Host::builder().data_dir(data).database(url).host_name(name).max_instances(8).build().unwrap()
}

/// One `fuelhost serve` process.
struct Served {
    child: Child,
    url: String,
}

fn serve(database: &str, dir: &Path, name: &str) -> Served {
    let data = dir.join(name);
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:0\"\ncompile_cache_dir = {:?}\nmax_instances = 8\n", dir.join("compiled")),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["--database", database, "--host-name", name])
        .env_remove("FUELHOST_DATA_DIR")
        .env_remove("FUELHOST_LISTEN")
        .env_remove("FUELHOST_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the server exited before listening").unwrap();
        if let Some(u) = line.strip_prefix("fuelhost serving on ") {
            break u.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Served { child, url }
}

impl Served {
    /// SIGTERM, and wait for the drain.
    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

/// What one call through the API came to.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// Acknowledged: 200, and the call succeeded.
    Done,
    /// A refusal the API answered (not enough funds, a deny, ...).
    Refused(u16, String),
    /// No answer (the host is down, or its answer was lost).
    Unknown,
}

fn invoke(base: &str, key: &str, id: &str) -> Answer {
    let body = serde_json::json!({"artifact": "alice/echo@0.1.0", "input": "x", "id": id});
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(20)).build();
    match agent.post(&format!("{base}/v1/invoke")).set("Authorization", &format!("Bearer {key}")).send_json(body) {
        Ok(r) => {
            let v: serde_json::Value = r.into_json().unwrap_or_default();
            if v["outcome"] == "success" {
                Answer::Done
            } else {
                Answer::Refused(200, v.to_string())
            }
        }
        Err(ureq::Error::Status(code, r)) => Answer::Refused(code, r.into_string().unwrap_or_default()),
        Err(_) => Answer::Unknown,
    }
}

/// The ledger read afresh: every acknowledged call recorded once and
/// successful; a price paid per successful call and no more; every asset
/// summing to zero; no hold left; bob and alice exactly where the prices
/// put them. Returns the successful calls.
fn check_ledger(url: &str, dir: &Path, acknowledged: &[String], scrip: u64) -> u64 {
    let host = host_on(url, &dir.join("check"), "check");
    let all = fuelhost::UsageQuery { limit: Some(10_000), ..Default::default() };
    let records = host.ledger().usage_records(&all).unwrap();
    assert!(records.len() < 10_000, "more records than one page holds: read them in pages");
    let mut seen = std::collections::HashSet::new();
    for r in &records {
        assert!(seen.insert(r.invocation_id.clone()), "{} has two usage records", r.invocation_id);
    }
    for id in acknowledged {
        let r = records.iter().find(|r| &r.invocation_id == id);
        assert!(r.is_some_and(|r| r.outcome == Outcome::Success), "acknowledged call {id} has no successful record");
    }
    let successes = records.iter().filter(|r| r.outcome == Outcome::Success).count() as u64;
    let paid: u64 = records.iter().map(|r| r.price_paid).sum();
    assert_eq!(paid, PRICE * successes, "a price per successful call, once");
    let prices = host.ledger().transfers().unwrap().into_iter().filter(|t| t.kind == fuelhost::TransferKind::Price);
    assert_eq!(prices.count() as u64, successes, "one price transfer per successful call");
    // Bob never below zero: what he paid is at most what he had.
    assert!(paid <= scrip, "bob paid {paid} out of {scrip}");
    assert_eq!(host.balances("bob").unwrap().scrip.posted, scrip - paid);
    assert_eq!(host.balances("alice").unwrap().scrip.posted, paid);
    for asset in Asset::ALL {
        assert_eq!(host.ledger().asset_total(asset).unwrap(), 0, "{asset} is not conserved");
    }
    assert_eq!(host.ledger().pending_holds().unwrap(), 0, "no hold outlived its call");
    successes
}

/// Clients calling through the hosts in `urls` in turn, each call under an
/// id of its own, retried (same id) on the next host while unanswered.
struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<String>>>,
    calls: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn load(urls: Arc<RwLock<Vec<String>>>, key: &str, clients: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicU64::new(0));
    let threads = (0..clients)
        .map(|c| {
            let (stop, acknowledged, calls, urls, key) =
                (stop.clone(), acknowledged.clone(), calls.clone(), urls.clone(), key.to_string());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let id = format!("c{c}-{n}");
                    n += 1;
                    for attempt in 0..2_000usize {
                        let url = {
                            let urls = urls.read().unwrap();
                            urls[(c + attempt) % urls.len()].clone()
                        };
                        match invoke(&url, &key, &id) {
                            Answer::Done => {
                                acknowledged.lock().unwrap().push(id.clone());
                                calls.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            // Interrupted by a kill: settled as aborted when
                            // its host came back, nothing charged. A new id
                            // tries again.
                            Answer::Refused(200, body) if body.contains("\"outcome\":\"aborted\"") => break,
                            // Still held by the killed host, until it comes
                            // back (or its lease runs out); or the host is
                            // busy: the same id, a moment later.
                            Answer::Refused(409, body) if body.contains("in_progress") => {
                                std::thread::sleep(Duration::from_millis(100))
                            }
                            Answer::Refused(code, body) if code != 503 => {
                                panic!("call {id} refused by {url}: {code} {body}")
                            }
                            _ => std::thread::sleep(Duration::from_millis(50)),
                        }
                    }
                }
            })
        })
        .collect();
    Load { stop, acknowledged, calls, threads }
}

impl Load {
    fn wait_for(&self, more: u64, limit: Duration) {
        let target = self.calls.load(Ordering::SeqCst) + more;
        let deadline = Instant::now() + limit;
        while self.calls.load(Ordering::SeqCst) < target {
            assert!(Instant::now() < deadline, "the hosts did not make {more} calls within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("a client failed");
        }
        Arc::try_unwrap(self.acknowledged).unwrap().into_inner().unwrap()
    }
}

#[test]
fn three_hosts_one_killed_three_times_lose_no_acknowledged_call() {
    let scrip = 1_000_000;
    let s = setup(scrip);
    let names = ["h0", "h1", "h2"];
    let mut hosts: Vec<Served> = names.iter().map(|n| serve(&s.url, s.dir.path(), n)).collect();
    let urls = Arc::new(RwLock::new(hosts.iter().map(|h| h.url.clone()).collect::<Vec<_>>()));
    let load = load(urls.clone(), &s.bob_key, 6);
    for round in 0..3u64 {
        load.wait_for(20, Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(37 * round));
        hosts[1].child.kill().unwrap(); // SIGKILL, mid-call
        hosts[1].child.wait().unwrap();
        load.wait_for(10, Duration::from_secs(60));
        hosts[1] = serve(&s.url, s.dir.path(), "h1");
        urls.write().unwrap()[1] = hosts[1].url.clone();
    }
    load.wait_for(10, Duration::from_secs(60));
    let acknowledged = load.finish();
    for h in hosts {
        h.stop();
    }
    let successes = check_ledger(&s.url, s.dir.path(), &acknowledged, scrip);
    eprintln!("{} calls acknowledged, {successes} succeeded in all", acknowledged.len());
    assert!(acknowledged.len() >= 60);
    drop(s.server);
}

#[test]
fn a_payer_funded_for_n_calls_gets_at_most_n_across_three_hosts() {
    const N: u64 = 20;
    let s = setup(N * PRICE);
    let hosts: Vec<Served> = ["a", "b", "c"].iter().map(|n| serve(&s.url, s.dir.path(), n)).collect();
    let done = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4 * N)
        .map(|i| {
            let (url, key, done, refused) =
                (hosts[i as usize % 3].url.clone(), s.bob_key.clone(), done.clone(), refused.clone());
            std::thread::spawn(move || loop {
                match invoke(&url, &key, &format!("call-{i}")) {
                    Answer::Done => {
                        done.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    Answer::Refused(402, _) => {
                        refused.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    // Bob runs as many calls at once as a host lets one
                    // agent: again, under the same id.
                    Answer::Refused(503, _) => std::thread::sleep(Duration::from_millis(20)),
                    other => panic!("call-{i}: {other:?}"),
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for h in hosts {
        h.stop();
    }
    let (done, refused) = (done.load(Ordering::SeqCst), refused.load(Ordering::SeqCst));
    assert!(done <= N, "{done} calls succeeded on a budget for {N}");
    assert_eq!(done + refused, 4 * N, "every other call was refused for want of scrip");
    let successes = check_ledger(&s.url, s.dir.path(), &[], N * PRICE);
    assert_eq!(successes, done);
}

#[test]
fn a_policy_change_through_one_host_refuses_the_next_call_on_another() {
    let s = setup(1_000_000);
    let a = serve(&s.url, s.dir.path(), "a");
    let c = serve(&s.url, s.dir.path(), "c");
    assert_eq!(invoke(&c.url, &s.bob_key, "before"), Answer::Done);
    let rules = "[[rule]]\nname = \"closed\"\neffect = \"deny\"\naction = \"invoke\"\ntarget = \"alice/*\"\n\
                 reason = \"closed for maintenance\"\n";
    let put = ureq::put(&format!("{}/v1/policy/rules", a.url))
        .set("Authorization", &format!("Bearer {}", s.admin_key))
        .set("Content-Type", "application/toml")
        .send_string(rules);
    assert!(put.is_ok(), "{put:?}");
    let changed = Instant::now();
    let mut n = 0;
    let refused = loop {
        n += 1;
        match invoke(&c.url, &s.bob_key, &format!("after-{n}")) {
            Answer::Refused(403, body) => break body,
            Answer::Done => assert!(changed.elapsed() < Duration::from_secs(1), "host c still allows after 1 s"),
            other => panic!("{other:?}"),
        }
    };
    eprintln!("in force on the other host after {:?}", changed.elapsed());
    assert!(refused.contains("closed for maintenance"), "{refused}");
    a.stop();
    c.stop();
}

/// A key is known in memory once used; revoked through one host, the
/// other refuses it as soon as the revocation's notice arrives.
#[test]
fn a_key_revoked_through_one_host_is_refused_by_another() {
    let s = setup(1_000_000);
    let a = serve(&s.url, s.dir.path(), "a");
    let c = serve(&s.url, s.dir.path(), "c");
    assert_eq!(invoke(&c.url, &s.bob_key, "before"), Answer::Done, "the key is used, so host c knows it");
    let keys: serde_json::Value = ureq::get(&format!("{}/v1/keys", a.url))
        .set("Authorization", &format!("Bearer {}", s.admin_key))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let bobs = keys["keys"].as_array().unwrap().iter().find(|k| k["agent"] == "bob");
    let key_id = bobs.and_then(|k| k["key_id"].as_str()).unwrap_or_else(|| panic!("{keys}")).to_string();
    let revoked = ureq::delete(&format!("{}/v1/keys/{key_id}", a.url))
        .set("Authorization", &format!("Bearer {}", s.admin_key))
        .call();
    assert!(revoked.is_ok(), "{revoked:?}");
    let changed = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        match invoke(&c.url, &s.bob_key, &format!("after-{n}")) {
            Answer::Refused(401, _) => break,
            Answer::Done => assert!(changed.elapsed() < Duration::from_secs(1), "host c still takes it after 1 s"),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(invoke(&a.url, &s.bob_key, "on-a"), Answer::Refused(401, _)));
    a.stop();
    c.stop();
}

#[test]
fn the_hosts_serve_again_on_their_own_after_the_database_restarts() {
    let scrip = 1_000_000;
    let mut s = setup(scrip);
    let hosts: Vec<Served> = ["a", "b"].iter().map(|n| serve(&s.url, s.dir.path(), n)).collect();
    let urls = Arc::new(RwLock::new(hosts.iter().map(|h| h.url.clone()).collect::<Vec<_>>()));
    let load = load(urls, &s.bob_key, 4);
    load.wait_for(20, Duration::from_secs(60));
    s.server.restart().expect("the database restarts");
    // The same processes serve again: calls are acknowledged after it.
    load.wait_for(20, Duration::from_secs(60));
    let acknowledged = load.finish();
    // A call whose settlement the restart refused is settled by its host
    // once the database is back, while it serves: no hold is left.
    {
        let watcher = host_on(&s.url, &s.dir.path().join("watch"), "watch");
        let deadline = Instant::now() + Duration::from_secs(15);
        while watcher.ledger().pending_holds().unwrap() > 0 {
            assert!(Instant::now() < deadline, "holds outlived their calls while the hosts served");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for h in hosts {
        h.stop();
    }
    check_ledger(&s.url, s.dir.path(), &acknowledged, scrip);
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", "postgres://fh:hunter2@127.0.0.1:1/fuelhost"])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("FUELHOST_DATABASE_URL")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("cannot connect to the database at postgres://fh:***@127.0.0.1:1/fuelhost"), "{said}");
    assert!(said.contains("Connection refused") && said.contains("check that PostgreSQL runs there"), "{said}");
    assert!(!said.contains("hunter2"), "{said}");
}

/// An embedded host on the shared database with `workers` task workers.
fn host_with_workers(url: &str, data: &Path, name: &str, workers: usize) -> Host {
    let settings = fuelhost::SchedulerSettings { workers, ..fuelhost::SchedulerSettings::default() };
    Host::builder().data_dir(data).database(url).host_name(name).max_instances(8).scheduler(settings).build().unwrap()
}

#[test]
fn tasks_queued_through_one_host_are_run_by_another() {
    let s = setup(1_000_000);
    let dir = s.dir.path();
    let worker = host_with_workers(&s.url, &dir.join("worker"), "worker", 2);
    let front = host_with_workers(&s.url, &dir.join("front"), "front", 0);
    // Through a host that runs no task itself: the other runs them, and
    // the one they were submitted through sees them end.
    let echo = "alice/echo@0.1.0";
    for i in 0..10 {
        front.submit_task(fuelhost::TaskRequest::new("bob", echo, "x").id(format!("t{i}"))).unwrap();
    }
    // One waiting for another submitted after it.
    front.submit_task(fuelhost::TaskRequest::new("bob", echo, "x").id("second").after("first")).unwrap();
    front.submit_task(fuelhost::TaskRequest::new("bob", echo, "x").id("first")).unwrap();
    for id in (0..10).map(|i| format!("t{i}")).chain(["first".to_string(), "second".to_string()]) {
        let t = front.wait_task(&id, Duration::from_secs(30)).unwrap();
        assert_eq!(t.state, fuelhost::TaskState::Completed, "{t:?}");
    }
    // A host that goes away with tasks queued leaves them to the others.
    let gone = host_with_workers(&s.url, &dir.join("gone"), "gone", 0);
    for i in 0..5 {
        gone.submit_task(fuelhost::TaskRequest::new("bob", echo, "x").id(format!("g{i}"))).unwrap();
    }
    drop(gone);
    for i in 0..5 {
        let t = front.wait_task(&format!("g{i}"), Duration::from_secs(30)).unwrap();
        assert_eq!(t.state, fuelhost::TaskState::Completed, "{t:?}");
    }
    drop((worker, front));
    let all = fuelhost::UsageQuery { limit: Some(10_000), ..Default::default() };
    let check = host_on(&s.url, &dir.join("check"), "check");
    let records = check.ledger().usage_records(&all).unwrap();
    assert_eq!(records.len(), 17, "each task ran once: {records:?}");
    assert!(records.iter().all(|r| r.outcome == Outcome::Success));
    drop(check);
    check_ledger(&s.url, dir, &[], 1_000_000);
}

#[test]
fn a_call_whose_settlement_the_database_refused_is_settled_once_it_is_back() {
    let mut s = setup(1_000_000);
    {
        let host = host_on(&s.url, &s.dir.path().join("upload"), "upload");
        let manifest = manifest("nap", PRICE, Limits { timeout_ms: 1_500, ..Limits::default() });
        host.upload(manifest, &guest("rust-probe")).unwrap();
    }
    let served = serve(&s.url, s.dir.path(), "a");
    // Status, Retry-After and body of a call of `alice/nap` under `id`.
    let call = |id: &str| -> (u16, Option<String>, String) {
        let body = serde_json::json!({"artifact": "alice/nap@0.1.0", "input": "nap", "id": id});
        let answer = ureq::post(&format!("{}/v1/invoke", served.url))
            .set("Authorization", &format!("Bearer {}", s.bob_key))
            .timeout(Duration::from_secs(30))
            .send_json(body);
        match answer {
            Ok(r) => (r.status(), None, r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => {
                (code, r.header("Retry-After").map(String::from), r.into_string().unwrap_or_default())
            }
            Err(e) => panic!("{e}"),
        }
    };
    // The call runs until its timeout; the database stops meanwhile, so
    // its settlement is refused: a retryable 503, the call's id named.
    let watcher = host_on(&s.url, &s.dir.path().join("watch"), "watch");
    let (status, retry_after, body) = std::thread::scope(|scope| {
        let running = scope.spawn(|| call("napping"));
        // Stopped once the call holds its budget: it runs.
        while watcher.ledger().pending_holds().unwrap() == 0 {
            assert!(!running.is_finished(), "the call ended before it was seen running");
            std::thread::sleep(Duration::from_millis(10));
        }
        s.server.stop();
        running.join().unwrap()
    });
    drop(watcher);
    assert_eq!((status, retry_after.as_deref()), (503, Some("1")), "{body}");
    assert!(body.contains("storage_unavailable") && body.contains("napping"), "{body}");
    s.server.restart().expect("the database starts again");
    // Settled in the background once it is back: the same id then answers
    // the call's one report, charged once, nothing held.
    let deadline = Instant::now() + Duration::from_secs(20);
    let report: serde_json::Value = loop {
        match call("napping") {
            (200, _, body) => break serde_json::from_str(&body).unwrap(),
            (409 | 503, _, _) => {}
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "the call was not settled after the database came back");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!((report["outcome"].as_str(), report["replayed"].as_bool()), (Some("timeout"), Some(true)), "{report}");
    assert!(report["resources_consumed"]["fuel"].as_u64().unwrap() > 0, "what it burned is charged: {report}");
    served.stop();
    check_ledger(&s.url, s.dir.path(), &[], 1_000_000);
}

#[test]
fn a_breaker_one_host_opens_is_open_on_the_others() {
    let s = setup(1_000_000);
    let dir = s.dir.path();
    let settings = fuelhost::SchedulerSettings {
        workers: 1,
        breaker_failures: 2,
        breaker_cool_down: Duration::from_secs(60),
        ..fuelhost::SchedulerSettings::default()
    };
    // Tasks run on whichever host starts them: only a runs any here, so
    // its own count opens the breaker.
    let open = |name: &str, workers: usize| {
        let settings = fuelhost::SchedulerSettings { workers, ..settings };
        Host::builder().data_dir(dir.join(name)).database(&s.url).host_name(name).scheduler(settings).build().unwrap()
    };
    let (a, b) = (open("a", 1), open("b", 0));
    let manifest = manifest("probe", 0, Limits::default());
    let probe = a.upload(manifest, &guest("rust-probe")).unwrap().id;
    for id in ["t1", "t2"] {
        a.submit_task(fuelhost::TaskRequest::new("bob", &probe, "trap").id(id)).unwrap();
        assert_eq!(a.wait_task(id, Duration::from_secs(30)).unwrap().state, fuelhost::TaskState::Failed);
    }
    let opened = a.circuit_breakers();
    assert_eq!(opened[0].state, fuelhost::BreakerState::Open);
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let seen = b.circuit_breakers();
        if seen.first().is_some_and(|x| x.state == fuelhost::BreakerState::Open) {
            assert_eq!(seen[0].open_until_ms, opened[0].open_until_ms);
            break;
        }
        assert!(Instant::now() < deadline, "host b does not see the breaker host a opened: {seen:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_task_running_past_a_take_over_round_runs_once() {
    let s = setup(1_000_000);
    let dir = s.dir.path();
    let host = host_with_workers(&s.url, &dir.join("a"), "a", 1);
    let nap = manifest("nap", 0, Limits { timeout_ms: 11_000, ..Limits::default() });
    let nap = host.upload(nap, &guest("rust-probe")).unwrap().id;
    // Runs past the host's first look for dead hosts' work (10 s in):
    // its own running task is not taken for another's.
    host.submit_task(fuelhost::TaskRequest::new("bob", &nap, "nap").id("long")).unwrap();
    let t = host.wait_task("long", Duration::from_secs(60)).unwrap();
    assert_eq!((t.state, t.attempts), (fuelhost::TaskState::TimedOut, 1), "{t:?}");
    let all = fuelhost::UsageQuery { limit: Some(100), ..Default::default() };
    let records = host.ledger().usage_records(&all).unwrap();
    let runs: Vec<_> = records.iter().filter(|r| r.invocation_id.starts_with("task/long/")).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
}
