//! rust-llm-ask: an artifact that thinks. Asks a language model through
//! the host's `llm` capability (`fuelhost:host@0.2.0`) and answers with
//! what the model said and what it cost.
//!
//! Input, JSON: `{"prompt": "...", "model": "small"}` (a model id, or
//! `provider/model`), or `{"prompt": "...", "route": "cost_optimized"}` to
//! let the host's router pick; optional `system`, `max_tokens` (default
//! 64), `temperature`, `schema` (a JSON Schema the answer must match), and
//! `asks` (how many times to ask in a row, default 1). Output, JSON:
//! `{"text", "provider", "model", "input_tokens", "output_tokens",
//! "finish_reason"}` of the last answer. A refused request (no budget, a
//! policy, no provider) is a `run-error` quoting why.

use fuelhost_guest::llm::{self, Message, ModelChoice, Request, Role, Route};
use fuelhost_guest::{Artifact, RunError};
use serde_json::{json, Value};

struct Ask;

fn route(name: &str) -> Result<Route, RunError> {
    Ok(match name {
        "standard" => Route::Standard,
        "cost_optimized" => Route::CostOptimized,
        "latency_optimized" => Route::LatencyOptimized,
        "quality_optimized" => Route::QualityOptimized,
        other => {
            return Err(RunError::InvalidInput(format!(
                "route `{other}`: use standard, cost_optimized, latency_optimized or quality_optimized"
            )))
        }
    })
}

fn request(input: &Value) -> Result<Request, RunError> {
    let text = |key: &str| input.get(key).and_then(Value::as_str);
    let prompt = text("prompt").ok_or_else(|| RunError::InvalidInput("send {\"prompt\": \"...\"}".into()))?;
    let model = match (text("model"), text("route")) {
        (Some(m), _) => ModelChoice::Named(m.to_string()),
        (None, Some(r)) => ModelChoice::Routed(route(r)?),
        (None, None) => ModelChoice::Routed(Route::Standard),
    };
    let mut messages = Vec::new();
    if let Some(system) = text("system") {
        messages.push(Message { role: Role::System, content: system.to_string() });
    }
    messages.push(Message { role: Role::User, content: prompt.to_string() });
    Ok(Request {
        messages,
        model,
        max_tokens: input.get("max_tokens").and_then(Value::as_u64).unwrap_or(64).min(u32::MAX as u64) as u32,
        temperature: input.get("temperature").and_then(Value::as_f64).map(|t| t as f32),
        response_schema: input.get("schema").map(Value::to_string),
    })
}

impl Artifact for Ask {
    fn run(input: Vec<u8>) -> Result<Vec<u8>, RunError> {
        let input: Value =
            serde_json::from_slice(&input).map_err(|e| RunError::InvalidInput(format!("input is not JSON: {e}")))?;
        let request = request(&input)?;
        let asks = input.get("asks").and_then(Value::as_u64).unwrap_or(1).max(1);
        let mut last = None;
        for _ in 0..asks {
            let answer = llm::complete(&request).map_err(|e| match e {
                llm::LlmError::Invalid(_) => RunError::InvalidInput(llm::describe(&e)),
                llm::LlmError::Denied(_) | llm::LlmError::InsufficientBudget(_) => RunError::Denied(llm::describe(&e)),
                _ => RunError::Failed(llm::describe(&e)),
            })?;
            last = Some(answer);
        }
        let a = last.expect("asked at least once");
        let out = json!({
            "text": a.text,
            "provider": a.provider,
            "model": a.model,
            "input_tokens": a.input_tokens,
            "output_tokens": a.output_tokens,
            "finish_reason": a.finish_reason,
        });
        Ok(out.to_string().into_bytes())
    }
}

fuelhost_guest::export_artifact!(Ask);
