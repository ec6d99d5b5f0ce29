//! Connecting to PostgreSQL: a pool of connections ([`Database`]), the
//! schema brought up to date at open (`migrations/`, versioned with
//! refinery), transactions retried when PostgreSQL asks for it, and errors
//! that name the database without its password.

use std::time::Duration;

use std::collections::HashMap;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{NoTls, Row, Statement, Transaction};
use r2d2_postgres::PostgresConnectionManager;

use fuelhost_ledger::LedgerError;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct Database {
    pool: r2d2::Pool<Manager>,
    config: postgres::Config,
    shown: String,
    /// Who sends this pool's change notices (unique per open), so that its
    /// own listener passes over them (see `changes.rs`).
    origin: std::sync::Arc<str>,
}

/// A pooled connection with the statements prepared on it, so a
/// statement costs one round trip, not two (prepare, then execute).
pub struct Conn {
    client: postgres::Client,
    prepared: HashMap<String, Statement>,
}

/// The pool's manager: the driver's, with a statement cache per
/// connection.
struct Manager(PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn { client: self.0.connect()?, prepared: HashMap::new() })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

impl Conn {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.prepared.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Run `sql` on its own (autocommit); the rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params)
    }

    /// The rows of `sql`, run on its own.
    pub(crate) fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params)
    }

    /// Forget the statements prepared (the server dropped them).
    pub(crate) fn forget_statements(&mut self) {
        self.prepared.clear();
    }
}

/// A transaction whose statements are prepared once per connection.
pub struct Tx<'a> {
    tx: Transaction<'a>,
    prepared: &'a mut HashMap<String, Statement>,
}

impl Tx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql)?;
        self.prepared.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Run `sql`; the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.execute(&statement, params)
    }

    /// The rows of `sql`.
    pub fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.query(&statement, params)
    }

    /// The row of `sql`, if any (more than one is an error).
    pub fn query_opt(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.query_opt(&statement, params)
    }

    /// Run `sql` (statements without parameters) through the simple
    /// protocol: one round trip, nothing prepared.
    pub fn batch(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.tx.batch_execute(sql)
    }

    /// The one row of `sql`.
    pub fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.query_one(&statement, params)
    }
}

/// Run `f` where the driver may block. The driver drives its connections
/// on a runtime of its own and blocks on it, which tokio forbids on a
/// thread already inside a runtime (an API handler, a guest's host call
/// under WASI's runtime): there `f` runs on a thread of its own, and this
/// one waits for it.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL is not a PostgreSQL connection URL.
    #[error("`{url}` is not a PostgreSQL URL ({reason}): use postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")]
    BadUrl {
        /// The URL, password hidden.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// No connection could be made.
    #[error(
        "cannot connect to the database at {url}: {reason}; check that PostgreSQL runs there and takes \
         connections, and the host, port, user, password and database name in the URL"
    )]
    Unreachable {
        /// The URL, password hidden.
        url: String,
        /// What the driver said.
        reason: String,
    },
    /// The schema could not be brought up to date.
    #[error("bringing the schema of {url} up to date failed: {reason}")]
    Migration {
        /// The URL, password hidden.
        url: String,
        /// What failed.
        reason: String,
    },
}

/// `e` and what caused it (the driver says "error connecting to server";
/// its source says "Connection refused").
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut said = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        said = format!("{said}: {s}");
        source = s.source();
    }
    said
}

/// `url` with its password (if any) replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

impl Database {
    /// Connect to `url` (at most `max_connections` at once) and bring the
    /// schema up to date.
    pub fn open(url: &str, max_connections: u32) -> Result<Database, OpenError> {
        off_runtime(|| Database::open_here(url, max_connections))
    }

    fn open_here(url: &str, max_connections: u32) -> Result<Database, OpenError> {
        let shown = redact(url);
        let config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| OpenError::BadUrl { url: shown.clone(), reason: e.to_string() })?;
        // One connection now, so a wrong URL or a server that is down is
        // refused at once, with the driver's reason; it runs the migrations.
        let mut first = config.connect(NoTls).map_err(|e| OpenError::Unreachable {
            url: shown.clone(),
            reason: e.as_db_error().map_or_else(|| with_sources(&e), |db| db.message().to_string()),
        })?;
        let runner = embedded::migrations::runner();
        let known = runner.get_migrations().iter().map(|m| i64::from(m.version())).max().unwrap_or(0);
        let recorded: Option<i64> = first
            .query_opt("SELECT MAX(version)::BIGINT FROM refinery_schema_history", &[])
            .ok()
            .flatten()
            .and_then(|r| r.get(0));
        if let Some(version) = recorded.filter(|v| *v > known) {
            return Err(OpenError::Migration {
                url: shown.clone(),
                reason: format!(
                    "a newer fuelhost migrated this database (its schema is at version {version}; this release knows \
                     versions up to {known}): run that release or a later one"
                ),
            });
        }
        runner
            .set_abort_missing(true)
            .run(&mut first)
            .map_err(|e| OpenError::Migration { url: shown.clone(), reason: e.to_string() })?;
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(5))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            // No test query on every checkout (a round trip per
            // transaction): a connection the server closed fails its
            // transaction, which is retried on a fresh one (`failed`).
            .test_on_check_out(false)
            .build_unchecked(Manager(PostgresConnectionManager::new(config.clone(), NoTls)));
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        static OPENS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = OPENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let origin = format!("{}-{nanos:x}-{n}", std::process::id()).into();
        Ok(Database { pool, config, shown, origin })
    }

    /// A connection of its own, outside the pool (for what must not wait
    /// behind the pool: a host's lease).
    pub(crate) fn connect_alone(&self) -> Result<postgres::Client, LedgerError> {
        self.connect_as(&self.config)
    }

    /// A connection of its own made with `config` (this database's, or a
    /// copy with settings of its own).
    fn connect_as(&self, config: &postgres::Config) -> Result<postgres::Client, LedgerError> {
        off_runtime(|| config.connect(NoTls))
            .map_err(|e| LedgerError::Storage(format!("no connection to the database at {}: {e}", self.shown)))
    }

    /// A connection of its own, outside the pool, for listening: TCP
    /// keepalives after 5 s of silence, 3 probes 5 s apart unanswered close
    /// it, and so does data (the listener's own `SELECT 1`) unacknowledged
    /// for 20 s, which keepalives alone would not cover: a peer gone
    /// without a word is found within about 20 s either way.
    pub(crate) fn connect_listening(&self) -> Result<postgres::Client, LedgerError> {
        let mut config = self.config.clone();
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(20));
        self.connect_as(&config)
    }

    /// Who this pool's change notices come from (see `changes.rs`).
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// The URL it was opened with, password hidden.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Run `f` in one transaction and commit. When PostgreSQL refuses the
    /// transaction for another's sake (a serialization failure, a deadlock,
    /// or a unique key another transaction just took), it is rolled back
    /// and `f` runs again, at most three times in all.
    pub fn write<T: Send>(
        &self,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T, LedgerError> + Send,
    ) -> Result<T, LedgerError> {
        off_runtime(|| self.write_here(&mut f))
    }

    fn write_here<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T, LedgerError>) -> Result<T, LedgerError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.attempt(&mut f);
            match result {
                Err(LedgerError::Storage(m)) if m.starts_with(RETRY) => {
                    // Enough tries for every pooled connection to be found
                    // stale after a restart, and then three more.
                    if attempt < 4 + self.pool.max_size() {
                        // Another host's transaction won, or the connection
                        // was stale: give it a moment, on a fresh one.
                        let jitter = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.subsec_nanos() % 5_000_000);
                        std::thread::sleep(Duration::from_nanos(u64::from(jitter) + 1_000_000 * u64::from(attempt)));
                        continue;
                    }
                    return Err(LedgerError::Storage(m[RETRY.len()..].to_string()));
                }
                other => return other,
            }
        }
    }

    /// One attempt of [`Database::write`]. A COMMIT whose answer was lost
    /// (the connection closed, or any error but the two that guarantee a
    /// rollback) is looked up by its transaction id on a fresh connection,
    /// asked again while the server does not answer (up to 30 s):
    /// committed is success, aborted is retried, anything else is an error
    /// that says the outcome is unknown. Never applied twice.
    fn attempt<T>(&self, f: &mut impl FnMut(&mut Tx<'_>) -> Result<T, LedgerError>) -> Result<T, LedgerError> {
        let mut conn = self.pool.get().map_err(|e| self.unreachable(e))?;
        let (value, xid, committed) = {
            let Conn { client, prepared } = &mut *conn;
            let tx = client.transaction().map_err(|e| self.failed(e))?;
            let mut tx = Tx { tx, prepared };
            let value = match f(&mut tx) {
                Ok(value) => value,
                Err(e) => {
                    // A statement prepared before a schema change (or
                    // dropped by the server) is prepared again next time.
                    if let LedgerError::Storage(m) = &e {
                        if m.contains("(26000)") || m.contains("(0A000)") {
                            tx.prepared.clear();
                            return Err(LedgerError::Storage(format!("{RETRY}{m}")));
                        }
                    }
                    return Err(e);
                }
            };
            let xid: String =
                tx.query_one("SELECT pg_current_xact_id()::TEXT", &[]).map_err(|e| self.failed(e))?.get(0);
            (value, xid, tx.tx.commit())
        };
        let Err(e) = committed else { return Ok(value) };
        let rolled_back = e
            .code()
            .is_some_and(|c| *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED);
        if rolled_back {
            return Err(self.failed(e));
        }
        drop(conn);
        // The server is likely restarting: ask until it answers, for up to
        // half a minute (a reservation whose commit went unanswered would
        // otherwise hold a live host's budget until it restarts).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut wait = Duration::from_millis(50);
        let status: Option<String> = loop {
            let asked = self.pool.get().ok().and_then(|mut c| {
                c.client.query_one("SELECT pg_xact_status($1::TEXT::xid8)", &[&xid]).ok().map(|r| r.get(0))
            });
            match asked {
                Some(status) => break status,
                None if std::time::Instant::now() < deadline => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
                None => break None,
            }
        };
        match status.as_deref() {
            Some("committed") => Ok(value),
            Some("aborted") => Err(LedgerError::Storage(format!("{RETRY}the commit was lost and rolled back: {e}"))),
            _ => Err(LedgerError::Storage(format!(
                "the connection to the database at {} failed while committing ({e}), and whether this change was \
                 made could not be read back: read it back before trying again",
                self.shown
            ))),
        }
    }

    /// Run `f` on a connection, outside any transaction of its own.
    /// A read on a connection the server closed (a restart) is tried again,
    /// as often as the pool hands out such connections.
    pub fn read<T: Send>(
        &self,
        mut f: impl FnMut(&mut postgres::Client) -> Result<T, LedgerError> + Send,
    ) -> Result<T, LedgerError> {
        self.read_with(|conn| f(&mut conn.client))
    }

    /// [`Database::read`] on a pooled connection and its statements.
    pub(crate) fn read_with<T: Send>(
        &self,
        mut f: impl FnMut(&mut Conn) -> Result<T, LedgerError> + Send,
    ) -> Result<T, LedgerError> {
        off_runtime(|| self.read_here(&mut f))
    }

    fn read_here<T>(&self, mut f: impl FnMut(&mut Conn) -> Result<T, LedgerError>) -> Result<T, LedgerError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.pool.get().map_err(|e| self.unreachable(e))?;
            match f(&mut conn) {
                Err(LedgerError::Storage(m)) if m.starts_with(RETRY) && attempt <= self.pool.max_size() => continue,
                Err(LedgerError::Storage(m)) if m.starts_with(RETRY) => {
                    return Err(LedgerError::Storage(m[RETRY.len()..].to_string()))
                }
                other => return other,
            }
        }
    }

    /// A driver error as the ledger's: one to retry is marked so that
    /// [`Database::write`] retries it. (The stores' statements are
    /// classified first in `store.rs`: there a unique key taken is refused,
    /// not retried; a store that may meet one says `ON CONFLICT`, or reads
    /// the key first, where `SERIALIZABLE` reports a serialization failure
    /// instead.)
    pub fn failed(&self, e: postgres::Error) -> LedgerError {
        let retry = e.is_closed()
            || e.code().is_some_and(|c| {
                *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::UNIQUE_VIOLATION
                    || *c == SqlState::ADMIN_SHUTDOWN
            });
        let said = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => format!("the database at {}: {e}", self.shown),
        };
        LedgerError::Storage(if retry { format!("{RETRY}{said}") } else { said })
    }

    fn unreachable(&self, e: r2d2::Error) -> LedgerError {
        LedgerError::Storage(format!("no connection to the database at {} ({e}); retry once it is back", self.shown))
    }
}

/// How [`Database::failed`] marks an error [`Database::write`] retries.
pub(crate) const RETRY: &str = "retry: ";

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("url", &self.shown).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_password_never_shows() {
        assert_eq!(redact("postgres://u:secret@db:5432/x"), "postgres://u:***@db:5432/x");
        assert_eq!(redact("postgres://u@db/x?sslmode=disable"), "postgres://u@db/x?sslmode=disable");
        assert_eq!(redact("postgres://u:p@ss@db/x"), "postgres://u:***@db/x");
        assert_eq!(redact("postgres://db"), "postgres://db");
        assert!(!redact("postgresql://a:b%40c@h/d").contains("b%40c"));
    }
}
