//! The SQLite ledger backend on its own, below any host: reservations in
//! memory and persisted, settlement exactly once, charge ids that no
//! transfer may take, no overflow, the order of transfers across a reopen,
//! and conservation as a query.

use fuelhost_ledger::{
    AgentId, Asset, Balances, Ledger, LedgerError, LedgerQuery, Transfer, TransferKind, TransferRequest,
};
use fuelhost_sqlite::{Durability, SqliteLedger};

/// A ledger on a fresh file, with `alice` and `bob` funded as a test host
/// funds them.
struct Backend {
    dir: tempfile::TempDir,
    ledger: SqliteLedger,
}

fn id(agent: &str) -> AgentId {
    AgentId::new(agent).unwrap()
}

fn backend() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let ledger = SqliteLedger::open(&dir.path().join("ledger.db"), Durability::Process).unwrap();
    let t = Backend { dir, ledger };
    for agent in ["alice", "bob"] {
        t.create_agent(agent).unwrap();
        t.fund(agent, 1_000, 1_000_000_000, 1 << 20);
    }
    t
}

impl Backend {
    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("ledger.db")
    }

    fn create_agent(&self, agent: &str) -> Result<(), LedgerError> {
        self.ledger.open_account(&id(agent))
    }

    fn fund(&self, agent: &str, scrip: u64, fuel: u64, disk: u64) {
        for (asset, amount) in [(Asset::Scrip, scrip), (Asset::Fuel, fuel), (Asset::DiskBytes, disk)] {
            if amount > 0 {
                self.mint(&format!("fund-{agent}-{asset}-{amount}"), agent, asset, amount).unwrap();
            }
        }
    }

    fn mint(
        &self,
        tid: &str,
        agent: &str,
        asset: Asset,
        amount: u64,
    ) -> Result<fuelhost_ledger::Transfer, LedgerError> {
        self.ledger.post_one(Transfer::mint(tid, &id(agent), asset, amount))
    }

    fn balances(&self, agent: &str) -> Result<Balances, LedgerError> {
        self.ledger.balances(&id(agent))
    }

    fn scrip(&self, agent: &str) -> u64 {
        self.balances(agent).unwrap().scrip.posted
    }
}

/// Every asset sums to zero over all accounts.
fn assert_conserved(ledger: &dyn LedgerQuery) {
    for asset in Asset::ALL {
        assert_eq!(ledger.asset_total(asset).unwrap(), 0, "{asset} is not conserved");
    }
}

fn reservation(id: &str, caller: &str, payer: &str, grant: Option<&str>) -> fuelhost_ledger::Reservation {
    fuelhost_ledger::Reservation {
        invocation_id: id.into(),
        artifact: "alice/x@0.1.0".into(),
        resource_policy: fuelhost_ledger::ResourcePolicy::CallerPays,
        caller: caller.try_into().unwrap(),
        owner: "alice".try_into().unwrap(),
        payer: payer.try_into().unwrap(),
        price: 100,
        fuel_limit: 1_000,
        sponsor_grant: grant.map(str::to_string),
        fresh_id: false,
    }
}

fn settlement(r: &fuelhost_ledger::Reservation, memory_peak_bytes: u64) -> fuelhost_ledger::Settlement {
    fuelhost_ledger::Settlement {
        invocation_id: r.invocation_id.clone(),
        artifact: r.artifact.clone(),
        caller: r.caller.clone(),
        owner: r.owner.clone(),
        payer: r.payer.clone(),
        resource_policy: r.resource_policy,
        outcome: fuelhost_ledger::Outcome::Success,
        consumed: fuelhost_ledger::ResourcesConsumed { fuel: 10, memory_peak_bytes, ..Default::default() },
        output: Vec::new(),
        error: None,
        cost_model: Default::default(),
        admission: None,
    }
}

fn transfer(id: &str, from: &str, to: &str, amount: u64) -> TransferRequest {
    TransferRequest {
        id: id.into(),
        from: from.try_into().unwrap(),
        to: to.try_into().unwrap(),
        asset: Asset::Scrip,
        amount,
        memo: "test".into(),
    }
}

/// One invocation id is one reservation, whichever path each attempt
/// takes: in memory (nothing but balances governs it) or persisted (a
/// sponsor grant pays).
#[test]
fn an_invocation_id_is_reserved_once_across_both_paths() {
    let t = backend();
    t.create_agent("carol").unwrap();
    t.fund("carol", 1_000, 1_000_000, 0);
    let grant = fuelhost_ledger::SponsorGrant {
        id: "g".into(),
        sponsor: "carol".try_into().unwrap(),
        beneficiary: "bob".try_into().unwrap(),
        fuel_limit: 1_000_000,
        disk_limit: 0,
        expires_at_ms: None,
        artifacts: vec![],
    };
    t.ledger.grant_sponsorship(&grant).unwrap();
    let ledger = &t.ledger;

    let fast = reservation("same", "alice", "alice", None);
    let fast = fuelhost_ledger::Reservation { owner: "bob".try_into().unwrap(), ..fast };
    ledger.reserve(&fast).unwrap();
    let persisted = reservation("same", "bob", "carol", Some("g"));
    assert!(matches!(ledger.reserve(&persisted).unwrap_err(), LedgerError::DuplicateInvocation(_)));
    ledger.settle(&settlement(&fast, 0)).unwrap();

    ledger.reserve(&reservation("other", "bob", "carol", Some("g"))).unwrap();
    let fast_again = reservation("other", "bob", "bob", None);
    assert!(matches!(ledger.reserve(&fast_again).unwrap_err(), LedgerError::DuplicateInvocation(_)));
    ledger.settle(&settlement(&reservation("other", "bob", "carol", Some("g")), 0)).unwrap();
    assert_eq!(ledger.pending_holds().unwrap(), 0);
    assert_conserved(&t.ledger);
}

/// A host-made id is not looked up when reserving; should one ever repeat a
/// settled id, the usage record's key refuses the second settlement and
/// nothing is charged twice.
#[test]
fn a_repeated_fresh_id_is_never_charged_twice() {
    let t = backend();
    let ledger = &t.ledger;
    let r = fuelhost_ledger::Reservation { fresh_id: true, ..reservation("inv-fresh", "bob", "bob", None) };
    ledger.reserve(&r).unwrap();
    ledger.settle(&settlement(&r, 0)).unwrap();
    let before = t.balances("bob").unwrap();
    ledger.reserve(&r).unwrap();
    assert!(ledger.settle(&settlement(&r, 0)).is_err(), "a second settlement of one id must fail");
    let after = t.balances("bob").unwrap();
    assert_eq!(after.scrip.posted, before.scrip.posted);
    assert_eq!(after.fuel.posted, before.fuel.posted);
    assert_eq!(ledger.transfers().unwrap().iter().filter(|t| t.id == "inv-fresh/price").count(), 1);
    assert_conserved(&t.ledger);
}

/// A settlement that fails leaves the in-memory reservation as it was:
/// its holds still bind, and a later settlement charges it exactly once.
#[test]
fn a_failed_settlement_keeps_the_in_memory_reservation() {
    let t = backend();
    let ledger = &t.ledger;
    let r = reservation("inv-fail", "bob", "bob", None);
    ledger.reserve(&r).unwrap();
    // A memory peak beyond i64::MAX cannot be stored: the usage record
    // fails after the price and fuel were posted, and all of it rolls back.
    let err = ledger.settle(&settlement(&r, u64::MAX)).unwrap_err();
    assert!(matches!(err, LedgerError::Overflow(_)), "{err:?}");
    let bob = t.balances("bob").unwrap();
    assert_eq!((bob.scrip.posted, bob.scrip.held, bob.fuel.held), (1_000, 100, 1_000));
    assert_eq!(ledger.pending_holds().unwrap(), 2);
    let record = ledger.settle(&settlement(&r, 1)).unwrap();
    assert_eq!(record.price_paid, 100);
    let bob = t.balances("bob").unwrap();
    assert_eq!((bob.scrip.posted, bob.scrip.held, bob.fuel.held), (900, 0, 0));
    assert_eq!(ledger.pending_holds().unwrap(), 0);
    assert_conserved(&t.ledger);
}

/// A settlement whose credit would pass i64::MAX fails, changes nothing
/// and keeps the in-memory holds.
#[test]
fn settling_never_wraps_a_balance() {
    let t = backend();
    let ledger = &t.ledger;
    // test_host minted 1,000 scrip each to alice and bob; `@mint` may reach i64::MIN.
    t.mint("whale", "alice", Asset::Scrip, i64::MAX as u64 - 1_999).unwrap();
    let r = fuelhost_ledger::Reservation { price: 1_000, ..reservation("inv-wrap", "bob", "bob", None) };
    ledger.reserve(&r).unwrap();
    let err = ledger.settle(&settlement(&r, 0)).unwrap_err();
    assert!(matches!(err, LedgerError::Conflict(_)), "{err:?}");
    assert_eq!(t.scrip("alice"), i64::MAX as u64 - 999);
    let bob = t.balances("bob").unwrap();
    assert_eq!((bob.scrip.posted, bob.scrip.held), (1_000, 1_000), "the hold is back");
    assert_eq!(ledger.pending_holds().unwrap(), 2);
    assert_conserved(&t.ledger);
}

/// A call nothing but balances governs (no allocation, no sponsor grant) is
/// reserved in memory; its holds still bind every other spend: balances
/// show them, the held scrip cannot be transferred away, the id cannot be
/// reserved twice, and settlement posts exactly what was used.
#[test]
fn an_in_memory_reservation_binds_every_other_spend() {
    let t = backend();
    t.create_agent("carol").unwrap();
    let ledger = &t.ledger;
    let r =
        fuelhost_ledger::Reservation { price: 600, fuel_limit: 5_000, ..reservation("inv-mem-1", "bob", "bob", None) };
    let reserved = ledger.reserve(&r).unwrap();
    assert_eq!(reserved.fuel, 5_000);
    let bob = t.balances("bob").unwrap();
    assert_eq!((bob.scrip.held, bob.fuel.held), (600, 5_000));
    assert_eq!(ledger.pending_holds().unwrap(), 2);

    let err = t.ledger.post_one(Transfer::requested(&transfer("drain", "bob", "carol", 401))).unwrap_err();
    assert_eq!(
        err,
        LedgerError::Insufficient { account: "bob".into(), asset: Asset::Scrip, available: 400, needed: 401 }
    );
    assert!(matches!(ledger.reserve(&r).unwrap_err(), LedgerError::DuplicateInvocation(_)));
    t.ledger.post_one(Transfer::requested(&transfer("fits", "bob", "carol", 400))).unwrap();
    assert_conserved(&t.ledger);

    let mut s = settlement(&r, 0);
    s.consumed.fuel = 1_234;
    let record = ledger.settle(&s).unwrap();
    assert_eq!((record.price_paid, record.consumed.fuel), (600, 1_234));
    let bob = t.balances("bob").unwrap();
    assert_eq!((bob.scrip.posted, bob.scrip.held, bob.fuel.held), (0, 0, 0));
    assert_eq!(bob.fuel.posted, 1_000_000_000 - 1_234);
    assert_eq!(t.scrip("alice"), 1_600);
    assert_eq!(ledger.pending_holds().unwrap(), 0);
    assert!(matches!(ledger.reserve(&r).unwrap_err(), LedgerError::DuplicateInvocation(_)), "settled ids stay taken");
    assert_conserved(&t.ledger);
}

/// A call's charges (price, fuel, disk) are recorded by its usage record
/// alone, not as `transfers` rows, and still read as transfers: by id, in
/// the listing in the order posted, and for replay of their ids.
#[test]
fn a_calls_charges_are_recorded_by_its_usage_record() {
    let t = backend();
    let ledger = &t.ledger;
    let r = reservation("inv-j", "bob", "bob", None);
    ledger.reserve(&r).unwrap();
    let mut s = settlement(&r, 0);
    s.consumed.disk_bytes = 7;
    ledger.settle(&s).unwrap();
    ledger.post_one(Transfer::requested(&transfer("after-j", "bob", "alice", 1))).unwrap();

    let db = rusqlite::Connection::open(t.path()).unwrap();
    let rows: i64 =
        db.query_row("SELECT COUNT(*) FROM transfers WHERE invocation = 'inv-j'", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0, "the charges must not be written twice");

    let all = ledger.transfers().unwrap();
    let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
    let at = ids.iter().position(|id| *id == "inv-j/price").expect("the price is listed");
    assert_eq!(&ids[at..], ["inv-j/price", "inv-j/fuel", "inv-j/disk", "after-j"]);
    let charge = |id: &str| all.iter().find(|t| t.id == id).unwrap().clone();
    assert_eq!((charge("inv-j/price").from.as_str(), charge("inv-j/price").to.as_str()), ("bob", "alice"));
    assert_eq!((charge("inv-j/price").asset, charge("inv-j/price").amount), (Asset::Scrip, 100));
    assert_eq!((charge("inv-j/fuel").to.as_str(), charge("inv-j/fuel").amount), ("@consumed", 10));
    assert_eq!((charge("inv-j/disk").asset, charge("inv-j/disk").amount), (Asset::DiskBytes, 7));
    assert_eq!(ledger.transfer_record("inv-j/fuel").unwrap(), Some(charge("inv-j/fuel")));
    assert_eq!(ledger.transfer_record("inv-j/t0").unwrap(), None);

    let q = fuelhost_ledger::TransferQuery {
        agent: Some("alice".try_into().unwrap()),
        limit: Some(2),
        ..Default::default()
    };
    let newest: Vec<String> = ledger.transfers_matching(&q).unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(newest, ["after-j", "inv-j/price"]);

    // A charge's id is taken: the same transfer replays, another is refused.
    let before = t.balances("alice").unwrap().scrip.posted;
    assert_eq!(
        ledger.post_one(Transfer::requested(&transfer("inv-j/price", "bob", "alice", 100))).unwrap(),
        charge("inv-j/price")
    );
    let other = ledger.post_one(Transfer::requested(&transfer("inv-j/price", "bob", "alice", 5))).unwrap_err();
    assert!(matches!(other, LedgerError::IdConflict(_)), "{other:?}");
    assert_eq!(t.balances("alice").unwrap().scrip.posted, before);
    assert_conserved(&t.ledger);
}

/// An explicit transfer that took a charge's id first keeps it: the
/// invocation of that id is refused when it reserves, before it runs,
/// and holds nothing.
#[test]
fn an_explicit_transfer_holding_a_charge_id_refuses_that_invocation() {
    let t = backend();
    let ledger = &t.ledger;
    ledger.post_one(Transfer::requested(&transfer("inv-k/disk", "bob", "alice", 5))).unwrap();
    let before = t.balances("bob").unwrap();
    let err = ledger.reserve(&reservation("inv-k", "bob", "bob", None)).unwrap_err().to_string();
    assert!(err.contains("`inv-k/disk` already exists") && err.contains("another invocation id"), "{err}");
    assert_eq!(ledger.pending_holds().unwrap(), 0);
    assert_eq!(t.balances("bob").unwrap(), before);
    assert_eq!(ledger.usage_record("inv-k").unwrap(), None);

    // Other invocations reserve and settle as before.
    let r = reservation("inv-l", "bob", "bob", None);
    ledger.reserve(&r).unwrap();
    ledger.settle(&settlement(&r, 0)).unwrap();
    assert!(ledger.transfer_record("inv-l/price").unwrap().is_some());
    assert_conserved(&t.ledger);
}

/// No transfer takes a charge's id: not while its call runs, not after,
/// and not through a distribution that names its transfers itself.
#[test]
fn no_transfer_takes_the_id_of_a_charge() {
    let t = backend();
    let ledger = &t.ledger;
    let r = reservation("inv-m", "bob", "bob", None);
    ledger.reserve(&r).unwrap();
    let running = ledger.post_one(Transfer::requested(&transfer("inv-m/fuel", "bob", "alice", 1))).unwrap_err();
    assert!(matches!(running, LedgerError::IdConflict(_)), "{running:?}");
    ledger.settle(&settlement(&r, 0)).unwrap();

    // A distribution `u1` gives agent `price` the transfer `u1/price`: the
    // id of call `u1`'s price, so it is refused as a whole.
    t.create_agent("price").unwrap();
    let u1 = reservation("u1", "bob", "bob", None);
    ledger.reserve(&u1).unwrap();
    ledger.settle(&settlement(&u1, 0)).unwrap();
    let ubi = ledger.distribute_ubi("u1", fuelhost_ledger::UbiSource::Mint, 30).unwrap_err();
    assert!(matches!(ubi, LedgerError::IdConflict(ref id) if id == "u1/price"), "{ubi:?}");
    let ids: Vec<String> = ledger.transfers().unwrap().into_iter().map(|t| t.id).collect();
    for id in ["inv-m/fuel", "u1/price"] {
        assert_eq!(ids.iter().filter(|i| *i == id).count(), 1, "{id} listed once");
    }
    assert_eq!(ledger.transfer_record("u1/price").unwrap().unwrap().from.as_str(), "bob");
    assert_conserved(&t.ledger);
}

/// The order of transfers and charges goes on across a restart.
#[test]
fn the_order_of_transfers_and_charges_survives_a_restart() {
    let t = backend();
    let r1 = reservation("r1", "bob", "bob", None);
    t.ledger.reserve(&r1).unwrap();
    t.ledger.settle(&settlement(&r1, 0)).unwrap();
    let path = t.path();
    let dir = t.dir;
    drop(t.ledger);

    let ledger = SqliteLedger::open(&path, Durability::Process).unwrap();
    ledger.post_one(Transfer::requested(&transfer("after-restart", "bob", "alice", 1))).unwrap();
    let r2 = reservation("r2", "bob", "bob", None);
    ledger.reserve(&r2).unwrap();
    ledger.settle(&settlement(&r2, 0)).unwrap();
    let ids: Vec<String> = ledger.transfers().unwrap().into_iter().map(|t| t.id).collect();
    let at = ids.iter().position(|id| id == "r1/price").unwrap();
    assert_eq!(&ids[at..], ["r1/price", "r1/fuel", "after-restart", "r2/price", "r2/fuel"]);
    drop(dir);
}

/// An invocation settles once: a second settlement of its id, or one of an
/// id that never reserved, is refused and moves nothing.
#[test]
fn settling_an_invocation_twice_is_impossible() {
    let t = backend();
    let r = reservation("inv-twice", "bob", "bob", None);
    t.ledger.reserve(&r).unwrap();
    t.ledger.settle(&settlement(&r, 0)).unwrap();
    let before = t.balances("bob").unwrap();
    let again = t.ledger.settle(&settlement(&r, 0));
    assert!(matches!(again, Err(LedgerError::DuplicateInvocation(_))), "{again:?}");
    let never = reservation("never-reserved", "bob", "bob", None);
    let never = t.ledger.settle(&settlement(&never, 0));
    assert!(matches!(never, Err(LedgerError::NoReservation(_))), "{never:?}");
    assert_eq!(t.balances("bob").unwrap(), before);
    assert_conserved(&t.ledger);
}

#[test]
fn a_batch_posts_whole_or_not_at_all() {
    let t = backend();
    t.create_agent("carol").unwrap();
    // The second posting overdraws bob: neither lands.
    let batch = [
        Transfer::requested(&transfer("b-1", "alice", "carol", 10)),
        Transfer::requested(&transfer("b-2", "bob", "carol", 1_001)),
    ];
    assert!(matches!(t.ledger.post(&batch), Err(LedgerError::Insufficient { .. })));
    assert_eq!((t.scrip("alice"), t.scrip("carol")), (1_000, 0));
    assert_eq!(t.ledger.transfer_record("b-1").unwrap(), None);

    let fits = [Transfer::requested(&transfer("b-1", "alice", "carol", 10)), Transfer::burn("b-3", &id("bob"), 1)];
    let posted = t.ledger.post(&fits).unwrap();
    assert_eq!(posted.iter().map(|p| p.kind).collect::<Vec<_>>(), [TransferKind::Transfer, TransferKind::Burn]);
    // A replay returns what was posted and moves nothing more.
    assert_eq!(t.ledger.post(&fits).unwrap(), posted);
    assert_eq!((t.scrip("alice"), t.scrip("bob"), t.scrip("carol")), (990, 999, 10));
    assert_conserved(&t.ledger);
}

#[test]
fn each_kind_keeps_its_rules_in_every_backend() {
    let t = backend();
    // Settlement's kinds cannot be posted by hand.
    let price = Transfer { kind: TransferKind::Price, ..Transfer::requested(&transfer("p", "alice", "bob", 1)) };
    assert!(matches!(t.ledger.post_one(price), Err(LedgerError::Invalid(m)) if m.contains("settling a call")));
    // A mint must come from `@mint`.
    let forged = Transfer { from: "alice".into(), ..Transfer::mint("f", &id("bob"), Asset::Scrip, 5) };
    assert!(matches!(t.ledger.post_one(forged), Err(LedgerError::Invalid(_))));
    // The pool pays only what it has, though it is a system account.
    t.ledger.post_one(Transfer::mint_to_pool("pool", 50)).unwrap();
    let err = t.ledger.post_one(Transfer::pool_grant("g", &id("alice"), 51)).unwrap_err();
    assert!(matches!(err, LedgerError::Insufficient { available: 50, needed: 51, .. }), "{err}");
    t.ledger.post_one(Transfer::pool_grant("g", &id("alice"), 50)).unwrap();
    assert_eq!(t.scrip("alice"), 1_050);
    assert_conserved(&t.ledger);
}

/// Reservations checked from memory, without the connection, never hold
/// more than a balance has, whatever runs beside them: settlements
/// releasing holds and journaling what they spent, explicit transfers
/// draining the payer, mints refilling it, projections of the journal.
/// A watcher reads the payer's balances throughout; at the end every
/// asset is conserved and the payer's fuel is exactly what was minted
/// less what the records charged.
#[test]
fn reservations_from_memory_never_overdraw() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let t = backend();
    t.create_agent("carol").unwrap();
    t.fund("carol", 5_000, 20_000, 1 << 10);
    let (ledger, stop, charged, minted) = (&t.ledger, AtomicBool::new(false), AtomicU64::new(0), AtomicU64::new(0));
    /// Stops the feeder and the watcher however the scope ends.
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        let callers: Vec<_> = (0..3)
            .map(|thread| {
                let (charged, t) = (&charged, &t);
                scope.spawn(move || {
                    let (mut settled, deadline) = (0, std::time::Instant::now() + std::time::Duration::from_secs(60));
                    for i in 0.. {
                        if settled == 300 {
                            break;
                        }
                        assert!(std::time::Instant::now() < deadline, "only {settled} calls settled in a minute");
                        let r = fuelhost_ledger::Reservation {
                            price: 7,
                            fuel_limit: 1_000,
                            fresh_id: true,
                            ..reservation(&format!("c{thread}-{i}"), "carol", "carol", None)
                        };
                        match t.ledger.reserve(&r) {
                            Ok(reserved) => {
                                let mut s = settlement(&r, 0);
                                s.consumed.fuel = reserved.fuel.saturating_sub((i % 3) as u64);
                                let record = t.ledger.settle(&s).unwrap();
                                charged.fetch_add(record.consumed.fuel, Ordering::SeqCst);
                                settled += 1;
                            }
                            Err(LedgerError::Insufficient { .. }) => std::thread::yield_now(),
                            Err(e) => panic!("reserving {}: {e}", r.invocation_id),
                        }
                    }
                })
            })
            .collect();
        let feeder = scope.spawn(|| {
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                if t.mint(&format!("refill-{i}"), "carol", Asset::Fuel, 1_500).is_ok() {
                    minted.fetch_add(1_500, Ordering::SeqCst);
                }
                t.mint(&format!("pocket-money-{i}"), "carol", Asset::Scrip, 10).unwrap();
                // Spend what the calls would: the balance is checked under
                // the connection, racing the reservations from memory.
                let _ = t.ledger.post_one(Transfer::requested(&transfer(&format!("drain-{i}"), "carol", "bob", 3)));
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        });
        let watcher = scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let b = t.balances("carol").unwrap();
                assert!(b.fuel.held <= b.fuel.posted, "fuel held past the balance: {:?}", b.fuel);
                assert!(b.scrip.held <= b.scrip.posted, "scrip held past the balance: {:?}", b.scrip);
                std::thread::sleep(std::time::Duration::from_micros(20));
            }
        });
        for caller in callers {
            caller.join().unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        feeder.join().unwrap();
        watcher.join().unwrap();
    });
    let carol = t.balances("carol").unwrap();
    assert_eq!((carol.fuel.held, carol.scrip.held), (0, 0));
    let expected = 20_000 + minted.load(Ordering::SeqCst) - charged.load(Ordering::SeqCst);
    assert_eq!(carol.fuel.posted, expected);
    assert_eq!(ledger.pending_holds().unwrap(), 0);
    assert_conserved(ledger);
}
