//! Approvals: the parked actions waiting for you, approving one (it runs,
//! and its report is shown as a call's) and rejecting one.

use anyhow::Result;

use super::artifacts::show_invocation;
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
            show_invocation(out, client.call("POST", &format!("/v1/approvals/{id}/approve"))?)
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
                Cell::list(&a.approvers),
                Cell::text(a.state),
                Cell::time(a.expires_at_ms),
            ]
        })
        .collect();
    table(&["id", "kind", "subject", "target", "approvers", "state", "expires"], rows)
}
