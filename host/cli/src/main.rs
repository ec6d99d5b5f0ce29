//! The `fuelhost` command. Local commands work on this machine: `demo`,
//! `serve` (the HTTP API), `calibrate`. Every other command is a client of
//! a running server: the URL and API key come from `--url`/`--api-key`,
//! then `FUELHOST_URL`/`FUELHOST_API_KEY`, then the config file that
//! `fuelhost login` writes. Output is a table; `--json` prints the server's
//! JSON for scripts.
//!
//! This crate owns the command line only: arguments, the connection
//! settings, how replies are shown. It serves through `fuelhost-server`
//! and runs local commands through `fuelhost`'s public API; it knows
//! nothing of either's insides. Start at `Command` below, then `commands`
//! (one module per command group) and `serve`.

mod client;
mod commands;
mod exit;
mod mcp;
mod output;
mod project;
mod serve;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::client::{config_path, Client, ClientFile, DEFAULT_URL};

#[derive(Parser)]
#[command(name = "fuelhost", version, about = "A WebAssembly component host for agent economies")]
struct Cli {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: Command,
}

/// Which server, as whom, and how to print.
#[derive(Args)]
struct Connection {
    /// The server (default: the config file's, else http://127.0.0.1:8080).
    #[arg(long, global = true, env = "FUELHOST_URL")]
    url: Option<String>,
    /// The API key to send.
    #[arg(long, global = true, env = "FUELHOST_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The client config file (default: ~/.config/fuelhost/config.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
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
        /// Keep the demo's data directory here (a new or empty one) instead
        /// of a temporary one.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Serve the HTTP API on the embedded default (SQLite). On the first
    /// start of a data directory, prints the bootstrap admin key once.
    Serve(serve::ServeArgs),
    /// Measure this machine's CPU time per fuel unit and store it in the
    /// data directory's cost model.
    Calibrate {
        #[arg(long, default_value = "fuelhost-data", env = "FUELHOST_DATA_DIR")]
        data_dir: PathBuf,
        /// Runs of the reference kernel (the fastest is kept).
        #[arg(long, default_value_t = 10)]
        runs: u32,
    },
    /// Load-test an embedded host: threads invoking one artifact, each call
    /// fully charged, for a fixed time; prints throughput, latency
    /// percentiles and fuel per second.
    Bench {
        /// The artifact component (default: rust-echo from the guest folder).
        #[arg(long)]
        component: Option<PathBuf>,
        /// The input of every call.
        #[arg(long, default_value = "hello")]
        input: String,
        /// Threads invoking at once (default: the number of cores), or
        /// task workers with --tasks-per-second (default: the scheduler's).
        #[arg(long)]
        threads: Option<usize>,
        /// How long to run.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// `full` (fsync every commit) or `process`.
        #[arg(long, default_value = "full")]
        durability: String,
        /// How the artifact is metered: `fuel` or `cpu_time`.
        #[arg(long, default_value = "fuel")]
        metering: String,
        /// Run fuel-metered calls on fuel alone, without wall-clock
        /// deadlines (the host setting `deterministic_fuel`).
        #[arg(long)]
        deterministic_fuel: bool,
        /// Submit tasks at this steady rate instead (run by --threads
        /// workers); prints throughput and the submit -> start delay.
        #[arg(long)]
        tasks_per_second: Option<f64>,
    },
    /// Save the server URL and API key (from --url and --api-key) in the
    /// client config file, after checking that the server accepts the key.
    Login,
    /// Make a project for an artifact or a policy plugin in DIR (a new
    /// folder, whose name becomes the artifact's): the template, the WIT
    /// contract and, for Rust, the guest SDK, ready for `fuelhost build`.
    New {
        /// `artifact` or `policy`.
        #[arg(value_enum)]
        kind: project::Kind,
        /// `rust`, `python`, `js`, `ts` or `c`.
        #[arg(value_enum)]
        lang: project::Lang,
        /// The new folder.
        dir: PathBuf,
        /// The agent that owns the artifact (its manifest's `owner`).
        #[arg(long, default_value = "alice")]
        owner: String,
    },
    /// Build the component of a project folder (default: this one) with
    /// the toolchain scripts/setup.sh installs: Rust, Python, JavaScript,
    /// TypeScript, C or WAT. Writes DIR/<folder name>.wasm.
    Build { dir: Option<PathBuf> },
    /// Print a completion script for SHELL: `fuelhost completions bash >
    /// ~/.local/share/bash-completion/completions/fuelhost` (zsh, fish,
    /// elvish and powershell too).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Speak the Model Context Protocol on stdin and stdout, for an agent
    /// that starts its tools as local processes: each message goes to the
    /// server's `/mcp` with the API key (the tools are the key's agent's,
    /// every call charged there).
    Mcp,
    #[command(flatten)]
    Remote(commands::Remote),
}

/// Write `text` to stdout. A reader that went away (`fuelhost audit | head`)
/// ends the command quietly instead of with a panic.
fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing the output: {e}");
        std::process::exit(1);
    }
}

fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("FUELHOST_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/fuelhost")))
}

fn main() {
    let cli = Cli::parse();
    let json = cli.conn.json;
    let exit = run(cli).unwrap_or_else(|e| {
        exit::print_error(&e, json);
        exit::Exit::of_error(&e)
    });
    std::process::exit(exit.code());
}

/// Run the command; returns the exit code it ends with (see `exit`).
fn run(cli: Cli) -> Result<exit::Exit> {
    let local = match &cli.command {
        Command::Demo { .. } => Some("demo"),
        Command::Serve(_) => Some("serve"),
        Command::Calibrate { .. } => Some("calibrate"),
        Command::Bench { .. } => Some("bench"),
        Command::Completions { .. } => Some("completions"),
        Command::New { .. } => Some("new"),
        Command::Build { .. } => Some("build"),
        Command::Login | Command::Mcp | Command::Remote(_) => None,
    };
    if let Some(name) = local {
        // Set on the command line, not from the environment (which a
        // shell that also runs client commands may well export).
        let typed = |flag: &str| std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        if let Some(flag) = ["--url", "--api-key"].into_iter().find(|f| typed(f)) {
            return Err(exit::Usage(format!(
                "{flag} is for the commands that talk to a server; `fuelhost {name}` runs on this machine{}",
                if name == "serve" { " (it listens on --listen)" } else { "" }
            ))
            .into());
        }
    }
    // `serve` installs its own logging (its config chooses text or JSON,
    // and OTLP); every other command logs warnings as text.
    let _telemetry = match cli.command {
        Command::Serve(_) => None,
        _ => Some(fuelhost::telemetry::init(&fuelhost::telemetry::TelemetryConfig::default())?),
    };
    match cli.command {
        Command::Demo { guests, data_dir } => demo(guests, data_dir),
        Command::Serve(args) => serve::run(serve::ServeConfig::resolve(args, cache_dir().map(|c| c.join("compiled")))?),
        Command::Calibrate { data_dir, runs } => {
            let mut b = fuelhost::Host::builder().data_dir(data_dir);
            if let Some(c) = cache_dir() {
                b = b.compile_cache_dir(c.join("compiled"));
            }
            let c = b.build()?.calibrate(runs)?;
            println!(
                "{:.3} ns per fuel unit ({} fuel per run, best of {} runs: {:.2} ms); stored",
                c.picos_per_fuel as f64 / 1000.0,
                c.fuel_per_run,
                c.runs,
                c.best_run_ns as f64 / 1e6
            );
            Ok(())
        }
        Command::Login => login(cli.conn),
        Command::Mcp => mcp::bridge(&connect(cli.conn)?),
        Command::New { kind, lang, dir, owner } => {
            emit(&project::new(&dir, kind, lang, &owner)?);
            Ok(())
        }
        Command::Build { dir } => {
            let built = project::build(&dir.unwrap_or_else(|| PathBuf::from(".")))?;
            let size = std::fs::metadata(&built).map(|m| m.len()).unwrap_or(0);
            emit(&format!("built {} ({})\n", built.display(), output::Cell::bytes(size).as_str()));
            Ok(())
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "fuelhost", &mut script);
            emit(&String::from_utf8_lossy(&script));
            Ok(())
        }
        Command::Bench {
            component,
            input,
            threads,
            seconds,
            durability,
            metering,
            deterministic_fuel,
            tasks_per_second,
        } => {
            let run = BenchRun { component, input, threads, seconds, deterministic_fuel, tasks_per_second };
            bench(run, &durability, &metering, cli.conn.json)
        }
        Command::Remote(cmd) => {
            let json = cli.conn.json;
            let client = connect(cli.conn)?;
            let shown = commands::run(&client, cmd, json)?;
            emit(&shown.text);
            return Ok(shown.exit);
        }
    }
    .map(|()| exit::Exit::Ok)
}

/// The client for the resolved URL and key.
fn connect(conn: Connection) -> Result<Client> {
    let path = config_path(conn.config.as_deref());
    let file = match &path {
        Some(p) => ClientFile::load(p)?,
        None => ClientFile::default(),
    };
    let url = conn.url.or(file.url).unwrap_or_else(|| DEFAULT_URL.to_string());
    Ok(Client::new(&url, conn.api_key.or(file.api_key)))
}

fn login(conn: Connection) -> Result<()> {
    let path = config_path(conn.config.as_deref()).context("no config path: pass --config FILE or set HOME")?;
    let url = conn.url.clone().context("pass --url (the server) to log in")?;
    let key = conn.api_key.clone().context("pass --api-key (or set FUELHOST_API_KEY) to log in")?;
    let client = Client::new(&url, Some(key.clone()));
    client.get("/v1/artifacts", &[]).context("the server refused the key")?;
    ClientFile { url: Some(url), api_key: Some(key) }.save(&path)?;
    println!("logged in to {}; settings saved in {}", client.url(), path.display());
    Ok(())
}

fn guests_dir() -> Option<PathBuf> {
    std::env::var_os("FUELHOST_GUESTS").map(PathBuf::from).or_else(|| cache_dir().map(|c| c.join("guests")))
}

/// What `fuelhost bench` drives.
struct BenchRun {
    component: Option<PathBuf>,
    input: String,
    threads: Option<usize>,
    seconds: f64,
    deterministic_fuel: bool,
    tasks_per_second: Option<f64>,
}

fn bench(run: BenchRun, durability: &str, metering: &str, json: bool) -> Result<()> {
    let BenchRun { component, input, threads, seconds, deterministic_fuel, tasks_per_second } = run;
    let workers = match tasks_per_second {
        Some(_) => threads.unwrap_or(fuelhost::SchedulerSettings::default().workers),
        None => 0,
    };
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let metering = match metering {
        "fuel" => fuelhost::Metering::Fuel,
        "cpu_time" => fuelhost::Metering::CpuTime,
        other => return Err(exit::Usage(format!("unknown metering `{other}`: use `fuel` or `cpu_time`")).into()),
    };
    use fuelhost::{Durability, Host};
    let durability = match durability {
        "full" => Durability::Full,
        "process" => Durability::Process,
        other => return Err(exit::Usage(format!("unknown durability `{other}`: use `full` or `process`")).into()),
    };
    let component = match component {
        Some(c) => c,
        None => guests_dir().context("no guest folder: pass --component FILE")?.join("rust-echo.wasm"),
    };
    let bytes = std::fs::read(&component)
        .with_context(|| format!("reading {} (build the guests with scripts/setup.sh)", component.display()))?;
    let dir = std::env::temp_dir().join(format!("fuelhost-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let scheduler = fuelhost::SchedulerSettings { workers, ..fuelhost::SchedulerSettings::default() };
    let mut b = Host::builder()
        .data_dir(&dir)
        .durability(durability)
        .scheduler(scheduler)
        .deterministic_fuel(deterministic_fuel);
    if let Some(c) = cache_dir() {
        b = b.compile_cache_dir(c.join("compiled"));
    }
    let host = b.build()?;
    let setup = || fuelhost::loadgen::prepare(&host, "bench", &bytes, metering).map_err(anyhow::Error::msg);
    let result = setup().and_then(|artifact| {
        if let Some(rate) = tasks_per_second {
            let config = fuelhost::loadgen::TaskLoadConfig {
                caller: fuelhost::loadgen::CALLER.into(),
                artifact,
                input: input.into_bytes(),
                rate,
                submitters: 4,
                duration: std::time::Duration::from_secs_f64(seconds),
            };
            let report = fuelhost::loadgen::run_tasks(&host, &config);
            emit(&if json { format!("{}\n", serde_json::to_string_pretty(&report)?) } else { report.to_string() });
            return Ok(());
        }
        let config = fuelhost::loadgen::LoadConfig {
            caller: fuelhost::loadgen::CALLER.into(),
            artifact,
            input: input.into_bytes(),
            threads,
            duration: std::time::Duration::from_secs_f64(seconds),
        };
        let report = fuelhost::loadgen::run(&host, &config);
        if json {
            emit(&format!("{}\n", serde_json::to_string_pretty(&report)?));
        } else {
            emit(&report.to_string());
        }
        Ok(())
    });
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn demo(guests: Option<PathBuf>, data_dir: Option<PathBuf>) -> Result<()> {
    let guests = guests
        .or_else(|| std::env::var_os("FUELHOST_GUESTS").map(PathBuf::from))
        .or_else(|| cache_dir().map(|c| c.join("guests")))
        .context("no guest folder: pass --guests DIR")?;
    // A directory the user names is kept, and must be new or empty: the
    // demo never deletes what it did not make.
    let keep = data_dir.is_some();
    let data_dir = match data_dir {
        Some(d) => {
            if std::fs::read_dir(&d).map(|mut e| e.next().is_some()).unwrap_or(false) {
                let message = format!("{} is not empty: give the demo a new or empty directory", d.display());
                return Err(exit::Usage(message).into());
            }
            d
        }
        None => {
            let temp = std::env::temp_dir().join(format!("fuelhost-demo-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&temp);
            temp
        }
    };
    let config = fuelhost::demo::DemoConfig {
        guests,
        data_dir: data_dir.clone(),
        compile_cache: cache_dir().map(|c| c.join("compiled")),
    };
    let result = fuelhost::demo::run(&config);
    if let Ok(report) = &result {
        emit(report);
    }
    if !keep {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result.map(|_| ())
}
