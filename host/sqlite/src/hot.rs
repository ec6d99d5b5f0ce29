//! The fast path's in-memory state: reservations of calls in flight that no
//! allocation and no sponsor grant governs.
//!
//! Such a call's holds (its price from the caller, its fuel from the payer)
//! live here instead of in the `holds` and `reservations` tables, so
//! reserving writes nothing to the database and settling writes only what
//! the call really moved (its transfers and its usage record). Every read
//! of a balance adds these holds (`SqliteLedger`'s `balance_row`), so no
//! other operation can spend what a running call holds.
//!
//! A crash loses this state, which is exactly what recovery did with
//! persisted holds of unsettled calls: release them, charging nothing.
//!
//! It also keeps what every running call holds as it goes, fast path or
//! not: the disk its writes have grown its owner's directory by, held from
//! the payer's disk budget write by write (see `crate::disk`), and the LLM
//! tokens its model requests may use, so concurrent calls of one payer
//! share the budgets exactly. Settling releases them before the disk and
//! token charges are posted.
//!
//! It also keeps the settlement journal's charges not yet projected (see
//! `projection`): per account and asset, what journaled settlements moved,
//! which every balance read adds to the stored balance (and every balance
//! write takes out again), and the ids of those settlements, so that a
//! reservation or a replay under one of them sees it.
//!
//! It also keeps the balance rows as stored, for the accounts fast
//! reservations read (`stored_rows`), so that a reservation whose parties
//! and rows are all known here checks and holds under this lock alone,
//! without the database connection ([`Hot::reserve`]). For that, no
//! balance may ever read higher here than it is: a settlement releases a
//! call's holds in the same step as it journals what the call spent
//! ([`Hot::journal`]), or claims the accounts it will post to before it
//! releases them ([`Hot::release_for_posting`]); undoing a settlement puts
//! the holds back before it takes the spending out.
//!
//! It also keeps the ledger's sequence (the next position in the order of
//! transfers and charges, see `journal`) and whether any explicit transfer
//! took an id shaped like a charge's, so settling need not look.
//!
//! Lock order: the database connection first, then this. Every access but
//! a read of what is already loaded (`governed_if_known`) and a
//! reservation from what is kept ([`Hot::reserve`] without rows) happens
//! while the connection is held, so a balance read and the write that
//! follows it see the same holds; an account about to be written is
//! claimed first, so no reservation from memory slips in between.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use fuelhost_ledger::{Asset, LedgerError, Reserved, TransferKind};

use crate::stored_rows::{Row, StoredRows};

/// One call's holds.
#[derive(Debug, Clone)]
pub(super) struct FastReservation {
    pub caller: String,
    pub owner: String,
    pub payer: String,
    /// Scrip held from the caller for the owner (0: none).
    pub price: u64,
    /// Fuel held from the payer.
    pub fuel: u64,
    /// Whether the guest placed transfers (persisted holds) during the
    /// call: only then does settling look for them.
    pub guest_holds: bool,
}

impl FastReservation {
    /// The holds, shaped as the transfers they become when posted.
    pub fn holds(&self, invocation: &str) -> Vec<fuelhost_ledger::Transfer> {
        let hold = |kind: TransferKind, from: &str, to: &str, asset: Asset, amount: u64| fuelhost_ledger::Transfer {
            id: format!("{invocation}/{kind}"),
            from: from.to_string(),
            to: to.to_string(),
            asset,
            amount,
            kind,
            memo: String::new(),
        };
        let mut holds = Vec::with_capacity(2);
        if self.price > 0 {
            holds.push(hold(TransferKind::Price, &self.caller, &self.owner, Asset::Scrip, self.price));
        }
        holds.push(hold(TransferKind::Fuel, &self.payer, fuelhost_ledger::CONSUMED_ACCOUNT, Asset::Fuel, self.fuel));
        holds
    }
}

/// What a fast reservation asks for.
pub(super) struct FastRequest<'a> {
    pub invocation: &'a str,
    pub caller: &'a str,
    pub owner: &'a str,
    pub payer: &'a str,
    /// Scrip to hold from the caller for the owner (0: none).
    pub price: u64,
    /// The most fuel to hold from the payer.
    pub fuel_limit: u64,
    /// Whether the host made the id (no settled call can have it).
    pub fresh_id: bool,
}

/// The stored rows a fast reservation reads: the caller's scrip (when it
/// pays a price), the payer's fuel and disk.
#[derive(Debug, Clone, Copy)]
pub(super) struct FastRows {
    pub caller_scrip: Option<Row>,
    pub payer_fuel: Row,
    pub payer_disk: Row,
}

/// What [`Hot::reserve`] did.
pub(super) enum FastAttempt {
    /// Held, or refused for want of budget (or a duplicate id).
    Done(Result<Reserved, LedgerError>),
    /// Something it needs is not known here: ask again with rows read
    /// under the connection lock.
    NeedsDatabase,
}

#[derive(Default)]
struct State {
    /// Held by fast reservations, per account, by asset (`Asset as
    /// usize`). Keyed by account alone so a lookup borrows the name.
    held: HashMap<String, [u64; Asset::ALL.len()]>,
    /// Fast reservations by invocation id.
    reservations: HashMap<String, FastReservation>,
    /// Reservations whose settlement is under way, and whether their
    /// holds were released yet (in the step that posts them); they come
    /// back if the settlement does not commit.
    settling: HashMap<String, (FastReservation, bool)>,
    /// What running calls hold as they go (disk as they write, LLM tokens
    /// as they ask a model), by invocation id and asset: (payer, amount).
    running: HashMap<(String, Asset), (String, u64)>,
    /// Accounts known to exist (accounts are never deleted).
    accounts: HashSet<String>,
    /// Agents that have ever had an allocation, and agents that have ever
    /// been a sponsor grant's beneficiary; `None` until loaded.
    governed: [Option<HashSet<String>>; 2],
    /// The last position handed out; `None` until loaded.
    seq: Option<i64>,
    /// Whether an explicit transfer has an id shaped like a charge's;
    /// `None` until loaded.
    charge_shaped_ids: Option<bool>,
    /// The journal's charges not yet projected.
    journaled: Journaled,
    /// Balance rows as stored.
    stored: StoredRows,
}

/// Charges in the settlement journal, not yet in the tables.
#[derive(Default)]
pub(super) struct Journaled {
    /// Posted amounts moved, per account, by asset (`Asset as usize`).
    posted: HashMap<String, [i64; Asset::ALL.len()]>,
    /// The moves of each journaled settlement, by invocation id.
    moves: HashMap<String, Vec<Move>>,
    /// When the oldest of them was journaled.
    since: Option<std::time::Instant>,
}

/// A balance move: `(debit, credit, asset, amount)`.
pub(super) type Move = (String, String, Asset, u64);

impl Journaled {
    fn apply(&mut self, moves: &[Move], sign: i64) {
        for (debit, credit, asset, amount) in moves {
            let amount = *amount as i64 * sign;
            self.posted.entry(debit.clone()).or_default()[*asset as usize] -= amount;
            self.posted.entry(credit.clone()).or_default()[*asset as usize] += amount;
        }
        for account in moves.iter().flat_map(|(d, c, _, _)| [d, c]) {
            if self.posted.get(account).is_some_and(|p| p.iter().all(|&a| a == 0)) {
                self.posted.remove(account);
            }
        }
    }
}

/// What may govern an agent's calls beyond its balances.
#[derive(Debug, Clone, Copy)]
pub(super) enum Governor {
    /// An allocation of the payer's: its calls take the persisted path,
    /// which enforces quotas.
    Allocation = 0,
    /// A sponsor grant to the caller: only such callers need the grants
    /// looked up.
    SponsorGrant = 1,
}

impl State {
    /// `account`'s `asset` from its stored `row`: posted with the journal's
    /// charges, held with the fast holds.
    fn available(&self, account: &str, asset: Asset, row: Row) -> u64 {
        let posted = row.0 + self.journaled.posted.get(account).map_or(0, |p| p[asset as usize]);
        let held = row.1 + self.held.get(account).map_or(0, |h| h[asset as usize]) as i64;
        (posted - held).max(0) as u64
    }

    /// What a reservation from memory needs and this state does not know
    /// (so the connection must be asked): whether an allocation governs
    /// the payer, whether the parties exist, whether an id the caller chose
    /// is taken, whether an explicit transfer took a charge-shaped id.
    fn needs_database(&self, req: &FastRequest<'_>) -> bool {
        let governed = &self.governed[Governor::Allocation as usize];
        governed.as_ref().is_none_or(|g| g.contains(req.payer))
            || [req.caller, req.owner, req.payer].iter().any(|a| !self.accounts.contains(*a))
            || !req.fresh_id
            || self.charge_shaped_ids != Some(false)
            || [req.caller, req.payer].iter().any(|a| self.stored.is_claimed(a))
    }

    fn hold(&mut self, r: &FastReservation) {
        if r.price > 0 {
            self.held.entry(r.caller.clone()).or_default()[Asset::Scrip as usize] += r.price;
        }
        self.held.entry(r.payer.clone()).or_default()[Asset::Fuel as usize] += r.fuel;
    }

    fn release(&mut self, r: &FastReservation) {
        let mut release = |account: &str, asset: Asset, amount: u64| {
            if let Some(h) = self.held.get_mut(account) {
                h[asset as usize] = h[asset as usize].saturating_sub(amount);
                if h.iter().all(|&a| a == 0) {
                    self.held.remove(account);
                }
            }
        };
        if r.price > 0 {
            release(&r.caller, Asset::Scrip, r.price);
        }
        release(&r.payer, Asset::Fuel, r.fuel);
    }
}

/// See the module docs.
#[derive(Default)]
pub(super) struct Hot(Mutex<State>);

impl Hot {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the journal's charges not yet projected moved of `account`'s
    /// posted `asset`, and what fast reservations hold of it: what a
    /// balance read adds to the stored row.
    pub fn adjustments(&self, account: &str, asset: Asset) -> (i64, u64) {
        let state = self.lock();
        let posted = state.journaled.posted.get(account).map_or(0, |p| p[asset as usize]);
        (posted, state.held.get(account).map_or(0, |h| h[asset as usize]))
    }

    /// The stored row of `account`'s `asset`, if it is kept (see
    /// `stored_rows`).
    pub fn stored(&self, account: &str, asset: Asset) -> Option<Row> {
        self.lock().stored.get(account, asset)
    }

    /// Keep `row`, just read from the table (see `stored_rows`).
    pub fn keep_stored(&self, account: &str, asset: Asset, row: Row) {
        self.lock().stored.keep(account, asset, row);
    }

    /// The open transaction may write `account`'s rows: claim it (see
    /// `stored_rows`), returning the kept row of `asset` if there was one.
    pub fn claim(&self, account: &str, asset: Asset) -> Option<Row> {
        let mut state = self.lock();
        let kept = state.stored.get(account, asset);
        state.stored.claim(account);
        kept
    }

    /// The transaction open on the connection committed or rolled back.
    pub fn transaction_ended(&self) {
        self.lock().stored.transaction_ended();
    }

    /// Check and hold a fast reservation in one step. Without `rows`, from
    /// what is kept here, taking no other lock: [`FastAttempt::NeedsDatabase`]
    /// when something is not known (see `State::needs_database`). With
    /// `rows`, read (and kept, `rows::stored_row`) under the connection
    /// lock by a caller that made those checks itself.
    pub fn reserve(&self, req: &FastRequest<'_>, rows: Option<FastRows>) -> FastAttempt {
        let mut state = self.lock();
        let rows = match rows {
            Some(rows) => rows,
            None => {
                if state.needs_database(req) {
                    return FastAttempt::NeedsDatabase;
                }
                let kept = |account, asset| state.stored.get(account, asset);
                let caller_scrip = if req.price > 0 { kept(req.caller, Asset::Scrip) } else { Some((0, 0)) };
                match (caller_scrip, kept(req.payer, Asset::Fuel), kept(req.payer, Asset::DiskBytes)) {
                    (Some(caller_scrip), Some(payer_fuel), Some(payer_disk)) => {
                        FastRows { caller_scrip: Some(caller_scrip), payer_fuel, payer_disk }
                    }
                    _ => return FastAttempt::NeedsDatabase,
                }
            }
        };
        if state.reservations.contains_key(req.invocation) || state.settling.contains_key(req.invocation) {
            return FastAttempt::Done(Err(LedgerError::DuplicateInvocation(req.invocation.to_string())));
        }
        if req.price > 0 {
            let available = state.available(req.caller, Asset::Scrip, rows.caller_scrip.unwrap_or((0, 0)));
            if available < req.price {
                return FastAttempt::Done(Err(LedgerError::Insufficient {
                    account: req.caller.to_string(),
                    asset: Asset::Scrip,
                    available,
                    needed: req.price,
                }));
            }
        }
        let fuel = req.fuel_limit.min(state.available(req.payer, Asset::Fuel, rows.payer_fuel));
        if fuel == 0 {
            return FastAttempt::Done(Err(LedgerError::Insufficient {
                account: req.payer.to_string(),
                asset: Asset::Fuel,
                available: 0,
                needed: req.fuel_limit.max(1),
            }));
        }
        let disk_bytes = state.available(req.payer, Asset::DiskBytes, rows.payer_disk);
        let r = FastReservation {
            caller: req.caller.to_string(),
            owner: req.owner.to_string(),
            payer: req.payer.to_string(),
            price: req.price,
            fuel,
            guest_holds: false,
        };
        state.hold(&r);
        state.reservations.insert(req.invocation.to_string(), r);
        FastAttempt::Done(Ok(Reserved { fuel, disk_bytes, memory_bytes: None, allocation: None }))
    }

    /// The settlement of `invocation` was journaled with `moves`: balance
    /// reads include them until they are projected (or the settlement
    /// does not commit, [`Hot::unjournal`]).
    /// Its fast holds, if it has any, are released in the same step: a
    /// journaled move spends at most what its call held.
    pub fn journal(&self, invocation: &str, moves: Vec<Move>) {
        let mut state = self.lock();
        let state = &mut *state;
        state.journaled.apply(&moves, 1);
        state.journaled.moves.insert(invocation.to_string(), moves);
        state.journaled.since.get_or_insert_with(std::time::Instant::now);
        if let Some((r, released)) = state.settling.get_mut(invocation) {
            if !std::mem::replace(released, true) {
                let r = r.clone();
                state.release(&r);
            }
        }
    }

    /// The journaled settlement of `invocation` did not commit: forget
    /// its moves. Returns whether it was journaled.
    pub fn unjournal(&self, invocation: &str) -> bool {
        let mut state = self.lock();
        let journaled = &mut state.journaled;
        let Some(moves) = journaled.moves.remove(invocation) else { return false };
        journaled.apply(&moves, -1);
        if journaled.moves.is_empty() {
            journaled.since = None;
        }
        true
    }

    /// Whether `invocation` settled into the journal, not yet projected.
    pub fn is_journaled(&self, invocation: &str) -> bool {
        self.lock().journaled.moves.contains_key(invocation)
    }

    /// How many journaled settlements wait, and since when.
    pub fn journal_waiting(&self) -> (usize, Option<std::time::Instant>) {
        let state = self.lock();
        (state.journaled.moves.len(), state.journaled.since)
    }

    /// Take every journaled charge: the projection, under the connection
    /// lock, is moving them into the tables. Put back with
    /// [`Hot::restore_journal`] if its transaction does not commit.
    pub fn take_journal(&self) -> Journaled {
        let mut state = self.lock();
        let taken = std::mem::take(&mut state.journaled);
        state.stored.shift(&taken.posted, 1);
        taken
    }

    /// A projection did not commit: its charges are journaled again.
    pub fn restore_journal(&self, taken: Journaled) {
        let mut state = self.lock();
        state.stored.shift(&taken.posted, -1);
        let journaled = &mut state.journaled;
        for (invocation, moves) in taken.moves {
            journaled.apply(&moves, 1);
            journaled.moves.insert(invocation, moves);
        }
        journaled.since = match (journaled.since, taken.since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Whether `invocation`'s settlement of `caller`'s call of `owner`'s
    /// artifact charged to `payer` can be journaled: it has a fast
    /// reservation of those parties, and its guest placed no persisted
    /// holds.
    pub fn journalable(&self, invocation: &str, caller: &str, owner: &str, payer: &str) -> bool {
        self.lock()
            .reservations
            .get(invocation)
            .is_some_and(|r| !r.guest_holds && r.caller == caller && r.owner == owner && r.payer == payer)
    }

    /// Hold `amount` more of `payer`'s `asset` (disk, LLM tokens) for the
    /// running `invocation` (the caller checked the balance under the
    /// connection lock).
    pub fn hold_running(&self, invocation: &str, payer: &str, asset: Asset, amount: u64) {
        let mut state = self.lock();
        state.held.entry(payer.to_string()).or_default()[asset as usize] += amount;
        let held = state.running.entry((invocation.to_string(), asset)).or_insert_with(|| (payer.to_string(), 0));
        held.1 += amount;
    }

    /// Release up to `amount` of what the running `invocation` holds of
    /// `asset` (all of it for `u64::MAX`); returns how much.
    pub fn release_running(&self, invocation: &str, asset: Asset, amount: u64) -> u64 {
        let mut state = self.lock();
        let key = (invocation.to_string(), asset);
        let Some((payer, held)) = state.running.get_mut(&key) else { return 0 };
        let released = amount.min(*held);
        *held -= released;
        let payer = payer.clone();
        if *held == 0 {
            state.running.remove(&key);
        }
        if let Some(h) = state.held.get_mut(&payer) {
            h[asset as usize] = h[asset as usize].saturating_sub(released);
            if h.iter().all(|&a| a == 0) {
                state.held.remove(&payer);
            }
        }
        released
    }

    /// Whether `invocation` has a fast reservation (or one settling).
    pub fn has(&self, invocation: &str) -> bool {
        let state = self.lock();
        state.reservations.contains_key(invocation) || state.settling.contains_key(invocation)
    }

    /// Start settling `invocation`: return its reservation, whose holds
    /// stay until the settlement posts them ([`Hot::journal`],
    /// [`Hot::release_for_posting`]). Until [`Hot::settled`] or
    /// [`Hot::unsettle`], the id stays taken.
    pub fn take(&self, invocation: &str) -> Option<FastReservation> {
        let mut state = self.lock();
        let r = state.reservations.remove(invocation)?;
        state.settling.insert(invocation.to_string(), (r.clone(), false));
        Some(r)
    }

    /// The settlement of `invocation` is about to post its holds through
    /// the tables: release them, and claim the accounts they hold from (in
    /// the same step), so that no reservation from memory counts the
    /// released amounts before the posting is in.
    pub fn release_for_posting(&self, invocation: &str) {
        let mut state = self.lock();
        let state = &mut *state;
        let Some((r, released)) = state.settling.get_mut(invocation) else { return };
        if !std::mem::replace(released, true) {
            state.stored.claim(&r.caller);
            state.stored.claim(&r.payer);
            let r = r.clone();
            state.release(&r);
        }
    }

    /// The settlement of `invocation` committed: forget its reservation.
    pub fn settled(&self, invocation: &str) {
        let mut state = self.lock();
        if let Some((r, false)) = state.settling.remove(invocation) {
            // Committed without posting through here: nothing to keep.
            state.release(&r);
        }
    }

    /// The settlement of `invocation` did not commit: its reservation and
    /// holds are back, as before [`Hot::take`]. Called before its journaled
    /// moves are taken out ([`Hot::unjournal`]), so its balances read low,
    /// never high, in between.
    pub fn unsettle(&self, invocation: &str) {
        let mut state = self.lock();
        if let Some((r, released)) = state.settling.remove(invocation) {
            if released {
                state.hold(&r);
            }
            state.reservations.insert(invocation.to_string(), r);
        }
    }

    /// Note that `invocation`'s guest placed a persisted hold.
    pub fn note_guest_hold(&self, invocation: &str) {
        if let Some(r) = self.lock().reservations.get_mut(invocation) {
            r.guest_holds = true;
        }
    }

    /// How many holds fast reservations and running calls (disk, LLM
    /// tokens) have open.
    pub fn open_holds(&self) -> u64 {
        let state = self.lock();
        state.reservations.values().map(|r| 1 + u64::from(r.price > 0)).sum::<u64>() + state.running.len() as u64
    }

    /// Whether `account` is known to exist.
    pub fn knows_account(&self, account: &str) -> bool {
        self.lock().accounts.contains(account)
    }

    /// Remember that `account` exists.
    pub fn note_account(&self, account: &str) {
        self.lock().accounts.insert(account.to_string());
    }

    /// Whether a `governor` ever applied to `agent`; `load` lists the
    /// agents it applied to the first time.
    pub fn governed<E>(
        &self,
        governor: Governor,
        agent: &str,
        load: impl FnOnce() -> Result<HashSet<String>, E>,
    ) -> Result<bool, E> {
        let mut state = self.lock();
        let set = &mut state.governed[governor as usize];
        if set.is_none() {
            *set = Some(load()?);
        }
        Ok(set.as_ref().is_some_and(|s| s.contains(agent)))
    }

    /// The next position in the ledger's order (`load` reads the last one
    /// the first time). A position taken by a transaction that rolls back
    /// is skipped, never reused.
    pub fn next_seq<E>(&self, load: impl FnOnce() -> Result<i64, E>) -> Result<i64, E> {
        let mut state = self.lock();
        let last = match state.seq {
            Some(last) => last,
            None => load()?,
        };
        state.seq = Some(last + 1);
        Ok(last + 1)
    }

    /// Whether an explicit transfer may have an id shaped like a charge's
    /// (`load` looks the first time).
    pub fn charge_shaped_ids<E>(&self, load: impl FnOnce() -> Result<bool, E>) -> Result<bool, E> {
        let mut state = self.lock();
        if state.charge_shaped_ids.is_none() {
            state.charge_shaped_ids = Some(load()?);
        }
        Ok(state.charge_shaped_ids == Some(true))
    }

    /// Note an explicit transfer with an id shaped like a charge's (kept
    /// even if its transaction rolls back: that only costs lookups).
    pub fn note_charge_shaped_id(&self) {
        self.lock().charge_shaped_ids = Some(true);
    }

    /// [`Hot::governed`] without loading: `None` until loaded.
    pub fn governed_if_known(&self, governor: Governor, agent: &str) -> Option<bool> {
        self.lock().governed[governor as usize].as_ref().map(|s| s.contains(agent))
    }

    /// Remember that a `governor` applies to `agent` (kept even if the
    /// transaction that made it rolls back: that only costs a lookup).
    pub fn note_governed(&self, governor: Governor, agent: &str) {
        if let Some(s) = self.lock().governed[governor as usize].as_mut() {
            s.insert(agent.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moves(price: u64, fuel: u64) -> Vec<Move> {
        let mut m = vec![("caller".to_string(), "owner".to_string(), Asset::Scrip, price)];
        if fuel > 0 {
            m.push(("caller".to_string(), "@consumed".to_string(), Asset::Fuel, fuel));
        }
        m
    }

    #[test]
    fn journaled_moves_are_read_until_projected_and_come_back_if_the_projection_does_not_commit() {
        let hot = Hot::default();
        hot.journal("a", moves(3, 7));
        hot.journal("b", moves(3, 0));
        assert_eq!(hot.adjustments("caller", Asset::Scrip).0, -6);
        assert_eq!(hot.adjustments("owner", Asset::Scrip).0, 6);
        assert_eq!(hot.adjustments("@consumed", Asset::Fuel).0, 7);
        assert_eq!(hot.journal_waiting().0, 2);
        // A projection takes them all; reads see the stored rows alone.
        let taken = hot.take_journal();
        assert_eq!(hot.adjustments("caller", Asset::Scrip).0, 0);
        assert!(!hot.is_journaled("a"));
        assert_eq!(hot.journal_waiting(), (0, None));
        // It did not commit: they are back, exactly.
        hot.restore_journal(taken);
        assert_eq!(hot.adjustments("caller", Asset::Fuel).0, -7);
        assert_eq!(hot.adjustments("owner", Asset::Scrip).0, 6);
        assert!(hot.is_journaled("a") && hot.is_journaled("b"));
        // A settlement that did not commit forgets its own moves only.
        assert!(hot.unjournal("b"));
        assert!(!hot.unjournal("b"));
        assert_eq!(hot.adjustments("owner", Asset::Scrip).0, 3);
        assert_eq!(hot.journal_waiting().0, 1);
        assert!(hot.unjournal("a"));
        assert_eq!(hot.adjustments("caller", Asset::Scrip).0, 0);
        assert_eq!(hot.journal_waiting(), (0, None));
    }
}
