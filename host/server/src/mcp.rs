//! The Model Context Protocol at `/mcp`, streamable HTTP transport (each
//! JSON-RPC message POSTed; a request answered with one JSON response,
//! notifications with `202`). `fuelhost mcp` bridges a local agent's stdio
//! to it.
//!
//! The caller is the key's agent, as on every route. Its tools are the
//! artifacts it may call (the highest version of each, those the policy
//! chain would deny left out): one tool per function of an artifact called
//! by function (its arguments' JSON Schema as the tool's input schema),
//! one tool taking `input` for an artifact of the `artifact` world or a
//! command. `wasi:http/proxy` components are reached at their route, not
//! here. Each description states the price and who pays the resources. A
//! `tools/call` is an ordinary charged invocation; its result carries the
//! output and what the call consumed and who paid.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fuelhost::{AgentId, Decision, Host, Invocation, InvokeError, ResourcePolicy};
use serde_json::{json, Map, Value};

use super::{ApiError, ApiState, Caller};

/// The protocol versions this server speaks, newest first.
const VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// `POST /mcp`: one JSON-RPC message, or a batch of them.
pub(super) async fn post(State(state): State<ApiState>, caller: Caller, body: Bytes) -> Response {
    let agent = match caller.agent() {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let error = failure(Value::Null, PARSE_ERROR, format!("the body is not JSON: {e}"));
            return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
        }
    };
    let host = state.host.clone();
    let answered = tokio::task::spawn_blocking(move || match message {
        Value::Array(batch) => {
            let replies: Vec<Value> = batch.into_iter().filter_map(|m| answer(&host, &agent, m)).collect();
            (!replies.is_empty()).then_some(Value::Array(replies))
        }
        single => answer(&host, &agent, single),
    })
    .await;
    match answered {
        Ok(Some(reply)) => axum::Json(reply).into_response(),
        // Notifications and responses only: accepted, nothing to say.
        Ok(None) => StatusCode::ACCEPTED.into_response(),
        Err(e) => ApiError::internal(format!("the request's task failed: {e}")).into_response(),
    }
}

/// `GET` and `DELETE /mcp`: this server opens no stream of its own and
/// keeps no session.
pub(super) async fn other() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this MCP server answers POSTed JSON-RPC messages only: it sends no messages of its own and keeps no session",
    )
    .into_response()
}

/// The reply to one message: `None` for a notification or a response.
fn answer(host: &Host, agent: &AgentId, message: Value) -> Option<Value> {
    let Some(object) = message.as_object() else {
        return Some(failure(Value::Null, INVALID_REQUEST, "a JSON-RPC message is an object"));
    };
    let id = object.get("id").cloned();
    let Some(method) = object.get("method").and_then(Value::as_str) else {
        // A response to something we never asked, or nonsense with an id.
        return match (id, object.contains_key("result") || object.contains_key("error")) {
            (Some(id), false) => Some(failure(id, INVALID_REQUEST, "a JSON-RPC request names its `method`")),
            _ => None,
        };
    };
    let id = id?; // A notification (`notifications/initialized`, ...): nothing to answer.
    let params = object.get("params").cloned().unwrap_or(Value::Null);
    let result = match method {
        "initialize" => Ok(initialize(&params)),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(tools_page(host, agent, params.get("cursor").and_then(Value::as_str))),
        "tools/call" => call_tool(host, agent, &params),
        other => Err((METHOD_NOT_FOUND, format!("no method `{other}`: this server offers tools only"))),
    };
    Some(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => failure(id, code, message),
    })
}

fn failure(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

fn initialize(params: &Value) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str).unwrap_or_default();
    let version = VERSIONS.iter().find(|v| **v == asked).copied().unwrap_or(VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "fuelhost", "version": env!("CARGO_PKG_VERSION")},
        "instructions": "Each tool is an artifact (or one of its functions) on this fuelhost server. A call is \
                         charged: the price in scrip goes from you to the artifact's owner on success, and the \
                         resources it burns come out of the budget its description names. Each result says what \
                         the call consumed and who paid.",
    })
}

/// A tool, as listed and as called.
struct Tool {
    /// `tools/list`'s entry.
    shown: Value,
    name: String,
    artifact: String,
    /// The function called, for an artifact called by function.
    export: Option<String>,
}

/// Every tool `agent` may call (every page of `tools/list`).
fn tools(host: &Host, agent: &AgentId) -> Vec<Tool> {
    latest_ids(host, None).iter().flat_map(|id| tools_of(host, agent, id)).collect()
}

/// The id of the highest version of each artifact, in order, from the
/// first after `after` (the start when none).
fn latest_ids(host: &Host, after: Option<&str>) -> Vec<String> {
    let mut latest: Vec<String> = host
        .artifacts()
        .into_iter()
        .filter_map(|a| host.latest_artifact(a.manifest.owner.as_str(), &a.manifest.name).filter(|l| *l == a.id))
        .filter(|id| after.is_none_or(|c| id.as_str() > c))
        .collect();
    latest.sort();
    latest.dedup();
    latest
}

/// Artifacts a page of `tools/list` looks at, at most.
const PAGE_ARTIFACTS: usize = 200;

/// A page of the tools `agent` may call: the highest version of each
/// artifact, not denied by the policy chain, in the order of their ids,
/// from the first after `cursor` (an id; the start when none). A page
/// looks at [`PAGE_ARTIFACTS`] artifacts; `nextCursor` says where the next
/// one starts, when there is one.
fn tools_page(host: &Host, agent: &AgentId, cursor: Option<&str>) -> Value {
    let mut latest = latest_ids(host, cursor);
    let more = latest.len() > PAGE_ARTIFACTS;
    latest.truncate(PAGE_ARTIFACTS);
    let tools: Vec<Value> = latest.iter().flat_map(|id| tools_of(host, agent, id)).map(|t| t.shown).collect();
    match latest.last().filter(|_| more) {
        Some(last) => json!({"tools": tools, "nextCursor": last}),
        None => json!({"tools": tools}),
    }
}

/// The tool `name`: owner and artifact name are read from it (both are
/// already of the characters a tool name allows), so only that artifact is
/// looked at.
fn find_tool(host: &Host, agent: &AgentId, name: &str) -> Option<Tool> {
    let mut parts = name.splitn(3, "__");
    let (owner, artifact) = (parts.next()?, parts.next()?);
    let id = host.latest_artifact(owner, artifact)?;
    tools_of(host, agent, &id).into_iter().find(|t| t.name == name)
}

/// The tools of artifact `id` for `agent`: none when the policy chain
/// would deny the call, or it is reached otherwise (an HTTP component).
fn tools_of(host: &Host, agent: &AgentId, id: &str) -> Vec<Tool> {
    let Some(info) = host.artifact(id) else { return Vec::new() };
    if denied(host, agent, &info) {
        return Vec::new();
    }
    let m = &info.manifest;
    let base = tool_name(&[m.owner.as_str(), &m.name]);
    let own = m.owner.as_str() == agent.as_str();
    let payer = match (m.resource_policy, own) {
        (_, true) | (ResourcePolicy::OwnerPays, _) => format!("its owner, {}", m.owner),
        (ResourcePolicy::CallerPays, false) => "you".to_string(),
    };
    let price = if own { 0 } else { m.price };
    let cost = format!(
        "Price: {price} scrip per successful call, paid by you to {}. Resources (fuel, up to {} per call) are \
         charged to {payer}. Artifact {id}.",
        m.owner, m.limits.fuel
    );
    let describe = |what: &str| {
        let lead = if m.description.is_empty() { what.to_string() } else { format!("{} ({what})", m.description) };
        format!("{lead}. {cost}")
    };
    let mut out = Vec::new();
    match host.artifact_kind(id) {
        Ok(Some("run")) | Ok(Some("command")) => out.push(Tool {
            shown: json!({
                "name": base,
                "description": describe("takes its input as text"),
                "inputSchema": {
                    "type": "object",
                    "properties": {"input": {"type": "string", "description": "the artifact's input"}},
                    "required": ["input"],
                },
            }),
            name: base,
            artifact: id.to_string(),
            export: None,
        }),
        Ok(Some("exports")) => {
            let Ok(Some(functions)) = host.artifact_exports(id) else { return Vec::new() };
            // A function's own name, unless two interfaces share it: then
            // its interface's too.
            let shared =
                |f: &fuelhost::ExportedFunction| functions.iter().filter(|g| g.function == f.function).count() > 1;
            for f in &functions {
                let last = if shared(f) { f.name.clone() } else { f.function.clone() };
                let name = tool_name(&[m.owner.as_str(), &m.name, &last]);
                let params = f.params.iter().map(|p| format!("{}: {}", p.name, p.wit)).collect::<Vec<_>>();
                let signature = format!(
                    "the function `{}({})`{}",
                    f.name,
                    params.join(", "),
                    f.results.first().map(|r| format!(" -> {r}")).unwrap_or_default()
                );
                out.push(Tool {
                    shown: json!({"name": name, "description": describe(&signature), "inputSchema": object_schema(f)}),
                    name,
                    artifact: id.to_string(),
                    export: Some(f.name.clone()),
                });
            }
        }
        _ => {}
    }
    out
}

/// Whether the policy chain would refuse `agent` calling `info`.
fn denied(host: &Host, agent: &AgentId, info: &fuelhost::ArtifactInfo) -> bool {
    let m = &info.manifest;
    let payer = match m.resource_policy {
        ResourcePolicy::CallerPays => agent.to_string(),
        ResourcePolicy::OwnerPays => m.owner.to_string(),
    };
    let action = fuelhost::actions::INVOKE.action(
        agent.to_string(),
        info.id.clone(),
        vec![
            ("owner", m.owner.to_string()),
            ("payer", payer),
            ("resource-policy", m.resource_policy.to_string()),
            ("sponsor-grant", String::new()),
            ("input-bytes", "0".into()),
            ("export", "run".into()),
        ],
        m.price,
        fuelhost::Usage {
            fuel: m.limits.fuel,
            memory_peak_bytes: m.limits.memory_bytes,
            disk_bytes: 0,
            llm_tokens: 0,
            wall_time_ns: 0,
        },
    );
    matches!(host.check_policy(&action).decision, Decision::Deny(_))
}

/// A tool name of `parts`, joined by `__`, every character outside
/// `[A-Za-z0-9_-]` made `_`.
fn tool_name(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect())
        .collect::<Vec<String>>()
        .join("__")
}

/// A function's arguments as one object, a property per parameter.
fn object_schema(f: &fuelhost::ExportedFunction) -> Value {
    let items = f.args_schema.get("prefixItems").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut properties = Map::new();
    for (i, p) in f.params.iter().enumerate() {
        let mut schema = items.get(i).cloned().unwrap_or_else(|| json!({}));
        if let Some(o) = schema.as_object_mut() {
            o.entry("description").or_insert_with(|| Value::String(format!("WIT type `{}`", p.wit)));
        }
        properties.insert(p.name.clone(), schema);
    }
    let required: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

/// `tools/call`: an ordinary charged invocation.
fn call_tool(host: &Host, agent: &AgentId, params: &Value) -> Result<Value, (i64, String)> {
    let name = params.get("name").and_then(Value::as_str).ok_or((INVALID_PARAMS, "`name` names the tool".into()))?;
    let arguments = params.get("arguments").cloned().unwrap_or_else(|| json!({}));
    // Found by its name's parts; a name whose owner holds `__` itself is
    // found among all.
    let found = find_tool(host, agent, name).or_else(|| tools(host, agent).into_iter().find(|t| t.name == name));
    let Some(tool) = found else {
        return Err((INVALID_PARAMS, format!("no tool `{name}` for you: tools/list shows the ones you may call")));
    };
    let inv = match &tool.export {
        Some(export) => Invocation::export(agent.to_string(), &tool.artifact, export, arguments),
        None => {
            let input = match arguments.get("input") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => return Err((INVALID_PARAMS, "this tool takes `input`, a string".into())),
            };
            Invocation::new(agent.to_string(), &tool.artifact, input)
        }
    };
    Ok(match host.invoke(inv) {
        Ok(report) => {
            let output = report.output_text();
            let summary = format!(
                "{}: {} fuel burned, charged to {}; {} scrip paid to the owner (invocation {})",
                report.outcome,
                report.resources_consumed.fuel,
                report.charged_to,
                report.price_paid,
                report.invocation_id
            );
            let text = match &report.error {
                Some(e) => e.clone(),
                None => output.clone(),
            };
            let result = match (&tool.export, report.success) {
                (Some(_), true) => serde_json::from_str(&output).unwrap_or(Value::String(output)),
                (None, true) => Value::String(output),
                (_, false) => Value::Null,
            };
            json!({
                "content": [{"type": "text", "text": text}, {"type": "text", "text": summary}],
                "structuredContent": {
                    "result": result,
                    "invocation_id": report.invocation_id,
                    "outcome": report.outcome,
                    "error": report.error,
                    "resources_consumed": report.resources_consumed,
                    "charged_to": report.charged_to,
                    "price_paid": report.price_paid,
                },
                "isError": !report.success,
            })
        }
        // Refused before it ran: nothing was charged.
        Err(e) => refused(&e),
    })
}

fn refused(e: &InvokeError) -> Value {
    let text = format!("refused, nothing charged: {e}");
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}
