//! Allocations in the SQLite ledger: their rows, lazy period rolling and
//! expiry, the quota holds an invocation takes at reserve time and turns
//! into usage at settlement, thresholds and alerts. Every function runs
//! inside the caller's transaction.

use rusqlite::{params, Connection, OptionalExtension};

use crate::sql::{exec, one};
use crate::storage;
use fuelhost_ledger::AgentId;
use fuelhost_ledger::LedgerError;
use fuelhost_ledger::{
    Alert, AlertKind, Allocation, AllocationRequest, AllocationStatus, AllocationTransition, Period, QuotaUsage,
    Resource, Rollover,
};
pub(super) use fuelhost_ledger::{CallCaps, CallUsage};

fn rollover_str(r: Rollover) -> &'static str {
    match r {
        Rollover::Reset => "reset",
        Rollover::CarryOver => "carry_over",
    }
}

/// Insert a new allocation (the request was validated by the caller).
pub(super) fn insert(conn: &Connection, req: &AllocationRequest, now: i64) -> Result<(), LedgerError> {
    let status = if req.auto_approve { AllocationStatus::Approved } else { AllocationStatus::Pending };
    let json = serde_json::to_string(req).map_err(|e| LedgerError::Invalid(e.to_string()))?;
    exec(
        conn,
        "INSERT INTO allocations (id, agent, status, priority, request, period_ms, rollover, duration_ms, soft_pct,
            hard_pct, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            req.id,
            req.agent.as_str(),
            status.as_str(),
            req.priority,
            json,
            req.period.map(|p| p.length_ms as i64),
            req.period.map(|p| rollover_str(p.rollover)),
            req.duration_ms.map(|d| d as i64),
            req.soft_threshold_percent,
            req.hard_threshold_percent,
            now
        ],
    )
    .map_err(storage)?;
    for (resource, quota) in &req.quotas {
        exec(
            conn,
            "INSERT INTO allocation_quotas (allocation, resource, quota) VALUES (?1, ?2, ?3)",
            params![req.id, resource.as_str(), *quota as i64],
        )
        .map_err(storage)?;
    }
    Ok(())
}

/// The stored request of allocation `id` (for idempotent replays).
pub(super) fn stored_request(conn: &Connection, id: &str) -> Result<Option<AllocationRequest>, LedgerError> {
    let json: Option<String> =
        one(conn, "SELECT request FROM allocations WHERE id = ?1", [id], |r| r.get(0)).optional().map_err(storage)?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

/// Allocation `id` as stored (not rolled).
pub(super) fn load(conn: &Connection, id: &str) -> Result<Option<Allocation>, LedgerError> {
    let row = one(
        conn,
        "SELECT agent, status, priority, period_ms, rollover, duration_ms, soft_pct, hard_pct, activated_ms,
                expires_ms, period_index, revoke_reason FROM allocations WHERE id = ?1",
        [id],
        |r| {
            let period_ms: Option<i64> = r.get(3)?;
            let rollover: Option<String> = r.get(4)?;
            Ok(Allocation {
                id: id.to_string(),
                agent: AgentId::trusted(r.get(0)?),
                status: AllocationStatus::parse(&r.get::<_, String>(1)?).unwrap_or(AllocationStatus::Revoked),
                priority: r.get(2)?,
                quotas: Vec::new(),
                period: period_ms.map(|ms| Period {
                    length_ms: ms as u64,
                    rollover: if rollover.as_deref() == Some("carry_over") {
                        Rollover::CarryOver
                    } else {
                        Rollover::Reset
                    },
                }),
                duration_ms: r.get::<_, Option<i64>>(5)?.map(|d| d as u64),
                soft_threshold_percent: r.get(6)?,
                hard_threshold_percent: r.get(7)?,
                activated_at_ms: r.get(8)?,
                expires_at_ms: r.get(9)?,
                period_index: r.get::<_, i64>(10)? as u64,
                revoke_reason: r.get(11)?,
            })
        },
    )
    .optional()
    .map_err(storage)?;
    let Some(mut a) = row else { return Ok(None) };
    let mut stmt = conn
        .prepare_cached("SELECT resource, quota, carried, used, held FROM allocation_quotas WHERE allocation = ?1")
        .map_err(storage)?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(storage)?;
    for row in rows {
        let (resource, quota, carried, used, held) = row.map_err(storage)?;
        if let Some(resource) = Resource::parse(&resource) {
            a.quotas.push(QuotaUsage {
                resource,
                quota: quota as u64,
                carried: carried as u64,
                used: used as u64,
                held: held as u64,
            });
        }
    }
    a.quotas.sort_by_key(|q| q.resource);
    Ok(Some(a))
}

/// Write back status, period, expiry and every quota's usage.
fn save(conn: &Connection, a: &Allocation) -> Result<(), LedgerError> {
    exec(
        conn,
        "UPDATE allocations SET status = ?2, activated_ms = ?3, expires_ms = ?4, period_index = ?5, revoke_reason = ?6
         WHERE id = ?1",
        params![a.id, a.status.as_str(), a.activated_at_ms, a.expires_at_ms, a.period_index as i64, a.revoke_reason],
    )
    .map_err(storage)?;
    for q in &a.quotas {
        exec(
            conn,
            "UPDATE allocation_quotas SET carried = ?3, used = ?4, held = ?5 WHERE allocation = ?1 AND resource = ?2",
            params![a.id, q.resource.as_str(), q.carried as i64, q.used as i64, q.held as i64],
        )
        .map_err(storage)?;
    }
    Ok(())
}

fn alert(
    conn: &Connection,
    a: &Allocation,
    kind: AlertKind,
    resource: Option<Resource>,
    percent: u64,
    now: i64,
) -> Result<(), LedgerError> {
    let inserted = exec(
        conn,
        "INSERT OR IGNORE INTO alerts (allocation, agent, resource, kind, period_index, percent, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            a.id,
            a.agent.as_str(),
            resource.map(Resource::as_str),
            kind.as_str(),
            a.period_index as i64,
            percent as i64,
            now
        ],
    )
    .map_err(storage)?;
    if inserted > 0 {
        tracing::warn!(
            allocation = %a.id,
            agent = %a.agent,
            resource = resource.map(Resource::as_str).unwrap_or("-"),
            kind = kind.as_str(),
            percent,
            period = a.period_index,
            "allocation alert"
        );
    }
    Ok(())
}

/// Bring `a` up to `now`: expire it, roll the periods that ended, revive
/// an exhausted allocation in a new period. Persists any change.
pub(super) fn refresh(conn: &Connection, mut a: Allocation, now: i64) -> Result<Allocation, LedgerError> {
    let (changed, raised) = a.refresh(now);
    if let Some(r) = raised {
        alert(conn, &a, r.kind, r.resource, r.percent, now)?;
    }
    if changed {
        save(conn, &a)?;
    }
    Ok(a)
}

/// Apply the thresholds after usage changed: alert at the soft one, flip to
/// `exhausted` at the hard one.
fn check_thresholds(conn: &Connection, a: &mut Allocation, now: i64) -> Result<(), LedgerError> {
    for r in a.thresholds() {
        alert(conn, a, r.kind, r.resource, r.percent, now)?;
    }
    Ok(())
}

/// Whether and how an agent's charges are governed by allocations.
pub(super) enum Governing {
    /// The agent never had an allocation past `pending`: budgets only.
    Ungoverned,
    /// Charges draw from this active allocation.
    Active(Allocation),
    /// The agent is governed but has no active allocation.
    Blocked(String),
}

/// The allocation that governs `agent` now: its active allocation of
/// highest priority (oldest first among equals).
pub(super) fn governing(conn: &Connection, agent: &str, now: i64) -> Result<Governing, LedgerError> {
    let ids: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, status FROM allocations WHERE agent = ?1 AND status != 'pending'
             ORDER BY priority DESC, created_ms, id",
            )
            .map_err(storage)?;
        let rows = stmt.query_map([agent], |r| Ok((r.get(0)?, r.get(1)?))).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)?
    };
    if ids.is_empty() {
        return Ok(Governing::Ungoverned);
    }
    let mut why = Vec::new();
    for (id, _) in &ids {
        let Some(a) = load(conn, id)? else { continue };
        let a = refresh(conn, a, now)?;
        if a.status == AllocationStatus::Active {
            return Ok(Governing::Active(a));
        }
        why.push(format!("`{}` is {}", a.id, a.status));
    }
    Ok(Governing::Blocked(format!("`{agent}` has no active allocation ({})", why.join(", "))))
}

/// Reserve one invocation's share of `a`: one API call, one concurrent
/// task, and up to `fuel_wanted` fuel, all held until settlement.
pub(super) fn hold_call(conn: &Connection, a: &mut Allocation, fuel_wanted: u64) -> Result<CallCaps, LedgerError> {
    let caps = a
        .hold_call(fuel_wanted)
        .map_err(|reason| LedgerError::AllocationRefused { agent: a.agent.to_string(), reason })?;
    save(conn, a)?;
    Ok(caps)
}

/// Turn an invocation's holds on allocation `id` into usage. `served` is
/// false for an invocation aborted by a host stop: it counts no API call.
pub(super) fn settle_call(
    conn: &Connection,
    id: &str,
    usage: CallUsage,
    served: bool,
    now: i64,
) -> Result<(), LedgerError> {
    let Some(mut a) = load(conn, id)? else { return Ok(()) };
    a.settle_call(&usage, served);
    check_thresholds(conn, &mut a, now)?;
    save(conn, &a)?;
    // A period may have ended while the call ran.
    refresh(conn, a, now)?;
    Ok(())
}

/// Add externally reported usage (LLM tokens, money, ...) to `a`.
pub(super) fn add_usage(
    conn: &Connection,
    a: &mut Allocation,
    resource: Resource,
    amount: u64,
    now: i64,
) -> Result<(), LedgerError> {
    a.add_usage(resource, amount).map_err(LedgerError::Invalid)?;
    check_thresholds(conn, a, now)?;
    save(conn, a)
}

/// Move `a` through its lifecycle, checking the transition is allowed.
pub(super) fn transition(
    conn: &Connection,
    a: Allocation,
    t: &AllocationTransition,
    now: i64,
) -> Result<Allocation, LedgerError> {
    let a = t.apply(a, now).map_err(LedgerError::Conflict)?;
    if let AllocationTransition::Extend { .. } = t {
        exec(
            conn,
            "UPDATE allocations SET duration_ms = ?2 WHERE id = ?1",
            params![a.id, a.duration_ms.map(|d| d as i64)],
        )
        .map_err(storage)?;
    }
    save(conn, &a)?;
    Ok(a)
}

/// Alerts, oldest first; of one agent when given.
pub(super) fn alerts(conn: &Connection, agent: Option<&str>) -> Result<Vec<Alert>, LedgerError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT allocation, agent, resource, kind, period_index, percent, at_ms FROM alerts
         WHERE ?1 IS NULL OR agent = ?1 ORDER BY seq",
        )
        .map_err(storage)?;
    let rows = stmt
        .query_map([agent], |r| {
            let resource: Option<String> = r.get(2)?;
            Ok(Alert {
                allocation: r.get(0)?,
                agent: AgentId::trusted(r.get(1)?),
                resource: resource.as_deref().and_then(Resource::parse),
                kind: AlertKind::parse(&r.get::<_, String>(3)?).unwrap_or(AlertKind::SoftThreshold),
                period_index: r.get::<_, i64>(4)? as u64,
                percent: r.get::<_, i64>(5)? as u64,
                at_ms: r.get(6)?,
            })
        })
        .map_err(storage)?;
    rows.collect::<Result<_, _>>().map_err(storage)
}
