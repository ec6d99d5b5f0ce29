//! `fuelhost serve`: the server's settings (a TOML file, then environment
//! variables, then flags; the later wins) and running the API until SIGINT
//! or SIGTERM, letting requests in flight finish.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use fuelhost::telemetry::{LogFormat, TelemetryConfig};
use fuelhost::{Durability, Host};
use fuelhost_server::{ApiConfig, RateLimit};
use serde::Deserialize;

/// The flags (each also read from its environment variable).
#[derive(Args)]
pub struct ServeArgs {
    /// A TOML file with the settings below (see docs/api.md for the keys).
    #[arg(long, env = "FUELHOST_SERVE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the ledger, artifacts and agents' files live.
    #[arg(long, env = "FUELHOST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep the ledger and every store in this PostgreSQL database
    /// (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`), shared by any
    /// number of hosts, instead of the data directory's SQLite file.
    #[arg(long, env = "FUELHOST_DATABASE_URL")]
    pub database: Option<String>,
    /// This host's name on a shared database: the same across restarts,
    /// no other host's (default: the machine's name and the data
    /// directory's path).
    #[arg(long, env = "FUELHOST_HOST_NAME")]
    pub host_name: Option<String>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "FUELHOST_LISTEN")]
    pub listen: Option<String>,
    /// Largest request body (a component upload), bytes (default 32 MiB).
    #[arg(long, env = "FUELHOST_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Requests per second each API key may make (default: no limit; 0
    /// turns a configured limit off).
    #[arg(long, env = "FUELHOST_RATE_LIMIT")]
    pub rate_limit: Option<u32>,
    /// How many requests a key may make at once above its rate (default:
    /// twice the rate).
    #[arg(long, env = "FUELHOST_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,
    /// `full` (fsync every commit, the default) or `process` (survives a
    /// crash of the host, not a power loss; faster).
    #[arg(long, env = "FUELHOST_DURABILITY")]
    pub durability: Option<String>,
    /// Log lines as `text` or `json` (default text; `FUELHOST_LOG` sets
    /// the filter, default `info`).
    #[arg(long, env = "FUELHOST_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Export a span per invocation stage over OTLP/HTTP to this collector
    /// (e.g. `http://127.0.0.1:4318`).
    #[arg(long, env = "FUELHOST_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// On the first start of a data directory, also write the bootstrap
    /// admin key to this file (readable by its owner only), once the
    /// server listens: a script waits for the file, then logs in.
    #[arg(long)]
    pub admin_key_file: Option<PathBuf>,
    /// Check the settings and print what they resolve to, then exit
    /// without opening the data directory or listening.
    #[arg(long)]
    pub check: bool,
}

/// The settings file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    data_dir: Option<PathBuf>,
    /// A PostgreSQL URL: the ledger and stores live there, shared by
    /// every host given it (default: the data directory's SQLite file).
    database: Option<String>,
    /// This host's name on a shared database.
    host_name: Option<String>,
    /// The agents' directories (default `DATA/agents`): hosts sharing a
    /// database give it one shared filesystem.
    agents_dir: Option<PathBuf>,
    listen: Option<String>,
    durability: Option<String>,
    /// Guest instances alive at once.
    max_instances: Option<u32>,
    /// Linear memory cap per guest, bytes.
    max_memory_bytes: Option<u64>,
    /// Largest component accepted, bytes.
    max_component_bytes: Option<usize>,
    /// The most artifacts whose code is held loaded (default 4096; the
    /// least recently called are unloaded past it).
    max_loaded_artifacts: Option<usize>,
    /// Where precompiled code is cached across restarts.
    compile_cache_dir: Option<PathBuf>,
    /// Run fuel-metered artifacts on fuel alone (default false): cheaper
    /// and deterministic, the wall clock checked only at host calls.
    deterministic_fuel: Option<bool>,
    /// At shutdown, how long running tasks get to end before they are
    /// interrupted and put back for the next start (default 30).
    task_drain_seconds: Option<u64>,
    /// The API: `max_body_bytes`, and `[api.rate_limit]` with `per_second`
    /// and `burst`.
    #[serde(default)]
    api: ApiConfig,
    /// `[limits]`: the most a manifest may ask for and a request carry,
    /// the entries of an agent's directory, the calls per agent at once
    /// (see `fuelhost::HostLimits`; `docs/security.md`).
    #[serde(default)]
    limits: fuelhost::HostLimits,
    /// `[retention]`: `usage_days`, `audit_days`, `archive_dir`,
    /// `every_minutes` (see `fuelhost::Retention`; default: keep forever).
    #[serde(default)]
    retention: fuelhost::Retention,
    /// Logs and traces: `log_format`, `log_filter`, `otlp_endpoint`,
    /// `service_name`.
    #[serde(default = "server_telemetry")]
    telemetry: TelemetryConfig,
    /// `[[llm.providers]]`: the language-model providers artifacts'
    /// `llm` imports reach (see `fuelhost::LlmProvider`).
    #[serde(default)]
    llm: LlmConfig,
}

/// The `[llm]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Each provider: `name`, `base_url`, `api_key_env`, `models`,
    /// `input_price_per_1k`, `output_price_per_1k`, `context_tokens`,
    /// `latency_hint_ms`, `quality`, `timeout_ms`.
    #[serde(default)]
    pub providers: Vec<fuelhost::LlmProvider>,
}

/// A server logs at `info` (one line per request) unless told otherwise.
fn server_telemetry() -> TelemetryConfig {
    TelemetryConfig { log_filter: "info".into(), ..TelemetryConfig::default() }
}

/// The settings in force.
#[derive(Debug)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub database: Option<String>,
    pub host_name: Option<String>,
    pub agents_dir: Option<PathBuf>,
    pub listen: String,
    pub api: ApiConfig,
    pub durability: Durability,
    pub max_instances: Option<u32>,
    pub max_memory_bytes: Option<u64>,
    pub max_component_bytes: Option<usize>,
    pub max_loaded_artifacts: Option<usize>,
    pub compile_cache_dir: Option<PathBuf>,
    pub deterministic_fuel: bool,
    pub telemetry: TelemetryConfig,
    pub task_drain: std::time::Duration,
    pub limits: fuelhost::HostLimits,
    pub retention: fuelhost::Retention,
    pub llm: LlmConfig,
    pub admin_key_file: Option<PathBuf>,
    /// Only check the settings (`--check`).
    pub check_only: bool,
}

fn durability(name: &str) -> Result<Durability> {
    match name {
        "full" => Ok(Durability::Full),
        "process" => Ok(Durability::Process),
        other => bail!("unknown durability `{other}`: use `full` (fsync every commit) or `process`"),
    }
}

impl ServeConfig {
    /// Merge the file (if any) under the flags and environment.
    pub fn resolve(args: ServeArgs, default_cache: Option<PathBuf>) -> Result<ServeConfig> {
        let file = match &args.config {
            Some(path) => load(path)?,
            None => ServeFile { telemetry: server_telemetry(), ..ServeFile::default() },
        };
        let mut api = file.api;
        if let Some(n) = args.max_body_bytes {
            api.max_body_bytes = n;
        }
        if api.max_body_bytes == 0 {
            bail!("max_body_bytes must be at least 1: with 0 every request with a body would be refused");
        }
        match (args.rate_limit, args.rate_limit_burst) {
            (Some(0), _) => api.rate_limit = None,
            (None, None) => {}
            (None, Some(_)) if api.rate_limit.is_none() => {
                bail!("--rate-limit-burst needs a rate: set --rate-limit (requests per second) too")
            }
            (per_second, burst) => {
                let current = api.rate_limit.unwrap_or_default();
                let per_second = per_second.unwrap_or(current.per_second);
                let burst = burst.unwrap_or(if args.rate_limit.is_some() {
                    per_second.saturating_mul(2)
                } else {
                    current.burst
                });
                if burst == 0 {
                    bail!("--rate-limit-burst must be at least 1");
                }
                api.rate_limit = Some(RateLimit { per_second, burst });
            }
        }
        let mut telemetry = file.telemetry;
        if let Some(format) = args.log_format {
            telemetry.log_format = match format.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => bail!("unknown log format `{other}`: use `text` or `json`"),
            };
        }
        if let Some(endpoint) = args.otlp_endpoint {
            telemetry.otlp_endpoint = Some(endpoint);
        }
        Ok(ServeConfig {
            data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("fuelhost-data")),
            database: args.database.or(file.database),
            host_name: args.host_name.or(file.host_name),
            agents_dir: file.agents_dir,
            listen: args.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".to_string()),
            api,
            durability: durability(args.durability.or(file.durability).as_deref().unwrap_or("full"))?,
            max_instances: file.max_instances,
            max_memory_bytes: file.max_memory_bytes,
            max_component_bytes: file.max_component_bytes,
            max_loaded_artifacts: file.max_loaded_artifacts,
            compile_cache_dir: file.compile_cache_dir.or(default_cache),
            deterministic_fuel: file.deterministic_fuel.unwrap_or(false),
            telemetry,
            task_drain: std::time::Duration::from_secs(file.task_drain_seconds.unwrap_or(30)),
            limits: file.limits,
            retention: file.retention,
            llm: file.llm,
            admin_key_file: args.admin_key_file,
            check_only: args.check,
        })
    }

    /// The host these settings describe.
    pub fn open_host(&self) -> Result<Host> {
        let mut b = Host::builder()
            .data_dir(&self.data_dir)
            .durability(self.durability)
            .deterministic_fuel(self.deterministic_fuel)
            .limits(self.limits)
            .retention(self.retention.clone());
        if let Some(dir) = &self.compile_cache_dir {
            b = b.compile_cache_dir(dir);
        }
        if let Some(url) = &self.database {
            b = b.database(url);
        }
        if let Some(name) = &self.host_name {
            b = b.host_name(name);
        }
        if let Some(dir) = &self.agents_dir {
            b = b.agents_dir(dir);
        }
        if let Some(n) = self.max_instances {
            b = b.max_instances(n);
        }
        if let Some(n) = self.max_memory_bytes {
            b = b.max_memory_bytes(n);
        }
        if let Some(n) = self.max_component_bytes {
            b = b.max_component_bytes(n);
        }
        if let Some(n) = self.max_loaded_artifacts {
            b = b.max_loaded_artifacts(n);
        }
        for provider in &self.llm.providers {
            b = b.llm_provider(provider.clone());
        }
        Ok(b.build()?)
    }
}

/// `serve --check`: what a host opened with these settings would check
/// before it touches the data directory, then the settings in effect.
fn check(config: &ServeConfig) -> Result<()> {
    config.retention.check()?;
    for provider in &config.llm.providers {
        if let Some(problem) = provider.problem() {
            bail!(problem);
        }
    }
    let rate = match &config.api.rate_limit {
        Some(r) => format!("{} per second per key, bursts of {}", r.per_second, r.burst),
        None => "none".into(),
    };
    let horizon = |days: Option<u32>| days.map_or("forever".to_string(), |d| format!("{d} days"));
    println!("settings ok");
    println!("data_dir       {}", config.data_dir.display());
    match &config.database {
        Some(url) => println!("database       {}", fuelhost_postgres::redact(url)),
        None => println!("database       {} (SQLite)", config.data_dir.join("fuelhost.db").display()),
    }
    println!("listen         {}", config.listen);
    println!("durability     {:?}", config.durability);
    println!("max_body_bytes {}", config.api.max_body_bytes);
    println!("rate limit     {rate}");
    println!("usage kept     {}", horizon(config.retention.usage_days));
    println!("audit kept     {}", horizon(config.retention.audit_days));
    for p in &config.llm.providers {
        println!("llm provider   {} at {} serving {}", p.name, p.base_url, p.models.join(", "));
    }
    Ok(())
}

fn load(path: &Path) -> Result<ServeFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not a valid fuelhost serve config", path.display()))
}

/// Serve until SIGINT or SIGTERM (with `--check`: check the settings,
/// print them, and return).
pub fn run(config: ServeConfig) -> Result<()> {
    if config.check_only {
        return check(&config);
    }
    let _telemetry = fuelhost::telemetry::init(&config.telemetry)?;
    let host = config.open_host()?;
    let state = fuelhost_server::ApiState::new(host.clone());
    let bootstrap = state.bootstrap_admin_key().map_err(anyhow::Error::msg)?;
    if let Some(key) = &bootstrap {
        println!("bootstrap admin key (shown once, keep it safe): {key}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        println!("fuelhost serving on http://{}", listener.local_addr()?);
        if let (Some(key), Some(path)) = (&bootstrap, &config.admin_key_file) {
            crate::client::write_private(path, format!("{key}\n").as_bytes())?;
        }
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            println!("shutting down: finishing requests in flight");
        };
        fuelhost_server::serve(listener, fuelhost_server::router(state, &config.api), shutdown).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    // Requests are drained; now the tasks, up to the deadline.
    let late = host.drain_tasks(config.task_drain);
    if late > 0 {
        println!(
            "{late} tasks were still running at the drain deadline; those interrupted run again at the next start"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: Option<PathBuf>, listen: Option<&str>) -> ServeArgs {
        ServeArgs {
            config,
            data_dir: None,
            database: None,
            host_name: None,
            listen: listen.map(String::from),
            max_body_bytes: None,
            rate_limit: None,
            rate_limit_burst: None,
            durability: None,
            log_format: None,
            otlp_endpoint: None,
            admin_key_file: None,
            check: false,
        }
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\ndurability = \"process\"\ntask_drain_seconds = 5\ndeterministic_fuel = true\n\
             [api]\nmax_body_bytes = 1024\n\
             [api.rate_limit]\nper_second = 5\nburst = 7\n\
             [limits]\nmax_dir_entries = 500\nmax_calls_per_agent = 3\n\
             [retention]\nusage_days = 30\naudit_days = 90\n",
        )
        .unwrap();
        let c = ServeConfig::resolve(args(Some(path.clone()), None), None).unwrap();
        assert_eq!(
            (c.listen.as_str(), c.api.max_body_bytes, c.durability),
            ("0.0.0.0:9000", 1024, Durability::Process)
        );
        assert_eq!(c.api.rate_limit, Some(RateLimit { per_second: 5, burst: 7 }));
        assert_eq!(c.task_drain, std::time::Duration::from_secs(5));
        assert!(c.deterministic_fuel);
        assert_eq!(c.data_dir, PathBuf::from("fuelhost-data"));
        assert_eq!(c.telemetry.log_filter, "info", "a server logs requests by default");
        assert_eq!((c.limits.max_dir_entries, c.limits.max_calls_per_agent), (500, 3));
        assert_eq!(c.limits.max_log_lines, fuelhost::HostLimits::default().max_log_lines, "the rest: defaults");
        assert_eq!(
            (c.retention.usage_days, c.retention.audit_days, c.retention.every_minutes),
            (Some(30), Some(90), 60)
        );
        let c = ServeConfig::resolve(args(Some(path), Some("127.0.0.1:1")), None).unwrap();
        assert_eq!(c.listen, "127.0.0.1:1");
        assert!(!ServeConfig::resolve(args(None, None), None).unwrap().deterministic_fuel, "off by default");
    }

    /// The README's `serve.toml` is a file `serve` takes as it is.
    #[test]
    fn the_readme_example_is_a_valid_file() {
        let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
        let example = readme
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .find(|b| b.contains("task_drain_seconds"))
            .expect("the README shows a serve.toml");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, example).unwrap();
        let c = ServeConfig::resolve(args(Some(path), None), None).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080", "the example listens on loopback only");
        assert_eq!(c.retention.usage_days, Some(30));
        let provider = &c.llm.providers[0];
        assert_eq!((provider.name.as_str(), provider.api_key_env.as_deref()), ("openai", Some("OPENAI_API_KEY")));
        assert_eq!(provider.problem(), None);
    }

    #[test]
    fn a_bad_file_says_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, "listen_on = \"x\"\n").unwrap();
        let e = format!("{:#}", ServeConfig::resolve(args(Some(path.clone()), None), None).unwrap_err());
        assert!(e.contains("unknown field `listen_on`"), "{e}");
        std::fs::write(&path, "[telemetry]\nlog_format = \"xml\"\n").unwrap();
        let e = format!("{:#}", ServeConfig::resolve(args(Some(path.clone()), None), None).unwrap_err());
        assert!(e.contains("unknown variant `xml`"), "{e}");
        std::fs::write(&path, "durability = \"sometimes\"\n").unwrap();
        let e = format!("{:#}", ServeConfig::resolve(args(Some(path), None), None).unwrap_err());
        assert!(e.contains("unknown durability `sometimes`"), "{e}");
    }
}
