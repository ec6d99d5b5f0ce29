//! API keys: bearer tokens, one or more per agent, plus admin keys. Only a
//! SHA-256 of each key is stored; the key itself is shown once, when it is
//! made. The first start of a server on a data directory makes the
//! bootstrap admin key.

use std::io::Read;
use std::sync::Arc;

use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::agent::AgentId;
use crate::db::{exec, now_ms, one, Database};

/// Who a key speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An operator: may use admin routes, acts as no agent.
    Admin,
    /// An agent: acts as itself only.
    Agent(AgentId),
}

/// The key table.
pub struct ApiKeys {
    db: Arc<Database>,
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn new_key() -> std::io::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!("fh_{}", hex::encode(bytes)))
}

impl ApiKeys {
    /// The keys stored in `db`.
    pub fn new(db: Arc<Database>) -> ApiKeys {
        ApiKeys { db }
    }

    /// Make a key for `agent` (`None`: an admin key). Returns the key, the
    /// only time it is ever visible.
    pub fn create(&self, agent: Option<&AgentId>) -> Result<String, String> {
        let key = new_key().map_err(|e| format!("no randomness for a key: {e}"))?;
        exec(
            &self.db.lock(),
            "INSERT INTO api_keys (hash, agent, admin, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![hash(&key), agent.map(AgentId::as_str), agent.is_none(), now_ms()],
        )
        .map_err(|e| e.to_string())?;
        Ok(key)
    }

    /// Whether any admin key exists.
    pub fn has_admin(&self) -> Result<bool, String> {
        one(&self.db.lock(), "SELECT COUNT(*) FROM api_keys WHERE admin = 1 AND revoked = 0", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n > 0)
        .map_err(|e| e.to_string())
    }

    /// Who `key` speaks for, if it is a live key.
    pub fn principal(&self, key: &str) -> Option<Principal> {
        let row: Option<(Option<String>, bool)> = one(
            &self.db.lock(),
            "SELECT agent, admin FROM api_keys WHERE hash = ?1 AND revoked = 0",
            [hash(key)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .ok()
        .flatten();
        match row? {
            (_, true) => Some(Principal::Admin),
            (Some(agent), false) => Some(Principal::Agent(AgentId::trusted(agent))),
            (None, false) => None,
        }
    }
}
