//! Analytics and the cost model: usage records by agent, artifact and
//! period; top consumers; service stats; fuel turned into CPU time and
//! money; a money budget drawn down by priced calls; calibration stored and
//! reloaded; contract-priced and reputation-scaled allocations.

use std::collections::BTreeMap;
use std::sync::Arc;

use fuelhost::{
    contract_allocation, reputation_scaled, AllocationRequest, AllocationStatus, CostModel, Host, Invocation, Limits,
    ManualClock, Resource, ResourcePolicy, UsageQuery, MONTH_MS,
};
use fuelhost_tests::{fund, guest, manifest, test_host, upload};

#[test]
fn usage_records_filter_by_agent_artifact_and_period() {
    let t = test_host();
    t.host.create_agent("carol").unwrap();
    fund(&t.host, "carol", 100, 100_000_000, 0);
    let echo = upload(&t.host, "rust-echo", "echo", 1, ResourcePolicy::CallerPays, Limits::default());
    let probe = upload(&t.host, "rust-probe", "probe", 1, ResourcePolicy::OwnerPays, Limits::default());
    for _ in 0..3 {
        t.host.invoke(Invocation::new("bob", &echo, "x")).unwrap();
    }
    t.host.invoke(Invocation::new("carol", &probe, "spin:100000")).unwrap();
    let q = |agent: Option<&str>, artifact: Option<&str>| UsageQuery {
        agent: agent.map(|a| a.try_into().unwrap()),
        artifact: artifact.map(String::from),
        ..UsageQuery::default()
    };
    assert_eq!(t.host.usage_records(&q(Some("bob"), None)).unwrap().len(), 3);
    assert_eq!(t.host.usage_records(&q(Some("carol"), None)).unwrap().len(), 1);
    assert_eq!(t.host.usage_records(&q(Some("alice"), None)).unwrap().len(), 4, "alice owns both");
    assert_eq!(t.host.usage_records(&q(None, Some(&probe))).unwrap().len(), 1);
    let future = UsageQuery { from_ms: Some(i64::MAX - 1), ..UsageQuery::default() };
    assert!(t.host.usage_records(&future).unwrap().is_empty());

    let top = t.host.top_consumers(None, None, 10).unwrap();
    assert_eq!(top[0].agent.as_str(), "alice", "the owner paid the spin (owner_pays)");
    assert_eq!(top[1].agent.as_str(), "bob");
    assert_eq!(top[1].invocations, 3);
    let stats = t.host.stats().unwrap();
    assert_eq!((stats.total_usage_records, stats.total_api_calls), (4, 4));
    assert_eq!(stats.invocations_by_outcome.get("success"), Some(&4));
    assert_eq!(stats.total_fuel, top.iter().map(|c| c.fuel).sum::<u64>());
}

#[test]
fn the_cost_model_prices_fuel_and_draws_down_a_money_budget() {
    let dir = tempfile::tempdir().unwrap();
    let model =
        CostModel { picos_per_fuel: 2_000, usd_micros_per_cpu_second: 1_000_000_000, usd_micros_per_disk_mib: 0 };
    let host = fuelhost_tests::builder(dir.path()).max_instances(4).cost_model(model).build().unwrap();
    for a in ["alice", "bob"] {
        host.create_agent(a).unwrap();
        fund(&host, a, 100, 1_000_000_000, 0);
    }
    let probe = host
        .upload(
            manifest("probe", 0, ResourcePolicy::CallerPays, Limits { fuel: 100_000, ..Limits::default() }),
            &guest("rust-probe"),
        )
        .unwrap()
        .id;
    // 100,000 fuel = 200 us of CPU = 200,000 micro-USD at $1000 per CPU second.
    let mut req = AllocationRequest::new(
        "money",
        "bob".try_into().unwrap(),
        BTreeMap::from([(Resource::BudgetUsdMicros, 500_000)]),
    );
    req.auto_approve = true;
    host.request_allocation(&req).unwrap();
    host.activate_allocation("money").unwrap();
    let r = host.invoke(Invocation::new("bob", &probe, "loop")).unwrap();
    assert_eq!((r.resources_consumed.cpu_time_ns, r.cost_usd_micros), (200_000, 200_000));
    host.invoke(Invocation::new("bob", &probe, "loop")).unwrap();
    host.invoke(Invocation::new("bob", &probe, "loop")).unwrap();
    let a = host.allocation("money").unwrap().unwrap();
    assert_eq!((a.status, a.quota(Resource::BudgetUsdMicros).unwrap().used), (AllocationStatus::Exhausted, 600_000));
    assert!(host.invoke(Invocation::new("bob", &probe, "loop")).is_err(), "the money budget is spent");
    assert_eq!(host.stats().unwrap().total_cost_usd_micros, 600_000);
}

#[test]
fn calibration_is_stored_and_used_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let open = || fuelhost_tests::builder(dir.path()).max_instances(2).build().unwrap();
    let measured = {
        let host = open();
        assert_eq!(host.cost_model(), CostModel::default());
        let c = host.calibrate(2).unwrap();
        assert!(c.picos_per_fuel > 0 && c.fuel_per_run > 20_000_000, "{c:?}");
        c.picos_per_fuel
    };
    assert_eq!(open().cost_model().picos_per_fuel, measured);
}

#[test]
fn contract_priced_and_reputation_scaled_allocations() {
    let bob: fuelhost::AgentId = "bob".try_into().unwrap();
    let req = contract_allocation("contract", bob.clone(), 150_000, 50_000_000).unwrap();
    assert_eq!(req.quotas, BTreeMap::from([(Resource::BudgetUsdMicros, 50_000_000), (Resource::ApiCalls, 333)]));
    assert_eq!(req.period.unwrap().length_ms, MONTH_MS);
    assert!(contract_allocation("free", bob.clone(), 0, 1).is_err());

    let base = AllocationRequest::new("base", bob, BTreeMap::from([(Resource::ApiCalls, 1_000)]));
    let excellent = reputation_scaled(&base, 950);
    assert_eq!((excellent.priority, excellent.quotas[&Resource::ApiCalls]), (9, 1_450));
    let poor = reputation_scaled(&base, 400);
    assert_eq!((poor.priority, poor.quotas[&Resource::ApiCalls]), (4, 900));
    let worst = reputation_scaled(&base, 0);
    assert_eq!((worst.priority, worst.quotas[&Resource::ApiCalls]), (1, 500));
    assert_eq!(reputation_scaled(&base, 1_000).quotas[&Resource::ApiCalls], 1_500);

    // A contract allocation in use: its monthly period resets the calls.
    let clock = ManualClock::new(0);
    let dir = tempfile::tempdir().unwrap();
    let host = fuelhost_tests::builder(dir.path()).max_instances(2).clock(Arc::new(clock.clone())).build().unwrap();
    for a in ["alice", "bob"] {
        host.create_agent(a).unwrap();
        fund(&host, a, 100, 100_000_000, 0);
    }
    let echo = host
        .upload(manifest("echo", 0, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo"))
        .unwrap()
        .id;
    let mut req = contract_allocation("c2", "bob".try_into().unwrap(), 25_000_000, 50_000_000).unwrap();
    req.auto_approve = true;
    host.request_allocation(&req).unwrap();
    host.activate_allocation("c2").unwrap();
    host.invoke(Invocation::new("bob", &echo, "1")).unwrap();
    host.invoke(Invocation::new("bob", &echo, "2")).unwrap();
    assert!(host.invoke(Invocation::new("bob", &echo, "3")).is_err(), "two calls a month");
    clock.advance(MONTH_MS as i64);
    assert!(host.invoke(Invocation::new("bob", &echo, "4")).unwrap().success);
}

/// Statistics and top consumers come from counters, folded into their
/// tables about once a second inside a settlement's transaction: counted
/// once each whether a record is in the tables or still in memory, and
/// the same after a restart.
#[test]
fn counters_count_each_call_once_across_flushes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let open = || fuelhost_tests::builder(dir.path()).max_instances(4).build().unwrap();
    let totals = |host: &Host| {
        let stats = host.stats().unwrap();
        let top = host.top_consumers(None, None, 10).unwrap();
        (
            stats.total_usage_records,
            stats.total_fuel,
            top.iter().map(|c| (c.agent.to_string(), c.invocations)).collect::<Vec<_>>(),
        )
    };
    let fuel_of =
        |host: &Host| host.usage_records(&UsageQuery::default()).unwrap().iter().map(|r| r.consumed.fuel).sum::<u64>();
    let (host, echo) = {
        let host = open();
        for a in ["alice", "bob"] {
            host.create_agent(a).unwrap();
            fund(&host, a, 1_000, 1_000_000_000, 0);
        }
        let echo = host
            .upload(manifest("echo", 0, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo"))
            .unwrap()
            .id;
        (host, echo)
    };
    for _ in 0..3 {
        host.invoke(Invocation::new("bob", &echo, "x")).unwrap();
    }
    assert_eq!(totals(&host), (3, fuel_of(&host), vec![("bob".into(), 3)]));
    // A second later the next settlement folds the three into the tables.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    host.invoke(Invocation::new("alice", &echo, "x")).unwrap();
    host.invoke(Invocation::new("bob", &echo, "x")).unwrap();
    assert_eq!(totals(&host), (5, fuel_of(&host), vec![("bob".into(), 4), ("alice".into(), 1)]));
    drop(host);
    let host = open();
    assert_eq!(totals(&host), (5, fuel_of(&host), vec![("bob".into(), 4), ("alice".into(), 1)]), "after a restart");
    host.invoke(Invocation::new("alice", &echo, "x")).unwrap();
    assert_eq!(totals(&host).0, 6);
}
