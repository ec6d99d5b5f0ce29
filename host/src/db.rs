//! The embedded database: one SQLite file in WAL mode that holds the ledger,
//! artifact metadata, policy plugins and the audit log. This module owns
//! opening it, its pragmas and its schema; the ledger, the registry and the
//! audit log each own their tables' queries.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS accounts (
    id          TEXT PRIMARY KEY,
    system      INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS balances (
    account TEXT NOT NULL REFERENCES accounts(id),
    asset   TEXT NOT NULL,
    posted  INTEGER NOT NULL DEFAULT 0,
    held    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, asset),
    CHECK (held >= 0),
    CHECK (account GLOB '@*' OR posted >= held)
);
CREATE TABLE IF NOT EXISTS transfers (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    debit       TEXT NOT NULL REFERENCES accounts(id),
    credit      TEXT NOT NULL REFERENCES accounts(id),
    asset       TEXT NOT NULL,
    amount      INTEGER NOT NULL CHECK (amount > 0),
    kind        TEXT NOT NULL,
    memo        TEXT NOT NULL,
    invocation  TEXT,
    created_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS transfers_by_debit ON transfers(debit);
CREATE INDEX IF NOT EXISTS transfers_by_credit ON transfers(credit);
CREATE TABLE IF NOT EXISTS holds (
    id            TEXT PRIMARY KEY,
    invocation    TEXT NOT NULL,
    debit         TEXT NOT NULL REFERENCES accounts(id),
    credit        TEXT NOT NULL REFERENCES accounts(id),
    asset         TEXT NOT NULL,
    amount        INTEGER NOT NULL CHECK (amount > 0),
    kind          TEXT NOT NULL,
    memo          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'posted', 'voided')),
    posted_amount INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS holds_by_invocation ON holds(invocation);
CREATE TABLE IF NOT EXISTS reservations (
    invocation_id   TEXT PRIMARY KEY,
    artifact        TEXT NOT NULL,
    caller          TEXT NOT NULL,
    owner           TEXT NOT NULL,
    payer           TEXT NOT NULL,
    resource_policy TEXT NOT NULL,
    sponsor_grant   TEXT,
    allocation      TEXT,
    created_ms      INTEGER NOT NULL,
    settled         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS reservations_open ON reservations(settled) WHERE settled = 0;
CREATE TABLE IF NOT EXISTS usage_records (
    invocation_id     TEXT PRIMARY KEY,
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
    settled_ms        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_by_time ON usage_records(settled_ms);
CREATE TABLE IF NOT EXISTS settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS artifacts (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    digest      TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS policy_plugins (
    name        TEXT PRIMARY KEY,
    position    INTEGER NOT NULL,
    digest      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    invocation  TEXT,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    target      TEXT NOT NULL,
    decision    TEXT NOT NULL,
    decided_by  TEXT,
    reason      TEXT,
    latency_us  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sponsor_grants (
    id            TEXT PRIMARY KEY,
    sponsor       TEXT NOT NULL REFERENCES accounts(id),
    beneficiary   TEXT NOT NULL REFERENCES accounts(id),
    fuel_limit    INTEGER NOT NULL CHECK (fuel_limit >= 0),
    fuel_spent    INTEGER NOT NULL DEFAULT 0,
    fuel_held     INTEGER NOT NULL DEFAULT 0,
    disk_limit    INTEGER NOT NULL CHECK (disk_limit >= 0),
    disk_spent    INTEGER NOT NULL DEFAULT 0 CHECK (disk_spent <= disk_limit),
    expires_ms    INTEGER,
    artifacts     TEXT NOT NULL,
    revoked       INTEGER NOT NULL DEFAULT 0,
    created_ms    INTEGER NOT NULL,
    CHECK (fuel_spent + fuel_held <= fuel_limit)
);
CREATE INDEX IF NOT EXISTS sponsor_grants_by_beneficiary ON sponsor_grants(beneficiary);
CREATE TABLE IF NOT EXISTS allocations (
    id             TEXT PRIMARY KEY,
    agent          TEXT NOT NULL REFERENCES accounts(id),
    status         TEXT NOT NULL,
    priority       INTEGER NOT NULL,
    request        TEXT NOT NULL,
    period_ms      INTEGER,
    rollover       TEXT,
    duration_ms    INTEGER,
    soft_pct       INTEGER NOT NULL,
    hard_pct       INTEGER NOT NULL,
    activated_ms   INTEGER,
    expires_ms     INTEGER,
    period_index   INTEGER NOT NULL DEFAULT 0,
    revoke_reason  TEXT,
    created_ms     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS allocations_by_agent ON allocations(agent);
CREATE TABLE IF NOT EXISTS allocation_quotas (
    allocation  TEXT NOT NULL REFERENCES allocations(id),
    resource    TEXT NOT NULL,
    quota       INTEGER NOT NULL,
    carried     INTEGER NOT NULL DEFAULT 0,
    used        INTEGER NOT NULL DEFAULT 0,
    held        INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
    PRIMARY KEY (allocation, resource)
);
CREATE TABLE IF NOT EXISTS alerts (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    allocation    TEXT NOT NULL,
    agent         TEXT NOT NULL,
    resource      TEXT,
    kind          TEXT NOT NULL,
    period_index  INTEGER NOT NULL,
    percent       INTEGER NOT NULL,
    at_ms         INTEGER NOT NULL,
    UNIQUE (allocation, kind, period_index)
);
CREATE TABLE IF NOT EXISTS external_usage (
    id          TEXT PRIMARY KEY,
    agent       TEXT NOT NULL,
    resource    TEXT NOT NULL,
    amount      INTEGER NOT NULL,
    allocation  TEXT,
    at_ms       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_scopes (
    agent      TEXT PRIMARY KEY REFERENCES accounts(id),
    tenant     TEXT,
    workspace  TEXT
);
CREATE TABLE IF NOT EXISTS api_keys (
    hash        TEXT PRIMARY KEY,
    agent       TEXT,
    admin       INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    -- 0 while the key is live; else when it was revoked, Unix ms.
    revoked     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pending_actions (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    target       TEXT NOT NULL,
    approvers    TEXT NOT NULL,
    required_by  TEXT,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
    resolved_by  TEXT,
    resolved_ms  INTEGER,
    reason       TEXT,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    input        BLOB NOT NULL,
    fuel_limit   INTEGER
);
CREATE TABLE IF NOT EXISTS distributions (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    amount      INTEGER NOT NULL,
    recipients  INTEGER NOT NULL,
    per_agent   INTEGER NOT NULL,
    remainder   INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
);
INSERT OR IGNORE INTO accounts (id, system, created_ms)
    VALUES ('@mint', 1, 0), ('@consumed', 1, 0), ('@burn', 1, 0), ('@pool', 1, 0);
"#;

/// How hard each commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit that moves money or records a settled call is fsynced
    /// before it returns (`synchronous=FULL`): survives power loss. The
    /// default. Two kinds of commit are *deferred* ([`Database::lock_deferred`]):
    /// an invocation's reservation and its admission's audit record reach
    /// the OS at once and are fsynced by the next fsynced commit (the WAL is
    /// written in order), so a power loss can lose only those of calls that
    /// had not yet settled, which had charged nothing.
    #[default]
    Full,
    /// Commits reach the OS before they return, fsynced at checkpoints
    /// (`synchronous=NORMAL` in WAL mode): survives a crash or SIGKILL of
    /// the host, may lose the last commits on power loss, never corrupts.
    Process,
}

/// The open database. One connection behind a mutex: SQLite has one writer
/// at a time anyway, and every operation here is a short transaction.
pub struct Database {
    conn: Mutex<Connection>,
    durability: Durability,
}

/// The connection, with its next commits deferred: not fsynced, but made
/// durable by the next commit that is (see [`Durability::Full`]).
pub struct Deferred<'a> {
    guard: MutexGuard<'a, Connection>,
    restore: bool,
}

impl std::ops::Deref for Deferred<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.guard
    }
}

impl std::ops::DerefMut for Deferred<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.guard
    }
}

impl Drop for Deferred<'_> {
    fn drop(&mut self) {
        if self.restore {
            if let Err(e) = self.guard.pragma_update(None, "synchronous", "FULL") {
                tracing::error!(error = %e, "restoring synchronous=FULL failed");
            }
        }
    }
}

impl Database {
    /// Open (creating if needed) the database file and bring its schema up
    /// to date.
    pub fn open(path: &Path, durability: Durability) -> rusqlite::Result<Database> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Process => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        conn.set_prepared_statement_cache_capacity(128);
        Ok(Database { conn: Mutex::new(conn), durability })
    }

    /// Exclusive use of the connection. A panic while holding it cannot
    /// leave a half-applied change (transactions roll back on drop), so a
    /// poisoned lock is recovered.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Exclusive use of the connection for commits that may be deferred:
    /// with [`Durability::Full`] they reach the OS but are fsynced by the
    /// next fsynced commit; everything else is as [`Database::lock`].
    pub fn lock_deferred(&self) -> Deferred<'_> {
        let guard = self.lock();
        let restore = self.durability == Durability::Full
            && match guard.pragma_update(None, "synchronous", "NORMAL") {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(error = %e, "deferring commits failed; committing with fsync");
                    false
                }
            };
        Deferred { guard, restore }
    }
}

/// Run one statement through the connection's prepared-statement cache
/// (parsing SQL costs more than running these statements).
pub fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Query one row through the prepared-statement cache.
pub fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
