//! # fuelhost-store
//!
//! The SQL the host's stores (settings, API keys, memberships,
//! heartbeats, approvals, ...) speak, on SQLite or PostgreSQL alike.
//!
//! **What it owns.** [`Value`] and [`Row`] (what goes in and comes out of
//! a statement), [`Tx`] (statements inside one transaction) and [`Sql`]
//! (a database that runs transactions). A store is written once, against
//! [`Sql`], in the SQL both databases accept: `?1`-style placeholders
//! (PostgreSQL's backend turns them into `$1`), `ON CONFLICT` for upserts,
//! integers for flags, blobs passed as parameters (never as literals),
//! and no function of one dialect alone. Each backend keeps its schema
//! (SQLite's `schema.rs`, PostgreSQL's migrations), with the same tables
//! and columns.
//!
//! **Why not one trait per store.** The stores are small and their SQL is
//! the same on both databases; written once, they cannot drift apart, and
//! one set of scenarios (`tests/` of `fuelhost`) holds both to it. The
//! ledger is the exception: its speed lives in each backend's own SQL
//! and memory (`fuelhost-sqlite`'s journal, PostgreSQL's row locks), so it
//! is a trait of its own (`fuelhost_ledger::Ledger`).
//!
//! **Transactions.** [`write`] runs a closure as one transaction: all of
//! it or none. PostgreSQL runs it `SERIALIZABLE`, and runs it again when
//! another host's transaction won (so a closure must not have effects
//! outside the database, or must tolerate running twice); SQLite has one
//! writer. [`Commit::Deferred`] lets SQLite join the write to its next
//! batch (for what charges nothing and can be lost by a crash with the
//! work it belongs to); PostgreSQL commits every write.

pub mod archive;
pub mod settings;
mod value;

pub use value::{FromValue, Row, Value};

/// Why a statement or transaction failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached, or could not commit the work
    /// (restarting, out of connections, a conflict it gave up retrying):
    /// nothing was done, and the same work may succeed later. What it said.
    #[error("{0}")]
    Storage(String),
    /// The database refused the statement for what it says or holds (a
    /// constraint, a value of the wrong type, a statement it cannot run),
    /// or answered what the store cannot make sense of: running it again
    /// gives the same answer. A fault of the store's, not of the database's
    /// availability. What it said.
    #[error("{0}")]
    Refused(String),
    /// A column held something other than what the store reads from it.
    #[error("column {column}: {problem}")]
    Column {
        /// Its position in the row.
        column: usize,
        /// What was wrong.
        problem: String,
    },
}

impl StoreError {
    /// Whether the work may succeed if sent again later (the database was
    /// unreachable or busy), rather than being refused for what it is.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Storage(_))
    }
}

/// How soon a write must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Committed (and, as the database is configured, synced) before
    /// [`write`] returns.
    Durable,
    /// May wait for the next commit (SQLite's write batch, within its
    /// flush delay); PostgreSQL commits it at once.
    Deferred,
}

/// Which database a [`Sql`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded file.
    Sqlite,
    /// A PostgreSQL server, possibly shared by several hosts.
    Postgres,
}

/// Statements inside one transaction (or, for reads, one connection).
pub trait Tx {
    /// Run `sql` with `params`; how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;
    /// The rows `sql` returns.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;
    /// Tell every other host on this database, once the transaction
    /// commits, that `topic` changed (`key` says what of it, or is empty),
    /// so that they drop what they keep of it in memory. Hosts on SQLite
    /// are alone with their file: nothing to tell.
    fn notify(&mut self, topic: &str, key: &str) -> Result<(), StoreError>;
}

impl dyn Tx + '_ {
    /// The first row of `sql`, if it returns any.
    pub fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of `sql`; none is an error naming the statement.
    pub fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?.ok_or_else(|| StoreError::Refused(format!("no row returned by `{}`", sql.trim())))
    }
}

/// A database the stores run on.
pub trait Sql: Send + Sync {
    /// Which one it is.
    fn backend(&self) -> Backend;

    /// Run `f` as one transaction and commit it (see [`Commit`]); an `Err`
    /// from `f` rolls it back. Use [`write`], which carries `f`'s result.
    fn write_dyn(
        &self,
        commit: Commit,
        f: &mut (dyn FnMut(&mut dyn Tx) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError>;

    /// Run `f`'s reads (it must not write) on a connection that sees
    /// everything committed. Use [`read`].
    fn read_dyn(&self, f: &mut (dyn FnMut(&mut dyn Tx) -> Result<(), StoreError> + Send)) -> Result<(), StoreError>;
}

/// `f`'s error, kept aside while the transaction unwinds.
const ABORTED: &str = "the transaction's own work failed";

/// Run `f` as one transaction on `db` (see [`Sql::write_dyn`]): its value,
/// or its error (the transaction rolled back), or the database's. `f` is
/// `Send`: a backend may run it on a thread of its own (PostgreSQL's
/// driver may not block inside an async runtime).
pub fn write<T: Send, E: From<StoreError> + Send>(
    db: &dyn Sql,
    commit: Commit,
    f: impl FnMut(&mut dyn Tx) -> Result<T, E> + Send,
) -> Result<T, E> {
    carry(|g| db.write_dyn(commit, g), f)
}

/// Run `f`'s reads on `db` (see [`Sql::read_dyn`]).
pub fn read<T: Send, E: From<StoreError> + Send>(
    db: &dyn Sql,
    f: impl FnMut(&mut dyn Tx) -> Result<T, E> + Send,
) -> Result<T, E> {
    carry(|g| db.read_dyn(g), f)
}

/// Hand `f` to `run` (a backend's entry point, which sees only `()` or a
/// [`StoreError`]) and carry `f`'s own value or error back out.
fn carry<T: Send, E: From<StoreError> + Send>(
    run: impl FnOnce(&mut (dyn FnMut(&mut dyn Tx) -> Result<(), StoreError> + Send)) -> Result<(), StoreError>,
    mut f: impl FnMut(&mut dyn Tx) -> Result<T, E> + Send,
) -> Result<T, E> {
    let mut out: Option<Result<T, E>> = None;
    let done = run(&mut |tx| match f(tx) {
        Ok(v) => {
            out = Some(Ok(v));
            Ok(())
        }
        Err(e) => {
            out = Some(Err(e));
            Err(StoreError::Refused(ABORTED.into()))
        }
    });
    match (done, out) {
        (Ok(()), Some(Ok(v))) => Ok(v),
        (Err(StoreError::Refused(m)), Some(Err(e))) if m == ABORTED => Err(e),
        (Err(e), _) => Err(e.into()),
        (Ok(()), _) => Err(StoreError::Refused("the database returned without running the work".into()).into()),
    }
}

/// The parameters of a statement: `params![a, b]` is `&[Value::from(a),
/// Value::from(b)]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[$crate::Value] };
    ($($v:expr),+ $(,)?) => { &[$($crate::Value::from($v)),+] as &[$crate::Value] };
}
