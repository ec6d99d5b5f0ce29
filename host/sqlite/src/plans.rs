//! Query plans, for tests that hold a listing to an index: SQLite's own
//! `EXPLAIN QUERY PLAN`, so a change of SQL or schema that would turn a
//! listing into a scan of a large table fails, whatever the machine's speed.

use crate::database::Database;

/// The plan of `sql` with `params`: its details, one line per step.
pub fn plan(db: &Database, sql: &str, params: Vec<rusqlite::types::Value>) -> Vec<String> {
    let conn = db.committed();
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("a statement to explain");
    let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3)).expect("its plan");
    rows.collect::<Result<_, _>>().expect("its plan")
}

/// Panics if a step of `steps` reads one of the large tables (usage
/// records, transfers, the audit log, API keys, hourly consumers) from end
/// to end; `what` names the listing in the message.
pub fn assert_no_scan(what: &str, steps: &[String]) {
    for step in steps {
        let scans_a_table = step.starts_with("SCAN ")
            && ["usage_records", "transfers", "audit", "api_keys", "consumer_hours"]
                .iter()
                .any(|t| step == &format!("SCAN {t}") || step.starts_with(&format!("SCAN {t} ")))
            && !step.contains("USING");
        assert!(!scans_a_table, "{what} scans a table: {steps:#?}");
    }
}
