//! The settlement journal across SIGKILL: a child process settles calls
//! on two threads as fast as it can (so batches hold several settlements,
//! and the projector moves the journal into the tables as it goes), and
//! prints each call's id once its settlement returned. The parent kills
//! it at a different point each round, mid-batch or mid-projection as it
//! falls, reopens the file, and checks that every acknowledged call is
//! recorded and charged exactly once, that nothing else was charged, and
//! that every asset is conserved.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use fuelhost_ledger::{AgentId, Asset, Ledger, LedgerQuery, Outcome, Reservation, Settlement, Transfer};
use fuelhost_sqlite::{Durability, SqliteLedger};

/// Set in the child: the database file it settles into.
const CHILD_ENV: &str = "FUELHOST_JOURNAL_CRASH_CHILD";

/// What each call moves: its price from the caller to the owner, and the
/// fuel it burned from the caller to `@consumed`.
const PRICE: u64 = 3;
const FUEL: u64 = 7;

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

/// The child's work: settle calls on two threads until killed, printing
/// `<id>` after each settlement returned.
#[test]
#[ignore = "run by `a_killed_host_keeps_every_acknowledged_settlement`, in a child process"]
fn settle_until_killed() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let ledger = SqliteLedger::open(Path::new(&path), Durability::Process).unwrap();
    let round = std::process::id();
    std::thread::scope(|s| {
        for thread in 0..2 {
            let ledger = &ledger;
            s.spawn(move || {
                for n in 0u64.. {
                    let id = format!("r{round}-t{thread}-{n}");
                    let r = Reservation {
                        invocation_id: id.clone(),
                        artifact: "owner/x@1".into(),
                        resource_policy: fuelhost_ledger::ResourcePolicy::CallerPays,
                        caller: agent("caller"),
                        owner: agent("owner"),
                        payer: agent("caller"),
                        price: PRICE,
                        fuel_limit: 1_000,
                        sponsor_grant: None,
                        fresh_id: n % 2 == 0,
                    };
                    ledger.reserve(&r).unwrap();
                    ledger
                        .settle(&Settlement {
                            invocation_id: id.clone(),
                            artifact: r.artifact.clone(),
                            caller: r.caller.clone(),
                            owner: r.owner.clone(),
                            payer: r.payer.clone(),
                            resource_policy: r.resource_policy,
                            outcome: Outcome::Success,
                            consumed: fuelhost_ledger::ResourcesConsumed { fuel: FUEL, ..Default::default() },
                            output: Vec::new(),
                            error: None,
                            cost_model: Default::default(),
                            admission: None,
                        })
                        .unwrap();
                    println!("{id}");
                }
            });
        }
    });
}

/// Run the child until it acknowledged `calls` settlements, kill it, and
/// return the ids it acknowledged.
fn run_and_kill(path: &Path, calls: usize) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "settle_until_killed", "--ignored", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acknowledged = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with('r') && line.contains("-t") {
            acknowledged.push(line);
            if acknowledged.len() >= calls {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(acknowledged.len() >= calls, "the child stopped after {} settlements", acknowledged.len());
    acknowledged
}

#[test]
fn a_killed_host_keeps_every_acknowledged_settlement() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    {
        let ledger = SqliteLedger::open(&path, Durability::Process).unwrap();
        for name in ["caller", "owner"] {
            ledger.open_account(&agent(name)).unwrap();
        }
        for (asset, amount) in [(Asset::Scrip, 1_000_000), (Asset::Fuel, 1_000_000_000)] {
            ledger.post_one(Transfer::mint(&format!("fund-{asset}"), &agent("caller"), asset, amount)).unwrap();
        }
    }
    let mut acknowledged = Vec::new();
    // Each round stops at a different count, so the kill lands at a
    // different point of a batch or a projection.
    for (round, calls) in [450, 1_337, 97, 2_048, 611].into_iter().enumerate() {
        acknowledged.extend(run_and_kill(&path, calls));
        let ledger = SqliteLedger::open(&path, Durability::Process).unwrap();
        let records =
            ledger.usage_records(&fuelhost_ledger::UsageQuery { limit: Some(1_000_000), ..Default::default() });
        let records = records.unwrap();
        let recorded: std::collections::HashSet<&str> = records.iter().map(|r| r.invocation_id.as_str()).collect();
        assert_eq!(recorded.len(), records.len(), "round {round}: a call was recorded twice");
        for id in &acknowledged {
            assert!(recorded.contains(id.as_str()), "round {round}: acknowledged call {id} was lost");
        }
        // Calls settled but killed before they were acknowledged may be
        // recorded too; each recorded call charged exactly its amounts.
        let n = records.len() as u64;
        for r in &records {
            assert_eq!((r.price_paid, r.consumed.fuel), (PRICE, FUEL), "round {round}: {}", r.invocation_id);
        }
        let balances = |who: &str| ledger.balances(&agent(who)).unwrap();
        assert_eq!(balances("owner").scrip.posted, n * PRICE, "round {round}: the owner's earnings");
        assert_eq!(balances("caller").scrip.posted, 1_000_000 - n * PRICE, "round {round}: the caller's scrip");
        assert_eq!(balances("caller").fuel.posted, 1_000_000_000 - n * FUEL, "round {round}: the caller's fuel");
        assert_eq!(balances("caller").scrip.held + balances("caller").fuel.held, 0, "round {round}: a hold survived");
        for asset in Asset::ALL {
            assert_eq!(ledger.asset_total(asset).unwrap(), 0, "round {round}: {asset} is not conserved");
        }
    }
}
