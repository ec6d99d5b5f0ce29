//! `fuelhost demo`: the main job on the embedded default, start to finish.
//! Creates agents with budgets, sets a policy rule and installs a Rust
//! policy plugin, uploads Rust and Python artifacts, makes calls under both
//! payer policies, shows a denied call, an out-of-fuel call, a call parked
//! for approval then approved, and an artifact that asks a language model
//! (the provider a deterministic server on loopback: `llm::loopback`, as no
//! model is reachable from a demo), and prints what each call cost and the
//! balances that result.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{Asset, Host, Invocation, InvokeError, Manifest};

/// Where the demo finds guest components and keeps its state.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Folder with `rust-echo.wasm`, `rust-probe.wasm`,
    /// `rust-spend-limit.wasm`, `python-wordfreq.wasm`, `rust-llm-ask.wasm`.
    pub guests: PathBuf,
    /// Data directory (a fresh one per run).
    pub data_dir: PathBuf,
    /// Shared precompiled-code cache, so a second run does not recompile.
    pub compile_cache: Option<PathBuf>,
}

fn read_guest(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).with_context(|| {
        format!(
            "guest component {} is missing: run scripts/setup.sh (it builds every guest), or pass --guests DIR",
            path.display()
        )
    })
}

fn manifest(name: &str, price: u64, policy: &str, fuel: u64) -> Result<Manifest> {
    Ok(Manifest::from_toml(&format!(
        "owner = \"alice\"\nname = \"{name}\"\nversion = \"0.1.0\"\nprice = {price}\nresource_policy = \"{policy}\"\n[limits]\nfuel = {fuel}\n"
    ))?)
}

/// Run the demo; returns the printed report.
pub fn run(config: &DemoConfig) -> Result<String> {
    let mut out = String::new();
    let model = crate::llm::loopback::Loopback::start().context("starting the loopback model server")?;
    let mut builder = Host::builder()
        .data_dir(&config.data_dir)
        .max_instances(16)
        .llm_provider(crate::LlmProvider::new("local", model.url(), &["small"]));
    if let Some(cache) = &config.compile_cache {
        builder = builder.compile_cache_dir(cache);
    }
    let host = builder.build()?;

    for agent in ["alice", "bob", "carol"] {
        host.create_agent(agent)?;
    }
    host.mint("demo-bob-scrip", "bob", Asset::Scrip, 1_000)?;
    host.mint("demo-bob-fuel", "bob", Asset::Fuel, 50_000_000)?;
    host.mint("demo-bob-disk", "bob", Asset::DiskBytes, 4096)?;
    host.mint("demo-bob-tokens", "bob", Asset::LlmTokens, 1_000)?;
    host.mint("demo-alice-fuel", "alice", Asset::Fuel, 2_000_000_000)?;
    host.mint("demo-alice-disk", "alice", Asset::DiskBytes, 1 << 20)?;
    writeln!(out, "agents: alice (owns the artifacts), bob (calls them), carol (approves reports)")?;

    host.set_policy_rules(
        r#"
[[rule]]
name = "reports-need-carol"
effect = "require_approval"
action = "invoke"
target = "alice/report@*"
approvers = ["carol"]
"#,
    )?;
    host.add_policy_plugin("spend-limit", &read_guest(&config.guests, "rust-spend-limit")?)?;
    writeln!(out, "policy chain: rule reports-need-carol, then plugin {}", host.policy_plugins().join(", "))?;

    let echo =
        host.upload(manifest("echo", 5, "caller_pays", 5_000_000)?, &read_guest(&config.guests, "rust-echo")?)?;
    let premium = host
        .upload(manifest("premium-echo", 500, "caller_pays", 5_000_000)?, &read_guest(&config.guests, "rust-echo")?)?;
    let probe =
        host.upload(manifest("probe", 2, "caller_pays", 2_000_000)?, &read_guest(&config.guests, "rust-probe")?)?;
    writeln!(out, "compiling the Python artifact (cached after the first run)...")?;
    let wordfreq = host.upload(
        manifest("wordfreq", 10, "owner_pays", 1_000_000_000)?,
        &read_guest(&config.guests, "python-wordfreq")?,
    )?;
    let report =
        host.upload(manifest("report", 3, "caller_pays", 5_000_000)?, &read_guest(&config.guests, "rust-echo")?)?;
    let thinker =
        host.upload(manifest("thinker", 4, "caller_pays", 50_000_000)?, &read_guest(&config.guests, "rust-llm-ask")?)?;
    writeln!(
        out,
        "artifacts: {}, {}, {}, {}, {}, {}",
        echo.id, premium.id, probe.id, wordfreq.id, report.id, thinker.id
    )?;
    writeln!(out, "model provider: `local` at {} (a deterministic stand-in on loopback)\n", model.url())?;

    let question = r#"{"prompt": "what does a call cost?", "model": "small", "max_tokens": 32}"#;
    let calls: [(&str, &str, &str); 7] = [
        ("echo, caller pays", &echo.id, "hello, agents"),
        ("wordfreq (Python), owner pays", &wordfreq.id, "the cat and the hat and the bat"),
        ("premium-echo, over the spend limit", &premium.id, "hello"),
        ("probe: endless loop", &probe.id, "loop"),
        ("probe: a file in alice's directory", &probe.id, "write:notes.txt:kept by alice"),
        ("report, needs carol's approval", &report.id, "quarterly numbers"),
        ("thinker: asks a model, caller pays", &thinker.id, question),
    ];
    writeln!(out, "{:<38} {:<13} {:>11} {:<8} {:>6}  output / reason", "call", "outcome", "fuel", "payer", "price")?;
    let mut thought = None;
    for (label, artifact, input) in calls {
        match host.invoke(Invocation::new("bob", artifact, input)) {
            Ok(r) => {
                let mut shown = if r.success { r.output_text() } else { r.error.clone().unwrap_or_default() };
                if artifact == thinker.id {
                    thought = Some(r.resources_consumed.llm_tokens);
                    // The model's answer, of the artifact's JSON.
                    if let Ok(answer) = serde_json::from_slice::<serde_json::Value>(&r.output) {
                        shown = format!(
                            "{} (provider {})",
                            answer["text"].as_str().unwrap_or(""),
                            answer["provider"].as_str().unwrap_or("")
                        );
                    }
                }
                let shown: String = shown.chars().take(60).collect();
                writeln!(
                    out,
                    "{:<38} {:<13} {:>11} {:<8} {:>6}  {}",
                    label,
                    r.outcome.as_str(),
                    r.resources_consumed.fuel,
                    r.charged_to.as_str(),
                    r.price_paid,
                    shown
                )?;
            }
            Err(e @ InvokeError::Denied(_)) => {
                writeln!(out, "{:<38} {:<13} {:>11} {:<8} {:>6}  {}", label, "denied", 0, "-", 0, e)?;
            }
            Err(InvokeError::PendingApproval { id, approvers }) => {
                writeln!(
                    out,
                    "{:<38} {:<13} {:>11} {:<8} {:>6}  parked until {approvers} approves",
                    label, "pending", 0, "-", 0
                )?;
                let r = host.approve(&id, "carol")?.into_report().context("an approved invocation has a report")?;
                writeln!(
                    out,
                    "{:<38} {:<13} {:>11} {:<8} {:>6}  {}",
                    "  ...carol approves: it runs once",
                    r.outcome.as_str(),
                    r.resources_consumed.fuel,
                    r.charged_to.as_str(),
                    r.price_paid,
                    r.output_text()
                )?;
            }
            Err(e) => return Err(e.into()),
        }
    }

    if let Some(tokens) = thought {
        writeln!(
            out,
            "\nthinker's model call: its prompt's estimate plus max-tokens held from bob's llm_tokens before it was \
             sent, {tokens} charged as the model reported, the rest released"
        )?;
    }
    writeln!(out, "\n{:<8} {:>8} {:>14} {:>12} {:>11}", "agent", "scrip", "fuel budget", "disk budget", "llm tokens")?;
    for agent in ["alice", "bob", "carol"] {
        let b = host.balances(agent)?;
        writeln!(
            out,
            "{:<8} {:>8} {:>14} {:>12} {:>11}",
            agent,
            b.scrip.available(),
            b.fuel.available(),
            b.disk_bytes.available(),
            b.llm_tokens.available()
        )?;
    }
    for asset in Asset::ALL {
        let total = host.ledger().asset_total(asset)?;
        anyhow::ensure!(total == 0, "conservation broken: {asset} sums to {total}");
    }
    writeln!(out, "\nledger balanced: every asset sums to zero over all accounts (minted = held + consumed)")?;
    Ok(out)
}
