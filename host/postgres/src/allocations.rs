//! Allocations on PostgreSQL: their rows, lazy period rolling and expiry,
//! the quota holds a call takes when it reserves and turns into use when
//! it settles, thresholds and alerts, and their lifecycle. The rules are
//! the ledger model's (`fuelhost_ledger::allocation`) and the SQLite
//! backend's; what is PostgreSQL's own is that an allocation is read
//! `FOR UPDATE`, so two hosts never both take its last API call.

use crate::connect::Tx;

use fuelhost_ledger::{
    AgentId, Alert, AlertKind, Allocation, AllocationRequest, AllocationStatus, AllocationTransition, LedgerError,
    Period, QuotaUsage, Resource, Rollover,
};
pub(crate) use fuelhost_ledger::{CallCaps, CallUsage};

use crate::ledger::{to_db, PgLedger};

/// Whether and how a payer's charges are governed by allocations.
pub(crate) enum Governing {
    /// It never had an allocation past `pending`: budgets only.
    Ungoverned,
    /// Charges draw from this active allocation.
    Active(Allocation),
    /// It is governed, but has no active allocation.
    Blocked(String),
}

fn rollover_str(r: Rollover) -> &'static str {
    match r {
        Rollover::Reset => "reset",
        Rollover::CarryOver => "carry_over",
    }
}

impl PgLedger {
    fn fail(&self) -> impl Fn(postgres::Error) -> LedgerError + '_ {
        |e| self.database().failed(e)
    }

    /// Insert a new allocation (its request already checked).
    fn insert_allocation(&self, tx: &mut Tx<'_>, req: &AllocationRequest) -> Result<(), LedgerError> {
        let status = if req.auto_approve { AllocationStatus::Approved } else { AllocationStatus::Pending };
        let json = serde_json::to_string(req).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        let duration = req.duration_ms.map(|d| to_db(d, "duration")).transpose()?;
        tx.execute(
            "INSERT INTO allocations (id, agent, status, priority, request, period_ms, rollover, duration_ms, soft_pct,
                hard_pct, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &req.id,
                &req.agent.as_str(),
                &status.as_str(),
                &i16::from(req.priority),
                &json,
                &req.period.map(|p| p.length_ms.min(i64::MAX as u64) as i64),
                &req.period.map(|p| rollover_str(p.rollover)),
                &duration,
                &i16::from(req.soft_threshold_percent),
                &i16::from(req.hard_threshold_percent),
                &self.clock_ms(),
            ],
        )
        .map_err(self.fail())?;
        for (resource, quota) in &req.quotas {
            tx.execute(
                "INSERT INTO allocation_quotas (allocation, resource, quota) VALUES ($1, $2, $3)",
                &[&req.id, &resource.as_str(), &to_db(*quota, "quota")?],
            )
            .map_err(self.fail())?;
        }
        Ok(())
    }

    /// Lock every allocation of `agent`, in id order: what each transaction
    /// that changes an agent's allocations does first, so two never lock
    /// them in opposite orders.
    pub(crate) fn lock_allocations_of(&self, tx: &mut Tx<'_>, agent: &str) -> Result<(), LedgerError> {
        tx.query("SELECT 1 FROM allocations WHERE agent = $1 ORDER BY id FOR UPDATE", &[&agent])
            .map_err(self.fail())?;
        Ok(())
    }

    /// Allocation `id` as stored (not rolled), its row locked until the
    /// transaction ends.
    pub(crate) fn load_allocation(&self, tx: &mut Tx<'_>, id: &str) -> Result<Option<Allocation>, LedgerError> {
        self.read_allocation(tx, id, true)
    }

    /// Allocation `id` as stored; its row locked when `lock`.
    fn read_allocation(&self, tx: &mut Tx<'_>, id: &str, lock: bool) -> Result<Option<Allocation>, LedgerError> {
        let sql = format!(
            "SELECT agent, status, priority, period_ms, rollover, duration_ms, soft_pct, hard_pct, activated_ms,
                expires_ms, period_index, revoke_reason FROM allocations WHERE id = $1{}",
            if lock { " FOR UPDATE" } else { "" }
        );
        let Some(r) = tx.query_opt(&sql, &[&id]).map_err(self.fail())? else {
            return Ok(None);
        };
        let period_ms: Option<i64> = r.get(3);
        let rollover: Option<String> = r.get(4);
        let mut a = Allocation {
            id: id.to_string(),
            agent: AgentId::trusted(r.get(0)),
            status: AllocationStatus::parse(r.get(1)).unwrap_or(AllocationStatus::Revoked),
            priority: r.get::<_, i16>(2) as u8,
            quotas: Vec::new(),
            period: period_ms.map(|ms| Period {
                length_ms: ms as u64,
                rollover: if rollover.as_deref() == Some("carry_over") { Rollover::CarryOver } else { Rollover::Reset },
            }),
            duration_ms: r.get::<_, Option<i64>>(5).map(|d| d as u64),
            soft_threshold_percent: r.get::<_, i16>(6) as u8,
            hard_threshold_percent: r.get::<_, i16>(7) as u8,
            activated_at_ms: r.get(8),
            expires_at_ms: r.get(9),
            period_index: r.get::<_, i64>(10) as u64,
            revoke_reason: r.get(11),
        };
        for q in tx
            .query("SELECT resource, quota, carried, used, held FROM allocation_quotas WHERE allocation = $1", &[&id])
            .map_err(self.fail())?
        {
            if let Some(resource) = Resource::parse(q.get(0)) {
                let n = |i: usize| q.get::<_, i64>(i) as u64;
                a.quotas.push(QuotaUsage { resource, quota: n(1), carried: n(2), used: n(3), held: n(4) });
            }
        }
        a.quotas.sort_by_key(|q| q.resource);
        Ok(Some(a))
    }

    /// Write back status, period, expiry and every quota's use.
    fn save_allocation(&self, tx: &mut Tx<'_>, a: &Allocation) -> Result<(), LedgerError> {
        tx.execute(
            "UPDATE allocations SET status = $2, activated_ms = $3, expires_ms = $4, period_index = $5,
                revoke_reason = $6, duration_ms = $7 WHERE id = $1",
            &[
                &a.id,
                &a.status.as_str(),
                &a.activated_at_ms,
                &a.expires_at_ms,
                &(a.period_index.min(i64::MAX as u64) as i64),
                &a.revoke_reason,
                &a.duration_ms.map(|d| d.min(i64::MAX as u64) as i64),
            ],
        )
        .map_err(self.fail())?;
        for q in &a.quotas {
            let n = |v: u64| v.min(i64::MAX as u64) as i64;
            tx.execute(
                "UPDATE allocation_quotas SET carried = $3, used = $4, held = $5 WHERE allocation = $1 AND resource = $2",
                &[&a.id, &q.resource.as_str(), &n(q.carried), &n(q.used), &n(q.held)],
            )
            .map_err(self.fail())?;
        }
        Ok(())
    }

    fn alert(
        &self,
        tx: &mut Tx<'_>,
        a: &Allocation,
        kind: AlertKind,
        resource: Option<Resource>,
        percent: u64,
    ) -> Result<(), LedgerError> {
        let inserted = tx
            .execute(
                "INSERT INTO alerts (allocation, agent, resource, kind, period_index, percent, at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                &[
                    &a.id,
                    &a.agent.as_str(),
                    &resource.map(Resource::as_str),
                    &kind.as_str(),
                    &(a.period_index.min(i64::MAX as u64) as i64),
                    &(percent.min(i64::MAX as u64) as i64),
                    &self.clock_ms(),
                ],
            )
            .map_err(self.fail())?;
        if inserted > 0 {
            tracing::warn!(allocation = %a.id, agent = %a.agent, kind = kind.as_str(), percent, "allocation alert");
        }
        Ok(())
    }

    /// Bring `a` up to now: expire it, roll the periods that ended, revive
    /// an exhausted allocation in a new period; any change saved.
    pub(crate) fn refresh_allocation(&self, tx: &mut Tx<'_>, mut a: Allocation) -> Result<Allocation, LedgerError> {
        let (changed, raised) = a.refresh(self.clock_ms());
        if let Some(r) = raised {
            self.alert(tx, &a, r.kind, r.resource, r.percent)?;
        }
        if changed {
            self.save_allocation(tx, &a)?;
        }
        Ok(a)
    }

    /// Alert at the soft threshold, exhaust at the hard one.
    fn check_thresholds(&self, tx: &mut Tx<'_>, a: &mut Allocation) -> Result<(), LedgerError> {
        for r in a.thresholds() {
            self.alert(tx, a, r.kind, r.resource, r.percent)?;
        }
        Ok(())
    }

    /// The allocation that governs `agent` now: its active allocation of
    /// highest priority (oldest first among equals).
    pub(crate) fn governing(&self, tx: &mut Tx<'_>, agent: &str) -> Result<Governing, LedgerError> {
        self.lock_allocations_of(tx, agent)?;
        let ids: Vec<String> = tx
            .query(
                "SELECT id FROM allocations WHERE agent = $1 AND status <> 'pending'
                 ORDER BY priority DESC, created_ms, id",
                &[&agent],
            )
            .map_err(self.fail())?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if ids.is_empty() {
            return Ok(Governing::Ungoverned);
        }
        let mut why = Vec::new();
        for id in &ids {
            let Some(a) = self.load_allocation(tx, id)? else { continue };
            let a = self.refresh_allocation(tx, a)?;
            if a.status == AllocationStatus::Active {
                return Ok(Governing::Active(a));
            }
            why.push(format!("`{}` is {}", a.id, a.status));
        }
        Ok(Governing::Blocked(format!("`{agent}` has no active allocation ({})", why.join(", "))))
    }

    /// Hold one call's share of `a`: an API call, a concurrent task, and
    /// up to `fuel_wanted` fuel, until it settles.
    pub(crate) fn hold_call(
        &self,
        tx: &mut Tx<'_>,
        a: &mut Allocation,
        fuel_wanted: u64,
    ) -> Result<CallCaps, LedgerError> {
        let caps = a
            .hold_call(fuel_wanted)
            .map_err(|reason| LedgerError::AllocationRefused { agent: a.agent.to_string(), reason })?;
        self.save_allocation(tx, a)?;
        Ok(caps)
    }

    /// Give back to allocation `id`'s fuel quota what a call held but did
    /// not get (its payer had less).
    pub(crate) fn release_unheld_fuel(&self, tx: &mut Tx<'_>, id: &str, unheld: u64) -> Result<(), LedgerError> {
        if unheld > 0 {
            tx.execute(
                "UPDATE allocation_quotas SET held = GREATEST(held - $2, 0) WHERE allocation = $1 AND resource = 'fuel'",
                &[&id, &(unheld.min(i64::MAX as u64) as i64)],
            )
            .map_err(self.fail())?;
        }
        Ok(())
    }

    /// Turn a call's holds on allocation `id` into use. `served` is false
    /// for a call a stopped host left: it counts no API call.
    pub(crate) fn settle_call(
        &self,
        tx: &mut Tx<'_>,
        id: &str,
        usage: CallUsage,
        served: bool,
    ) -> Result<(), LedgerError> {
        let Some(mut a) = self.load_allocation(tx, id)? else { return Ok(()) };
        a.settle_call(&usage, served);
        self.check_thresholds(tx, &mut a)?;
        self.save_allocation(tx, &a)?;
        // A period may have ended while the call ran.
        self.refresh_allocation(tx, a)?;
        Ok(())
    }

    /// Request an allocation (`pending`, or `approved` when it asks to be
    /// approved at once). Idempotent by `req.id`.
    pub fn request_allocation(&self, req: &AllocationRequest) -> Result<Allocation, LedgerError> {
        if let Some(problem) = req.problem() {
            return Err(LedgerError::Invalid(format!("allocation request: {problem}")));
        }
        self.database().write(|tx| {
            let stored: Option<String> = tx
                .query_opt("SELECT request FROM allocations WHERE id = $1", &[&req.id])
                .map_err(self.fail())?
                .map(|r| r.get(0));
            match stored.and_then(|j| serde_json::from_str::<AllocationRequest>(&j).ok()) {
                Some(existing) if existing != *req => return Err(LedgerError::IdConflict(req.id.clone())),
                Some(_) => {}
                None => {
                    self.require_account(tx, req.agent.as_str())?;
                    self.insert_allocation(tx, req)?;
                }
            }
            self.load_allocation(tx, &req.id)?.ok_or_else(|| LedgerError::UnknownAllocation(req.id.clone()))
        })
    }

    /// Move an allocation through its lifecycle; a move its status does
    /// not allow is [`LedgerError::Conflict`].
    pub fn transition_allocation(&self, id: &str, t: &AllocationTransition) -> Result<Allocation, LedgerError> {
        if let AllocationTransition::Extend { additional_ms } = t {
            if *additional_ms == 0 || *additional_ms > i64::MAX as u64 {
                return Err(LedgerError::Invalid(format!(
                    "additional_ms is {additional_ms}; give 1 to {} milliseconds",
                    i64::MAX
                )));
            }
        }
        self.database().write(|tx| {
            let agent: Option<String> = tx
                .query_opt("SELECT agent FROM allocations WHERE id = $1", &[&id])
                .map_err(self.fail())?
                .map(|r| r.get(0));
            let agent = agent.ok_or_else(|| LedgerError::UnknownAllocation(id.to_string()))?;
            self.lock_allocations_of(tx, &agent)?;
            let a = self.load_allocation(tx, id)?.ok_or_else(|| LedgerError::UnknownAllocation(id.to_string()))?;
            let a = self.refresh_allocation(tx, a)?;
            if *t == AllocationTransition::Activate {
                if let Governing::Active(other) = self.governing(tx, a.agent.as_str())? {
                    return Err(LedgerError::Conflict(format!(
                        "`{}` already has active allocation `{}`; revoke it first",
                        a.agent, other.id
                    )));
                }
            }
            let a = t.apply(a, self.clock_ms()).map_err(LedgerError::Conflict)?;
            self.save_allocation(tx, &a)?;
            Ok(a)
        })
    }

    /// Report usage the host did not meter against the agent's active
    /// allocation. Idempotent by `id`.
    pub fn record_usage(
        &self,
        id: &str,
        agent: &AgentId,
        resource: Resource,
        amount: u64,
    ) -> Result<Allocation, LedgerError> {
        let amount_db = to_db(amount, "amount")?;
        self.database().write(|tx| {
            let seen =
                tx.query_opt("SELECT allocation FROM external_usage WHERE id = $1", &[&id]).map_err(self.fail())?;
            if let Some(row) = seen {
                let allocation: Option<String> = row.get(0);
                let allocation = allocation.ok_or_else(|| LedgerError::IdConflict(id.to_string()))?;
                let a = self
                    .load_allocation(tx, &allocation)?
                    .ok_or_else(|| LedgerError::UnknownAllocation(allocation.clone()))?;
                return self.refresh_allocation(tx, a);
            }
            let mut a = match self.governing(tx, agent.as_str())? {
                Governing::Active(a) => a,
                Governing::Blocked(reason) => {
                    return Err(LedgerError::AllocationRefused { agent: agent.to_string(), reason })
                }
                Governing::Ungoverned => {
                    return Err(LedgerError::AllocationRefused {
                        agent: agent.to_string(),
                        reason: format!("`{agent}` has no allocation to record usage against"),
                    })
                }
            };
            a.add_usage(resource, amount).map_err(LedgerError::Invalid)?;
            self.check_thresholds(tx, &mut a)?;
            self.save_allocation(tx, &a)?;
            tx.execute(
                "INSERT INTO external_usage (id, agent, resource, amount, allocation, at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&id, &agent.as_str(), &resource.as_str(), &amount_db, &a.id, &self.clock_ms()],
            )
            .map_err(self.fail())?;
            Ok(a)
        })
    }

    /// An allocation, brought up to date.
    pub fn allocation(&self, id: &str) -> Result<Option<Allocation>, LedgerError> {
        self.database().write(|tx| match self.load_allocation(tx, id)? {
            Some(a) => Ok(Some(self.refresh_allocation(tx, a)?)),
            None => Ok(None),
        })
    }

    /// Every allocation of an agent, up to date, oldest first.
    pub fn allocations_of(&self, agent: &AgentId) -> Result<Vec<Allocation>, LedgerError> {
        self.allocations_where("agent = $1", Some(agent.as_str()), false)
    }

    /// Every allocation in force (`active` or `exhausted`), up to date.
    pub fn allocations_in_force(&self) -> Result<Vec<Allocation>, LedgerError> {
        self.allocations_where("status IN ('active', 'exhausted') AND ($1::TEXT IS NULL OR agent = $1)", None, true)
    }

    fn allocations_where(
        &self,
        filter: &str,
        agent: Option<&str>,
        in_force: bool,
    ) -> Result<Vec<Allocation>, LedgerError> {
        let order = if in_force { "agent, created_ms, id" } else { "created_ms, id" };
        self.database().write(|tx| {
            let ids: Vec<String> = tx
                .query(&format!("SELECT id FROM allocations WHERE {filter} ORDER BY {order}"), &[&agent])
                .map_err(self.fail())?
                .iter()
                .map(|r| r.get(0))
                .collect();
            // Read, not locked: a listing brought up to date in memory
            // never holds up the calls that charge these allocations (the
            // next change to each saves what rolled or expired).
            let mut out = Vec::new();
            for id in ids {
                if let Some(mut a) = self.read_allocation(tx, &id, false)? {
                    a.refresh(self.clock_ms());
                    if !in_force || matches!(a.status, AllocationStatus::Active | AllocationStatus::Exhausted) {
                        out.push(a);
                    }
                }
            }
            Ok(out)
        })
    }

    /// Usage of `resource` reported since the ledger began, per agent.
    pub fn reported_usage(&self, resource: Resource) -> Result<Vec<(AgentId, u64)>, LedgerError> {
        let rows = self.database().read(|c| {
            c.query(
                "SELECT agent, SUM(amount)::BIGINT FROM external_usage WHERE resource = $1 AND allocation IS NOT NULL
                 GROUP BY agent ORDER BY agent",
                &[&resource.as_str()],
            )
            .map_err(|e| self.database().failed(e))
        })?;
        Ok(rows.iter().map(|r| (AgentId::trusted(r.get(0)), r.get::<_, i64>(1).max(0) as u64)).collect())
    }

    /// Budget alerts, oldest first; of one agent when given.
    pub fn alerts(&self, agent: Option<&AgentId>) -> Result<Vec<Alert>, LedgerError> {
        let agent = agent.map(AgentId::as_str);
        let rows = self.database().read(|c| {
            c.query(
                "SELECT allocation, agent, resource, kind, period_index, percent, at_ms FROM alerts
                 WHERE $1::TEXT IS NULL OR agent = $1 ORDER BY seq",
                &[&agent],
            )
            .map_err(|e| self.database().failed(e))
        })?;
        Ok(rows
            .iter()
            .map(|r| Alert {
                allocation: r.get(0),
                agent: AgentId::trusted(r.get(1)),
                resource: r.get::<_, Option<&str>>(2).and_then(Resource::parse),
                kind: AlertKind::parse(r.get(3)).unwrap_or(AlertKind::SoftThreshold),
                period_index: r.get::<_, i64>(4) as u64,
                percent: r.get::<_, i64>(5) as u64,
                at_ms: r.get(6),
            })
            .collect())
    }
}
