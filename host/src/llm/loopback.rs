//! A deterministic OpenAI-compatible chat-completions server on loopback,
//! for the tests, the demo and the benchmarks of a machine that reaches
//! no model provider. The host talks to it over real HTTP exactly as to a
//! provider; it answers by rule, not by a model.
//!
//! It echoes the last user message (`echo: ...`), cut to `max_tokens`
//! words (`finish_reason` `length`), or, asked for a JSON answer
//! (`response_format`), `{"answer": "..."}`. It reports usage: the prompt's
//! words plus three per message, the answer's words. Markers in the last
//! user message change that, one request at a time:
//!
//! | marker | answer |
//! | --- | --- |
//! | `[fail]` | HTTP 500 |
//! | `[quota]` | HTTP 429 (its quota spent) |
//! | `[reject]` | HTTP 400 (the request refused) |
//! | `[bad]` | HTTP 200 that is not JSON |
//! | `[slow:MS]` | the answer after MS milliseconds |
//! | `[usage:P,C]` | usage reported as P prompt and C answer tokens |
//! | `[nousage]` | no usage reported |
//! | `[score:N]` | the answer is `N` (a judge's score) |
//! | `[leak]` | HTTP 400 quoting the request's `Authorization` header (a provider that echoes the key) |
//!
//! [`Loopback::set_failing`] makes every request fail with HTTP 500, as a
//! provider that is down.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its `Authorization` header, if any.
    pub authorization: Option<String>,
    /// Its JSON body.
    pub body: Value,
}

#[derive(Default)]
struct State {
    failing: AtomicBool,
    served: AtomicU64,
    received: Mutex<Vec<Received>>,
}

/// The running server; stops accepting when dropped.
pub struct Loopback {
    url: String,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Loopback {
    /// Start one on a free loopback port.
    pub fn start() -> std::io::Result<Loopback> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::Builder::new().name("loopback-llm".into()).spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &s);
                });
            }
        })?;
        Ok(Loopback { url: format!("http://127.0.0.1:{port}/v1"), state, stop, port })
    }

    /// Its base URL, `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Make every request fail (HTTP 500), or answer again.
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// Requests answered so far (any status).
    pub fn served(&self) -> u64 {
        self.state.served.load(Ordering::SeqCst)
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Read one request from `stream`, answer it, close.
fn serve(stream: TcpStream, state: &State) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length.min(16 << 20)];
    reader.read_exact(&mut body)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let leaked = authorization.clone().unwrap_or_default();
    state.received.lock().unwrap_or_else(|p| p.into_inner()).push(Received { authorization, body: body.clone() });
    let (status, answer) = if !line.starts_with("POST ") || !line.contains("/chat/completions") {
        (404, json!({"error": {"message": "only POST /v1/chat/completions is served"}}).to_string())
    } else if state.failing.load(Ordering::SeqCst) {
        (500, json!({"error": {"message": "the loopback provider is failing, as set"}}).to_string())
    } else if body.to_string().contains("[leak]") {
        (400, json!({"error": {"message": format!("bad credentials: {leaked}")}}).to_string())
    } else {
        answer(&body)
    };
    state.served.fetch_add(1, Ordering::SeqCst);
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    stream.flush()
}

/// The status and body answering a chat-completions request `body`.
fn answer(body: &Value) -> (u16, String) {
    let messages = body.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    let content = |m: &Value| m.get("content").and_then(Value::as_str).unwrap_or("").to_string();
    let last_user = messages.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user"));
    let prompt = last_user.map(content).unwrap_or_default();
    let marker = |name: &str| -> Option<String> {
        let start = prompt.find(&format!("[{name}"))? + name.len() + 1;
        let end = start + prompt[start..].find(']')?;
        Some(prompt[start..end].trim_start_matches(':').to_string())
    };
    if marker("fail").is_some() {
        return (500, json!({"error": {"message": "the model failed, as the prompt asked"}}).to_string());
    }
    if marker("quota").is_some() {
        return (429, json!({"error": {"message": "quota exhausted, as the prompt asked"}}).to_string());
    }
    if marker("reject").is_some() {
        return (400, json!({"error": {"message": "request rejected, as the prompt asked"}}).to_string());
    }
    if marker("bad").is_some() {
        return (200, "this is not a chat completion".into());
    }
    if let Some(ms) = marker("slow").and_then(|m| m.parse::<u64>().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let max_tokens = body.get("max_tokens").and_then(Value::as_u64).unwrap_or(u64::MAX) as usize;
    let said = format!("echo: {prompt}");
    let words: Vec<&str> = said.split_whitespace().collect();
    let cut = words.len() > max_tokens;
    let mut text = words[..words.len().min(max_tokens)].join(" ");
    if let Some(score) = marker("score") {
        text = score;
    } else if body.pointer("/response_format/type").and_then(Value::as_str) == Some("json_schema") {
        text = json!({"answer": text}).to_string();
    }
    let prompt_tokens: usize = messages.iter().map(|m| content(m).split_whitespace().count() + 3).sum();
    let completion_tokens = text.split_whitespace().count();
    let mut reply = json!({
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": if cut { "length" } else { "stop" }}],
    });
    if marker("nousage").is_none() {
        let (p, c) = marker("usage")
            .and_then(|u| {
                let (p, c) = u.split_once(',')?;
                Some((p.trim().parse::<u64>().ok()?, c.trim().parse::<u64>().ok()?))
            })
            .unwrap_or((prompt_tokens as u64, completion_tokens as u64));
        reply["usage"] = json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
    }
    (200, reply.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_answers_by_rule() {
        let ask = |content: &str, max: u64| {
            answer(&json!({"model": "m", "max_tokens": max, "messages": [{"role": "user", "content": content}]}))
        };
        let (status, body) = ask("hello there", 10);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status, 200);
        assert_eq!(v["choices"][0]["message"]["content"], "echo: hello there");
        assert_eq!(v["usage"]["prompt_tokens"], 5);
        assert_eq!(v["usage"]["completion_tokens"], 3);
        let (_, body) = ask("one two three four", 2);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (v["choices"][0]["message"]["content"].as_str(), v["choices"][0]["finish_reason"].as_str()),
            (Some("echo: one"), Some("length"))
        );
        assert_eq!(ask("x [quota]", 5).0, 429);
        let (_, body) = ask("x [usage:7,9]", 5);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["usage"]["total_tokens"], 16);
        let (_, body) = ask("rate it [score:87]", 5);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["choices"][0]["message"]["content"], "87");
    }
}
