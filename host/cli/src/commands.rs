//! The CLI's server commands: each turns its arguments into one or two API
//! requests and prints the answer as a table (or the JSON, with `--json`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use crate::client::{random_hex, Client};
use crate::output::{cell, cols, field, record, rows, table};

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
        /// scrip, fuel or disk_bytes
        asset: String,
        amount: u64,
        /// Transfer id; reusing it never mints twice (default: a fresh one).
        #[arg(long)]
        id: Option<String>,
    },
    /// Upload a component with its manifest (TOML or JSON) as your agent.
    Upload { manifest: PathBuf, component: PathBuf },
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
    },
    /// An agent's balances.
    Balance { agent: String },
    /// Send scrip (or a budget) from your agent to another.
    Transfer {
        to: String,
        amount: u64,
        /// scrip, fuel or disk_bytes
        #[arg(long, default_value = "scrip")]
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
    /// Usage records: what each invocation consumed and who paid.
    Usage {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        artifact: Option<String>,
        /// Only records at or after this time (ms since the epoch).
        #[arg(long)]
        from_ms: Option<i64>,
        #[arg(long)]
        to_ms: Option<i64>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// The top consumers (admin).
    Top {
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        since_ms: Option<i64>,
        #[arg(long)]
        until_ms: Option<i64>,
    },
    /// Service statistics and the cost model (admin).
    Stats,
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
    /// The policy audit log (admin).
    Audit {
        #[arg(long)]
        subject: Option<String>,
        /// invoke, upload, transfer, file-open, http-request, approve
        #[arg(long)]
        kind: Option<String>,
        /// allow, deny, require_approval
        #[arg(long)]
        decision: Option<String>,
        #[arg(long)]
        invocation: Option<String>,
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
    Create { agent: String },
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
    /// Add (or replace) a policy plugin component.
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
        /// standard, cost_optimized, latency_optimized or quality_optimized.
        #[arg(long, requires = "capability")]
        route: Option<String>,
        /// The most you will pay per attempt when handed over.
        #[arg(long, requires = "capability")]
        max_price: Option<u64>,
        /// critical, high, normal or low.
        #[arg(long, default_value = "normal")]
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

/// One task, as a table.
fn task(v: &Value) -> String {
    table(
        std::slice::from_ref(v),
        &cols(&[
            ("id", "id"),
            ("submitter", "submitter"),
            ("artifact", "artifact"),
            ("priority", "priority"),
            ("state", "state"),
            ("attempts", "attempts"),
            ("invocation", "invocation_id"),
            ("error", "error"),
        ]),
    )
}

/// Read a file, or stdin for `-`.
fn read_input(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading stdin")?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = read_input(path)?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

/// `owner/name@version` as the artifact route's path.
fn artifact_path(id: &str) -> Result<String> {
    match id.split_once('/') {
        Some((owner, rest)) if !owner.is_empty() && rest.contains('@') && !rest.contains('/') => {
            Ok(format!("/v1/artifacts/{owner}/{rest}"))
        }
        _ => bail!("`{id}` is not an artifact id: write owner/name@version"),
    }
}

fn fresh_id(prefix: &str) -> String {
    format!("{prefix}-{}", random_hex(8))
}

/// Run one command; returns what to print.
pub fn run(client: &Client, cmd: Remote, json_out: bool) -> Result<String> {
    let (value, human): Rendered = match cmd {
        Remote::Agent(AgentCmd::Create { id, tenant, workspace, agent_config }) => {
            let config = match agent_config {
                None => Value::Null,
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                    let parsed: toml::Value =
                        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not TOML: {e}", path.display()))?;
                    serde_json::to_value(parsed)?
                }
            };
            let body = json!({"id": id, "tenant": tenant, "workspace": workspace, "config": config});
            (client.send("POST", "/v1/agents", &body)?, Box::new(new_key))
        }
        Remote::Agent(AgentCmd::Show { id }) => (client.get(&format!("/v1/agents/{id}"), &[])?, Box::new(agent)),
        Remote::Agent(AgentCmd::Heartbeat { id, ttl_ms, status }) => (
            client.send("POST", &format!("/v1/agents/{id}/heartbeat"), &json!({"ttl_ms": ttl_ms, "status": status}))?,
            Box::new(health_table),
        ),
        Remote::Agent(AgentCmd::Health) => {
            (client.get("/v1/health/agents", &[])?, Box::new(|v| health_rows(rows(v, "agents"))))
        }
        Remote::Key(KeyCmd::Create { agent }) => {
            (client.call("POST", &format!("/v1/agents/{agent}/keys"))?, Box::new(new_key))
        }
        Remote::Key(KeyCmd::CreateAdmin) => (
            client.call("POST", "/v1/keys")?,
            Box::new(|v| {
                format!(
                    "admin key id  {}\napi key       {}\n(the key is shown only now: keep it safe)\n",
                    cell(field(v, "key_id")),
                    cell(field(v, "api_key"))
                )
            }),
        ),
        Remote::Key(KeyCmd::List) => (
            client.get("/v1/keys", &[])?,
            Box::new(|v| {
                table(
                    rows(v, "keys"),
                    &cols(&[
                        ("key id", "key_id"),
                        ("agent", "agent"),
                        ("created", "created_ms"),
                        ("revoked", "revoked_ms"),
                    ]),
                )
            }),
        ),
        Remote::Key(KeyCmd::Revoke { key_id }) => (
            client.call("DELETE", &format!("/v1/keys/{key_id}"))?,
            Box::new(|v| format!("revoked {}\n", cell(field(v, "key_id")))),
        ),
        Remote::Mint { agent, asset, amount, id } => {
            let id = id.unwrap_or_else(|| fresh_id("mint"));
            (
                client.send(
                    "POST",
                    "/v1/mint",
                    &json!({"id": id, "agent": agent, "asset": asset, "amount": amount}),
                )?,
                Box::new(transfer_line),
            )
        }
        Remote::Upload { manifest, component } => {
            let manifest_text = read_input(&manifest)?;
            let bytes = read_input(&component)?;
            let name = component.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let what = format!("uploading and compiling {name} ({:.1} MiB)", bytes.len() as f64 / (1 << 20) as f64);
            (
                client.send_multipart(
                    "POST",
                    "/v1/artifacts",
                    &[("manifest", None, &manifest_text), ("component", Some(&name), &bytes)],
                    &what,
                )?,
                Box::new(|v| {
                    format!(
                        "uploaded {} ({} bytes, sha256 {})\n",
                        cell(field(v, "id")),
                        cell(field(v, "size")),
                        cell(field(v, "digest"))
                    )
                }),
            )
        }
        Remote::Artifacts(ArtifactsCmd::List) => (
            client.get("/v1/artifacts", &[])?,
            Box::new(|v| {
                table(
                    rows(v, "artifacts"),
                    &cols(&[
                        ("id", "id"),
                        ("price", "manifest.price"),
                        ("payer", "manifest.resource_policy"),
                        ("size", "size"),
                        ("digest", "digest"),
                    ]),
                )
            }),
        ),
        Remote::Artifacts(ArtifactsCmd::Show { id }) => (
            client.get(&artifact_path(&id)?, &[])?,
            Box::new(|v| {
                let mut out = record(
                    v,
                    &[
                        ("id", "id"),
                        ("price", "manifest.price"),
                        ("payer", "manifest.resource_policy"),
                        ("size", "size"),
                        ("digest", "digest"),
                    ],
                );
                out.push_str(&format!("manifest  {}\n", field(v, "manifest")));
                out
            }),
        ),
        Remote::Artifacts(ArtifactsCmd::Delete { id }) => {
            (client.call("DELETE", &artifact_path(&id)?)?, Box::new(move |_| format!("deleted {id}\n")))
        }
        Remote::Invoke { artifact, input, input_file, fuel, id } => {
            let mut body = json!({"artifact": artifact, "fuel_limit": fuel, "id": id});
            match (input, input_file) {
                (Some(text), _) => body["input"] = json!(text),
                (None, Some(path)) => {
                    let bytes = read_input(&path)?;
                    match String::from_utf8(bytes) {
                        Ok(text) => body["input"] = json!(text),
                        Err(e) => {
                            use base64::Engine as _;
                            body["input_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()))
                        }
                    }
                }
                (None, None) => {}
            }
            (client.send("POST", "/v1/invoke", &body)?, Box::new(invocation))
        }
        Remote::Balance { agent } => (client.get(&format!("/v1/agents/{agent}"), &[])?, Box::new(agent_balances)),
        Remote::Transfer { to, amount, asset, memo, id } => {
            let id = id.unwrap_or_else(|| fresh_id("transfer"));
            (
                client.send(
                    "POST",
                    "/v1/transfers",
                    &json!({"id": id, "to": to, "amount": amount, "asset": asset, "memo": memo}),
                )?,
                Box::new(transfer_line),
            )
        }
        Remote::Transfers { agent, limit } => (
            client.get("/v1/transfers", &[("agent", agent), ("limit", limit.map(|l| l.to_string()))])?,
            Box::new(|v| {
                table(
                    rows(v, "transfers"),
                    &cols(&[
                        ("id", "id"),
                        ("kind", "kind"),
                        ("from", "from"),
                        ("to", "to"),
                        ("asset", "asset"),
                        ("amount", "amount"),
                        ("memo", "memo"),
                    ]),
                )
            }),
        ),
        Remote::Usage { agent, artifact, from_ms, to_ms, limit } => (
            client.get(
                "/v1/usage",
                &[
                    ("agent", agent),
                    ("artifact", artifact),
                    ("from_ms", from_ms.map(|t| t.to_string())),
                    ("to_ms", to_ms.map(|t| t.to_string())),
                    ("limit", limit.map(|l| l.to_string())),
                ],
            )?,
            Box::new(|v| {
                table(
                    rows(v, "records"),
                    &cols(&[
                        ("invocation", "invocation_id"),
                        ("artifact", "artifact"),
                        ("caller", "caller"),
                        ("charged to", "charged_to"),
                        ("outcome", "outcome"),
                        ("fuel", "consumed.fuel"),
                        ("price", "price_paid"),
                        ("µUSD", "cost_usd_micros"),
                    ]),
                )
            }),
        ),
        Remote::Top { limit, since_ms, until_ms } => (
            client.get(
                "/v1/top",
                &[
                    ("limit", limit.map(|l| l.to_string())),
                    ("since_ms", since_ms.map(|t| t.to_string())),
                    ("until_ms", until_ms.map(|t| t.to_string())),
                ],
            )?,
            Box::new(|v| {
                table(
                    rows(v, "top"),
                    &cols(&[
                        ("agent", "agent"),
                        ("invocations", "invocations"),
                        ("fuel", "fuel"),
                        ("µUSD", "cost_usd_micros"),
                    ]),
                )
            }),
        ),
        Remote::Stats => (client.get("/v1/stats", &[])?, Box::new(stats)),
        Remote::Allocations(cmd) => allocations(client, cmd)?,
        Remote::Grants(cmd) => grants(client, cmd)?,
        Remote::Policy(cmd) => policy(client, cmd)?,
        Remote::Approvals(ApprovalsCmd::List) => (
            client.get("/v1/approvals", &[])?,
            Box::new(|v| {
                table(
                    rows(v, "pending"),
                    &cols(&[
                        ("id", "id"),
                        ("kind", "kind"),
                        ("subject", "subject"),
                        ("target", "target"),
                        ("approvers", "approvers"),
                        ("state", "state"),
                        ("expires", "expires_at_ms"),
                    ]),
                )
            }),
        ),
        Remote::Task(TaskCmd::Submit {
            artifact,
            input,
            capability,
            route,
            max_price,
            priority,
            fuel,
            id,
            attempts,
            backoff_ms,
            timeout_ms,
            after,
        }) => {
            let (artifact, input) = match (&capability, artifact, input) {
                (None, Some(artifact), input) => (Some(artifact), input),
                (None, None, _) => bail!("name the ARTIFACT to run, or a --capability"),
                (Some(_), first, None) | (Some(_), None, first) => (None, first),
                (Some(_), Some(_), Some(_)) => bail!("with --capability, give only the input, not an artifact"),
            };
            let body = json!({"artifact": artifact, "capability": capability, "route": route, "max_price": max_price,
                    "input": input, "priority": priority, "fuel_limit": fuel, "id": id, "max_attempts": attempts,
                    "backoff_ms": backoff_ms, "timeout_ms": timeout_ms, "depends_on": after});
            (client.send("POST", "/v1/tasks", &body)?, Box::new(task))
        }
        Remote::Task(TaskCmd::Breakers) => (
            client.get("/v1/breakers", &[])?,
            Box::new(|v| {
                table(
                    rows(v, "breakers"),
                    &cols(&[
                        ("artifact", "artifact"),
                        ("state", "state"),
                        ("failures in a row", "consecutive_failures"),
                        ("open until (ms)", "open_until_ms"),
                        ("times opened", "times_opened"),
                    ]),
                )
            }),
        ),
        Remote::Task(TaskCmd::Show { id }) => (client.get(&format!("/v1/tasks/{id}"), &[])?, Box::new(task)),
        Remote::Task(TaskCmd::Cancel { id }) => {
            (client.call("POST", &format!("/v1/tasks/{id}/cancel"))?, Box::new(task))
        }
        Remote::Approvals(ApprovalsCmd::Approve { id }) => {
            (client.call("POST", &format!("/v1/approvals/{id}/approve"))?, Box::new(invocation))
        }
        Remote::Approvals(ApprovalsCmd::Reject { id, reason }) => (
            client.send("POST", &format!("/v1/approvals/{id}/reject"), &json!({"reason": reason}))?,
            Box::new(|v| format!("rejected {} ({})\n", cell(field(v, "id")), cell(field(v, "reason")))),
        ),
        Remote::Audit { subject, kind, decision, invocation, limit } => (
            client.get(
                "/v1/audit",
                &[
                    ("subject", subject),
                    ("kind", kind),
                    ("decision", decision),
                    ("invocation", invocation),
                    ("limit", limit.map(|l| l.to_string())),
                ],
            )?,
            Box::new(|v| {
                table(
                    rows(v, "entries"),
                    &cols(&[
                        ("at", "at_ms"),
                        ("kind", "kind"),
                        ("subject", "subject"),
                        ("target", "target"),
                        ("decision", "decision"),
                        ("by", "decided_by"),
                        ("reason", "reason"),
                        ("µs", "latency_us"),
                    ]),
                )
            }),
        ),
    };
    if json_out {
        Ok(format!("{}\n", serde_json::to_string_pretty(&value)?))
    } else {
        Ok(human(&value))
    }
}

type Rendered = (Value, Box<dyn Fn(&Value) -> String>);

fn allocations(client: &Client, cmd: AllocationsCmd) -> Result<Rendered> {
    let one: Box<dyn Fn(&Value) -> String> = Box::new(allocation);
    Ok(match cmd {
        AllocationsCmd::List { agent } => (
            client.get("/v1/allocations", &[("agent", agent)])?,
            Box::new(|v| {
                table(
                    rows(v, "allocations"),
                    &cols(&[
                        ("id", "id"),
                        ("agent", "agent"),
                        ("status", "status"),
                        ("priority", "priority"),
                        ("expires", "expires_at_ms"),
                    ]),
                )
            }),
        ),
        AllocationsCmd::Show { id } => (client.get(&format!("/v1/allocations/{id}"), &[])?, one),
        AllocationsCmd::Request { file } => (client.send("POST", "/v1/allocations", &read_json(&file)?)?, one),
        AllocationsCmd::Approve { id } => (client.call("POST", &format!("/v1/allocations/{id}/approve"))?, one),
        AllocationsCmd::Activate { id } => (client.call("POST", &format!("/v1/allocations/{id}/activate"))?, one),
        AllocationsCmd::Extend { id, additional_ms } => (
            client.send("POST", &format!("/v1/allocations/{id}/extend"), &json!({"additional_ms": additional_ms}))?,
            one,
        ),
        AllocationsCmd::Revoke { id, reason } => {
            (client.send("POST", &format!("/v1/allocations/{id}/revoke"), &json!({"reason": reason}))?, one)
        }
    })
}

fn grants(client: &Client, cmd: GrantsCmd) -> Result<Rendered> {
    let one: Box<dyn Fn(&Value) -> String> = Box::new(|v| {
        let g = if v.get("grant").is_some() { field(v, "grant") } else { v };
        let mut out = record(
            g,
            &[
                ("id", "id"),
                ("sponsor", "sponsor"),
                ("beneficiary", "beneficiary"),
                ("fuel limit", "fuel_limit"),
                ("disk limit", "disk_limit"),
                ("expires", "expires_at_ms"),
                ("artifacts", "artifacts"),
            ],
        );
        if v.get("grant").is_some() {
            out.push_str(&record(
                v,
                &[("fuel spent", "fuel_spent"), ("disk spent", "disk_spent"), ("revoked", "revoked")],
            ));
        }
        out
    });
    Ok(match cmd {
        GrantsCmd::Create { beneficiary, fuel_limit, disk_limit, expires_at_ms, artifacts, id } => {
            let id = id.unwrap_or_else(|| fresh_id("grant"));
            let body = json!({
                "id": id, "beneficiary": beneficiary, "fuel_limit": fuel_limit, "disk_limit": disk_limit,
                "expires_at_ms": expires_at_ms, "artifacts": artifacts,
            });
            (client.send("POST", "/v1/grants", &body)?, one)
        }
        GrantsCmd::Show { id } => (client.get(&format!("/v1/grants/{id}"), &[])?, one),
        GrantsCmd::Revoke { id } => {
            (client.call("DELETE", &format!("/v1/grants/{id}"))?, Box::new(move |_| format!("revoked grant {id}\n")))
        }
    })
}

fn policy(client: &Client, cmd: PolicyCmd) -> Result<Rendered> {
    let plugins: Box<dyn Fn(&Value) -> String> = Box::new(|v| format!("policy chain: {}\n", cell(field(v, "plugins"))));
    Ok(match cmd {
        PolicyCmd::List => {
            let rules = client.get("/v1/policy/rules", &[])?;
            let chain = client.get("/v1/policy/plugins", &[])?;
            (
                json!({"rules": rules.get("rules").cloned().unwrap_or(Value::Null), "plugins": chain.get("plugins").cloned().unwrap_or(Value::Null)}),
                Box::new(|v| {
                    let mut out = table(
                        rows(v, "rules"),
                        &cols(&[
                            ("rule", "name"),
                            ("scope", "scope"),
                            ("effect", "effect"),
                            ("priority", "priority"),
                            ("action", "action"),
                            ("subject", "subject"),
                            ("target", "target"),
                        ]),
                    );
                    out.push_str(&format!("plugins: {}\n", cell(field(v, "plugins"))));
                    out
                }),
            )
        }
        PolicyCmd::Add { name, component } => {
            let bytes = read_input(&component)?;
            let what = format!("uploading and compiling policy {name}");
            (
                client.send_multipart(
                    "PUT",
                    &format!("/v1/policy/plugins/{name}"),
                    &[("component", Some(&name), &bytes)],
                    &what,
                )?,
                plugins,
            )
        }
        PolicyCmd::Remove { name } => (client.call("DELETE", &format!("/v1/policy/plugins/{name}"))?, plugins),
        PolicyCmd::SetRules { file } => {
            let text = String::from_utf8(read_input(&file)?).context("the rules file is not UTF-8")?;
            (
                client.send_text("PUT", "/v1/policy/rules", &text)?,
                Box::new(|v| format!("{} rules in force\n", rows(v, "rules").len())),
            )
        }
        PolicyCmd::Check { action } => (
            client.send("POST", "/v1/policy/check", &read_json(&action)?)?,
            Box::new(|v| {
                let mut out = format!("{}\n", cell(field(v, "decision")));
                for (label, path) in
                    [("reason", "reason"), ("rule", "rule"), ("plugin", "plugin"), ("decided by", "decided_by")]
                {
                    if !field(v, path).is_null() {
                        out.push_str(&format!("{label}: {}\n", cell(field(v, path))));
                    }
                }
                out
            }),
        ),
    })
}

fn new_key(v: &Value) -> String {
    format!(
        "agent    {}\nkey id   {}\napi key  {}\n(the key is shown only now: keep it safe)\n",
        cell(field(v, "id")),
        cell(field(v, "key_id")),
        cell(field(v, "api_key"))
    )
}

fn agent_balances(v: &Value) -> String {
    let balances: Vec<Value> = ["scrip", "fuel", "disk_bytes"]
        .iter()
        .map(|asset| {
            let b = field(v, &format!("balances.{asset}"));
            let posted = b.get("posted").and_then(Value::as_u64).unwrap_or(0);
            let held = b.get("held").and_then(Value::as_u64).unwrap_or(0);
            json!({"asset": asset, "available": posted.saturating_sub(held), "held": held, "posted": posted})
        })
        .collect();
    table(&balances, &cols(&[("asset", "asset"), ("available", "available"), ("held", "held"), ("posted", "posted")]))
}

fn agent(v: &Value) -> String {
    let mut out = record(v, &[("agent", "id"), ("tenant", "tenant"), ("workspace", "workspace")]);
    out.push_str(&record(&v["health"], &[("health", "health"), ("status", "status")]));
    out.push_str(&agent_balances(v));
    out
}

fn health_table(v: &Value) -> String {
    health_rows(std::slice::from_ref(v))
}

fn health_rows(list: &[Value]) -> String {
    table(
        list,
        &cols(&[
            ("agent", "agent"),
            ("health", "health"),
            ("last heartbeat", "last_heartbeat_ms"),
            ("ttl ms", "ttl_ms"),
            ("status", "status"),
        ]),
    )
}

fn transfer_line(v: &Value) -> String {
    format!(
        "{} {} {} {} -> {} ({})\n",
        cell(field(v, "kind")),
        cell(field(v, "amount")),
        cell(field(v, "asset")),
        cell(field(v, "from")),
        cell(field(v, "to")),
        cell(field(v, "id"))
    )
}

fn invocation(v: &Value) -> String {
    let mut out = String::new();
    // The output travels once: as text, or as base64 when it is not UTF-8.
    let output = match (v.get("output").and_then(Value::as_str), v.get("output_base64").and_then(Value::as_str)) {
        (Some(text), _) => text.to_string(),
        (None, Some(b64)) => format!("(not UTF-8; base64) {b64}"),
        (None, None) => String::new(),
    };
    if !output.is_empty() {
        out.push_str(&output);
        if !output.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("---\n");
    }
    out.push_str(&record(
        v,
        &[
            ("invocation", "invocation_id"),
            ("artifact", "artifact"),
            ("outcome", "outcome"),
            ("error", "error"),
            ("fuel", "resources_consumed.fuel"),
            ("memory peak", "resources_consumed.memory_peak_bytes"),
            ("wall ns", "resources_consumed.wall_time_ns"),
            ("charged to", "charged_to"),
            ("price paid", "price_paid"),
            ("cost µUSD", "cost_usd_micros"),
            ("replayed", "replayed"),
        ],
    ));
    out
}

fn allocation(v: &Value) -> String {
    let mut out = record(
        v,
        &[
            ("id", "id"),
            ("agent", "agent"),
            ("status", "status"),
            ("priority", "priority"),
            ("activated", "activated_at_ms"),
            ("expires", "expires_at_ms"),
        ],
    );
    out.push_str(&table(
        rows(v, "quotas"),
        &cols(&[
            ("resource", "resource"),
            ("quota", "quota"),
            ("carried", "carried"),
            ("used", "used"),
            ("held", "held"),
        ]),
    ));
    out
}

fn stats(v: &Value) -> String {
    let mut out = record(
        v,
        &[
            ("allocations", "stats.total_allocations"),
            ("active allocations", "stats.active_allocations"),
            ("usage records", "stats.total_usage_records"),
            ("total fuel", "stats.total_fuel"),
            ("total cost µUSD", "stats.total_cost_usd_micros"),
            ("budget exceeded", "stats.budget_exceeded_count"),
        ],
    );
    if let Some(by) = field(v, "stats.invocations_by_outcome").as_object() {
        let rows: Vec<Value> = by.iter().map(|(k, n)| json!({"outcome": k, "n": n})).collect();
        out.push_str(&table(&rows, &cols(&[("outcome", "outcome"), ("invocations", "n")])));
    }
    out
}
