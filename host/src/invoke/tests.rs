//! The ledger stages on a ledger alone: a `SqliteLedger` on a temporary
//! file, no host, no guest.

use std::time::Duration;

use fuelhost_ledger::{AgentId, Asset, Ledger, LedgerQuery, Outcome, SponsorGrant};
use fuelhost_sqlite::{Durability, SqliteLedger};

use super::admit::Charge;
use super::report::report;
use super::reserve::reserve;
use super::run::Ran;
use super::settle::settle;
use crate::error::InvokeError;
use crate::manifest::ResourcePolicy;
use crate::telemetry::Metrics;

fn id(agent: &str) -> AgentId {
    AgentId::new(agent).unwrap()
}

/// A ledger with `alice` (the owner), `bob` (the caller) and `carol` (a
/// sponsor), each with 1,000 scrip and 1,000,000 fuel.
fn ledger() -> (tempfile::TempDir, SqliteLedger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = SqliteLedger::open(&dir.path().join("l.db"), Durability::Process).unwrap();
    for agent in ["alice", "bob", "carol"] {
        ledger.open_account(&id(agent)).unwrap();
        ledger.mint(&format!("{agent}-scrip"), &id(agent), Asset::Scrip, 1_000).unwrap();
        ledger.mint(&format!("{agent}-fuel"), &id(agent), Asset::Fuel, 1_000_000).unwrap();
    }
    (dir, ledger)
}

/// Bob calling alice's artifact, paying for himself.
fn charge(invocation: &str, price: u64, fuel_limit: u64) -> Charge {
    Charge {
        invocation_id: invocation.into(),
        fresh_id: false,
        artifact: "alice/echo@0.1.0".into(),
        resource_policy: ResourcePolicy::CallerPays,
        caller: id("bob"),
        owner: id("alice"),
        payer: id("bob"),
        sponsorship: None,
        price,
        fuel_limit,
    }
}

fn ran(outcome: Outcome, fuel_used: u64) -> Ran {
    Ran {
        outcome,
        output: b"out".to_vec(),
        error: None,
        fuel_used,
        memory_peak: 64 << 10,
        disk_bytes: 0,
        wall: Duration::from_micros(50),
        cost: Default::default(),
    }
}

fn conserved(ledger: &dyn LedgerQuery) {
    for asset in Asset::ALL {
        assert_eq!(ledger.asset_total(asset).unwrap(), 0, "{asset}");
    }
}

#[test]
fn reserve_holds_the_price_and_the_fuel_limit() {
    let (_dir, ledger) = ledger();
    let held = reserve(&ledger, &charge("inv-1", 100, 5_000)).unwrap();
    assert_eq!((held.reserved.fuel, held.payer.as_str()), (5_000, "bob"));
    let bob = ledger.balances(&id("bob")).unwrap();
    assert_eq!((bob.scrip.held, bob.fuel.held), (100, 5_000));
    conserved(&ledger);
}

#[test]
fn reserve_refuses_what_the_caller_cannot_pay_and_holds_nothing() {
    let (_dir, ledger) = ledger();
    let err = reserve(&ledger, &charge("inv-poor", 1_001, 5_000)).err().unwrap();
    assert!(matches!(err, InvokeError::InsufficientScrip { available: 1_000, price: 1_001, .. }), "{err:?}");
    assert_eq!(ledger.pending_holds().unwrap(), 0);
    // A call whose id is held already is in progress, not charged twice.
    reserve(&ledger, &charge("inv-2", 1, 10)).unwrap();
    let again = reserve(&ledger, &charge("inv-2", 1, 10)).err().unwrap();
    assert!(matches!(again, InvokeError::InProgress(ref i) if i == "inv-2"), "{again:?}");
}

#[test]
fn reserve_resolves_the_payer_again_when_the_grant_is_gone() {
    let (_dir, ledger) = ledger();
    let grant = SponsorGrant {
        id: "g".into(),
        sponsor: id("carol"),
        beneficiary: id("bob"),
        fuel_limit: 1_000_000,
        disk_limit: 0,
        expires_at_ms: None,
        artifacts: vec![],
    };
    ledger.grant_sponsorship(&grant).unwrap();
    let status = ledger.sponsorship("g").unwrap().unwrap();
    let sponsored = Charge { payer: id("carol"), sponsorship: Some(status), ..charge("inv-g", 10, 5_000) };
    // Revoked between admission and reservation: bob pays for himself.
    ledger.revoke_sponsorship("g").unwrap();
    let held = reserve(&ledger, &sponsored).unwrap();
    assert_eq!(held.payer.as_str(), "bob");
    assert!(held.sponsorship.is_none());
    assert_eq!(ledger.balances(&id("carol")).unwrap().fuel.held, 0);
    assert_eq!(ledger.balances(&id("bob")).unwrap().fuel.held, 5_000);
}

#[test]
fn settle_charges_the_fuel_burned_and_the_price_only_on_success() {
    let (_dir, ledger) = ledger();
    let ok = charge("inv-ok", 100, 5_000);
    let held = reserve(&ledger, &ok).unwrap();
    let record = settle(&ledger, ok.clone(), held, ran(Outcome::Success, 1_234)).unwrap();
    assert_eq!((record.price_paid, record.consumed.fuel, record.charged_to.as_str()), (100, 1_234, "bob"));

    let failed = charge("inv-trap", 100, 5_000);
    let held = reserve(&ledger, &failed).unwrap();
    let record = settle(&ledger, failed, held, ran(Outcome::Trap, 700)).unwrap();
    assert_eq!((record.price_paid, record.consumed.fuel), (0, 700));

    let bob = ledger.balances(&id("bob")).unwrap();
    assert_eq!((bob.scrip.posted, bob.scrip.held, bob.fuel.held), (900, 0, 0));
    assert_eq!(bob.fuel.posted, 1_000_000 - 1_234 - 700);
    assert_eq!(ledger.balances(&id("alice")).unwrap().scrip.posted, 1_100);
    // Settling again is refused: a call is charged once.
    let reserved = fuelhost_ledger::Reserved { fuel: 1, disk_bytes: 0, memory_bytes: None, allocation: None };
    let held_again = super::reserve::Held { reserved, payer: id("bob"), sponsorship: None };
    assert!(settle(&ledger, ok, held_again, ran(Outcome::Success, 1)).is_err());
    conserved(&ledger);
}

#[test]
fn report_answers_the_record_and_counts_it() {
    let (_dir, ledger) = ledger();
    let call = charge("inv-r", 5, 100);
    let held = reserve(&ledger, &call).unwrap();
    let record = settle(&ledger, call, held, ran(Outcome::Success, 42)).unwrap();
    let metrics = Metrics::default();
    let report = report(&metrics, record);
    assert!(report.success && !report.replayed);
    assert_eq!((report.invocation_id.as_str(), report.output_text().as_str()), ("inv-r", "out"));
    assert_eq!(report.resources_consumed.fuel, 42);
    let text = metrics.render(&ledger, &Default::default(), &[]);
    assert!(text.contains("outcome=\"success\""), "{text}");
}
