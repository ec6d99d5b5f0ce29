//! The embedded database: one SQLite file in WAL mode that holds the ledger,
//! artifact metadata, policy plugins and the audit log. This module owns
//! opening it, its pragmas, its connections and their durability; its
//! tables are `schema`'s, and the ledger, the registry and the audit log
//! each own their tables' queries.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::schema;
pub use crate::sql::{exec, now_ms, one};

/// How hard each commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit that moves money or records a settled call is on disk
    /// (the WAL fsynced) before it returns: survives power loss. The
    /// default. Work that charges nothing by itself (an invocation's
    /// reservation, its admission's audit record) is *deferred* or
    /// *appended* (`Database::deferred`, `Database::append`): it joins the
    /// open write batch, which the next durable commit (or the flusher,
    /// within 5 ms) commits along with its own work. A crash can lose only deferred work of
    /// calls that had not settled, which had charged nothing.
    #[default]
    Full,
    /// The same batches, never fsynced by the host (SQLite syncs at
    /// checkpoints): survives a crash or SIGKILL of the host except for
    /// the open batch, may lose the last commits on power loss, never
    /// corrupts.
    Process,
}

/// How long the checkpointer lets commits gather before copying them
/// from the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);

/// WAL pages after which a committing writer checkpoints by itself, in
/// case the checkpointer falls behind (SQLite's own default is 1,000).
const WAL_BACKSTOP_PAGES: i64 = 50_000;

/// The longest deferred work waits for a commit when no durable commit
/// comes along to take it.
pub const FLUSH_AFTER: Duration = Duration::from_millis(5);

/// The open database. One connection behind a mutex: SQLite has one writer
/// at a time anyway, and every operation here is a short transaction.
/// Beside it, a read-only connection for scans of committed data
/// ([`Database::committed`]: listings, reports), and the checkpointer's.
///
/// Writes come in four kinds:
///
/// - [`Database::durable`]: a transaction committed (and with
///   [`Durability::Full`] fsynced) before it returns;
/// - [`Database::deferred`]: a transaction that joins the open *write
///   batch* (one SQLite transaction left open) and returns without a
///   commit. The next durable commit commits the batch with it, so a crowd
///   of calls writes each page once per batch instead of once per call;
/// - [`Database::append`]: an insert queued in memory without taking the
///   connection, written just before the next commit (for the audit log:
///   a call then takes the connection to settle, not to be audited);
/// - [`Database::lock`]: the connection itself, for code that runs its own
///   statements or transactions. The open batch is committed first, and if
///   anything was written through the guard the WAL is fsynced when it
///   drops.
///
/// [`Database::read`] reads through the connection without committing
/// anything, so it sees the open batch.
///
/// The connection runs with `synchronous=NORMAL`; durability comes from
/// this type fsyncing the WAL after a durable commit, outside the lock, so
/// other work proceeds during the fsync. Two threads serve it: the
/// *flusher* commits a batch left open, or rows appended, for
/// [`FLUSH_AFTER`], and the
/// *checkpointer* copies the WAL into the database file on a connection of
/// its own, so no writer pays for a checkpoint while holding the lock.
pub struct Database {
    shared: Arc<Shared>,
    /// A read-only connection for long reads of committed data (see
    /// [`Database::committed`]).
    reader: Mutex<Connection>,
    flusher: Option<std::thread::JoinHandle<()>>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    conn: Mutex<Conn>,
    /// Rows appended ([`Database::append`]) and not yet written, and what
    /// the flusher waits for.
    pending: Mutex<Pending>,
    /// Signalled when work starts waiting for a commit (a batch opens, a
    /// row is appended), and when the database closes.
    waiting: Condvar,
    /// Whether commits happened since the last checkpoint; the
    /// checkpointer waits on `committed` for it.
    checkpoint: Mutex<Checkpoint>,
    committed: Condvar,
    durability: Durability,
    wal_path: PathBuf,
    /// Set when an fsync of the WAL failed: from then on writes are
    /// refused (the kernel may have dropped pages it could not write).
    fsync_failed: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Checkpoint {
    due: bool,
    closing: bool,
}

/// What waits for a commit without holding the connection.
#[derive(Default)]
struct Pending {
    /// Rows appended, in order.
    rows: Vec<Appended>,
    /// When work began waiting for a commit with none waiting before
    /// (a batch opened, or a row was appended); the flusher takes it.
    since: Option<Instant>,
    closing: bool,
}

/// One appended row: an insert and its values.
struct Appended {
    sql: &'static str,
    values: Vec<rusqlite::types::Value>,
}

impl Pending {
    fn waiting_from(&mut self, at: Instant) -> bool {
        let first = self.since.is_none();
        self.since.get_or_insert(at);
        first
    }
}

struct Conn {
    conn: Connection,
    /// When the open batch began; `None`: no transaction is open.
    batch: Option<Instant>,
    /// Counts batches, so the flusher commits only the one it waited for.
    generation: u64,
    /// The WAL file, opened on first fsync.
    wal: Option<Arc<File>>,
    closing: bool,
    /// Set by every commit, cleared when the checkpointer is told.
    committed: bool,
}

impl Conn {
    /// Commit the open batch, if any, with `rows` (appended rows) written
    /// first; a batch is opened for rows alone. On failure the batch is
    /// rolled back: what it held was deferred work of calls whose
    /// settlement will then fail, charging nothing, and appended rows
    /// (which record, never charge).
    fn commit_batch(&mut self, rows: Vec<Appended>) -> rusqlite::Result<()> {
        if self.batch.is_none() && (rows.is_empty() || !self.open_batch()?) {
            return Ok(());
        }
        for row in rows {
            let written =
                self.conn.prepare_cached(row.sql).and_then(|mut s| s.execute(rusqlite::params_from_iter(row.values)));
            if let Err(e) = written {
                tracing::error!(error = %e, "writing an appended row failed; it is lost");
            }
        }
        self.resync();
        if self.batch.take().is_none() {
            return Ok(());
        }
        self.generation += 1;
        self.committed = true;
        // Cached, as every statement of a call is: parsing it each time
        // showed in profiles.
        let result = self.conn.prepare_cached("COMMIT").and_then(|mut c| c.execute([])).map(drop);
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result
    }

    /// Some errors (disk full, I/O) make SQLite roll back the whole
    /// transaction: notice when the batch is gone.
    fn resync(&mut self) {
        if self.batch.is_some() && self.conn.is_autocommit() {
            tracing::error!("the write batch was rolled back by SQLite after an error; its deferred work is lost");
            self.batch = None;
            self.generation += 1;
        }
    }

    fn open_batch(&mut self) -> rusqlite::Result<bool> {
        if self.batch.is_some() {
            return Ok(false);
        }
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        self.batch = Some(Instant::now());
        self.generation += 1;
        Ok(true)
    }

    fn wal(&mut self, path: &Path) -> io::Result<Arc<File>> {
        if let Some(wal) = &self.wal {
            return Ok(wal.clone());
        }
        let wal = Arc::new(File::open(path)?);
        self.wal = Some(wal.clone());
        Ok(wal)
    }
}

/// An error type that can carry SQLite's own: what the transaction helpers
/// ([`Database::durable`], [`Database::deferred`], [`in_savepoint`]) need
/// of the errors their closures return.
pub trait FromSqlite {
    /// `e`, as this error.
    fn from_sqlite(e: rusqlite::Error) -> Self;
}

impl FromSqlite for rusqlite::Error {
    fn from_sqlite(e: rusqlite::Error) -> Self {
        e
    }
}

impl FromSqlite for fuelhost_ledger::LedgerError {
    fn from_sqlite(e: rusqlite::Error) -> Self {
        fuelhost_ledger::LedgerError::Storage(e.to_string())
    }
}

/// Run `f` inside a savepoint of the transaction open on `conn`: its
/// changes are kept if it returns `Ok`, undone if it returns `Err` or
/// panics, and the transaction goes on either way.
pub fn in_savepoint<R, E: FromSqlite>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<R, E>) -> Result<R, E> {
    struct Undo<'a>(&'a Connection, bool);
    impl Drop for Undo<'_> {
        fn drop(&mut self) {
            if self.1 {
                let _ = self.0.execute_batch("ROLLBACK TO sp; RELEASE sp");
            }
        }
    }
    if conn.is_autocommit() {
        // The transaction this belongs to is gone (SQLite rolls it back on
        // some I/O errors): a savepoint now would commit on its own.
        return Err(E::from_sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
            Some("the write batch was rolled back by an earlier error".into()),
        )));
    }
    conn.prepare_cached("SAVEPOINT sp").and_then(|mut s| s.execute([])).map_err(E::from_sqlite)?;
    let mut undo = Undo(conn, true);
    let r = f(conn)?;
    conn.prepare_cached("RELEASE sp").and_then(|mut s| s.execute([])).map_err(E::from_sqlite)?;
    undo.1 = false;
    Ok(r)
}

/// The connection with nothing committed on the way in or out: for reads.
pub struct ReadGuard<'a>(MutexGuard<'a, Conn>);

impl std::ops::Deref for ReadGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0.conn
    }
}

/// The connection with no transaction open; what is written through it is
/// fsynced when it drops (see [`Database::lock`]).
pub struct WriteGuard<'a> {
    guard: Option<MutexGuard<'a, Conn>>,
    shared: &'a Shared,
    changes: u64,
}

impl std::ops::Deref for WriteGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.guard.as_ref().expect("guard held until drop").conn
    }
}

impl std::ops::DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.guard.as_mut().expect("guard held until drop").conn
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else { return };
        if guard.conn.total_changes() == self.changes {
            return;
        }
        guard.committed = true;
        self.shared.note_commits(&mut guard);
        if self.shared.durability != Durability::Full {
            return;
        }
        let wal = guard.wal(&self.shared.wal_path);
        drop(guard);
        if let Err(e) = self.shared.sync(wal) {
            // Nothing to return it to: the writes through the guard are
            // committed but may not survive a power loss.
            self.shared.fsync_failed.store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::error!(error = %e, "fsync of the WAL failed: refusing further writes until a restart");
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tell the checkpointer if `conn` committed since it was last told.
    fn note_commits(&self, conn: &mut Conn) {
        if std::mem::take(&mut conn.committed) {
            let mut c = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
            if !c.due {
                c.due = true;
                self.committed.notify_one();
            }
        }
    }

    /// Copy committed pages from the WAL into the database file on a
    /// connection of its own, off the writers' path: a `PASSIVE`
    /// checkpoint never blocks them. Exits when the database closes.
    fn checkpoint_loop(self: Arc<Shared>, conn: Connection) {
        loop {
            {
                let mut c = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
                while !c.due && !c.closing {
                    c = self.committed.wait(c).unwrap_or_else(|p| p.into_inner());
                }
                if c.closing {
                    return;
                }
                c.due = false;
            }
            std::thread::sleep(CHECKPOINT_EVERY);
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "background checkpoint failed; the next one retries");
            }
        }
    }

    /// Refuse writes after a failed fsync.
    fn writable(&self) -> rusqlite::Result<()> {
        if !self.fsync_failed.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_FSYNC);
        let message = format!(
            "an fsync of {} failed earlier, so nothing written since could be known to be on disk; \
             writes are refused: check the disk, then restart the host",
            self.wal_path.display()
        );
        Err(rusqlite::Error::SqliteFailure(code, Some(message)))
    }

    /// Make what was committed so far durable.
    fn sync(&self, wal: io::Result<Arc<File>>) -> io::Result<()> {
        let wal = wal.map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", self.wal_path.display())))?;
        wal.sync_data().map_err(|e| io::Error::new(e.kind(), format!("fsync of {}: {e}", self.wal_path.display())))
    }

    /// Commit the open batch and the appended rows (see
    /// [`Conn::commit_batch`]).
    fn commit(&self, conn: &mut Conn) -> rusqlite::Result<()> {
        let rows = std::mem::take(&mut self.pending.lock().unwrap_or_else(|p| p.into_inner()).rows);
        conn.commit_batch(rows)
    }

    /// Tell the flusher that work waits for a commit since `at`, unless it
    /// knows already.
    fn waiting_from(&self, at: Instant) {
        if self.pending.lock().unwrap_or_else(|p| p.into_inner()).waiting_from(at) {
            self.waiting.notify_all();
        }
    }

    /// Commit work that waited [`FLUSH_AFTER`] with nobody to commit it (a
    /// batch left open, rows appended); exit when the database closes.
    /// Whatever is open then is committed, so work that began waiting
    /// meanwhile may go sooner, never later.
    fn flush_loop(self: Arc<Shared>) {
        loop {
            let since = {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                while pending.since.is_none() && !pending.closing {
                    pending = self.waiting.wait(pending).unwrap_or_else(|p| p.into_inner());
                }
                if pending.closing {
                    return;
                }
                pending.since.take().expect("checked above")
            };
            std::thread::sleep((since + FLUSH_AFTER).saturating_duration_since(Instant::now()));
            let mut conn = self.lock();
            if conn.closing {
                return;
            }
            if let Err(e) = self.commit(&mut conn) {
                tracing::error!(error = %e, "committing deferred work failed; it was rolled back");
            }
            self.note_commits(&mut conn);
        }
    }
}

impl Database {
    /// Open (creating if needed) the database file and bring its schema up
    /// to date.
    pub fn open(path: &Path, durability: Durability) -> rusqlite::Result<Database> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "page_size", 1024)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints run on their own connection (see `checkpoint_loop`);
        // this one checkpoints only if the WAL grows past the backstop.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        schema::create_or_upgrade(&mut conn)?;
        crate::counters::fill_once(&conn)?;
        conn.set_prepared_statement_cache_capacity(128);
        // The file exists now; SQLite names its WAL after the resolved path.
        let resolved = std::fs::canonicalize(path).or_else(|_| std::path::absolute(path));
        let mut wal_path = resolved.unwrap_or_else(|_| path.to_path_buf()).into_os_string();
        wal_path.push("-wal");
        let shared = Arc::new(Shared {
            conn: Mutex::new(Conn { conn, batch: None, generation: 0, wal: None, closing: false, committed: false }),
            pending: Mutex::default(),
            waiting: Condvar::new(),
            checkpoint: Mutex::new(Checkpoint::default()),
            committed: Condvar::new(),
            durability,
            wal_path: wal_path.into(),
            fsync_failed: Default::default(),
        });
        let flusher = {
            let shared = shared.clone();
            std::thread::Builder::new().name("fuelhost-db-flush".into()).spawn(move || shared.flush_loop()).map_err(
                |e| rusqlite::Error::ToSqlConversionFailure(format!("starting the database flusher: {e}").into()),
            )?
        };
        let checkpointer = {
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("fuelhost-db-checkpoint".into())
                .spawn(move || shared.checkpoint_loop(conn))
                .map_err(|e| {
                    rusqlite::Error::ToSqlConversionFailure(format!("starting the checkpointer: {e}").into())
                })?
        };
        let reader = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(Database { shared, reader: Mutex::new(reader), flusher: Some(flusher), checkpointer: Some(checkpointer) })
    }

    /// Whether the database takes writes: `Err` (saying why) once an fsync
    /// failed. Reads no table and takes no lock, so it answers at once
    /// whatever the database is doing.
    pub fn writable(&self) -> Result<(), String> {
        self.shared.writable().map_err(|e| e.to_string())
    }

    /// The connection for code that runs its own statements or
    /// transactions: the open batch is committed first, and what is written
    /// through the guard is fsynced when it drops ([`Durability::Full`]).
    /// A panic while holding it cannot leave a half-applied change
    /// (transactions roll back on drop), so a poisoned lock is recovered.
    pub fn lock(&self) -> WriteGuard<'_> {
        let mut guard = self.shared.lock();
        if let Err(e) = self.shared.commit(&mut guard) {
            tracing::error!(error = %e, "committing deferred work failed; it was rolled back");
        }
        if !guard.conn.is_autocommit() {
            tracing::error!("a transaction is still open on the connection; rolling it back");
            let _ = guard.conn.execute_batch("ROLLBACK");
        }
        self.shared.note_commits(&mut guard);
        let changes = guard.conn.total_changes();
        WriteGuard { guard: Some(guard), shared: &self.shared, changes }
    }

    /// A second, read-only connection for scans of committed data
    /// (listings, reports): a long read on it neither waits for the
    /// connection calls settle on nor holds it up. It does not see the
    /// open write batch, so it is only for what is written by durable
    /// commits (transfers, usage records).
    pub fn committed(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection for reads: commits nothing, sees the open batch.
    /// Nothing may be written through it.
    pub fn read(&self) -> ReadGuard<'_> {
        ReadGuard(self.shared.lock())
    }

    /// Run `f` as a transaction of its own, joined to the open write batch
    /// and left uncommitted: the next durable commit, or the flusher within
    /// [`FLUSH_AFTER`], commits it. `Err` (or a panic) undoes `f`'s changes
    /// only. For work that charges nothing until a durable commit follows.
    pub fn deferred<R, E: FromSqlite>(&self, f: impl FnOnce(&Connection) -> Result<R, E>) -> Result<R, E> {
        self.shared.writable().map_err(E::from_sqlite)?;
        let mut guard = self.shared.lock();
        if guard.open_batch().map_err(E::from_sqlite)? {
            self.shared.waiting_from(Instant::now());
        }
        let result = in_savepoint(&guard.conn, f);
        guard.resync();
        result
    }

    /// Queue an insert that reads nothing and charges nothing (an audit
    /// record) without taking the connection: it is written just before
    /// the next commit (a durable one, or the flusher's within
    /// [`FLUSH_AFTER`]), in the order appended, so a call's record commits
    /// with its settlement. Like deferred work, a crash before that commit
    /// loses it. [`Database::lock`] commits it first; [`Database::read`]
    /// does not see it. A row that fails to insert is logged and lost.
    pub fn append(&self, sql: &'static str, values: Vec<rusqlite::types::Value>) -> rusqlite::Result<()> {
        self.shared.writable()?;
        let now = Instant::now();
        let first = {
            let mut pending = self.shared.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.rows.push(Appended { sql, values });
            pending.waiting_from(now)
        };
        if first {
            self.shared.waiting.notify_all();
        }
        Ok(())
    }

    /// Run `f` as a transaction of its own and commit it, with the open
    /// batch, before returning; with [`Durability::Full`] the WAL is
    /// fsynced too (after the lock is released, so other work goes on).
    /// `Err` (or a panic) undoes `f`'s changes only.
    pub fn durable<R, E: FromSqlite>(&self, f: impl FnOnce(&Connection) -> Result<R, E>) -> Result<R, E> {
        self.durable_then(f, |_, _| {})
    }

    /// [`Database::durable`], then `then(result, committed)` while the
    /// connection is still held: `committed` says whether `f`'s changes
    /// are in the database (`f` returned `Ok` and the commit succeeded).
    /// For state kept beside the database that must follow the commit
    /// exactly, with no other writer in between.
    ///
    /// After a failed fsync of the WAL, nothing written since can be known
    /// to be on disk: the commit that saw it returns as committed (it is),
    /// and every later write is refused until the host restarts.
    pub fn durable_then<R, E: FromSqlite>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, E>,
        then: impl FnOnce(&Result<R, E>, bool),
    ) -> Result<R, E> {
        self.shared.writable().map_err(E::from_sqlite)?;
        let mut guard = self.shared.lock();
        guard.open_batch().map_err(E::from_sqlite)?;
        let changes = guard.conn.total_changes();
        let mut result = in_savepoint(&guard.conn, f);
        let changed = guard.conn.total_changes() != changes;
        guard.resync();
        let commit = self.shared.commit(&mut guard);
        self.shared.note_commits(&mut guard);
        if let (Err(e), true) = (commit, result.is_ok()) {
            result = Err(E::from_sqlite(e));
        }
        then(&result, result.is_ok());
        // Only what `f` changed needs the fsync; deferred work does not.
        if result.is_err() || !changed || self.shared.durability != Durability::Full {
            return result;
        }
        let wal = guard.wal(&self.shared.wal_path);
        drop(guard);
        if let Err(e) = self.shared.sync(wal) {
            self.shared.fsync_failed.store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::error!(error = %e, "fsync of the WAL failed: refusing further writes until a restart");
        }
        result
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let mut guard = self.shared.lock();
        guard.closing = true;
        if let Err(e) = self.shared.commit(&mut guard) {
            tracing::error!(error = %e, "committing deferred work at close failed");
        }
        // A clean close leaves the settlement journal empty (the ledger
        // that journaled into it is gone); a crash leaves it to the next
        // open.
        if let Err(e) = schema::project_leftovers(&guard.conn) {
            tracing::error!(error = %e, "projecting the settlement journal at close failed; the next open will");
        }
        drop(guard);
        self.shared.pending.lock().unwrap_or_else(|p| p.into_inner()).closing = true;
        self.shared.waiting.notify_all();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        self.shared.checkpoint.lock().unwrap_or_else(|p| p.into_inner()).closing = true;
        self.shared.committed.notify_all();
        if let Some(checkpointer) = self.checkpointer.take() {
            let _ = checkpointer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_count(path: &Path) -> i64 {
        let other = Connection::open(path).unwrap();
        other.query_row("SELECT COUNT(*) FROM settings", [], |r| r.get(0)).unwrap()
    }

    /// The committed settings keys, sorted, as another connection sees them.
    fn keys(path: &Path) -> Vec<String> {
        let other = Connection::open(path).unwrap();
        let mut stmt = other.prepare("SELECT key FROM settings ORDER BY key").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    fn put(conn: &Connection, key: &str) -> rusqlite::Result<usize> {
        exec(conn, "INSERT INTO settings (key, value) VALUES (?1, 'v')", [key])
    }

    /// The schema's version is recorded (1, the baseline, on a new file and
    /// on one a release before versioning wrote, brought up to it); a file
    /// a newer release migrated further is refused, saying so, and left as
    /// it was.
    #[test]
    fn the_schema_version_is_recorded_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let version = |path: &std::path::Path| -> Vec<i64> {
            let conn = Connection::open(path).unwrap();
            let mut stmt = conn.prepare("SELECT version FROM refinery_schema_history ORDER BY version").unwrap();
            stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        let new = dir.path().join("new.db");
        drop(Database::open(&new, Durability::Full).unwrap());
        drop(Database::open(&new, Durability::Full).unwrap());
        assert_eq!(version(&new), [1, 2, 3, 4]);

        let old = dir.path().join("old.db");
        Connection::open(&old)
            .unwrap()
            .execute_batch(
                "CREATE TABLE pending_actions (id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL,
                    target TEXT NOT NULL, approvers TEXT NOT NULL, required_by TEXT, state TEXT NOT NULL,
                    resolved_by TEXT, resolved_ms INTEGER, reason TEXT, created_ms INTEGER NOT NULL,
                    expires_ms INTEGER NOT NULL, input BLOB NOT NULL, fuel_limit INTEGER);",
            )
            .unwrap();
        drop(Database::open(&old, Durability::Full).unwrap());
        assert_eq!(version(&old), [1, 2, 3, 4]);

        Connection::open(&new)
            .unwrap()
            .execute_batch(
                "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
                 VALUES (99, 'from_a_newer_release', '2030-01-01T00:00:00Z', '1')",
            )
            .unwrap();
        let refused = Database::open(&new, Durability::Full).err().expect("refused").to_string();
        assert!(refused.contains("a newer fuelhost wrote this database (its schema is at version 99"), "{refused}");
        assert_eq!(version(&new), [1, 2, 3, 4, 99]);
    }

    /// A `tasks` table from before tasks could time out is rebuilt with its
    /// rows, and takes the new state and column.
    #[test]
    fn an_old_tasks_table_is_upgraded_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE tasks (id TEXT PRIMARY KEY, submitter TEXT NOT NULL, artifact TEXT NOT NULL,
                    input BLOB NOT NULL, priority TEXT NOT NULL, fuel_limit INTEGER,
                    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
                    attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL DEFAULT 1,
                    backoff_ms INTEGER NOT NULL DEFAULT 1000, not_before_ms INTEGER, invocation_id TEXT,
                    error TEXT, created_ms INTEGER NOT NULL, started_ms INTEGER, finished_ms INTEGER);
                 CREATE INDEX tasks_open ON tasks(state) WHERE state IN ('pending', 'running');
                 INSERT INTO tasks (id, submitter, artifact, input, priority, state, created_ms)
                     VALUES ('t', 'bob', 'alice/x@1', x'', 'normal', 'pending', 1);",
            )
            .unwrap();
        let db = Database::open(&path, Durability::Full).unwrap();
        db.durable(|c| exec(c, "UPDATE tasks SET state = 'timed_out', timeout_ms = 5 WHERE id = 't'", [])).unwrap();
        drop(db);
        let conn = Database::open(&path, Durability::Full).unwrap();
        let row: (String, i64) =
            conn.read().query_row("SELECT state, timeout_ms FROM tasks", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!(row, ("timed_out".to_string(), 5));
    }

    /// A usage record from before charges were recorded in it keeps its
    /// row and derives no transfer (its charges are `transfers` rows).
    /// A journal written before it carried admissions keeps its rows: they
    /// are projected at open (their decisions were audited on their own), and
    /// the journal gains the columns.
    #[test]
    fn an_old_journal_is_projected_and_gains_the_admission_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Database::open(&path, Durability::Full).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE settlement_journal;
             CREATE TABLE settlement_journal (seq INTEGER PRIMARY KEY, invocation_id TEXT NOT NULL,
                artifact TEXT NOT NULL, caller TEXT NOT NULL, owner TEXT NOT NULL, charged_to TEXT NOT NULL,
                resource_policy TEXT NOT NULL, outcome TEXT NOT NULL, fuel INTEGER NOT NULL,
                memory_peak_bytes INTEGER NOT NULL, disk_bytes INTEGER NOT NULL, wall_time_ns INTEGER NOT NULL,
                cpu_time_ns INTEGER NOT NULL, cost_usd_micros INTEGER NOT NULL, price_paid INTEGER NOT NULL,
                output BLOB NOT NULL, error TEXT, settled_ms INTEGER NOT NULL);
             INSERT INTO accounts (id, created_ms) VALUES ('alice', 0), ('bob', 0);
             INSERT INTO settlement_journal VALUES
                 (7, 'old', 'alice/x@1', 'bob', 'alice', 'bob', 'caller_pays', 'success', 0, 0, 0, 0, 0, 0, 0,
                  x'', NULL, 1);",
        )
        .unwrap();
        drop(conn);
        let db = Database::open(&path, Durability::Full).unwrap();
        let conn = db.read();
        let projected: i64 =
            conn.query_row("SELECT rowid FROM usage_records WHERE invocation_id = 'old'", [], |r| r.get(0)).unwrap();
        assert_eq!(projected, 7);
        let audited: i64 = conn.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0)).unwrap();
        assert_eq!(audited, 0, "its admission was recorded when it ran");
        let columns: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('settlement_journal') WHERE name LIKE 'audit_%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(columns, 5);
    }

    #[test]
    fn an_old_usage_records_table_gains_the_postings_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE usage_records (invocation_id TEXT PRIMARY KEY, artifact TEXT NOT NULL,
                    caller TEXT NOT NULL, owner TEXT NOT NULL, charged_to TEXT NOT NULL,
                    resource_policy TEXT NOT NULL, outcome TEXT NOT NULL, fuel INTEGER NOT NULL,
                    memory_peak_bytes INTEGER NOT NULL, disk_bytes INTEGER NOT NULL, wall_time_ns INTEGER NOT NULL,
                    cpu_time_ns INTEGER NOT NULL, cost_usd_micros INTEGER NOT NULL, price_paid INTEGER NOT NULL,
                    output BLOB NOT NULL, error TEXT, settled_ms INTEGER NOT NULL);
                 INSERT INTO usage_records VALUES
                     ('old', 'alice/x@1', 'bob', 'alice', 'bob', 'caller_pays', 'success', 10, 0, 0, 0, 0, 0, 100,
                      x'', NULL, 1);",
            )
            .unwrap();
        let db = Database::open(&path, Durability::Full).unwrap();
        let conn = db.read();
        let kept: (String, i64) = conn
            .query_row("SELECT invocation_id, postings FROM usage_records", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(kept, ("old".to_string(), 0));
        let derived: i64 = conn.query_row("SELECT COUNT(*) FROM ledger_transfers", [], |r| r.get(0)).unwrap();
        assert_eq!(derived, 0);
    }

    /// A read of committed data goes on while the writer's connection is
    /// held (by a settlement, say), and sees what was committed.
    #[test]
    fn committed_reads_do_not_wait_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("r.db"), Durability::Full).unwrap();
        db.durable(|c| put(c, "committed")).unwrap();
        let writer = db.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let n: i64 = db.committed().query_row("SELECT COUNT(*) FROM settings", [], |r| r.get(0)).unwrap();
                tx.send(n).unwrap();
            });
            let n = rx.recv_timeout(std::time::Duration::from_secs(10));
            drop(writer);
            assert_eq!(n, Ok(1), "the read waited for the writer");
        });
    }

    /// A durable commit is visible to another connection when it returns,
    /// and takes the deferred work queued before it along.
    #[test]
    fn a_durable_commit_commits_the_open_batch_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Database::open(&path, Durability::Full).unwrap();
        db.deferred(|c| put(c, "deferred")).unwrap();
        db.durable(|c| put(c, "durable")).unwrap();
        assert_eq!(settings_count(&path), 2);
    }

    /// Deferred work nobody commits is committed by the flusher, and what
    /// is still open when the database closes is committed at close.
    #[test]
    fn deferred_work_is_flushed_and_committed_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Database::open(&path, Durability::Full).unwrap();
        db.deferred(|c| put(c, "a")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while settings_count(&path) < 1 {
            assert!(Instant::now() < deadline, "the flusher never committed the deferred work");
            std::thread::sleep(FLUSH_AFTER);
        }
        db.deferred(|c| put(c, "b")).unwrap();
        drop(db);
        assert_eq!(settings_count(&path), 2);
    }

    fn append(db: &Database, key: &str) {
        use rusqlite::types::Value;
        let values = vec![Value::Text(key.into()), Value::Text("v".into())];
        db.append("INSERT INTO settings (key, value) VALUES (?1, ?2)", values).unwrap();
    }

    /// An appended row commits with the next durable commit, before that
    /// commit's own work; alone, the flusher commits it; what is queued at
    /// close is committed then; `lock` commits it before handing out the
    /// connection; a row that fails to insert loses only itself.
    #[test]
    fn appended_rows_commit_with_the_next_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Database::open(&path, Durability::Full).unwrap();
        append(&db, "a1");
        db.durable(|c| {
            // Not written yet: queued rows go in at the commit.
            assert_eq!(c.query_row("SELECT COUNT(*) FROM settings", [], |r| r.get::<_, i64>(0)).unwrap(), 0);
            put(c, "d1")
        })
        .unwrap();
        assert_eq!(keys(&path), ["a1", "d1"]);

        append(&db, "a2");
        let deadline = Instant::now() + Duration::from_secs(10);
        while keys(&path).len() < 3 {
            assert!(Instant::now() < deadline, "the flusher never committed the appended row");
            std::thread::sleep(FLUSH_AFTER);
        }

        append(&db, "a1"); // a duplicate key: fails alone
        append(&db, "a3");
        let seen: i64 = db.lock().query_row("SELECT COUNT(*) FROM settings", [], |r| r.get(0)).unwrap();
        assert_eq!(seen, 4);

        append(&db, "a4");
        drop(db);
        assert_eq!(keys(&path), ["a1", "a2", "a3", "a4", "d1"]);
    }

    /// A failed or panicking transaction undoes its own changes only; the
    /// batch it joined goes on and commits.
    #[test]
    fn a_failed_transaction_undoes_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Database::open(&path, Durability::Process).unwrap();
        db.deferred(|c| put(c, "kept")).unwrap();
        let failed: Result<usize, rusqlite::Error> = db.deferred(|c| {
            put(c, "undone")?;
            put(c, "kept") // the key exists: fails, and `undone` goes with it
        });
        assert!(failed.is_err());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<(), rusqlite::Error> = db.deferred(|c| {
                put(c, "also undone")?;
                panic!("a bug mid-transaction")
            });
        }));
        assert!(panicked.is_err());
        db.durable(|c| put(c, "last")).unwrap();
        assert_eq!(keys(&path), ["kept", "last"]);
    }

    /// A panic in the middle of a durable transaction with settlements in
    /// savepoints of their own undoes all of it (not just the savepoint it
    /// happened in), reports it as not committed, and leaves the batch's
    /// earlier deferred work to commit.
    #[test]
    fn a_panic_undoes_the_whole_durable_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Database::open(&path, Durability::Full).unwrap();
        db.deferred(|c| put(c, "deferred")).unwrap();
        let mut told = None;
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<(), rusqlite::Error> = db.durable_then(
                |c| {
                    in_savepoint(c, |sp| put(sp, "first item"))?;
                    in_savepoint(c, |sp| -> rusqlite::Result<()> {
                        put(sp, "second item")?;
                        panic!("a bug in the second item")
                    })
                },
                |_, committed| told = Some(committed),
            );
        }));
        assert!(panicked.is_err());
        assert_eq!(told, None, "a panic never reports a commit");
        db.durable(|c| put(c, "after")).unwrap();
        assert_eq!(keys(&path), ["after", "deferred"]);
    }

    /// What is written through `lock()` is committed, and the batch open
    /// before it is committed first.
    #[test]
    fn lock_commits_the_batch_before_handing_out_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Database::open(&path, Durability::Full).unwrap();
        db.deferred(|c| put(c, "deferred")).unwrap();
        {
            let mut conn = db.lock();
            let tx = conn.transaction().expect("no transaction is open under lock()");
            put(&tx, "own").unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(settings_count(&path), 2);
    }
}
