//! Sponsor grants: making one as your agent, showing one with what it has
//! paid, revoking one.

use anyhow::Result;

use super::input::{agent_id, artifact_ref, id_or_fresh};
use super::{GrantsCmd, Printer};
use crate::client::Client;
use crate::output::{record, Cell};
use fuelhost_api::requests::NewGrant;
use fuelhost_api::SponsorGrantStatus;

/// `fuelhost grants ...`.
pub(super) fn run(client: &Client, out: Printer, cmd: GrantsCmd) -> Result<String> {
    match cmd {
        GrantsCmd::Create { beneficiary, fuel_limit, disk_limit, expires_at_ms, artifacts, id } => {
            let body = NewGrant {
                id: id_or_fresh(id, "grant")?,
                beneficiary: agent_id(beneficiary)?,
                fuel_limit,
                disk_limit,
                expires_at_ms,
                artifacts: artifacts.into_iter().map(artifact_ref).collect::<Result<_>>()?,
            };
            out.show(client.send("POST", "/v1/grants", &body)?, grant)
        }
        GrantsCmd::Show { id } => out.show(client.get(&format!("/v1/grants/{id}"), &[])?, grant),
        GrantsCmd::Revoke { id } => {
            let reply = client.call("DELETE", &format!("/v1/grants/{id}"))?;
            out.show(reply, |s: &SponsorGrantStatus| format!("revoked grant {}\n", s.grant.id))
        }
    }
}

/// A grant as made, then what it has paid.
fn grant(s: &SponsorGrantStatus) -> String {
    let g = &s.grant;
    record(&[
        ("id", Cell::text(&g.id)),
        ("sponsor", Cell::text(&g.sponsor)),
        ("beneficiary", Cell::text(&g.beneficiary)),
        ("fuel limit", Cell::num(g.fuel_limit)),
        ("disk limit", Cell::num(g.disk_limit)),
        ("expires", Cell::opt_time(g.expires_at_ms)),
        ("artifacts", Cell::list(&g.artifacts)),
        ("fuel spent", Cell::num(s.fuel_spent)),
        ("disk spent", Cell::num(s.disk_spent)),
        ("revoked", Cell::text(s.revoked)),
    ])
}
