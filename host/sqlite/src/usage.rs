//! Usage records: the columns read back, a record by id, and the
//! listings by agent or period, each through an index.

use rusqlite::{Connection, OptionalExtension};

use crate::database::one;
use crate::storage;
use fuelhost_ledger::AgentId;
use fuelhost_ledger::ResourcePolicy;
use fuelhost_ledger::UsageQuery;
use fuelhost_ledger::{LedgerError, Outcome, ResourcesConsumed, UsageRecord};

/// The columns `usage_from_row` reads, in its order.
pub(crate) const USAGE_COLUMNS: &str =
    "invocation_id, artifact, caller, owner, charged_to, resource_policy, outcome, fuel,
    memory_peak_bytes, disk_bytes, wall_time_ns, cpu_time_ns, price_paid, cost_usd_micros, output, error, settled_ms,
    rowid, llm_tokens";

/// [`USAGE_COLUMNS`] as read from `usage_records u`, in a join.
pub(crate) const USAGE_COLUMNS_OF_U: &str =
    "u.invocation_id, u.artifact, u.caller, u.owner, u.charged_to, u.resource_policy,
    u.outcome, u.fuel, u.memory_peak_bytes, u.disk_bytes, u.wall_time_ns, u.cpu_time_ns, u.price_paid,
    u.cost_usd_micros, u.output, u.error, u.settled_ms, u.rowid, u.llm_tokens";

pub(crate) fn usage_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UsageRecord> {
    let policy: String = r.get(5)?;
    let outcome: String = r.get(6)?;
    let n = |i: usize| r.get::<_, i64>(i).map(|v| v as u64);
    Ok(UsageRecord {
        invocation_id: r.get(0)?,
        artifact: r.get(1)?,
        caller: AgentId::trusted(r.get(2)?),
        owner: AgentId::trusted(r.get(3)?),
        charged_to: AgentId::trusted(r.get(4)?),
        resource_policy: ResourcePolicy::from_stored(&policy),
        outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Trap),
        consumed: ResourcesConsumed {
            fuel: n(7)?,
            memory_peak_bytes: n(8)?,
            disk_bytes: n(9)?,
            wall_time_ns: n(10)?,
            cpu_time_ns: n(11)?,
            llm_tokens: n(18)?,
        },
        price_paid: n(12)?,
        cost_usd_micros: n(13)?,
        output: r.get(14)?,
        error: r.get(15)?,
        settled_at_ms: r.get(16)?,
        seq: r.get(17)?,
    })
}

/// The SQL and parameters listing the usage records `q` asks for, newest
/// first, each arm an index range scan that stops at the limit: an
/// agent's records through the index of each party (caller, owner,
/// payer), a period turned into a range of positions through the index
/// on settlement time.
pub(crate) fn usage_listing(
    conn: &Connection,
    q: &UsageQuery,
) -> Result<(String, Vec<rusqlite::types::Value>), LedgerError> {
    use rusqlite::types::Value;
    let limit = q.limit.unwrap_or(100).min(10_000) as i64;
    // Positions are handed out in settlement order, so a period is a
    // range of positions (its bounds found through `usage_by_time`).
    let first_at = |ms: i64| -> Result<Option<i64>, LedgerError> {
        one(
            conn,
            "SELECT rowid FROM usage_records WHERE settled_ms >= ?1 ORDER BY settled_ms, rowid LIMIT 1",
            [ms],
            |r| r.get(0),
        )
        .optional()
        .map_err(storage)
    };
    let low = match q.from_ms {
        Some(ms) => first_at(ms)?.unwrap_or(i64::MAX),
        None => i64::MIN,
    };
    let mut high = q.before.unwrap_or(i64::MAX);
    if let Some(ms) = q.to_ms {
        high = high.min(first_at(ms)?.unwrap_or(i64::MAX));
    }
    let mut filters = String::from("rowid >= ?2 AND rowid < ?3");
    let mut params = vec![Value::Null, Value::Integer(low), Value::Integer(high), Value::Integer(limit)];
    if let Some(artifact) = &q.artifact {
        params.push(Value::Text(artifact.clone()));
        filters.push_str(&format!(" AND artifact = ?{}", params.len()));
    }
    if let Some(ms) = q.from_ms {
        params.push(Value::Integer(ms));
        filters.push_str(&format!(" AND settled_ms >= ?{}", params.len()));
    }
    if let Some(ms) = q.to_ms {
        params.push(Value::Integer(ms));
        filters.push_str(&format!(" AND settled_ms < ?{}", params.len()));
    }
    let sql = match &q.agent {
        None => format!("SELECT {USAGE_COLUMNS} FROM usage_records WHERE {filters} ORDER BY rowid DESC LIMIT ?4"),
        Some(agent) => {
            params[0] = Value::Text(agent.to_string());
            let arm = |party: &str| {
                format!(
                    "SELECT * FROM (SELECT rowid AS seq FROM usage_records WHERE {party} = ?1 AND {filters}
                     ORDER BY rowid DESC LIMIT ?4)"
                )
            };
            format!(
                "SELECT {USAGE_COLUMNS_OF_U} FROM ({} UNION {} UNION {}) AS mine
                 JOIN usage_records u ON u.rowid = mine.seq ORDER BY mine.seq DESC LIMIT ?4",
                arm("caller"),
                arm("owner"),
                arm("charged_to")
            )
        }
    };
    Ok((sql, params))
}

/// Whether `id` has a usage record (cheaper than reading it).
pub(crate) fn usage_exists(tx: &Connection, id: &str) -> Result<bool, LedgerError> {
    Ok(one(tx, "SELECT 1 FROM usage_records WHERE invocation_id = ?1", [id], |_| Ok(()))
        .optional()
        .map_err(storage)?
        .is_some())
}

pub(crate) fn read_usage(tx: &rusqlite::Connection, id: &str) -> Result<Option<UsageRecord>, LedgerError> {
    one(tx, &format!("SELECT {USAGE_COLUMNS} FROM usage_records WHERE invocation_id = ?1"), [id], usage_from_row)
        .optional()
        .map_err(storage)
}

/// Whether a persisted reservation or a usage record has `invocation`.
pub(crate) fn id_taken(conn: &Connection, invocation: &str) -> Result<bool, LedgerError> {
    let persisted = one(conn, "SELECT 1 FROM reservations WHERE invocation_id = ?1", [invocation], |_| Ok(()))
        .optional()
        .map_err(storage)?
        .is_some();
    Ok(persisted || usage_exists(conn, invocation)?)
}
