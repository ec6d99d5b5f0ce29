//! Embed fuelhost in a Rust program: open a host, fund two agents, upload
//! an artifact, invoke it and print the bill.
//!
//! Run: `scripts/setup.sh && cargo run -p fuelhost-examples --example embed`

use fuelhost::{Asset, Host, Invocation, Manifest};

fn main() -> anyhow::Result<()> {
    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    let data = tempfile_dir()?;
    let host = Host::builder().data_dir(&data).build()?;

    host.create_agent("alice")?; // owns the artifact
    host.create_agent("bob")?; // calls it
    host.mint("seed-bob-scrip", "bob", Asset::Scrip, 100)?;
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
    std::fs::remove_dir_all(&data)?;
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("fuelhost-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
