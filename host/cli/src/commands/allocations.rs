//! Allocations: requesting one from a JSON file, listing and showing them
//! with their quota usage, and their lifecycle (approve, activate,
//! extend, revoke).

use anyhow::Result;

use super::input::read_json;
use super::{AllocationsCmd, Printer};
use crate::client::Client;
use crate::output::{record, table, Cell};
use fuelhost_api::replies::AllocationList;
use fuelhost_api::requests::{Extend, NewAllocation, Revoke};
use fuelhost_api::Allocation;

/// `fuelhost allocations ...`.
pub(super) fn run(client: &Client, out: Printer, cmd: AllocationsCmd) -> Result<String> {
    let reply = match cmd {
        AllocationsCmd::List { agent } => {
            return out.show(client.get("/v1/allocations", &[("agent", agent)])?, list);
        }
        AllocationsCmd::Show { id } => client.get(&format!("/v1/allocations/{id}"), &[])?,
        AllocationsCmd::Request { file } => {
            let body: NewAllocation = read_json(&file, "an allocation request")?;
            client.send("POST", "/v1/allocations", &body)?
        }
        AllocationsCmd::Approve { id } => client.call("POST", &format!("/v1/allocations/{id}/approve"))?,
        AllocationsCmd::Activate { id } => client.call("POST", &format!("/v1/allocations/{id}/activate"))?,
        AllocationsCmd::Extend { id, additional_ms } => {
            client.send("POST", &format!("/v1/allocations/{id}/extend"), &Extend { additional_ms })?
        }
        AllocationsCmd::Revoke { id, reason } => {
            client.send("POST", &format!("/v1/allocations/{id}/revoke"), &Revoke { reason })?
        }
    };
    out.show(reply, allocation)
}

fn list(list: &AllocationList) -> String {
    let rows = list
        .allocations
        .iter()
        .map(|a| {
            vec![
                Cell::text(&a.id),
                Cell::text(&a.agent),
                Cell::text(a.status.as_str()),
                Cell::num(a.priority),
                Cell::opt_time(a.expires_at_ms),
            ]
        })
        .collect();
    table(&["id", "agent", "status", "priority", "expires"], rows)
}

/// One allocation, then its quotas and their use this period.
fn allocation(a: &Allocation) -> String {
    let mut out = record(&[
        ("id", Cell::text(&a.id)),
        ("agent", Cell::text(&a.agent)),
        ("status", Cell::text(a.status.as_str())),
        ("priority", Cell::num(a.priority)),
        ("activated", Cell::opt_time(a.activated_at_ms)),
        ("expires", Cell::opt_time(a.expires_at_ms)),
    ]);
    let rows = a
        .quotas
        .iter()
        .map(|q| {
            vec![
                Cell::text(q.resource.as_str()),
                Cell::num(q.quota),
                Cell::num(q.carried),
                Cell::num(q.used),
                Cell::num(q.held),
            ]
        })
        .collect();
    out.push_str(&table(&["resource", "quota", "carried", "used", "held"], rows));
    out
}
