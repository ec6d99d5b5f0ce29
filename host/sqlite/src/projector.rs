//! The projector: the settlement journal moved into the tables (see
//! `projection`) in a durable transaction of its own, on demand or, on a
//! thread of its own, when it is due.

use std::cell::RefCell;
use std::sync::Weak;
use std::time::Duration;

use crate::database::Database;
use crate::hot::Hot;
use crate::projection::{project_in, PROJECT_AFTER, PROJECT_AT};
use fuelhost_ledger::LedgerError;

/// How often the projector looks at the journal.
const LOOK_EVERY: Duration = Duration::from_millis(2);

/// How long the projector waits after a projection failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Project every journaled record now, in a durable transaction of its
/// own; returns how many moved. The charges kept in memory are taken
/// under the connection lock, as the tables take them, and come back if
/// the transaction does not commit.
pub(crate) fn project_journal(db: &Database, hot: &Hot) -> Result<usize, LedgerError> {
    let taken = RefCell::new(None);
    db.durable_then(
        |tx| {
            *taken.borrow_mut() = Some(hot.take_journal());
            project_in(tx)
        },
        |_, committed| {
            if let (Some(t), false) = (taken.borrow_mut().take(), committed) {
                hot.restore_journal(t);
            }
            hot.transaction_ended();
        },
    )
}

/// The projector's loop: every [`LOOK_EVERY`], project if [`PROJECT_AT`]
/// records wait or the oldest has waited [`PROJECT_AFTER`]. Ends when the
/// ledger is gone.
pub(crate) fn project_when_due(db: &Weak<Database>, hot: &Weak<Hot>) {
    loop {
        std::thread::sleep(LOOK_EVERY);
        let Some(hot) = hot.upgrade() else { return };
        let (waiting, since) = hot.journal_waiting();
        if waiting < PROJECT_AT && since.is_none_or(|t| t.elapsed() < PROJECT_AFTER) {
            continue;
        }
        let Some(db) = db.upgrade() else { return };
        if let Err(e) = project_journal(&db, &hot) {
            tracing::warn!(error = %e, "projecting the settlement journal failed; retrying in a second");
            drop(db);
            std::thread::sleep(RETRY_AFTER);
        }
    }
}
