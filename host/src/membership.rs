//! Which tenant and workspace each agent belongs to. Policy rules can be
//! scoped to a tenant, a workspace or an agent; the host stamps the acting
//! agent's tenant (the action's `tenant`) and workspace (its `workspace`
//! attribute) on every action it puts to the policy chain, so a guest can
//! never claim another tenant's rules.

use std::sync::Arc;

use rusqlite::{params, OptionalExtension};

use crate::bindings::{Action, Attribute};
use crate::db::{exec, one, Database};

/// An agent's place in the organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// Its tenant, if any.
    pub tenant: Option<String>,
    /// Its workspace within the tenant, if any.
    pub workspace: Option<String>,
}

/// The membership table.
pub struct Memberships {
    db: Arc<Database>,
}

impl Memberships {
    /// Memberships stored in `db`.
    pub fn new(db: Arc<Database>) -> Memberships {
        Memberships { db }
    }

    /// Set an agent's tenant and workspace (a workspace needs a tenant).
    pub fn set(&self, agent: &str, m: &Membership) -> rusqlite::Result<()> {
        exec(
            &self.db.lock(),
            "INSERT INTO agent_scopes (agent, tenant, workspace) VALUES (?1, ?2, ?3)
             ON CONFLICT (agent) DO UPDATE SET tenant = excluded.tenant, workspace = excluded.workspace",
            params![agent, m.tenant, m.workspace],
        )?;
        Ok(())
    }

    /// An agent's membership (empty when never set).
    pub fn get(&self, agent: &str) -> rusqlite::Result<Membership> {
        Ok(one(&self.db.read(), "SELECT tenant, workspace FROM agent_scopes WHERE agent = ?1", [agent], |r| {
            Ok(Membership { tenant: r.get(0)?, workspace: r.get(1)? })
        })
        .optional()?
        .unwrap_or_default())
    }

    /// Stamp `action` with its subject's tenant and workspace, replacing
    /// whatever it claimed.
    pub fn stamp(&self, action: &mut Action) {
        let m = self.get(&action.subject).unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading an agent's membership failed; treating it as none");
            Membership::default()
        });
        action.tenant = m.tenant;
        action.attributes.retain(|a| a.key != "workspace");
        if let Some(ws) = m.workspace {
            action.attributes.push(Attribute { key: "workspace".into(), value: ws });
        }
    }
}
