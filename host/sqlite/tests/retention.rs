//! Retention on the SQLite ledger: the records of calls settled before a
//! horizon move into archive files, every balance stays the sum of the
//! ledger's transfers, nothing is lost or archived twice when a move is
//! interrupted, and what is left works on after a reopen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use fuelhost_ledger::{
    AgentId, Asset, Ledger, LedgerError, LedgerQuery, Reservation, ResourcePolicy, ResourcesConsumed, Settlement,
    SponsorGrant, Transfer, TransferRequest,
};
use fuelhost_sqlite::{Durability, SqliteLedger};

fn id(agent: &str) -> AgentId {
    AgentId::new(agent).unwrap()
}

/// `alice` owns the artifact; `bob` and `carol` call it; `dave` sponsors
/// `carol`'s calls (which reserve through the tables, not in memory).
fn ledger(path: &Path) -> SqliteLedger {
    let ledger = SqliteLedger::open(path, Durability::Process).unwrap();
    for agent in ["alice", "bob", "carol", "dave"] {
        ledger.open_account(&id(agent)).unwrap();
        for (asset, amount) in [(Asset::Scrip, 10_000), (Asset::Fuel, 1_000_000), (Asset::DiskBytes, 1 << 20)] {
            ledger.post_one(Transfer::mint(&format!("fund-{agent}-{asset}"), &id(agent), asset, amount)).unwrap();
        }
    }
    let grant = SponsorGrant {
        id: "g".into(),
        sponsor: id("dave"),
        beneficiary: id("carol"),
        fuel_limit: 1_000_000,
        disk_limit: 1 << 20,
        expires_at_ms: None,
        artifacts: vec![],
    };
    ledger.grant_sponsorship(&grant).unwrap();
    ledger
}

/// A reservation of `caller`'s call of `alice/x@0.1.0` at `price`;
/// `carol`'s calls are paid by `dave`'s grant.
fn reservation(inv: &str, caller: &str, price: u64) -> Reservation {
    let sponsored = caller == "carol";
    Reservation {
        invocation_id: inv.into(),
        artifact: "alice/x@0.1.0".into(),
        resource_policy: ResourcePolicy::CallerPays,
        caller: id(caller),
        owner: id("alice"),
        payer: id(if sponsored { "dave" } else { caller }),
        price,
        fuel_limit: 1_000,
        sponsor_grant: sponsored.then(|| "g".to_string()),
        fresh_id: false,
    }
}

/// One call of `caller`, settled: fuel 10 + i, disk i % 3, price 7.
fn call(ledger: &SqliteLedger, inv: &str, caller: &str, i: u64) {
    let r = reservation(inv, caller, 7);
    ledger.reserve(&r).unwrap();
    let s = Settlement {
        consumed: ResourcesConsumed { fuel: 10 + i, disk_bytes: i % 3, ..Default::default() },
        output: format!("out-{i}").into_bytes(),
        ..settlement_of(&r)
    };
    ledger.settle(&s).unwrap();
}

/// Every account's balance of every asset, from the table.
fn balances(path: &Path) -> BTreeMap<(String, String), i64> {
    let db = rusqlite::Connection::open(path).unwrap();
    let mut stmt = db.prepare("SELECT account, asset, posted FROM balances").unwrap();
    let rows = stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?))).unwrap();
    rows.map(Result::unwrap).filter(|(_, posted)| *posted != 0).collect()
}

/// Every account's balance of every asset, as the sum of the ledger's
/// transfers and charges.
fn sums_of_transfers(ledger: &SqliteLedger) -> BTreeMap<(String, String), i64> {
    let mut sums: BTreeMap<(String, String), i64> = BTreeMap::new();
    for t in ledger.transfers().unwrap() {
        *sums.entry((t.to.clone(), t.asset.as_str().into())).or_default() += t.amount as i64;
        *sums.entry((t.from.clone(), t.asset.as_str().into())).or_default() -= t.amount as i64;
    }
    sums.retain(|_, v| *v != 0);
    sums
}

fn count(path: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(path).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Every archived line, parsed, from every usage file under `dir`.
fn archived_lines(dir: &Path) -> Vec<serde_json::Value> {
    let Ok(files) = std::fs::read_dir(dir.join("usage")) else { return Vec::new() };
    let mut files: Vec<_> = files.map(|f| f.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("an archived line is not JSON ({e}): {l}")))
        .collect()
}

fn now_ms() -> i64 {
    fuelhost_ledger::now_ms()
}

#[test]
fn archiving_keeps_every_balance_the_sum_of_the_ledger() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, archive) = (tmp.path().join("ledger.db"), tmp.path().join("archive"));
    let ledger = ledger(&path);
    for i in 0..30 {
        call(&ledger, &format!("fast-{i}"), "bob", i);
    }
    for i in 0..10 {
        call(&ledger, &format!("slow-{i}"), "carol", i);
    }
    ledger.post_one(Transfer::requested(&request("pay-1", "bob", "carol", 5))).unwrap();
    let before = balances(&path);
    assert_eq!(sums_of_transfers(&ledger), before, "the check itself: balances are the sums before archiving");
    let stats = ledger.stats().unwrap();
    let charges_before = ledger.transfers().unwrap().len() - 13;

    let done = ledger.archive_settled(now_ms() + 1, &archive).unwrap();
    assert_eq!(done.records, 40);
    assert_eq!(done.charges as usize, charges_before);

    // The history left the tables, and only it.
    assert_eq!(count(&path, "SELECT COUNT(*) FROM usage_records"), 0);
    assert_eq!(count(&path, "SELECT COUNT(*) FROM reservations"), 0, "settled reservations go with their records");
    assert_eq!(count(&path, "SELECT COUNT(*) FROM holds"), 0, "posted holds go with their records");
    assert_eq!(count(&path, "SELECT COUNT(*) FROM transfers WHERE invocation IS NOT NULL"), 0);
    assert_eq!(ledger.usage_record("fast-0").unwrap(), None);
    assert!(ledger.transfer_record("pay-1").unwrap().is_some(), "explicit transfers stay");

    // Balances are unchanged and still the sums of what the ledger lists.
    assert_eq!(balances(&path), before);
    assert_eq!(sums_of_transfers(&ledger), before);
    for asset in Asset::ALL {
        assert_eq!(ledger.asset_total(asset).unwrap(), 0, "{asset} is not conserved");
    }
    assert_eq!(ledger.stats().unwrap(), stats, "the statistics' totals are kept");
    let summaries: Vec<_> = ledger
        .transfers()
        .unwrap()
        .into_iter()
        .filter(|t| t.id.starts_with(fuelhost_ledger::ARCHIVED_PREFIX))
        .collect();
    // Price bob -> alice and carol -> alice, fuel and disk of bob and of
    // dave, in each hour the calls settled in.
    assert!(summaries.len() >= 6, "{summaries:?}");
    assert!(summaries.iter().all(|t| t.memo.contains("archived in usage/")), "{summaries:?}");

    // Every record is in the archive once, with its charges.
    let lines = archived_lines(&archive);
    let ids: BTreeSet<&str> = lines.iter().map(|l| l["invocation_id"].as_str().unwrap()).collect();
    assert_eq!((lines.len(), ids.len()), (40, 40));
    let fast = lines.iter().find(|l| l["invocation_id"] == "fast-5").unwrap();
    assert_eq!(fast["output"], "out-5");
    let kinds: Vec<&str> = fast["charges"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["price", "fuel", "disk"]);
    let slow = lines.iter().find(|l| l["invocation_id"] == "slow-1").unwrap();
    let charges = slow["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 3, "{slow}");
    assert!(charges.iter().any(|c| c["kind"] == "fuel" && c["from"] == "dave" && c["amount"] == 11), "{slow}");
    let archived: u64 = lines
        .iter()
        .flat_map(|l| l["charges"].as_array().unwrap().clone())
        .map(|c| c["amount"].as_u64().unwrap())
        .sum();
    assert_eq!(archived, summaries.iter().map(|t| t.amount).sum::<u64>());

    // A second pass finds nothing; the summaries' ids are no one else's.
    assert_eq!(ledger.archive_settled(now_ms() + 1, &archive).unwrap().records, 0);
    let taken = ledger.post_one(Transfer::requested(&request(&summaries[0].id, "bob", "carol", 1))).unwrap_err();
    assert!(matches!(&taken, LedgerError::IdConflict(_)), "{taken:?}");
    let kept = ledger.post_one(Transfer::requested(&request("archived:mine", "bob", "carol", 1))).unwrap_err();
    assert!(matches!(&kept, LedgerError::Invalid(m) if m.contains("archived:")), "{kept:?}");

    // Reopened, the ledger goes on: new calls, listed after the summaries.
    drop(ledger);
    let ledger = SqliteLedger::open(&path, Durability::Process).unwrap();
    call(&ledger, "after", "bob", 1);
    let last = ledger.transfers().unwrap().pop().unwrap();
    assert_eq!(last.id, "after/disk");
    assert_eq!(sums_of_transfers(&ledger), balances(&path));
}

/// Only records settled before the horizon go, and a move interrupted
/// after it wrote its lines (before it deleted their records) leaves no
/// line twice: the next one cuts them off and writes them again.
#[test]
fn an_interrupted_move_is_redone_and_the_horizon_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, archive) = (tmp.path().join("ledger.db"), tmp.path().join("archive"));
    let ledger = ledger(&path);
    for i in 0..5 {
        call(&ledger, &format!("old-{i}"), "bob", i);
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    let horizon = now_ms();
    std::thread::sleep(std::time::Duration::from_millis(5));
    for i in 0..5 {
        call(&ledger, &format!("new-{i}"), "carol", i);
    }
    assert_eq!(ledger.archive_settled(horizon, &archive).unwrap().records, 5);
    assert_eq!(count(&path, "SELECT COUNT(*) FROM usage_records WHERE invocation_id LIKE 'new-%'"), 5);

    // What a move that died between its write and its commit leaves: lines
    // past the length the database recorded: here more than the move will
    // write again, ending in half a line.
    let file = std::fs::read_dir(archive.join("usage"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .find(|f| std::fs::read_to_string(f).unwrap().contains("\"old-0\""))
        .unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    let tail = format!("{}{{\"invocation_id\": \"new-0\", \"half", "{\"invocation_id\": \"new-0\"}\n".repeat(500));
    std::io::Write::write_all(&mut f, tail.as_bytes()).unwrap();
    drop(f);
    assert_eq!(ledger.archive_settled(now_ms() + 1, &archive).unwrap().records, 5);
    let lines = archived_lines(&archive);
    let ids: Vec<&str> = lines.iter().map(|l| l["invocation_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10, "{ids:?}");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 10, "{ids:?}");
    assert_eq!(sums_of_transfers(&ledger), balances(&path));

    // A file cut shorter than what was committed to it is refused, not
    // written over.
    call(&ledger, "late", "bob", 0);
    let old = lines.iter().find(|l| l["invocation_id"] == "old-0").unwrap()["settled_at_ms"].as_i64().unwrap();
    assert!(ledger.usage_record("late").unwrap().is_some());
    let db = rusqlite::Connection::open(&path).unwrap();
    // Settled in the hour of the file, whatever the clock says now.
    db.execute("UPDATE usage_records SET settled_ms = ?1 WHERE invocation_id = 'late'", [old]).unwrap();
    std::fs::write(&file, b"").unwrap();
    let err = ledger.archive_settled(now_ms() + 1, &archive).unwrap_err();
    assert!(err.to_string().contains("truncated or replaced outside fuelhost"), "{err}");
    assert_eq!(count(&path, "SELECT COUNT(*) FROM usage_records"), 1, "nothing deleted");
}

/// The positions of archived records are never handed out again, so the
/// statistics, which count records by position, miss none: not when a
/// move is the first thing a reopened ledger does (its summaries then take
/// the first positions it hands out), nor when the newest records moved
/// carried no charge (and left no summary behind).
#[test]
fn archived_positions_are_never_handed_out_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, archive) = (tmp.path().join("ledger.db"), tmp.path().join("archive"));
    let ledger = ledger(&path);
    for i in 0..6 {
        call(&ledger, &format!("a-{i}"), "bob", i);
    }
    // The newest records charge nothing: aborted calls of an owner.
    for i in 0..3 {
        let r = reservation(&format!("free-{i}"), "alice", 0);
        ledger.reserve(&r).unwrap();
        let mut s = settlement_of(&r);
        s.outcome = fuelhost_ledger::Outcome::Aborted;
        ledger.settle(&s).unwrap();
    }
    let calls = |l: &SqliteLedger| l.stats().unwrap().total_usage_records;
    assert_eq!(calls(&ledger), 9);
    drop(ledger);

    // Reopened, and archiving before anything else.
    let ledger = SqliteLedger::open(&path, Durability::Process).unwrap();
    assert_eq!(ledger.archive_settled(now_ms() + 1, &archive).unwrap().records, 9);
    call(&ledger, "b-0", "bob", 0);
    let b0 = ledger.usage_record("b-0").unwrap().unwrap().seq;
    let archived_max = archived_lines(&archive).iter().map(|l| l["seq"].as_i64().unwrap()).max().unwrap();
    assert!(b0 > archived_max, "a new record took position {b0}, at or below the archived {archived_max}");
    assert_eq!(calls(&ledger), 10);
    drop(ledger);

    let ledger = SqliteLedger::open(&path, Durability::Process).unwrap();
    assert_eq!(calls(&ledger), 10, "no record is lost to the counters across a reopen");
    call(&ledger, "b-1", "bob", 1);
    assert!(ledger.usage_record("b-1").unwrap().unwrap().seq > b0);
    assert_eq!(calls(&ledger), 11);
    drop(ledger);
    let ledger = SqliteLedger::open(&path, Durability::Process).unwrap();
    assert_eq!(calls(&ledger), 11);
    assert_eq!(sums_of_transfers(&ledger), balances(&path));

    // Within the horizon a replayed id is still answered.
    let again = ledger.reserve(&reservation("b-1", "bob", 7));
    assert!(matches!(again, Err(LedgerError::DuplicateInvocation(_))), "{again:?}");
}

fn settlement_of(r: &Reservation) -> Settlement {
    Settlement {
        invocation_id: r.invocation_id.clone(),
        artifact: r.artifact.clone(),
        caller: r.caller.clone(),
        owner: r.owner.clone(),
        payer: r.payer.clone(),
        resource_policy: r.resource_policy,
        outcome: fuelhost_ledger::Outcome::Success,
        consumed: ResourcesConsumed::default(),
        output: Vec::new(),
        error: None,
        cost_model: Default::default(),
        admission: None,
    }
}

fn request(tid: &str, from: &str, to: &str, amount: u64) -> TransferRequest {
    TransferRequest { id: tid.into(), from: id(from), to: id(to), asset: Asset::Scrip, amount, memo: String::new() }
}

/// Lines a move wrote and never committed, in a file no later move writes
/// to (their records went another way, or their hour is over), are cut at
/// the next move's start, even one with nothing to move: no archive file
/// keeps a line its database did not record.
#[test]
fn an_uncommitted_tail_no_move_revisits_is_cut_all_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, archive) = (tmp.path().join("ledger.db"), tmp.path().join("archive"));
    let ledger = ledger(&path);
    for i in 0..3 {
        call(&ledger, &format!("c-{i}"), "bob", i);
    }
    assert_eq!(ledger.archive_settled(now_ms() + 1, &archive).unwrap().records, 3);
    let file = std::fs::read_dir(archive.join("usage")).unwrap().next().unwrap().unwrap().path();
    let committed = std::fs::read(&file).unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    std::io::Write::write_all(&mut f, b"{\"invocation_id\": \"ghost\"}\n").unwrap();
    drop(f);
    assert_eq!(ledger.archive_settled(now_ms() + 1, &archive).unwrap().records, 0);
    assert_eq!(std::fs::read(&file).unwrap(), committed, "the tail is gone, the committed lines kept");
    assert_eq!(archived_lines(&archive).len(), 3);
}
