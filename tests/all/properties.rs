//! Property tests: random sequences of invocations, transfers, mints,
//! burns, pool grants, UBI, sponsor grants, allocations, revocations and
//! the passing of time, each operation replayed right after it. After
//! every step: every asset sums to zero (scrip changes only by mint and
//! burn, which are accounts too), no agent is below zero or holds
//! anything, no allocation holds anything or used more than its period's
//! limit, replaying changed nothing, and every accepted invocation was
//! settled exactly once.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use fuelhost::{
    AllocationRequest, Asset, Balances, Host, Invocation, Limits, ManualClock, Period, Resource, ResourcePolicy,
    Rollover, SponsorGrant, TransferRequest, UbiSource,
};
use fuelhost_tests::{guest, manifest};
use proptest::prelude::*;

const AGENTS: [&str; 3] = ["alice", "bob", "carol"];

#[derive(Debug, Clone)]
enum Op {
    Invoke { caller: usize, owner_pays: bool, command: usize, id: u8 },
    Transfer { from: usize, to: usize, amount: u64, id: u8 },
    Mint { to: usize, amount: u64, id: u8 },
    Burn { from: usize, amount: u64, id: u8 },
    PoolGrant { to: usize, amount: u64, id: u8 },
    Ubi { amount: u64, id: u8 },
    Sponsor { sponsor: usize, beneficiary: usize, fuel_limit: u64, expired: bool, id: u8 },
    Revoke { id: u8 },
    Allocate { agent: usize, calls: u64, fuel: u64, hourly: bool, id: u8 },
    RevokeAllocation { id: u8 },
    Advance { ms: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 0..AGENTS.len();
    prop_oneof![
        4 => (agent.clone(), any::<bool>(), 0..6usize, 0..12u8)
            .prop_map(|(caller, owner_pays, command, id)| Op::Invoke { caller, owner_pays, command, id }),
        2 => (agent.clone(), agent.clone(), 0..400u64, 0..8u8).prop_map(|(from, to, amount, id)| Op::Transfer { from, to, amount, id }),
        1 => (agent.clone(), 0..500u64, 0..4u8).prop_map(|(to, amount, id)| Op::Mint { to, amount, id }),
        1 => (agent.clone(), 0..200u64, 0..4u8).prop_map(|(from, amount, id)| Op::Burn { from, amount, id }),
        1 => (agent.clone(), 0..200u64, 0..4u8).prop_map(|(to, amount, id)| Op::PoolGrant { to, amount, id }),
        1 => (0..100u64, 0..3u8).prop_map(|(amount, id)| Op::Ubi { amount, id }),
        1 => (agent.clone(), agent.clone(), 0..600_000u64, any::<bool>(), 0..3u8)
            .prop_map(|(sponsor, beneficiary, fuel_limit, expired, id)| Op::Sponsor { sponsor, beneficiary, fuel_limit, expired, id }),
        1 => (0..3u8).prop_map(|id| Op::Revoke { id }),
        1 => (agent.clone(), 0..6u64, 0..900_000u64, any::<bool>(), 0..3u8)
            .prop_map(|(agent, calls, fuel, hourly, id)| Op::Allocate { agent, calls, fuel, hourly, id }),
        1 => (0..3u8).prop_map(|id| Op::RevokeAllocation { id }),
        1 => (0..7_200_000i64).prop_map(|ms| Op::Advance { ms }),
    ]
}

const COMMANDS: [&str; 6] = ["echo:hi", "loop", "trap", "transfer:carol:5", "transfer-then-trap:bob:5", "spin:5000"];

fn apply(host: &Host, clock: &ManualClock, op: &Op) {
    let a = |i: usize| AGENTS[i];
    match op {
        Op::Invoke { caller, owner_pays, command, id } => {
            let artifact = if *owner_pays { "alice/owner-pays@0.1.0" } else { "alice/caller-pays@0.1.0" };
            let _ = host.invoke(Invocation::new(a(*caller), artifact, COMMANDS[*command]).id(format!("inv-{id}")));
        }
        Op::Transfer { from, to, amount, id } => {
            let _ = host.transfer(&TransferRequest {
                id: format!("t-{id}"),
                from: a(*from).try_into().unwrap(),
                to: a(*to).try_into().unwrap(),
                asset: Asset::Scrip,
                amount: *amount,
                memo: String::new(),
            });
        }
        Op::Mint { to, amount, id } => {
            let _ = host.mint(&format!("m-{id}"), a(*to), Asset::Scrip, *amount);
        }
        Op::Burn { from, amount, id } => {
            let _ = host.burn(&format!("b-{id}"), a(*from), *amount);
        }
        Op::PoolGrant { to, amount, id } => {
            let _ = host.grant_from_pool(&format!("pg-{id}"), a(*to), *amount);
        }
        Op::Ubi { amount, id } => {
            let _ = host.distribute_ubi(&format!("ubi-{id}"), UbiSource::Pool, *amount);
        }
        Op::Sponsor { sponsor, beneficiary, fuel_limit, expired, id } => {
            let _ = host.grant_sponsorship(&SponsorGrant {
                id: format!("g-{id}"),
                sponsor: a(*sponsor).try_into().unwrap(),
                beneficiary: a(*beneficiary).try_into().unwrap(),
                fuel_limit: *fuel_limit,
                disk_limit: 0,
                expires_at_ms: expired.then_some(1),
                artifacts: vec![],
            });
        }
        Op::Revoke { id } => {
            let _ = host.revoke_sponsorship(&format!("g-{id}"));
        }
        Op::Allocate { agent, calls, fuel, hourly, id } => {
            let quotas = BTreeMap::from([(Resource::ApiCalls, *calls), (Resource::Fuel, *fuel)]);
            let mut req = AllocationRequest::new(format!("a-{id}"), a(*agent).try_into().unwrap(), quotas);
            req.auto_approve = true;
            req.period = hourly.then_some(Period { length_ms: 3_600_000, rollover: Rollover::Reset });
            if host.request_allocation(&req).is_ok() {
                let _ = host.activate_allocation(&req.id);
            }
        }
        Op::RevokeAllocation { id } => {
            let _ = host.revoke_allocation(&format!("a-{id}"), "property test");
        }
        Op::Advance { ms } => clock.advance(*ms),
    }
}

fn snapshot(host: &Host) -> Vec<Balances> {
    AGENTS.iter().map(|a| host.balances(a).unwrap()).collect()
}

fn new_host(dir: &std::path::Path, clock: &ManualClock) -> Host {
    let host = fuelhost_tests::builder(dir).max_instances(4).clock(Arc::new(clock.clone())).build().unwrap();
    for agent in AGENTS {
        host.create_agent(agent).unwrap();
        fuelhost_tests::fund(&host, agent, 500, 3_000_000, 0);
    }
    host.mint_to_pool("pool-seed", 300).unwrap();
    let probe = guest("rust-probe");
    let limits = Limits { fuel: 200_000, ..Limits::default() };
    host.upload(manifest("caller-pays", 3, ResourcePolicy::CallerPays, limits), &probe).unwrap();
    host.upload(manifest("owner-pays", 1, ResourcePolicy::OwnerPays, limits), &probe).unwrap();
    host
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_and_replays_change_nothing(ops in proptest::collection::vec(op(), 1..24)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_700_000_000_000);
        let host = new_host(dir.path(), &clock);
        let mut invoked = HashSet::new();
        for op in &ops {
            apply(&host, &clock, op);
            let after = snapshot(&host);
            if !matches!(op, Op::Advance { .. }) {
                apply(&host, &clock, op);
                prop_assert_eq!(&snapshot(&host), &after, "replaying {:?} changed balances", op);
            }
            for agent in AGENTS {
                for alloc in host.ledger().allocations_of(&agent.try_into().unwrap()).unwrap() {
                    for q in &alloc.quotas {
                        prop_assert_eq!(q.held, 0, "{} holds {} after {:?}", alloc.id, q.resource, op);
                        prop_assert!(q.used <= q.limit(), "{} used {} of {} {} after {:?}", alloc.id, q.used, q.limit(), q.resource, op);
                    }
                }
            }
            if let Op::Invoke { id, .. } = op {
                if host.ledger().usage_record(&format!("inv-{id}")).unwrap().is_some() {
                    invoked.insert(*id);
                }
            }
            for asset in Asset::ALL {
                prop_assert_eq!(host.ledger().asset_total(asset).unwrap(), 0, "{} not conserved after {:?}", asset, op);
            }
            prop_assert_eq!(host.ledger().pending_holds().unwrap(), 0);
            for (agent, b) in AGENTS.iter().zip(&after) {
                for asset in Asset::ALL {
                    prop_assert_eq!(b.get(asset).held, 0, "{} holds {} after {:?}", agent, asset, op);
                }
            }
        }
        // Each accepted invocation id has exactly one usage record.
        let mut tables = fuelhost_tests::tables(dir.path());
        let records = tables.count("SELECT COUNT(*) FROM usage_records");
        prop_assert_eq!(records as usize, invoked.len());
        let price_transfers = tables.count("SELECT COUNT(*) FROM ledger_transfers WHERE kind = 'price'");
        let successes = tables.count("SELECT COUNT(*) FROM usage_records WHERE outcome = 'success' AND price_paid > 0");
        prop_assert_eq!(price_transfers, successes, "one price per successful invocation");
    }
}
