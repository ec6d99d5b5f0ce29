//! `fuelhost mcp`: the Model Context Protocol over stdio, for an agent
//! that starts its tools as local processes. Each JSON-RPC message read
//! from stdin (one per line) goes to the server's `/mcp` with the API key;
//! each answer is written to stdout, one per line. The server decides
//! everything: the tools are the caller's, every call is charged there.

use std::io::{BufRead, Write};

use anyhow::Result;
use serde_json::{json, Value};

use crate::client::Client;

/// Bridge stdin and stdout to `client`'s server until stdin ends.
pub fn bridge(client: &Client) -> Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let id = serde_json::from_str::<Value>(&line).ok().and_then(|m| m.get("id").cloned());
        let answer = match client.post_raw("/mcp", &line) {
            Ok((202, _)) => continue,
            Ok((200..=299, body)) | Ok((400, body)) if serde_json::from_str::<Value>(&body).is_ok() => body,
            Ok((status, body)) => {
                let why = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or(body);
                eprintln!("fuelhost mcp: the server answered {status}: {why}");
                failure(id, format!("the fuelhost server answered {status}: {why}"))
            }
            Err(e) => {
                eprintln!("fuelhost mcp: {e:#}");
                failure(id, format!("{e:#}"))
            }
        };
        if answer.is_empty() {
            continue;
        }
        // Newlines inside a message would end it early on the wire.
        let compact = serde_json::from_str::<Value>(&answer).map(|v| v.to_string()).unwrap_or(answer);
        writeln!(out, "{compact}")?;
        out.flush()?;
    }
    Ok(())
}

/// A JSON-RPC error answering request `id` (nothing for a notification).
fn failure(id: Option<Value>, message: String) -> String {
    match id {
        Some(id) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": message}}).to_string(),
        None => String::new(),
    }
}
