//! Host leases: each host (each [`crate::PgLedger`] opened) holds a lease
//! in `host_leases`, renewed by a background thread, on a connection of
//! its own, every third of its length while a clone of the ledger lives. A reservation names its
//! host; another host aborts it only once that host's lease has run out,
//! so a live host's calls are never taken from under it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use fuelhost_ledger::LedgerError;

use crate::connect::Database;

/// One host run's lease.
#[derive(Debug)]
pub(crate) struct Lease {
    /// The run's id: unique per process and open.
    pub host: String,
    /// The host's name, the same across its restarts: at open, reservations
    /// of earlier runs of this name are taken over at once.
    pub name: String,
    /// How long a renewal lasts.
    pub length: Duration,
}

/// The database's clock, in Unix ms (every lease is read and written by
/// it, so hosts' clocks may disagree).
pub(crate) const DB_NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

impl Lease {
    /// Take a lease for a new host id and keep it renewed while the
    /// returned `Arc` (held by every clone of the ledger) lives.
    pub fn take(db: &Database, name: &str, length: Duration) -> Result<Arc<Lease>, LedgerError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let host = format!("{name}-{}-{:x}", std::process::id(), nanos);
        let lease = Arc::new(Lease { host, name: name.to_string(), length });
        lease.renew(db)?;
        let (weak, db) = (Arc::downgrade(&lease), db.clone());
        std::thread::Builder::new()
            .name("fuelhost-pg-lease".into())
            .spawn(move || renew_while_alive(&weak, &db))
            .map_err(|e| LedgerError::Storage(format!("starting the lease thread: {e}")))?;
        Ok(lease)
    }

    /// Extend it to a full length from now.
    pub fn renew(&self, db: &Database) -> Result<(), LedgerError> {
        let mut client = db.connect_alone()?;
        self.renew_on(&mut client, db)
    }

    /// [`Lease::renew`] on `client`, the lease's own connection: a pool
    /// busy with calls never lets a lease lapse.
    fn renew_on(&self, client: &mut postgres::Client, db: &Database) -> Result<(), LedgerError> {
        let length = self.length.as_millis().min(i64::MAX as u128) as i64;
        client
            .execute(
                &format!(
                    "INSERT INTO host_leases (host, name, expires_ms) VALUES ($1, $2, {DB_NOW_MS} + $3)
                     ON CONFLICT (host) DO UPDATE SET expires_ms = EXCLUDED.expires_ms"
                ),
                &[&self.host, &self.name, &length],
            )
            .map_err(|e| db.failed(e))?;
        Ok(())
    }
}

fn renew_while_alive(lease: &Weak<Lease>, db: &Database) {
    let mut client: Option<postgres::Client> = None;
    loop {
        let Some(length) = lease.upgrade().map(|l| l.length) else { return };
        std::thread::sleep(length / 3);
        let Some(lease) = lease.upgrade() else { return };
        if client.as_ref().is_none_or(postgres::Client::is_closed) {
            client = db.connect_alone().ok();
        }
        let renewed = match client.as_mut() {
            Some(c) => lease.renew_on(c, db),
            None => Err(LedgerError::Storage("no connection for the lease".into())),
        };
        if let Err(e) = renewed {
            // The database may be restarting: the next renewal tries again,
            // on a new connection, well before the lease runs out.
            client = None;
            tracing::warn!(host = %lease.host, error = %e, "renewing the host lease failed");
        }
    }
}
