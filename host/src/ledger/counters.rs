//! Counters kept as the ledger moves, so that statistics and rankings
//! never scan the usage records:
//!
//! - `usage_totals`: per outcome, how many calls settled, the fuel and the
//!   money they were charged (the service statistics);
//! - `consumer_hours`: per hour and payer, what it was charged (top
//!   consumers over a period, counted in whole hours).
//!
//! Each settlement batch adds its records in the transaction that writes
//! them, one upsert per outcome and per (hour, payer) of the batch, so the
//! counters and the records never disagree. A database from before the
//! counters is counted once, when it is first opened.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::{Asset, ConsumerStats, LedgerError, Outcome, ServiceStats, UsageRecord};
use crate::agent::AgentId;
use crate::db::exec;

/// Milliseconds in a counted hour.
pub(super) const HOUR_MS: i64 = 3_600_000;

/// The database's `user_version` from which the counters are kept (older
/// databases are counted once, at open).
const COUNTED_SINCE_VERSION: i64 = 1;

/// Add `records` (settled in this transaction) to the counters.
pub(super) fn count<'a>(tx: &Connection, records: impl Iterator<Item = &'a UsageRecord>) -> Result<(), LedgerError> {
    let mut outcomes: HashMap<Outcome, [u64; 3]> = HashMap::new();
    let mut hours: HashMap<(i64, &str), [u64; 4]> = HashMap::new();
    for r in records {
        let o = outcomes.entry(r.outcome).or_default();
        o[0] += 1;
        o[1] += r.consumed.fuel;
        o[2] += r.cost_usd_micros;
        let h = hours.entry((r.settled_at_ms.div_euclid(HOUR_MS), r.charged_to.as_str())).or_default();
        h[0] += 1;
        h[1] += r.consumed.fuel;
        h[2] += r.consumed.disk_bytes;
        h[3] += r.cost_usd_micros;
    }
    let db = |v: u64| v.min(i64::MAX as u64) as i64;
    for (outcome, [records, fuel, cost]) in outcomes {
        exec(
            tx,
            "INSERT INTO usage_totals (outcome, records, fuel, cost_usd_micros) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (outcome) DO UPDATE SET records = records + excluded.records, fuel = fuel + excluded.fuel,
                 cost_usd_micros = cost_usd_micros + excluded.cost_usd_micros",
            params![outcome.as_str(), db(records), db(fuel), db(cost)],
        )?;
    }
    for ((hour, agent), [calls, fuel, disk, cost]) in hours {
        exec(
            tx,
            "INSERT INTO consumer_hours (hour, agent, invocations, fuel, disk_bytes, cost_usd_micros)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (hour, agent) DO UPDATE SET invocations = invocations + excluded.invocations,
                 fuel = fuel + excluded.fuel, disk_bytes = disk_bytes + excluded.disk_bytes,
                 cost_usd_micros = cost_usd_micros + excluded.cost_usd_micros",
            params![hour, agent, db(calls), db(fuel), db(disk), db(cost)],
        )?;
    }
    Ok(())
}

/// Fill the counters from the usage records, once per database (a
/// database from before the counters): one scan, at the first open.
pub(crate) fn fill_once(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= COUNTED_SINCE_VERSION {
        return Ok(());
    }
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         DELETE FROM usage_totals;
         DELETE FROM consumer_hours;
         INSERT INTO usage_totals (outcome, records, fuel, cost_usd_micros)
             SELECT outcome, COUNT(*), SUM(fuel), SUM(cost_usd_micros) FROM usage_records GROUP BY outcome;
         INSERT INTO consumer_hours (hour, agent, invocations, fuel, disk_bytes, cost_usd_micros)
             SELECT settled_ms / {HOUR_MS}, charged_to, COUNT(*), SUM(fuel), SUM(disk_bytes), SUM(cost_usd_micros)
             FROM usage_records GROUP BY 1, 2;
         PRAGMA user_version = {COUNTED_SINCE_VERSION};
         COMMIT;"
    ))
}

/// The usage part of the service statistics, from the counters.
pub(super) fn usage_stats(conn: &Connection, stats: &mut ServiceStats) -> Result<(), LedgerError> {
    let mut stmt = conn.prepare_cached("SELECT outcome, records, fuel, cost_usd_micros FROM usage_totals")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64, r.get::<_, i64>(3)? as u64))
    })?;
    for row in rows {
        let (outcome, records, fuel, cost) = row?;
        stats.total_usage_records += records;
        stats.total_fuel += fuel;
        stats.total_cost_usd_micros += cost;
        if outcome != Outcome::Aborted.as_str() {
            stats.total_api_calls += records;
        }
        stats.invocations_by_outcome.insert(outcome, records);
    }
    Ok(())
}

/// The payers charged the most of `asset` in the hours from the one
/// holding `from_ms` to the one holding `to_ms - 1`, most first.
pub(super) fn top_consumers(
    conn: &Connection,
    asset: Asset,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    limit: usize,
) -> Result<Vec<ConsumerStats>, LedgerError> {
    let order = match asset {
        Asset::Fuel => "SUM(fuel)",
        Asset::DiskBytes => "SUM(disk_bytes)",
        Asset::Scrip => {
            return Err(LedgerError::Invalid(
                "payers are ranked by the resources charged to them: use fuel or disk_bytes, not scrip".into(),
            ))
        }
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT agent, SUM(invocations), SUM(fuel), SUM(disk_bytes), SUM(cost_usd_micros) FROM consumer_hours
         WHERE hour >= ?1 AND hour <= ?2 GROUP BY agent ORDER BY {order} DESC, agent LIMIT ?3"
    ))?;
    let first = from_ms.map_or(i64::MIN, |ms| ms.div_euclid(HOUR_MS));
    let last = to_ms.map_or(i64::MAX, |ms| (ms - 1).div_euclid(HOUR_MS));
    let rows = stmt.query_map(params![first, last, limit.min(10_000) as i64], |r| {
        Ok(ConsumerStats {
            agent: AgentId::trusted(r.get(0)?),
            invocations: r.get::<_, i64>(1)? as u64,
            fuel: r.get::<_, i64>(2)? as u64,
            disk_bytes: r.get::<_, i64>(3)? as u64,
            cost_usd_micros: r.get::<_, i64>(4)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
