//! API keys: bearer tokens, one or more per agent, plus admin keys. Only a
//! SHA-256 of each key is stored; the key itself is shown once, when it is
//! made. Each key has a public *key id* (`k_` and the first 12 hex digits
//! of its hash) that names it in listings, logs and revocations without
//! revealing it. The first start of a server on a data directory makes the
//! bootstrap admin key. A revoked key stays listed, with when it was
//! revoked, and authenticates nothing.
//!
//! Live keys are kept in memory once resolved ([`KeyCache`]), so a request
//! is authenticated without a read of the database; a revocation takes its
//! key out at once on its host, and on the others when its notice arrives
//! (as policy changes do, `crate::changes`).

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};

use fuelhost_ledger::now_ms;
use fuelhost_ledger::AgentId;
use fuelhost_store::{self as store, params, Commit, Sql, StoreError};

/// Who a key speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An operator: may use admin routes, acts as no agent.
    Admin,
    /// An agent: acts as itself only.
    Agent(AgentId),
}

/// A live key, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Who it speaks for.
    pub principal: Principal,
    /// Its public id.
    pub key_id: String,
}

/// A key just made: the secret (shown this once) and its public id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedKey {
    /// The bearer token.
    pub key: String,
    /// Its public id.
    pub key_id: String,
}

/// A key as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// Public id (`k_` and 12 hex digits).
    pub key_id: String,
    /// The agent it acts as; `null` for an admin key.
    pub agent: Option<AgentId>,
    /// When it was made, Unix ms.
    pub created_ms: i64,
    /// When it was revoked, Unix ms; `null` while it is live.
    pub revoked_ms: Option<i64>,
}

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The key is revoked (now, or it already was).
    Revoked,
    /// No key has this id.
    Unknown,
    /// Refused: it is the last live admin key, and without one nobody
    /// could create agents or keys again.
    LastAdmin,
}

/// The key table, in the host's database ([`Host::api_keys`](crate::Host::api_keys)).
pub struct ApiKeys {
    db: Arc<dyn Sql>,
    cache: Arc<KeyCache>,
}

/// The topic of a revocation's notice to other hosts (its key: the key id).
pub(crate) const TOPIC: &str = "api_keys";

/// Live keys resolved so far, by hash. Only live keys are kept (an unknown
/// key costs a read each time, and no memory). What a revocation takes out
/// cannot come back by a resolution that read the key before it: each
/// revocation advances `generation`, and a resolution keeps its answer
/// only if no revocation came between its start and its end.
#[derive(Default)]
pub(crate) struct KeyCache {
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    live: HashMap<String, Authenticated>,
    generation: u64,
}

/// Live keys kept at most; past it the cache starts again empty.
const MAX_CACHED_KEYS: usize = 100_000;

impl KeyCache {
    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, hash: &str) -> Option<Authenticated> {
        self.state().live.get(hash).cloned()
    }

    fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Keep `auth` for `hash`, read live when the generation was `seen`.
    fn put(&self, hash: &str, auth: &Authenticated, seen: u64) {
        let mut state = self.state();
        if state.generation != seen {
            return;
        }
        if state.live.len() >= MAX_CACHED_KEYS {
            state.live.clear();
        }
        state.live.insert(hash.to_string(), auth.clone());
    }

    /// Take out the key `key_id` names (revoked here or on another host).
    pub(crate) fn forget(&self, key_id: &str) {
        let mut state = self.state();
        state.generation += 1;
        if let Some(prefix) = hash_prefix(key_id) {
            state.live.retain(|hash, _| !hash.starts_with(prefix));
        }
    }

    /// Take out every key (another host's notices may have been missed).
    pub(crate) fn clear(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.live.clear();
    }
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The public id of the key whose hash is `hash`.
fn key_id(hash: &str) -> String {
    format!("k_{}", &hash[..KEY_ID_HEX])
}

/// Hex digits of the hash in a key id.
const KEY_ID_HEX: usize = 12;

fn new_key() -> std::io::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!("fh_{}", hex::encode(bytes)))
}

/// The hash prefix a key id names, if it is well formed.
fn hash_prefix(key_id: &str) -> Option<&str> {
    key_id
        .strip_prefix("k_")
        .filter(|h| h.len() == KEY_ID_HEX && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

impl ApiKeys {
    /// The keys stored in `db`, live ones kept in `cache`.
    pub(crate) fn new(db: Arc<dyn Sql>, cache: Arc<KeyCache>) -> ApiKeys {
        ApiKeys { db, cache }
    }

    /// Who `key` speaks for, if it is a live key already resolved (no
    /// database read); `None` says to [`ApiKeys::authenticate`] it.
    pub fn authenticate_cached(&self, key: &str) -> Option<Authenticated> {
        self.cache.get(&hash(key))
    }

    /// Make a key for `agent` (`None`: an admin key). Returns the key, the
    /// only time it is ever visible, and its id (unique: a key whose id
    /// would repeat another's is drawn again).
    pub fn create(&self, agent: Option<&AgentId>) -> Result<IssuedKey, String> {
        loop {
            let key = new_key().map_err(|e| format!("no randomness for a key: {e}"))?;
            let hash = hash(&key);
            let made = store::write(&*self.db, Commit::Durable, |tx| {
                let taken: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM api_keys WHERE hash >= ?1 AND hash < ?1 || 'g'",
                        params![&hash[..KEY_ID_HEX]],
                    )?
                    .get(0)?;
                if taken > 0 {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO api_keys (hash, agent, admin, created_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![&hash, agent.map(AgentId::as_str), agent.is_none(), now_ms()],
                )?;
                Ok::<_, StoreError>(true)
            })
            .map_err(|e| e.to_string())?;
            if made {
                return Ok(IssuedKey { key_id: key_id(&hash), key });
            }
        }
    }

    /// Whether any live admin key exists.
    pub fn has_admin(&self) -> Result<bool, String> {
        store::read(&*self.db, |tx| {
            tx.query_one("SELECT COUNT(*) FROM api_keys WHERE admin = 1 AND revoked = 0", params![])?.get::<i64>(0)
        })
        .map(|n| n > 0)
        .map_err(|e: StoreError| e.to_string())
    }

    /// Who `key` speaks for, if it is a live key; `Err` when the database
    /// could not be read (it is not known whether the key is live).
    pub fn authenticate(&self, key: &str) -> Result<Option<Authenticated>, String> {
        let hash = hash(key);
        if let Some(known) = self.cache.get(&hash) {
            return Ok(Some(known));
        }
        let seen = self.cache.generation();
        let row = store::read(&*self.db, |tx| {
            match tx.query_opt("SELECT agent, admin FROM api_keys WHERE hash = ?1 AND revoked = 0", params![&hash])? {
                Some(r) => Ok::<_, StoreError>(Some((r.get::<Option<String>>(0)?, r.get::<bool>(1)?))),
                None => Ok(None),
            }
        })
        .map_err(|e| e.to_string())?;
        let principal = match row {
            None => return Ok(None),
            Some((_, true)) => Principal::Admin,
            Some((Some(agent), false)) => Principal::Agent(AgentId::trusted(agent)),
            Some((None, false)) => return Ok(None),
        };
        let auth = Authenticated { principal, key_id: key_id(&hash) };
        self.cache.put(&hash, &auth, seen);
        Ok(Some(auth))
    }

    /// Keys, live and revoked, in order of their ids: at most `limit`,
    /// after the key `after` (the last id of the previous page).
    pub fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyInfo>, String> {
        // Past every hash of the key `after` names.
        let from = after.and_then(hash_prefix).map_or(String::new(), |p| format!("{p}g"));
        store::read(&*self.db, |tx| {
            let rows = tx.query(
                "SELECT hash, agent, created_ms, revoked FROM api_keys WHERE hash >= ?1 ORDER BY hash LIMIT ?2",
                params![&from, limit.min(10_000)],
            )?;
            rows.iter()
                .map(|r| {
                    let hash: String = r.get(0)?;
                    let revoked: i64 = r.get(3)?;
                    Ok(KeyInfo {
                        key_id: key_id(&hash),
                        agent: r.get::<Option<String>>(1)?.map(AgentId::trusted),
                        created_ms: r.get(2)?,
                        revoked_ms: (revoked != 0).then_some(revoked),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .map_err(|e| e.to_string())
    }

    /// Revoke the key `key_id`, unless it is the last live admin key (one
    /// transaction, so two revocations at once cannot both pass that check).
    pub fn revoke(&self, key_id: &str) -> Result<Revocation, String> {
        let Some(prefix) = hash_prefix(key_id) else {
            return Ok(Revocation::Unknown);
        };
        let done = store::write(&*self.db, Commit::Durable, |tx| {
            let changed = tx.execute(
                "UPDATE api_keys SET revoked = ?2 WHERE hash >= ?1 AND hash < ?1 || 'g' AND revoked = 0
                   AND (admin = 0 OR (SELECT COUNT(*) FROM api_keys WHERE admin = 1 AND revoked = 0) > 1)",
                params![prefix, now_ms().max(1)],
            )?;
            if changed > 0 {
                tx.notify(TOPIC, key_id)?;
                return Ok(Revocation::Revoked);
            }
            let row = tx.query_opt(
                "SELECT admin, revoked FROM api_keys WHERE hash >= ?1 AND hash < ?1 || 'g'",
                params![prefix],
            )?;
            Ok::<_, StoreError>(match row {
                None => Revocation::Unknown,
                Some(r) if r.get::<i64>(1)? != 0 => Revocation::Revoked,
                Some(_) => Revocation::LastAdmin,
            })
        })
        .map_err(|e| e.to_string())?;
        if done == Revocation::Revoked {
            self.cache.forget(key_id);
        }
        Ok(done)
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn a_resolution_that_read_a_key_before_its_revocation_does_not_keep_it() {
        let cache = KeyCache::default();
        let hash = hash("fh_example");
        let auth = Authenticated { principal: Principal::Admin, key_id: key_id(&hash) };
        let seen = cache.generation();
        cache.forget(&key_id(&hash));
        cache.put(&hash, &auth, seen);
        assert_eq!(cache.get(&hash), None, "read before the revocation, kept after it");
        cache.put(&hash, &auth, cache.generation());
        assert_eq!(cache.get(&hash), Some(auth.clone()));
        cache.forget(&auth.key_id);
        assert_eq!(cache.get(&hash), None);
    }
}
