//! Which tenant and workspace each agent belongs to. Policy rules can be
//! scoped to a tenant, a workspace or an agent; the host stamps the acting
//! agent's tenant (the action's `tenant`) and workspace (its `workspace`
//! attribute) on every action it puts to the policy chain, so a guest can
//! never claim another tenant's rules.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rusqlite::params;

use crate::bindings::{Action, Attribute};
use fuelhost_sqlite::{exec, Database};

/// An agent's place in the organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// Its tenant, if any.
    pub tenant: Option<String>,
    /// Its workspace within the tenant, if any.
    pub workspace: Option<String>,
}

/// The membership table, with a copy in memory: every action put to the
/// policy chain reads its subject's membership, and reading it from the
/// database took the connection that settlements wait for.
pub struct Memberships {
    db: Arc<Database>,
    /// Every agent's membership that was ever set; `None` until loaded.
    /// Lock order: the database connection first, then this.
    cache: RwLock<Option<HashMap<String, Membership>>>,
}

impl Memberships {
    /// Memberships stored in `db`.
    pub fn new(db: Arc<Database>) -> Memberships {
        Memberships { db, cache: RwLock::new(None) }
    }

    /// Set an agent's tenant and workspace (a workspace needs a tenant).
    pub fn set(&self, agent: &str, m: &Membership) -> rusqlite::Result<()> {
        let conn = self.db.lock();
        exec(
            &conn,
            "INSERT INTO agent_scopes (agent, tenant, workspace) VALUES (?1, ?2, ?3)
             ON CONFLICT (agent) DO UPDATE SET tenant = excluded.tenant, workspace = excluded.workspace",
            params![agent, m.tenant, m.workspace],
        )?;
        // Still under the connection: no other write comes in between.
        if let Some(cache) = self.cache.write().unwrap_or_else(|p| p.into_inner()).as_mut() {
            cache.insert(agent.to_string(), m.clone());
        }
        Ok(())
    }

    /// An agent's membership (empty when never set).
    pub fn get(&self, agent: &str) -> rusqlite::Result<Membership> {
        if let Some(cache) = self.cache.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Ok(cache.get(agent).cloned().unwrap_or_default());
        }
        let conn = self.db.read();
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.is_none() {
            let mut stmt = conn.prepare("SELECT agent, tenant, workspace FROM agent_scopes")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, Membership { tenant: r.get(1)?, workspace: r.get(2)? }))
            })?;
            *cache = Some(rows.collect::<rusqlite::Result<_>>()?);
        }
        Ok(cache.as_ref().and_then(|c| c.get(agent).cloned()).unwrap_or_default())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A membership set after the copy in memory was loaded is what the
    /// next action sees, and what the database keeps.
    #[test]
    fn a_membership_set_after_loading_is_seen_at_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::open(&dir.path().join("m.db"), fuelhost_sqlite::Durability::Full).unwrap());
        db.durable(|c| exec(c, "INSERT INTO accounts (id, created_ms) VALUES ('bob', 0)", [])).unwrap();
        let memberships = Memberships::new(db.clone());
        assert_eq!(memberships.get("bob").unwrap(), Membership::default());
        let acme = Membership { tenant: Some("acme".into()), workspace: Some("research".into()) };
        memberships.set("bob", &acme).unwrap();
        assert_eq!(memberships.get("bob").unwrap(), acme);
        assert_eq!(Memberships::new(db).get("bob").unwrap(), acme);
    }
}
