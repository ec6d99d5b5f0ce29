//! Embed fuelhost in a Rust program: open a host, fund two agents, upload
//! an artifact, invoke it and print the bill; then queue two tasks, the
//! second waiting for the first, and wait for both.
//!
//! Run: `scripts/setup.sh && cargo run -p fuelhost-examples --example embed`

use std::time::Duration;

use fuelhost::{Asset, Host, Invocation, Manifest, TaskRequest};

fn main() -> anyhow::Result<()> {
    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    let data = tempfile_dir()?;
    let host = Host::builder().data_dir(&data).build()?;

    host.create_agent("alice")?; // owns the artifact
    host.create_agent("bob")?; // calls it
    host.mint("seed-bob-scrip", "bob", Asset::Scrip, 100)?; // idempotent by its id
    host.mint("seed-bob-fuel", "bob", Asset::Fuel, 10_000_000)?;

    let manifest = Manifest::from_toml(
        r#"owner = "alice"
           name = "echo"
           version = "0.1.0"
           price = 5
           resource_policy = "caller_pays""#,
    )?;
    let artifact = host.upload(manifest, &std::fs::read(format!("{guests}/rust-echo.wasm"))?)?;

    let report = host.invoke(Invocation::new("bob", &artifact.id, "hello from an embedder"))?;
    println!("output:      {}", report.output_text());
    println!("outcome:     {}", report.outcome);
    println!("fuel burned: {} (charged to {})", report.resources_consumed.fuel, report.charged_to);
    println!("price paid:  {} scrip to alice", report.price_paid);
    println!("bob now has: {} scrip", host.balances("bob")?.scrip.available());

    // Tasks: queued durably, run by the host's workers as bob, charged the same way.
    host.submit_task(TaskRequest::new("bob", &artifact.id, "first").id("job-1"))?;
    host.submit_task(TaskRequest::new("bob", &artifact.id, "second").id("job-2").after("job-1"))?;
    for id in ["job-1", "job-2"] {
        let task = host.wait_task(id, Duration::from_secs(30))?;
        println!("task {id}:   {:?} after {} attempt(s)", task.state, task.attempts);
    }
    println!("bob now has: {} scrip", host.balances("bob")?.scrip.available());
    drop(host);
    std::fs::remove_dir_all(&data)?;
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("fuelhost-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
