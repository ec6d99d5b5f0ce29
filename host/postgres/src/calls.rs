//! A call's two writes on PostgreSQL: reserving (its price and fuel held,
//! in one transaction, with its reservation row) and settling (every hold
//! posted for what was used or released, disk growth and the language-model
//! tokens its requests used charged, its sponsor grant updated, its usage
//! record and its admission's audit record written, in one transaction),
//! and what a host that stopped left reserved.
//!
//! Unlike the SQLite backend, nothing is kept in memory: every
//! reservation and every hold (the disk a running call's writes hold and
//! the tokens its language-model requests hold included) is a row, so any
//! host sees what every other holds, and a balance is never spent twice
//! across hosts. Charges are `transfers` rows tagged with their
//! invocation, at positions after their record's.

use crate::connect::Tx;

use fuelhost_ledger::{
    AgentId, Asset, GuestTransfer, LedgerError, Outcome, Reservation, Reserved, ResourcePolicy, ResourcesConsumed,
    Settlement, Transfer, TransferKind, UsageQuery, UsageRecord, CONSUMED_ACCOUNT,
};

use crate::allocations::{CallUsage, Governing};
use crate::ledger::{now_ms, to_db, PgLedger};

/// The error every aborted record carries.
const ABORTED: &str = "aborted: the host stopped before this invocation settled; its holds were released";

/// Columns of a usage record, in [`record_from_row`]'s order.
pub(crate) const RECORD_COLUMNS: &str = "invocation_id, artifact, caller, owner, charged_to, resource_policy, outcome,
    fuel, memory_peak_bytes, disk_bytes, wall_time_ns, cpu_time_ns, llm_tokens, cost_usd_micros, price_paid, output,
    error, settled_ms, seq";

pub(crate) fn record_from_row(r: &postgres::Row) -> UsageRecord {
    let n = |i: usize| r.get::<_, i64>(i) as u64;
    UsageRecord {
        invocation_id: r.get(0),
        artifact: r.get(1),
        caller: AgentId::trusted(r.get(2)),
        owner: AgentId::trusted(r.get(3)),
        charged_to: AgentId::trusted(r.get(4)),
        resource_policy: ResourcePolicy::from_stored(r.get(5)),
        outcome: Outcome::parse(r.get(6)).unwrap_or(Outcome::Trap),
        consumed: ResourcesConsumed {
            fuel: n(7),
            memory_peak_bytes: n(8),
            disk_bytes: n(9),
            wall_time_ns: n(10),
            cpu_time_ns: n(11),
            llm_tokens: n(12),
        },
        cost_usd_micros: n(13),
        price_paid: n(14),
        output: r.get(15),
        error: r.get(16),
        settled_at_ms: r.get(17),
        seq: r.get(18),
    }
}

/// A pending hold, as settlement reads it.
struct Hold {
    transfer: Transfer,
}

/// What a settlement locked and reads.
struct Settling {
    grant: Option<String>,
    allocation: Option<String>,
    holds: Vec<Hold>,
}

/// What a settlement's holds posted.
struct Posted {
    price_paid: u64,
    fuel_charged: u64,
    fuel_held: u64,
}

impl PgLedger {
    /// Hold `amount` of `debit`'s `asset` for `invocation` under `id`:
    /// [`LedgerError::Insufficient`] when it has less to spend (no account
    /// is exempt), [`LedgerError::DuplicateInvocation`] when the id holds
    /// already.
    #[allow(clippy::too_many_arguments)]
    fn place_hold(
        &self,
        tx: &mut Tx<'_>,
        id: &str,
        invocation: &str,
        debit: &str,
        credit: &str,
        asset: Asset,
        amount: u64,
        kind: TransferKind,
        memo: &str,
    ) -> Result<(), LedgerError> {
        let amt = to_db(amount, "hold")?;
        let available = self.available_locked(tx, debit, asset)?;
        if available < amount {
            return Err(LedgerError::Insufficient { account: debit.to_string(), asset, available, needed: amount });
        }
        let placed = tx
            .execute(
                "INSERT INTO holds (id, invocation, debit, credit, asset, amount, kind, memo, state)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending') ON CONFLICT (id) DO NOTHING",
                &[&id, &invocation, &debit, &credit, &asset.as_str(), &amt, &kind.as_str(), &memo],
            )
            .map_err(|e| self.database().failed(e))?;
        if placed == 0 {
            return Err(LedgerError::DuplicateInvocation(invocation.to_string()));
        }
        self.add_held(tx, debit, asset, amt)
    }

    /// [`LedgerError::NoReservation`] unless `invocation` is reserved and
    /// not settled: a hold outside a running call would never be released.
    fn require_running(&self, tx: &mut Tx<'_>, invocation: &str) -> Result<(), LedgerError> {
        let running = tx
            .query_opt("SELECT 1 FROM reservations WHERE invocation_id = $1 AND NOT settled", &[&invocation])
            .map_err(|e| self.database().failed(e))?;
        match running {
            Some(_) => Ok(()),
            None => Err(LedgerError::NoReservation(invocation.to_string())),
        }
    }

    fn add_held(&self, tx: &mut Tx<'_>, account: &str, asset: Asset, delta: i64) -> Result<(), LedgerError> {
        tx.execute(
            "UPDATE balances SET held = held + $3 WHERE account = $1 AND asset = $2",
            &[&account, &asset.as_str(), &delta],
        )
        .map_err(|e| self.database().failed(e))?;
        Ok(())
    }

    /// Hold the price and the fuel of an invocation, with its reservation
    /// row, in one transaction.
    ///
    /// A refusal by the payer's allocations is returned from a committed
    /// transaction, so what finding it changed (a new period, an expiry,
    /// their alerts) is kept; any other error changes nothing.
    pub fn reserve(&self, r: &Reservation) -> Result<Reserved, LedgerError> {
        let inv = r.invocation_id.as_str();
        self.database().write(|tx| -> Result<Result<Reserved, LedgerError>, LedgerError> {
            // Locks, in the order every transaction takes them: the id,
            // the payer's allocations (`governing`), the grant, balances.
            self.lock_ids(tx, &[inv])?;
            for (agent, needed) in [(&r.caller, true), (&r.owner, r.owner != r.caller), (&r.payer, true)] {
                if needed {
                    self.require_account(tx, agent.as_str())?;
                }
            }
            let taken = tx
                .query_opt(
                    "SELECT 1 WHERE EXISTS (SELECT 1 FROM usage_records WHERE invocation_id = $1)
                        OR EXISTS (SELECT 1 FROM reservations WHERE invocation_id = $1)",
                    &[&inv],
                )
                .map_err(|e| self.database().failed(e))?;
            if taken.is_some() {
                return Err(LedgerError::DuplicateInvocation(inv.to_string()));
            }
            for charge in ["price", "fuel", "disk", "llm"] {
                let id = format!("{inv}/{charge}");
                if self.transfer_exists(tx, &id)? {
                    return Err(LedgerError::Invalid(format!(
                        "transfer `{id}` already exists, so invocation `{inv}` could not record its charges under \
                         their ids; use another invocation id"
                    )));
                }
            }
            let governed = match self.governing(tx, r.payer.as_str())? {
                Governing::Ungoverned => None,
                Governing::Blocked(reason) => {
                    return Ok(Err(LedgerError::AllocationRefused { agent: r.payer.to_string(), reason }))
                }
                Governing::Active(mut a) => match self.hold_call(tx, &mut a, r.fuel_limit) {
                    Ok(caps) => Some((a.id, caps)),
                    Err(refusal @ LedgerError::AllocationRefused { .. }) => return Ok(Err(refusal)),
                    Err(other) => return Err(other),
                },
            };
            let allocation = governed.as_ref().map(|(id, _)| id.as_str());
            tx.execute(
                "INSERT INTO reservations (invocation_id, artifact, caller, owner, payer, resource_policy, sponsor_grant,
                    allocation, created_ms, host) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &inv,
                    &r.artifact,
                    &r.caller.as_str(),
                    &r.owner.as_str(),
                    &r.payer.as_str(),
                    &r.resource_policy.as_str(),
                    &r.sponsor_grant,
                    &allocation,
                    &now_ms(),
                    &self.host_id(),
                ],
            )
            .map_err(|e| self.database().failed(e))?;
            if let Some(grant) = &r.sponsor_grant {
                tx.execute("SELECT 1 FROM sponsor_grants WHERE id = $1 FOR UPDATE", &[grant])
                    .map_err(|e| self.database().failed(e))?;
            }
            let (caller, payer) = (r.caller.as_str(), r.payer.as_str());
            self.lock_balances(tx, &[(caller, Asset::Scrip), (payer, Asset::Fuel), (payer, Asset::DiskBytes)])?;
            let price = if r.caller != r.owner { r.price } else { 0 };
            if price > 0 {
                let id = format!("{inv}/price");
                let (caller, owner) = (r.caller.as_str(), r.owner.as_str());
                self.place_hold(tx, &id, inv, caller, owner, Asset::Scrip, price, TransferKind::Price, "")?;
            }
            let payer = r.payer.as_str();
            let mut fuel = r.fuel_limit.min(self.available_locked(tx, payer, Asset::Fuel)?);
            if let Some((_, caps)) = &governed {
                fuel = fuel.min(caps.fuel);
            }
            let mut disk_cap = u64::MAX;
            if let Some(grant) = &r.sponsor_grant {
                (fuel, disk_cap) = self.hold_from_grant(tx, r, grant, fuel)?;
            }
            if fuel == 0 {
                return Err(LedgerError::Insufficient {
                    account: payer.to_string(),
                    asset: Asset::Fuel,
                    available: 0,
                    needed: r.fuel_limit.max(1),
                });
            }
            let id = format!("{inv}/fuel");
            self.place_hold(tx, &id, inv, payer, CONSUMED_ACCOUNT, Asset::Fuel, fuel, TransferKind::Fuel, "")?;
            if let Some((id, caps)) = &governed {
                self.release_unheld_fuel(tx, id, caps.fuel - fuel)?;
            }
            let allocation_disk = governed.as_ref().and_then(|(_, caps)| caps.disk_bytes).unwrap_or(u64::MAX);
            let disk = self.available_locked(tx, payer, Asset::DiskBytes)?.min(disk_cap).min(allocation_disk);
            Ok(Ok(Reserved {
                fuel,
                disk_bytes: disk,
                memory_bytes: governed.as_ref().and_then(|(_, caps)| caps.memory_bytes),
                allocation: governed.map(|(id, _)| id),
            }))
        })?
    }

    /// Hold up to `fuel` of the sponsor grant `grant` for the call `r`:
    /// the fuel it may burn (at most what the grant has left) and the disk
    /// it may grow by; [`LedgerError::GrantUnavailable`] when the grant is
    /// not the payer's for this caller and artifact, or is used up.
    fn hold_from_grant(
        &self,
        tx: &mut Tx<'_>,
        r: &Reservation,
        grant: &str,
        fuel: u64,
    ) -> Result<(u64, u64), LedgerError> {
        let unavailable = || LedgerError::GrantUnavailable(grant.to_string());
        let row = tx
            .query_opt("SELECT fuel_held FROM sponsor_grants WHERE id = $1 FOR UPDATE", &[&grant])
            .map_err(|e| self.database().failed(e))?;
        let (Some(row), Some(status)) = (row, self.sponsorship_in(tx, grant)?) else { return Err(unavailable()) };
        let held = row.get::<_, i64>(0) as u64;
        if status.grant.sponsor != r.payer
            || status.grant.beneficiary != r.caller
            || !status.covers(&r.artifact, self.clock_ms())
        {
            return Err(unavailable());
        }
        let remaining = status.grant.fuel_limit.saturating_sub(status.fuel_spent).saturating_sub(held);
        if remaining == 0 {
            return Err(unavailable());
        }
        let fuel = fuel.min(remaining);
        tx.execute("UPDATE sponsor_grants SET fuel_held = fuel_held + $2 WHERE id = $1", &[&grant, &(fuel as i64)])
            .map_err(|e| self.database().failed(e))?;
        Ok((fuel, status.grant.disk_limit.saturating_sub(status.disk_spent)))
    }

    /// Hold a transfer a running guest asked for; posted at settlement if
    /// the call succeeds, else released.
    pub fn hold_guest_transfer(&self, t: &GuestTransfer) -> Result<(), LedgerError> {
        if t.amount == 0 {
            return Err(LedgerError::Invalid("amount must be above zero".into()));
        }
        if t.from == t.to {
            return Err(LedgerError::Invalid(format!("`{}` cannot transfer to itself", t.from)));
        }
        self.database().write(|tx| {
            // Settling the call waits for this, and this for a settling.
            self.lock_ids(tx, &[&t.invocation_id, &t.id])?;
            self.require_running(tx, &t.invocation_id)?;
            if self.transfer_exists(tx, &t.id)? || crate::ledger::charge_of(&t.id).is_some() {
                return Err(LedgerError::IdConflict(t.id.clone()));
            }
            self.require_account(tx, t.to.as_str())?;
            if let Err(LedgerError::UnknownAccount(_)) = self.require_account(tx, t.from.as_str()) {
                // Nothing to spend: as short as any empty account.
                return Err(LedgerError::Insufficient {
                    account: t.from.to_string(),
                    asset: Asset::Scrip,
                    available: 0,
                    needed: t.amount,
                });
            }
            let (from, to) = (t.from.as_str(), t.to.as_str());
            self.lock_balances(tx, &[(from, Asset::Scrip)])?;
            let kind = TransferKind::GuestTransfer;
            self.place_hold(tx, &t.id, &t.invocation_id, from, to, Asset::Scrip, t.amount, kind, &t.memo)
        })
    }

    /// Hold `bytes` more of `payer`'s disk budget for the running
    /// `invocation`; released when it settles.
    pub fn hold_disk(&self, invocation_id: &str, payer: &AgentId, bytes: u64) -> Result<(), LedgerError> {
        self.hold_running(invocation_id, payer, Asset::DiskBytes, bytes)
    }

    /// Hold `tokens` more of `payer`'s language-model token budget for
    /// the running `invocation`, about to send a request that may use that
    /// many: [`LedgerError::Insufficient`] (nothing held) when what `payer`
    /// has, less what every running call holds, is short. Released when
    /// the call settles (which charges what its requests used), or before
    /// by [`PgLedger::release_llm_tokens`].
    pub fn hold_llm_tokens(&self, invocation_id: &str, payer: &AgentId, tokens: u64) -> Result<(), LedgerError> {
        self.hold_running(invocation_id, payer, Asset::LlmTokens, tokens)
    }

    /// Hold `amount` more of `payer`'s `asset` for the running
    /// `invocation`: disk in `disk_holds` (as its writes grow a directory),
    /// LLM tokens in `llm_holds` (as it asks a model), each raising the
    /// balance row's `held`.
    fn hold_running(&self, invocation_id: &str, payer: &AgentId, asset: Asset, amount: u64) -> Result<(), LedgerError> {
        let (insert, what) = match asset {
            Asset::DiskBytes => (
                "INSERT INTO disk_holds (invocation, payer, bytes) VALUES ($1, $2, $3)
                 ON CONFLICT (invocation, payer) DO UPDATE SET bytes = disk_holds.bytes + EXCLUDED.bytes",
                "disk hold",
            ),
            Asset::LlmTokens => (
                "INSERT INTO llm_holds (invocation, payer, tokens) VALUES ($1, $2, $3)
                 ON CONFLICT (invocation, payer) DO UPDATE SET tokens = llm_holds.tokens + EXCLUDED.tokens",
                "llm token hold",
            ),
            other => return Err(LedgerError::Invalid(format!("a running call holds disk or LLM tokens, not {other}"))),
        };
        let db_amount = to_db(amount, what)?;
        self.database().write(|tx| {
            self.lock_ids(tx, &[invocation_id])?;
            self.require_running(tx, invocation_id)?;
            let available = match self.require_account(tx, payer.as_str()) {
                Ok(()) => {
                    self.lock_balances(tx, &[(payer.as_str(), asset)])?;
                    self.available_locked(tx, payer.as_str(), asset)?
                }
                Err(LedgerError::UnknownAccount(_)) => 0,
                Err(other) => return Err(other),
            };
            if available < amount {
                return Err(LedgerError::Insufficient { account: payer.to_string(), asset, available, needed: amount });
            }
            if amount == 0 {
                return Ok(());
            }
            tx.execute(insert, &[&invocation_id, &payer.as_str(), &db_amount])
                .map_err(|e| self.database().failed(e))?;
            self.add_held(tx, payer.as_str(), asset, db_amount)
        })
    }

    /// Release up to `tokens` of what `invocation` holds of language-model
    /// tokens (a request that used fewer than it held, or failed); returns
    /// how many were released: 0 when it holds none (settled, or never
    /// held any).
    pub fn release_llm_tokens(&self, invocation_id: &str, tokens: u64) -> Result<u64, LedgerError> {
        if tokens == 0 {
            return Ok(0);
        }
        self.database().write(|tx| {
            // Holding and settling take the id first too, so what is read
            // here stays as read until this ends. Only a running call holds
            // anything: a settled one's holds were released as it settled.
            self.lock_ids(tx, &[invocation_id])?;
            match self.require_running(tx, invocation_id) {
                Ok(()) => {}
                Err(LedgerError::NoReservation(_)) => return Ok(0),
                Err(other) => return Err(other),
            }
            let held = tx
                .query("SELECT payer, tokens FROM llm_holds WHERE invocation = $1 ORDER BY payer", &[&invocation_id])
                .map_err(|e| self.database().failed(e))?;
            let rows: Vec<(&str, Asset)> = held.iter().map(|r| (r.get::<_, &str>(0), Asset::LlmTokens)).collect();
            self.lock_balances(tx, &rows)?;
            let mut released = 0u64;
            for row in &held {
                let (payer, holds) = (row.get::<_, &str>(0), row.get::<_, i64>(1) as u64);
                let take = holds.min(tokens - released);
                if take == 0 {
                    break;
                }
                if take == holds {
                    tx.execute("DELETE FROM llm_holds WHERE invocation = $1 AND payer = $2", &[&invocation_id, &payer])
                } else {
                    tx.execute(
                        "UPDATE llm_holds SET tokens = tokens - $3 WHERE invocation = $1 AND payer = $2",
                        &[&invocation_id, &payer, &(take as i64)],
                    )
                }
                .map_err(|e| self.database().failed(e))?;
                self.add_held(tx, payer, Asset::LlmTokens, -(take as i64))?;
                released += take;
            }
            Ok(released)
        })
    }

    /// Post or release every hold of the invocation, charge its disk
    /// growth and the language-model tokens its requests used, update its
    /// grant, write its usage record and its admission's audit record: one
    /// transaction.
    pub fn settle(&self, s: &Settlement) -> Result<UsageRecord, LedgerError> {
        self.database().write(|tx| self.settle_in(tx, s))
    }

    fn settle_in(&self, tx: &mut Tx<'_>, s: &Settlement) -> Result<UsageRecord, LedgerError> {
        let inv = s.invocation_id.as_str();
        let call = self.lock_for_settling(tx, s)?;
        // The record's position comes before its charges'.
        let seq: i64 =
            tx.query_one("SELECT nextval('ledger_positions')", &[]).map_err(|e| self.database().failed(e))?.get(0);
        if !call.holds.iter().any(|h| h.transfer.kind == TransferKind::Fuel) {
            return Err(LedgerError::NoReservation(inv.to_string()));
        }
        let posted = self.post_holds(tx, s, &call.holds)?;
        let disk_charged = self.charge_disk(tx, s, call.grant.as_deref())?;
        let llm_charged = self.charge_llm_tokens(tx, s)?;
        let cost = s.cost_model.cost_usd_micros(posted.fuel_charged, disk_charged);
        if let Some(g) = &call.grant {
            tx.execute(
                "UPDATE sponsor_grants SET fuel_held = fuel_held - $2, fuel_spent = fuel_spent + $3,
                    disk_spent = disk_spent + $4 WHERE id = $1",
                &[g, &(posted.fuel_held as i64), &(posted.fuel_charged as i64), &(disk_charged as i64)],
            )
            .map_err(|e| self.database().failed(e))?;
        }
        if let Some(id) = &call.allocation {
            let usage = CallUsage {
                fuel_held: posted.fuel_held,
                fuel: posted.fuel_charged,
                disk_bytes: disk_charged,
                cost_usd_micros: cost,
                llm_tokens: llm_charged,
            };
            self.settle_call(tx, id, usage, s.outcome != Outcome::Aborted)?;
        }
        tx.execute("UPDATE reservations SET settled = TRUE WHERE invocation_id = $1", &[&inv])
            .map_err(|e| self.database().failed(e))?;
        let record = UsageRecord {
            invocation_id: s.invocation_id.clone(),
            artifact: s.artifact.clone(),
            caller: s.caller.clone(),
            owner: s.owner.clone(),
            charged_to: s.payer.clone(),
            resource_policy: s.resource_policy,
            outcome: s.outcome,
            consumed: ResourcesConsumed {
                fuel: posted.fuel_charged,
                memory_peak_bytes: s.consumed.memory_peak_bytes,
                disk_bytes: disk_charged,
                wall_time_ns: s.consumed.wall_time_ns,
                cpu_time_ns: s.cost_model.cpu_time_ns(posted.fuel_charged),
                llm_tokens: llm_charged,
            },
            price_paid: posted.price_paid,
            cost_usd_micros: cost,
            output: s.output.clone(),
            error: s.error.clone(),
            settled_at_ms: now_ms(),
            seq,
        };
        self.write_record(tx, &record)?;
        self.count(tx, &record)?;
        if let Some(a) = &s.admission {
            tx.execute(
                "INSERT INTO audit (at_ms, invocation, kind, subject, target, decision, decided_by, reason, latency_us)
                 VALUES ($1, $2, 'invoke', $3, $4, $5, $6, $7, $8)",
                &[
                    &a.at_ms,
                    &inv,
                    &s.caller.as_str(),
                    &s.artifact,
                    &a.decision,
                    &a.decided_by,
                    &a.reason,
                    &(a.latency_us.min(i64::MAX as u64) as i64),
                ],
            )
            .map_err(|e| self.database().failed(e))?;
        }
        Ok(record)
    }

    /// Take a settlement's locks, in the order every transaction takes
    /// them (the id, the reservation, its allocation and grant, then every
    /// balance row), refuse a call settled already, release the disk its
    /// writes held and the language-model tokens its requests held, and
    /// read what it holds.
    fn lock_for_settling(&self, tx: &mut Tx<'_>, s: &Settlement) -> Result<Settling, LedgerError> {
        let inv = s.invocation_id.as_str();
        self.lock_ids(tx, &[inv])?;
        let settled = tx
            .query_opt("SELECT 1 FROM usage_records WHERE invocation_id = $1", &[&inv])
            .map_err(|e| self.database().failed(e))?;
        if settled.is_some() {
            return Err(LedgerError::DuplicateInvocation(inv.to_string()));
        }
        let reservation = tx
            .query_opt(
                "SELECT sponsor_grant, allocation FROM reservations WHERE invocation_id = $1 FOR UPDATE",
                &[&inv],
            )
            .map_err(|e| self.database().failed(e))?;
        let grant: Option<String> = reservation.as_ref().and_then(|r| r.get(0));
        let allocation: Option<String> = reservation.as_ref().and_then(|r| r.get(1));
        if let Some(id) = &allocation {
            tx.execute("SELECT 1 FROM allocations WHERE id = $1 FOR UPDATE", &[id])
                .map_err(|e| self.database().failed(e))?;
        }
        if let Some(id) = &grant {
            tx.execute("SELECT 1 FROM sponsor_grants WHERE id = $1 FOR UPDATE", &[id])
                .map_err(|e| self.database().failed(e))?;
        }
        let holds: Vec<Hold> = tx
            .query(
                "SELECT id, debit, credit, asset, amount, kind, memo FROM holds
                 WHERE invocation = $1 AND state = 'pending' ORDER BY n",
                &[&inv],
            )
            .map_err(|e| self.database().failed(e))?
            .iter()
            .map(|r| crate::ledger::transfer_from_row(r).map(|transfer| Hold { transfer }))
            .collect::<Result<_, _>>()?;
        let disk_held = tx
            .query("DELETE FROM disk_holds WHERE invocation = $1 RETURNING payer, bytes", &[&inv])
            .map_err(|e| self.database().failed(e))?;
        let llm_held = tx
            .query("DELETE FROM llm_holds WHERE invocation = $1 RETURNING payer, tokens", &[&inv])
            .map_err(|e| self.database().failed(e))?;
        let mut rows: Vec<(&str, Asset)> = holds
            .iter()
            .flat_map(|h| [(h.transfer.from.as_str(), h.transfer.asset), (h.transfer.to.as_str(), h.transfer.asset)])
            .collect();
        rows.extend(disk_held.iter().map(|r| (r.get::<_, &str>(0), Asset::DiskBytes)));
        rows.extend(llm_held.iter().map(|r| (r.get::<_, &str>(0), Asset::LlmTokens)));
        rows.extend([(s.payer.as_str(), Asset::DiskBytes), (CONSUMED_ACCOUNT, Asset::DiskBytes)]);
        rows.extend([(s.payer.as_str(), Asset::LlmTokens), (CONSUMED_ACCOUNT, Asset::LlmTokens)]);
        self.lock_balances(tx, &rows)?;
        // What its writes and its requests held while it ran is released
        // first; what they grew and used is charged after.
        for row in &disk_held {
            self.add_held(tx, row.get(0), Asset::DiskBytes, -row.get::<_, i64>(1))?;
        }
        for row in &llm_held {
            self.add_held(tx, row.get(0), Asset::LlmTokens, -row.get::<_, i64>(1))?;
        }
        Ok(Settling { grant, allocation, holds })
    }

    /// Post each hold for what the call used (the fuel it burned; the
    /// price and the guest's transfers on success only) or release it.
    fn post_holds(&self, tx: &mut Tx<'_>, s: &Settlement, holds: &[Hold]) -> Result<Posted, LedgerError> {
        let success = s.outcome == Outcome::Success;
        let mut posted_all = Posted { price_paid: 0, fuel_charged: 0, fuel_held: 0 };
        for hold in holds {
            let t = &hold.transfer;
            let posted = t.kind.settled_amount(t.amount, success, s.consumed.fuel);
            self.add_held(tx, &t.from, t.asset, -to_db(t.amount, "hold")?)?;
            if posted > 0 {
                self.move_balances(tx, &t.from, &t.to, t.asset, posted)?;
                self.insert_transfer(tx, &Transfer { amount: posted, ..t.clone() }, Some(&s.invocation_id))?;
            }
            tx.execute(
                "UPDATE holds SET state = $2, posted_amount = $3 WHERE id = $1",
                &[&t.id, &if posted > 0 { "posted" } else { "voided" }, &(posted as i64)],
            )
            .map_err(|e| self.database().failed(e))?;
            match t.kind {
                TransferKind::Price => posted_all.price_paid = posted,
                TransferKind::Fuel => {
                    posted_all.fuel_charged = posted;
                    posted_all.fuel_held += t.amount;
                }
                _ => {}
            }
        }
        Ok(posted_all)
    }

    /// Charge the disk the call grew, within what the payer (and the grant
    /// paying, if any) has left: a transfer `{invocation}/disk`.
    fn charge_disk(&self, tx: &mut Tx<'_>, s: &Settlement, grant: Option<&str>) -> Result<u64, LedgerError> {
        if s.consumed.disk_bytes == 0 {
            return Ok(0);
        }
        let payer = s.payer.as_str();
        let mut charged = s.consumed.disk_bytes.min(self.available_locked(tx, payer, Asset::DiskBytes)?);
        if let Some(status) = grant.map(|g| self.sponsorship_in(tx, g)).transpose()?.flatten() {
            charged = charged.min(status.grant.disk_limit.saturating_sub(status.disk_spent));
        }
        self.post_consumed(tx, s, TransferKind::Disk, Asset::DiskBytes, charged)?;
        Ok(charged)
    }

    /// Post `amount` of `asset` from the payer to `@consumed` as the call's
    /// charge of `kind`, a transfer of its own (`{invocation}/{kind}`);
    /// nothing for 0.
    fn post_consumed(
        &self,
        tx: &mut Tx<'_>,
        s: &Settlement,
        kind: TransferKind,
        asset: Asset,
        amount: u64,
    ) -> Result<(), LedgerError> {
        if amount == 0 {
            return Ok(());
        }
        let payer = s.payer.as_str();
        let charge = Transfer {
            id: format!("{}/{}", s.invocation_id, kind.as_str()),
            from: payer.to_string(),
            to: CONSUMED_ACCOUNT.to_string(),
            asset,
            amount,
            kind,
            memo: String::new(),
        };
        self.move_balances(tx, payer, CONSUMED_ACCOUNT, asset, amount)?;
        self.insert_transfer(tx, &charge, Some(&s.invocation_id))
    }

    /// Charge the language-model tokens the call's requests used, within
    /// what the payer has left (whatever the outcome: the providers
    /// consumed them): a transfer `{invocation}/llm`.
    fn charge_llm_tokens(&self, tx: &mut Tx<'_>, s: &Settlement) -> Result<u64, LedgerError> {
        if s.consumed.llm_tokens == 0 {
            return Ok(0);
        }
        let payer = s.payer.as_str();
        let charged = s.consumed.llm_tokens.min(self.available_locked(tx, payer, Asset::LlmTokens)?);
        self.post_consumed(tx, s, TransferKind::Llm, Asset::LlmTokens, charged)?;
        Ok(charged)
    }

    fn write_record(&self, tx: &mut Tx<'_>, record: &UsageRecord) -> Result<(), LedgerError> {
        let c = &record.consumed;
        tx.execute(
            &format!(
                "INSERT INTO usage_records ({RECORD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                    $12, $13, $14, $15, $16, $17, $18, $19)"
            ),
            &[
                &record.invocation_id,
                &record.artifact,
                &record.caller.as_str(),
                &record.owner.as_str(),
                &record.charged_to.as_str(),
                &record.resource_policy.as_str(),
                &record.outcome.as_str(),
                &to_db(c.fuel, "fuel")?,
                &to_db(c.memory_peak_bytes, "memory")?,
                &to_db(c.disk_bytes, "disk")?,
                &to_db(c.wall_time_ns, "wall time")?,
                &to_db(c.cpu_time_ns, "cpu time")?,
                &to_db(c.llm_tokens, "llm tokens")?,
                &to_db(record.cost_usd_micros, "cost")?,
                &to_db(record.price_paid, "price")?,
                &record.output,
                &record.error,
                &record.settled_at_ms,
                &record.seq,
            ],
        )
        .map_err(|e| self.database().failed(e))?;
        Ok(())
    }

    /// Settle, as [`Outcome::Aborted`], every reservation never settled
    /// that no live host holds: this run's and earlier runs' of this
    /// host's name (it calls this when it opens, before it serves, so it
    /// has none in flight, and a restarted host takes back at once what it
    /// left) and those of hosts whose lease ran out. Their holds (the disk
    /// and language-model tokens they held included) are released and
    /// nothing is charged; then holds that belong to no reservation are
    /// released.
    pub fn abort_unsettled(&self) -> Result<Vec<UsageRecord>, LedgerError> {
        self.abort_where(true)
    }

    /// [`PgLedger::abort_unsettled`] for a host that serves: only what
    /// hosts whose lease ran out (a whole lease length ago) left, never
    /// this host's calls in flight.
    /// A host calls it now and again to take over from dead hosts.
    pub fn take_over_dead_hosts(&self) -> Result<Vec<UsageRecord>, LedgerError> {
        self.abort_where(false)
    }

    /// Whether a live host other than this one (its lease not run out by
    /// more than a lease length, as [`PgLedger::take_over_dead_hosts`]
    /// counts it) holds `invocation_id` reserved and unsettled.
    pub fn held_elsewhere(&self, invocation_id: &str) -> Result<bool, LedgerError> {
        let grace = self.lease.length.as_millis().min(i64::MAX as u128) as i64;
        self.database().read(|c| {
            c.query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM reservations r WHERE r.invocation_id = $1 AND NOT r.settled
                        AND r.host <> $2
                        AND EXISTS (SELECT 1 FROM host_leases l WHERE l.host = r.host AND l.expires_ms + $3 > {now}))",
                    now = crate::leases::DB_NOW_MS
                ),
                &[&invocation_id, &self.host_id(), &grace],
            )
            .map(|r| r.get(0))
            .map_err(|e| self.database().failed(e))
        })
    }

    /// Whether the host run `run` is gone: its lease ran out more than a
    /// lease ago (or was never taken), or it is an earlier run of this
    /// host's name (this host restarted).
    pub fn host_gone(&self, run: &str) -> Result<bool, LedgerError> {
        if run == self.host_id() {
            return Ok(false);
        }
        let grace = self.lease.length.as_millis().min(i64::MAX as u128) as i64;
        let name = self.lease.name.clone();
        self.database().read(|c| {
            c.query_one(
                &format!(
                    "SELECT NOT EXISTS (SELECT 1 FROM host_leases l WHERE l.host = $1 AND l.expires_ms + $2 > {now})
                        OR EXISTS (SELECT 1 FROM host_leases l WHERE l.host = $1 AND l.name = $3)",
                    now = crate::leases::DB_NOW_MS
                ),
                &[&run, &grace, &name],
            )
            .map(|r| r.get(0))
            .map_err(|e| self.database().failed(e))
        })
    }

    fn abort_where(&self, at_open: bool) -> Result<Vec<UsageRecord>, LedgerError> {
        let (host, name) = (self.host_id(), self.lease.name.as_str());
        // A lease counts as run out only a whole lease length after it
        // expired: after an outage of the database, every host's lease
        // lapsed, and the live ones renew within a third of that.
        let grace = self.lease.length.as_millis().min(i64::MAX as u128) as i64;
        let open = self.database().read(|c| {
            c.query(
                &format!(
                    "SELECT invocation_id, artifact, caller, owner, payer, resource_policy FROM reservations r
                     WHERE NOT settled AND (host IS NULL
                        OR ($3 AND (host = $1
                            OR EXISTS (SELECT 1 FROM host_leases l WHERE l.host = r.host AND l.name = $2)))
                        OR (host <> $1 AND NOT EXISTS
                            (SELECT 1 FROM host_leases l WHERE l.host = r.host AND l.expires_ms + $4 > {now})))
                     ORDER BY created_ms, invocation_id",
                    now = crate::leases::DB_NOW_MS
                ),
                &[&host, &name, &at_open, &grace],
            )
            .map_err(|e| self.database().failed(e))
        })?;
        let mut records = Vec::new();
        for r in &open {
            let s = Settlement {
                invocation_id: r.get(0),
                artifact: r.get(1),
                caller: AgentId::trusted(r.get(2)),
                owner: AgentId::trusted(r.get(3)),
                payer: AgentId::trusted(r.get(4)),
                resource_policy: ResourcePolicy::from_stored(r.get(5)),
                outcome: Outcome::Aborted,
                consumed: ResourcesConsumed::default(),
                output: Vec::new(),
                error: Some(ABORTED.to_string()),
                cost_model: Default::default(),
                admission: None,
            };
            // Settled meanwhile (by its own host): nothing left to abort.
            match self.settle(&s) {
                Ok(record) => records.push(record),
                Err(LedgerError::DuplicateInvocation(_) | LedgerError::NoReservation(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.database().write(|tx| {
            let orphans = tx
                .query(
                    "DELETE FROM holds h WHERE state = 'pending'
                     AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.invocation_id = h.invocation)
                     RETURNING debit, asset, amount",
                    &[],
                )
                .map_err(|e| self.database().failed(e))?;
            for o in &orphans {
                let asset = Asset::parse(o.get(1)).unwrap_or(Asset::Scrip);
                self.add_held(tx, o.get(0), asset, -o.get::<_, i64>(2))?;
            }
            let disk = tx
                .query(
                    "DELETE FROM disk_holds d WHERE NOT EXISTS
                        (SELECT 1 FROM reservations r WHERE r.invocation_id = d.invocation AND NOT r.settled)
                     RETURNING payer, bytes",
                    &[],
                )
                .map_err(|e| self.database().failed(e))?;
            for d in &disk {
                self.add_held(tx, d.get(0), Asset::DiskBytes, -d.get::<_, i64>(1))?;
            }
            let llm = tx
                .query(
                    "DELETE FROM llm_holds h WHERE NOT EXISTS
                        (SELECT 1 FROM reservations r WHERE r.invocation_id = h.invocation AND NOT r.settled)
                     RETURNING payer, tokens",
                    &[],
                )
                .map_err(|e| self.database().failed(e))?;
            for h in &llm {
                self.add_held(tx, h.get(0), Asset::LlmTokens, -h.get::<_, i64>(1))?;
            }
            Ok(())
        })?;
        Ok(records)
    }

    /// The usage record of a settled invocation.
    pub fn usage_record(&self, invocation_id: &str) -> Result<Option<UsageRecord>, LedgerError> {
        let row = self.database().read(|c| {
            c.query_opt(
                &format!("SELECT {RECORD_COLUMNS} FROM usage_records WHERE invocation_id = $1"),
                &[&invocation_id],
            )
            .map_err(|e| self.database().failed(e))
        })?;
        Ok(row.as_ref().map(record_from_row))
    }

    /// Usage records matching `q`, newest first.
    pub fn usage_records(&self, q: &UsageQuery) -> Result<Vec<UsageRecord>, LedgerError> {
        let limit = q.limit.unwrap_or(100).min(10_000) as i64;
        let agent = q.agent.as_ref().map(|a| a.to_string());
        let rows = self.database().read(|c| {
            c.query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM usage_records
                     WHERE ($1::TEXT IS NULL OR caller = $1 OR owner = $1 OR charged_to = $1)
                       AND ($2::TEXT IS NULL OR artifact = $2)
                       AND ($3::BIGINT IS NULL OR settled_ms >= $3)
                       AND ($4::BIGINT IS NULL OR settled_ms < $4)
                       AND ($5::BIGINT IS NULL OR seq < $5)
                     ORDER BY seq DESC LIMIT $6"
                ),
                &[&agent, &q.artifact, &q.from_ms, &q.to_ms, &q.before, &limit],
            )
            .map_err(|e| self.database().failed(e))
        })?;
        Ok(rows.iter().map(record_from_row).collect())
    }

    /// Holds not yet posted or voided, with the disk and the
    /// language-model tokens running calls hold (one each per call).
    pub fn pending_holds(&self) -> Result<u64, LedgerError> {
        self.database().read(|c| {
            let n: i64 = c
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM holds WHERE state = 'pending')
                          + (SELECT COUNT(DISTINCT invocation) FROM disk_holds)
                          + (SELECT COUNT(DISTINCT invocation) FROM llm_holds)",
                    &[],
                )
                .map_err(|e| self.database().failed(e))?
                .get(0);
            Ok(n as u64)
        })
    }
}
