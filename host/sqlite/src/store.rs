//! The host's stores on SQLite: [`fuelhost_store::Sql`] for [`Database`].
//! A durable write is [`Database::durable`], a deferred one
//! [`Database::deferred`] (each in a savepoint of its own, so an `Err`
//! undoes it alone), a read [`Database::read`]; statements go through the
//! connection's prepared-statement cache.

use rusqlite::types::{Value as Lite, ValueRef};
use rusqlite::Connection;

use fuelhost_store::{Backend, Commit, Row, Sql, StoreError, Tx, Value};

use crate::Database;

impl crate::FromSqlite for StoreError {
    fn from_sqlite(e: rusqlite::Error) -> Self {
        storage(e)
    }
}

/// Statements on the connection a [`Database`] guard holds (or one of the
/// crate's transactions).
pub(crate) struct LiteTx<'a>(pub(crate) &'a Connection);

/// The stores' values as SQLite's.
pub fn bind(params: &[Value]) -> Vec<Lite> {
    params
        .iter()
        .map(|v| match v {
            Value::Null => Lite::Null,
            Value::Integer(i) => Lite::Integer(*i),
            Value::Text(s) => Lite::Text(s.clone()),
            Value::Blob(b) => Lite::Blob(b.clone()),
        })
        .collect()
}

/// What went wrong, as the stores see it: the file busy, locked, full,
/// unreadable or unwritable is [`StoreError::Storage`] (it may pass);
/// anything else (a constraint, a statement SQLite cannot run, a value it
/// cannot bind) is [`StoreError::Refused`].
fn storage(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    let unavailable = matches!(
        e.sqlite_error_code(),
        Some(
            C::DatabaseBusy
                | C::DatabaseLocked
                | C::SystemIoFailure
                | C::DiskFull
                | C::CannotOpen
                | C::OutOfMemory
                | C::ReadOnly
                | C::FileLockingProtocolFailed
                | C::DatabaseCorrupt
                | C::NotADatabase
        )
    );
    if unavailable {
        StoreError::Storage(e.to_string())
    } else {
        StoreError::Refused(e.to_string())
    }
}

impl Tx for LiteTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(sql).map_err(storage)?;
        let n = stmt.execute(rusqlite::params_from_iter(bind(params))).map_err(storage)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(sql).map_err(storage)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(bind(params))).map_err(storage)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(storage)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(storage)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Integer(v),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                    ValueRef::Real(r) => {
                        return Err(StoreError::Column {
                            column: i,
                            problem: format!("a real number ({r}) where the stores keep none"),
                        })
                    }
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn notify(&mut self, _topic: &str, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Run `f`'s reads on the second, read-only connection (see
/// [`Database::committed`]), after committing the open write batch so that
/// they see everything written so far: for scans (the audit log's
/// listings) that must not hold up the connection calls settle on.
pub fn read_committed<T, E: From<StoreError>>(
    db: &Database,
    f: impl FnOnce(&mut dyn Tx) -> Result<T, E>,
) -> Result<T, E> {
    drop(db.lock());
    let conn = db.committed();
    f(&mut LiteTx(&conn))
}

impl Sql for Database {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn write_dyn(
        &self,
        commit: Commit,
        f: &mut (dyn FnMut(&mut dyn Tx) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        match commit {
            Commit::Durable => self.durable(|conn| f(&mut LiteTx(conn))),
            Commit::Deferred => self.deferred(|conn| f(&mut LiteTx(conn))),
        }
    }

    fn read_dyn(&self, f: &mut (dyn FnMut(&mut dyn Tx) -> Result<(), StoreError> + Send)) -> Result<(), StoreError> {
        let conn = self.read();
        f(&mut LiteTx(&conn))
    }
}

#[cfg(test)]
mod tests {
    use fuelhost_store::{params, Commit, StoreError, Value};

    use crate::{Database, Durability};

    /// A statement SQLite refuses for what it says is refused, not
    /// "unavailable": an API answers 503 (try again) only for what may pass.
    #[test]
    fn a_refused_statement_is_not_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("f.db"), Durability::Process).unwrap();
        let insert = |value: Value| {
            fuelhost_store::write(&db, Commit::Durable, |tx| {
                tx.execute("INSERT INTO settings (key, value) VALUES ('k', ?1)", std::slice::from_ref(&value)).map(drop)
            })
        };
        let null = insert(Value::Null).unwrap_err();
        assert!(matches!(null, StoreError::Refused(_)), "NOT NULL: {null:?}");
        insert(Value::from("1")).unwrap();
        let twice = insert(Value::from("2")).unwrap_err();
        assert!(matches!(&twice, StoreError::Refused(m) if m.contains("UNIQUE")), "{twice:?}");
        let syntax = fuelhost_store::read(&db, |tx| tx.query("SELECT FROM WHERE", params![]).map(drop)).unwrap_err();
        assert!(!syntax.is_unavailable(), "{syntax:?}");
    }
}
