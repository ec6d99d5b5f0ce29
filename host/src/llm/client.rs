//! One chat-completions request to a provider, in OpenAI's protocol
//! (`POST {base_url}/chat/completions`), over the host's outgoing HTTP
//! (`crate::egress`): the answer's text and the tokens the provider
//! reports, or why there is none, sorted by whose failure it was. The
//! provider's key goes in the `Authorization` header and nowhere else: an
//! error quoting the provider's answer has it cut out.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{json, Value};
use wasmtime_wasi_http::RequestOptions;

use super::provider::LlmProvider;

/// The largest answer read from a provider.
const MAX_ANSWER_BYTES: usize = 8 << 20;
/// How much of a provider's error is quoted.
const QUOTED_ERROR_CHARS: usize = 300;

/// What is sent.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The model asked.
    pub model: String,
    /// The conversation: role (`system`, `user`, `assistant`) and content.
    pub messages: Vec<(&'static str, String)>,
    /// Most answer tokens.
    pub max_tokens: u32,
    /// Sampling temperature, if set.
    pub temperature: Option<f32>,
    /// A JSON Schema the answer must match, if any.
    pub schema: Option<Value>,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatAnswer {
    /// The answer.
    pub text: String,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// Prompt tokens, if the provider reported them.
    pub input_tokens: Option<u64>,
    /// Answer tokens, if the provider reported them.
    pub output_tokens: Option<u64>,
    /// Why the answer ended.
    pub finish_reason: String,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Its time ran out.
    Timeout,
    /// The provider's own quota or rate limit is spent (HTTP 429): another
    /// provider may take it.
    Quota(String),
    /// The provider failed (unreachable, a 5xx, an answer that is not a
    /// chat completion, a key it refused): another provider may take it.
    Provider(String),
    /// The provider refused the request itself (another 4xx): another
    /// provider would too.
    Request(String),
}

/// The JSON body of `req`.
pub fn body(req: &ChatRequest) -> Value {
    let messages: Vec<Value> =
        req.messages.iter().map(|(role, content)| json!({"role": role, "content": content})).collect();
    let mut body = json!({"model": req.model, "messages": messages, "max_tokens": req.max_tokens});
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(schema) = &req.schema {
        body["response_format"] =
            json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": true}});
    }
    body
}

/// Send `req` to `provider` (with `key`, if it has one), waiting at most
/// `timeout` for the whole answer. Runs on the ambient tokio runtime from
/// a blocking thread, as the guest's other host calls do.
pub fn send(
    provider: &LlmProvider,
    key: Option<&str>,
    req: &ChatRequest,
    timeout: Duration,
) -> Result<ChatAnswer, Failure> {
    let url = format!("{}/chat/completions", provider.base_url.trim_end_matches('/'));
    let uri: http::Uri = url.parse().map_err(|e| Failure::Provider(format!("its URL `{url}` does not parse: {e}")))?;
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let payload = serde_json::to_vec(&body(req)).map_err(|e| Failure::Request(e.to_string()))?;
    let mut builder = http::Request::post(uri)
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json");
    if let Some(key) = key {
        builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let request = builder
        .body(Full::new(Bytes::from(payload)).map_err(|never| match never {}).boxed_unsync())
        .map_err(|e| Failure::Request(e.to_string()))?;
    let options = RequestOptions {
        connect_timeout: Some(timeout),
        first_byte_timeout: Some(timeout),
        between_bytes_timeout: Some(timeout),
    };
    let exchange = async move {
        let (response, driver) = crate::egress::send_configured(request, options)
            .await
            .map_err(|e| Failure::Provider(format!("could not be reached: {e}")))?;
        // The body is read while the connection is driven, both on this
        // thread: no task of its own, no handoff to another.
        let status = response.status();
        let mut driver = Box::into_pin(driver);
        let mut driving = true;
        let read = Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect();
        tokio::pin!(read);
        let read = loop {
            tokio::select! {
                read = &mut read => break read,
                done = &mut driver, if driving => {
                    driving = false;
                    if let Err(e) = done {
                        tracing::debug!(error = %e, "an LLM provider's connection ended with an error");
                    }
                }
            }
        };
        let bytes = read.map_err(|e| Failure::Provider(format!("its answer broke off: {e}")))?.to_bytes();
        Ok::<_, Failure>((status, bytes))
    };
    let (status, bytes) = match on_this_thread(async { tokio::time::timeout(timeout, exchange).await }) {
        Err(_) => return Err(Failure::Timeout),
        Ok(result) => result?,
    };
    let redact = |text: &str| match key {
        Some(k) if !k.is_empty() => text.replace(k, "<key>"),
        _ => text.to_string(),
    };
    if !status.is_success() {
        let quoted = redact(&error_text(&bytes));
        return Err(match status.as_u16() {
            429 => Failure::Quota(format!("HTTP 429: {quoted}")),
            401 | 403 | 404 | 408 => Failure::Provider(format!("HTTP {}: {quoted}", status.as_u16())),
            400..=499 => Failure::Request(format!("HTTP {}: {quoted}", status.as_u16())),
            _ => Failure::Provider(format!("HTTP {}: {quoted}", status.as_u16())),
        });
    }
    parse(&bytes).map_err(|e| Failure::Provider(redact(&e)))
}

thread_local! {
    /// A runtime of the thread's own, driving its requests' I/O itself.
    static RUNTIME: std::cell::OnceCell<Option<tokio::runtime::Runtime>> = const { std::cell::OnceCell::new() };
}

/// Run `f` to its end on this thread, on a current-thread runtime kept
/// for the thread: every readiness is seen by the thread waiting for it,
/// never handed over from another (each handoff a thread woken). Falls
/// back to the ambient runtime if one cannot be built.
fn on_this_thread<F: std::future::Future>(f: F) -> F::Output {
    RUNTIME.with(|cell| {
        let runtime = cell.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().ok());
        match runtime {
            Some(rt) => rt.block_on(f),
            None => wasmtime_wasi::runtime::in_tokio(f),
        }
    })
}

/// A provider's error, as it put it (`error.message` of its JSON), cut
/// short.
fn error_text(bytes: &[u8]) -> String {
    let text = serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
    text.chars().take(QUOTED_ERROR_CHARS).collect()
}

/// A chat completion's answer, or why `bytes` is not one.
pub fn parse(bytes: &[u8]) -> Result<ChatAnswer, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("its answer is not JSON: {e}"))?;
    let choice = v.pointer("/choices/0").ok_or("its answer has no `choices`: not a chat completion")?;
    let text = match choice.pointer("/message/content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => return Err(format!("its answer's content is not text: {other}")),
    };
    let tokens = |key: &str| v.pointer(&format!("/usage/{key}")).and_then(Value::as_u64);
    Ok(ChatAnswer {
        text,
        model: v.get("model").and_then(Value::as_str).unwrap_or_default().to_string(),
        input_tokens: tokens("prompt_tokens"),
        output_tokens: tokens("completion_tokens"),
        finish_reason: choice.get("finish_reason").and_then(Value::as_str).unwrap_or("stop").to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_body_is_openais() {
        let req = ChatRequest {
            model: "small".into(),
            messages: vec![("system", "be brief".into()), ("user", "hi".into())],
            max_tokens: 16,
            temperature: Some(0.5),
            schema: Some(json!({"type": "object"})),
        };
        let b = body(&req);
        assert_eq!(b["messages"][1], json!({"role": "user", "content": "hi"}));
        assert_eq!(b["max_tokens"], 16);
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(b["response_format"]["json_schema"]["schema"], json!({"type": "object"}));
    }

    #[test]
    fn an_answer_is_read_with_its_usage_or_refused() {
        let ok = br#"{"model":"small-1","choices":[{"message":{"role":"assistant","content":"hello"},"finish_reason":"length"}],
                     "usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#;
        let a = parse(ok).unwrap();
        assert_eq!((a.text.as_str(), a.input_tokens, a.output_tokens), ("hello", Some(7), Some(3)));
        assert_eq!((a.model.as_str(), a.finish_reason.as_str()), ("small-1", "length"));
        assert!(parse(b"{}").unwrap_err().contains("no `choices`"));
        assert!(parse(b"<html>").unwrap_err().contains("not JSON"));
        assert_eq!(error_text(br#"{"error":{"message":"slow down"}}"#), "slow down");
    }
}
