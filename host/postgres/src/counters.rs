//! Statistics on PostgreSQL, kept as records settle (in the settlement's
//! transaction): totals per outcome and what each payer was charged per
//! hour. Reading them never scans the usage records, and they outlive
//! archiving.

use std::collections::BTreeMap;

use crate::connect::Tx;

use fuelhost_ledger::{AgentId, Asset, ConsumerStats, LedgerError, Outcome, ServiceStats, UsageRecord};

use crate::ledger::PgLedger;

const HOUR_MS: i64 = 3_600_000;

/// Why payers are not ranked by scrip.
const NOT_RANKED: &str =
    "payers are ranked by the resources charged to them: use fuel, disk_bytes or llm_tokens, not scrip";

impl PgLedger {
    /// Count a settled record.
    pub(crate) fn count(&self, tx: &mut Tx<'_>, r: &UsageRecord) -> Result<(), LedgerError> {
        let n = |v: u64| v.min(i64::MAX as u64) as i64;
        let (fuel, disk, cost) = (n(r.consumed.fuel), n(r.consumed.disk_bytes), n(r.cost_usd_micros));
        let llm = n(r.consumed.llm_tokens);
        tx.execute(
            "INSERT INTO usage_totals (outcome, records, fuel, cost_usd_micros) VALUES ($1, 1, $2, $3)
             ON CONFLICT (outcome) DO UPDATE SET records = usage_totals.records + 1,
                fuel = usage_totals.fuel + EXCLUDED.fuel, cost_usd_micros = usage_totals.cost_usd_micros + EXCLUDED.cost_usd_micros",
            &[&r.outcome.as_str(), &fuel, &cost],
        )
        .map_err(|e| self.database().failed(e))?;
        tx.execute(
            "INSERT INTO consumer_hours (hour, agent, invocations, fuel, disk_bytes, cost_usd_micros, llm_tokens)
             VALUES ($1, $2, 1, $3, $4, $5, $6)
             ON CONFLICT (hour, agent) DO UPDATE SET invocations = consumer_hours.invocations + 1,
                fuel = consumer_hours.fuel + EXCLUDED.fuel, disk_bytes = consumer_hours.disk_bytes + EXCLUDED.disk_bytes,
                cost_usd_micros = consumer_hours.cost_usd_micros + EXCLUDED.cost_usd_micros,
                llm_tokens = consumer_hours.llm_tokens + EXCLUDED.llm_tokens",
            &[&r.settled_at_ms.div_euclid(HOUR_MS), &r.charged_to.as_str(), &fuel, &disk, &cost, &llm],
        )
        .map_err(|e| self.database().failed(e))?;
        Ok(())
    }

    /// Service-wide statistics.
    pub fn stats(&self) -> Result<ServiceStats, LedgerError> {
        self.database().read(|c| {
            let fail = |e| self.database().failed(e);
            let count = |c: &mut postgres::Client, sql: &str| -> Result<u64, LedgerError> {
                Ok(c.query_one(sql, &[]).map_err(fail)?.get::<_, i64>(0) as u64)
            };
            let mut stats = ServiceStats {
                total_allocations: count(c, "SELECT COUNT(*) FROM allocations")?,
                active_allocations: count(c, "SELECT COUNT(*) FROM allocations WHERE status = 'active'")?,
                budget_exceeded_count: count(c, "SELECT COUNT(*) FROM alerts WHERE kind = 'exhausted'")?,
                total_usage_records: 0,
                total_cost_usd_micros: 0,
                total_api_calls: 0,
                total_fuel: 0,
                invocations_by_outcome: BTreeMap::new(),
            };
            for r in c.query("SELECT outcome, records, fuel, cost_usd_micros FROM usage_totals", &[]).map_err(fail)? {
                let outcome: String = r.get(0);
                let records = r.get::<_, i64>(1) as u64;
                stats.total_usage_records += records;
                stats.total_fuel += r.get::<_, i64>(2) as u64;
                stats.total_cost_usd_micros += r.get::<_, i64>(3) as u64;
                if outcome != Outcome::Aborted.as_str() {
                    stats.total_api_calls += records;
                }
                stats.invocations_by_outcome.insert(outcome, records);
            }
            Ok(stats)
        })
    }

    /// The payers charged the most of `asset` in the hours from the one
    /// holding `from_ms` to the one holding `to_ms - 1`, most first.
    pub fn top_consumers_by(
        &self,
        asset: Asset,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ConsumerStats>, LedgerError> {
        let rank = match asset {
            Asset::Fuel => "fuel",
            Asset::DiskBytes => "disk_bytes",
            Asset::LlmTokens => "llm_tokens",
            Asset::Scrip => return Err(LedgerError::Invalid(NOT_RANKED.into())),
        };
        let first = from_ms.map_or(i64::MIN, |ms| ms.div_euclid(HOUR_MS));
        let last = to_ms.map_or(i64::MAX, |ms| ms.saturating_sub(1).div_euclid(HOUR_MS));
        let limit = limit.min(10_000) as i64;
        let rows = self.database().read(|c| {
            c.query(
                &format!(
                    "SELECT agent, SUM(invocations)::BIGINT, SUM(fuel)::BIGINT, SUM(disk_bytes)::BIGINT,
                        SUM(cost_usd_micros)::BIGINT, SUM(llm_tokens)::BIGINT FROM consumer_hours
                     WHERE hour >= $1 AND hour <= $2
                     GROUP BY agent ORDER BY SUM({rank}) DESC, agent LIMIT $3"
                ),
                &[&first, &last, &limit],
            )
            .map_err(|e| self.database().failed(e))
        })?;
        Ok(rows
            .iter()
            .map(|r| ConsumerStats {
                agent: AgentId::trusted(r.get(0)),
                invocations: r.get::<_, i64>(1) as u64,
                fuel: r.get::<_, i64>(2) as u64,
                disk_bytes: r.get::<_, i64>(3) as u64,
                cost_usd_micros: r.get::<_, i64>(4) as u64,
                llm_tokens: r.get::<_, i64>(5) as u64,
            })
            .collect())
    }
}
