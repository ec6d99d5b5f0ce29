//! The scrip economy: burning, the public-goods pool, UBI split exactly
//! (the remainder stays in the source), every operation idempotent by id.

use fuelhost::{Asset, HostError, LedgerError, UbiSource, BURN_ACCOUNT, POOL_ACCOUNT};
use fuelhost_tests::{assert_conserved, test_host};

fn scrip(t: &fuelhost_tests::TestHost, agent: &str) -> u64 {
    t.host.balances(agent).unwrap().scrip.posted
}

fn system_balance(t: &fuelhost_tests::TestHost, account: &str) -> u64 {
    t.host
        .ledger()
        .transfers()
        .unwrap()
        .iter()
        .filter(|x| x.asset == Asset::Scrip)
        .map(|x| {
            if x.to == account {
                x.amount as i128
            } else if x.from == account {
                -(x.amount as i128)
            } else {
                0
            }
        })
        .sum::<i128>() as u64
}

#[test]
fn burning_takes_scrip_out_of_circulation_once() {
    let t = test_host();
    t.host.burn("burn-1", "bob", 300).unwrap();
    t.host.burn("burn-1", "bob", 300).unwrap();
    assert_eq!(scrip(&t, "bob"), 700);
    assert_eq!(system_balance(&t, BURN_ACCOUNT), 300);
    let err = t.host.burn("burn-2", "bob", 701).unwrap_err();
    assert!(matches!(err, HostError::Ledger(LedgerError::Insufficient { .. })), "{err:?}");
    assert_conserved(&t.host);
}

#[test]
fn the_pool_pays_grants_only_from_what_it_holds() {
    let t = test_host();
    t.host.deposit_to_pool("give-1", "alice", 200).unwrap();
    t.host.mint_to_pool("seed-pool", 50).unwrap();
    assert_eq!(system_balance(&t, POOL_ACCOUNT), 250);
    t.host.grant_from_pool("grant-1", "bob", 240).unwrap();
    t.host.grant_from_pool("grant-1", "bob", 240).unwrap();
    assert_eq!((scrip(&t, "alice"), scrip(&t, "bob")), (800, 1_240));
    let err = t.host.grant_from_pool("grant-2", "bob", 11).unwrap_err();
    assert!(matches!(err, HostError::Ledger(LedgerError::Insufficient { available: 10, needed: 11, .. })), "{err:?}");
    assert_eq!(system_balance(&t, POOL_ACCOUNT), 10);
    assert_conserved(&t.host);
}

#[test]
fn ubi_splits_equally_and_keeps_the_remainder_exact() {
    let t = test_host();
    t.host.create_agent("carol").unwrap();
    t.host.mint_to_pool("seed", 1_000).unwrap();
    let d = t.host.distribute_ubi("ubi-2026-11", UbiSource::Pool, 100).unwrap();
    assert_eq!((d.recipients, d.per_agent, d.remainder), (3, 33, 1));
    assert_eq!((scrip(&t, "alice"), scrip(&t, "bob"), scrip(&t, "carol")), (1_033, 1_033, 33));
    assert_eq!(system_balance(&t, POOL_ACCOUNT), 1_000 - 99, "the remainder never left the pool");
    // Replaying changes nothing; the same id for another amount is refused.
    assert_eq!(t.host.distribute_ubi("ubi-2026-11", UbiSource::Pool, 100).unwrap(), d);
    assert_eq!(scrip(&t, "carol"), 33);
    assert!(matches!(
        t.host.distribute_ubi("ubi-2026-11", UbiSource::Pool, 101).unwrap_err(),
        HostError::Ledger(LedgerError::IdConflict(_))
    ));
    // From the mint, new scrip; more than the pool holds is refused whole.
    let d = t.host.distribute_ubi("ubi-mint", UbiSource::Mint, 7).unwrap();
    assert_eq!((d.per_agent, d.remainder), (2, 1));
    let before = (scrip(&t, "alice"), scrip(&t, "bob"), scrip(&t, "carol"));
    assert!(t.host.distribute_ubi("ubi-too-big", UbiSource::Pool, 10_000).is_err());
    assert_eq!((scrip(&t, "alice"), scrip(&t, "bob"), scrip(&t, "carol")), before);
    assert_conserved(&t.host);
}
