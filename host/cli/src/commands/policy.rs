//! Policies: the declarative rules and the plugin chain (listing them,
//! adding and removing plugins, replacing the rules) and dry-run checks
//! of a hypothetical action.

use anyhow::{anyhow, Context, Result};
use serde_json::Value;

use super::input::{read_input, read_json};
use super::{PolicyCmd, Printer};
use crate::client::{Client, Reply};
use crate::output::{self, table, Cell};
use fuelhost_api::replies::{PluginList, PolicyDecision, RuleList};
use fuelhost_api::requests::PolicyCheck;

/// `fuelhost policy ...`.
pub(super) fn run(client: &Client, out: Printer, cmd: PolicyCmd) -> Result<String> {
    match cmd {
        PolicyCmd::List => {
            let rules = client.get("/v1/policy/rules", &[])?;
            let plugins = client.get("/v1/policy/plugins", &[])?;
            if out.json {
                return output::json(&merged(rules, plugins)?);
            }
            let mut text = rule_table(&rules.parse()?);
            let plugins: PluginList = plugins.parse()?;
            text.push_str(&format!("plugins: {}\n", plugins.plugins.join(",")));
            Ok(text)
        }
        PolicyCmd::Add { name, component } => {
            let component = if component.is_dir() { crate::project::build(&component)? } else { component };
            let bytes = read_input(&component)?;
            let what = format!("uploading and compiling policy {name}");
            let path = format!("/v1/policy/plugins/{name}");
            out.show(client.send_multipart("PUT", &path, &[("component", Some(&name), &bytes)], &what)?, chain)
        }
        PolicyCmd::Remove { name } => out.show(client.call("DELETE", &format!("/v1/policy/plugins/{name}"))?, chain),
        PolicyCmd::SetRules { file } => {
            let text = String::from_utf8(read_input(&file)?).context("the rules file is not UTF-8")?;
            out.show(client.send_text("PUT", "/v1/policy/rules", &text)?, |r: &RuleList| {
                format!("{} rules in force\n", r.rules.len())
            })
        }
        PolicyCmd::Check { action } => {
            let body: PolicyCheck = read_json(&action, "an action to check")?;
            out.show(client.send("POST", "/v1/policy/check", &body)?, decision)
        }
    }
}

/// The rules' reply and the plugins' as one JSON object (`rules` and
/// `plugins`), each field as the server sent it.
fn merged(rules: Reply, plugins: Reply) -> Result<Value> {
    let mut all = serde_json::Map::new();
    for reply in [rules, plugins] {
        match reply.json {
            Value::Object(fields) => all.extend(fields),
            other => return Err(anyhow!("the server's reply to {} is not a JSON object: {other}", reply.route)),
        }
    }
    Ok(Value::Object(all))
}

fn rule_table(list: &RuleList) -> String {
    let rows = list
        .rules
        .iter()
        .map(|r| {
            vec![
                Cell::text(&r.name),
                Cell::text(&r.scope),
                Cell::wire(&r.effect),
                Cell::num(r.priority),
                Cell::text(&r.action),
                Cell::text(&r.subject),
                Cell::text(&r.target),
                Cell::text(conditions(r)),
            ]
        })
        .collect();
    table(&["rule", "scope", "effect", "priority", "action", "subject", "target", "when / approvers"], rows)
}

/// A rule's conditions and approvers, short: `price>5; approvers carol`.
fn conditions(r: &fuelhost_api::Rule) -> String {
    let mut parts: Vec<String> = r
        .when
        .iter()
        .map(|c| {
            let mut tests = Vec::new();
            if let Some(v) = &c.equals {
                tests.push(format!("{}={v}", c.field));
            }
            if let Some(v) = &c.matches {
                tests.push(format!("{}~{v}", c.field));
            }
            if let Some(v) = c.greater_than {
                tests.push(format!("{}>{v}", c.field));
            }
            if let Some(v) = c.less_than {
                tests.push(format!("{}<{v}", c.field));
            }
            tests.join(" ")
        })
        .collect();
    if !r.approvers.is_empty() {
        parts.push(format!("approvers {}", r.approvers.join(",")));
    }
    parts.join("; ")
}

fn chain(list: &PluginList) -> String {
    format!("policy chain: {}\n", list.plugins.join(","))
}

/// The decision, then whatever explains it.
fn decision(d: &PolicyDecision) -> String {
    let mut out = format!("{}\n", d.decision);
    let approvers = d.approvers.as_ref().map(|a| a.join(","));
    for (label, value) in [
        ("reason", d.reason.as_ref()),
        ("approvers", approvers.as_ref()),
        ("decided by", d.decided_by.as_ref()),
        ("allowed by", d.allowed_by.as_ref()),
    ] {
        if let Some(v) = value {
            out.push_str(&format!("{label}: {v}\n"));
        }
    }
    out
}
