//! The `ledger` import as a guest sees it: the call context, the balances
//! of the call's parties only, and transfers of its principal's scrip that
//! take effect only if the run succeeds.

use fuelhost::{Invocation, Limits, Outcome, ResourcePolicy};
use fuelhost_tests::{assert_conserved, test_host, upload};

fn setup(policy: ResourcePolicy) -> (fuelhost_tests::TestHost, String) {
    let t = test_host();
    t.host.create_agent("carol").unwrap();
    let id = upload(&t.host, "rust-probe", "probe", 2, policy, Limits { fuel: 50_000_000, ..Limits::default() });
    (t, id)
}

#[test]
fn the_context_names_caller_owner_payer_and_limits() {
    let (t, id) = setup(ResourcePolicy::OwnerPays);
    let r = t.host.invoke(Invocation::new("bob", &id, "context").id("ctx-1").fuel_limit(7_000_000)).unwrap();
    assert_eq!(
        r.output_text(),
        "invocation=ctx-1 artifact=alice/probe@0.1.0 caller=bob owner=alice payer=alice policy=ResourcePolicy::OwnerPays price=2 fuel_limit=7000000"
    );
}

#[test]
fn only_the_parties_balances_are_readable() {
    let (t, id) = setup(ResourcePolicy::CallerPays);
    let r = t.host.invoke(Invocation::new("bob", &id, "balance:alice")).unwrap();
    assert_eq!(r.output_text(), "scrip=1000 fuel=1000000000 disk=1048576");
    let r = t.host.invoke(Invocation::new("bob", &id, "balance:bob")).unwrap();
    // 1,000 minus the first call's price (posted) minus this call's (held).
    assert!(r.output_text().starts_with("scrip=996 "), "the price is held during the run: {}", r.output_text());
    let r = t.host.invoke(Invocation::new("bob", &id, "balance:carol")).unwrap();
    assert_eq!(r.outcome, Outcome::RunError);
    assert!(r.error.unwrap().contains("NotPermitted"));
}

#[test]
fn a_guest_transfer_moves_the_owners_scrip_when_the_run_succeeds() {
    let (t, id) = setup(ResourcePolicy::CallerPays);
    let r = t.host.invoke(Invocation::new("bob", &id, "transfer:carol:300")).unwrap();
    assert_eq!(r.outcome, Outcome::Success);
    assert_eq!(r.output_text(), format!("{}/t1", r.invocation_id));
    assert_eq!(t.host.balances("carol").unwrap().scrip.posted, 300);
    assert_eq!(t.host.balances("alice").unwrap().scrip.posted, 1_000 - 300 + 2);
    assert_eq!(t.host.balances("bob").unwrap().scrip.posted, 1_000 - 2, "the caller's scrip pays only the price");
    assert_conserved(&t.host);
}

#[test]
fn a_guest_transfer_is_released_when_the_run_traps() {
    let (t, id) = setup(ResourcePolicy::CallerPays);
    let alice0 = t.host.balances("alice").unwrap();
    let r = t.host.invoke(Invocation::new("bob", &id, "transfer-then-trap:carol:300")).unwrap();
    assert_eq!(r.outcome, Outcome::Trap);
    assert_eq!(t.host.balances("carol").unwrap().scrip.posted, 0);
    assert_eq!(t.host.balances("alice").unwrap(), alice0);
    assert_conserved(&t.host);
}

#[test]
fn a_guest_cannot_overspend_or_pay_unknown_agents() {
    let (t, id) = setup(ResourcePolicy::CallerPays);
    let r = t.host.invoke(Invocation::new("bob", &id, "transfer:carol:5000")).unwrap();
    assert!(r.error.unwrap().contains("InsufficientScrip(1000)"));
    let r = t.host.invoke(Invocation::new("bob", &id, "transfer:nobody:1")).unwrap();
    assert!(r.error.unwrap().contains("UnknownAgent"));
    let r = t.host.invoke(Invocation::new("bob", &id, "transfer:alice:1")).unwrap();
    assert!(r.error.unwrap().contains("InvalidRequest"), "to itself");
    let r = t.host.invoke(Invocation::new("bob", &id, "transfer:carol:0")).unwrap();
    assert!(r.error.unwrap().contains("InvalidRequest"), "zero");
    assert_eq!(t.host.balances("carol").unwrap().scrip.posted, 0);
    assert_conserved(&t.host);
}
