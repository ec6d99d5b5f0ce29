//! The ledger on PostgreSQL: accounts, balances and posted transfers,
//! each change one transaction that PostgreSQL makes safe across any
//! number of hosts.
//!
//! Every posting locks the balance rows it moves (`SELECT ... FOR
//! UPDATE`, in one order, so two postings never wait on each other in a
//! cycle), checks what the debit may spend, writes both rows and the
//! transfer. Two hosts posting the same transfer id at once: the second
//! waits on the id's key, is refused, and runs again, finding the first's
//! transfer (a replay) or a conflict. So no balance below zero (but
//! `@mint`'s), no transfer twice, under any interleaving.
//!
//! What is here so far: accounts, batches of transfers, balances,
//! conservation and listings. Reservations, settlement and the rest of
//! [`fuelhost_ledger::Ledger`] follow.

use crate::connect::Tx;
use postgres::types::ToSql;

use std::sync::Arc;

use fuelhost_ledger::{
    may_overdraw, AgentId, Asset, AssetBalance, Balances, Clock, LedgerError, Listed, SystemClock, Transfer,
    TransferKind, TransferQuery, ARCHIVED_PREFIX,
};

use crate::connect::Database;

/// The ledger of one PostgreSQL database, as one host uses it: the host
/// holds a lease (`leases.rs`) while any clone of it lives.
#[derive(Clone)]
pub struct PgLedger {
    db: Database,
    clock: Arc<dyn Clock>,
    pub(crate) lease: Arc<crate::leases::Lease>,
    /// Held by a move to the archive: one at a time per host (the
    /// background mover and one asked for), each host its own files.
    pub(crate) archiving: Arc<std::sync::Mutex<()>>,
}

impl std::fmt::Debug for PgLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLedger").field("db", &self.db).field("host", &self.lease.host).finish()
    }
}

/// This machine's host name (`/etc/hostname`, else `HOSTNAME`), the
/// default name of the host a ledger serves.
fn machine_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_string())
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// An amount as stored: at most `i64::MAX`.
pub(crate) fn to_db(amount: u64, what: &str) -> Result<i64, LedgerError> {
    i64::try_from(amount).map_err(|_| LedgerError::Overflow(format!("{what} {amount} exceeds {}", i64::MAX)))
}

/// The call and the charge an id would name, when it has the shape of a
/// charge's (`{invocation}/price`, `/fuel`, `/disk`, `/llm`).
pub(crate) fn charge_of(id: &str) -> Option<(&str, &str)> {
    id.rsplit_once('/')
        .filter(|(call, charge)| !call.is_empty() && matches!(*charge, "price" | "fuel" | "disk" | "llm"))
}

/// Columns of a transfer, in [`transfer_from_row`]'s order.
const TRANSFER_COLUMNS: &str = "id, debit, credit, asset, amount, kind, memo";

pub(crate) fn transfer_from_row(r: &postgres::Row) -> Result<Transfer, LedgerError> {
    let kind: String = r.get(5);
    let asset: String = r.get(3);
    Ok(Transfer {
        id: r.get(0),
        from: r.get(1),
        to: r.get(2),
        asset: Asset::parse(&asset)
            .ok_or_else(|| LedgerError::Storage(format!("unknown asset `{asset}` (written by a newer fuelhost?)")))?,
        amount: r.get::<_, i64>(4) as u64,
        kind: TransferKind::parse(&kind).ok_or_else(|| {
            LedgerError::Storage(format!("unknown transfer kind `{kind}` (written by a newer fuelhost?)"))
        })?,
        memo: r.get(6),
    })
}

impl PgLedger {
    /// The ledger in `db` (its schema brought up to date when `db` was
    /// opened), for a host holding a lease of `lease` (renewed in the
    /// background while a clone of this ledger lives).
    pub fn new(db: Database, name: &str, lease: std::time::Duration) -> Result<PgLedger, LedgerError> {
        let lease = crate::leases::Lease::take(&db, name, lease)?;
        Ok(PgLedger { db, clock: Arc::new(SystemClock), lease, archiving: Arc::default() })
    }

    /// The same ledger, telling time by `clock` (grants' expiry); records
    /// are stamped by the system clock, as in every backend.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> PgLedger {
        PgLedger { clock, ..self }
    }

    /// Now, by the ledger's clock.
    pub(crate) fn clock_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Open `url` with a pool of `max_connections`, as a host named by
    /// this machine's host name, holding a lease of
    /// [`crate::DEFAULT_LEASE`]. Several hosts on one machine need names
    /// of their own ([`PgLedger::open_as`]).
    pub fn open(url: &str, max_connections: u32) -> Result<PgLedger, crate::OpenError> {
        PgLedger::open_as(url, max_connections, &machine_name(), crate::DEFAULT_LEASE)
    }

    /// [`PgLedger::open`] as the host `name` (the same across its
    /// restarts, distinct from every other host's), with a lease of
    /// `lease`: a host that stops renewing it is taken for dead once it
    /// has run out.
    pub fn open_as(
        url: &str,
        max_connections: u32,
        name: &str,
        lease: std::time::Duration,
    ) -> Result<PgLedger, crate::OpenError> {
        let db = Database::open(url, max_connections)?;
        let shown = db.url().to_string();
        PgLedger::new(db, name, lease).map_err(|e| crate::OpenError::Unreachable { url: shown, reason: e.to_string() })
    }

    /// The id of the host this ledger serves (its lease's).
    pub fn host_id(&self) -> &str {
        &self.lease.host
    }

    /// The database, for the stores beside the ledger.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Create an agent's account, all balances zero;
    /// [`LedgerError::AccountExists`] when it has one.
    pub fn open_account(&self, agent: &AgentId) -> Result<(), LedgerError> {
        self.db.write(|tx| {
            let n = tx
                .execute(
                    "INSERT INTO accounts (id, system, created_ms) VALUES ($1, FALSE, $2) ON CONFLICT DO NOTHING",
                    &[&agent.as_str(), &now_ms()],
                )
                .map_err(|e| self.db.failed(e))?;
            if n == 0 {
                return Err(LedgerError::AccountExists(agent.to_string()));
            }
            Ok(())
        })
    }

    /// Post a batch of transfers, all or none, each idempotent by its id
    /// (a replay returns the transfer as first posted; the same id for
    /// another transfer is [`LedgerError::IdConflict`]).
    pub fn post(&self, batch: &[Transfer]) -> Result<Vec<Transfer>, LedgerError> {
        self.db.write(|tx| {
            self.lock_for_posting(tx, batch)?;
            batch.iter().map(|t| self.post_in(tx, t)).collect()
        })
    }

    /// What posting `batch` locks, first: its ids (and the calls whose
    /// charge ids they look like), then its balance rows.
    pub(crate) fn lock_for_posting(&self, tx: &mut Tx<'_>, batch: &[Transfer]) -> Result<(), LedgerError> {
        let mut ids: Vec<&str> = Vec::new();
        for t in batch {
            ids.push(&t.id);
            if let Some((call, _)) = charge_of(&t.id) {
                ids.push(call);
            }
        }
        self.lock_ids(tx, &ids)?;
        let rows: Vec<(&str, Asset)> =
            batch.iter().flat_map(|t| [(t.from.as_str(), t.asset), (t.to.as_str(), t.asset)]).collect();
        self.lock_balances(tx, &rows)
    }

    /// [`PgLedger::post`] of one transfer.
    pub fn post_one(&self, transfer: Transfer) -> Result<Transfer, LedgerError> {
        let mut posted = self.post(std::slice::from_ref(&transfer))?;
        posted.pop().ok_or_else(|| LedgerError::Storage("a posted batch of one came back empty".into()))
    }

    pub(crate) fn post_in(&self, tx: &mut Tx<'_>, t: &Transfer) -> Result<Transfer, LedgerError> {
        t.check()?;
        if let Some(existing) = self.transfer_in(tx, &t.id)? {
            return if t.replays(&existing) { Ok(existing) } else { Err(LedgerError::IdConflict(t.id.clone())) };
        }
        if t.id.starts_with(ARCHIVED_PREFIX) {
            return Err(LedgerError::Invalid(format!(
                "transfer ids beginning `{ARCHIVED_PREFIX}` are kept for the summaries of archived charges; choose another id"
            )));
        }
        // Holds and transfers share one id space: an id a running call
        // holds under (its price, fuel, a guest's transfer) is not free.
        let held = tx
            .query_opt("SELECT 1 FROM holds WHERE id = $1 AND state = 'pending'", &[&t.id])
            .map_err(|e| self.db.failed(e))?;
        if held.is_some() {
            return Err(LedgerError::IdConflict(t.id.clone()));
        }
        // Nor the id of a charge a running call will record
        // (`{invocation}/price`, `/fuel`, `/disk`, `/llm`).
        if let Some((call, _)) = charge_of(&t.id) {
            let running = tx
                .query_opt("SELECT 1 FROM reservations WHERE invocation_id = $1 AND NOT settled", &[&call])
                .map_err(|e| self.db.failed(e))?;
            if running.is_some() {
                return Err(LedgerError::IdConflict(t.id.clone()));
            }
        }
        self.move_balances(tx, &t.from, &t.to, t.asset, t.amount)?;
        self.insert_transfer(tx, t, None)?;
        Ok(t.clone())
    }

    /// The `transfers` row of `t` (its balances already moved), at the
    /// next position; `invocation` names the call whose charge it is.
    pub(crate) fn insert_transfer(
        &self,
        tx: &mut Tx<'_>,
        t: &Transfer,
        invocation: Option<&str>,
    ) -> Result<(), LedgerError> {
        tx.execute(
            "INSERT INTO transfers (id, debit, credit, asset, amount, kind, memo, invocation, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &t.id,
                &t.from,
                &t.to,
                &t.asset.as_str(),
                &to_db(t.amount, "amount")?,
                &t.kind.as_str(),
                &t.memo,
                &invocation,
                &now_ms(),
            ],
        )
        .map_err(|e| self.db.failed(e))?;
        Ok(())
    }

    /// Debit `debit`, credit `credit`: both balance rows locked in one
    /// order, the debit's spendable amount checked, no balance past the
    /// 64-bit range.
    pub(crate) fn move_balances(
        &self,
        tx: &mut Tx<'_>,
        debit: &str,
        credit: &str,
        asset: Asset,
        amount: u64,
    ) -> Result<(), LedgerError> {
        let amt = to_db(amount, "amount")?;
        for account in [debit, credit] {
            self.require_account(tx, account)?;
        }
        let mut accounts = [debit, credit];
        accounts.sort_unstable();
        for account in accounts {
            tx.execute(
                "INSERT INTO balances (account, asset) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&account, &asset.as_str()],
            )
            .map_err(|e| self.db.failed(e))?;
        }
        let rows = tx
            .query(
                "SELECT account, posted, held FROM balances WHERE asset = $1 AND account = ANY($2)
                 ORDER BY account FOR UPDATE",
                &[&asset.as_str(), &&accounts[..]],
            )
            .map_err(|e| self.db.failed(e))?;
        let row_of = |who: &str| -> Result<(i64, i64), LedgerError> {
            rows.iter()
                .find(|r| r.get::<_, &str>(0) == who)
                .map(|r| (r.get(1), r.get(2)))
                .ok_or_else(|| LedgerError::Storage(format!("no {asset} balance row for `{who}`")))
        };
        let (dp, dh) = row_of(debit)?;
        let available = (dp - dh).max(0) as u64;
        if !may_overdraw(debit) && available < amount {
            return Err(LedgerError::Insufficient { account: debit.to_string(), asset, available, needed: amount });
        }
        let past = |whose: String| {
            LedgerError::Conflict(format!("{whose} {asset} would pass {} with {amount} more", i64::MAX))
        };
        dp.checked_sub(amt).ok_or_else(|| past(format!("the {asset} `{debit}` has given out in all")))?;
        let (cp, _) = row_of(credit)?;
        cp.checked_add(amt).ok_or_else(|| past(format!("`{credit}`'s")))?;
        let update = "UPDATE balances SET posted = posted + $3 WHERE account = $1 AND asset = $2";
        tx.execute(update, &[&debit, &asset.as_str(), &-amt]).map_err(|e| self.db.failed(e))?;
        tx.execute(update, &[&credit, &asset.as_str(), &amt]).map_err(|e| self.db.failed(e))?;
        Ok(())
    }

    /// Serialize, across hosts, every transaction about `keys` (transfer,
    /// hold, invocation ids: one id space) until it ends. Taken first in a
    /// transaction, in one order, so two never wait on each other.
    pub(crate) fn lock_ids(&self, tx: &mut Tx<'_>, keys: &[&str]) -> Result<(), LedgerError> {
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&key])
                .map_err(|e| self.db.failed(e))?;
        }
        Ok(())
    }

    /// Lock the balance rows of `rows` (account, asset), made if missing,
    /// in one global order (asset, then account, byte order), before the
    /// transaction reads or moves any: no two transactions lock balances
    /// in opposite orders. Unknown accounts are skipped (their checks fail
    /// later, as they should).
    pub(crate) fn lock_balances(&self, tx: &mut Tx<'_>, rows: &[(&str, Asset)]) -> Result<(), LedgerError> {
        let mut rows: Vec<(&str, &str)> = rows.iter().map(|(a, asset)| (*a, asset.as_str())).collect();
        rows.sort_unstable_by(|x, y| (x.1, x.0).cmp(&(y.1, y.0)));
        rows.dedup();
        let (accounts, assets): (Vec<&str>, Vec<&str>) = rows.into_iter().unzip();
        tx.execute(
            "INSERT INTO balances (account, asset)
             SELECT t.account, t.asset FROM UNNEST($1::TEXT[], $2::TEXT[]) AS t(account, asset)
             WHERE EXISTS (SELECT 1 FROM accounts WHERE id = t.account)
             ORDER BY t.asset, t.account COLLATE \"C\" ON CONFLICT DO NOTHING",
            &[&accounts, &assets],
        )
        .map_err(|e| self.db.failed(e))?;
        tx.execute(
            "SELECT 1 FROM balances b JOIN UNNEST($1::TEXT[], $2::TEXT[]) AS t(account, asset)
                ON b.account = t.account AND b.asset = t.asset
             ORDER BY b.asset, b.account COLLATE \"C\" FOR UPDATE OF b",
            &[&accounts, &assets],
        )
        .map_err(|e| self.db.failed(e))?;
        Ok(())
    }

    /// [`LedgerError::UnknownAccount`] unless `account` exists.
    pub(crate) fn require_account(&self, tx: &mut Tx<'_>, account: &str) -> Result<(), LedgerError> {
        let known =
            tx.query_opt("SELECT 1 FROM accounts WHERE id = $1", &[&account]).map_err(|e| self.db.failed(e))?.is_some();
        if !known {
            return Err(LedgerError::UnknownAccount(account.to_string()));
        }
        Ok(())
    }

    /// What `account` may spend of `asset` (posted less held), its balance
    /// row locked until the transaction ends.
    pub(crate) fn available_locked(&self, tx: &mut Tx<'_>, account: &str, asset: Asset) -> Result<u64, LedgerError> {
        tx.execute(
            "INSERT INTO balances (account, asset) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&account, &asset.as_str()],
        )
        .map_err(|e| self.db.failed(e))?;
        let r = tx
            .query_one(
                "SELECT posted, held FROM balances WHERE account = $1 AND asset = $2 FOR UPDATE",
                &[&account, &asset.as_str()],
            )
            .map_err(|e| self.db.failed(e))?;
        Ok((r.get::<_, i64>(0) - r.get::<_, i64>(1)).max(0) as u64)
    }

    /// Whether a transfer (a charge included) holds `id`.
    pub(crate) fn transfer_exists(&self, tx: &mut Tx<'_>, id: &str) -> Result<bool, LedgerError> {
        Ok(tx.query_opt("SELECT 1 FROM transfers WHERE id = $1", &[&id]).map_err(|e| self.db.failed(e))?.is_some())
    }

    fn transfer_in(&self, tx: &mut Tx<'_>, id: &str) -> Result<Option<Transfer>, LedgerError> {
        let row = tx
            .query_opt(&format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = $1"), &[&id])
            .map_err(|e| self.db.failed(e))?;
        row.as_ref().map(transfer_from_row).transpose()
    }

    /// Whether an account exists.
    pub fn has_account(&self, agent: &str) -> Result<bool, LedgerError> {
        self.db.read(|c| {
            Ok(c.query_opt("SELECT 1 FROM accounts WHERE id = $1", &[&agent]).map_err(|e| self.db.failed(e))?.is_some())
        })
    }

    /// The balances of an agent; [`LedgerError::UnknownAccount`] when it
    /// has no account.
    pub fn balances(&self, agent: &AgentId) -> Result<Balances, LedgerError> {
        if !self.has_account(agent.as_str())? {
            return Err(LedgerError::UnknownAccount(agent.to_string()));
        }
        let rows = self.db.read(|c| {
            c.query("SELECT asset, posted, held FROM balances WHERE account = $1", &[&agent.as_str()])
                .map_err(|e| self.db.failed(e))
        })?;
        let mut b = Balances::default();
        for r in rows {
            if let Some(asset) = Asset::parse(r.get::<_, &str>(0)) {
                *b.get_mut(asset) =
                    AssetBalance { posted: r.get::<_, i64>(1).max(0) as u64, held: r.get::<_, i64>(2) as u64 };
            }
        }
        Ok(b)
    }

    /// Sum of posted balances of `asset` over every account, system
    /// accounts included: zero unless conservation is broken.
    pub fn asset_total(&self, asset: Asset) -> Result<i128, LedgerError> {
        // NUMERIC: a sum of BIGINTs cannot overflow on the way.
        let total: String = self.db.read(|c| {
            c.query_one("SELECT COALESCE(SUM(posted), 0)::TEXT FROM balances WHERE asset = $1", &[&asset.as_str()])
                .map(|r| r.get(0))
                .map_err(|e| self.db.failed(e))
        })?;
        total.parse().map_err(|e| LedgerError::Storage(format!("the total of {asset} `{total}`: {e}")))
    }

    /// The posted transfer with this id.
    pub fn transfer_record(&self, id: &str) -> Result<Option<Transfer>, LedgerError> {
        self.db.write(|tx| self.transfer_in(tx, id))
    }

    /// Every posted transfer, oldest first.
    pub fn transfers(&self) -> Result<Vec<Transfer>, LedgerError> {
        let rows = self.db.read(|c| {
            c.query(&format!("SELECT {TRANSFER_COLUMNS} FROM transfers ORDER BY seq"), &[])
                .map_err(|e| self.db.failed(e))
        })?;
        rows.iter().map(transfer_from_row).collect()
    }

    /// Posted transfers matching `q`, newest first, each with its position.
    pub fn transfer_listing(&self, q: &TransferQuery) -> Result<Vec<Listed<Transfer>>, LedgerError> {
        let limit = q.limit.unwrap_or(100).clamp(1, 10_000) as i64;
        let before = q.before.unwrap_or(i64::MAX);
        let agent = q.agent.as_ref().map(|a| a.to_string());
        let (sql, params): (String, Vec<&(dyn ToSql + Sync)>) = match &agent {
            // Each side through its own index, then merged.
            Some(agent) => (
                format!(
                    "SELECT {TRANSFER_COLUMNS}, seq FROM (
                        (SELECT * FROM transfers WHERE debit = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3)
                        UNION
                        (SELECT * FROM transfers WHERE credit = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3)
                     ) t ORDER BY seq DESC LIMIT $3"
                ),
                vec![agent, &before, &limit],
            ),
            None => (
                format!("SELECT {TRANSFER_COLUMNS}, seq FROM transfers WHERE seq < $1 ORDER BY seq DESC LIMIT $2"),
                vec![&before, &limit],
            ),
        };
        let rows = self.db.read(|c| c.query(&sql, &params).map_err(|e| self.db.failed(e)))?;
        // `seq` follows the transfer's columns.
        rows.iter().map(|r| Ok(Listed { seq: r.get(7), item: transfer_from_row(r)? })).collect()
    }
}
