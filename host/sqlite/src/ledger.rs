//! The embedded ledger backend: every [`Ledger`] operation is one
//! `BEGIN IMMEDIATE` transaction on the shared SQLite database.

use std::cell::RefCell;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use crate::allocation::{self as alloc, Governing};
use crate::counters;
use crate::database::{exec, in_savepoint, now_ms, one, Database};
use crate::group_commit::GroupCommit;
use crate::hot::{FastAttempt, FastRequest, FastRows, Governor, Hot, Journaled};
use crate::journal;
use crate::projection;
use crate::projector;
use crate::storage;
use fuelhost_ledger::ResourcePolicy;
use fuelhost_ledger::{AgentId, TransferKind};
use fuelhost_ledger::{
    Alert, Allocation, AllocationRequest, AllocationStatus, AllocationTransition, Asset, AssetBalance, Balances, Clock,
    Distribution, GuestTransfer, Ledger, LedgerError, LedgerQuery, Listed, Outcome, Reservation, Reserved, Resource,
    ResourcesConsumed, Settlement, SponsorGrant, SponsorGrantStatus, SystemClock, Transfer, UbiSource, UsageRecord,
};
use fuelhost_ledger::{Archived, ConsumerStats, ServiceStats, TransferQuery, UsageQuery};

use crate::reservation::reserve_in;
use crate::rows::{
    account_exists, available, balance_peek, balance_row, existing_transfer, place_hold, post, read_grant,
    require_account, stored_row, to_db, transfer_from_row, write_balance, Hold,
};
use crate::settlement::settle_in;
use crate::usage::{id_taken, read_usage, usage_from_row, usage_listing};

/// The SQLite ledger. Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct SqliteLedger {
    db: Arc<Database>,
    clock: Arc<dyn Clock>,
    settles: Option<Arc<GroupCommit<Settlement, Result<UsageRecord, LedgerError>>>>,
    hot: Arc<Hot>,
    counters: Arc<counters::Counters>,
    /// Held by the one retention move at a time (see `retention`).
    archiving: Arc<std::sync::Mutex<()>>,
}

impl SqliteLedger {
    /// Hold `amount` more of `payer`'s `asset` for the running
    /// `invocation` (disk as it writes, LLM tokens as it asks a model):
    /// refused, nothing held, when the balance less every hold is short.
    fn hold_running(&self, invocation_id: &str, payer: &AgentId, asset: Asset, amount: u64) -> Result<(), LedgerError> {
        // Under the connection lock, like every change to the holds: the
        // balance read and the hold see the same holds.
        let conn = self.db.read();
        let (p, h) = balance_peek(&conn, &self.hot, payer.as_str(), asset)?;
        if available(p, h) < amount {
            return Err(LedgerError::Insufficient {
                account: payer.to_string(),
                asset,
                available: available(p, h),
                needed: amount,
            });
        }
        self.hot.hold_running(invocation_id, payer.as_str(), asset, amount);
        Ok(())
    }

    /// A ledger on an open database.
    pub fn new(db: Arc<Database>) -> SqliteLedger {
        SqliteLedger::with_clock(db, Arc::new(SystemClock))
    }

    /// A ledger that reads expiries and periods off `clock`, with group
    /// commit of settlements on.
    pub fn with_clock(db: Arc<Database>, clock: Arc<dyn Clock>) -> SqliteLedger {
        let hot: Arc<Hot> = Arc::default();
        let (weak_db, weak_hot) = (Arc::downgrade(&db), Arc::downgrade(&hot));
        let spawned = std::thread::Builder::new()
            .name("fuelhost-journal".into())
            .spawn(move || projector::project_when_due(&weak_db, &weak_hot));
        if let Err(e) = spawned {
            // Reads and writes still project what they need first.
            tracing::warn!(error = %e, "starting the journal's projector failed; projecting on demand only");
        }
        SqliteLedger {
            db,
            clock,
            settles: Some(Arc::new(GroupCommit::default())),
            hot,
            counters: Arc::default(),
            archiving: Arc::default(),
        }
    }

    /// Open (or create) a ledger database file on its own, for embedders
    /// and benchmarks that want the ledger without a host.
    pub fn open(path: &std::path::Path, durability: crate::database::Durability) -> Result<SqliteLedger, LedgerError> {
        Ok(SqliteLedger::new(Arc::new(Database::open(path, durability).map_err(storage)?)))
    }

    /// Turn group commit of settlements on (the default) or off. With it,
    /// settlements from concurrent threads share one transaction and one
    /// fsync; each still returns only after its own commit.
    pub fn group_commit(mut self, on: bool) -> SqliteLedger {
        self.settles = on.then(|| Arc::new(GroupCommit::default()));
        self
    }

    /// Apply a batch of settlements in one durable commit, each in its own
    /// savepoint so that one refused settlement does not undo the others.
    fn settle_batch(&self, batch: Vec<Settlement>) -> Vec<Result<UsageRecord, LedgerError>> {
        let n = batch.len();
        let now = self.clock.now_ms();
        let moved = Moved::default();
        let unwinding = PutBackOnPanic { ledger: self, invocations: &batch, moved: &moved };
        let applied = self.db.durable_then(
            |conn| -> Result<_, LedgerError> {
                self.project_unless_journalable(conn, &batch, &moved)?;
                self.counters.load(conn)?;
                let results: Vec<_> = batch
                    .iter()
                    .map(|s| {
                        let r = in_savepoint(conn, |sp| settle_in(sp, &self.hot, s, now));
                        if r.is_ok() && self.hot.is_journaled(&s.invocation_id) {
                            moved.journaled.borrow_mut().push(s.invocation_id.clone());
                        }
                        r
                    })
                    .collect();
                self.counters.flush_if_due(conn)?;
                Ok(results)
            },
            // Under the connection lock, right after the commit: each fast
            // reservation follows its own settlement's fate (its holds back
            // before its journaled moves go, see `hot`), and the counters
            // keep the records that committed.
            |applied, committed| {
                match applied {
                    Ok(results) => {
                        for (s, r) in batch.iter().zip(results) {
                            self.settled(&s.invocation_id, committed && r.is_ok());
                        }
                        self.counters.settled(results.iter().filter_map(|r| r.as_ref().ok()), committed);
                    }
                    Err(_) => {
                        batch.iter().for_each(|s| self.settled(&s.invocation_id, false));
                        self.counters.settled(std::iter::empty(), false);
                    }
                }
                self.moved(&moved, committed);
                self.hot.transaction_ended();
            },
        );
        std::mem::forget(unwinding);
        match applied {
            Ok(results) => results,
            Err(e) => vec![Err(e); n],
        }
    }

    /// After the transaction that settled `invocation`, under the
    /// connection lock: forget its fast reservation if the settlement is
    /// in the database, else put it back.
    fn settled(&self, invocation: &str, in_database: bool) {
        if in_database {
            self.hot.settled(invocation);
        } else {
            self.hot.unsettle(invocation);
        }
    }

    /// Inside a settlement transaction: project the journal first unless
    /// every settlement of `batch` will be journaled too (the others write
    /// balances and look records up in the tables, which must hold every
    /// journaled record first). What was projected is kept in `moved` for
    /// [`SqliteLedger::moved`].
    fn project_unless_journalable(
        &self,
        conn: &Connection,
        batch: &[Settlement],
        moved: &Moved,
    ) -> Result<(), LedgerError> {
        let journalable = |s: &Settlement| {
            self.hot.journalable(&s.invocation_id, s.caller.as_str(), s.owner.as_str(), s.payer.as_str())
        };
        if self.hot.journal_waiting().0 == 0 || batch.iter().all(journalable) {
            return Ok(());
        }
        *moved.projected.borrow_mut() = Some(self.hot.take_journal());
        projection::project_in(conn)?;
        Ok(())
    }

    /// After a settlement transaction, under the connection lock: if it
    /// did not commit, what it projected is journaled again and what it
    /// journaled is forgotten.
    fn moved(&self, moved: &Moved, committed: bool) {
        if committed {
            return;
        }
        if let Some(taken) = moved.projected.borrow_mut().take() {
            self.hot.restore_journal(taken);
        }
        for invocation in moved.journaled.borrow_mut().drain(..) {
            self.hot.unjournal(&invocation);
        }
    }

    /// Project the journal now if anything waits in it: before an
    /// operation that reads the tables it projects into, or writes
    /// balances other than by journaling.
    fn caught_up(&self) -> Result<(), LedgerError> {
        if self.hot.journal_waiting().0 == 0 {
            return Ok(());
        }
        projector::project_journal(&self.db, &self.hot).map(|_| ())
    }

    /// One transaction, committed durably before it returns (the journal
    /// projected first).
    fn write<R>(&self, f: impl FnOnce(&Connection) -> Result<R, LedgerError>) -> Result<R, LedgerError> {
        self.caught_up()?;
        self.db.durable_then(f, |_, _| self.hot.transaction_ended())
    }

    /// One transaction, deferred (`Database::deferred`): for reservations,
    /// which charge nothing until their settlement (a durable commit)
    /// commits them too (the journal projected first).
    fn write_deferred<R>(&self, f: impl FnOnce(&Connection) -> Result<R, LedgerError>) -> Result<R, LedgerError> {
        self.caught_up()?;
        self.db.deferred(f)
    }
}

impl SqliteLedger {
    /// Reserve in memory (see `hot`) when nothing but balances governs the
    /// call: no sponsor grant (checked by the caller) and no allocation of
    /// the payer's. `None`: the call needs the persisted path.
    ///
    /// When everything the check needs is in memory (the parties, the
    /// rows of the balances it reads, and a fresh id), it takes no
    /// database lock at all; otherwise it reads what is missing under the
    /// connection lock, and the check and the holds are still one step.
    fn reserve_fast(&self, r: &Reservation) -> Result<Option<Reserved>, LedgerError> {
        let price = if r.caller != r.owner { r.price } else { 0 };
        let req = FastRequest {
            invocation: &r.invocation_id,
            caller: r.caller.as_str(),
            owner: r.owner.as_str(),
            payer: r.payer.as_str(),
            price,
            fuel_limit: r.fuel_limit,
            fresh_id: r.fresh_id,
        };
        if let FastAttempt::Done(done) = self.hot.reserve(&req, None) {
            return done.map(Some);
        }
        let conn = self.db.read();
        let Some(rows) = self.fast_rows(&conn, r, price)? else { return Ok(None) };
        match self.hot.reserve(&req, Some(rows)) {
            FastAttempt::Done(done) => done.map(Some),
            FastAttempt::NeedsDatabase => unreachable!("a reservation given its rows needs nothing else"),
        }
    }

    /// Under the connection lock, what a fast reservation needs that memory
    /// may not know: that no allocation governs the payer (`None` if one
    /// does: the persisted path), that the parties exist, that the id is
    /// free, and the stored rows of the balances it checks.
    fn fast_rows(&self, conn: &Connection, r: &Reservation, price: u64) -> Result<Option<FastRows>, LedgerError> {
        let hot = &*self.hot;
        if hot.governed(Governor::Allocation, r.payer.as_str(), || {
            agents(conn, "SELECT DISTINCT agent FROM allocations")
        })? {
            return Ok(None);
        }
        for account in [&r.caller, &r.owner, &r.payer] {
            if !hot.knows_account(account.as_str()) {
                require_account(conn, account.as_str())?;
                hot.note_account(account.as_str());
            }
        }
        let inv = &r.invocation_id;
        // Taken by a fast call, a persisted one, or a settled one (an id
        // the host just made cannot be; the usage record's key backs that).
        if hot.has(inv) || (!r.fresh_id && (hot.is_journaled(inv) || id_taken(conn, inv)?)) {
            return Err(LedgerError::DuplicateInvocation(inv.clone()));
        }
        // Its charges will be recorded under `<inv>/price` etc.: refused
        // now, before the guest runs, if an explicit transfer took one.
        if hot.charge_shaped_ids(|| journal::any_charge_shaped_id(conn))? {
            journal::refuse_taken_ids(conn, inv)?;
        }
        let caller_scrip = if price > 0 { Some(stored_row(conn, hot, r.caller.as_str(), Asset::Scrip)?) } else { None };
        Ok(Some(FastRows {
            caller_scrip,
            payer_fuel: stored_row(conn, hot, r.payer.as_str(), Asset::Fuel)?,
            payer_disk: stored_row(conn, hot, r.payer.as_str(), Asset::DiskBytes)?,
        }))
    }
}

/// The agents one column of `sql` lists.
fn agents(conn: &Connection, sql: &str) -> Result<std::collections::HashSet<String>, LedgerError> {
    let mut stmt = conn.prepare_cached(sql).map_err(storage)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(storage)?;
    rows.collect::<Result<_, _>>().map_err(storage)
}

/// Puts back the fast reservations of settlements whose run panicked (the
/// database rolled them back). Forgotten on the normal path.
struct PutBackOnPanic<'a> {
    ledger: &'a SqliteLedger,
    invocations: &'a [Settlement],
    moved: &'a Moved,
}

impl Drop for PutBackOnPanic<'_> {
    fn drop(&mut self) {
        let _conn = self.ledger.db.read();
        for s in self.invocations {
            self.ledger.settled(&s.invocation_id, false);
        }
        self.ledger.moved(self.moved, false);
    }
}

/// What a settlement transaction did to the journal, undone if it does
/// not commit: the charges it took to project, the settlements it
/// journaled.
#[derive(Default)]
struct Moved {
    projected: RefCell<Option<Journaled>>,
    journaled: RefCell<Vec<String>>,
}

impl SqliteLedger {
    /// Post one transfer inside `tx`: a replay returns the transfer as
    /// first posted, a conflict or a broken rule refuses the whole batch.
    fn post_in(&self, tx: &Connection, p: &Transfer) -> Result<Transfer, LedgerError> {
        p.check()?;
        if let Some(t) = existing_transfer(tx, &p.id)? {
            return if p.replays(&t) { Ok(t) } else { Err(LedgerError::IdConflict(p.id.clone())) };
        }
        if p.id.starts_with(fuelhost_ledger::ARCHIVED_PREFIX) {
            return Err(LedgerError::Invalid(format!(
                "transfer ids beginning `{}` are kept for the summaries of archived charges; choose another id",
                fuelhost_ledger::ARCHIVED_PREFIX
            )));
        }
        require_account(tx, &p.from)?;
        require_account(tx, &p.to)?;
        post(tx, &self.hot, &p.id, &p.from, &p.to, p.asset, p.amount, p.kind, &p.memo, None)
    }
}

impl LedgerQuery for SqliteLedger {
    fn has_account(&self, agent: &str) -> Result<bool, LedgerError> {
        if self.hot.knows_account(agent) {
            return Ok(true);
        }
        let exists = account_exists(&self.db.read(), agent)?;
        if exists {
            self.hot.note_account(agent);
        }
        Ok(exists)
    }

    fn balances(&self, agent: &AgentId) -> Result<Balances, LedgerError> {
        let conn = self.db.read();
        require_account(&conn, agent.as_str())?;
        let mut b = Balances::default();
        for asset in Asset::ALL {
            let (posted, held) = balance_peek(&conn, &self.hot, agent.as_str(), asset)?;
            *b.get_mut(asset) = AssetBalance { posted: posted.max(0) as u64, held: held as u64 };
        }
        Ok(b)
    }

    fn usage_record(&self, invocation_id: &str) -> Result<Option<UsageRecord>, LedgerError> {
        if self.hot.is_journaled(invocation_id) {
            self.caught_up()?;
        }
        let conn = self.db.read();
        read_usage(&conn, invocation_id)
    }

    fn asset_total(&self, asset: Asset) -> Result<i128, LedgerError> {
        self.caught_up()?;
        let conn = self.db.read();
        let mut stmt = conn.prepare_cached("SELECT posted FROM balances WHERE asset = ?1").map_err(storage)?;
        let rows = stmt.query_map([asset.as_str()], |r| r.get::<_, i64>(0)).map_err(storage)?;
        let mut total: i128 = 0;
        for r in rows {
            total += r.map_err(storage)? as i128;
        }
        Ok(total)
    }

    fn pending_holds(&self) -> Result<u64, LedgerError> {
        let conn = self.db.read();
        let n: i64 =
            one(&conn, "SELECT COUNT(*) FROM holds WHERE state = 'pending'", [], |r| r.get(0)).map_err(storage)?;
        Ok(n as u64 + self.hot.open_holds())
    }

    fn sponsorship(&self, id: &str) -> Result<Option<SponsorGrantStatus>, LedgerError> {
        read_grant(&self.db.read(), id)
    }

    fn sponsorship_for(
        &self,
        beneficiary: &AgentId,
        artifact: &str,
    ) -> Result<Option<SponsorGrantStatus>, LedgerError> {
        // Most callers were never a grant's beneficiary: answered from
        // memory, without waiting for the connection.
        if self.hot.governed_if_known(Governor::SponsorGrant, beneficiary.as_str()) == Some(false) {
            return Ok(None);
        }
        let conn = self.db.read();
        let load = || agents(&conn, "SELECT DISTINCT beneficiary FROM sponsor_grants");
        if !self.hot.governed(Governor::SponsorGrant, beneficiary.as_str(), load)? {
            return Ok(None);
        }
        let ids: Vec<String> = {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id FROM sponsor_grants WHERE beneficiary = ?1 AND revoked = 0 ORDER BY created_ms, id",
                )
                .map_err(storage)?;
            let rows = stmt.query_map([beneficiary.as_str()], |r| r.get(0)).map_err(storage)?;
            rows.collect::<Result<_, _>>().map_err(storage)?
        };
        let now = self.clock.now_ms();
        for id in ids {
            if let Some(g) = read_grant(&conn, &id)? {
                let held: i64 = one(&conn, "SELECT fuel_held FROM sponsor_grants WHERE id = ?1", [&id], |r| r.get(0))
                    .map_err(storage)?;
                if g.covers(artifact, now) && g.fuel_spent + (held as u64) < g.grant.fuel_limit {
                    return Ok(Some(g));
                }
            }
        }
        Ok(None)
    }

    fn allocation(&self, id: &str) -> Result<Option<Allocation>, LedgerError> {
        self.write(|tx| match alloc::load(tx, id)? {
            Some(a) => Ok(Some(alloc::refresh(tx, a, self.clock.now_ms())?)),
            None => Ok(None),
        })
    }

    fn allocations_of(&self, agent: &AgentId) -> Result<Vec<Allocation>, LedgerError> {
        self.write(|tx| {
            let ids: Vec<String> = {
                let mut stmt = tx
                    .prepare_cached("SELECT id FROM allocations WHERE agent = ?1 ORDER BY created_ms, id")
                    .map_err(storage)?;
                let rows = stmt.query_map([agent.as_str()], |r| r.get(0)).map_err(storage)?;
                rows.collect::<Result<_, _>>().map_err(storage)?
            };
            let now = self.clock.now_ms();
            let mut out = Vec::new();
            for id in ids {
                if let Some(a) = alloc::load(tx, &id)? {
                    out.push(alloc::refresh(tx, a, now)?);
                }
            }
            Ok(out)
        })
    }

    fn allocations_in_force(&self) -> Result<Vec<Allocation>, LedgerError> {
        self.write(|tx| {
            let ids: Vec<String> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id FROM allocations WHERE status IN ('active', 'exhausted') ORDER BY agent, created_ms, id",
                ).map_err(storage)?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(storage)?;
                rows.collect::<Result<_, _>>().map_err(storage)?
            };
            let now = self.clock.now_ms();
            let mut out = Vec::new();
            for id in ids {
                if let Some(a) = alloc::load(tx, &id)? {
                    let a = alloc::refresh(tx, a, now)?;
                    if matches!(a.status, AllocationStatus::Active | AllocationStatus::Exhausted) {
                        out.push(a);
                    }
                }
            }
            Ok(out)
        })
    }

    fn reported_usage(&self, resource: Resource) -> Result<Vec<(AgentId, u64)>, LedgerError> {
        let conn = self.db.read();
        let mut stmt = conn
            .prepare_cached(
                "SELECT agent, SUM(amount) FROM external_usage WHERE resource = ?1 AND allocation IS NOT NULL
             GROUP BY agent ORDER BY agent",
            )
            .map_err(storage)?;
        let rows = stmt
            .query_map([resource.as_str()], |r| Ok((AgentId::trusted(r.get(0)?), r.get::<_, i64>(1)?.max(0) as u64)))
            .map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn alerts(&self, agent: Option<&AgentId>) -> Result<Vec<Alert>, LedgerError> {
        alloc::alerts(&self.db.read(), agent.map(AgentId::as_str))
    }

    fn usage_records(&self, q: &UsageQuery) -> Result<Vec<UsageRecord>, LedgerError> {
        self.caught_up()?;
        let conn = self.db.committed();
        let (sql, params) = usage_listing(&conn, q)?;
        let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params), usage_from_row).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn top_consumers_by(
        &self,
        asset: Asset,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ConsumerStats>, LedgerError> {
        self.caught_up()?;
        self.counters.top_consumers(&self.db.committed(), asset, from_ms, to_ms, limit)
    }

    fn stats(&self) -> Result<ServiceStats, LedgerError> {
        // Counters and small tables, read on the committed connection: a
        // statistics request never scans the records nor waits for the
        // connection calls settle on.
        self.caught_up()?;
        let conn = self.db.committed();
        let count = |sql: &str| one(&conn, sql, [], |r| r.get::<_, i64>(0)).map(|v| v as u64);
        let mut stats = ServiceStats {
            total_allocations: count("SELECT COUNT(*) FROM allocations").map_err(storage)?,
            active_allocations: count("SELECT COUNT(*) FROM allocations WHERE status = 'active'").map_err(storage)?,
            budget_exceeded_count: count("SELECT COUNT(*) FROM alerts WHERE kind = 'exhausted'").map_err(storage)?,
            total_usage_records: 0,
            total_cost_usd_micros: 0,
            total_api_calls: 0,
            total_fuel: 0,
            invocations_by_outcome: Default::default(),
        };
        self.counters.usage_stats(&conn, &mut stats)?;
        Ok(stats)
    }

    fn transfer_record(&self, id: &str) -> Result<Option<Transfer>, LedgerError> {
        self.caught_up()?;
        existing_transfer(&self.db.read(), id)
    }

    fn transfer_listing(&self, q: &TransferQuery) -> Result<Vec<Listed<Transfer>>, LedgerError> {
        // Committed data only, off the connection calls settle on.
        self.caught_up()?;
        let conn = self.db.committed();
        let limit = q.limit.unwrap_or(100).min(10_000) as i64;
        let agent = q.agent.as_ref().map(AgentId::as_str);
        let mut stmt = conn.prepare_cached(journal::agent_listing(agent)).map_err(storage)?;
        let rows = stmt
            .query_map(params![agent, limit, q.before.unwrap_or(i64::MAX)], |r| {
                Ok(Listed { seq: r.get(7)?, item: transfer_from_row(r)? })
            })
            .map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    fn transfers(&self) -> Result<Vec<Transfer>, LedgerError> {
        // Committed data only, off the connection calls settle on.
        self.caught_up()?;
        let conn = self.db.committed();
        let mut stmt = conn.prepare_cached(journal::listing(false)).map_err(storage)?;
        let rows = stmt.query_map(params![None::<&str>, -1], transfer_from_row).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }
}

impl Ledger for SqliteLedger {
    fn open_account(&self, agent: &AgentId) -> Result<(), LedgerError> {
        self.write(|tx| {
            let n = exec(
                tx,
                "INSERT OR IGNORE INTO accounts (id, system, created_ms) VALUES (?1, 0, ?2)",
                params![agent.as_str(), now_ms()],
            )
            .map_err(storage)?;
            if n == 0 {
                return Err(LedgerError::AccountExists(agent.to_string()));
            }
            Ok(())
        })
    }

    fn post(&self, batch: &[Transfer]) -> Result<Vec<Transfer>, LedgerError> {
        self.write(|tx| batch.iter().map(|p| self.post_in(tx, p)).collect())
    }

    fn reserve(&self, r: &Reservation) -> Result<Reserved, LedgerError> {
        if r.sponsor_grant.is_none() {
            if let Some(reserved) = self.reserve_fast(r)? {
                return Ok(reserved);
            }
        }
        // A refusal by the allocations is returned from a committed
        // transaction (see `reserve_in`); any other error rolls back.
        self.write_deferred(|tx| reserve_in(tx, &self.hot, r, self.clock.now_ms()))?
    }

    fn hold_guest_transfer(&self, t: &GuestTransfer) -> Result<(), LedgerError> {
        if t.amount == 0 {
            return Err(LedgerError::Invalid("amount must be above zero".into()));
        }
        if t.from == t.to {
            return Err(LedgerError::Invalid(format!("`{}` cannot transfer to itself", t.from)));
        }
        self.write(|tx| {
            require_account(tx, t.to.as_str())?;
            place_hold(
                tx,
                &self.hot,
                &t.id,
                &t.invocation_id,
                t.from.as_str(),
                t.to.as_str(),
                Asset::Scrip,
                t.amount,
                TransferKind::GuestTransfer,
                &t.memo,
            )?;
            self.hot.note_guest_hold(&t.invocation_id);
            Ok(())
        })
    }

    fn hold_disk(&self, invocation_id: &str, payer: &AgentId, bytes: u64) -> Result<(), LedgerError> {
        self.hold_running(invocation_id, payer, Asset::DiskBytes, bytes)
    }

    fn hold_llm_tokens(&self, invocation_id: &str, payer: &AgentId, tokens: u64) -> Result<(), LedgerError> {
        self.hold_running(invocation_id, payer, Asset::LlmTokens, tokens)
    }

    fn release_llm_tokens(&self, invocation_id: &str, tokens: u64) -> Result<u64, LedgerError> {
        // Under the connection lock, like every change to the holds.
        let _conn = self.db.read();
        Ok(self.hot.release_running(invocation_id, Asset::LlmTokens, tokens))
    }

    fn settle(&self, s: &Settlement) -> Result<UsageRecord, LedgerError> {
        match &self.settles {
            Some(group) => group.submit(
                s.clone(),
                |batch| self.settle_batch(batch),
                || Err(LedgerError::Storage("the settlement batch failed; nothing in it was applied".into())),
            ),
            // Without group commit, a batch of one.
            None => self.settle_batch(vec![s.clone()]).pop().unwrap_or_else(|| {
                Err(LedgerError::Storage("the settlement batch failed; nothing in it was applied".into()))
            }),
        }
    }

    fn abort_unsettled(&self) -> Result<Vec<UsageRecord>, LedgerError> {
        let open: Vec<Settlement> = {
            let conn = self.db.read();
            let mut stmt = conn.prepare_cached(
                "SELECT invocation_id, artifact, caller, owner, payer, resource_policy FROM reservations WHERE settled = 0",
            ).map_err(storage)?;
            let rows = stmt
                .query_map([], |r| {
                    let policy: String = r.get(5)?;
                    Ok(Settlement {
                        invocation_id: r.get(0)?,
                        artifact: r.get(1)?,
                        caller: AgentId::trusted(r.get(2)?),
                        owner: AgentId::trusted(r.get(3)?),
                        payer: AgentId::trusted(r.get(4)?),
                        resource_policy: ResourcePolicy::from_stored(&policy),
                        outcome: Outcome::Aborted,
                        consumed: ResourcesConsumed::default(),
                        cost_model: fuelhost_ledger::CostModel::default(),
                        admission: None,
                        output: Vec::new(),
                        error: Some(
                            "aborted: the host stopped before this invocation settled; its holds were released".into(),
                        ),
                    })
                })
                .map_err(storage)?;
            rows.collect::<Result<_, _>>().map_err(storage)?
        };
        let aborted = open.iter().map(|s| self.settle(s)).collect::<Result<Vec<_>, _>>()?;
        // A call reserved in memory leaves no reservation row; the guest
        // transfers it held are persisted, so a crash orphans them. Release
        // and delete them: nothing was posted (the call never settled), and
        // like the call itself they leave no trace, so a retry under the
        // same invocation id can hold them again.
        self.write(|tx| {
            let orphans: Vec<(Hold, String)> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT id, debit, credit, asset, amount, kind, memo, invocation FROM holds
                     WHERE state = 'pending' AND invocation NOT IN (SELECT invocation_id FROM reservations)",
                    )
                    .map_err(storage)?;
                let rows =
                    stmt.query_map([], |r| Ok((transfer_from_row(r)?, r.get::<_, String>(7)?))).map_err(storage)?;
                rows.collect::<Result<_, _>>().map_err(storage)?
            };
            for (hold, _) in orphans.iter().filter(|(_, inv)| !self.hot.has(inv)) {
                let (p, h) = balance_row(tx, &self.hot, &hold.from, hold.asset)?;
                write_balance(tx, &self.hot, &hold.from, hold.asset, p, h - hold.amount as i64)?;
                exec(tx, "DELETE FROM holds WHERE id = ?1", [&hold.id]).map_err(storage)?;
            }
            Ok(())
        })?;
        Ok(aborted)
    }

    fn distribute_ubi(&self, id: &str, source: UbiSource, amount: u64) -> Result<Distribution, LedgerError> {
        self.write(|tx| {
            let existing = one(
                tx,
                "SELECT source, amount, recipients, per_agent, remainder FROM distributions WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)? as u64,
                        r.get::<_, i64>(2)? as u64,
                        r.get::<_, i64>(3)? as u64,
                        r.get::<_, i64>(4)? as u64,
                    ))
                },
            )
            .optional()
            .map_err(storage)?;
            if let Some((src, amt, recipients, per_agent, remainder)) = existing {
                if src != source.account() || amt != amount {
                    return Err(LedgerError::IdConflict(id.to_string()));
                }
                return Ok(Distribution { id: id.to_string(), source, amount, recipients, per_agent, remainder });
            }
            let agents: Vec<String> = {
                let mut stmt =
                    tx.prepare_cached("SELECT id FROM accounts WHERE system = 0 ORDER BY id").map_err(storage)?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(storage)?;
                rows.collect::<Result<_, _>>().map_err(storage)?
            };
            if agents.is_empty() {
                return Err(LedgerError::Invalid("no agents to distribute to".into()));
            }
            let recipients = agents.len() as u64;
            let per_agent = amount / recipients;
            let remainder = amount - per_agent * recipients;
            let from = source.account();
            if source == UbiSource::Pool {
                let (p, h) = balance_row(tx, &self.hot, from, Asset::Scrip)?;
                let needed = per_agent * recipients;
                if available(p, h) < needed {
                    return Err(LedgerError::Insufficient {
                        account: from.into(),
                        asset: Asset::Scrip,
                        available: available(p, h),
                        needed,
                    });
                }
            }
            if per_agent > 0 {
                for agent in &agents {
                    self.post_in(tx, &Transfer::ubi_share(&format!("{id}/{agent}"), from, agent, per_agent))?;
                }
            }
            exec(
                tx,
                "INSERT INTO distributions (id, source, amount, recipients, per_agent, remainder, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    from,
                    to_db(amount, "amount")?,
                    recipients as i64,
                    per_agent as i64,
                    remainder as i64,
                    now_ms()
                ],
            )
            .map_err(storage)?;
            Ok(Distribution { id: id.to_string(), source, amount, recipients, per_agent, remainder })
        })
    }

    fn grant_sponsorship(&self, g: &SponsorGrant) -> Result<(), LedgerError> {
        if g.sponsor == g.beneficiary {
            return Err(LedgerError::Invalid(format!("`{}` cannot sponsor itself", g.sponsor)));
        }
        to_db(g.fuel_limit, "fuel_limit")?;
        to_db(g.disk_limit, "disk_limit")?;
        self.write(|tx| {
            if let Some(existing) = read_grant(tx, &g.id)? {
                return if existing.grant == *g { Ok(()) } else { Err(LedgerError::IdConflict(g.id.clone())) };
            }
            require_account(tx, g.sponsor.as_str())?;
            require_account(tx, g.beneficiary.as_str())?;
            let artifacts = serde_json::to_string(&g.artifacts).map_err(|e| LedgerError::Invalid(e.to_string()))?;
            exec(tx,
                "INSERT INTO sponsor_grants (id, sponsor, beneficiary, fuel_limit, disk_limit, expires_ms, artifacts, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    g.id,
                    g.sponsor.as_str(),
                    g.beneficiary.as_str(),
                    g.fuel_limit as i64,
                    g.disk_limit as i64,
                    g.expires_at_ms,
                    artifacts,
                    now_ms()
                ],
            ).map_err(storage)?;
            self.hot.note_governed(Governor::SponsorGrant, g.beneficiary.as_str());
            Ok(())
        })
    }

    fn revoke_sponsorship(&self, id: &str) -> Result<(), LedgerError> {
        self.write(|tx| {
            let n = exec(tx, "UPDATE sponsor_grants SET revoked = 1 WHERE id = ?1", [id]).map_err(storage)?;
            if n == 0 {
                return Err(LedgerError::Invalid(format!("no sponsor grant `{id}`")));
            }
            Ok(())
        })
    }

    fn request_allocation(&self, req: &AllocationRequest) -> Result<Allocation, LedgerError> {
        if let Some(problem) = req.problem() {
            return Err(LedgerError::Invalid(format!("allocation request: {problem}")));
        }
        self.write(|tx| {
            if let Some(existing) = alloc::stored_request(tx, &req.id)? {
                if existing != *req {
                    return Err(LedgerError::IdConflict(req.id.clone()));
                }
            } else {
                require_account(tx, req.agent.as_str())?;
                alloc::insert(tx, req, self.clock.now_ms())?;
                // From now on the agent's calls take the persisted path, which enforces quotas.
                self.hot.note_governed(Governor::Allocation, req.agent.as_str());
            }
            alloc::load(tx, &req.id)?.ok_or_else(|| LedgerError::UnknownAllocation(req.id.clone()))
        })
    }

    fn transition_allocation(&self, id: &str, t: &AllocationTransition) -> Result<Allocation, LedgerError> {
        if let AllocationTransition::Extend { additional_ms } = t {
            if *additional_ms == 0 || *additional_ms > i64::MAX as u64 {
                return Err(LedgerError::Invalid(format!(
                    "additional_ms is {additional_ms}; give 1 to {} milliseconds",
                    i64::MAX
                )));
            }
        }
        self.write(|tx| {
            let a = alloc::load(tx, id)?.ok_or_else(|| LedgerError::UnknownAllocation(id.to_string()))?;
            let now = self.clock.now_ms();
            let a = alloc::refresh(tx, a, now)?;
            if *t == AllocationTransition::Activate {
                if let Governing::Active(other) = alloc::governing(tx, a.agent.as_str(), now)? {
                    return Err(LedgerError::Conflict(format!(
                        "`{}` already has active allocation `{}`; revoke it first",
                        a.agent, other.id
                    )));
                }
            }
            alloc::transition(tx, a, t, now)
        })
    }

    fn record_usage(
        &self,
        id: &str,
        agent: &AgentId,
        resource: Resource,
        amount: u64,
    ) -> Result<Allocation, LedgerError> {
        to_db(amount, "amount")?;
        self.write(|tx| {
            let now = self.clock.now_ms();
            let seen: Option<Option<String>> =
                one(tx, "SELECT allocation FROM external_usage WHERE id = ?1", [id], |r| r.get(0)).optional().map_err(storage)?;
            if let Some(allocation) = seen {
                let allocation = allocation.ok_or_else(|| LedgerError::IdConflict(id.to_string()))?;
                let a = alloc::load(tx, &allocation)?.ok_or_else(|| LedgerError::UnknownAllocation(allocation.clone()))?;
                return alloc::refresh(tx, a, now);
            }
            let mut a = match alloc::governing(tx, agent.as_str(), now)? {
                Governing::Active(a) => a,
                Governing::Blocked(reason) => return Err(LedgerError::AllocationRefused { agent: agent.to_string(), reason }),
                Governing::Ungoverned => {
                    return Err(LedgerError::AllocationRefused {
                        agent: agent.to_string(),
                        reason: format!("`{agent}` has no allocation to record usage against"),
                    })
                }
            };
            alloc::add_usage(tx, &mut a, resource, amount, now)?;
            exec(
                tx,
                "INSERT INTO external_usage (id, agent, resource, amount, allocation, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, agent.as_str(), resource.as_str(), amount as i64, a.id, now],
            ).map_err(storage)?;
            Ok(a)
        })
    }

    fn catch_up(&self) -> Result<(), LedgerError> {
        self.caught_up()
    }

    fn archive_settled(&self, before_ms: i64, dir: &std::path::Path) -> Result<Archived, LedgerError> {
        let _one_mover = self.archiving.lock().unwrap_or_else(|p| p.into_inner());
        // Every record to archive projected from the journal, and counted
        // in the counters' tables (a record they do not include yet would
        // be read back at the next start, and must still be there).
        self.caught_up()?;
        self.db.durable_then(
            |tx| self.counters.fold(tx),
            |_, committed| self.counters.settled(std::iter::empty(), committed),
        )?;
        crate::retention::archive_settled(&self.db, &self.hot, before_ms, dir)
    }
}
