//! The README's Rust snippets, run: each test holds one snippet exactly as
//! the README shows it (the command tests check every `rust` block of the
//! README is a run of lines of this file, `examples/embed.rs` or a guest),
//! then checks that it did what the README says it does.

use std::collections::BTreeMap;
use std::time::Duration;

use fuelhost::{
    AllocationRequest, Asset, Limits, Period, Priority, Resource, ResourcePolicy, Rollover, SponsorGrant, TaskRequest,
    TaskState,
};
use fuelhost_tests::{guest, manifest, test_host, upload};

/// "An invocation can also be submitted as a task".
#[test]
#[rustfmt::skip]
fn tasks_as_the_readme_submits_them() -> anyhow::Result<()> {
    let t = test_host();
    let host = &t.host;
    let artifact = host.upload(manifest("echo", 5, ResourcePolicy::CallerPays, Limits::default()), &guest("rust-echo"))?;

    let task = host.submit_task(TaskRequest::new("bob", &artifact.id, "hello").priority(Priority::High).id("job-1"))?;
    let task = host.wait_task(&task.id, Duration::from_secs(10))?;   // completed, failed, cancelled, timed_out
    let next = host.submit_task(TaskRequest::new("bob", &artifact.id, "sum").after("job-1").timeout(Duration::from_secs(2)))?;

    assert_eq!(task.state, TaskState::Completed);
    let next = host.wait_task(&next.id, Duration::from_secs(10))?;
    assert_eq!(next.state, TaskState::Completed, "it ran after job-1: {next:?}");
    Ok(())
}

/// The sponsorship of "Budgets and payments": carol pays bob's fuel.
#[test]
#[rustfmt::skip]
fn a_sponsorship_as_the_readme_grants_it() -> anyhow::Result<()> {
    let t = test_host();
    let host = &t.host;
    host.create_agent("carol")?;
    host.mint("carol-fuel", "carol", Asset::Fuel, 100_000_000)?;
    let echo = upload(host, "rust-echo", "echo", 5, ResourcePolicy::CallerPays, Limits::default());
    assert_eq!(echo, "alice/echo@0.1.0", "the artifact the grant names");

    host.grant_sponsorship(&SponsorGrant {
        id: "carol-sponsors-bob".into(),
        sponsor: "carol".try_into()?,
        beneficiary: "bob".try_into()?,
        fuel_limit: 10_000_000,           // carol pays at most this much fuel, ever
        disk_limit: 0,
        expires_at_ms: Some(1_800_000_000_000),
        artifacts: vec!["alice/echo@0.1.0".into()],  // empty: any artifact
    })?;

    let bob_fuel = host.balances("bob")?.fuel.available();
    let report = host.invoke(fuelhost::Invocation::new("bob", &echo, "hello"))?;
    assert_eq!(report.charged_to.as_str(), "carol");
    assert_eq!(host.balances("bob")?.fuel.available(), bob_fuel, "bob's fuel untouched");
    assert_eq!(host.balances("carol")?.fuel.available(), 100_000_000 - report.resources_consumed.fuel);
    Ok(())
}

/// The allocation of "Budgets and payments": quotas per day, usage
/// metered elsewhere recorded against it.
#[test]
#[rustfmt::skip]
fn an_allocation_as_the_readme_requests_it() -> anyhow::Result<()> {
    let t = test_host();
    let host = &t.host;

    let mut req = AllocationRequest::new("bob-daily", "bob".try_into()?, BTreeMap::from([
        (Resource::ApiCalls, 1_000),
        (Resource::Fuel, 5_000_000_000),
        (Resource::LlmTokens, 100_000),
    ]));
    req.period = Some(Period { length_ms: 86_400_000, rollover: Rollover::CarryOver });
    req.auto_approve = true;
    host.request_allocation(&req)?;
    host.activate_allocation("bob-daily")?;
    host.record_usage("gateway-call-17", "bob", Resource::LlmTokens, 1_200)?; // usage metered elsewhere

    let allocation = host.allocation("bob-daily")?.expect("the allocation");
    assert_eq!(allocation.status.to_string(), "active");
    let tokens = allocation.quotas.iter().find(|q| q.resource == Resource::LlmTokens).expect("a token quota");
    assert_eq!((tokens.used, tokens.quota), (1_200, 100_000), "{allocation:?}");
    Ok(())
}
