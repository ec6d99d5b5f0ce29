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
    let open = || fuelhost_tests::builder(dir.path()).max_instances(2).build().unwrap();
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
