//! Approvals: the parked actions waiting for you, approving one (it is
//! done, and shown as the invocation, transfer or upload would have been)
//! and rejecting one.

use anyhow::Result;

use super::artifacts::{show_invocation, uploaded};
use super::ledger::transfer_line;
use super::{ApprovalsCmd, Printer, Shown};
use crate::client::Client;
use crate::output::{table, Cell};
use fuelhost_api::replies::PendingList;
use fuelhost_api::requests::Reject;
use fuelhost_api::PendingAction;

/// `fuelhost approvals ...`.
pub(super) fn run(client: &Client, out: Printer, cmd: ApprovalsCmd) -> Result<Shown> {
    match cmd {
        ApprovalsCmd::List => out.show(client.get("/v1/approvals", &[])?, pending).map(Shown::from),
        ApprovalsCmd::Approve { id } => {
            let reply = client.call("POST", &format!("/v1/approvals/{id}/approve"))?;
            // What was done, told apart by its shape.
            if reply.json.get("invocation_id").is_some() {
                show_invocation(out, reply)
            } else if reply.json.get("digest").is_some() {
                out.show(reply, uploaded).map(Shown::from)
            } else {
                out.show(reply, transfer_line).map(Shown::from)
            }
        }
        ApprovalsCmd::Reject { id, reason } => {
            let reply = client.send("POST", &format!("/v1/approvals/{id}/reject"), &Reject { reason })?;
            out.show(reply, |a: &PendingAction| {
                format!("rejected {} ({})\n", a.id, Cell::opt_text(a.reason.as_ref()).as_str())
            })
            .map(Shown::from)
        }
    }
}

fn pending(list: &PendingList) -> String {
    let rows = list
        .pending
        .iter()
        .map(|a| {
            vec![
                Cell::text(&a.id),
                Cell::text(&a.kind),
                Cell::text(&a.subject),
                Cell::text(&a.target),
                Cell::text(asked(a)),
                Cell::list(&a.approvers),
                Cell::text(a.state),
                Cell::time(a.expires_at_ms),
            ]
        })
        .collect();
    table(&["id", "kind", "subject", "target", "asked", "approvers", "state", "expires"], rows)
}

/// What a parked transfer or upload would do, for the approver: the amount,
/// or the component's size and digest.
fn asked(a: &PendingAction) -> String {
    let Some(d) = &a.details else { return String::new() };
    match a.kind.as_str() {
        "transfer" => format!("{} {}", d["amount"], d["asset"].as_str().unwrap_or_default()),
        "upload" => format!(
            "{} sha256 {}",
            Cell::bytes(d["size"].as_u64().unwrap_or(0)).as_str(),
            d["sha256"].as_str().unwrap_or_default().get(..12).unwrap_or_default()
        ),
        _ => String::new(),
    }
}
