//! The `fuelhost` command: the demo, and local commands on an embedded data
//! directory (agents, minting, upload, invoke, balances, audit).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use fuelhost::{Asset, Host, Invocation, Manifest};

#[derive(Parser)]
#[command(name = "fuelhost", version, about = "A WebAssembly component host for agent economies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo: agents, a policy, Rust and Python artifacts, both payer
    /// policies, a denied and an out-of-fuel call, and the balances.
    Demo {
        /// Folder with the built guests (default: $FUELHOST_GUESTS or
        /// ~/.cache/fuelhost/guests, where scripts/setup.sh puts them).
        #[arg(long)]
        guests: Option<PathBuf>,
        /// Keep the demo's data directory here instead of a temporary one.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Serve the HTTP API on the embedded default (SQLite). On the first
    /// start of a data directory, prints the bootstrap admin key once.
    Serve {
        #[arg(long, default_value = "fuelhost-data", env = "FUELHOST_DATA_DIR")]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", env = "FUELHOST_LISTEN")]
        listen: String,
        /// Largest request body (a component upload), bytes.
        #[arg(long, default_value_t = 33 << 20, env = "FUELHOST_MAX_BODY_BYTES")]
        max_body_bytes: usize,
    },
    /// Create an agent.
    CreateAgent {
        #[arg(long, default_value = "fuelhost-data")]
        data_dir: PathBuf,
        agent: String,
    },
    /// Mint scrip or a resource budget for an agent (idempotent by --id).
    Mint {
        #[arg(long, default_value = "fuelhost-data")]
        data_dir: PathBuf,
        agent: String,
        /// scrip, fuel or disk_bytes
        asset: String,
        amount: u64,
        /// Transfer id; reusing it never mints twice.
        #[arg(long)]
        id: String,
    },
    /// Upload a component with its TOML manifest.
    Upload {
        #[arg(long, default_value = "fuelhost-data")]
        data_dir: PathBuf,
        manifest: PathBuf,
        component: PathBuf,
    },
    /// Add (or replace) a policy plugin.
    AddPolicy {
        #[arg(long, default_value = "fuelhost-data")]
        data_dir: PathBuf,
        name: String,
        component: PathBuf,
    },
    /// Invoke an artifact and print the report as JSON.
    Invoke {
        #[arg(long, default_value = "fuelhost-data")]
        data_dir: PathBuf,
        caller: String,
        /// owner/name@version
        artifact: String,
        input: String,
        #[arg(long)]
        fuel: Option<u64>,
        /// Invocation id: a retry with the same id is not charged twice.
        #[arg(long)]
        id: Option<String>,
    },
    /// Show an agent's balances.
    Balance {
        #[arg(long, default_value = "fuelhost-data")]
        data_dir: PathBuf,
        agent: String,
    },
    /// Measure this machine's CPU time per fuel unit and store it in the
    /// data directory's cost model.
    Calibrate {
        #[arg(long, default_value = "fuelhost-data")]
        data_dir: PathBuf,
        /// Runs of the reference kernel (the fastest is kept).
        #[arg(long, default_value_t = 10)]
        runs: u32,
    },
    /// Service statistics and the top consumers, as JSON.
    Stats {
        #[arg(long, default_value = "fuelhost-data")]
        data_dir: PathBuf,
    },
    /// Print the policy audit log as JSON lines.
    Audit {
        #[arg(long, default_value = "fuelhost-data")]
        data_dir: PathBuf,
    },
}

fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("FUELHOST_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/fuelhost")))
}

fn open(data_dir: PathBuf) -> Result<Host> {
    let mut b = Host::builder().data_dir(data_dir);
    if let Some(c) = cache_dir() {
        b = b.compile_cache_dir(c.join("compiled"));
    }
    Ok(b.build()?)
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FUELHOST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Demo { guests, data_dir } => {
            let guests = guests
                .or_else(|| std::env::var_os("FUELHOST_GUESTS").map(PathBuf::from))
                .or_else(|| cache_dir().map(|c| c.join("guests")))
                .context("no guest folder: pass --guests DIR")?;
            let temp;
            let data_dir = match data_dir {
                Some(d) => d,
                None => {
                    temp = std::env::temp_dir().join(format!("fuelhost-demo-{}", std::process::id()));
                    temp.clone()
                }
            };
            let _ = std::fs::remove_dir_all(&data_dir);
            let config = fuelhost::demo::DemoConfig {
                guests,
                data_dir: data_dir.clone(),
                compile_cache: cache_dir().map(|c| c.join("compiled")),
            };
            let result = fuelhost::demo::run(&config);
            if let Ok(report) = &result {
                print!("{report}");
            }
            let _ = std::fs::remove_dir_all(&data_dir);
            result.map(|_| ())
        }
        Command::Serve { data_dir, listen, max_body_bytes } => {
            let host = open(data_dir)?;
            let state = fuelhost::api::ApiState::new(host);
            if let Some(key) = state.bootstrap_admin_key().map_err(anyhow::Error::msg)? {
                println!("bootstrap admin key (shown once, keep it safe): {key}");
            }
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
                println!("fuelhost serving on http://{}", listener.local_addr()?);
                let shutdown = async {
                    let ctrl_c = tokio::signal::ctrl_c();
                    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("installing the SIGTERM handler");
                    tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
                    println!("shutting down: finishing requests in flight");
                };
                fuelhost::api::serve(
                    listener,
                    fuelhost::api::router(state, &fuelhost::api::ApiConfig { max_body_bytes, ..Default::default() }),
                    shutdown,
                )
                .await?;
                Ok::<_, anyhow::Error>(())
            })
        }
        Command::CreateAgent { data_dir, agent } => {
            open(data_dir)?.create_agent(&agent)?;
            println!("created agent {agent}");
            Ok(())
        }
        Command::Mint { data_dir, agent, asset, amount, id } => {
            let asset = match asset.as_str() {
                "scrip" => Asset::Scrip,
                "fuel" => Asset::Fuel,
                "disk_bytes" | "disk" => Asset::DiskBytes,
                other => anyhow::bail!("unknown asset `{other}`: use scrip, fuel or disk_bytes"),
            };
            let t = open(data_dir)?.mint(&id, &agent, asset, amount)?;
            println!("{}", serde_json::to_string_pretty(&t)?);
            Ok(())
        }
        Command::Upload { data_dir, manifest, component } => {
            let text = std::fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
            let manifest = Manifest::from_toml(&text)?;
            let bytes = std::fs::read(&component).with_context(|| format!("reading {}", component.display()))?;
            let info = open(data_dir)?.upload(manifest, &bytes)?;
            println!("uploaded {} ({} bytes, sha256 {})", info.id, info.size, info.digest);
            Ok(())
        }
        Command::AddPolicy { data_dir, name, component } => {
            let bytes = std::fs::read(&component).with_context(|| format!("reading {}", component.display()))?;
            let host = open(data_dir)?;
            host.add_policy_plugin(&name, &bytes)?;
            println!("policy chain: {}", host.policy_plugins().join(", "));
            Ok(())
        }
        Command::Invoke { data_dir, caller, artifact, input, fuel, id } => {
            let mut inv = Invocation::new(caller, artifact, input);
            if let Some(f) = fuel {
                inv = inv.fuel_limit(f);
            }
            if let Some(id) = id {
                inv = inv.id(id);
            }
            let report = open(data_dir)?.invoke(inv)?;
            let mut json = serde_json::to_value(&report)?;
            json["output"] = serde_json::Value::String(report.output_text());
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(())
        }
        Command::Balance { data_dir, agent } => {
            let b = open(data_dir)?.balances(&agent)?;
            println!("{:<11} {:>20} {:>20}", "asset", "available", "held");
            for asset in Asset::ALL {
                let a = b.get(asset);
                println!("{:<11} {:>20} {:>20}", asset.as_str(), a.available(), a.held);
            }
            Ok(())
        }
        Command::Calibrate { data_dir, runs } => {
            let c = open(data_dir)?.calibrate(runs)?;
            println!(
                "{:.3} ns per fuel unit ({} fuel per run, best of {} runs: {:.2} ms); stored",
                c.picos_per_fuel as f64 / 1000.0,
                c.fuel_per_run,
                c.runs,
                c.best_run_ns as f64 / 1e6
            );
            Ok(())
        }
        Command::Stats { data_dir } => {
            let host = open(data_dir)?;
            let out = serde_json::json!({
                "stats": host.stats()?,
                "top_consumers": host.top_consumers(None, None, 10)?,
                "cost_model": host.cost_model(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Audit { data_dir } => {
            for e in open(data_dir)?.audit_log()? {
                println!("{}", serde_json::to_string(&e)?);
            }
            Ok(())
        }
    }
}
