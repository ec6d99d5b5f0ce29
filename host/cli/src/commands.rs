//! The CLI's server commands: the arguments a user types (`Remote` and
//! its subcommands) and where each goes. One module per command group
//! turns the arguments into the API's typed request bodies
//! (`fuelhost_api::requests`), sends them, and reads the reply into its
//! API type to show it as a table; with `--json` the reply is printed as
//! the server sent it.

mod agents;
mod allocations;
mod approvals;
mod artifacts;
mod audit;
mod grants;
pub mod input;
mod ledger;
mod policy;
mod tasks;

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use serde::de::DeserializeOwned;

use crate::client::{Client, Reply};
use crate::exit::Exit;
use crate::output;
use fuelhost_api::replies::ErrorBody;

/// The assets, as typed (a typo is answered with these).
const ASSETS: [&str; 4] = ["scrip", "fuel", "disk_bytes", "llm_tokens"];

/// Commands that talk to a `fuelhost serve`.
#[derive(Subcommand)]
pub enum Remote {
    /// Agents: create (admin; prints the new agent's API key) or show.
    #[command(subcommand)]
    Agent(AgentCmd),
    /// API keys (admin): create for an agent, list, revoke.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Mint scrip or a resource budget for an agent (admin; idempotent by --id).
    Mint {
        agent: String,
        #[arg(value_parser = ASSETS)]
        asset: String,
        amount: u64,
        /// Transfer id; reusing it never mints twice (default: a fresh one).
        #[arg(long)]
        id: Option<String>,
    },
    /// Upload a component with its manifest (TOML or JSON) as your agent;
    /// or a project folder (`fuelhost upload DIR`): built, then uploaded
    /// with its `manifest.toml`.
    Upload {
        /// The manifest, or a project folder.
        manifest: PathBuf,
        /// The component (not with a folder).
        component: Option<PathBuf>,
    },
    /// Artifacts: list, show, delete.
    #[command(subcommand)]
    Artifacts(ArtifactsCmd),
    /// Invoke an artifact as your agent; prints its output and the bill.
    Invoke {
        /// owner/name@version
        artifact: String,
        /// The input, as text (or use --input-file).
        input: Option<String>,
        /// Read the input from this file (`-` for stdin).
        #[arg(long, conflicts_with = "input")]
        input_file: Option<PathBuf>,
        /// Fuel limit for this call.
        #[arg(long)]
        fuel: Option<u64>,
        /// Invocation id: a retry with the same id is not charged twice.
        #[arg(long)]
        id: Option<String>,
        /// Call this function of an artifact called by function (its typed
        /// exports, shown by `fuelhost artifacts show`): `add`, or
        /// `INTERFACE#FUNCTION`.
        #[arg(long, conflicts_with_all = ["input", "input_file"])]
        export: Option<String>,
        /// The function's arguments, as a JSON array (`'[1, 2]'`) or an
        /// object by parameter name.
        #[arg(long, requires = "export")]
        args: Option<String>,
        /// Or the whole call in WAVE, as `wasmtime run --invoke` takes it:
        /// `'add(1, 2)'`.
        #[arg(long, conflicts_with_all = ["input", "input_file", "export"])]
        call: Option<String>,
    },
    /// An agent's balances.
    Balance { agent: String },
    /// Send scrip (or a budget) from your agent to another.
    Transfer {
        to: String,
        amount: u64,
        #[arg(long, default_value = "scrip", value_parser = ASSETS)]
        asset: String,
        #[arg(long, default_value = "")]
        memo: String,
        /// Transfer id; a retry with the same id moves nothing twice (default: a fresh one).
        #[arg(long)]
        id: Option<String>,
    },
    /// Transfers you are party to (admin: all, or --agent's).
    Transfers {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Usage records, newest first: what each invocation consumed and who paid.
    Usage {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        artifact: Option<String>,
        /// Only records settled at or after this time: an age (30m, 2h,
        /// 7d), a UTC date or time (2026-12-07T06:30:00Z), or ms since the epoch.
        #[arg(long, alias = "from-ms", value_parser = input::parse_time)]
        since: Option<i64>,
        /// Only records settled before this time (as --since).
        #[arg(long, alias = "to-ms", value_parser = input::parse_time)]
        until: Option<i64>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// The top consumers (admin).
    Top {
        #[arg(long)]
        limit: Option<usize>,
        /// From the hour holding this time (an age, a UTC time, or ms).
        #[arg(long, alias = "since-ms", value_parser = input::parse_time)]
        since: Option<i64>,
        /// Up to the hour before this time (as --since).
        #[arg(long, alias = "until-ms", value_parser = input::parse_time)]
        until: Option<i64>,
    },
    /// Service statistics and the cost model (admin).
    Stats,
    /// Move the history past the server's `[retention]` horizons to its
    /// archive files now (admin; the server also does it every
    /// `every_minutes`).
    Archive,
    /// Resource allocations: request, list, show, approve, activate, extend, revoke.
    #[command(subcommand)]
    Allocations(AllocationsCmd),
    /// Sponsor grants: pay for another agent's calls.
    #[command(subcommand)]
    Grants(GrantsCmd),
    /// Policies (admin): rules and plugins; check a hypothetical action.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Actions waiting for your approval.
    #[command(subcommand)]
    Approvals(ApprovalsCmd),
    /// Tasks: invocations queued and run by the server's workers.
    #[command(subcommand)]
    Task(TaskCmd),
    /// The policy audit log, newest first (admin).
    Audit {
        #[arg(long)]
        subject: Option<String>,
        #[arg(long, value_parser = ["invoke", "upload", "transfer", "file-open", "http-request", "approve"])]
        kind: Option<String>,
        #[arg(long, value_parser = ["allow", "deny", "require_approval"])]
        decision: Option<String>,
        #[arg(long)]
        invocation: Option<String>,
        /// Only decisions at or after this time: an age (30m, 2h, 7d), a
        /// UTC date or time, or ms since the epoch.
        #[arg(long, value_parser = input::parse_time)]
        since: Option<i64>,
        /// Only decisions before this time (as --since).
        #[arg(long, value_parser = input::parse_time)]
        until: Option<i64>,
        /// The oldest first.
        #[arg(long)]
        oldest_first: bool,
        /// At most this many (default 100).
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Subcommand)]
pub enum AgentCmd {
    /// Create an agent and print its first API key (shown once).
    Create {
        id: String,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        workspace: Option<String>,
        /// Its configuration, a TOML file: `[budget]` (scrip, fuel,
        /// disk_bytes), `[limits]` (resource = quota), `[rules.NAME]` (one table per rule).
        #[arg(long = "agent-config", value_name = "FILE")]
        agent_config: Option<std::path::PathBuf>,
        /// Print the new API key alone, for a shell variable:
        /// `ALICE=$(fuelhost agent create alice --key-only)`.
        #[arg(long, conflicts_with = "json")]
        key_only: bool,
    },
    /// An agent's balances, membership and health.
    Show { id: String },
    /// Report that agent ID is alive (its key or an admin's): healthy
    /// until the TTL passes without another heartbeat.
    Heartbeat {
        id: String,
        /// How long this heartbeat holds, ms (default 30000).
        #[arg(long)]
        ttl_ms: Option<u64>,
        /// What the agent is doing.
        #[arg(long)]
        status: Option<String>,
    },
    /// The health of every agent that sent heartbeats (admin).
    Health,
}

#[derive(Subcommand)]
pub enum KeyCmd {
    /// Make another key for an agent (shown once).
    Create {
        agent: String,
        /// Print the new API key alone, for a shell variable:
        /// `BOB=$(fuelhost key create bob --key-only)`.
        #[arg(long, conflicts_with = "json")]
        key_only: bool,
    },
    /// Make another admin key (shown once): rotate the bootstrap key by
    /// making a new one, then revoking the old.
    CreateAdmin,
    /// Every key: id, agent, created, revoked.
    List,
    /// Revoke a key by its id (`k_…`, from `key list`).
    Revoke { key_id: String },
}

#[derive(Subcommand)]
pub enum ArtifactsCmd {
    /// Every artifact.
    List,
    /// One artifact: manifest, digest, size.
    Show { id: String },
    /// Delete one of your artifacts (admin: any).
    Delete { id: String },
}

#[derive(Subcommand)]
pub enum AllocationsCmd {
    /// Allocations of an agent (default: yours).
    List {
        #[arg(long)]
        agent: Option<String>,
    },
    /// One allocation with its quota usage.
    Show { id: String },
    /// Request an allocation described by a JSON file (`-` for stdin):
    /// `{"id", "agent", "quotas": {"fuel": N, ...}, "priority", ...}`.
    Request { file: PathBuf },
    /// Approve a pending allocation (admin).
    Approve { id: String },
    /// Activate an approved allocation.
    Activate { id: String },
    /// Extend an allocation's duration (admin).
    Extend {
        id: String,
        /// Extra time, milliseconds.
        additional_ms: u64,
    },
    /// Revoke an allocation (admin).
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
pub enum GrantsCmd {
    /// Sponsor another agent's calls, as your agent.
    Create {
        /// Who may spend it.
        beneficiary: String,
        /// Most fuel the grant pays for.
        #[arg(long, default_value_t = 0)]
        fuel_limit: u64,
        /// Most disk bytes the grant pays for.
        #[arg(long, default_value_t = 0)]
        disk_limit: u64,
        /// When it lapses (ms since the epoch).
        #[arg(long)]
        expires_at_ms: Option<i64>,
        /// Only these artifacts (repeat; default: any).
        #[arg(long = "artifact")]
        artifacts: Vec<String>,
        /// Grant id (default: a fresh one).
        #[arg(long)]
        id: Option<String>,
    },
    /// A grant and what it has paid.
    Show { id: String },
    /// Revoke a grant.
    Revoke { id: String },
}

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// The rules and the plugin chain.
    List,
    /// Add (or replace) a policy plugin: a component, or a project folder
    /// (built first).
    Add { name: String, component: PathBuf },
    /// Remove a policy plugin.
    Remove { name: String },
    /// Replace the declarative rules with a TOML file.
    SetRules { file: PathBuf },
    /// Judge a hypothetical action (a JSON file, `-` for stdin) without running it.
    Check { action: PathBuf },
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum TaskCmd {
    /// Queue an invocation of ARTIFACT as your agent (or, with
    /// --capability CAP, of the artifact declaring CAP that --route prefers:
    /// then the one argument is the input).
    Submit {
        /// owner/name@version
        artifact: Option<String>,
        /// The input, as text.
        input: Option<String>,
        /// Hand the task to an artifact declaring this capability.
        #[arg(long)]
        capability: Option<String>,
        /// How to choose among the artifacts declaring the capability.
        #[arg(long, requires = "capability",
              value_parser = ["standard", "cost_optimized", "latency_optimized", "quality_optimized"])]
        route: Option<String>,
        /// The most you will pay per attempt when handed over.
        #[arg(long, requires = "capability")]
        max_price: Option<u64>,
        #[arg(long, default_value = "normal", value_parser = ["critical", "high", "normal", "low"])]
        priority: String,
        /// Fuel limit for its invocation.
        #[arg(long)]
        fuel: Option<u64>,
        /// Task id: submitting the same id again returns the same task.
        #[arg(long)]
        id: Option<String>,
        /// The most attempts: a failed one is retried with backoff.
        #[arg(long, default_value_t = 1)]
        attempts: u32,
        /// The first retry's delay, ms (doubled each time, with jitter).
        #[arg(long, default_value_t = 1_000)]
        backoff_ms: u64,
        /// Stop each attempt after this many ms (it ends timed_out).
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// Run only after your task ID completed (repeatable).
        #[arg(long = "after", value_name = "ID")]
        after: Vec<String>,
    },
    /// A task's state.
    Show { id: String },
    /// Cancel a pending task, or stop a running one.
    Cancel { id: String },
    /// Each artifact's circuit breaker that has seen a failed task.
    Breakers,
}

#[derive(Subcommand)]
pub enum ApprovalsCmd {
    /// Actions waiting for you.
    List,
    /// Approve: the parked action runs (once).
    Approve { id: String },
    /// Reject with a reason.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

/// How a command's answer is printed: the JSON as the server sent it
/// (`--json`), or the reply read into its API type and shown for people.
#[derive(Clone, Copy)]
struct Printer {
    json: bool,
}

impl Printer {
    /// `reply` as received, or read as `T` and shown by `human`.
    fn show<T: DeserializeOwned>(self, reply: Reply, human: impl FnOnce(&T) -> String) -> Result<String> {
        if self.json {
            return output::json(&reply.json);
        }
        Ok(human(&reply.parse()?))
    }

    /// [`Printer::show`], unless a policy parked the action (`202`): then
    /// its message, and [`Exit::Parked`].
    fn done_or_parked<T: DeserializeOwned>(self, reply: Reply, human: impl FnOnce(&T) -> String) -> Result<Shown> {
        if reply.status == 202 {
            let text = self.show(reply, |p: &ErrorBody| format!("{} ({})\n", p.error.message, p.error.code))?;
            return Ok(Shown { text, exit: Exit::Parked });
        }
        self.show(reply, human).map(Shown::from)
    }
}

/// What a command prints, and the exit code it ends with.
pub struct Shown {
    pub text: String,
    pub exit: Exit,
}

impl From<String> for Shown {
    fn from(text: String) -> Shown {
        Shown { text, exit: Exit::Ok }
    }
}

/// Before a project is built for an upload: a version already uploaded is
/// refused now (exit 9), naming the file to change, not after a build of
/// seconds. Anything else (no server, no key, a manifest that does not
/// parse) is left for the upload to report.
fn refuse_an_uploaded_version(client: &Client, manifest: &std::path::Path) -> Result<()> {
    let Some(m) = std::fs::read_to_string(manifest).ok().and_then(|t| fuelhost::Manifest::from_toml(&t).ok()) else {
        return Ok(());
    };
    let id = m.artifact_id();
    if client.get(&format!("/v1/artifacts/{}/{}@{}", m.owner, m.name, m.version), &[]).is_ok() {
        return Err(crate::client::Failure {
            status: Some(409),
            code: "conflict".into(),
            message: format!(
                "`{id}` is already uploaded, and versions are immutable: raise `version` in {}",
                manifest.display()
            ),
            hint: String::new(),
        }
        .into());
    }
    Ok(())
}

/// Run one command; returns what to print and how to exit.
pub fn run(client: &Client, cmd: Remote, json_out: bool) -> Result<Shown> {
    let out = Printer { json: json_out };
    let text = match cmd {
        Remote::Agent(cmd) => agents::agent(client, out, cmd),
        Remote::Key(cmd) => agents::key(client, out, cmd),
        Remote::Balance { agent } => agents::balance(client, out, &agent),
        Remote::Mint { agent, asset, amount, id } => ledger::mint(client, out, agent, &asset, amount, id),
        Remote::Transfer { to, amount, asset, memo, id } => {
            return ledger::transfer(client, out, ledger::Sent { to, amount, asset, memo, id });
        }
        Remote::Transfers { agent, limit } => ledger::transfers(client, out, agent, limit),
        Remote::Usage { agent, artifact, since, until, limit } => {
            ledger::usage(client, out, ledger::UsageFilter { agent, artifact, from_ms: since, to_ms: until, limit })
        }
        Remote::Top { limit, since, until } => ledger::top(client, out, limit, since, until),
        Remote::Stats => ledger::stats(client, out),
        Remote::Archive => ledger::archive(client, out),
        Remote::Upload { manifest, component } => {
            let (manifest, component) = match component {
                Some(component) => (manifest, component),
                None if manifest.is_dir() => {
                    let path = manifest.join("manifest.toml");
                    if !path.is_file() {
                        return Err(crate::exit::Usage(format!(
                            "{} has no manifest.toml: an artifact project has one (a policy plugin is added with \
                             `fuelhost policy add NAME DIR`)",
                            manifest.display()
                        ))
                        .into());
                    }
                    refuse_an_uploaded_version(client, &path)?;
                    (path, crate::project::build(&manifest)?)
                }
                None => {
                    return Err(crate::exit::Usage(format!(
                        "give the component after the manifest, or a project folder instead of {}",
                        manifest.display()
                    ))
                    .into())
                }
            };
            return artifacts::upload(client, out, &manifest, &component);
        }
        Remote::Artifacts(cmd) => artifacts::artifacts(client, out, cmd),
        Remote::Invoke { artifact, input, input_file, fuel, id, export, args, call } => {
            let call = artifacts::Call { artifact, input, input_file, fuel, id, export, args, wave: call };
            return artifacts::invoke(client, out, call);
        }
        Remote::Allocations(cmd) => allocations::run(client, out, cmd),
        Remote::Grants(cmd) => grants::run(client, out, cmd),
        Remote::Policy(cmd) => policy::run(client, out, cmd),
        Remote::Approvals(cmd) => return approvals::run(client, out, cmd),
        Remote::Task(cmd) => tasks::run(client, out, cmd),
        Remote::Audit { subject, kind, decision, invocation, since, until, oldest_first, limit } => {
            let f = audit::Filter { subject, kind, decision, invocation, since, until, oldest_first, limit };
            audit::run(client, out, f)
        }
    };
    text.map(Shown::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fuelhost_api::replies::PluginList;
    use serde_json::json;

    fn reply(json: serde_json::Value) -> Reply {
        Reply { route: "GET /v1/policy/plugins".into(), status: 200, json }
    }

    #[test]
    fn json_output_is_the_reply_as_sent_and_tables_read_the_typed_reply() {
        let chain = |p: &PluginList| p.plugins.join(",");
        let sent = json!({"plugins": ["a", "b"], "added_later": 1});
        let raw = Printer { json: true }.show(reply(sent.clone()), chain).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&raw).unwrap(), sent);
        assert_eq!(Printer { json: false }.show(reply(sent), chain).unwrap(), "a,b");
        // A reply that does not fit its type is an error for the table
        // only; the JSON is still printed as sent.
        let odd = json!({"plugins": "a"});
        assert!(Printer { json: true }.show(reply(odd.clone()), chain).is_ok());
        let e = Printer { json: false }.show(reply(odd), chain).unwrap_err().to_string();
        assert!(e.contains("reply to GET /v1/policy/plugins did not parse"), "{e}");
    }
}
