//! Durability and contention: a host killed with SIGKILL in the middle of a
//! stream of invocations reopens with the books balanced and no hold left
//! dangling; many threads charging one payer never overspend it by a unit.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fuelhost::{Asset, Host, Invocation, InvokeError, Limits, Outcome, ResourcePolicy, TransferRequest};
use fuelhost_tests::{assert_conserved, fund, guest, manifest};

const CHILD_ENV: &str = "FUELHOST_KILL_TEST_DIR";

fn open(dir: &Path) -> Host {
    fuelhost_tests::builder(dir).max_instances(4).build().unwrap()
}

fn usage_count(dir: &Path) -> i64 {
    fuelhost_tests::tables(dir).count("SELECT COUNT(*) FROM usage_records")
}

/// Not a test on its own: the child process of the SIGKILL test. It
/// invokes and transfers until it is killed.
#[test]
#[ignore = "run as the child process of sigkill_mid_stream_leaves_no_hold_dangling"]
fn child_invokes_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let host = open(Path::new(&dir));
    for i in 0u64.. {
        let input = match i % 4 {
            0 => "spin:20000".to_string(),
            1 => format!("transfer:carol:{}", 1 + i % 3),
            2 => "loop".to_string(),
            _ => format!("write:f{}.txt:{i}", i % 5),
        };
        let _ = host.invoke(Invocation::new("bob", "alice/probe@0.1.0", input));
        let _ = host.transfer(&TransferRequest {
            id: format!("child-{}-{i}", std::process::id()),
            from: "bob".try_into().unwrap(),
            to: "carol".try_into().unwrap(),
            asset: Asset::Scrip,
            amount: 1,
            memo: String::new(),
        });
    }
}

#[test]
fn sigkill_mid_stream_leaves_no_hold_dangling() {
    let dir = tempfile::tempdir().unwrap();
    {
        let host = open(dir.path());
        for agent in ["alice", "bob", "carol"] {
            host.create_agent(agent).unwrap();
        }
        fund(&host, "alice", 1_000_000, 0, 1 << 20);
        fund(&host, "bob", 1_000_000, 1 << 50, 1 << 20);
        host.upload(
            manifest("probe", 3, ResourcePolicy::CallerPays, Limits { fuel: 2_000_000, ..Limits::default() }),
            &guest("rust-probe"),
        )
        .unwrap();
    }
    let mut settled_before = 0;
    for round in 0..4 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "durability::child_invokes_until_killed", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it settle a few invocations, then kill it at a moment that
        // varies from round to round.
        let deadline = Instant::now() + Duration::from_secs(60);
        while usage_count(dir.path()) < settled_before + 5 + round * 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(7 * round as u64));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let host = open(dir.path());
        assert_eq!(host.ledger().pending_holds().unwrap(), 0, "round {round}: a hold is dangling after restart");
        assert_conserved(&host);
        for agent in ["alice", "bob", "carol"] {
            let b = host.balances(agent).unwrap();
            for asset in Asset::ALL {
                assert_eq!(b.get(asset).held, 0, "round {round}: {agent} still holds {asset}");
            }
        }
        // Every price paid to alice came from bob, and bob's scrip fell by
        // exactly the prices plus its transfers to carol.
        let transfers = host.ledger().transfers().unwrap();
        let prices: u64 = transfers.iter().filter(|t| t.kind == fuelhost::TransferKind::Price).map(|t| t.amount).sum();
        let bob_out: u64 =
            transfers.iter().filter(|t| t.from == "bob" && t.asset == Asset::Scrip).map(|t| t.amount).sum();
        assert_eq!(host.balances("bob").unwrap().scrip.posted, 1_000_000 - bob_out);
        let alice_in: u64 = transfers
            .iter()
            .filter(|t| t.to == "alice" && t.asset == Asset::Scrip && t.from != "@mint")
            .map(|t| t.amount)
            .sum();
        assert_eq!(alice_in, prices);
        settled_before = usage_count(dir.path());
    }
    assert!(settled_before >= 20);
    let aborted =
        fuelhost_tests::tables(dir.path()).count("SELECT COUNT(*) FROM usage_records WHERE outcome = 'aborted'");
    eprintln!("{settled_before} invocations settled, {aborted} of them aborted by a kill and released on restart");
}

#[test]
fn many_threads_charging_one_payer_never_overspend_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let host = fuelhost_tests::builder(dir.path()).max_instances(16).build().unwrap();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
    }
    const BUDGET: u64 = 3_000_000;
    fund(&host, "bob", 1_000, BUDGET, 0);
    let id = host
        .upload(
            manifest("probe", 0, ResourcePolicy::CallerPays, Limits { fuel: 170_000, ..Limits::default() }),
            &guest("rust-probe"),
        )
        .unwrap()
        .id;
    let (charged, rejected): (Vec<u64>, Vec<usize>) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let host = host.clone();
                let id = id.clone();
                s.spawn(move || {
                    let (mut fuel, mut rejected) = (0u64, 0usize);
                    for _ in 0..6 {
                        match host.invoke(Invocation::new("bob", &id, "loop")) {
                            Ok(r) => {
                                assert_eq!(r.outcome, Outcome::OutOfFuel);
                                fuel += r.resources_consumed.fuel;
                            }
                            Err(InvokeError::InsufficientBudget { asset: Asset::Fuel, .. }) => rejected += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    (fuel, rejected)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).unzip()
    });
    let total: u64 = charged.iter().sum();
    assert_eq!(total, BUDGET, "every unit of the budget is spent, not one more");
    assert!(rejected.iter().sum::<usize>() > 0, "48 loops of 170,000 fuel exceed the budget");
    let b = host.balances("bob").unwrap();
    assert_eq!((b.fuel.posted, b.fuel.held), (0, 0));
    assert_conserved(&host);
}

/// One host per data directory: a second one (a second `serve`, or
/// `calibrate` aimed at a live server's directory) is refused with a
/// message naming the directory, since its recovery would release the
/// first one's holds; once the first is dropped, the directory opens.
#[test]
fn a_second_host_on_a_live_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let err = match fuelhost_tests::builder(dir.path()).build() {
        Ok(_) => panic!("a second host opened the same data directory"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("is in use by another fuelhost host"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    drop(first);
    open(dir.path());
}
