//! Which tenant and workspace each agent belongs to. Policy rules can be
//! scoped to a tenant, a workspace or an agent; the host stamps the acting
//! agent's tenant (the action's `tenant`) and workspace (its `workspace`
//! attribute) on every action it puts to the policy chain, so a guest can
//! never claim another tenant's rules.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::bindings::{Action, Attribute};
use fuelhost_store::{self as store, params, Commit, Sql, StoreError};

/// The topic of changes to memberships (see `fuelhost_store::Tx::notify`).
pub(crate) const TOPIC: &str = "memberships";

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
    db: Arc<dyn Sql>,
    /// Every agent's membership that was ever set; `None` until loaded
    /// (and again when another host changed one, see [`Memberships::forget`]).
    cache: RwLock<Option<HashMap<String, Membership>>>,
    /// Bumped by every [`Memberships::forget`], so a load that began
    /// before a change does not keep what it read.
    generation: AtomicU64,
}

impl Memberships {
    /// Memberships stored in `db`.
    pub fn new(db: Arc<dyn Sql>) -> Memberships {
        Memberships { db, cache: RwLock::new(None), generation: AtomicU64::new(0) }
    }

    /// Set an agent's tenant and workspace (a workspace needs a tenant).
    pub fn set(&self, agent: &str, m: &Membership) -> Result<(), StoreError> {
        store::write(&*self.db, Commit::Durable, |tx| {
            tx.execute(
                "INSERT INTO agent_scopes (agent, tenant, workspace) VALUES (?1, ?2, ?3)
                 ON CONFLICT (agent) DO UPDATE SET tenant = excluded.tenant, workspace = excluded.workspace",
                params![agent, &m.tenant, &m.workspace],
            )?;
            tx.notify(TOPIC, agent)
        })?;
        self.forget();
        Ok(())
    }

    /// Drop the copy in memory: the next read loads it again (another
    /// host changed a membership).
    pub fn forget(&self) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        *cache = None;
    }

    /// An agent's membership (empty when never set).
    pub fn get(&self, agent: &str) -> Result<Membership, StoreError> {
        if let Some(cache) = self.cache.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Ok(cache.get(agent).cloned().unwrap_or_default());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let all: HashMap<String, Membership> = store::read(&*self.db, |tx| {
            tx.query("SELECT agent, tenant, workspace FROM agent_scopes", params![])?
                .iter()
                .map(|r| Ok((r.get(0)?, Membership { tenant: r.get(1)?, workspace: r.get(2)? })))
                .collect::<Result<_, StoreError>>()
        })?;
        let found = all.get(agent).cloned().unwrap_or_default();
        // Kept only if nothing changed while it was read.
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            *cache = Some(all);
        }
        Ok(found)
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
        let db = Arc::new(
            fuelhost_sqlite::Database::open(&dir.path().join("m.db"), fuelhost_sqlite::Durability::Full).unwrap(),
        );
        db.durable(|c| fuelhost_sqlite::exec(c, "INSERT INTO accounts (id, created_ms) VALUES ('bob', 0)", []))
            .unwrap();
        let memberships = Memberships::new(db.clone());
        assert_eq!(memberships.get("bob").unwrap(), Membership::default());
        let acme = Membership { tenant: Some("acme".into()), workspace: Some("research".into()) };
        memberships.set("bob", &acme).unwrap();
        assert_eq!(memberships.get("bob").unwrap(), acme);
        assert_eq!(Memberships::new(db).get("bob").unwrap(), acme);
    }
}
