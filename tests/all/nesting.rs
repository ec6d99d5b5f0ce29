//! Nested invocations: an artifact invokes another as its principal; each
//! level charges its own payer, the nested call's fuel comes out of the
//! calling run's fuel (so the chain never burns more than the outer
//! reservation), a nested trap is a result, not a trap, and depth is
//! bounded. Also the ledger reads of allocation and sponsorship.

use std::collections::BTreeMap;

use fuelhost::{AllocationRequest, Invocation, Limits, Outcome, Resource, ResourcePolicy, SponsorGrant};
use fuelhost_tests::{assert_conserved, fund, guest, test_host};

fn upload_as(
    t: &fuelhost_tests::TestHost,
    owner: &str,
    guest_name: &str,
    name: &str,
    price: u64,
    policy: ResourcePolicy,
    fuel: u64,
) -> String {
    let mut m = fuelhost_tests::manifest(name, price, policy, Limits { fuel, ..Limits::default() });
    m.owner = owner.try_into().unwrap();
    t.host.upload(m, &guest(guest_name)).unwrap().id
}

fn setup() -> fuelhost_tests::TestHost {
    let t = test_host();
    t.host.create_agent("carol").unwrap();
    fund(&t.host, "carol", 1_000, 1_000_000_000, 0);
    t
}

#[test]
fn each_level_charges_its_own_payer_and_price() {
    let t = setup();
    let outer = upload_as(&t, "alice", "rust-probe", "probe", 2, ResourcePolicy::CallerPays, 10_000_000);
    let inner = upload_as(&t, "carol", "rust-echo", "echo", 3, ResourcePolicy::CallerPays, 10_000_000);
    let (a0, b0, c0) =
        (t.host.balances("alice").unwrap(), t.host.balances("bob").unwrap(), t.host.balances("carol").unwrap());
    let r = t.host.invoke(Invocation::new("bob", &outer, format!("nested:{inner}:hello"))).unwrap();
    assert_eq!(r.outcome, Outcome::Success, "{:?}", r.error);
    let text = r.output_text();
    assert!(text.starts_with("outcome=Outcome::Success charged_to=alice"), "{text}");
    assert!(text.ends_with("price=3 output=hello error="), "{text}");
    let inner_fuel: u64 = text.split("fuel=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let (a1, b1, c1) =
        (t.host.balances("alice").unwrap(), t.host.balances("bob").unwrap(), t.host.balances("carol").unwrap());
    // bob paid the outer price and the outer fuel only; alice, the outer
    // artifact's principal, paid the inner price and (caller_pays) its fuel.
    assert_eq!(b0.scrip.posted - b1.scrip.posted, 2);
    assert_eq!(b0.fuel.posted - b1.fuel.posted, r.resources_consumed.fuel);
    assert_eq!(a1.scrip.posted, a0.scrip.posted + 2 - 3);
    assert_eq!(a0.fuel.posted - a1.fuel.posted, inner_fuel);
    assert_eq!(c1.scrip.posted - c0.scrip.posted, 3);
    assert_eq!(
        t.host.ledger().usage_record(&format!("{}/n1", r.invocation_id)).unwrap().unwrap().caller.as_str(),
        "alice"
    );
    assert_conserved(&t.host);
}

#[test]
fn the_chain_never_burns_more_than_the_outer_reservation() {
    let t = setup();
    // The outer run pays the host's work for the nested call
    // (`hostcall::NESTED_INVOKE`) out of its own fuel.
    let outer = upload_as(&t, "alice", "rust-probe", "probe", 0, ResourcePolicy::CallerPays, 2_000_000);
    let inner = upload_as(&t, "carol", "rust-probe", "spinner", 0, ResourcePolicy::OwnerPays, 1 << 40);
    let inner_record = |r: &fuelhost::InvocationReport| {
        t.host.ledger().usage_record(&format!("{}/n1", r.invocation_id)).unwrap().unwrap()
    };

    // Given a limit, the nested loop burns it; the outer run carries on.
    let r = t.host.invoke(Invocation::new("bob", &outer, format!("nested-fuel:600000:{inner}:loop"))).unwrap();
    assert_eq!(r.outcome, Outcome::Success, "a nested trap is a result: {:?}", r.error);
    assert!(
        r.output_text().starts_with("outcome=Outcome::OutOfFuel charged_to=carol fuel=600000"),
        "{}",
        r.output_text()
    );
    let nested = inner_record(&r);
    assert_eq!((nested.outcome, nested.consumed.fuel), (Outcome::OutOfFuel, 600_000));
    assert!(nested.consumed.fuel + r.resources_consumed.fuel <= 2_000_000);

    // Without a limit the nested call may take everything left, and the
    // outer run then runs out itself: still never more than reserved.
    let r = t.host.invoke(Invocation::new("bob", &outer, format!("nested:{inner}:loop"))).unwrap();
    assert_eq!(r.outcome, Outcome::OutOfFuel);
    let nested = inner_record(&r);
    assert_eq!(nested.consumed.fuel + r.resources_consumed.fuel, 2_000_000, "exactly the outer reservation");
    assert_conserved(&t.host);
}

#[test]
fn nesting_is_bounded_in_depth() {
    let t = setup();
    let probe = upload_as(&t, "alice", "rust-probe", "probe", 0, ResourcePolicy::CallerPays, 50_000_000);
    let mut input = "echo:bottom".to_string();
    for _ in 0..6 {
        input = format!("nested:{probe}:{input}");
    }
    let r = t.host.invoke(Invocation::new("bob", &probe, input)).unwrap();
    // Depth 4 refuses the fifth level; the refusal travels back up as
    // run errors, each level reporting what it got.
    assert!(r.output_text().contains("TooDeep(4)") || r.error.as_deref().unwrap_or("").contains("TooDeep(4)"), "{r:?}");
    assert_conserved(&t.host);
}

#[test]
fn a_guest_reads_its_callers_allocation_and_its_sponsorship() {
    let t = setup();
    let probe = upload_as(&t, "alice", "rust-probe", "probe", 0, ResourcePolicy::CallerPays, 10_000_000);
    let run = |input: &str| t.host.invoke(Invocation::new("bob", &probe, input)).unwrap().output_text();
    assert_eq!(run("allocation:bob"), "none");
    assert_eq!(run("sponsorship"), "none");
    let mut req =
        AllocationRequest::new("bob-calls", "bob".try_into().unwrap(), BTreeMap::from([(Resource::ApiCalls, 10)]));
    req.auto_approve = true;
    t.host.request_allocation(&req).unwrap();
    t.host.activate_allocation("bob-calls").unwrap();
    // This call itself holds one API call while it runs.
    assert_eq!(run("allocation:bob"), "bob-calls active api_calls=0/10");
    t.host
        .grant_sponsorship(&SponsorGrant {
            id: "carol-pays".into(),
            sponsor: "carol".try_into().unwrap(),
            beneficiary: "bob".try_into().unwrap(),
            fuel_limit: 50_000_000,
            disk_limit: 0,
            expires_at_ms: None,
            artifacts: vec![],
        })
        .unwrap();
    assert_eq!(run("sponsorship"), "carol-pays by carol (40000000 fuel left)");
    assert!(
        t.host.invoke(Invocation::new("bob", &probe, "allocation:carol")).unwrap().error.is_none(),
        "carol is the payer now"
    );
}
