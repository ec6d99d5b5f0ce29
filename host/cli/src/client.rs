//! The CLI's side of the HTTP API: where the server is and which key to
//! send (flags, then environment, then the config file), one request
//! helper that turns the API's error shape into a message, multipart
//! uploads, and the [`Reply`]: a successful answer as received, read into
//! its API type on demand.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The client's config file (`~/.config/fuelhost/config.toml`, written by
/// `fuelhost login`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// The server, e.g. `http://127.0.0.1:8080`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The API key to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// Where the client config file lives: `--config`, `$FUELHOST_CONFIG`,
/// `$XDG_CONFIG_HOME/fuelhost/config.toml` or `~/.config/fuelhost/config.toml`.
pub fn config_path(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("FUELHOST_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("fuelhost/config.toml"))
}

impl ClientFile {
    /// The file at `path`; an absent file is an empty config.
    pub fn load(path: &Path) -> Result<ClientFile> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("reading the client config {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ClientFile::default()),
            Err(e) => Err(e).with_context(|| format!("reading the client config {}", path.display())),
        }
    }

    /// Write it to `path`, readable by its owner only (it holds a key).
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        write_private(path, toml::to_string(self)?.as_bytes())
    }
}

/// Write `bytes` to `path`, readable and writable by its owner only (it
/// holds a key), whether the file is new or not.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::os::unix::fs::PermissionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // `mode` applies only when the file is created: tighten an old one.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))?;
    f.write_all(bytes).with_context(|| format!("writing {}", path.display()))
}

/// A successful answer: the JSON as the server sent it, and which request
/// it answers.
pub struct Reply {
    /// `METHOD /path` of the request, for messages.
    pub route: String,
    /// The HTTP status (a 2xx: an error status never becomes a reply).
    pub status: u16,
    /// The body (`null` when empty, a string when it is not JSON).
    pub json: Value,
}

impl Reply {
    /// The body read as `T`; a body of another shape is an error naming
    /// the request and what did not fit.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(&self.json).map_err(|e| anyhow!("the server's reply to {} did not parse: {e}", self.route))
    }
}

/// A request the server refused (`status` set, with the API's error
/// `code` and `message`), or that reached no server (`status: None`).
#[derive(Debug)]
pub struct Failure {
    /// The HTTP status of the answer; `None` when nothing answered.
    pub status: Option<u16>,
    /// The API's error code (`insufficient_scrip`, `not_found`, ...).
    pub code: String,
    /// What was wrong, as the server said it.
    pub message: String,
    /// What to try, for people (empty when there is nothing to add).
    pub hint: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "{} ({}, HTTP {status})", self.message, self.code)?,
            None => write!(f, "{}", self.message)?,
        }
        if !self.hint.is_empty() {
            write!(f, "\nhint: {}", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// A JSON value as one line of text: a string bare, `null` as `-`.
fn shown(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A connection to one server with one key.
pub struct Client {
    url: String,
    key: Option<String>,
    agent: ureq::Agent,
}

/// The default server when nothing names one.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

impl Client {
    /// A client for `url` sending `key` (if any).
    pub fn new(url: &str, key: Option<String>) -> Client {
        let agent =
            ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(5)).timeout(Duration::from_secs(600)).build();
        Client { url: url.trim_end_matches('/').to_string(), key, agent }
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let mut req = self.agent.request(method, &format!("{}{}", self.url, path));
        if let Some(k) = &self.key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        req
    }

    fn finish(&self, method: &str, path: &str, res: Result<ureq::Response, ureq::Error>) -> Result<Reply> {
        let res = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let text = r.into_string().unwrap_or_default();
                let parsed: Option<Value> = serde_json::from_str(&text).ok();
                let (code, message) = match parsed.as_ref().and_then(|v| v.get("error")) {
                    Some(e) => (shown(&e["code"]), shown(&e["message"])),
                    None => ("http_error".to_string(), text.trim().to_string()),
                };
                let hint = match status {
                    401 if self.key.is_none() => "pass --api-key, set FUELHOST_API_KEY, or run `fuelhost login`",
                    _ => "",
                };
                return Err(Failure { status: Some(status), code, message, hint: hint.into() }.into());
            }
            Err(ureq::Error::Transport(t)) => return Err(self.unreachable(t)),
        };
        let status = res.status();
        if !(200..300).contains(&status) {
            // A redirect (an HTTP-to-HTTPS proxy, say): nothing was done.
            let location = res.header("location").unwrap_or("nowhere").to_string();
            return Err(Failure {
                status: Some(status),
                code: "redirected".into(),
                message: format!("the server answered {method} {path} with a redirect to {location}"),
                hint: "point --url (or FUELHOST_URL) at the address the server is really on".into(),
            }
            .into());
        }
        let text = res.into_string().with_context(|| format!("reading the answer to {method} {path}"))?;
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            // Every route answers JSON; keep anything else as text rather than fail.
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Reply { route: format!("{method} {path}"), status, json })
    }

    /// No server answered.
    fn unreachable(&self, t: ureq::Transport) -> anyhow::Error {
        Failure {
            status: None,
            code: "unreachable".into(),
            message: format!("cannot reach the server at {}: {t}", self.url),
            hint: "is `fuelhost serve` running? Set --url or FUELHOST_URL".into(),
        }
        .into()
    }

    /// GET `path` (with `query` pairs whose value is set).
    pub fn get(&self, path: &str, query: &[(&str, Option<String>)]) -> Result<Reply> {
        let mut req = self.request("GET", path);
        for (k, v) in query {
            if let Some(v) = v {
                req = req.query(k, v);
            }
        }
        self.finish("GET", path, req.call())
    }

    /// `method` on `path` with `body` as JSON.
    pub fn send(&self, method: &str, path: &str, body: &impl Serialize) -> Result<Reply> {
        self.finish(method, path, self.request(method, path).send_json(body))
    }

    /// POST `body` (JSON text) to `path` as it is: the status and the
    /// body of whatever the server answered (an unreachable server is the
    /// error).
    pub fn post_raw(&self, path: &str, body: &str) -> Result<(u16, String)> {
        let req = self.request("POST", path).set("Content-Type", "application/json");
        let res = match req.send_string(body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Err(self.unreachable(t)),
        };
        let status = res.status();
        Ok((status, res.into_string().with_context(|| format!("reading the answer to POST {path}"))?))
    }

    /// `method` on `path` without a body.
    pub fn call(&self, method: &str, path: &str) -> Result<Reply> {
        self.finish(method, path, self.request(method, path).call())
    }

    /// `method` on `path` with a text body.
    pub fn send_text(&self, method: &str, path: &str, text: &str) -> Result<Reply> {
        self.finish(method, path, self.request(method, path).set("Content-Type", "text/plain").send_string(text))
    }

    /// `method` on `path` with a `multipart/form-data` body of `parts`
    /// (name, file name, bytes), showing `what` with a spinner while the
    /// server works (it compiles the component before it answers).
    pub fn send_multipart(
        &self,
        method: &str,
        path: &str,
        parts: &[(&str, Option<&str>, &[u8])],
        what: &str,
    ) -> Result<Reply> {
        let boundary = format!("fuelhost-{}", random_hex(12));
        let mut body = Vec::new();
        for (name, file, bytes) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match file {
                Some(f) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body
                    .extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
            }
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let req = self.request(method, path).set("Content-Type", &format!("multipart/form-data; boundary={boundary}"));
        let spinner = Spinner::start(what);
        let res = req.send_bytes(&body);
        spinner.stop();
        self.finish(method, path, res)
    }
}

/// `n` random bytes as hex, from the OS.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        bytes = nanos.as_nanos().to_le_bytes()[..n.min(16)].to_vec();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A progress line on stderr while a slow request runs (uploads compile
/// the component before the server answers); silent when stderr is not a
/// terminal, so scripts and logs stay clean.
struct Spinner {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    fn start(what: &str) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner { stop: None, thread: None };
        }
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let what = what.to_string();
        let thread = std::thread::spawn(move || {
            let frames = ['|', '/', '-', '\\'];
            let started = Instant::now();
            let mut i = 0;
            while stopped.recv_timeout(Duration::from_millis(120)).is_err() {
                eprint!("\r{} {what} {:.1}s ", frames[i % frames.len()], started.elapsed().as_secs_f64());
                i += 1;
            }
            eprint!("\r{}\r", " ".repeat(what.len() + 16));
        });
        Spinner { stop: Some(stop), thread: Some(thread) }
    }

    fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fuelhost_api::replies::TransferPage;

    #[test]
    fn a_reply_of_another_shape_is_an_error_naming_the_route() {
        let reply = Reply { route: "GET /v1/transfers".into(), status: 200, json: serde_json::json!({"transfers": 5}) };
        let e = reply.parse::<TransferPage>().map(|_| ()).unwrap_err().to_string();
        assert!(e.starts_with("the server's reply to GET /v1/transfers did not parse: invalid type"), "{e}");
        let fits = Reply { json: serde_json::json!({"transfers": [], "next": null}), ..reply };
        assert!(fits.parse::<TransferPage>().is_ok_and(|p| p.transfers.is_empty()));
    }
}
