//! Changes other hosts made to what a host keeps in memory (rules,
//! plugins, artifacts, memberships, heartbeats): a connection of its own
//! `LISTEN`s on [`CHANNEL`](crate::store::CHANNEL), where every store
//! write sends a notice in its transaction (`fuelhost_store::Tx::notify`),
//! delivered only once it commits. Each notice from another pool is handed
//! to the host as a [`Change`]; after the connection was lost (a database
//! restart), notices sent meanwhile are gone, so the host is told
//! [`Change::Missed`] once it listens again, and reloads everything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fuelhost_ledger::LedgerError;
use postgres::fallible_iterator::FallibleIterator;

use crate::connect::Database;
use crate::store::CHANNEL;

/// What another host changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// `key` of `topic` (a plugin's name, an artifact's id, ...; empty for
    /// the whole topic).
    One {
        /// What kind of thing changed.
        topic: String,
        /// Which one.
        key: String,
    },
    /// Notices may have been lost: reload everything kept.
    Missed,
}

/// The listening thread; it stops when this is dropped.
#[derive(Debug)]
pub struct Listener {
    stop: Arc<AtomicBool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// How often the thread looks whether it should stop.
const POLL: Duration = Duration::from_millis(200);

/// After this long without a notice, the listening connection is asked a
/// question (`SELECT 1`): one the server lost without closing it (a
/// database that was restarted behind a proxy, a network partition) then
/// fails and is made again, rather than waiting in silence for notices
/// that will never come.
const PROBE_AFTER: Duration = Duration::from_secs(5);

/// The most notices handed on from one read: more waiting than this means
/// this host fell behind, and one [`Change::Missed`] (reload everything)
/// costs less than applying them one by one.
const MOST_AT_ONCE: usize = 4_096;

impl Database {
    /// Listen for other hosts' changes and hand each to `on`, from a thread
    /// of its own, until the returned [`Listener`] is dropped. The first
    /// connection is made before this returns (so a change committed after
    /// it is never missed); a lost one is made again with backoff (up to
    /// 5 s between tries), then `on(Change::Missed)`.
    pub fn listen(&self, mut on: impl FnMut(Change) + Send + 'static) -> Result<Listener, LedgerError> {
        let mut client = self.subscribe()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (db, stopped) = (self.clone(), stop.clone());
        std::thread::Builder::new()
            .name("fuelhost-pg-changes".into())
            .spawn(move || {
                let mut backoff = Duration::from_millis(100);
                loop {
                    db.deliver(&mut client, &stopped, &mut on);
                    if stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    tracing::warn!(database = %db.url(), "lost the connection that hears other hosts' changes; reconnecting");
                    client = loop {
                        std::thread::sleep(backoff);
                        if stopped.load(Ordering::SeqCst) {
                            return;
                        }
                        match db.subscribe() {
                            Ok(c) => break c,
                            Err(_) => backoff = (backoff * 2).min(Duration::from_secs(5)),
                        }
                    };
                    backoff = Duration::from_millis(100);
                    on(Change::Missed);
                }
            })
            .map_err(|e| LedgerError::Storage(format!("starting the change listener: {e}")))?;
        Ok(Listener { stop })
    }

    /// A connection listening on the channel, with TCP keepalives that
    /// find a silent, dead peer within about 20 s.
    fn subscribe(&self) -> Result<postgres::Client, LedgerError> {
        let mut client = self.connect_listening()?;
        client.batch_execute(&format!("LISTEN {CHANNEL}")).map_err(|e| self.failed(e))?;
        Ok(client)
    }

    /// Hand notices to `on` until the connection fails or `stop` is set.
    /// Every notice waiting is read before any is handed on, and each
    /// change named twice or more is handed on once (a task that moved ten
    /// times is read again once).
    fn deliver(&self, client: &mut postgres::Client, stop: &AtomicBool, on: &mut impl FnMut(Change)) {
        let mut quiet = Duration::ZERO;
        while !stop.load(Ordering::SeqCst) {
            let mut heard: Vec<postgres::Notification> = Vec::new();
            let mut notices = client.notifications();
            let mut missed = false;
            let first = notices.timeout_iter(POLL).next();
            match first {
                Ok(None) => {}
                Ok(Some(n)) => {
                    heard.push(n);
                    // Whatever else has arrived, without waiting.
                    let mut rest = notices.iter();
                    loop {
                        match rest.next() {
                            Ok(Some(n)) => heard.push(n),
                            Ok(None) => break,
                            Err(e) => {
                                tracing::debug!(error = %e, "the change listener's connection failed");
                                return;
                            }
                        }
                        if heard.len() > MOST_AT_ONCE {
                            missed = true;
                            break;
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "the change listener's connection failed");
                    return;
                }
            }
            let mut batch: Vec<Change> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for n in &heard {
                let mut parts = n.payload().splitn(3, ' ');
                let (origin, topic, key) = (parts.next(), parts.next(), parts.next());
                if let (Some(origin), Some(topic)) = (origin, topic) {
                    if origin != self.origin() {
                        let change = Change::One { topic: topic.to_string(), key: key.unwrap_or("").to_string() };
                        if seen.insert(change.clone()) {
                            batch.push(change);
                        }
                    }
                }
            }
            drop(notices);
            if missed {
                on(Change::Missed);
            } else if heard.is_empty() {
                quiet += POLL;
                if quiet >= PROBE_AFTER {
                    quiet = Duration::ZERO;
                    if let Err(e) = client.batch_execute("SELECT 1") {
                        tracing::debug!(error = %e, "the change listener's connection did not answer");
                        return;
                    }
                }
            } else {
                quiet = Duration::ZERO;
                batch.into_iter().for_each(&mut *on);
            }
            if client.is_closed() {
                return;
            }
        }
    }
}
