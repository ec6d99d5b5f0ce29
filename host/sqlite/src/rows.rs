//! The ledger's tables, row by row: accounts, balances (held and
//! posted), transfers, holds and sponsor grants; amounts checked against
//! SQLite's 64-bit integers. Every function runs inside a transaction its
//! caller opened.

use rusqlite::{params, Connection, OptionalExtension};

use crate::database::{exec, now_ms, one};
use crate::hot::Hot;
use crate::journal;
use crate::storage;
use fuelhost_ledger::{may_overdraw, AgentId, TransferKind, TransferPhase};
use fuelhost_ledger::{Asset, LedgerError, SponsorGrant, SponsorGrantStatus, Transfer};

/// Amounts are u64 in the API and i64 in SQLite: anything above i64::MAX is
/// refused rather than wrapped.
pub(crate) fn to_db(amount: u64, what: &str) -> Result<i64, LedgerError> {
    i64::try_from(amount).map_err(|_| LedgerError::Overflow(format!("{what} {amount} exceeds {}", i64::MAX)))
}

pub(crate) fn account_exists(tx: &Connection, account: &str) -> Result<bool, LedgerError> {
    Ok(one(tx, "SELECT 1 FROM accounts WHERE id = ?1", [account], |_| Ok(())).optional().map_err(storage)?.is_some())
}

pub(crate) fn require_account(tx: &Connection, account: &str) -> Result<(), LedgerError> {
    if account_exists(tx, account)? {
        Ok(())
    } else {
        Err(LedgerError::UnknownAccount(account.to_string()))
    }
}

/// (posted, held) of one asset of one account as the table stores it;
/// zero if never touched. Served from the rows `hot` keeps when it has
/// it, kept there when read (unless the account is claimed).
pub(crate) fn stored_row(tx: &Connection, hot: &Hot, account: &str, asset: Asset) -> Result<(i64, i64), LedgerError> {
    if let Some(row) = hot.stored(account, asset) {
        return Ok(row);
    }
    let row = select_row(tx, account, asset)?;
    hot.keep_stored(account, asset, row);
    Ok(row)
}

fn select_row(tx: &Connection, account: &str, asset: Asset) -> Result<(i64, i64), LedgerError> {
    Ok(one(
        tx,
        "SELECT posted, held FROM balances WHERE account = ?1 AND asset = ?2",
        params![account, asset.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(storage)?
    .unwrap_or((0, 0)))
}

/// (posted, held) of one asset of one account, for a check that writes
/// nothing: held amounts include what fast reservations hold in memory,
/// posted amounts what journaled settlements moved (see `hot`).
pub(crate) fn balance_peek(tx: &Connection, hot: &Hot, account: &str, asset: Asset) -> Result<(i64, i64), LedgerError> {
    let row = stored_row(tx, hot, account, asset)?;
    let (journaled, held) = hot.adjustments(account, asset);
    Ok((row.0 + journaled, row.1 + held as i64))
}

/// [`balance_peek`] for a balance this transaction may then write (with
/// [`write_balance`]): the account is claimed first (see `stored_rows`),
/// so no reservation from memory changes it until the transaction ends.
pub(crate) fn balance_row(tx: &Connection, hot: &Hot, account: &str, asset: Asset) -> Result<(i64, i64), LedgerError> {
    let row = match hot.claim(account, asset) {
        Some(row) => row,
        None => select_row(tx, account, asset)?,
    };
    let (journaled, held) = hot.adjustments(account, asset);
    Ok((row.0 + journaled, row.1 + held as i64))
}

/// Store a balance read by [`balance_row`] and changed: the fast holds and
/// journaled charges it included stay in memory.
pub(crate) fn write_balance(
    tx: &Connection,
    hot: &Hot,
    account: &str,
    asset: Asset,
    posted: i64,
    held: i64,
) -> Result<(), LedgerError> {
    hot.claim(account, asset);
    let (journaled, fast_held) = hot.adjustments(account, asset);
    let (posted, held) = (posted - journaled, held - fast_held as i64);
    exec(
        tx,
        "INSERT INTO balances (account, asset, posted, held) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account, asset) DO UPDATE SET posted = excluded.posted, held = excluded.held",
        params![account, asset.as_str(), posted, held],
    )
    .map_err(storage)?;
    Ok(())
}

pub(crate) fn available(posted: i64, held: i64) -> u64 {
    (posted - held).max(0) as u64
}

/// Post a transfer: debit, credit, record. Agents may not go below their
/// held amount; system accounts may go negative.
#[allow(clippy::too_many_arguments)]
pub(crate) fn post(
    tx: &Connection,
    hot: &Hot,
    id: &str,
    debit: &str,
    credit: &str,
    asset: Asset,
    amount: u64,
    kind: TransferKind,
    memo: &str,
    invocation: Option<&str>,
) -> Result<Transfer, LedgerError> {
    // An explicit transfer may not take the id of a call's charge: one
    // recorded by a usage record, or one a running call will record.
    if let (None, Some((call, _))) = (invocation, journal::charge_id(id)) {
        if hot.has(call) || journal::charge(tx, id)?.is_some() {
            return Err(LedgerError::IdConflict(id.to_string()));
        }
        journal::remember_charge_shaped(tx, true)?;
        hot.note_charge_shaped_id();
    }
    // Nor that of a call's LLM charge, which its settlement posts as a
    // transfer of its own.
    if invocation.is_none() && id.ends_with("/llm") {
        return Err(LedgerError::Invalid(format!(
            "transfer id `{id}`: ids ending in `/llm` are kept for the LLM tokens of calls; choose another id"
        )));
    }
    move_balances(tx, hot, debit, credit, asset, amount)?;
    let seq = hot.next_seq(|| journal::last_seq(tx))?;
    exec(
        tx,
        "INSERT INTO transfers (seq, id, debit, credit, asset, amount, kind, memo, invocation, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![seq, id, debit, credit, asset.as_str(), amount as i64, kind.as_str(), memo, invocation, now_ms()],
    )
    .map_err(storage)?;
    Ok(Transfer {
        id: id.to_string(),
        from: debit.to_string(),
        to: credit.to_string(),
        asset,
        amount,
        kind,
        memo: memo.to_string(),
    })
}

/// The balances half of a posting: debit `debit`, credit `credit`. A
/// transfer's record is then its `transfers` row, a call's charge its
/// usage record (see `journal`).
pub(crate) fn move_balances(
    tx: &Connection,
    hot: &Hot,
    debit: &str,
    credit: &str,
    asset: Asset,
    amount: u64,
) -> Result<(), LedgerError> {
    if amount == 0 {
        return Err(LedgerError::Invalid("amount must be above zero".into()));
    }
    if debit == credit {
        return Err(LedgerError::Invalid(format!("`{debit}` cannot transfer to itself")));
    }
    let amt = to_db(amount, "amount")?;
    let (dp, dh) = balance_row(tx, hot, debit, asset)?;
    if !may_overdraw(debit) && available(dp, dh) < amount {
        return Err(LedgerError::Insufficient {
            account: debit.to_string(),
            asset,
            available: available(dp, dh),
            needed: amount,
        });
    }
    // Only a system account goes negative, and no balance (so no total in
    // circulation) may pass the 64-bit signed range.
    let past =
        |whose: String| LedgerError::Conflict(format!("{whose} {asset} would pass {} with {amount} more", i64::MAX));
    let new_debit = dp.checked_sub(amt).ok_or_else(|| past(format!("the {asset} `{debit}` has given out in all")))?;
    let (cp, ch) = balance_row(tx, hot, credit, asset)?;
    let new_credit = cp.checked_add(amt).ok_or_else(|| past(format!("`{credit}`'s")))?;
    write_balance(tx, hot, debit, asset, new_debit, dh)?;
    write_balance(tx, hot, credit, asset, new_credit, ch)
}

/// A kind as stored; an unknown name (a newer host's) is an error, never
/// a guess.
pub(crate) fn stored_kind(name: &str) -> rusqlite::Result<TransferKind> {
    TransferKind::parse(name).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            5,
            rusqlite::types::Type::Text,
            format!("unknown transfer kind `{name}` (written by a newer fuelhost?)").into(),
        )
    })
}

/// A transfer (or a hold, which has the same shape) from the columns
/// `id, debit, credit, asset, amount, kind, memo`.
pub(crate) fn transfer_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Transfer> {
    Ok(Transfer {
        id: r.get(0)?,
        from: r.get(1)?,
        to: r.get(2)?,
        asset: Asset::parse(&r.get::<_, String>(3)?).unwrap_or(Asset::Scrip),
        amount: r.get::<_, i64>(4)? as u64,
        kind: stored_kind(&r.get::<_, String>(5)?)?,
        memo: r.get(6)?,
    })
}

/// The transfer with `id`: a `transfers` row, or a charge recorded by its
/// usage record.
pub(crate) fn existing_transfer(tx: &Connection, id: &str) -> Result<Option<Transfer>, LedgerError> {
    let row = one(
        tx,
        "SELECT id, debit, credit, asset, amount, kind, memo FROM transfers WHERE id = ?1",
        [id],
        transfer_from_row,
    )
    .optional()
    .map_err(storage)?;
    match row {
        Some(t) => Ok(Some(t)),
        None => journal::charge(tx, id),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn place_hold(
    tx: &Connection,
    hot: &Hot,
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
    let (p, h) = balance_row(tx, hot, debit, asset)?;
    if available(p, h) < amount {
        return Err(LedgerError::Insufficient {
            account: debit.to_string(),
            asset,
            available: available(p, h),
            needed: amount,
        });
    }
    let inserted = exec(
        tx,
        "INSERT OR IGNORE INTO holds (id, invocation, debit, credit, asset, amount, kind, memo, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            id,
            invocation,
            debit,
            credit,
            asset.as_str(),
            amt,
            kind.as_str(),
            memo,
            TransferPhase::Pending.as_str()
        ],
    )
    .map_err(storage)?;
    if inserted == 0 {
        return Err(LedgerError::DuplicateInvocation(invocation.to_string()));
    }
    write_balance(tx, hot, debit, asset, p, h + amt)
}

/// A pending hold has the shape of the transfer it may become: `from` is
/// debited (its `held` grows), `to` is credited when it is posted.
pub(crate) type Hold = Transfer;

/// Close a pending hold: release it, then post `post_amount` of it (zero
/// voids it).
pub(crate) fn resolve_hold(
    tx: &Connection,
    hot: &Hot,
    hold: &Hold,
    invocation: &str,
    post_amount: u64,
) -> Result<(), LedgerError> {
    let (p, h) = balance_row(tx, hot, &hold.from, hold.asset)?;
    write_balance(tx, hot, &hold.from, hold.asset, p, h - hold.amount as i64)?;
    let post_amount = post_amount.min(hold.amount);
    if post_amount > 0 {
        post(
            tx,
            hot,
            &hold.id,
            &hold.from,
            &hold.to,
            hold.asset,
            post_amount,
            hold.kind,
            &hold.memo,
            Some(invocation),
        )?;
    }
    exec(
        tx,
        "UPDATE holds SET state = ?2, posted_amount = ?3 WHERE id = ?1",
        params![hold.id, TransferPhase::settled(post_amount).as_str(), post_amount as i64],
    )
    .map_err(storage)?;
    Ok(())
}

pub(crate) fn read_grant(tx: &rusqlite::Connection, id: &str) -> Result<Option<SponsorGrantStatus>, LedgerError> {
    one(
        tx,
        "SELECT sponsor, beneficiary, fuel_limit, fuel_spent, disk_limit, disk_spent, expires_ms, artifacts, revoked
             FROM sponsor_grants WHERE id = ?1",
        [id],
        |r| {
            let artifacts: String = r.get(7)?;
            Ok(SponsorGrantStatus {
                grant: SponsorGrant {
                    id: id.to_string(),
                    sponsor: AgentId::trusted(r.get(0)?),
                    beneficiary: AgentId::trusted(r.get(1)?),
                    fuel_limit: r.get::<_, i64>(2)? as u64,
                    disk_limit: r.get::<_, i64>(4)? as u64,
                    expires_at_ms: r.get(6)?,
                    artifacts: serde_json::from_str(&artifacts).unwrap_or_default(),
                },
                fuel_spent: r.get::<_, i64>(3)? as u64,
                disk_spent: r.get::<_, i64>(5)? as u64,
                revoked: r.get::<_, i64>(8)? != 0,
            })
        },
    )
    .optional()
    .map_err(storage)
}
