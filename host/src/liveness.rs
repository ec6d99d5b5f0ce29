//! Agent liveness: an agent running a loop outside the host reports
//! heartbeats, each saying how long it stays good for (its TTL) and,
//! optionally, what it is doing. An agent whose last heartbeat is older
//! than its TTL is unhealthy; one that never sent any is unknown.
//!
//! The latest heartbeat of each agent is kept in memory and in the
//! `agent_heartbeats` table (a deferred write: it rides on the next
//! commit), so health is right after a restart too: an agent that went
//! quiet while the host was down is unhealthy once its TTL has passed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use fuelhost_ledger::Clock;
use fuelhost_store::{self as store, params, Commit, Row, Sql, StoreError};

/// The topic of heartbeats (see `fuelhost_store::Tx::notify`): the key is
/// the agent.
pub(crate) const TOPIC: &str = "heartbeats";

/// How long a heartbeat stays good for when it does not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// The longest TTL a heartbeat may ask for.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest status an agent may report, bytes.
const MAX_STATUS: usize = 256;

/// Whether an agent is alive, by its heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Its last heartbeat is within its TTL.
    Healthy,
    /// Its last heartbeat is older than its TTL.
    Unhealthy,
    /// It never sent a heartbeat.
    Unknown,
}

/// An agent's health and its last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AgentHealth {
    /// The agent.
    pub agent: String,
    /// Healthy, unhealthy or unknown.
    pub health: Health,
    /// When it last reported (Unix ms).
    pub last_heartbeat_ms: Option<i64>,
    /// How long that heartbeat was good for, ms.
    pub ttl_ms: Option<u64>,
    /// What it said it was doing.
    pub status: Option<String>,
}

#[derive(Debug, Clone)]
struct Beat {
    at_ms: i64,
    ttl_ms: u64,
    status: Option<String>,
}

/// A heartbeat that cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    /// The TTL or status is out of bounds.
    #[error("{0}")]
    Invalid(String),
    /// The database failed; nothing changed.
    #[error("storing the heartbeat: {0}")]
    Storage(#[from] StoreError),
}

/// Every agent's latest heartbeat.
pub(crate) struct Liveness {
    db: Arc<dyn Sql>,
    clock: Arc<dyn Clock>,
    beats: Mutex<HashMap<String, Beat>>,
}

impl Liveness {
    /// The heartbeats recorded in `db`.
    pub(crate) fn open(db: Arc<dyn Sql>, clock: Arc<dyn Clock>) -> Result<Liveness, StoreError> {
        let beats = store::read(&*db, |tx| {
            tx.query("SELECT agent, at_ms, ttl_ms, status FROM agent_heartbeats", params![])?
                .iter()
                .map(|r| Ok((r.get::<String>(0)?, beat(r)?)))
                .collect::<Result<HashMap<_, _>, StoreError>>()
        })?;
        Ok(Liveness { db, clock, beats: Mutex::new(beats) })
    }

    /// Read every heartbeat again (another host's may have been missed),
    /// keeping the newer of each.
    pub(crate) fn reload_all(&self) -> Result<(), StoreError> {
        let stored = store::read(&*self.db, |tx| {
            tx.query("SELECT agent, at_ms, ttl_ms, status FROM agent_heartbeats", params![])?
                .iter()
                .map(|r| Ok((r.get::<String>(0)?, beat(r)?)))
                .collect::<Result<Vec<_>, StoreError>>()
        })?;
        let mut beats = self.lock();
        for (agent, b) in stored {
            if beats.get(&agent).is_none_or(|mine| mine.at_ms <= b.at_ms) {
                beats.insert(agent, b);
            }
        }
        Ok(())
    }

    /// Read `agent`'s latest heartbeat again (another host took it).
    pub(crate) fn reload(&self, agent: &str) -> Result<(), StoreError> {
        let found = store::read(&*self.db, |tx| {
            tx.query_opt("SELECT agent, at_ms, ttl_ms, status FROM agent_heartbeats WHERE agent = ?1", params![agent])?
                .map(|r| beat(&r))
                .transpose()
        })?;
        let mut beats = self.lock();
        match found {
            // Never older than what this host took itself.
            Some(b) if beats.get(agent).is_none_or(|mine| mine.at_ms <= b.at_ms) => {
                beats.insert(agent.to_string(), b);
            }
            Some(_) => {}
            None => {
                beats.remove(agent);
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Beat>> {
        self.beats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `agent` is alive now, for `ttl` (default [`DEFAULT_TTL`]), doing
    /// `status`.
    pub(crate) fn beat(
        &self,
        agent: &str,
        ttl: Option<Duration>,
        status: Option<String>,
    ) -> Result<AgentHealth, HeartbeatError> {
        let ttl = ttl.unwrap_or(DEFAULT_TTL);
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(HeartbeatError::Invalid(format!(
                "a heartbeat's ttl must be between 1 ms and {} s, not {} ms",
                MAX_TTL.as_secs(),
                ttl.as_millis()
            )));
        }
        if status.as_ref().is_some_and(|s| s.chars().count() > MAX_STATUS) {
            return Err(HeartbeatError::Invalid(format!("a heartbeat's status is at most {MAX_STATUS} characters")));
        }
        let beat = Beat { at_ms: self.clock.now_ms(), ttl_ms: ttl.as_millis() as u64, status };
        store::write(&*self.db, Commit::Deferred, |tx| {
            tx.execute(
                "INSERT INTO agent_heartbeats (agent, at_ms, ttl_ms, status) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (agent) DO UPDATE SET at_ms = excluded.at_ms, ttl_ms = excluded.ttl_ms,
                     status = excluded.status",
                params![agent, beat.at_ms, beat.ttl_ms, &beat.status],
            )?;
            tx.notify(TOPIC, agent)
        })?;
        self.lock().insert(agent.to_string(), beat);
        Ok(self.health(agent))
    }

    /// `agent`'s health now.
    pub(crate) fn health(&self, agent: &str) -> AgentHealth {
        let now = self.clock.now_ms();
        let beats = self.lock();
        describe(agent, beats.get(agent), now)
    }

    /// Every agent that ever sent a heartbeat, by name.
    pub(crate) fn all(&self) -> Vec<AgentHealth> {
        let now = self.clock.now_ms();
        let beats = self.lock();
        let mut out: Vec<AgentHealth> = beats.iter().map(|(a, b)| describe(a, Some(b), now)).collect();
        out.sort_by(|a, b| a.agent.cmp(&b.agent));
        out
    }
}

/// A heartbeat row (`agent, at_ms, ttl_ms, status`) as a [`Beat`].
fn beat(r: &Row) -> Result<Beat, StoreError> {
    Ok(Beat { at_ms: r.get(1)?, ttl_ms: r.get(2)?, status: r.get(3)? })
}

fn describe(agent: &str, beat: Option<&Beat>, now_ms: i64) -> AgentHealth {
    match beat {
        None => AgentHealth {
            agent: agent.to_string(),
            health: Health::Unknown,
            last_heartbeat_ms: None,
            ttl_ms: None,
            status: None,
        },
        Some(b) => AgentHealth {
            agent: agent.to_string(),
            health: if now_ms <= b.at_ms.saturating_add(b.ttl_ms as i64) { Health::Healthy } else { Health::Unhealthy },
            last_heartbeat_ms: Some(b.at_ms),
            ttl_ms: Some(b.ttl_ms),
            status: b.status.clone(),
        },
    }
}
