//! The host's stores' SQL on a real PostgreSQL server: what fails is told
//! apart by why, since an API answers "try again later" (503) only for
//! what may pass, never for a statement the database refuses for what it
//! says (a constraint, a type), which would fail the same way forever.

use fuelhost_postgres::{Database, ScratchServer};
use fuelhost_store::{params, Commit, StoreError, Value};

fn insert_setting(db: &Database, key: &str, value: Value) -> Result<(), StoreError> {
    fuelhost_store::write(db, Commit::Durable, |tx| {
        tx.execute("INSERT INTO settings (key, value) VALUES (?1, ?2)", &[Value::from(key), value.clone()]).map(drop)
    })
}

#[test]
fn a_statement_the_database_refuses_is_refused_not_unavailable() {
    let server = ScratchServer::shared().expect("a scratch PostgreSQL server (scripts/setup.sh installs it)");
    let db = Database::open(&server.fresh_database("refused").unwrap(), 2).unwrap();

    let null = insert_setting(&db, "k", Value::Null).unwrap_err();
    assert!(matches!(&null, StoreError::Refused(m) if m.contains("23502")), "NOT NULL: {null:?}");
    assert!(!null.is_unavailable());

    insert_setting(&db, "once", Value::from("1")).unwrap();
    // A key taken is refused at once, not retried as a conflict that may
    // pass: the stores that may meet one say `ON CONFLICT`.
    let twice = insert_setting(&db, "once", Value::from("2")).unwrap_err();
    assert!(matches!(&twice, StoreError::Refused(m) if m.contains("23505")), "UNIQUE: {twice:?}");

    let syntax = fuelhost_store::read(&db, |tx| tx.query("SELECT FROM WHERE", params![]).map(drop)).unwrap_err();
    assert!(matches!(&syntax, StoreError::Refused(m) if m.contains("42601")), "syntax: {syntax:?}");

    let typed = fuelhost_store::read(&db, |tx| tx.query("SELECT 1.5::float8", params![]).map(drop)).unwrap_err();
    assert!(
        matches!(&typed, StoreError::Column { column: 0, .. }),
        "a column of a type the stores never read: {typed:?}"
    );

    let wrong = fuelhost_store::read(&db, |tx| tx.query("SELECT ?1::bigint", params!["seven"]).map(drop)).unwrap_err();
    assert!(matches!(&wrong, StoreError::Refused(_)), "a parameter of the wrong type: {wrong:?}");

    // Nothing of what failed was written; what succeeded was.
    let kept = fuelhost_store::read(&db, |tx| {
        tx.query("SELECT key, value FROM settings ORDER BY key", params![])?
            .iter()
            .map(|r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)))
            .collect::<Result<Vec<_>, StoreError>>()
    })
    .unwrap();
    assert_eq!(kept, vec![("once".to_string(), "1".to_string())]);
}

#[test]
fn a_database_that_is_down_is_unavailable() {
    let mut server = ScratchServer::start().unwrap();
    let db = Database::open(&server.fresh_database("down").unwrap(), 2).unwrap();
    insert_setting(&db, "before", Value::from("1")).unwrap();
    server.stop();
    let down = insert_setting(&db, "during", Value::from("1")).unwrap_err();
    assert!(down.is_unavailable(), "{down:?}");
    let read = fuelhost_store::read(&db, |tx| tx.query("SELECT 1", params![]).map(drop)).unwrap_err();
    assert!(read.is_unavailable(), "{read:?}");
    server.restart().unwrap();
    insert_setting(&db, "after", Value::from("1")).unwrap();
}
