//! Counters kept as the ledger moves, so that statistics and rankings
//! never scan the usage records:
//!
//! - `usage_totals`: per outcome, how many calls settled, the fuel and the
//!   money they were charged (the service statistics);
//! - `consumer_hours`: per hour and payer, what it was charged (top
//!   consumers over a period, counted in whole hours);
//! - `counter_state`: the last usage record (by position) they include.
//!
//! A settlement does not write them: its records are kept in memory
//! ([`Counters`]) and folded into the tables about once a second, inside a
//! settlement's own transaction, together with the position they reach,
//! so the tables and that position always agree with the records. A
//! reader adds, to the tables it reads, the records kept in memory past
//! the tables' position: nothing is counted twice. A start reads the
//! records past the position back into memory (a database from before the
//! counters is counted once, at its first open).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};

use crate::sql::{exec, one};
use crate::storage;
use fuelhost_ledger::AgentId;
use fuelhost_ledger::{Asset, ConsumerStats, LedgerError, Outcome, ServiceStats, UsageRecord};

/// Milliseconds in a counted hour.
pub(super) const HOUR_MS: i64 = 3_600_000;

/// How often the records kept in memory are folded into the tables.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Fold sooner when this many records wait.
const FLUSH_AT: usize = 50_000;

/// The database's `user_version` from which the counters are kept (older
/// databases are counted once, at open).
const COUNTED_SINCE_VERSION: i64 = 1;

/// One settled record, as the counters see it.
#[derive(Debug, Clone)]
struct Entry {
    seq: i64,
    outcome: Outcome,
    hour: i64,
    payer: String,
    fuel: u64,
    disk_bytes: u64,
    cost: u64,
    llm_tokens: u64,
}

impl Entry {
    fn of(r: &UsageRecord) -> Entry {
        Entry {
            seq: r.seq,
            outcome: r.outcome,
            hour: r.settled_at_ms.div_euclid(HOUR_MS),
            payer: r.charged_to.to_string(),
            fuel: r.consumed.fuel,
            disk_bytes: r.consumed.disk_bytes,
            cost: r.cost_usd_micros,
            llm_tokens: r.consumed.llm_tokens,
        }
    }
}

/// The records settled since the tables were last written; see the module
/// docs.
#[derive(Debug)]
pub(super) struct Counters(Mutex<Pending>);

#[derive(Debug)]
struct Pending {
    /// `None` until the records past the tables' position are read.
    entries: Option<Vec<Entry>>,
    last_flush: Instant,
    /// The position the flush under way writes, until its transaction
    /// ends.
    flushing: Option<i64>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters(Mutex::new(Pending { entries: None, last_flush: Instant::now(), flushing: None }))
    }
}

/// The position the tables include (0 when none).
fn position(conn: &Connection) -> Result<i64, LedgerError> {
    Ok(one(conn, "SELECT through FROM counter_state WHERE id = 1", [], |r| r.get(0))
        .optional()
        .map_err(storage)?
        .unwrap_or(0))
}

/// The records past position `after`.
fn entries_after(conn: &Connection, after: i64) -> Result<Vec<Entry>, LedgerError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT rowid, outcome, settled_ms, charged_to, fuel, disk_bytes, cost_usd_micros, llm_tokens
             FROM usage_records WHERE rowid > ?1 ORDER BY rowid",
        )
        .map_err(storage)?;
    let rows = stmt
        .query_map([after], |r| {
            let outcome: String = r.get(1)?;
            Ok(Entry {
                seq: r.get(0)?,
                outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Trap),
                hour: r.get::<_, i64>(2)?.div_euclid(HOUR_MS),
                payer: r.get(3)?,
                fuel: r.get::<_, i64>(4)? as u64,
                disk_bytes: r.get::<_, i64>(5)? as u64,
                cost: r.get::<_, i64>(6)? as u64,
                llm_tokens: r.get::<_, i64>(7)? as u64,
            })
        })
        .map_err(storage)?;
    rows.collect::<Result<_, _>>().map_err(storage)
}

impl Counters {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entries, read back from the records the first time.
    fn loaded<'a>(pending: &'a mut Pending, conn: &Connection) -> Result<&'a mut Vec<Entry>, LedgerError> {
        if pending.entries.is_none() {
            pending.entries = Some(entries_after(conn, position(conn)?)?);
        }
        Ok(pending.entries.as_mut().expect("loaded above"))
    }

    /// In a settlement's transaction, under the connection lock, before
    /// it settles anything: read back the records past the tables the
    /// first time (so the ones it is about to write are not among them).
    pub(super) fn load(&self, tx: &Connection) -> Result<(), LedgerError> {
        Self::loaded(&mut self.lock(), tx).map(drop)
    }

    /// In a settlement's transaction, under the connection lock: when it
    /// is time, fold the records kept in memory (from earlier
    /// transactions) into the tables.
    pub(super) fn flush_if_due(&self, tx: &Connection) -> Result<(), LedgerError> {
        self.flush(tx, false)
    }

    /// [`Counters::flush_if_due`], due or not: for a move that needs every
    /// record settled so far in the tables (see `retention`).
    pub(super) fn fold(&self, tx: &Connection) -> Result<(), LedgerError> {
        self.flush(tx, true)
    }

    fn flush(&self, tx: &Connection, now: bool) -> Result<(), LedgerError> {
        let mut pending = self.lock();
        let due = now || pending.last_flush.elapsed() >= FLUSH_EVERY;
        let entries = Self::loaded(&mut pending, tx)?;
        if entries.is_empty() || !(due || entries.len() >= FLUSH_AT) {
            return Ok(());
        }
        let through = entries.last().map_or(0, |e| e.seq);
        write(tx, entries, through)?;
        pending.flushing = Some(through);
        Ok(())
    }

    /// Under the connection lock, right after a settlement's transaction
    /// ended: keep its `records` if it `committed`, and forget what a
    /// committed flush wrote.
    pub(super) fn settled<'a>(&self, records: impl Iterator<Item = &'a UsageRecord>, committed: bool) {
        let mut pending = self.lock();
        let flushed = pending.flushing.take();
        if !committed {
            return;
        }
        if let Some(through) = flushed {
            pending.last_flush = Instant::now();
            if let Some(entries) = pending.entries.as_mut() {
                entries.retain(|e| e.seq > through);
            }
        }
        // Not yet loaded: the records are read back from the database
        // when they are first needed.
        if let Some(entries) = pending.entries.as_mut() {
            entries.extend(records.map(Entry::of));
        }
    }

    /// The records kept in memory past position `after` (a reader's view:
    /// the tables it read include everything up to `after`).
    fn after(&self, conn: &Connection, after: i64) -> Result<Vec<Entry>, LedgerError> {
        let pending = self.lock();
        let entries = match pending.entries.as_ref() {
            Some(e) => e,
            // Not loaded yet: whatever is past `after` is in the records.
            None => {
                drop(pending);
                return entries_after(conn, after);
            }
        };
        let start = entries.partition_point(|e| e.seq <= after);
        let kept = entries[start..].to_vec();
        drop(pending);
        Ok(kept)
    }

    /// The records kept in memory, snapshot before the tables are read (so
    /// that a flush between the two cannot drop any): see the module docs.
    fn snapshot(&self) -> Option<Vec<Entry>> {
        self.lock().entries.clone()
    }

    /// The service statistics' usage part: the tables plus the records past
    /// them.
    pub(super) fn usage_stats(&self, conn: &Connection, stats: &mut ServiceStats) -> Result<(), LedgerError> {
        let snapshot = self.snapshot();
        let tx = conn.unchecked_transaction().map_err(storage)?;
        let through = position(&tx)?;
        let mut stmt =
            tx.prepare_cached("SELECT outcome, records, fuel, cost_usd_micros FROM usage_totals").map_err(storage)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                    r.get::<_, i64>(3)? as u64,
                ))
            })
            .map_err(storage)?;
        let mut by_outcome: HashMap<String, [u64; 3]> = HashMap::new();
        for row in rows {
            let (outcome, records, fuel, cost) = row.map_err(storage)?;
            by_outcome.insert(outcome, [records, fuel, cost]);
        }
        drop(stmt);
        let recent = match snapshot {
            Some(entries) => entries.into_iter().filter(|e| e.seq > through).collect(),
            None => self.after(&tx, through)?,
        };
        for e in recent {
            let t = by_outcome.entry(e.outcome.as_str().to_string()).or_default();
            t[0] += 1;
            t[1] += e.fuel;
            t[2] += e.cost;
        }
        for (outcome, [records, fuel, cost]) in by_outcome {
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
        &self,
        conn: &Connection,
        asset: Asset,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ConsumerStats>, LedgerError> {
        let rank: fn(&ConsumerStats) -> u64 =
            match asset {
                Asset::Fuel => |c| c.fuel,
                Asset::DiskBytes => |c| c.disk_bytes,
                Asset::LlmTokens => |c| c.llm_tokens,
                Asset::Scrip => return Err(LedgerError::Invalid(
                    "payers are ranked by the resources charged to them: use fuel, disk_bytes or llm_tokens, not scrip"
                        .into(),
                )),
            };
        let first = from_ms.map_or(i64::MIN, |ms| ms.div_euclid(HOUR_MS));
        let last = to_ms.map_or(i64::MAX, |ms| ms.saturating_sub(1).div_euclid(HOUR_MS));
        let snapshot = self.snapshot();
        let tx = conn.unchecked_transaction().map_err(storage)?;
        let through = position(&tx)?;
        let mut stmt = tx
            .prepare_cached(
                "SELECT agent, SUM(invocations), SUM(fuel), SUM(disk_bytes), SUM(cost_usd_micros), SUM(llm_tokens)
                 FROM consumer_hours
             WHERE hour >= ?1 AND hour <= ?2 GROUP BY agent",
            )
            .map_err(storage)?;
        let rows = stmt
            .query_map(params![first, last], |r| {
                Ok(ConsumerStats {
                    agent: AgentId::trusted(r.get(0)?),
                    invocations: r.get::<_, i64>(1)? as u64,
                    fuel: r.get::<_, i64>(2)? as u64,
                    disk_bytes: r.get::<_, i64>(3)? as u64,
                    cost_usd_micros: r.get::<_, i64>(4)? as u64,
                    llm_tokens: r.get::<_, i64>(5)? as u64,
                })
            })
            .map_err(storage)?;
        let mut by_agent: HashMap<String, ConsumerStats> = HashMap::new();
        for row in rows {
            let c = row.map_err(storage)?;
            by_agent.insert(c.agent.to_string(), c);
        }
        drop(stmt);
        let recent = match snapshot {
            Some(entries) => entries.into_iter().filter(|e| e.seq > through).collect(),
            None => self.after(&tx, through)?,
        };
        for e in recent.into_iter().filter(|e| e.hour >= first && e.hour <= last) {
            let c = by_agent.entry(e.payer.clone()).or_insert_with(|| ConsumerStats {
                agent: AgentId::trusted(e.payer.clone()),
                invocations: 0,
                fuel: 0,
                disk_bytes: 0,
                cost_usd_micros: 0,
                llm_tokens: 0,
            });
            c.invocations += 1;
            c.fuel += e.fuel;
            c.disk_bytes += e.disk_bytes;
            c.cost_usd_micros += e.cost;
            c.llm_tokens += e.llm_tokens;
        }
        let mut top: Vec<ConsumerStats> = by_agent.into_values().collect();
        top.sort_by(|a, b| rank(b).cmp(&rank(a)).then_with(|| a.agent.as_str().cmp(b.agent.as_str())));
        top.truncate(limit.min(10_000));
        Ok(top)
    }
}

/// Add `entries` to the tables and record that they reach `through`.
fn write(tx: &Connection, entries: &[Entry], through: i64) -> Result<(), LedgerError> {
    let mut outcomes: HashMap<Outcome, [u64; 3]> = HashMap::new();
    let mut hours: HashMap<(i64, &str), [u64; 5]> = HashMap::new();
    for e in entries {
        let o = outcomes.entry(e.outcome).or_default();
        o[0] += 1;
        o[1] += e.fuel;
        o[2] += e.cost;
        let h = hours.entry((e.hour, e.payer.as_str())).or_default();
        h[0] += 1;
        h[1] += e.fuel;
        h[2] += e.disk_bytes;
        h[3] += e.cost;
        h[4] += e.llm_tokens;
    }
    let db = |v: u64| v.min(i64::MAX as u64) as i64;
    for (outcome, [records, fuel, cost]) in outcomes {
        exec(
            tx,
            "INSERT INTO usage_totals (outcome, records, fuel, cost_usd_micros) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (outcome) DO UPDATE SET records = records + excluded.records, fuel = fuel + excluded.fuel,
                 cost_usd_micros = cost_usd_micros + excluded.cost_usd_micros",
            params![outcome.as_str(), db(records), db(fuel), db(cost)],
        )
        .map_err(storage)?;
    }
    for ((hour, agent), [calls, fuel, disk, cost, llm]) in hours {
        exec(
            tx,
            "INSERT INTO consumer_hours (hour, agent, invocations, fuel, disk_bytes, cost_usd_micros, llm_tokens)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (hour, agent) DO UPDATE SET invocations = invocations + excluded.invocations,
                 fuel = fuel + excluded.fuel, disk_bytes = disk_bytes + excluded.disk_bytes,
                 cost_usd_micros = cost_usd_micros + excluded.cost_usd_micros,
                 llm_tokens = llm_tokens + excluded.llm_tokens",
            params![hour, agent, db(calls), db(fuel), db(disk), db(cost), db(llm)],
        )
        .map_err(storage)?;
    }
    exec(
        tx,
        "INSERT INTO counter_state (id, through) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET through = excluded.through",
        [through],
    ).map_err(storage)?;
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
         INSERT OR REPLACE INTO counter_state (id, through) SELECT 1, COALESCE(MAX(rowid), 0) FROM usage_records;
         PRAGMA user_version = {COUNTED_SINCE_VERSION};
         COMMIT;"
    ))
}
