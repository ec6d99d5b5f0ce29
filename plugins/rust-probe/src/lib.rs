//! rust-probe: a test fixture artifact that does, on request, everything an
//! artifact may try: compute, loop forever, exhaust memory, recurse without
//! end, trap, touch files, read the ledger, transfer scrip, queue tasks, ask the policy
//! chain, make an HTTP request. The input is a command `verb:arg:arg...`
//! (or `get:URL`); see `run` below.

use std::hint::black_box;

use fuelhost_guest::{ledger, log, policy, Action, Artifact, Decision, RunError, Usage};

struct Probe;

fn failed(e: impl std::fmt::Display) -> RunError {
    RunError::Failed(e.to_string())
}

/// Recurses until the wasm stack runs out: `stop` is never reached, and the
/// work after the call keeps it from becoming a loop. Only scalars, so the
/// frames live on the wasm stack, not in linear memory.
#[inline(never)]
fn recurse(n: u64, stop: u64) -> u64 {
    if n == stop {
        return 1;
    }
    recurse(n + 1, stop).wrapping_mul(n | 1).rotate_left(7) ^ n
}

/// GET `url` (`http://host:port/path`) through `wasi:http`; returns the
/// status and the body.
fn http_get(url: &str) -> Result<String, String> {
    use wasi::http::types::{Fields, Method, OutgoingRequest, Scheme};
    let (scheme, rest) = url.split_once("://").ok_or("the url must look like http://host:port/path")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request.set_method(&Method::Get).map_err(|()| "method")?;
    let scheme = if scheme == "https" { Scheme::Https } else { Scheme::Http };
    request.set_scheme(Some(&scheme)).map_err(|()| "scheme")?;
    request.set_authority(Some(authority)).map_err(|()| "authority")?;
    request.set_path_with_query(Some(path)).map_err(|()| "path")?;
    let pending = wasi::http::outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = pending.get().ok_or("no response")?.map_err(|()| "response taken")?.map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response.consume().map_err(|()| "body")?;
    let stream = body.stream().map_err(|()| "stream")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(4096) {
            Ok(chunk) => bytes.extend(chunk),
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(e) => return Err(format!("{e:?}")),
        }
    }
    drop(stream);
    Ok(format!("{status} {}", String::from_utf8_lossy(&bytes)))
}

impl Artifact for Probe {
    fn run(input: Vec<u8>) -> Result<Vec<u8>, RunError> {
        let text = String::from_utf8(input).map_err(|_| RunError::InvalidInput("utf-8 command expected".into()))?;
        if let Some(url) = text.strip_prefix("get:") {
            return http_get(url).map(String::into_bytes).map_err(RunError::Failed);
        }
        let mut parts = text.splitn(3, ':');
        let verb = parts.next().unwrap_or_default();
        let a = parts.next().unwrap_or_default();
        let b = parts.next().unwrap_or_default();
        let out = match verb {
            "echo" => a.to_string(),
            "spin" => {
                let n: u64 = a.parse().map_err(failed)?;
                let mut h: u64 = 0xcbf29ce484222325;
                for i in 0..n {
                    h = (h ^ i).wrapping_mul(0x100000001b3);
                }
                black_box(h).to_string()
            }
            "loop" => loop {
                black_box(());
            },
            // Sleeps in host calls forever, burning almost no fuel.
            "nap" => loop {
                std::thread::sleep(std::time::Duration::from_millis(5));
            },
            "grow" => {
                let mut chunks: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut c = vec![0u8; 1 << 20];
                    c[0] = 1;
                    chunks.push(black_box(c));
                }
            }
            "alloc" => {
                let mib: usize = a.parse().map_err(failed)?;
                let v = black_box(vec![1u8; mib << 20]);
                v.len().to_string()
            }
            "recurse" => recurse(0, black_box(u64::MAX)).to_string(),
            "trap" => panic!("probe asked to trap"),
            "write" => {
                std::fs::write(a, b).map_err(failed)?;
                "ok".into()
            }
            "read" => std::fs::read_to_string(a).map_err(failed)?,
            "ls" => {
                let mut names: Vec<String> = std::fs::read_dir(a)
                    .map_err(failed)?
                    .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect::<Result<_, _>>()
                    .map_err(failed)?;
                names.sort();
                names.join(",")
            }
            "env" => format!("vars={} args={}", std::env::vars().count(), std::env::args().count()),
            "context" => {
                let c = ledger::context();
                format!(
                    "invocation={} artifact={} caller={} owner={} payer={} policy={:?} price={} fuel_limit={}",
                    c.invocation_id, c.artifact, c.caller, c.owner, c.payer, c.resource_policy, c.price, c.fuel_limit
                )
            }
            "fuel-left" => ledger::fuel_left().to_string(),
            "balance" => {
                let b = ledger::balance(a).map_err(|e| failed(format!("{e:?}")))?;
                format!("scrip={} fuel={} disk={}", b.scrip, b.fuel, b.disk_bytes)
            }
            "transfer" | "transfer-then-trap" => {
                let amount: u64 = b.parse().map_err(failed)?;
                let id = ledger::transfer(a, amount, "probe").map_err(|e| failed(format!("{e:?}")))?;
                if verb == "transfer-then-trap" {
                    panic!("trap after transfer {id}");
                }
                id
            }
            "policy" => {
                let action = Action {
                    kind: a.to_string(),
                    subject: "someone-else".into(),
                    tenant: None,
                    target: b.to_string(),
                    attributes: vec![],
                    price: 0,
                    estimated: Usage { fuel: 0, memory_peak_bytes: 0, disk_bytes: 0, llm_tokens: 0, wall_time_ns: 0 },
                };
                match policy::check(&action) {
                    Decision::Allow => "allow".into(),
                    Decision::Deny(r) => format!("deny: {r}"),
                    Decision::RequireApproval(who) => format!("require-approval: {}", who.join(",")),
                }
            }
            "nested" | "nested-fuel" => {
                // nested:<artifact>:<input>  or  nested-fuel:<fuel>:<artifact>:<input>
                let (fuel, artifact, input) = if verb == "nested-fuel" {
                    let (artifact, input) = b.split_once(':').unwrap_or((b, ""));
                    (Some(a.parse::<u64>().map_err(failed)?), artifact, input)
                } else {
                    (None, a, b)
                };
                match fuelhost_guest::invoke::invoke(artifact, input.as_bytes(), fuel) {
                    Ok(r) => format!(
                        "outcome={:?} charged_to={} fuel={} price={} output={} error={}",
                        r.outcome,
                        r.charged_to,
                        r.usage.fuel,
                        r.price_paid,
                        String::from_utf8_lossy(&r.output),
                        r.error.unwrap_or_default()
                    ),
                    Err(e) => return Err(failed(format!("{e:?}"))),
                }
            }
            "submit" => {
                // submit:<artifact>:<input>: queue a task as the owner.
                let req = fuelhost_guest::tasks::request(a, b.as_bytes());
                match fuelhost_guest::tasks::submit(&req) {
                    Ok(id) => format!("task={id}"),
                    Err(e) => return Err(failed(format!("{e:?}"))),
                }
            }
            "submit-capability" => {
                // submit-capability:<capability>:<input>: cheapest first.
                let route = fuelhost_guest::tasks::RouteMode::CostOptimized;
                let req = fuelhost_guest::tasks::for_capability(a, route, b.as_bytes());
                match fuelhost_guest::tasks::submit(&req) {
                    Ok(id) => format!("task={id}"),
                    Err(e) => return Err(failed(format!("{e:?}"))),
                }
            }
            "task-state" => match fuelhost_guest::tasks::status(a) {
                Ok(s) => format!("state={:?} attempts={}", s.state, s.attempts),
                Err(e) => return Err(failed(format!("{e:?}"))),
            },
            "allocation" => match ledger::allocation(a).map_err(|e| failed(format!("{e:?}")))? {
                Some(s) => format!(
                    "{} {} {}",
                    s.id,
                    s.status,
                    s.quotas
                        .iter()
                        .map(|q| format!("{}={}/{}", q.resource, q.used, q.limit))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                None => "none".into(),
            },
            "sponsorship" => match ledger::sponsorship() {
                Some(s) => format!("{} by {} ({} fuel left)", s.grant_id, s.sponsor, s.fuel_remaining),
                None => "none".into(),
            },
            "log" => {
                log::warn(a);
                "logged".into()
            }
            other => return Err(RunError::InvalidInput(format!("unknown probe command `{other}`"))),
        };
        Ok(out.into_bytes())
    }
}

fuelhost_guest::export_artifact!(Probe);
