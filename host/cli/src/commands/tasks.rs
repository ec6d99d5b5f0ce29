//! Tasks: submitting an invocation to the server's queue (by artifact or
//! by capability), showing and cancelling a task, and the artifacts'
//! circuit breakers.

use anyhow::Result;

use super::input::{artifact_ref, client_id, usage};
use super::{Printer, TaskCmd};
use crate::client::Client;
use crate::output::{table, Cell};
use fuelhost_api::replies::BreakerList;
use fuelhost_api::requests::Submit;
use fuelhost_api::Task;

/// `fuelhost task ...`.
pub(super) fn run(client: &Client, out: Printer, cmd: TaskCmd) -> Result<String> {
    let reply = match cmd {
        TaskCmd::Submit {
            artifact,
            input,
            capability,
            route,
            max_price,
            priority,
            fuel,
            id,
            attempts,
            backoff_ms,
            timeout_ms,
            after,
        } => {
            let (artifact, input) = match (&capability, artifact, input) {
                (None, Some(artifact), input) => (Some(artifact), input),
                (None, None, _) => return Err(usage("name the ARTIFACT to run, or a --capability".into())),
                (Some(_), first, None) | (Some(_), None, first) => (None, first),
                (Some(_), Some(_), Some(_)) => {
                    return Err(usage("with --capability, give only the input, not an artifact".into()))
                }
            };
            let body = Submit {
                artifact: artifact.map(artifact_ref).transpose()?,
                capability,
                route,
                max_price,
                input,
                input_base64: None,
                priority: Some(priority),
                fuel_limit: fuel,
                id: id.map(client_id).transpose()?,
                max_attempts: Some(attempts),
                backoff_ms: Some(backoff_ms),
                timeout_ms,
                depends_on: after.into_iter().map(client_id).collect::<Result<_>>()?,
            };
            client.send("POST", "/v1/tasks", &body)?
        }
        TaskCmd::Show { id } => client.get(&format!("/v1/tasks/{id}"), &[])?,
        TaskCmd::Cancel { id } => client.call("POST", &format!("/v1/tasks/{id}/cancel"))?,
        TaskCmd::Breakers => return out.show(client.get("/v1/breakers", &[])?, breakers),
    };
    out.show(reply, task)
}

/// One task, as a table.
fn task(t: &Task) -> String {
    let row = vec![
        Cell::text(&t.id),
        Cell::text(&t.submitter),
        Cell::text(&t.artifact),
        Cell::text(t.priority.as_str()),
        Cell::text(t.state.as_str()),
        Cell::num(t.attempts),
        Cell::opt_text(t.invocation_id.as_ref()),
        Cell::opt_text(t.error.as_ref()),
    ];
    table(&["id", "submitter", "artifact", "priority", "state", "attempts", "invocation", "error"], vec![row])
}

fn breakers(list: &BreakerList) -> String {
    let rows = list
        .breakers
        .iter()
        .map(|b| {
            vec![
                Cell::text(&b.artifact),
                Cell::text(b.state.as_str()),
                Cell::num(b.consecutive_failures),
                Cell::opt_num(b.open_until_ms),
                Cell::num(b.times_opened),
            ]
        })
        .collect();
    table(&["artifact", "state", "failures in a row", "open until (ms)", "times opened"], rows)
}
