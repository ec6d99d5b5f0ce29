//! The database's schema: every table and index of the ledger, the
//! registry, the scheduler, the audit log and the API keys, created when
//! missing, and the upgrades that bring a file written by an earlier
//! version to it (each keeps every row).

use rusqlite::Connection;

// Write costs shape the schema: the tables every call appends to
// (`transfers`, `audit`) number rows without AUTOINCREMENT (they are never
// deleted from, so `seq` still only grows, and a commit is spared the
// `sqlite_sequence` page), and `balances` is WITHOUT ROWID (one B-tree, not
// a table plus its key's index). Databases created before keep their shape.
const SCHEMA: &str = concat!(
    r#"
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
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transfers (
    seq         INTEGER PRIMARY KEY,
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
    invocation_id     TEXT PRIMARY KEY,"#,
    crate::projection::record_column_defs!(),
    r#",
    postings          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS usage_by_time ON usage_records(settled_ms);
-- An agent's records, newest first, for its listings (usage, and the
-- charges among its transfers): one index per party.
CREATE INDEX IF NOT EXISTS usage_by_caller ON usage_records(caller);
CREATE INDEX IF NOT EXISTS usage_by_owner ON usage_records(owner);
CREATE INDEX IF NOT EXISTS usage_by_payer ON usage_records(charged_to);
-- The disk charges among an agent's transfers, which most records lack: a
-- partial index, so that listing them never reads the records that have
-- none (and costs a call nothing unless it is charged disk).
CREATE INDEX IF NOT EXISTS usage_disk_by_payer ON usage_records(charged_to) WHERE postings = 1 AND disk_bytes > 0;
-- Counters kept as records settle (see the ledger's `counters`).
CREATE TABLE IF NOT EXISTS usage_totals (
    outcome          TEXT PRIMARY KEY,
    records          INTEGER NOT NULL,
    fuel             INTEGER NOT NULL,
    cost_usd_micros  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumer_hours (
    hour             INTEGER NOT NULL,
    agent            TEXT NOT NULL,
    invocations      INTEGER NOT NULL,
    fuel             INTEGER NOT NULL,
    disk_bytes       INTEGER NOT NULL,
    cost_usd_micros  INTEGER NOT NULL,
    PRIMARY KEY (hour, agent)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counter_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    through  INTEGER NOT NULL
);
-- Every transfer, in the order posted: the `transfers` rows and the
-- charges recorded by usage records with `postings = 1` (see the ledger's
-- `journal`). `part` orders a record's charges after one another.
CREATE VIEW IF NOT EXISTS ledger_transfers AS
    SELECT seq, 0 AS part, id, debit, credit, asset, amount, kind, memo, invocation, created_ms FROM transfers
    UNION ALL
    SELECT rowid, 1, invocation_id || '/price', caller, owner, 'scrip', price_paid, 'price', '', invocation_id,
           settled_ms
      FROM usage_records WHERE postings = 1 AND price_paid > 0
    UNION ALL
    SELECT rowid, 2, invocation_id || '/fuel', charged_to, '@consumed', 'fuel', fuel, 'fuel', '', invocation_id,
           settled_ms
      FROM usage_records WHERE postings = 1 AND fuel > 0
    UNION ALL
    SELECT rowid, 3, invocation_id || '/disk', charged_to, '@consumed', 'disk_bytes', disk_bytes, 'disk', '',
           invocation_id, settled_ms
      FROM usage_records WHERE postings = 1 AND disk_bytes > 0;
-- Archive files (see `archive`): each one's length as of the last move
-- committed, so a move interrupted after writing cuts its lines off again.
CREATE TABLE IF NOT EXISTS archive_files (
    file   TEXT PRIMARY KEY,
    bytes  INTEGER NOT NULL
) WITHOUT ROWID;
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
    seq         INTEGER PRIMARY KEY,
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
CREATE INDEX IF NOT EXISTS audit_by_subject ON audit(subject);
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
CREATE INDEX IF NOT EXISTS api_keys_admin ON api_keys(admin, revoked) WHERE admin = 1;
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
    -- An invocation's input, an upload's component (emptied once made).
    input        BLOB NOT NULL,
    fuel_limit   INTEGER,
    -- What else the action needs to be done, as JSON: a transfer's
    -- request, an upload's manifest. NULL for an invocation.
    payload      TEXT
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
CREATE TABLE IF NOT EXISTS tasks (
    id            TEXT PRIMARY KEY,
    submitter     TEXT NOT NULL,
    artifact      TEXT NOT NULL,
    input         BLOB NOT NULL,
    priority      TEXT NOT NULL,
    fuel_limit    INTEGER,
    state         TEXT NOT NULL
                  CHECK (state IN ('pending', 'running', 'completed', 'failed', 'cancelled', 'timed_out')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL DEFAULT 1,
    backoff_ms    INTEGER NOT NULL DEFAULT 1000,
    not_before_ms INTEGER,
    timeout_ms    INTEGER,
    capability    TEXT,
    route_mode    TEXT,
    max_price     INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    invocation_id TEXT,
    error         TEXT,
    created_ms    INTEGER NOT NULL,
    started_ms    INTEGER,
    finished_ms   INTEGER
);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks(state) WHERE state IN ('pending', 'running');
CREATE TABLE IF NOT EXISTS task_dependencies (
    task        TEXT NOT NULL,
    depends_on  TEXT NOT NULL,
    PRIMARY KEY (task, depends_on)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS task_dependants ON task_dependencies(depends_on);
CREATE TABLE IF NOT EXISTS agent_heartbeats (
    agent   TEXT PRIMARY KEY REFERENCES accounts(id),
    at_ms   INTEGER NOT NULL,
    ttl_ms  INTEGER NOT NULL,
    status  TEXT
) WITHOUT ROWID;
INSERT OR IGNORE INTO accounts (id, system, created_ms)
    VALUES ('@mint', 1, 0), ('@consumed', 1, 0), ('@burn', 1, 0), ('@pool', 1, 0);
"#
);

/// A `usage_records` table from before charges were recorded in it gets
/// the `postings` column (0: its charges are `transfers` rows).
fn upgrade_usage_records(conn: &Connection) -> rusqlite::Result<()> {
    let columns = columns(conn, "usage_records")?;
    if columns.is_empty() || columns.iter().any(|c| c == "postings") {
        return Ok(());
    }
    conn.execute_batch("ALTER TABLE usage_records ADD COLUMN postings INTEGER NOT NULL DEFAULT 0")
}

/// A settlement journal from before it carried the admission's audit
/// record gets its columns (NULL in the rows it holds: their admissions
/// were recorded on their own), and one from before LLM tokens its
/// `llm_tokens` (0).
fn upgrade_journal(conn: &Connection) -> rusqlite::Result<()> {
    let columns = columns(conn, "settlement_journal")?;
    for (name, kind) in crate::projection::AUDIT_COLUMNS.iter().chain(&[("llm_tokens", "INTEGER NOT NULL DEFAULT 0")]) {
        if !columns.iter().any(|c| c == name) {
            conn.execute_batch(&format!("ALTER TABLE settlement_journal ADD COLUMN {name} {kind}"))?;
        }
    }
    Ok(())
}

/// Create what is missing of the schema. A `tasks` table of an earlier
/// shape (before tasks could time out, name a capability or record a
/// cancel request) is rebuilt in
/// one transaction, every row and column it had kept.
pub(crate) fn create_or_upgrade(conn: &mut Connection) -> rusqlite::Result<()> {
    create_or_upgrade_tables(conn)?;
    conn.execute_batch(crate::projection::TABLE)?;
    upgrade_journal(conn)?;
    upgrade_pending_actions(conn)?;
    versioned(conn)?;
    project_leftovers(conn)
}

/// The schema's versions, as refinery records them in
/// `refinery_schema_history` (PostgreSQL's are `fuelhost-postgres`'s
/// `migrations/`). Version 1 is the baseline: every table as this release
/// creates it, which the upgrades above bring a file of any earlier
/// release to (so on any file it creates nothing; it is recorded). A
/// change of the schema from now on is a migration of its own, added here
/// as `V2__...`; refinery refuses to open a file whose recorded baseline
/// differs from this one, or that a newer release has migrated further.
fn migrations() -> Result<Vec<refinery::Migration>, refinery::Error> {
    let baseline = format!("{SCHEMA}\n{}", crate::projection::TABLE);
    Ok(vec![
        refinery::Migration::unapplied("V1__baseline", &baseline)?,
        refinery::Migration::unapplied("V2__breakers", V2_BREAKERS)?,
        refinery::Migration::unapplied("V3__task_hosts", V3_TASK_HOSTS)?,
        refinery::Migration::unapplied("V4__llm_tokens", V4_LLM_TOKENS)?,
    ])
}

/// Version 2: circuit breakers kept, so an opened breaker stays open across
/// a restart and on every host sharing a database.
const V2_BREAKERS: &str = "
CREATE TABLE IF NOT EXISTS breakers (
    artifact       TEXT PRIMARY KEY,
    open_until_ms  INTEGER,
    times_opened   INTEGER NOT NULL
);";

/// Version 3: the host run that started a running task, so that hosts
/// sharing a database take over only a gone host's tasks.
const V3_TASK_HOSTS: &str = "ALTER TABLE tasks ADD COLUMN host TEXT;";

/// Version 4: the LLM tokens a call's model requests used, in its usage
/// record and in the hourly totals per payer. (The settlement journal
/// gains its column in `upgrade_journal`: it is rebuilt from nothing.)
const V4_LLM_TOKENS: &str = "
ALTER TABLE usage_records ADD COLUMN llm_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE consumer_hours ADD COLUMN llm_tokens INTEGER NOT NULL DEFAULT 0;";

/// Record the baseline and apply the migrations after it.
fn versioned(conn: &mut Connection) -> rusqlite::Result<()> {
    let failed = |e: refinery::Error| {
        rusqlite::Error::ToSqlConversionFailure(format!("bringing the schema up to date: {e}").into())
    };
    let migrations = migrations().map_err(failed)?;
    let known = migrations.len() as i64;
    let recorded: Option<i64> =
        conn.query_row("SELECT MAX(version) FROM refinery_schema_history", [], |r| r.get(0)).ok().flatten();
    if let Some(version) = recorded.filter(|v| *v > known) {
        return Err(rusqlite::Error::ToSqlConversionFailure(
            format!(
                "bringing the schema up to date: a newer fuelhost wrote this database (its schema is at version \
                 {version}; this release knows versions up to {known}): open it with that release or a later one"
            )
            .into(),
        ));
    }
    refinery::Runner::new(&migrations).set_abort_missing(true).run(conn).map_err(failed)?;
    Ok(())
}

/// A `pending_actions` table from before transfers and uploads could be
/// parked gets the `payload` column (NULL: its rows are invocations).
fn upgrade_pending_actions(conn: &Connection) -> rusqlite::Result<()> {
    if columns(conn, "pending_actions")?.iter().any(|c| c == "payload") {
        return Ok(());
    }
    conn.execute_batch("ALTER TABLE pending_actions ADD COLUMN payload TEXT")
}

/// Project what the settlement journal holds: at open, what a crash left
/// there; at close, what the ledger journaled since the last projection.
pub(crate) fn project_leftovers(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match crate::projection::project(conn) {
        Ok(_) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The tables, created, or upgraded from an older shape.
fn create_or_upgrade_tables(conn: &Connection) -> rusqlite::Result<()> {
    upgrade_usage_records(conn)?;
    let columns = columns(conn, "tasks")?;
    if columns.is_empty() || columns.iter().any(|c| c == "cancel_requested") {
        return conn.execute_batch(SCHEMA);
    }
    let kept = columns.join(", ");
    // The rename must not rewrite references to `tasks` elsewhere.
    conn.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON;")?;
    let rebuilt = conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         DROP INDEX IF EXISTS tasks_open;
         ALTER TABLE tasks RENAME TO tasks_before_upgrade;
         {SCHEMA}
         INSERT INTO tasks ({kept}) SELECT {kept} FROM tasks_before_upgrade;
         DROP TABLE tasks_before_upgrade;
         COMMIT;"
    ));
    if rebuilt.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    conn.execute_batch("PRAGMA legacy_alter_table = OFF; PRAGMA foreign_keys = ON;")?;
    rebuilt
}

/// The column names of `table` (none when it does not exist yet).
fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let rows = stmt.query_map([table], |r| r.get(0))?;
    rows.collect()
}
