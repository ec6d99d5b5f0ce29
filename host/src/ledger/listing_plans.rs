//! Every listing an agent (or an admin) can ask for reads an index, never
//! a whole table: checked on SQLite's own query plans, so a change of SQL
//! or schema that would turn a listing into a scan of the ledger fails
//! here, whatever the machine's speed.

use std::sync::Arc;

use crate::agent::AgentId;
use crate::audit::AuditQuery;
use crate::db::{Database, Durability};
use crate::ledger::{TransferQuery, UsageQuery};

/// The plan's details, one line per step.
fn plan(db: &Database, sql: &str, params: Vec<rusqlite::types::Value>) -> Vec<String> {
    let conn = db.committed();
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3)).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// No step reads a ledger table from end to end.
fn assert_no_scan(what: &str, steps: &[String]) {
    for step in steps {
        let scans_a_table = step.starts_with("SCAN ")
            && ["usage_records", "transfers", "audit", "api_keys", "consumer_hours"]
                .iter()
                .any(|t| step == &format!("SCAN {t}") || step.starts_with(&format!("SCAN {t} ")))
            && !step.contains("USING");
        assert!(!scans_a_table, "{what} scans a table: {steps:#?}");
    }
}

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
        let (sql, params) = super::sqlite::usage_listing(&db.committed(), &q).unwrap();
        assert_no_scan(what, &plan(&db, &sql, params));
    }
}

#[test]
fn transfer_listings_read_through_an_index() {
    use rusqlite::types::Value;
    let (_d, db) = db();
    for (what, agent) in [("an agent's transfers", Some("bob")), ("everyone's transfers", None)] {
        let sql = super::journal::agent_listing(agent);
        let params =
            vec![agent.map_or(Value::Null, |a| Value::Text(a.into())), Value::Integer(100), Value::Integer(50)];
        assert_no_scan(what, &plan(&db, sql, params));
    }
    let _ = TransferQuery::default();
}

#[test]
fn audit_listings_read_through_an_index() {
    let (_d, db) = db();
    let queries = [
        ("a subject's decisions", AuditQuery { subject: Some("bob".into()), ..Default::default() }),
        ("an invocation's decisions", AuditQuery { invocation: Some("inv-1".into()), ..Default::default() }),
        (
            "a subject's denials",
            AuditQuery { subject: Some("bob".into()), decision: Some("deny".into()), ..Default::default() },
        ),
        ("the next page", AuditQuery { after: Some(1_000), ..Default::default() }),
    ];
    for (what, q) in queries {
        let (sql, params) = crate::audit::listing(&q);
        assert_no_scan(what, &plan(&db, &sql, params));
    }
}
