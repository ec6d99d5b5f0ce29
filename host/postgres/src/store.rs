//! The host's stores on PostgreSQL: [`fuelhost_store::Sql`] for
//! [`Database`]. The stores' SQL is written once for both databases
//! (`fuelhost-store`): its `?1` placeholders become `$1` here, and each
//! [`Value`] is encoded as the type PostgreSQL expects of its parameter
//! (an integer for a `BIGINT`, `INTEGER` or `BOOLEAN`, text, bytes), read
//! back the same way. A write runs `SERIALIZABLE` and is tried again when
//! another transaction won ([`Database::write`]); a read's statements run
//! each on its own, on one pooled connection.

use std::error::Error;

use postgres::types::{FromSql, IsNull, ToSql, Type};

use fuelhost_ledger::LedgerError;
use fuelhost_store::{Backend, Commit, Row, Sql, StoreError, Tx, Value};

use crate::connect::{Database, Tx as PgTx};

/// `sql` with each `?N` outside quotes written `$N`.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// A parameter, encoded as the type its statement declares.
#[derive(Debug)]
struct Param<'a>(&'a Value);

type Boxed = Box<dyn Error + Sync + Send>;

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Boxed> {
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Integer(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Text(s), _) if <&str as ToSql>::accepts(ty) => s.as_str().to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (v, ty) => Err(format!("a parameter of type {ty} cannot take {v:?}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column, read as the [`Value`] its type is stored as.
struct Column(Value);

impl<'a> FromSql<'a> for Column {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Boxed> {
        Ok(Column(match *ty {
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Integer(bool::from_sql(ty, raw)?.into()),
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            _ if <String as FromSql>::accepts(ty) => Value::Text(String::from_sql(ty, raw)?),
            _ => return Err(format!("a column of type {ty}, which the stores do not read").into()),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Boxed> {
        Ok(Column(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Where statements run: in a transaction, or each on its own.
enum On<'t, 'c> {
    Tx(&'t mut PgTx<'c>),
    Alone(&'t mut crate::connect::Conn),
}

/// Statements of one transaction (or a read's, each on its own); the
/// first error that calls for the whole to run again is kept for
/// [`Database::write`] (or [`Database::read_with`]).
struct Statements<'t, 'c> {
    on: On<'t, 'c>,
    db: &'t Database,
    retry: Option<LedgerError>,
}

impl Statements<'_, '_> {
    fn failed(&mut self, e: postgres::Error) -> StoreError {
        if refused(&e) {
            return StoreError::Refused(match e.as_db_error() {
                Some(db) => format!("{} ({})", db.message(), db.code().code()),
                None => format!("{e}: {}", e.source().map(ToString::to_string).unwrap_or_default()),
            });
        }
        let e = self.db.failed(e);
        let LedgerError::Storage(m) = &e else { return StoreError::Storage(e.to_string()) };
        let said = StoreError::Storage(m.strip_prefix(crate::connect::RETRY).unwrap_or(m).to_string());
        if m.starts_with(crate::connect::RETRY) || m.contains("(26000)") || m.contains("(0A000)") {
            self.retry.get_or_insert(e);
        }
        said
    }
}

/// Whether PostgreSQL refused the statement for what it says or holds
/// (SQLSTATE class 22, data exception; 23, a constraint, a unique key
/// included; 42, a statement it cannot run), or a value could not be
/// converted on the way in or out: sending it again gives the same answer.
/// Anything else (a lost connection, a shutdown, a serialization failure)
/// is the database's availability.
fn refused(e: &postgres::Error) -> bool {
    match e.code() {
        Some(code) => matches!(code.code().get(..2), Some("22" | "23" | "42")),
        None => {
            !e.is_closed()
                && e.source().is_some_and(|s| s.downcast_ref::<std::io::Error>().is_none() && e.as_db_error().is_none())
        }
    }
}

impl Tx for Statements<'_, '_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let params: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let done = match &mut self.on {
            On::Tx(tx) => tx.execute(&numbered(sql), &refs),
            On::Alone(conn) => conn.execute(&numbered(sql), &refs),
        };
        done.map_err(|e| self.failed(e))
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let params: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = match &mut self.on {
            On::Tx(tx) => tx.query(&numbered(sql), &refs),
            On::Alone(conn) => conn.query(&numbered(sql), &refs),
        };
        let rows = rows.map_err(|e| self.failed(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(row.len());
            for i in 0..row.len() {
                let Column(v) = row.try_get(i).map_err(|e| StoreError::Column {
                    column: i,
                    problem: format!("{e}: {}", e.source().map(ToString::to_string).unwrap_or_default()),
                })?;
                values.push(v);
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn notify(&mut self, topic: &str, key: &str) -> Result<(), StoreError> {
        let payload = format!("{} {topic} {key}", self.db.origin());
        self.execute("SELECT pg_notify(?1, ?2)", fuelhost_store::params![CHANNEL, payload]).map(drop)
    }
}

/// The channel hosts tell each other of changes on: each payload is the
/// sender's origin, a topic and a key, separated by single spaces.
pub const CHANNEL: &str = "fuelhost_changes";

/// What [`Database::write`] is given when the store's own work failed
/// (not retried; the store's error is kept aside).
const OWN_FAILURE: &str = "the store's work failed";

impl Database {
    /// Run `f`'s statements `on` a transaction or a connection: `Err`
    /// carries the error to retry on, if a statement needs the whole to run
    /// again, else `OWN_FAILURE` with `f`'s error in `failure`.
    fn run_store(
        &self,
        on: On<'_, '_>,
        f: &mut (dyn FnMut(&mut dyn Tx) -> Result<(), StoreError> + Send),
        failure: &mut Option<StoreError>,
    ) -> Result<(), LedgerError> {
        let mut statements = Statements { on, db: self, retry: None };
        match f(&mut statements) {
            Ok(()) => Ok(()),
            Err(e) => match statements.retry.take() {
                Some(retry) => Err(retry),
                None => {
                    *failure = Some(e);
                    Err(LedgerError::Storage(OWN_FAILURE.into()))
                }
            },
        }
    }
}

/// Run the stores' statements `f` inside the ledger's transaction `tx`
/// (`Database::write`'s): a failure that calls for the whole to run again
/// comes back as the error `Database::write` retries on.
pub(crate) fn in_tx<T>(
    db: &Database,
    tx: &mut PgTx<'_>,
    f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>,
) -> Result<T, LedgerError> {
    let mut statements = Statements { on: On::Tx(tx), db, retry: None };
    match f(&mut statements) {
        Ok(v) => Ok(v),
        Err(e) => Err(statements.retry.take().unwrap_or_else(|| LedgerError::Storage(e.to_string()))),
    }
}

fn store_error(e: LedgerError) -> StoreError {
    match e {
        LedgerError::Storage(m) => StoreError::Storage(m),
        other => StoreError::Storage(other.to_string()),
    }
}

impl Sql for Database {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn write_dyn(
        &self,
        _commit: Commit,
        f: &mut (dyn FnMut(&mut dyn Tx) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        let mut failure = None;
        let done = self.write(|tx| {
            failure = None;
            tx.batch("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").map_err(|e| self.failed(e))?;
            self.run_store(On::Tx(tx), f, &mut failure)
        });
        match (done, failure) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(own)) => Err(own),
            (Err(e), None) => Err(store_error(e)),
        }
    }

    fn read_dyn(&self, f: &mut (dyn FnMut(&mut dyn Tx) -> Result<(), StoreError> + Send)) -> Result<(), StoreError> {
        let mut failure = None;
        // Each statement on its own: a store's read is one statement, or
        // a few that need no common snapshot, and a transaction around
        // them would cost two more round trips.
        let done = self.read_with(|conn| {
            failure = None;
            let done = self.run_store(On::Alone(conn), f, &mut failure);
            if let Err(LedgerError::Storage(m)) = &done {
                if m.contains("(26000)") || m.contains("(0A000)") {
                    conn.forget_statements();
                }
            }
            done
        });
        match (done, failure) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(own)) => Err(own),
            (Err(e), None) => Err(store_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_outside_quotes_only() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ?1 AND c = '?2' OR d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' OR d = $12"
        );
        assert_eq!(numbered("SELECT 'it''s ?1', ?2"), "SELECT 'it''s ?1', $2");
    }
}
