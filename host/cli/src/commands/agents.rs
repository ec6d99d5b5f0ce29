//! Agents and API keys: creating an agent (its first key shown once),
//! reading one with its balances and health, heartbeats and the health of
//! every agent; issuing, listing and revoking keys.

use anyhow::Result;

use super::input::{agent_id, read_toml};
use super::{AgentCmd, KeyCmd, Printer};
use crate::client::Client;
use crate::output::{record, table, Cell};
use fuelhost::registration::AgentConfig;
use fuelhost_api::replies::{AdminKeyReply, AgentReply, AgentsHealth, IssuedKeyReply, KeyList, KeyRevoked};
use fuelhost_api::requests::{Heartbeat, NewAgent};
use fuelhost_api::{AgentHealth, Asset, Balances};

/// `fuelhost agent ...`.
pub(super) fn agent(client: &Client, out: Printer, cmd: AgentCmd) -> Result<String> {
    match cmd {
        AgentCmd::Create { id, tenant, workspace, agent_config, key_only } => {
            let config = match agent_config {
                Some(path) => Some(read_toml::<AgentConfig>(&path, "an agent configuration")?),
                None => None,
            };
            let body = NewAgent { id: agent_id(id)?, tenant, workspace, config };
            let reply = client.send("POST", "/v1/agents", &body)?;
            if key_only {
                return Ok(format!("{}\n", reply.parse::<IssuedKeyReply>()?.api_key));
            }
            out.show(reply, new_key)
        }
        AgentCmd::Show { id } => out.show(client.get(&format!("/v1/agents/{id}"), &[])?, agent_view),
        AgentCmd::Heartbeat { id, ttl_ms, status } => {
            let reply = client.send("POST", &format!("/v1/agents/{id}/heartbeat"), &Heartbeat { ttl_ms, status })?;
            out.show(reply, |h: &AgentHealth| health_table(std::slice::from_ref(h)))
        }
        AgentCmd::Health => out.show(client.get("/v1/health/agents", &[])?, |h: &AgentsHealth| health_table(&h.agents)),
    }
}

/// `fuelhost key ...`.
pub(super) fn key(client: &Client, out: Printer, cmd: KeyCmd) -> Result<String> {
    match cmd {
        KeyCmd::Create { agent, key_only } => {
            let reply = client.call("POST", &format!("/v1/agents/{agent}/keys"))?;
            if key_only {
                return Ok(format!("{}\n", reply.parse::<IssuedKeyReply>()?.api_key));
            }
            out.show(reply, new_key)
        }
        KeyCmd::CreateAdmin => out.show(client.call("POST", "/v1/keys")?, |k: &AdminKeyReply| {
            format!(
                "admin key id  {}\napi key       {}\n(the key is shown only now: keep it safe)\n",
                k.key_id, k.api_key
            )
        }),
        KeyCmd::List => out.show(client.get("/v1/keys", &[])?, |list: &KeyList| {
            let rows = list
                .keys
                .iter()
                .map(|k| {
                    vec![
                        Cell::text(&k.key_id),
                        Cell::opt_text(k.agent.as_ref()),
                        Cell::time(k.created_ms),
                        Cell::opt_time(k.revoked_ms),
                    ]
                })
                .collect();
            table(&["key id", "agent", "created", "revoked"], rows)
        }),
        KeyCmd::Revoke { key_id } => {
            let reply = client.call("DELETE", &format!("/v1/keys/{key_id}"))?;
            out.show(reply, |r: &KeyRevoked| format!("revoked {}\n", r.key_id))
        }
    }
}

/// `fuelhost balance AGENT`.
pub(super) fn balance(client: &Client, out: Printer, agent: &str) -> Result<String> {
    out.show(client.get(&format!("/v1/agents/{agent}"), &[])?, |a: &AgentReply| balances(&a.balances))
}

fn new_key(k: &IssuedKeyReply) -> String {
    format!(
        "agent    {}\nkey id   {}\napi key  {}\n(the key is shown only now: keep it safe)\n",
        k.id, k.key_id, k.api_key
    )
}

fn agent_view(a: &AgentReply) -> String {
    let mut out = record(&[
        ("agent", Cell::text(&a.id)),
        ("tenant", Cell::opt_text(a.tenant.as_ref())),
        ("workspace", Cell::opt_text(a.workspace.as_ref())),
        ("health", Cell::wire(&a.health.health)),
        ("status", Cell::opt_text(a.health.status.as_ref())),
    ]);
    out.push_str(&balances(&a.balances));
    out
}

fn balances(b: &Balances) -> String {
    let rows = Asset::ALL
        .into_iter()
        .map(|asset| {
            let x = b.get(asset);
            vec![Cell::text(asset), Cell::num(x.available()), Cell::num(x.held), Cell::num(x.posted)]
        })
        .collect();
    table(&["asset", "available", "held", "posted"], rows)
}

fn health_table(agents: &[AgentHealth]) -> String {
    let rows = agents
        .iter()
        .map(|h| {
            vec![
                Cell::text(&h.agent),
                Cell::wire(&h.health),
                Cell::opt_time(h.last_heartbeat_ms),
                Cell::opt_num(h.ttl_ms),
                Cell::opt_text(h.status.as_ref()),
            ]
        })
        .collect();
    table(&["agent", "health", "last heartbeat", "ttl ms", "status"], rows)
}
