//! Agent liveness: heartbeats keep an agent healthy for their TTL; a quiet
//! agent turns unhealthy; health survives a restart; bad heartbeats are
//! refused with what to fix.

use std::sync::Arc;
use std::time::Duration;

use fuelhost::{Health, Host, ManualClock};

fn open(dir: &std::path::Path, clock: &ManualClock) -> Host {
    fuelhost_tests::builder(dir).clock(Arc::new(clock.clone())).build().unwrap()
}

#[test]
fn an_agent_is_healthy_while_it_beats_and_unhealthy_once_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let host = open(dir.path(), &clock);
    for agent in ["worker", "idle"] {
        host.create_agent(agent).unwrap();
    }
    assert_eq!(host.agent_health("worker").health, Health::Unknown, "no heartbeat yet");

    let h = host.heartbeat("worker", Some(Duration::from_secs(10)), Some("crawling".into())).unwrap();
    assert_eq!((h.health, h.ttl_ms, h.status.as_deref()), (Health::Healthy, Some(10_000), Some("crawling")));
    clock.advance(9_000);
    assert_eq!(host.agent_health("worker").health, Health::Healthy, "within its TTL");
    host.heartbeat("worker", Some(Duration::from_secs(10)), None).unwrap();
    clock.advance(9_000);
    assert_eq!(host.agent_health("worker").health, Health::Healthy, "the second beat extended it");
    clock.advance(2_000);
    let quiet = host.agent_health("worker");
    assert_eq!((quiet.health, quiet.last_heartbeat_ms), (Health::Unhealthy, Some(1_700_000_009_000)));
    assert!(host.metrics_text().contains("fuelhost_agent_healthy{agent=\"worker\"} 0"));

    // Remembered across a restart: still unhealthy, and a beat revives it.
    drop(host);
    let host = open(dir.path(), &clock);
    assert_eq!(host.agent_health("worker").health, Health::Unhealthy);
    host.heartbeat("worker", None, None).unwrap();
    let all = host.agents_health();
    assert_eq!(all.len(), 1, "only agents that beat are listed: {all:?}");
    assert_eq!((all[0].health, all[0].ttl_ms), (Health::Healthy, Some(30_000)), "the default TTL");

    // Bad heartbeats change nothing.
    let err = host.heartbeat("worker", Some(Duration::ZERO), None).unwrap_err();
    assert!(err.to_string().contains("ttl must be between"), "{err}");
    let err = host.heartbeat("worker", None, Some("x".repeat(300))).unwrap_err();
    assert!(err.to_string().contains("at most 256 characters"), "{err}");
    assert!(host.heartbeat("nobody", None, None).is_err(), "unknown agents cannot beat");
    assert_eq!(host.agent_health("idle").health, Health::Unknown);
}

/// Registering an agent with its configuration: budget minted, limits in an
/// active allocation, rules scoped to it; registering again changes
/// nothing, and new rules replace its old ones.
#[test]
fn an_agent_is_registered_with_its_budget_limits_and_rules() {
    use fuelhost::registration::{AgentBudget, AgentConfig};
    let t = fuelhost_tests::test_host();
    let echo = fuelhost_tests::upload(
        &t.host,
        "rust-echo",
        "echo",
        1,
        fuelhost::ResourcePolicy::CallerPays,
        Default::default(),
    );
    let rules: fuelhost::RuleSet = fuelhost::RuleSet::from_toml(
        "[[rule]]\nname = \"no-alice\"\neffect = \"deny\"\naction = \"invoke\"\ntarget = \"alice/*\"\nreason = \"not alice's\"\n",
    )
    .unwrap();
    let config = AgentConfig {
        budget: AgentBudget { scrip: 100, fuel: 1_000_000_000, ..AgentBudget::default() },
        limits: [(fuelhost::Resource::ApiCalls, 10), (fuelhost::Resource::ConcurrentTasks, 1)].into_iter().collect(),
        rules: rules.rules().to_vec(),
    };
    let r = t.host.register_agent("worker", &config).unwrap();
    assert!(r.created);
    assert_eq!(r.rules, vec!["worker/no-alice".to_string()]);
    let alloc = r.allocation.unwrap();
    assert_eq!((alloc.status, alloc.quotas.len()), (fuelhost::AllocationStatus::Active, 2));
    let b = t.host.balances("worker").unwrap();
    assert_eq!((b.scrip.posted, b.fuel.posted), (100, 1_000_000_000));

    // Its rule governs it, and only it.
    let denied = t.host.invoke(fuelhost::Invocation::new("worker", &echo, "x")).unwrap_err();
    assert!(denied.to_string().contains("not alice's"), "{denied}");
    assert!(t.host.invoke(fuelhost::Invocation::new("bob", &echo, "x")).unwrap().success);

    // Again: nothing changes.
    let again = t.host.register_agent("worker", &config).unwrap();
    assert!(!again.created);
    assert_eq!(t.host.balances("worker").unwrap().scrip.posted, 100, "the budget is minted once");
    assert_eq!(t.host.policy_rules().len(), 1);

    // New rules replace its old ones.
    let config = AgentConfig { rules: Vec::new(), ..config };
    t.host.register_agent("worker", &config).unwrap();
    assert!(t.host.policy_rules().is_empty());
    assert!(t.host.invoke(fuelhost::Invocation::new("worker", &echo, "x")).unwrap().success);
    fuelhost_tests::assert_conserved(&t.host);
}
