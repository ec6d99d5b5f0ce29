//! The settlement journal and its projection.
//!
//! A fast-path call (no allocation, no sponsor grant, no guest transfers)
//! settles by appending **one compact row** to `settlement_journal`: its
//! usage record, at its position in the ledger's order, in a table with
//! no index but its key. Its balances are not written then: the amounts it
//! moved are kept in memory (`hot`'s journaled charges) and added to every
//! balance read, as fast holds are. So a settlement's commit writes one
//! page (the journal's last) instead of the record, its five indexes and
//! the balance rows.
//!
//! The **projection** moves the journal into the tables the rest of the
//! ledger reads, in one transaction: every journaled amount added to
//! `balances`, every row copied to `usage_records` (at the same position,
//! flagged as carrying its charges, see `journal`), the journal emptied.
//! Its pages are shared by the hundreds of records it moves. It runs:
//!
//! - on a thread of its own (`projector`), when [`PROJECT_AT`] records
//!   wait or the oldest has waited [`PROJECT_AFTER`];
//! - before any ledger operation that reads the projected tables (listings,
//!   statistics, a record or transfer by id) or writes balances by another
//!   path (transfers, persisted reservations, settlements that are not
//!   journaled): those see the ledger as if every record had been written
//!   in place;
//! - when the database opens, for what a crash left ([`project`] is plain
//!   SQL, so recovery needs nothing from memory).
//!
//! A journal row also carries the policy decision that admitted the call
//! (`audit_*`, NULL when it was recorded on its own): the projection writes
//! those into the audit log, many to a page, where a call used to write its
//! admission's audit row, and its index entry, in its own commit.
//!
//! Exactly once: a journaled id is known in memory until projected (a
//! reservation or a replay under it sees it), and after that by its usage
//! record, as before. Durable before acknowledged: the journal row commits
//! (and, with full durability, is fsynced) before the call returns.

use std::time::Duration;

use rusqlite::Connection;

use crate::sql::exec;
use crate::storage;
use fuelhost_ledger::LedgerError;

/// Project when this many records wait.
pub(crate) const PROJECT_AT: usize = 512;

/// Project when the oldest record has waited this long.
pub(crate) const PROJECT_AFTER: Duration = Duration::from_millis(20);

/// The definitions of the columns a usage record and a journal row share
/// after its id, written once for both tables (`usage_records` in
/// `schema`).
macro_rules! record_column_defs {
    () => {
        "
    artifact          TEXT NOT NULL,
    caller            TEXT NOT NULL,
    owner             TEXT NOT NULL,
    charged_to        TEXT NOT NULL,
    resource_policy   TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    fuel              INTEGER NOT NULL,
    memory_peak_bytes INTEGER NOT NULL,
    disk_bytes        INTEGER NOT NULL,
    wall_time_ns      INTEGER NOT NULL,
    cpu_time_ns       INTEGER NOT NULL,
    cost_usd_micros   INTEGER NOT NULL,
    price_paid        INTEGER NOT NULL,
    output            BLOB NOT NULL,
    error             TEXT,
    settled_ms        INTEGER NOT NULL"
    };
}
pub(crate) use record_column_defs;

/// The journal: a usage record's columns (all of them but `postings`,
/// which every journaled record has), keyed by its position, and the
/// admission's audit record ([`AUDIT_COLUMNS`]).
pub(crate) const TABLE: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS settlement_journal (
    seq               INTEGER PRIMARY KEY,
    invocation_id     TEXT NOT NULL,",
    record_column_defs!(),
    ",
    audit_at_ms       INTEGER,
    audit_decision    TEXT,
    audit_decided_by  TEXT,
    audit_reason      TEXT,
    audit_latency_us  INTEGER
);"
);

/// The journal's columns of the admission's audit record, with their
/// types: a journal of an earlier version gains them (`schema`).
pub(crate) const AUDIT_COLUMNS: [(&str, &str); 5] = [
    ("audit_at_ms", "INTEGER"),
    ("audit_decision", "TEXT"),
    ("audit_decided_by", "TEXT"),
    ("audit_reason", "TEXT"),
    ("audit_latency_us", "INTEGER"),
];

/// The columns a usage record and a journal row share, in the order their
/// writes bind them (`settlement`).
macro_rules! record_columns {
    () => {
        "invocation_id, artifact, caller, owner, charged_to, resource_policy, outcome, fuel, memory_peak_bytes, \
         disk_bytes, wall_time_ns, cpu_time_ns, price_paid, cost_usd_micros, output, error, settled_ms, llm_tokens"
    };
}
pub(crate) use record_columns;

/// The balance moves of the journaled charges (price from caller to
/// owner, fuel and disk from the payer to `@consumed`), one row per side.
macro_rules! moves {
    () => {
        "SELECT caller AS account, 'scrip' AS asset, -price_paid AS delta FROM settlement_journal WHERE price_paid > 0
         UNION ALL SELECT owner, 'scrip', price_paid FROM settlement_journal WHERE price_paid > 0
         UNION ALL SELECT charged_to, 'fuel', -fuel FROM settlement_journal WHERE fuel > 0
         UNION ALL SELECT '@consumed', 'fuel', fuel FROM settlement_journal WHERE fuel > 0
         UNION ALL SELECT charged_to, 'disk_bytes', -disk_bytes FROM settlement_journal WHERE disk_bytes > 0
         UNION ALL SELECT '@consumed', 'disk_bytes', disk_bytes FROM settlement_journal WHERE disk_bytes > 0"
    };
}

/// The projection, statement by statement: a balance row for every
/// account and asset moved (an upsert would check the row it inserts,
/// a debit, against the balance's `CHECK` before updating); the moves
/// summed into them; the records copied at their positions; the journal
/// emptied.
const PROJECT: [&str; 5] = [
    concat!(
        "INSERT OR IGNORE INTO balances (account, asset, posted, held) SELECT DISTINCT account, asset, 0, 0 FROM (",
        moves!(),
        ")"
    ),
    concat!(
        "UPDATE balances SET posted = posted + moved.delta FROM (SELECT account, asset, SUM(delta) AS delta FROM (",
        moves!(),
        ") GROUP BY account, asset) AS moved WHERE balances.account = moved.account AND balances.asset = moved.asset"
    ),
    concat!(
        "INSERT INTO usage_records (rowid, ",
        record_columns!(),
        ", postings) SELECT seq, ",
        record_columns!(),
        ", 1 FROM settlement_journal ORDER BY seq"
    ),
    "INSERT INTO audit (at_ms, invocation, kind, subject, target, decision, decided_by, reason, latency_us)
     SELECT audit_at_ms, invocation_id, 'invoke', caller, artifact, audit_decision, audit_decided_by, audit_reason,
            audit_latency_us
       FROM settlement_journal WHERE audit_at_ms IS NOT NULL ORDER BY seq",
    "DELETE FROM settlement_journal",
];

/// Move every journaled record into `balances`, `usage_records` and (its
/// admission) `audit`, inside the caller's transaction; returns how many
/// moved.
pub(crate) fn project(tx: &Connection) -> rusqlite::Result<usize> {
    exec(tx, PROJECT[0], [])?;
    exec(tx, PROJECT[1], [])?;
    let moved = exec(tx, PROJECT[2], [])?;
    exec(tx, PROJECT[3], [])?;
    exec(tx, PROJECT[4], [])?;
    Ok(moved)
}

/// [`project`], for the ledger: its error as the ledger's.
pub(crate) fn project_in(tx: &Connection) -> Result<usize, LedgerError> {
    project(tx).map_err(storage)
}
