//! Statement helpers every table's code uses: one statement, or one row,
//! through the connection's prepared-statement cache.

use rusqlite::Connection;

/// Run one statement through the connection's prepared-statement cache
/// (parsing SQL costs more than running these statements).
pub fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Query one row through the prepared-statement cache.
pub fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    fuelhost_ledger::now_ms()
}
