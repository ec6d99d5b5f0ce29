//! A server killed with SIGKILL in the middle of its work, restarted and
//! killed again, several times: no accepted task is lost, none completes
//! twice, no call is charged twice, and the ledger stays balanced.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fuelhost::{Asset, Host, Limits, Manifest, SchedulerSettings, TaskRequest, TaskState};

use super::guest;

const BIN: &str = env!("CARGO_BIN_EXE_fuelhost");

/// A manifest of alice's with room for the spinning tasks.
fn manifest(name: &str, price: u64) -> Manifest {
    super::manifest(name, price, Limits { fuel: 10_000_000_000, timeout_ms: 60_000, ..Limits::default() })
}

/// `fuelhost serve` on `config`, once it listens.
fn serve(config: &Path) -> Child {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("FUELHOST_DATA_DIR")
        .env_remove("FUELHOST_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("the server exited before listening").unwrap();
        if line.starts_with("fuelhost serving on ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

const PRICE: u64 = 3;
const SCRIP: u64 = 1_000_000;

#[test]
fn a_server_killed_again_and_again_loses_no_task_and_completes_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cache = dir.path().join("cache");
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, format!("data_dir = {data:?}\nlisten = \"127.0.0.1:0\"\ncompile_cache_dir = {cache:?}\n"))
        .unwrap();
    let open = |workers: usize| {
        let settings = SchedulerSettings { workers, ..SchedulerSettings::default() };
        Host::builder().data_dir(&data).compile_cache_dir(&cache).scheduler(settings).build().unwrap()
    };

    // Accepted before any server runs: agents, money, two artifacts, tasks.
    let mut ids = Vec::new();
    {
        let host = open(0);
        for agent in ["alice", "bob"] {
            host.create_agent(agent).unwrap();
        }
        host.mint("seed-scrip", "bob", Asset::Scrip, SCRIP).unwrap();
        host.mint("seed-fuel", "bob", Asset::Fuel, 1 << 50).unwrap();
        let spin = host.upload(manifest("spin", PRICE), &guest("rust-probe")).unwrap().id;
        let echo = host.upload(manifest("echo", PRICE), &guest("rust-echo")).unwrap().id;
        for i in 0..40 {
            let id = format!("t{i}");
            let req = match i % 2 {
                0 => TaskRequest::new("bob", &spin, "spin:200000000"),
                _ => TaskRequest::new("bob", &echo, "x"),
            };
            host.submit_task(req.id(&id).retries(3, Duration::from_millis(5))).unwrap();
            ids.push(id);
        }
    }

    // Kill the server at a different point of its work each round.
    for round in 0..4u64 {
        let mut server = serve(&config);
        std::thread::sleep(Duration::from_millis(150 + 90 * round));
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
    }

    // The kills interrupted the work: some tasks ended, some did not.
    let ended = {
        let host = open(0);
        ids.iter().filter(|id| host.task(id).unwrap().state.is_final()).count()
    };
    eprintln!("ended before the last start: {ended} of {}", ids.len());
    assert!(ended < ids.len(), "the servers finished everything before they were killed: give them more work");

    // The last host finishes what the kills left.
    let host = open(2);
    let mut completed = 0;
    for id in &ids {
        let t = host.wait_task(id, Duration::from_secs(120)).unwrap();
        assert_eq!(t.state, TaskState::Completed, "{t:?}");
        completed += 1;
    }
    let records = host.ledger().usage_records(&Default::default()).unwrap();
    for id in &ids {
        let prefix = format!("task/{id}/");
        let ok = records
            .iter()
            .filter(|r| r.invocation_id.starts_with(&prefix) && r.outcome == fuelhost::Outcome::Success)
            .count();
        assert_eq!(ok, 1, "task {id} completed {ok} times");
    }
    let paid: u64 = records.iter().map(|r| r.price_paid).sum();
    assert_eq!(paid, PRICE * completed, "each completed task paid its price once");
    assert_eq!(host.balances("bob").unwrap().scrip.posted, SCRIP - paid);
    assert_eq!(host.balances("alice").unwrap().scrip.posted, paid);
    for asset in Asset::ALL {
        assert_eq!(host.ledger().asset_total(asset).unwrap(), 0, "{asset} is not conserved");
    }
    assert_eq!(host.ledger().pending_holds().unwrap(), 0, "no hold outlived its call");
}
