//! Sponsor grants and UBI on PostgreSQL: a sponsor's promise to pay
//! another agent's calls (recorded once by its id, revocable), and an
//! equal share of scrip to every agent (one transaction; the remainder of
//! the division stays in the source).

use crate::connect::Tx;

use fuelhost_ledger::{
    AgentId, Asset, Distribution, LedgerError, SponsorGrant, SponsorGrantStatus, Transfer, UbiSource,
};

use crate::ledger::{now_ms, to_db, PgLedger};

/// Columns of a grant, in [`grant_from_row`]'s order.
const GRANT_COLUMNS: &str =
    "id, sponsor, beneficiary, fuel_limit, fuel_spent, disk_limit, disk_spent, expires_ms, artifacts, revoked, fuel_held";

fn grant_from_row(r: &postgres::Row) -> SponsorGrantStatus {
    let artifacts: String = r.get(8);
    SponsorGrantStatus {
        grant: SponsorGrant {
            id: r.get(0),
            sponsor: AgentId::trusted(r.get(1)),
            beneficiary: AgentId::trusted(r.get(2)),
            fuel_limit: r.get::<_, i64>(3) as u64,
            disk_limit: r.get::<_, i64>(5) as u64,
            expires_at_ms: r.get(7),
            artifacts: serde_json::from_str(&artifacts).unwrap_or_default(),
        },
        fuel_spent: r.get::<_, i64>(4) as u64,
        disk_spent: r.get::<_, i64>(6) as u64,
        revoked: r.get(9),
    }
}

impl PgLedger {
    pub(crate) fn sponsorship_in(&self, tx: &mut Tx<'_>, id: &str) -> Result<Option<SponsorGrantStatus>, LedgerError> {
        let row = tx
            .query_opt(&format!("SELECT {GRANT_COLUMNS} FROM sponsor_grants WHERE id = $1"), &[&id])
            .map_err(|e| self.database().failed(e))?;
        Ok(row.as_ref().map(grant_from_row))
    }

    /// Record a sponsor grant. Idempotent by `grant.id`; the id for
    /// another grant is [`LedgerError::IdConflict`].
    pub fn grant_sponsorship(&self, g: &SponsorGrant) -> Result<(), LedgerError> {
        if g.sponsor == g.beneficiary {
            return Err(LedgerError::Invalid(format!("`{}` cannot sponsor itself", g.sponsor)));
        }
        let fuel_limit = to_db(g.fuel_limit, "fuel_limit")?;
        let disk_limit = to_db(g.disk_limit, "disk_limit")?;
        let artifacts = serde_json::to_string(&g.artifacts).map_err(|e| LedgerError::Invalid(e.to_string()))?;
        self.database().write(|tx| {
            self.lock_ids(tx, &[&g.id])?;
            if let Some(existing) = self.sponsorship_in(tx, &g.id)? {
                return if existing.grant == *g { Ok(()) } else { Err(LedgerError::IdConflict(g.id.clone())) };
            }
            for agent in [&g.sponsor, &g.beneficiary] {
                self.require_account(tx, agent.as_str())?;
            }
            tx.execute(
                "INSERT INTO sponsor_grants (id, sponsor, beneficiary, fuel_limit, disk_limit, expires_ms, artifacts,
                    created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &g.id,
                    &g.sponsor.as_str(),
                    &g.beneficiary.as_str(),
                    &fuel_limit,
                    &disk_limit,
                    &g.expires_at_ms,
                    &artifacts,
                    &now_ms(),
                ],
            )
            .map_err(|e| self.database().failed(e))?;
            Ok(())
        })
    }

    /// Revoke a sponsor grant: it pays for no further call.
    pub fn revoke_sponsorship(&self, id: &str) -> Result<(), LedgerError> {
        self.database().write(|tx| {
            let n = tx
                .execute("UPDATE sponsor_grants SET revoked = TRUE WHERE id = $1", &[&id])
                .map_err(|e| self.database().failed(e))?;
            if n == 0 {
                return Err(LedgerError::Invalid(format!("no sponsor grant `{id}`")));
            }
            Ok(())
        })
    }

    /// A grant and its use.
    pub fn sponsorship(&self, id: &str) -> Result<Option<SponsorGrantStatus>, LedgerError> {
        self.database().write(|tx| self.sponsorship_in(tx, id))
    }

    /// The oldest grant that covers `beneficiary` calling `artifact` now,
    /// with fuel left beyond what running calls hold of it.
    pub fn sponsorship_for(
        &self,
        beneficiary: &AgentId,
        artifact: &str,
    ) -> Result<Option<SponsorGrantStatus>, LedgerError> {
        let rows = self.database().read(|c| {
            c.query(
                &format!(
                    "SELECT {GRANT_COLUMNS} FROM sponsor_grants WHERE beneficiary = $1 AND NOT revoked
                     ORDER BY created_ms, id"
                ),
                &[&beneficiary.as_str()],
            )
            .map_err(|e| self.database().failed(e))
        })?;
        let now = self.clock_ms();
        Ok(rows.iter().find_map(|r| {
            let g = grant_from_row(r);
            let held = r.get::<_, i64>(10) as u64;
            (g.covers(artifact, now) && g.fuel_spent + held < g.grant.fuel_limit).then_some(g)
        }))
    }

    /// Split `amount` equally over every agent, from `source`; the
    /// remainder stays in the source. One transaction; idempotent by id.
    pub fn distribute_ubi(&self, id: &str, source: UbiSource, amount: u64) -> Result<Distribution, LedgerError> {
        let amount_db = to_db(amount, "amount")?;
        self.database().write(|tx| {
            self.lock_ids(tx, &[id])?;
            let existing = tx
                .query_opt(
                    "SELECT source, amount, recipients, per_agent, remainder FROM distributions WHERE id = $1",
                    &[&id],
                )
                .map_err(|e| self.database().failed(e))?;
            if let Some(r) = existing {
                if r.get::<_, &str>(0) != source.account() || r.get::<_, i64>(1) != amount_db {
                    return Err(LedgerError::IdConflict(id.to_string()));
                }
                let n = |i: usize| r.get::<_, i64>(i) as u64;
                return Ok(Distribution {
                    id: id.to_string(),
                    source,
                    amount,
                    recipients: n(2),
                    per_agent: n(3),
                    remainder: n(4),
                });
            }
            let agents: Vec<String> = tx
                .query("SELECT id FROM accounts WHERE NOT system ORDER BY id", &[])
                .map_err(|e| self.database().failed(e))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if agents.is_empty() {
                return Err(LedgerError::Invalid("no agents to distribute to".into()));
            }
            let recipients = agents.len() as u64;
            let per_agent = amount / recipients;
            let remainder = amount - per_agent * recipients;
            let from = source.account();
            let shares: Vec<Transfer> = if per_agent > 0 {
                agents.iter().map(|a| Transfer::ubi_share(&format!("{id}/{a}"), from, a, per_agent)).collect()
            } else {
                Vec::new()
            };
            self.lock_for_posting(tx, &shares)?;
            if source == UbiSource::Pool {
                let available = self.available_locked(tx, from, Asset::Scrip)?;
                let needed = per_agent * recipients;
                if available < needed {
                    return Err(LedgerError::Insufficient {
                        account: from.into(),
                        asset: Asset::Scrip,
                        available,
                        needed,
                    });
                }
            }
            for share in &shares {
                self.post_in(tx, share)?;
            }
            tx.execute(
                "INSERT INTO distributions (id, source, amount, recipients, per_agent, remainder, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&id, &from, &amount_db, &(recipients as i64), &(per_agent as i64), &(remainder as i64), &now_ms()],
            )
            .map_err(|e| self.database().failed(e))?;
            Ok(Distribution { id: id.to_string(), source, amount, recipients, per_agent, remainder })
        })
    }
}
