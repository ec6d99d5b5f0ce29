//! The PostgreSQL ledger against a real server (a scratch one from
//! Debian's `postgresql`), and beside the SQLite ledger: the same
//! scenarios must end the same on both. Then what only several hosts
//! over one database can show: posting from many connections at once
//! keeps every balance at or above zero, every transfer once, every
//! asset summing to zero.

use std::sync::Arc;

use std::collections::BTreeMap;

use fuelhost_ledger::{
    AgentId, AlertKind, Allocation, AllocationRequest, AllocationStatus, AllocationTransition, Asset, Balances,
    Distribution, GuestTransfer, Ledger, LedgerError, LedgerQuery, Outcome, Reservation, Reserved, Resource,
    ResourcePolicy, ResourcesConsumed, ServiceStats, Settlement, SponsorGrant, SponsorGrantStatus, Transfer,
    TransferKind, TransferQuery, UbiSource, UsageRecord,
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
    fn reserve(&self, r: &Reservation) -> Result<Reserved, LedgerError>;
    fn hold_guest(&self, t: &GuestTransfer) -> Result<(), LedgerError>;
    fn hold_disk(&self, inv: &str, payer: &str, bytes: u64) -> Result<(), LedgerError>;
    fn settle(&self, s: &Settlement) -> Result<UsageRecord, LedgerError>;
    fn abort(&self) -> Vec<UsageRecord>;
    fn record(&self, inv: &str) -> Option<UsageRecord>;
    fn holds(&self) -> u64;
    fn all(&self, agent: &str) -> Balances;
    fn request(&self, req: &AllocationRequest) -> Result<Allocation, LedgerError>;
    fn transition(&self, id: &str, t: &AllocationTransition) -> Result<Allocation, LedgerError>;
    fn report(&self, rid: &str, agent: &str, resource: Resource, amount: u64) -> Result<Allocation, LedgerError>;
    fn allocation(&self, id: &str) -> Allocation;
    fn alert_kinds(&self, agent: &str) -> Vec<AlertKind>;
    fn service_stats(&self) -> ServiceStats;
    fn top(&self, asset: Asset) -> Result<Vec<(String, u64, u64, u64)>, LedgerError>;
}

fn ranked(top: Vec<fuelhost_ledger::ConsumerStats>) -> Vec<(String, u64, u64, u64)> {
    top.into_iter().map(|c| (c.agent.to_string(), c.invocations, c.fuel, c.disk_bytes)).collect()
}

fn id(agent: &str) -> AgentId {
    AgentId::new(agent).unwrap()
}

/// Both backends, through the ledger traits.
impl<T: Ledger> Backend for T {
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
    fn reserve(&self, r: &Reservation) -> Result<Reserved, LedgerError> {
        Ledger::reserve(self, r)
    }
    fn hold_guest(&self, t: &GuestTransfer) -> Result<(), LedgerError> {
        Ledger::hold_guest_transfer(self, t)
    }
    fn hold_disk(&self, inv: &str, payer: &str, bytes: u64) -> Result<(), LedgerError> {
        Ledger::hold_disk(self, inv, &id(payer), bytes)
    }
    fn settle(&self, s: &Settlement) -> Result<UsageRecord, LedgerError> {
        Ledger::settle(self, s)
    }
    fn abort(&self) -> Vec<UsageRecord> {
        Ledger::abort_unsettled(self).unwrap()
    }
    fn record(&self, inv: &str) -> Option<UsageRecord> {
        LedgerQuery::usage_record(self, inv).unwrap()
    }
    fn holds(&self) -> u64 {
        LedgerQuery::pending_holds(self).unwrap()
    }
    fn all(&self, agent: &str) -> Balances {
        LedgerQuery::balances(self, &id(agent)).unwrap()
    }
    fn request(&self, req: &AllocationRequest) -> Result<Allocation, LedgerError> {
        Ledger::request_allocation(self, req)
    }
    fn transition(&self, aid: &str, t: &AllocationTransition) -> Result<Allocation, LedgerError> {
        Ledger::transition_allocation(self, aid, t)
    }
    fn report(&self, rid: &str, agent: &str, resource: Resource, amount: u64) -> Result<Allocation, LedgerError> {
        Ledger::record_usage(self, rid, &id(agent), resource, amount)
    }
    fn allocation(&self, aid: &str) -> Allocation {
        LedgerQuery::allocation(self, aid).unwrap().unwrap()
    }
    fn alert_kinds(&self, agent: &str) -> Vec<AlertKind> {
        LedgerQuery::alerts(self, Some(&id(agent))).unwrap().into_iter().map(|a| a.kind).collect()
    }
    fn service_stats(&self) -> ServiceStats {
        LedgerQuery::stats(self).unwrap()
    }
    fn top(&self, asset: Asset) -> Result<Vec<(String, u64, u64, u64)>, LedgerError> {
        LedgerQuery::top_consumers_by(self, asset, None, None, 10).map(ranked)
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

fn reservation(inv: &str, payer: &str, price: u64, fuel_limit: u64, grant: Option<&str>) -> Reservation {
    Reservation {
        invocation_id: inv.into(),
        artifact: "alice/echo@1".into(),
        resource_policy: if payer == "bob" { ResourcePolicy::CallerPays } else { ResourcePolicy::OwnerPays },
        caller: id("bob"),
        owner: id("alice"),
        payer: id(payer),
        price,
        fuel_limit,
        sponsor_grant: grant.map(String::from),
        fresh_id: false,
    }
}

fn settlement(r: &Reservation, outcome: Outcome, fuel: u64, disk: u64) -> Settlement {
    Settlement {
        invocation_id: r.invocation_id.clone(),
        artifact: r.artifact.clone(),
        caller: r.caller.clone(),
        owner: r.owner.clone(),
        payer: r.payer.clone(),
        resource_policy: r.resource_policy,
        outcome,
        consumed: ResourcesConsumed {
            fuel,
            memory_peak_bytes: 1 << 20,
            disk_bytes: disk,
            wall_time_ns: 5,
            cpu_time_ns: 0,
            llm_tokens: 0,
        },
        output: b"out".to_vec(),
        error: None,
        cost_model: Default::default(),
        admission: None,
    }
}

/// Calls: reserve, holds while running, settle for what was used, on one
/// backend (after [`scenarios`] and [`economy`]).
fn calls(l: &dyn Backend) {
    for (tid, agent, asset, amount) in [
        ("f-bob", "bob", Asset::Fuel, 1_000_000),
        ("d-bob", "bob", Asset::DiskBytes, 1_000),
        ("f-carol", "carol", Asset::Fuel, 500_000),
    ] {
        l.post(&[Transfer::mint(tid, &id(agent), asset, amount)]).unwrap();
    }
    let scrip = |a: &str| l.available(a, Asset::Scrip);
    let (bob0, alice0, carol0) = (scrip("bob"), scrip("alice"), scrip("carol"));

    // Success: the price, the fuel burned, the disk grown, the guest's
    // transfer; every hold released.
    let r = reservation("c1", "bob", 5, 100_000, None);
    assert_eq!(l.reserve(&r).unwrap().fuel, 100_000);
    let guest = |gid: &str, inv: &str, amount| GuestTransfer {
        id: gid.into(),
        invocation_id: inv.into(),
        from: id("alice"),
        to: id("carol"),
        amount,
        memo: "tip".into(),
    };
    l.hold_guest(&guest("c1/t1", "c1", 3)).unwrap();
    l.hold_disk("c1", "bob", 100).unwrap();
    let bob = l.all("bob");
    assert_eq!((bob.scrip.held, bob.fuel.held, bob.disk_bytes.held), (5, 100_000, 100));
    assert!(matches!(l.hold_disk("c1", "bob", 901), Err(LedgerError::Insufficient { available: 900, .. })));
    let rec = l.settle(&settlement(&r, Outcome::Success, 40_000, 60)).unwrap();
    assert_eq!((rec.price_paid, rec.consumed.fuel, rec.consumed.disk_bytes), (5, 40_000, 60));
    assert_eq!((rec.charged_to.as_str(), rec.outcome, rec.output.as_slice()), ("bob", Outcome::Success, &b"out"[..]));
    assert_eq!(l.record("c1").unwrap(), rec);
    let bob = l.all("bob");
    assert_eq!((bob.scrip.held, bob.fuel.held, bob.disk_bytes.held), (0, 0, 0), "every hold released");
    assert_eq!((bob.fuel.posted, bob.disk_bytes.posted), (1_000_000 - 40_000, 1_000 - 60));
    assert_eq!((scrip("bob"), scrip("alice"), scrip("carol")), (bob0 - 5, alice0 + 5 - 3, carol0 + 3));
    assert!(matches!(l.settle(&settlement(&r, Outcome::Success, 1, 0)), Err(LedgerError::DuplicateInvocation(_))));
    assert!(matches!(l.reserve(&r), Err(LedgerError::DuplicateInvocation(_))), "an id settled is not reserved again");
    let never = reservation("never", "bob", 1, 1, None);
    assert!(matches!(l.settle(&settlement(&never, Outcome::Success, 1, 0)), Err(LedgerError::NoReservation(_))));

    // A failed run: charged the fuel it burned, no price, the guest's
    // transfer released.
    let r2 = reservation("c2", "bob", 5, 100_000, None);
    l.reserve(&r2).unwrap();
    l.hold_guest(&guest("c2/t1", "c2", 4)).unwrap();
    let rec = l.settle(&settlement(&r2, Outcome::RunError, 10, 0)).unwrap();
    assert_eq!((rec.price_paid, rec.consumed.fuel), (0, 10));
    assert_eq!((scrip("bob"), scrip("alice"), scrip("carol")), (bob0 - 5, alice0 + 2, carol0 + 3));

    // Refusals: not enough scrip; a charge's id taken by a transfer; a
    // running call's charge id refused to a transfer.
    let dear = reservation("c3", "bob", 1_000_000, 10, None);
    assert!(matches!(l.reserve(&dear), Err(LedgerError::Insufficient { asset: Asset::Scrip, .. })));
    l.post(&[pay("c6/fuel", "bob", "alice", 1)]).unwrap();
    assert!(matches!(l.reserve(&reservation("c6", "bob", 1, 10, None)), Err(LedgerError::Invalid(_))));
    let r5 = reservation("c5", "bob", 1, 10, None);
    l.reserve(&r5).unwrap();
    assert!(matches!(l.post(&[pay("c5/price", "bob", "alice", 1)]), Err(LedgerError::IdConflict(_))));
    l.settle(&settlement(&r5, Outcome::Success, 10, 0)).unwrap();

    // A sponsor pays the fuel, within its grant.
    l.grant(&SponsorGrant {
        id: "g-fuel".into(),
        sponsor: id("carol"),
        beneficiary: id("bob"),
        fuel_limit: 50_000,
        disk_limit: 0,
        expires_at_ms: None,
        artifacts: vec![],
    })
    .unwrap();
    let r7 = Reservation { caller: id("bob"), ..reservation("c7", "carol", 2, 80_000, Some("g-fuel")) };
    assert_eq!(l.reserve(&r7).unwrap().fuel, 50_000, "at most what the grant has left");
    let rec = l.settle(&settlement(&r7, Outcome::Success, 30_000, 0)).unwrap();
    assert_eq!((rec.charged_to.as_str(), rec.consumed.fuel), ("carol", 30_000));
    let g = l.grant_status("g-fuel").unwrap();
    assert_eq!(g.fuel_spent, 30_000);
    assert_eq!(l.all("carol").fuel.posted, 500_000 - 30_000);
    let wrong = Reservation { caller: id("alice"), ..reservation("c8", "carol", 0, 10, Some("g-fuel")) };
    assert!(matches!(l.reserve(&wrong), Err(LedgerError::GrantUnavailable(_))), "not its beneficiary");

    // A host that stopped: what it reserved is settled as aborted,
    // nothing charged, nothing left held.
    let r9 = reservation("c9", "bob", 5, 1_000, Some("g-fuel"));
    let r9 = Reservation { payer: id("carol"), ..r9 };
    l.reserve(&r9).unwrap();
    l.hold_guest(&guest("c9/t1", "c9", 1)).unwrap();
    let posted = || (l.all("bob").scrip.posted, l.all("carol").fuel.posted);
    let before = posted();
    let aborted = l.abort();
    assert_eq!(aborted.iter().map(|r| r.invocation_id.as_str()).collect::<Vec<_>>(), ["c9"]);
    assert_eq!((aborted[0].outcome, aborted[0].price_paid, aborted[0].consumed.fuel), (Outcome::Aborted, 0, 0));
    assert_eq!(posted(), before, "nothing charged");
    assert_eq!((l.all("bob").scrip.held, l.all("carol").fuel.held), (0, 0), "nothing held");
    assert_eq!(l.holds(), 0, "nothing held");
    assert_eq!(l.grant_status("g-fuel").unwrap().fuel_spent, 30_000);
    for asset in Asset::ALL {
        assert_eq!(l.total(asset), 0, "{asset} is conserved");
    }
}

/// Allocations: quotas a call reserves against and settles into, usage
/// reported from outside, alerts, the lifecycle; on one backend, last
/// (bob is governed from here on).
fn allocations(l: &dyn Backend) {
    let mut req = AllocationRequest::new(
        "bob-daily",
        id("bob"),
        BTreeMap::from([(Resource::ApiCalls, 2), (Resource::Fuel, 50_000), (Resource::LlmTokens, 100)]),
    );
    req.auto_approve = true;
    assert_eq!(l.request(&req).unwrap().status, AllocationStatus::Approved);
    assert_eq!(l.request(&req).unwrap().status, AllocationStatus::Approved, "a replay");
    let other = AllocationRequest { priority: 9, ..req.clone() };
    assert!(matches!(l.request(&other), Err(LedgerError::IdConflict(_))));
    assert!(matches!(l.transition("nope", &AllocationTransition::Activate), Err(LedgerError::UnknownAllocation(_))));
    assert_eq!(l.transition("bob-daily", &AllocationTransition::Activate).unwrap().status, AllocationStatus::Active);

    // Two calls fit its two API calls; its fuel quota caps what each holds.
    for (inv, burn) in [("a1", 20_000), ("a2", 40_000)] {
        let r = reservation(inv, "bob", 1, 100_000, None);
        let got = l.reserve(&r).unwrap();
        assert_eq!(got.allocation.as_deref(), Some("bob-daily"));
        assert!(got.fuel <= 50_000, "{}", got.fuel);
        l.settle(&settlement(&r, Outcome::Success, burn.min(got.fuel), 0)).unwrap();
    }
    let refused = l.reserve(&reservation("a3", "bob", 1, 100, None)).unwrap_err();
    assert!(matches!(refused, LedgerError::AllocationRefused { .. }), "{refused}");
    let a = l.allocation("bob-daily");
    let used = |r: Resource| a.quotas.iter().find(|q| q.resource == r).map(|q| (q.used, q.held));
    assert_eq!(used(Resource::ApiCalls), Some((2, 0)));
    assert_eq!(used(Resource::Fuel), Some((50_000, 0)), "20,000 and what was left of the quota");
    assert!(l.alert_kinds("bob").contains(&AlertKind::Exhausted), "{:?}", l.alert_kinds("bob"));

    // Usage reported from elsewhere, once by its id.
    let after = l.report("tokens-1", "bob", Resource::LlmTokens, 90);
    assert!(after.is_err(), "an exhausted allocation governs nothing: {after:?}");
    l.transition("bob-daily", &AllocationTransition::Revoke { reason: "over".into() }).unwrap();
    let blocked = l.reserve(&reservation("a4", "bob", 1, 100, None)).unwrap_err();
    assert!(
        matches!(blocked, LedgerError::AllocationRefused { ref reason, .. } if reason.contains("no active allocation"))
    );
    let mut fresh = AllocationRequest::new("bob-2", id("bob"), BTreeMap::from([(Resource::LlmTokens, 100)]));
    fresh.auto_approve = true;
    l.request(&fresh).unwrap();
    l.transition("bob-2", &AllocationTransition::Activate).unwrap();
    let a = l.report("tokens-2", "bob", Resource::LlmTokens, 90).unwrap();
    assert_eq!(a.quotas[0].used, 90);
    assert_eq!(l.report("tokens-2", "bob", Resource::LlmTokens, 90).unwrap().quotas[0].used, 90, "once");
    assert!(l.alert_kinds("bob").contains(&AlertKind::SoftThreshold));
    for asset in Asset::ALL {
        assert_eq!(l.total(asset), 0, "{asset} is conserved");
    }
}

#[test]
fn the_scenarios_end_the_same_on_sqlite_and_postgresql() {
    let (_dir, sqlite) = sqlite();
    scenarios(&sqlite);
    economy(&sqlite);
    calls(&sqlite);
    allocations(&sqlite);
    let (_server, pg) = postgres("scenarios");
    scenarios(&pg);
    economy(&pg);
    calls(&pg);
    allocations(&pg);

    // The same history, the same statistics.
    let (stats, pg_stats) = (sqlite.service_stats(), pg.service_stats());
    assert_eq!(stats, pg_stats);
    assert!(stats.total_usage_records == 7 && stats.invocations_by_outcome.contains_key("aborted"), "{stats:?}");
    assert_eq!(sqlite.top(Asset::Fuel).unwrap(), pg.top(Asset::Fuel).unwrap());
    assert_eq!(sqlite.top(Asset::DiskBytes).unwrap(), pg.top(Asset::DiskBytes).unwrap());
    assert!(matches!(pg.top(Asset::Scrip), Err(LedgerError::Invalid(_))));
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
    assert!(count > 4 + 20, "transfers were made: {count}");
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

/// Four hosts reserve and settle calls at once against one payer's small
/// fuel budget and one sponsor's grant: nothing is spent twice, nobody
/// goes below zero, the grant never pays past its limit, and every call
/// reserved has exactly one record.
#[test]
fn many_hosts_running_calls_at_once_never_overspend() {
    let (server, first) = postgres("calls");
    let url = format!("postgres://fuelhost@127.0.0.1:{}/calls", server.port());
    for agent in ["alice", "bob", "carol"] {
        first.open_account(&id(agent)).unwrap();
    }
    first.post_one(mint("bob-scrip", "bob", 300)).unwrap();
    first.post_one(Transfer::mint("bob-fuel", &id("bob"), Asset::Fuel, 200_000)).unwrap();
    first.post_one(Transfer::mint("carol-fuel", &id("carol"), Asset::Fuel, 1_000_000)).unwrap();
    first
        .grant_sponsorship(&SponsorGrant {
            id: "g".into(),
            sponsor: id("carol"),
            beneficiary: id("bob"),
            fuel_limit: 150_000,
            disk_limit: 0,
            expires_at_ms: None,
            artifacts: vec![],
        })
        .unwrap();
    let hosts: Vec<PgLedger> = (0..4).map(|_| PgLedger::open(&url, 4).unwrap()).collect();
    let reserved = std::sync::atomic::AtomicU32::new(0);
    let grant_ran_out = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for (h, host) in hosts.iter().enumerate() {
            let (reserved, grant_ran_out) = (&reserved, &grant_ran_out);
            s.spawn(move || {
                for n in 0..60 {
                    let inv = format!("h{h}-{n}");
                    let r = match n % 2 {
                        0 => reservation(&inv, "bob", 3, 20_000, None),
                        _ => Reservation { payer: id("carol"), ..reservation(&inv, "carol", 3, 20_000, Some("g")) },
                    };
                    match host.reserve(&r) {
                        Ok(got) => {
                            reserved.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let outcome = if n % 3 == 0 { Outcome::RunError } else { Outcome::Success };
                            host.settle(&settlement(&r, outcome, got.fuel.min(15_000), 0)).unwrap();
                        }
                        Err(LedgerError::GrantUnavailable(_)) => {
                            grant_ran_out.store(true, std::sync::atomic::Ordering::Relaxed)
                        }
                        Err(LedgerError::Insufficient { .. }) => {}
                        Err(e) => panic!("{inv}: {e}"),
                    }
                }
            });
        }
    });
    let records =
        first.usage_records(&fuelhost_ledger::UsageQuery { limit: Some(10_000), ..Default::default() }).unwrap();
    let reserved = reserved.into_inner();
    assert!(reserved >= 20, "calls ran: {reserved}");
    assert!(grant_ran_out.into_inner(), "the grant ran out, so its limit was raced");
    assert_eq!(records.len() as u32, reserved, "one record per call reserved");
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let fuel_held: i64 = c.query_one("SELECT fuel_held FROM sponsor_grants WHERE id = 'g'", &[]).unwrap().get(0);
    assert_eq!(fuel_held, 0, "the grant holds nothing once every call settled");
    let deadlocks: i64 =
        c.query_one("SELECT deadlocks FROM pg_stat_database WHERE datname = 'calls'", &[]).unwrap().get(0);
    assert_eq!(deadlocks, 0, "every transaction locks in one order");
    for agent in ["alice", "bob", "carol"] {
        let b = first.balances(&id(agent)).unwrap();
        assert_eq!((b.scrip.held, b.fuel.held), (0, 0), "{agent} holds nothing once every call settled");
    }
    let grant = first.sponsorship("g").unwrap().unwrap();
    let paid_by_carol: u64 = records.iter().filter(|r| r.charged_to.as_str() == "carol").map(|r| r.consumed.fuel).sum();
    assert_eq!(grant.fuel_spent, paid_by_carol);
    assert!(grant.fuel_spent <= 150_000, "the grant paid {} of its 150,000", grant.fuel_spent);
    let paid_by_bob: u64 = records.iter().filter(|r| r.charged_to.as_str() == "bob").map(|r| r.consumed.fuel).sum();
    assert_eq!(first.balances(&id("bob")).unwrap().fuel.posted, 200_000 - paid_by_bob);
    let prices: u64 = records.iter().map(|r| r.price_paid).sum();
    assert_eq!(first.balances(&id("bob")).unwrap().scrip.posted, 300 - prices);
    for asset in Asset::ALL {
        assert_eq!(first.asset_total(asset).unwrap(), 0, "{asset} is conserved");
    }
}

/// What several hosts must not break: ids shared by holds and transfers,
/// a call settled by two hosts at once, calls in both directions at once,
/// holds after a call settled.
#[test]
fn ids_settles_and_holds_stay_single_across_hosts() {
    let (server, first) = postgres("races");
    let url = format!("postgres://fuelhost@127.0.0.1:{}/races", server.port());
    for agent in ["alice", "bob", "carol"] {
        first.open_account(&id(agent)).unwrap();
        first.post_one(mint(&format!("s-{agent}"), agent, 10_000)).unwrap();
        first.post_one(Transfer::mint(&format!("f-{agent}"), &id(agent), Asset::Fuel, 100_000_000)).unwrap();
        first.post_one(Transfer::mint(&format!("t-{agent}"), &id(agent), Asset::LlmTokens, 1_000)).unwrap();
    }
    let guest = |gid: &str, inv: &str| GuestTransfer {
        id: gid.into(),
        invocation_id: inv.into(),
        from: id("alice"),
        to: id("carol"),
        amount: 1,
        memo: String::new(),
    };
    // One id space: a transfer's id is not a guest's to hold, nor a held
    // id a transfer's.
    first.post_one(pay("g1/t1", "bob", "carol", 1)).unwrap();
    let r1 = reservation("g1", "bob", 1, 1_000, None);
    first.reserve(&r1).unwrap();
    assert!(matches!(first.hold_guest_transfer(&guest("g1/t1", "g1")), Err(LedgerError::IdConflict(_))));
    first.hold_guest_transfer(&guest("g1/t2", "g1")).unwrap();
    assert!(matches!(first.post_one(pay("g1/t2", "bob", "carol", 1)), Err(LedgerError::IdConflict(_))));
    first.settle(&settlement(&r1, Outcome::Success, 10, 0)).unwrap();
    // After it settled, no hold is taken for it.
    assert!(matches!(first.hold_guest_transfer(&guest("g1/t3", "g1")), Err(LedgerError::NoReservation(_))));
    assert!(matches!(first.hold_disk("g1", &id("bob"), 7), Err(LedgerError::NoReservation(_))));
    assert_eq!(first.pending_holds().unwrap(), 0);

    // Two hosts settle one call at once: one settles it, the other is
    // told it is settled.
    let hosts: Vec<PgLedger> = (0..2).map(|_| PgLedger::open(&url, 2).unwrap()).collect();
    for n in 0..10 {
        let r = reservation(&format!("twice-{n}"), "bob", 2, 1_000, None);
        first.reserve(&r).unwrap();
        let results: Vec<Result<UsageRecord, LedgerError>> = std::thread::scope(|s| {
            let handles: Vec<_> =
                hosts.iter().map(|h| s.spawn(|| h.settle(&settlement(&r, Outcome::Success, 100, 0)))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert!(results.iter().any(|r| matches!(r, Err(LedgerError::DuplicateInvocation(_)))), "{results:?}");
    }

    // Calls in both directions at once (bob calls alice's artifact, alice
    // bob's), with guest transfers back and language-model tokens held
    // and charged: no deadlock, every hold released.
    std::thread::scope(|s| {
        for (h, host) in hosts.iter().enumerate() {
            s.spawn(move || {
                for n in 0..40 {
                    let inv = format!("x{h}-{n}");
                    let (caller, owner) = if (n + h) % 2 == 0 { ("bob", "alice") } else { ("alice", "bob") };
                    let r = Reservation {
                        caller: id(caller),
                        owner: id(owner),
                        payer: id(caller),
                        ..reservation(&inv, "bob", 3, 1_000, None)
                    };
                    host.reserve(&r).unwrap();
                    let g = GuestTransfer { from: id(owner), to: id(caller), ..guest(&format!("{inv}/t1"), &inv) };
                    host.hold_guest_transfer(&g).unwrap();
                    host.hold_disk(&inv, &id(caller), 0).unwrap();
                    host.hold_llm_tokens(&inv, &id(caller), 3).unwrap();
                    assert_eq!(host.release_llm_tokens(&inv, 1).unwrap(), 1);
                    host.settle(&settlement_using(&r, Outcome::Success, 50, 2)).unwrap();
                }
            });
        }
    });
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let deadlocks: i64 =
        c.query_one("SELECT deadlocks FROM pg_stat_database WHERE datname = 'races'", &[]).unwrap().get(0);
    assert_eq!(deadlocks, 0);
    assert_eq!(first.pending_holds().unwrap(), 0);
    let tokens: Vec<(u64, u64)> = ["alice", "bob"]
        .iter()
        .map(|a| first.balances(&id(a)).unwrap().llm_tokens)
        .map(|b| (b.posted, b.held))
        .collect();
    assert_eq!(tokens, [(1_000 - 40 * 2, 0), (1_000 - 40 * 2, 0)], "each charged 2 tokens a call, 40 calls each");
    for asset in Asset::ALL {
        assert_eq!(first.asset_total(asset).unwrap(), 0, "{asset} is conserved");
    }
}

/// The database restarts under a host: what it asked while the database
/// was down fails with an error that says to retry, nothing half-done;
/// once the database is back, the same ledger serves again without being
/// opened anew.
#[test]
fn a_restarted_database_is_served_again_without_a_restart_of_the_host() {
    let mut server = ScratchServer::start().unwrap();
    let url = server.fresh_database("restart").unwrap();
    let ledger = PgLedger::open(&url, 8).unwrap();
    ledger.open_account(&id("bob")).unwrap();
    ledger.post_one(mint("before", "bob", 5)).unwrap();
    // Every pooled connection used once, so each is idle when the server
    // goes: each must be found stale and replaced, not handed out broken.
    std::thread::scope(|s| {
        for n in 0..8 {
            let ledger = &ledger;
            s.spawn(move || ledger.post_one(mint(&format!("fill-{n}"), "bob", 1)).unwrap());
        }
    });
    server.stop();
    let down = ledger.post_one(mint("during", "bob", 5)).unwrap_err();
    assert!(matches!(down, LedgerError::Storage(_)), "{down}");
    assert!(down.to_string().contains("retry"), "{down}");
    server.restart().unwrap();
    ledger.post_one(mint("after", "bob", 5)).unwrap();
    for _ in 0..10 {
        ledger.balances(&id("bob")).unwrap();
    }
    assert!(ledger.transfer_record("during").unwrap().is_none(), "what failed did not happen");
    assert_eq!(ledger.balances(&id("bob")).unwrap().scrip.posted, 18);

    // A schema change under prepared statements: they are prepared again.
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "BEGIN; DROP VIEW ledger_transfers; ALTER TABLE transfers ALTER COLUMN memo TYPE VARCHAR(300);
             CREATE VIEW ledger_transfers AS
                 SELECT seq, id, debit, credit, asset, amount, kind, memo, invocation, created_ms FROM transfers;
             COMMIT",
        )
        .unwrap();
    for _ in 0..10 {
        assert!(ledger.transfer_record("after").unwrap().is_some());
    }
}

/// A host takes over only what a dead host left: while the host that
/// reserved a call renews its lease, another host's `abort_unsettled`
/// leaves the call alone (and no serving host aborts its own calls);
/// once that host is gone and its lease ran out, its call is aborted,
/// nothing charged, nothing left held.
#[test]
fn only_a_dead_hosts_calls_are_taken_over() {
    let (server, _first) = postgres("leases");
    let url = format!("postgres://fuelhost@127.0.0.1:{}/leases", server.port());
    let lease = std::time::Duration::from_millis(600);
    let a = PgLedger::open_as(&url, 2, "host-a", lease).unwrap();
    let b = PgLedger::open_as(&url, 2, "host-b", lease).unwrap();
    assert_ne!(a.host_id(), b.host_id());
    for agent in ["alice", "bob"] {
        a.open_account(&id(agent)).unwrap();
    }
    a.post_one(mint("s", "bob", 100)).unwrap();
    a.post_one(Transfer::mint("f", &id("bob"), Asset::Fuel, 1_000_000)).unwrap();
    let r = reservation("held-by-a", "bob", 5, 1_000, None);
    a.reserve(&r).unwrap();
    std::thread::sleep(lease * 2); // a renews meanwhile
    assert!(b.take_over_dead_hosts().unwrap().is_empty(), "a is alive");
    assert!(a.take_over_dead_hosts().unwrap().is_empty(), "a's own call is in flight");
    drop(a); // the host dies: its lease is no longer renewed
    std::thread::sleep(lease + lease / 2);
    assert!(b.take_over_dead_hosts().unwrap().is_empty(), "a lease just run out may be an outage's: wait");
    std::thread::sleep(lease * 2);
    let aborted = b.take_over_dead_hosts().unwrap();
    assert_eq!(aborted.iter().map(|r| r.invocation_id.as_str()).collect::<Vec<_>>(), ["held-by-a"]);
    assert_eq!(aborted[0].outcome, Outcome::Aborted);
    let bob = b.balances(&id("bob")).unwrap();
    assert_eq!((bob.scrip.posted, bob.scrip.held, bob.fuel.held), (100, 0, 0), "nothing charged, nothing held");

    // A host that restarts (the same name) takes back what its earlier
    // run left at once, at open, without waiting for the lease; another
    // host's calls in flight are left alone.
    let r = reservation("held-by-b", "bob", 5, 1_000, None);
    b.reserve(&r).unwrap();
    let c = PgLedger::open_as(&url, 2, "host-c", lease).unwrap();
    c.reserve(&reservation("held-by-c", "bob", 5, 1_000, None)).unwrap();
    drop(b);
    let b_again = PgLedger::open_as(&url, 2, "host-b", lease).unwrap();
    let taken = b_again.abort_unsettled().unwrap();
    assert_eq!(taken.iter().map(|r| r.invocation_id.as_str()).collect::<Vec<_>>(), ["held-by-b"]);
    assert!(c.usage_record("held-by-c").unwrap().is_none(), "c's call is c's");
}

/// The schema's versions are refinery's: a database a newer release
/// migrated further is refused at open, saying so, and left as it was.
#[test]
fn a_database_a_newer_release_migrated_is_refused() {
    let (server, _ledger) = postgres("newer");
    let url = format!("postgres://fuelhost@127.0.0.1:{}/newer", server.port());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (999, 'from_a_newer_release', '2030-01-01T00:00:00Z', '1')",
        )
        .unwrap();
    let refused = fuelhost_postgres::Database::open(&url, 2).expect_err("refused").to_string();
    assert!(refused.contains("a newer fuelhost migrated this database (its schema is at version 999"), "{refused}");
    let kept: i64 = admin.query_one("SELECT COUNT(*) FROM refinery_schema_history", &[]).unwrap().get(0);
    assert_eq!(kept, 12, "eleven migrations and the newer one, untouched");
}

/// [`settlement`] of a call whose language-model requests used
/// `llm_tokens`.
fn settlement_using(r: &Reservation, outcome: Outcome, fuel: u64, llm_tokens: u64) -> Settlement {
    let mut s = settlement(r, outcome, fuel, 0);
    s.consumed.llm_tokens = llm_tokens;
    s
}

/// What a system account (no agent, so no [`Balances`] of its own) has
/// posted of `asset`, read from the database at `url`.
fn system_posted(url: &str, account: &str, asset: Asset) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query_one(
        "SELECT COALESCE(SUM(posted), 0)::BIGINT FROM balances WHERE account = $1 AND asset = $2",
        &[&account, &asset.as_str()],
    )
    .unwrap()
    .get(0)
}

/// Language-model tokens: a running call holds its payer's tokens before
/// each request (refused, holding nothing, beyond what the payer has less
/// every call's holds), releases what a request did not use, and settling
/// charges what its requests used (`{invocation}/llm`, to `@consumed`) up
/// to what the payer has, whatever the outcome; the record, the
/// allocation's quota and the payers' ranking count what was charged; a
/// call a stopped host left releases its tokens and is charged none; its
/// charges are archived with its record; the tokens sum to zero
/// throughout.
#[test]
fn llm_tokens_are_held_while_a_call_runs_and_charged_when_it_settles() {
    let (server, l) = postgres("llm");
    let url = format!("postgres://fuelhost@127.0.0.1:{}/llm", server.port());
    // Through the trait, as the host calls it.
    let ledger: &dyn Ledger = &l;
    for agent in ["alice", "bob", "carol"] {
        ledger.open_account(&id(agent)).unwrap();
    }
    for (tid, agent, asset, amount) in [
        ("f-bob", "bob", Asset::Fuel, 1_000_000),
        ("t-bob", "bob", Asset::LlmTokens, 1_000),
        ("f-carol", "carol", Asset::Fuel, 1_000_000),
        ("t-carol", "carol", Asset::LlmTokens, 50),
    ] {
        ledger.post(&[Transfer::mint(tid, &id(agent), asset, amount)]).unwrap();
    }
    let tokens = |agent: &str| {
        let b = ledger.balances(&id(agent)).unwrap().llm_tokens;
        (b.posted, b.held)
    };
    let consumed = || system_posted(&url, "@consumed", Asset::LlmTokens);
    let conserved = || {
        for asset in Asset::ALL {
            assert_eq!(ledger.asset_total(asset).unwrap(), 0, "{asset} is conserved");
        }
    };
    conserved();

    // Holding: never past what the payer has; a release gives back at
    // most what the call holds.
    let r1 = reservation("l1", "bob", 0, 100_000, None);
    ledger.reserve(&r1).unwrap();
    let fuel_only = ledger.pending_holds().unwrap();
    let e = ledger.hold_llm_tokens("l1", &id("bob"), 1_001).unwrap_err();
    assert!(
        matches!(e, LedgerError::Insufficient { ref account, asset: Asset::LlmTokens, available: 1_000, needed: 1_001 }
            if account == "bob"),
        "{e}"
    );
    assert_eq!(tokens("bob"), (1_000, 0), "nothing held");
    assert_eq!(ledger.pending_holds().unwrap(), fuel_only);
    let e = ledger.hold_llm_tokens("l1", &id("dave"), 1).unwrap_err();
    assert!(
        matches!(e, LedgerError::Insufficient { available: 0, needed: 1, .. }),
        "no account, nothing to spend: {e}"
    );
    ledger.hold_llm_tokens("l1", &id("bob"), 300).unwrap();
    ledger.hold_llm_tokens("l1", &id("bob"), 200).unwrap();
    ledger.hold_llm_tokens("l1", &id("bob"), 0).unwrap();
    assert_eq!(tokens("bob"), (1_000, 500));
    assert_eq!(ledger.pending_holds().unwrap(), fuel_only + 1, "one hold of tokens for the call");
    assert_eq!(ledger.release_llm_tokens("l1", 100).unwrap(), 100);
    assert_eq!(tokens("bob"), (1_000, 400));
    assert_eq!(ledger.release_llm_tokens("l1", 1_000).unwrap(), 400, "what it held, no more");
    assert_eq!(tokens("bob"), (1_000, 0));
    assert_eq!(ledger.release_llm_tokens("l1", 1).unwrap(), 0, "it holds none");
    assert_eq!(ledger.release_llm_tokens("never", 1).unwrap(), 0, "no such call");
    assert_eq!(ledger.pending_holds().unwrap(), fuel_only);
    assert!(
        matches!(ledger.hold_llm_tokens("never", &id("bob"), 1), Err(LedgerError::NoReservation(_))),
        "a hold outside a running call would never be released"
    );

    // The charge's id is the call's: not a transfer's while it runs, and
    // a call whose id it is taken by cannot reserve.
    let squatter = Transfer { id: "l1/llm".into(), ..pay("", "bob", "alice", 1) };
    assert!(matches!(ledger.post(&[squatter]), Err(LedgerError::IdConflict(_))));
    ledger.post(&[Transfer::mint("l9/llm", &id("alice"), Asset::Scrip, 1)]).unwrap();
    assert!(matches!(ledger.reserve(&reservation("l9", "bob", 0, 10, None)), Err(LedgerError::Invalid(_))));

    // Every running call's holds count against the payer.
    ledger.hold_llm_tokens("l1", &id("bob"), 250).unwrap();
    let r2 = reservation("l2", "bob", 0, 100_000, None);
    ledger.reserve(&r2).unwrap();
    ledger.hold_llm_tokens("l2", &id("bob"), 600).unwrap();
    let e = ledger.hold_llm_tokens("l2", &id("bob"), 151).unwrap_err();
    assert!(matches!(e, LedgerError::Insufficient { available: 150, needed: 151, .. }), "{e}");
    assert_eq!(tokens("bob"), (1_000, 850));

    // Settling: its hold released, what its requests used charged.
    let rec = ledger.settle(&settlement_using(&r1, Outcome::Success, 10, 300)).unwrap();
    assert_eq!(rec.consumed.llm_tokens, 300);
    assert_eq!(ledger.usage_record("l1").unwrap().as_ref(), Some(&rec), "read back as written");
    let charge = ledger.transfer_record("l1/llm").unwrap().expect("the tokens' charge");
    assert_eq!(
        (charge.from.as_str(), charge.to.as_str(), charge.asset, charge.amount, charge.kind),
        ("bob", "@consumed", Asset::LlmTokens, 300, TransferKind::Llm)
    );
    assert_eq!(tokens("bob"), (700, 600), "its hold released, l2's kept");
    assert_eq!(consumed(), 300);
    assert!(matches!(ledger.hold_llm_tokens("l1", &id("bob"), 1), Err(LedgerError::NoReservation(_))));
    assert_eq!(ledger.release_llm_tokens("l1", 1).unwrap(), 0, "a settled call holds nothing");
    conserved();

    // More used than the payer has: what it has is charged, on a failed
    // run too (the provider spent the tokens).
    let rec = ledger.settle(&settlement_using(&r2, Outcome::RunError, 10, 5_000)).unwrap();
    assert_eq!(rec.consumed.llm_tokens, 700, "all bob had");
    assert_eq!(ledger.transfer_record("l2/llm").unwrap().map(|t| t.amount), Some(700));
    assert_eq!(tokens("bob"), (0, 0));
    assert_eq!(consumed(), 1_000);
    let bobs = ledger.usage_records(&fuelhost_ledger::UsageQuery { agent: Some(id("bob")), ..Default::default() });
    let bobs: Vec<(String, u64)> =
        bobs.unwrap().into_iter().map(|r| (r.invocation_id, r.consumed.llm_tokens)).collect();
    assert_eq!(bobs, [("l2".to_string(), 700), ("l1".to_string(), 300)]);
    conserved();

    // A call governed by an allocation uses its token quota by what was
    // charged.
    let mut req = AllocationRequest::new("carol-llm", id("carol"), BTreeMap::from([(Resource::LlmTokens, 1_000)]));
    req.auto_approve = true;
    ledger.request_allocation(&req).unwrap();
    ledger.transition_allocation("carol-llm", &AllocationTransition::Activate).unwrap();
    let r3 = reservation("l3", "carol", 0, 100_000, None);
    assert_eq!(ledger.reserve(&r3).unwrap().allocation.as_deref(), Some("carol-llm"));
    ledger.hold_llm_tokens("l3", &id("carol"), 40).unwrap();
    assert_eq!(ledger.settle(&settlement_using(&r3, Outcome::Success, 50_000, 20)).unwrap().consumed.llm_tokens, 20);
    assert_eq!(tokens("carol"), (30, 0));
    let quota = ledger.allocation("carol-llm").unwrap().unwrap().quotas;
    assert_eq!(quota.iter().map(|q| (q.resource, q.used, q.held)).collect::<Vec<_>>(), [(Resource::LlmTokens, 20, 0)]);

    // Payers ranked by the tokens charged to them (carol burned more
    // fuel, bob used more tokens).
    let top = |asset| -> Vec<(String, u64)> {
        let top = ledger.top_consumers_by(asset, None, None, 10).unwrap();
        top.into_iter().map(|c| (c.agent.to_string(), c.llm_tokens)).collect()
    };
    let by_tokens = [("bob".to_string(), 1_000), ("carol".to_string(), 20)];
    assert_eq!(top(Asset::LlmTokens), by_tokens);
    assert_eq!(top(Asset::Fuel), [("carol".to_string(), 20), ("bob".to_string(), 1_000)]);

    // A host that stopped: its call's tokens released, none charged.
    let r4 = reservation("l4", "carol", 0, 1_000, None);
    ledger.reserve(&r4).unwrap();
    ledger.hold_llm_tokens("l4", &id("carol"), 10).unwrap();
    assert_eq!(tokens("carol"), (30, 10));
    let aborted = ledger.abort_unsettled().unwrap();
    assert_eq!(
        aborted.iter().map(|r| (r.invocation_id.as_str(), r.consumed.llm_tokens)).collect::<Vec<_>>(),
        [("l4", 0)]
    );
    assert_eq!(tokens("carol"), (30, 0), "released, nothing charged");
    assert_eq!(ledger.transfer_record("l4/llm").unwrap(), None);
    assert_eq!(ledger.pending_holds().unwrap(), 0);
    assert_eq!(consumed(), 1_020);
    conserved();

    // Archived: the charges leave with their records, for summaries that
    // keep every balance; the ranking outlives them.
    let dir = tempfile::tempdir().unwrap();
    let archived = ledger.archive_settled(i64::MAX, dir.path()).unwrap();
    assert_eq!((archived.records, archived.charges), (4, 6), "three calls' fuel and tokens; the aborted one's none");
    assert_eq!(ledger.transfer_record("l1/llm").unwrap(), None);
    let mut summaries: Vec<(String, u64)> = ledger
        .transfers()
        .unwrap()
        .into_iter()
        .filter(|t| t.kind == TransferKind::Llm)
        .map(|t| {
            assert!(t.id.starts_with("archived:"), "{}", t.id);
            (t.from, t.amount)
        })
        .collect();
    summaries.sort();
    assert_eq!(summaries, [("bob".to_string(), 1_000), ("carol".to_string(), 20)]);
    let lines: String = archived.files.iter().map(|f| std::fs::read_to_string(dir.path().join(f)).unwrap()).collect();
    assert!(lines.contains("\"llm_tokens\":300") && lines.contains("\"kind\":\"llm\""), "{lines}");
    assert_eq!((tokens("bob"), tokens("carol"), consumed()), ((0, 0), (30, 0), 1_020));
    assert_eq!(top(Asset::LlmTokens), by_tokens);
    conserved();
}
