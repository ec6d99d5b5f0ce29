//! Every listing an agent (or an admin) can ask for reads an index, never
//! a whole table: checked on SQLite's own query plans, so a change of SQL
//! or schema that would turn a listing into a scan of the ledger fails
//! here, whatever the machine's speed.

use std::sync::Arc;

use fuelhost_ledger::{AgentId, TransferQuery, UsageQuery};

use crate::database::{Database, Durability};
use crate::plans::{assert_no_scan, plan};

fn db() -> (tempfile::TempDir, Arc<Database>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(&dir.path().join("p.db"), Durability::Process).unwrap());
    (dir, db)
}

#[test]
fn usage_listings_read_through_an_index() {
    let (_d, db) = db();
    let bob = Some(AgentId::new("bob").unwrap());
    let queries = [
        ("an agent's usage", UsageQuery { agent: bob.clone(), ..Default::default() }),
        ("an agent's next page", UsageQuery { agent: bob.clone(), before: Some(10), ..Default::default() }),
        (
            "an agent's period",
            UsageQuery { agent: bob.clone(), from_ms: Some(5), to_ms: Some(9), ..Default::default() },
        ),
        ("an agent's artifact", UsageQuery { agent: bob, artifact: Some("a/b@1".into()), ..Default::default() }),
        ("everyone's usage", UsageQuery::default()),
        ("everyone's period", UsageQuery { from_ms: Some(5), ..Default::default() }),
    ];
    for (what, q) in queries {
        let (sql, params) = crate::usage::usage_listing(&db.committed(), &q).unwrap();
        assert_no_scan(what, &plan(&db, &sql, params));
    }
}

#[test]
fn transfer_listings_read_through_an_index() {
    use rusqlite::types::Value;
    let (_d, db) = db();
    for (what, agent) in [("an agent's transfers", Some("bob")), ("everyone's transfers", None)] {
        let sql = crate::journal::agent_listing(agent);
        let params =
            vec![agent.map_or(Value::Null, |a| Value::Text(a.into())), Value::Integer(100), Value::Integer(50)];
        assert_no_scan(what, &plan(&db, sql, params));
    }
    let _ = TransferQuery::default();
}
