//! Artifacts and calls: uploading a component with its manifest, listing,
//! showing and deleting artifacts, invoking one; and how an invocation's
//! report is shown (an approved action's report looks the same).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::input::{artifact_path, artifact_ref, client_id, read_input};
use super::{ArtifactsCmd, Printer, Shown};
use crate::client::{Client, Reply};
use crate::exit::Exit;
use crate::output::{record, table, Cell};
use fuelhost_api::replies::{ArtifactDeleted, ArtifactList};
use fuelhost_api::requests::Invoke;
use fuelhost_api::{ArtifactInfo, InvocationReport};

/// `fuelhost upload MANIFEST COMPONENT`.
pub(super) fn upload(client: &Client, out: Printer, manifest: &Path, component: &Path) -> Result<Shown> {
    let manifest_text = read_input(manifest)?;
    let bytes = read_input(component)?;
    let name = component.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let what = format!("uploading and compiling {name} ({:.1} MiB)", bytes.len() as f64 / (1 << 20) as f64);
    let parts: [(&str, Option<&str>, &[u8]); 2] =
        [("manifest", None, &manifest_text), ("component", Some(&name), &bytes)];
    out.done_or_parked(client.send_multipart("POST", "/v1/artifacts", &parts, &what)?, uploaded)
}

/// What an upload made.
pub(super) fn uploaded(a: &ArtifactInfo) -> String {
    format!("uploaded {} ({} bytes, sha256 {})\n", a.id, a.size, a.digest)
}

/// `fuelhost artifacts ...`.
pub(super) fn artifacts(client: &Client, out: Printer, cmd: ArtifactsCmd) -> Result<String> {
    match cmd {
        ArtifactsCmd::List => out.show(client.get("/v1/artifacts", &[])?, |list: &ArtifactList| {
            let rows = list
                .artifacts
                .iter()
                .map(|a| {
                    vec![
                        Cell::text(&a.id),
                        Cell::num(a.manifest.price),
                        Cell::text(a.manifest.resource_policy.as_str()),
                        Cell::bytes(a.size as u64),
                        Cell::digest(&a.digest),
                    ]
                })
                .collect();
            table(&["id", "price", "payer", "size", "digest"], rows)
        }),
        ArtifactsCmd::Show { id } => out.show(client.get(&artifact_path(id)?, &[])?, artifact),
        ArtifactsCmd::Delete { id } => out.show(client.call("DELETE", &artifact_path(id)?)?, |d: &ArtifactDeleted| {
            format!("deleted {}\n", d.artifact.id)
        }),
    }
}

/// What `fuelhost invoke` sends.
pub(super) struct Call {
    pub artifact: String,
    pub input: Option<String>,
    pub input_file: Option<PathBuf>,
    pub fuel: Option<u64>,
    pub id: Option<String>,
    pub export: Option<String>,
    pub args: Option<String>,
    /// The call in WAVE.
    pub wave: Option<String>,
}

/// `fuelhost invoke ARTIFACT [INPUT] ...`.
pub(super) fn invoke(client: &Client, out: Printer, call: Call) -> Result<Shown> {
    let mut body = Invoke {
        artifact: artifact_ref(call.artifact)?,
        input: None,
        input_base64: None,
        fuel_limit: call.fuel,
        id: call.id.map(client_id).transpose()?,
        export: call.export,
        args: None,
        call: call.wave,
    };
    if let Some(args) = call.args {
        let args: serde_json::Value = serde_json::from_str(&args).map_err(|e| {
            anyhow::anyhow!("--args is not JSON ({e}): give the arguments as an array, such as --args '[1, 2]'")
        })?;
        body.args = Some(args);
    }
    match (call.input, call.input_file) {
        (Some(text), _) => body.input = Some(text),
        (None, Some(path)) => match String::from_utf8(read_input(&path)?) {
            Ok(text) => body.input = Some(text),
            Err(e) => {
                use base64::Engine as _;
                body.input_base64 = Some(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()));
            }
        },
        (None, None) => {}
    }
    show_invocation(out, client.send("POST", "/v1/invoke", &body)?)
}

/// The answer to a call that ran (its report), with the exit code its
/// outcome gives, or that was parked (waiting for an approval).
pub(super) fn show_invocation(out: Printer, reply: Reply) -> Result<Shown> {
    if reply.status == 202 {
        return out.done_or_parked(reply, |_: &serde_json::Value| String::new());
    }
    let report: InvocationReport = reply.parse()?;
    let exit = if report.success { Exit::Ok } else { Exit::RunFailed };
    Ok(Shown { text: out.show(reply, invocation)?, exit })
}

/// An invocation's output, then its bill.
fn invocation(r: &InvocationReport) -> String {
    let mut out = String::new();
    // The output travels once: as text, or as base64 when it is not UTF-8.
    if !r.output.is_empty() {
        match std::str::from_utf8(&r.output) {
            Ok(text) => out.push_str(text),
            Err(_) => {
                use base64::Engine as _;
                out.push_str("(not UTF-8; base64) ");
                out.push_str(&base64::engine::general_purpose::STANDARD.encode(&r.output));
            }
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("---\n");
    }
    let used = &r.resources_consumed;
    out.push_str(&record(&[
        ("invocation", Cell::text(&r.invocation_id)),
        ("artifact", Cell::text(&r.artifact)),
        ("outcome", Cell::text(r.outcome.as_str())),
        ("error", Cell::opt_text(r.error.as_ref())),
        ("fuel", Cell::num(used.fuel)),
        ("memory peak", Cell::bytes(used.memory_peak_bytes)),
        ("wall time", Cell::nanos(used.wall_time_ns)),
        ("charged to", Cell::text(&r.charged_to)),
        ("price paid", Cell::num(r.price_paid)),
        ("cost µUSD", Cell::num(r.cost_usd_micros)),
        ("replayed", Cell::text(r.replayed)),
    ]));
    out
}

/// One artifact: what it costs, who pays, its size, digest and manifest.
fn artifact(a: &ArtifactInfo) -> String {
    let manifest = serde_json::to_value(&a.manifest).map_or_else(|e| format!("(not shown: {e})"), |m| m.to_string());
    record(&[
        ("id", Cell::text(&a.id)),
        ("price", Cell::num(a.manifest.price)),
        ("payer", Cell::text(a.manifest.resource_policy.as_str())),
        ("size", Cell::bytes(a.size as u64)),
        ("digest", Cell::text(&a.digest)),
        ("manifest", Cell::text(manifest)),
    ])
}
