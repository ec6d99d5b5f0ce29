//! The PostgreSQL ledger against a real server (a scratch one from
//! Debian's `postgresql`), and beside the SQLite ledger: the same
//! scenarios must end the same on both. Then what only several hosts
//! over one database can show: posting from many connections at once
//! keeps every balance at or above zero, every transfer once, every
//! asset summing to zero.

use std::sync::Arc;

use fuelhost_ledger::{
    AgentId, Asset, Distribution, Ledger, LedgerError, LedgerQuery, SponsorGrant, SponsorGrantStatus, Transfer,
    TransferKind, TransferQuery, UbiSource,
};
use fuelhost_postgres::{PgLedger, ScratchServer};
use fuelhost_sqlite::{Durability, SqliteLedger};

/// What the scenarios need of a ledger, on either backend.
trait Backend {
    fn open_account(&self, agent: &str) -> Result<(), LedgerError>;
    fn post(&self, batch: &[Transfer]) -> Result<Vec<Transfer>, LedgerError>;
    fn available(&self, agent: &str, asset: Asset) -> u64;
    fn total(&self, asset: Asset) -> i128;
    fn listing(&self, q: &TransferQuery) -> Vec<(i64, String)>;
    fn grant(&self, g: &SponsorGrant) -> Result<(), LedgerError>;
    fn revoke(&self, id: &str) -> Result<(), LedgerError>;
    fn grant_status(&self, id: &str) -> Option<SponsorGrantStatus>;
    fn grant_for(&self, beneficiary: &str, artifact: &str) -> Option<String>;
    fn ubi(&self, id: &str, source: UbiSource, amount: u64) -> Result<Distribution, LedgerError>;
}

fn id(agent: &str) -> AgentId {
    AgentId::new(agent).unwrap()
}

impl Backend for SqliteLedger {
    fn open_account(&self, agent: &str) -> Result<(), LedgerError> {
        Ledger::open_account(self, &id(agent))
    }
    fn post(&self, batch: &[Transfer]) -> Result<Vec<Transfer>, LedgerError> {
        Ledger::post(self, batch)
    }
    fn available(&self, agent: &str, asset: Asset) -> u64 {
        fuelhost_ledger::LedgerQuery::balances(self, &id(agent)).unwrap().get(asset).available()
    }
    fn total(&self, asset: Asset) -> i128 {
        fuelhost_ledger::LedgerQuery::asset_total(self, asset).unwrap()
    }
    fn listing(&self, q: &TransferQuery) -> Vec<(i64, String)> {
        let listed = fuelhost_ledger::LedgerQuery::transfer_listing(self, q).unwrap();
        listed.into_iter().map(|l| (l.seq, l.item.id)).collect()
    }
    fn grant(&self, g: &SponsorGrant) -> Result<(), LedgerError> {
        Ledger::grant_sponsorship(self, g)
    }
    fn revoke(&self, id: &str) -> Result<(), LedgerError> {
        Ledger::revoke_sponsorship(self, id)
    }
    fn grant_status(&self, id: &str) -> Option<SponsorGrantStatus> {
        LedgerQuery::sponsorship(self, id).unwrap()
    }
    fn grant_for(&self, beneficiary: &str, artifact: &str) -> Option<String> {
        LedgerQuery::sponsorship_for(self, &id(beneficiary), artifact).unwrap().map(|g| g.grant.id)
    }
    fn ubi(&self, id: &str, source: UbiSource, amount: u64) -> Result<Distribution, LedgerError> {
        Ledger::distribute_ubi(self, id, source, amount)
    }
}

impl Backend for PgLedger {
    fn open_account(&self, agent: &str) -> Result<(), LedgerError> {
        PgLedger::open_account(self, &id(agent))
    }
    fn post(&self, batch: &[Transfer]) -> Result<Vec<Transfer>, LedgerError> {
        PgLedger::post(self, batch)
    }
    fn available(&self, agent: &str, asset: Asset) -> u64 {
        self.balances(&id(agent)).unwrap().get(asset).available()
    }
    fn total(&self, asset: Asset) -> i128 {
        self.asset_total(asset).unwrap()
    }
    fn listing(&self, q: &TransferQuery) -> Vec<(i64, String)> {
        self.transfer_listing(q).unwrap().into_iter().map(|l| (l.seq, l.item.id)).collect()
    }
    fn grant(&self, g: &SponsorGrant) -> Result<(), LedgerError> {
        self.grant_sponsorship(g)
    }
    fn revoke(&self, id: &str) -> Result<(), LedgerError> {
        self.revoke_sponsorship(id)
    }
    fn grant_status(&self, id: &str) -> Option<SponsorGrantStatus> {
        self.sponsorship(id).unwrap()
    }
    fn grant_for(&self, beneficiary: &str, artifact: &str) -> Option<String> {
        self.sponsorship_for(&id(beneficiary), artifact).unwrap().map(|g| g.grant.id)
    }
    fn ubi(&self, id: &str, source: UbiSource, amount: u64) -> Result<Distribution, LedgerError> {
        self.distribute_ubi(id, source, amount)
    }
}

/// A fresh database on the shared scratch server.
fn postgres(name: &str) -> (Arc<ScratchServer>, PgLedger) {
    let server = ScratchServer::shared().expect("a scratch PostgreSQL server (scripts/setup.sh installs it)");
    let url = server.fresh_database(name).unwrap();
    let ledger = PgLedger::open(&url, 8).unwrap();
    (server, ledger)
}

fn sqlite() -> (tempfile::TempDir, SqliteLedger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = SqliteLedger::open(&dir.path().join("ledger.db"), Durability::Process).unwrap();
    (dir, ledger)
}

fn mint(tid: &str, agent: &str, amount: u64) -> Transfer {
    Transfer::mint(tid, &id(agent), Asset::Scrip, amount)
}

fn pay(tid: &str, from: &str, to: &str, amount: u64) -> Transfer {
    Transfer {
        id: tid.into(),
        from: from.into(),
        to: to.into(),
        asset: Asset::Scrip,
        amount,
        kind: TransferKind::Transfer,
        memo: String::new(),
    }
}

/// The scenarios, on one backend.
fn scenarios(l: &dyn Backend) {
    for agent in ["alice", "bob", "carol"] {
        l.open_account(agent).unwrap();
    }
    assert!(matches!(l.open_account("alice"), Err(LedgerError::AccountExists(_))));
    l.post(&[mint("m-alice", "alice", 100), mint("m-bob", "bob", 50)]).unwrap();

    // A batch posts whole or not at all.
    let e = l.post(&[pay("t1", "alice", "carol", 60), pay("t2", "bob", "carol", 51)]).unwrap_err();
    assert!(
        matches!(e, LedgerError::Insufficient { ref account, available: 50, needed: 51, .. } if account == "bob"),
        "{e}"
    );
    assert_eq!(
        (l.available("alice", Asset::Scrip), l.available("carol", Asset::Scrip)),
        (100, 0),
        "nothing of it posted"
    );

    // A replay returns the transfer as first posted; the id for another
    // transfer is a conflict; an unknown account is named.
    let first = l.post(&[pay("t1", "alice", "carol", 60)]).unwrap();
    assert_eq!(l.post(&[pay("t1", "alice", "carol", 60)]).unwrap(), first);
    assert!(matches!(l.post(&[pay("t1", "alice", "carol", 61)]), Err(LedgerError::IdConflict(_))));
    assert!(matches!(l.post(&[pay("t9", "alice", "dave", 1)]), Err(LedgerError::UnknownAccount(ref a)) if a == "dave"));
    assert_eq!(l.available("alice", Asset::Scrip), 40, "moved once");

    // Only @mint goes below zero, and no balance passes 2^63 - 1.
    assert!(matches!(l.post(&[pay("t3", "alice", "bob", 41)]), Err(LedgerError::Insufficient { .. })));
    let e = l.post(&[mint("m-big", "carol", i64::MAX as u64)]).unwrap_err();
    assert!(matches!(e, LedgerError::Conflict(_)), "{e}");
    // Transfers that break their kind's rules never reach the tables.
    let burn_fuel = Transfer { asset: Asset::Fuel, kind: TransferKind::Burn, ..pay("b1", "alice", "@burn", 1) };
    assert!(matches!(l.post(&[burn_fuel]), Err(LedgerError::Invalid(_))));
    assert!(matches!(l.post(&[pay("archived:x", "alice", "bob", 1)]), Err(LedgerError::Invalid(_))));

    // Listings: newest first, by agent, in pages.
    l.post(&[pay("t4", "bob", "alice", 5), pay("t5", "carol", "bob", 7)]).unwrap();
    let all: Vec<String> = l.listing(&TransferQuery::default()).into_iter().map(|(_, id)| id).collect();
    assert_eq!(all, ["t5", "t4", "t1", "m-bob", "m-alice"]);
    let alice = l.listing(&TransferQuery { agent: Some(id("alice")), limit: Some(2), ..Default::default() });
    assert_eq!(alice.iter().map(|(_, id)| id.as_str()).collect::<Vec<_>>(), ["t4", "t1"]);
    let next = TransferQuery { agent: Some(id("alice")), before: Some(alice[1].0), ..Default::default() };
    assert_eq!(l.listing(&next).into_iter().map(|(_, id)| id).collect::<Vec<_>>(), ["m-alice"]);

    for asset in Asset::ALL {
        assert_eq!(l.total(asset), 0, "{asset} is conserved");
    }
}

/// Sponsor grants and UBI, on one backend (after [`scenarios`]).
fn economy(l: &dyn Backend) {
    let grant = |gid: &str, artifacts: Vec<String>| SponsorGrant {
        id: gid.into(),
        sponsor: id("carol"),
        beneficiary: id("bob"),
        fuel_limit: 1_000,
        disk_limit: 0,
        expires_at_ms: None,
        artifacts,
    };
    let echo = vec!["alice/echo@1".to_string()];
    l.grant(&grant("g1", echo.clone())).unwrap();
    l.grant(&grant("g1", echo.clone())).unwrap(); // a replay
    assert!(matches!(l.grant(&grant("g1", vec![])), Err(LedgerError::IdConflict(_))));
    let selfish = SponsorGrant { beneficiary: id("carol"), ..grant("g2", vec![]) };
    assert!(matches!(l.grant(&selfish), Err(LedgerError::Invalid(_))));
    let stranger = SponsorGrant { beneficiary: id("dave"), ..grant("g3", vec![]) };
    assert!(matches!(l.grant(&stranger), Err(LedgerError::UnknownAccount(_))));
    assert_eq!(l.grant_for("bob", "alice/echo@1").as_deref(), Some("g1"));
    assert_eq!(l.grant_for("bob", "alice/other@1"), None, "not an artifact it names");
    assert_eq!(l.grant_for("alice", "alice/echo@1"), None, "not its beneficiary");
    l.revoke("g1").unwrap();
    assert!(l.grant_status("g1").unwrap().revoked);
    assert_eq!(l.grant_for("bob", "alice/echo@1"), None, "revoked");
    assert!(matches!(l.revoke("nope"), Err(LedgerError::Invalid(_))));

    // UBI: an equal share each, the remainder left in the source, once.
    let before: Vec<u64> = ["alice", "bob", "carol"].iter().map(|a| l.available(a, Asset::Scrip)).collect();
    let d = l.ubi("ubi-1", UbiSource::Mint, 100).unwrap();
    assert_eq!((d.recipients, d.per_agent, d.remainder), (3, 33, 1));
    assert_eq!(l.ubi("ubi-1", UbiSource::Mint, 100).unwrap(), d, "a replay");
    assert!(matches!(l.ubi("ubi-1", UbiSource::Mint, 99), Err(LedgerError::IdConflict(_))));
    let after: Vec<u64> = ["alice", "bob", "carol"].iter().map(|a| l.available(a, Asset::Scrip)).collect();
    assert_eq!(after, before.iter().map(|b| b + 33).collect::<Vec<_>>());
    let e = l.ubi("ubi-2", UbiSource::Pool, 30).unwrap_err();
    assert!(matches!(e, LedgerError::Insufficient { ref account, needed: 30, .. } if account == "@pool"), "{e}");
    for asset in Asset::ALL {
        assert_eq!(l.total(asset), 0, "{asset} is conserved");
    }
}

#[test]
fn the_scenarios_end_the_same_on_sqlite_and_postgresql() {
    let (_dir, sqlite) = sqlite();
    scenarios(&sqlite);
    economy(&sqlite);
    let (_server, pg) = postgres("scenarios");
    scenarios(&pg);
    economy(&pg);
}

/// Four "hosts" (each its own pool) post at once between four agents,
/// many transfers reusing ids: every id moves once, nobody goes below
/// zero, the sums stay zero.
#[test]
fn many_hosts_posting_at_once_lose_and_double_nothing() {
    let (server, first) = postgres("hosts");
    let url = format!("postgres://fuelhost@127.0.0.1:{}/hosts", server.port());
    let agents = ["a", "b", "c", "d"];
    for agent in agents {
        first.open_account(&id(agent)).unwrap();
        // Little to spend, so the check of what a sender has is raced.
        first.post_one(mint(&format!("seed-{agent}"), agent, 40)).unwrap();
    }
    let hosts: Vec<PgLedger> = (0..4).map(|_| PgLedger::open(&url, 4).unwrap()).collect();
    let short = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for (h, host) in hosts.iter().enumerate() {
            let short = &short;
            s.spawn(move || {
                for n in 0..300u64 {
                    // Ids repeat across hosts: each is one transfer, made
                    // by whichever host comes first (the same id always
                    // names the same transfer).
                    let k = (n * 7 + h as u64 * 13) % 200;
                    // Mostly a and b paying c and d, so a and b run dry;
                    // some back, so money keeps moving.
                    let (from, to) = match k % 5 {
                        4 => (agents[2 + (k / 5 % 2) as usize], agents[(k / 10 % 2) as usize]),
                        _ => (agents[(k % 2) as usize], agents[2 + (k / 2 % 2) as usize]),
                    };
                    match host.post_one(pay(&format!("t-{k}"), from, to, 7 + (k % 5))) {
                        Ok(_) => {}
                        Err(LedgerError::Insufficient { .. }) => {
                            short.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    assert!(short.into_inner() > 0, "some senders ran short, so the check was raced");
    let transfers = first.transfers().unwrap();
    let mut ids: Vec<&str> = transfers.iter().map(|t| t.id.as_str()).collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "no id twice");
    for agent in agents {
        let b = first.balances(&id(agent)).unwrap().scrip;
        let received: i64 = transfers.iter().filter(|t| t.to == agent).map(|t| t.amount as i64).sum();
        let sent: i64 = transfers.iter().filter(|t| t.from == agent).map(|t| t.amount as i64).sum();
        assert!(received - sent >= 0, "{agent} went below zero: {}", received - sent);
        assert_eq!(b.posted as i64, received - sent, "{agent}'s balance is the sum of its transfers");
    }
    assert_eq!(first.asset_total(Asset::Scrip).unwrap(), 0);
}

/// An unreachable database at open: an error that names the URL without
/// its password and says what to check.
#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = PgLedger::open(&format!("postgres://fuelhost:hunter2@127.0.0.1:{port}/x"), 2).unwrap_err().to_string();
    assert!(e.contains(&format!("postgres://fuelhost:***@127.0.0.1:{port}/x")), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    assert!(e.contains("check that PostgreSQL runs there"), "{e}");
    let e = PgLedger::open("mysql:/nope", 2).unwrap_err().to_string();
    assert!(e.contains("is not a PostgreSQL URL"), "{e}");
}

/// The schema is versioned: a second open applies nothing again, and the
/// history names each migration once.
#[test]
fn migrations_run_once_and_are_recorded() {
    let (server, _first) = postgres("migrations");
    let url = format!("postgres://fuelhost@127.0.0.1:{}/migrations", server.port());
    let _again = PgLedger::open(&url, 2).unwrap();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i32> = c
        .query("SELECT version FROM refinery_schema_history ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut files: Vec<i32> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_prefix('V')?.split("__").next()?.parse().ok())
        .collect();
    files.sort();
    assert_eq!(versions, files, "each migration once");
}
