//! Settlements the ledger could not take because its database failed or
//! could not be reached (a PostgreSQL restart, a lost connection): kept
//! and tried again in the background until they are taken, so a call that
//! ran is settled once, with what it consumed, its holds released, and a
//! retry of its id (answered `in progress` meanwhile) finds its report.
//! A host that stops first leaves them to recovery: its next start (or,
//! on a shared database, another host once its lease ran out) settles
//! them as aborted, nothing charged.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use fuelhost_ledger::{Ledger, LedgerError, Settlement};

/// The settlements waiting to be tried again.
#[derive(Default)]
pub(crate) struct Unsettled {
    waiting: Arc<Mutex<Vec<Settlement>>>,
}

/// The longest wait between two tries.
const MOST_BETWEEN: Duration = Duration::from_secs(2);

impl Unsettled {
    /// Keep `s` (which `ledger` refused for its database's sake) and try it
    /// again until `ledger` takes it or is gone.
    pub(crate) fn keep(&self, ledger: &Arc<dyn Ledger>, s: Settlement) {
        let first = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            waiting.push(s);
            waiting.len() == 1
        };
        if !first {
            return;
        }
        let (waiting, ledger) = (self.waiting.clone(), Arc::downgrade(ledger));
        let spawned = std::thread::Builder::new().name("fuelhost-settle-again".into()).spawn(move || {
            retry_until_empty(&waiting, &ledger);
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "starting the settlement retrier failed; the next start settles the calls");
        }
    }
}

impl Unsettled {
    /// Try each waiting settlement once more now (the host is closing);
    /// what the database still refuses is left to recovery, saying so.
    pub(crate) fn settle_now(&self, ledger: &dyn Ledger) {
        let batch = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|p| p.into_inner()));
        for s in batch {
            match ledger.settle(&s) {
                Ok(_) | Err(LedgerError::DuplicateInvocation(_) | LedgerError::NoReservation(_)) => {}
                Err(e) => tracing::error!(
                    invocation = %s.invocation_id, error = %e,
                    "closing with a call unsettled; the next start (or another host) settles it as aborted"
                ),
            }
        }
    }
}

/// Try each waiting settlement again, waiting longer each round the
/// database still refuses, until none is left or the ledger is gone.
fn retry_until_empty(waiting: &Mutex<Vec<Settlement>>, ledger: &Weak<dyn Ledger>) {
    let mut pause = Duration::from_millis(100);
    loop {
        std::thread::sleep(pause);
        let Some(ledger) = ledger.upgrade() else { return };
        let batch = std::mem::take(&mut *waiting.lock().unwrap_or_else(|p| p.into_inner()));
        let mut again = Vec::new();
        for s in batch {
            match ledger.settle(&s) {
                Ok(_) => tracing::info!(invocation = %s.invocation_id, "settled after the database came back"),
                // Settled meanwhile (its first try committed after all), or
                // aborted by recovery: nothing left to do.
                Err(LedgerError::DuplicateInvocation(_) | LedgerError::NoReservation(_)) => {}
                Err(LedgerError::Storage(e)) => {
                    tracing::debug!(invocation = %s.invocation_id, error = %e, "the database still refuses");
                    again.push(s);
                }
                Err(e) => tracing::error!(
                    invocation = %s.invocation_id, error = %e,
                    "a settlement tried again was refused; the next start settles the call as aborted"
                ),
            }
        }
        let mut waiting = waiting.lock().unwrap_or_else(|p| p.into_inner());
        let retried = !again.is_empty();
        waiting.extend(again);
        if waiting.is_empty() {
            return;
        }
        pause = if retried { (pause * 2).min(MOST_BETWEEN) } else { Duration::from_millis(100) };
    }
}
