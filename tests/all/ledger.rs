//! The ledger on its own: exact integers, idempotent transfers by id, ids
//! that cannot be reused for another transfer, no overdrafts, no overflow,
//! durability across a restart, and conservation as a query.

use fuelhost::{Asset, Host, HostError, LedgerError, TransferRequest, MINT_ACCOUNT};
use fuelhost_tests::{assert_conserved, test_host};

fn scrip(host: &Host, agent: &str) -> u64 {
    host.balances(agent).unwrap().scrip.posted
}

fn ledger_err(e: HostError) -> LedgerError {
    match e {
        HostError::Ledger(l) => l,
        other => panic!("expected a ledger error, got {other:?}"),
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

#[test]
fn minting_and_transfers_are_idempotent_by_id() {
    let t = test_host();
    let first = t.host.mint("grant-1", "bob", Asset::Scrip, 50).unwrap();
    let again = t.host.mint("grant-1", "bob", Asset::Scrip, 50).unwrap();
    assert_eq!(first, again);
    assert_eq!(scrip(&t.host, "bob"), 1_050);
    let err = ledger_err(t.host.mint("grant-1", "bob", Asset::Scrip, 51).unwrap_err());
    assert_eq!(err, LedgerError::IdConflict("grant-1".into()));

    t.host.transfer(&transfer("pay-1", "bob", "alice", 30)).unwrap();
    t.host.transfer(&transfer("pay-1", "bob", "alice", 30)).unwrap();
    assert_eq!((scrip(&t.host, "bob"), scrip(&t.host, "alice")), (1_020, 1_030));
    let err = ledger_err(t.host.transfer(&transfer("pay-1", "alice", "bob", 30)).unwrap_err());
    assert!(matches!(err, LedgerError::IdConflict(_)));
    let kinds: Vec<_> =
        t.host.ledger().transfers().unwrap().into_iter().filter(|x| x.id == "pay-1" || x.id == "grant-1").collect();
    assert_eq!(kinds.len(), 2, "each id applied exactly once");
    assert_conserved(&t.host);
}

#[test]
fn overdrafts_self_transfers_zero_amounts_and_unknown_agents_are_refused() {
    let t = test_host();
    let err = ledger_err(t.host.transfer(&transfer("big", "bob", "alice", 1_001)).unwrap_err());
    assert_eq!(
        err,
        LedgerError::Insufficient { account: "bob".into(), asset: Asset::Scrip, available: 1_000, needed: 1_001 }
    );
    assert!(err.to_string().contains("1000 scrip available, 1001 needed"));
    assert!(matches!(
        ledger_err(t.host.transfer(&transfer("self", "bob", "bob", 1)).unwrap_err()),
        LedgerError::Invalid(_)
    ));
    assert!(matches!(
        ledger_err(t.host.transfer(&transfer("zero", "bob", "alice", 0)).unwrap_err()),
        LedgerError::Invalid(_)
    ));
    let err = ledger_err(t.host.transfer(&transfer("ghost", "bob", "ghost", 1)).unwrap_err());
    assert_eq!(err, LedgerError::UnknownAccount("ghost".into()));
    assert!(matches!(t.host.mint("m", "Not An Id", Asset::Scrip, 1), Err(HostError::InvalidAgent(_))));
    assert!(matches!(ledger_err(t.host.create_agent("bob").unwrap_err()), LedgerError::AccountExists(_)));
    assert_eq!((scrip(&t.host, "bob"), scrip(&t.host, "alice")), (1_000, 1_000));
    assert!(t
        .host
        .ledger()
        .transfers()
        .unwrap()
        .iter()
        .all(|x| !["big", "self", "zero", "ghost"].contains(&x.id.as_str())));
    assert_conserved(&t.host);
}

#[test]
fn amounts_never_wrap() {
    let t = test_host();
    let err = ledger_err(t.host.mint("huge", "bob", Asset::Fuel, u64::MAX).unwrap_err());
    assert!(matches!(err, LedgerError::Overflow(_)), "{err:?}");
    // Total issuance is bounded too: `@mint` holds minus everything minted.
    t.host.create_agent("whale").unwrap();
    let issued = t.host.ledger().asset_total(Asset::Scrip).unwrap();
    assert_eq!(issued, 0);
    let room = i64::MAX as u64 - 2_000; // test_host minted 2,000 scrip already
    t.host.mint("w1", "whale", Asset::Scrip, room).unwrap();
    // `@mint` may reach i64::MIN (one past -i64::MAX), not beyond.
    let err = ledger_err(t.host.mint("w2", "whale", Asset::Scrip, 2).unwrap_err());
    assert!(matches!(err, LedgerError::Conflict(_)), "{err:?}");
    assert_eq!(scrip(&t.host, "whale"), room);
    assert_conserved(&t.host);
}

#[test]
fn balances_survive_a_restart_and_the_mint_account_mirrors_issuance() {
    let dir = tempfile::tempdir().unwrap();
    let open = || Host::builder().data_dir(dir.path()).max_instances(2).build().unwrap();
    {
        let host = open();
        host.create_agent("bob").unwrap();
        host.create_agent("alice").unwrap();
        host.mint("g", "bob", Asset::Scrip, 700).unwrap();
        host.transfer(&transfer("t", "bob", "alice", 200)).unwrap();
    }
    let host = open();
    assert_eq!((scrip(&host, "bob"), scrip(&host, "alice")), (500, 200));
    assert_eq!(host.ledger().asset_total(Asset::Scrip).unwrap(), 0);
    let minted: u64 =
        host.ledger().transfers().unwrap().iter().filter(|x| x.from == MINT_ACCOUNT).map(|x| x.amount).sum();
    assert_eq!(minted, 700);
}

fn reservation(id: &str, caller: &str, payer: &str, grant: Option<&str>) -> fuelhost::Reservation {
    fuelhost::Reservation {
        invocation_id: id.into(),
        artifact: "alice/x@0.1.0".into(),
        resource_policy: fuelhost::ResourcePolicy::CallerPays,
        caller: caller.try_into().unwrap(),
        owner: "alice".try_into().unwrap(),
        payer: payer.try_into().unwrap(),
        price: 100,
        fuel_limit: 1_000,
        sponsor_grant: grant.map(str::to_string),
        fresh_id: false,
    }
}

fn settlement(r: &fuelhost::Reservation, memory_peak_bytes: u64) -> fuelhost::Settlement {
    fuelhost::Settlement {
        invocation_id: r.invocation_id.clone(),
        artifact: r.artifact.clone(),
        caller: r.caller.clone(),
        owner: r.owner.clone(),
        payer: r.payer.clone(),
        resource_policy: r.resource_policy,
        outcome: fuelhost::Outcome::Success,
        consumed: fuelhost::ResourcesConsumed { fuel: 10, memory_peak_bytes, ..Default::default() },
        output: Vec::new(),
        error: None,
        cost_model: Default::default(),
    }
}

/// One invocation id is one reservation, whichever path each attempt
/// takes: in memory (nothing but balances governs it) or persisted (a
/// sponsor grant pays).
#[test]
fn an_invocation_id_is_reserved_once_across_both_paths() {
    let t = test_host();
    t.host.create_agent("carol").unwrap();
    fuelhost_tests::fund(&t.host, "carol", 1_000, 1_000_000, 0);
    let grant = fuelhost::SponsorGrant {
        id: "g".into(),
        sponsor: "carol".try_into().unwrap(),
        beneficiary: "bob".try_into().unwrap(),
        fuel_limit: 1_000_000,
        disk_limit: 0,
        expires_at_ms: None,
        artifacts: vec![],
    };
    t.host.grant_sponsorship(&grant).unwrap();
    let ledger = t.host.ledger();

    let fast = reservation("same", "alice", "alice", None);
    let fast = fuelhost::Reservation { owner: "bob".try_into().unwrap(), ..fast };
    ledger.reserve(&fast).unwrap();
    let persisted = reservation("same", "bob", "carol", Some("g"));
    assert!(matches!(ledger.reserve(&persisted).unwrap_err(), LedgerError::DuplicateInvocation(_)));
    ledger.settle(&settlement(&fast, 0)).unwrap();

    ledger.reserve(&reservation("other", "bob", "carol", Some("g"))).unwrap();
    let fast_again = reservation("other", "bob", "bob", None);
    assert!(matches!(ledger.reserve(&fast_again).unwrap_err(), LedgerError::DuplicateInvocation(_)));
    ledger.settle(&settlement(&reservation("other", "bob", "carol", Some("g")), 0)).unwrap();
    assert_eq!(ledger.pending_holds().unwrap(), 0);
    assert_conserved(&t.host);
}

/// A host-made id is not looked up when reserving; should one ever repeat a
/// settled id, the usage record's key refuses the second settlement and
/// nothing is charged twice.
#[test]
fn a_repeated_fresh_id_is_never_charged_twice() {
    let t = test_host();
    let ledger = t.host.ledger();
    let r = fuelhost::Reservation { fresh_id: true, ..reservation("inv-fresh", "bob", "bob", None) };
    ledger.reserve(&r).unwrap();
    ledger.settle(&settlement(&r, 0)).unwrap();
    let before = t.host.balances("bob").unwrap();
    ledger.reserve(&r).unwrap();
    assert!(ledger.settle(&settlement(&r, 0)).is_err(), "a second settlement of one id must fail");
    let after = t.host.balances("bob").unwrap();
    assert_eq!(after.scrip.posted, before.scrip.posted);
    assert_eq!(after.fuel.posted, before.fuel.posted);
    assert_eq!(ledger.transfers().unwrap().iter().filter(|t| t.id == "inv-fresh/price").count(), 1);
    assert_conserved(&t.host);
}

/// A settlement that fails leaves the in-memory reservation as it was:
/// its holds still bind, and a later settlement charges it exactly once.
#[test]
fn a_failed_settlement_keeps_the_in_memory_reservation() {
    let t = test_host();
    let ledger = t.host.ledger();
    let r = reservation("inv-fail", "bob", "bob", None);
    ledger.reserve(&r).unwrap();
    // A memory peak beyond i64::MAX cannot be stored: the usage record
    // fails after the price and fuel were posted, and all of it rolls back.
    let err = ledger.settle(&settlement(&r, u64::MAX)).unwrap_err();
    assert!(matches!(err, LedgerError::Overflow(_)), "{err:?}");
    let bob = t.host.balances("bob").unwrap();
    assert_eq!((bob.scrip.posted, bob.scrip.held, bob.fuel.held), (1_000, 100, 1_000));
    assert_eq!(ledger.pending_holds().unwrap(), 2);
    let record = ledger.settle(&settlement(&r, 1)).unwrap();
    assert_eq!(record.price_paid, 100);
    let bob = t.host.balances("bob").unwrap();
    assert_eq!((bob.scrip.posted, bob.scrip.held, bob.fuel.held), (900, 0, 0));
    assert_eq!(ledger.pending_holds().unwrap(), 0);
    assert_conserved(&t.host);
}

/// A settlement whose credit would pass i64::MAX fails, changes nothing
/// and keeps the in-memory holds.
#[test]
fn settling_never_wraps_a_balance() {
    let t = test_host();
    let ledger = t.host.ledger();
    // test_host minted 1,000 scrip each to alice and bob; `@mint` may reach i64::MIN.
    t.host.mint("whale", "alice", Asset::Scrip, i64::MAX as u64 - 1_999).unwrap();
    let r = fuelhost::Reservation { price: 1_000, ..reservation("inv-wrap", "bob", "bob", None) };
    ledger.reserve(&r).unwrap();
    let err = ledger.settle(&settlement(&r, 0)).unwrap_err();
    assert!(matches!(err, LedgerError::Conflict(_)), "{err:?}");
    assert_eq!(scrip(&t.host, "alice"), i64::MAX as u64 - 999);
    let bob = t.host.balances("bob").unwrap();
    assert_eq!((bob.scrip.posted, bob.scrip.held), (1_000, 1_000), "the hold is back");
    assert_eq!(ledger.pending_holds().unwrap(), 2);
    assert_conserved(&t.host);
}

/// A call nothing but balances governs (no allocation, no sponsor grant) is
/// reserved in memory; its holds still bind every other spend: balances
/// show them, the held scrip cannot be transferred away, the id cannot be
/// reserved twice, and settlement posts exactly what was used.
#[test]
fn an_in_memory_reservation_binds_every_other_spend() {
    let t = test_host();
    t.host.create_agent("carol").unwrap();
    let ledger = t.host.ledger();
    let r = fuelhost::Reservation { price: 600, fuel_limit: 5_000, ..reservation("inv-mem-1", "bob", "bob", None) };
    let reserved = ledger.reserve(&r).unwrap();
    assert_eq!(reserved.fuel, 5_000);
    let bob = t.host.balances("bob").unwrap();
    assert_eq!((bob.scrip.held, bob.fuel.held), (600, 5_000));
    assert_eq!(ledger.pending_holds().unwrap(), 2);

    let err = ledger_err(t.host.transfer(&transfer("drain", "bob", "carol", 401)).unwrap_err());
    assert_eq!(
        err,
        LedgerError::Insufficient { account: "bob".into(), asset: Asset::Scrip, available: 400, needed: 401 }
    );
    assert!(matches!(ledger.reserve(&r).unwrap_err(), LedgerError::DuplicateInvocation(_)));
    t.host.transfer(&transfer("fits", "bob", "carol", 400)).unwrap();
    assert_conserved(&t.host);

    let mut s = settlement(&r, 0);
    s.consumed.fuel = 1_234;
    let record = ledger.settle(&s).unwrap();
    assert_eq!((record.price_paid, record.consumed.fuel), (600, 1_234));
    let bob = t.host.balances("bob").unwrap();
    assert_eq!((bob.scrip.posted, bob.scrip.held, bob.fuel.held), (0, 0, 0));
    assert_eq!(bob.fuel.posted, 1_000_000_000 - 1_234);
    assert_eq!(scrip(&t.host, "alice"), 1_600);
    assert_eq!(ledger.pending_holds().unwrap(), 0);
    assert!(matches!(ledger.reserve(&r).unwrap_err(), LedgerError::DuplicateInvocation(_)), "settled ids stay taken");
    assert_conserved(&t.host);
}

/// A call's charges (price, fuel, disk) are recorded by its usage record
/// alone, not as `transfers` rows, and still read as transfers: by id, in
/// the listing in the order posted, and for replay of their ids.
#[test]
fn a_calls_charges_are_recorded_by_its_usage_record() {
    let t = test_host();
    let ledger = t.host.ledger();
    let r = reservation("inv-j", "bob", "bob", None);
    ledger.reserve(&r).unwrap();
    let mut s = settlement(&r, 0);
    s.consumed.disk_bytes = 7;
    ledger.settle(&s).unwrap();
    ledger.transfer(&transfer("after-j", "bob", "alice", 1)).unwrap();

    let db = rusqlite::Connection::open(t.dir.path().join("fuelhost.db")).unwrap();
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

    let q = fuelhost::TransferQuery { agent: Some("alice".try_into().unwrap()), limit: Some(2), ..Default::default() };
    let newest: Vec<String> = ledger.transfers_matching(&q).unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(newest, ["after-j", "inv-j/price"]);

    // A charge's id is taken: the same transfer replays, another is refused.
    let before = t.host.balances("alice").unwrap().scrip.posted;
    assert_eq!(ledger.transfer(&transfer("inv-j/price", "bob", "alice", 100)).unwrap(), charge("inv-j/price"));
    let other = ledger.transfer(&transfer("inv-j/price", "bob", "alice", 5)).unwrap_err();
    assert!(matches!(other, LedgerError::IdConflict(_)), "{other:?}");
    assert_eq!(t.host.balances("alice").unwrap().scrip.posted, before);
    assert_conserved(&t.host);
}

/// An explicit transfer that took a charge's id first keeps it: the
/// invocation of that id is refused when it reserves, before it runs,
/// and holds nothing.
#[test]
fn an_explicit_transfer_holding_a_charge_id_refuses_that_invocation() {
    let t = test_host();
    let ledger = t.host.ledger();
    ledger.transfer(&transfer("inv-k/disk", "bob", "alice", 5)).unwrap();
    let before = t.host.balances("bob").unwrap();
    let err = ledger.reserve(&reservation("inv-k", "bob", "bob", None)).unwrap_err().to_string();
    assert!(err.contains("`inv-k/disk` already exists") && err.contains("another invocation id"), "{err}");
    assert_eq!(ledger.pending_holds().unwrap(), 0);
    assert_eq!(t.host.balances("bob").unwrap(), before);
    assert_eq!(ledger.usage_record("inv-k").unwrap(), None);

    // Other invocations reserve and settle as before.
    let r = reservation("inv-l", "bob", "bob", None);
    ledger.reserve(&r).unwrap();
    ledger.settle(&settlement(&r, 0)).unwrap();
    assert!(ledger.transfer_record("inv-l/price").unwrap().is_some());
    assert_conserved(&t.host);
}

/// No transfer takes a charge's id: not while its call runs, not after,
/// and not through a distribution that names its transfers itself.
#[test]
fn no_transfer_takes_the_id_of_a_charge() {
    let t = test_host();
    let ledger = t.host.ledger();
    let r = reservation("inv-m", "bob", "bob", None);
    ledger.reserve(&r).unwrap();
    let running = ledger.transfer(&transfer("inv-m/fuel", "bob", "alice", 1)).unwrap_err();
    assert!(matches!(running, LedgerError::IdConflict(_)), "{running:?}");
    ledger.settle(&settlement(&r, 0)).unwrap();

    // A distribution `u1` gives agent `price` the transfer `u1/price`: the
    // id of call `u1`'s price, so it is refused as a whole.
    t.host.create_agent("price").unwrap();
    let u1 = reservation("u1", "bob", "bob", None);
    ledger.reserve(&u1).unwrap();
    ledger.settle(&settlement(&u1, 0)).unwrap();
    let ubi = ledger.distribute_ubi("u1", fuelhost::UbiSource::Mint, 30).unwrap_err();
    assert!(matches!(ubi, LedgerError::IdConflict(ref id) if id == "u1/price"), "{ubi:?}");
    let ids: Vec<String> = ledger.transfers().unwrap().into_iter().map(|t| t.id).collect();
    for id in ["inv-m/fuel", "u1/price"] {
        assert_eq!(ids.iter().filter(|i| *i == id).count(), 1, "{id} listed once");
    }
    assert_eq!(ledger.transfer_record("u1/price").unwrap().unwrap().from.as_str(), "bob");
    assert_conserved(&t.host);
}

/// The order of transfers and charges goes on across a restart.
#[test]
fn the_order_of_transfers_and_charges_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Host::builder().data_dir(dir.path()).compile_cache_dir(fuelhost_tests::shared_compile_cache()).build().unwrap()
    };
    let host = open();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
        fuelhost_tests::fund(&host, agent, 1_000, 1_000_000, 0);
    }
    let r1 = reservation("r1", "bob", "bob", None);
    host.ledger().reserve(&r1).unwrap();
    host.ledger().settle(&settlement(&r1, 0)).unwrap();
    drop(host);

    let host = open();
    host.ledger().transfer(&transfer("after-restart", "bob", "alice", 1)).unwrap();
    let r2 = reservation("r2", "bob", "bob", None);
    host.ledger().reserve(&r2).unwrap();
    host.ledger().settle(&settlement(&r2, 0)).unwrap();
    let ids: Vec<String> = host.ledger().transfers().unwrap().into_iter().map(|t| t.id).collect();
    let at = ids.iter().position(|id| id == "r1/price").unwrap();
    assert_eq!(&ids[at..], ["r1/price", "r1/fuel", "after-restart", "r2/price", "r2/fuel"]);
}
