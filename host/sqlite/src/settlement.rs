//! Settling a call: every hold of the invocation posted (what was used)
//! or released, disk growth charged, the usage record written, in one
//! transaction; the in-memory path and the persisted path alike. A
//! fast-path call whose guest placed no holds is journaled instead: its
//! record goes to the settlement journal and its balance moves stay in
//! memory until projected (see `projection`).

use rusqlite::{params, Connection, OptionalExtension};

use crate::allocation::{self as alloc};
use crate::database::{exec, now_ms, one};
use crate::hot::Move;
use crate::hot::{FastReservation, Hot};
use crate::journal;
use crate::projection::record_columns;
use crate::rows::{
    available, balance_peek, move_balances, post, read_grant, resolve_hold, to_db, transfer_from_row, Hold,
};
use crate::storage;
use crate::usage::usage_exists;
use fuelhost_ledger::TransferKind;
use fuelhost_ledger::{Asset, LedgerError, Outcome, ResourcesConsumed, Settlement, UsageRecord, CONSUMED_ACCOUNT};

/// Settle one invocation inside the caller's transaction: post or release
/// every hold, charge disk, update its sponsor grant and allocation, write
/// the usage record.
///
/// A fast reservation is taken from memory here (its holds released as
/// they are posted); if this settlement fails it is put back at once, and the caller puts it back if the transaction
/// does not commit ([`SqliteLedger::settled`]).
pub(crate) fn settle_in(tx: &Connection, hot: &Hot, s: &Settlement, now: i64) -> Result<UsageRecord, LedgerError> {
    // A fast reservation's holds are released here and posted below like
    // persisted ones; they come first, as they were placed first.
    let fast = hot.take(&s.invocation_id);
    // The disk the run held as it wrote is released first: what it grew
    // is charged below, against the balance without the hold. (A
    // settlement that then fails keeps the bytes uncharged and unheld: a
    // storage failure, reported as such.)
    hot.release_running(&s.invocation_id, Asset::DiskBytes, u64::MAX);
    hot.release_running(&s.invocation_id, Asset::LlmTokens, u64::MAX);
    // A journaled record has no key to refuse a second one, and a fresh
    // id is not looked up when reserving: a settled id is looked for
    // here, in the journal and in the records.
    if hot.is_journaled(&s.invocation_id) || usage_exists(tx, &s.invocation_id)? {
        if fast.is_some() {
            hot.unsettle(&s.invocation_id);
        }
        return Err(LedgerError::DuplicateInvocation(s.invocation_id.clone()));
    }
    let result = settle_with(tx, hot, s, now, fast.as_ref());
    if result.is_err() && fast.is_some() {
        hot.unsettle(&s.invocation_id);
    }
    result
}

pub(crate) fn settle_with(
    tx: &Connection,
    hot: &Hot,
    s: &Settlement,
    now: i64,
    fast: Option<&FastReservation>,
) -> Result<UsageRecord, LedgerError> {
    // A fast call's charges are recorded by its usage record (`journal`)
    // when they are the ones that record describes. (Their ids were
    // checked free when reserving, and `post` refuses them to explicit
    // transfers while the call runs.) The record takes its position first,
    // so its charges list before the guest's transfers.
    let in_record = fast
        .is_some_and(|f| f.caller == s.caller.as_str() && f.owner == s.owner.as_str() && f.payer == s.payer.as_str());
    // Journaled: nothing but the fast holds to post (the guest placed
    // none), so the record and its moves are the whole settlement.
    // (Nor LLM tokens: their charge is a transfer of its own.)
    let mut journaled: Option<Vec<Move>> =
        (in_record && s.consumed.llm_tokens == 0 && fast.is_some_and(|f| !f.guest_holds)).then(Vec::new);
    let seq = hot.next_seq(|| journal::last_seq(tx))?;
    if journaled.is_none() && fast.is_some() {
        // Posted through the tables: the holds go as the accounts are
        // claimed. (A journaled settlement releases them as it journals.)
        hot.release_for_posting(&s.invocation_id);
    }
    let holds = holds_of(tx, s, fast)?;
    let (price_paid, fuel_charged) = post_holds(tx, hot, s, &holds, in_record, &mut journaled)?;
    let (grant, allocation) = governing(tx, s, fast)?;
    let fuel_held: u64 = holds.iter().filter(|(h, _)| h.kind == TransferKind::Fuel).map(|(h, _)| h.amount).sum();
    let disk_charged = disk_to_charge(tx, hot, s, grant.as_deref())?;
    if let Some(id) = &grant {
        exec(
            tx,
            "UPDATE sponsor_grants SET fuel_held = fuel_held - ?2, fuel_spent = fuel_spent + ?3,
                    disk_spent = disk_spent + ?4 WHERE id = ?1",
            params![id, fuel_held as i64, fuel_charged as i64, disk_charged as i64],
        )
        .map_err(storage)?;
    }
    charge_disk(tx, hot, s, disk_charged, in_record, &mut journaled)?;
    let llm_charged = charge_llm_tokens(tx, hot, s)?;
    if let Some(id) = &allocation {
        let served = s.outcome != Outcome::Aborted;
        let cost = s.cost_model.cost_usd_micros(fuel_charged, disk_charged);
        let usage = alloc::CallUsage {
            fuel_held,
            fuel: fuel_charged,
            disk_bytes: disk_charged,
            cost_usd_micros: cost,
            llm_tokens: llm_charged,
        };
        alloc::settle_call(tx, id, usage, served, now)?;
    }
    if fast.is_none() {
        exec(tx, "UPDATE reservations SET settled = 1 WHERE invocation_id = ?1", [&s.invocation_id])
            .map_err(storage)?;
    }
    let consumed = ResourcesConsumed {
        fuel: fuel_charged,
        disk_bytes: disk_charged,
        llm_tokens: llm_charged,
        cpu_time_ns: s.cost_model.cpu_time_ns(fuel_charged),
        ..s.consumed
    };
    let record = write_record(tx, s, consumed, price_paid, seq, in_record, journaled.is_some())?;
    if let Some(moves) = journaled {
        hot.journal(&s.invocation_id, moves);
    }
    Ok(record)
}

/// Move `amount` of `asset` from `debit` to `credit`: in the balances, or,
/// for a journaled settlement (`journaled` is `Some`), kept among its
/// moves. A journaled move posts at most what its call held from `debit`
/// (or, for disk, what `debit` had available), so only the credit is
/// checked: that it stays in SQLite's range.
fn move_or_journal(
    tx: &Connection,
    hot: &Hot,
    (debit, credit, asset, amount): (&str, &str, Asset, u64),
    journaled: &mut Option<Vec<Move>>,
) -> Result<(), LedgerError> {
    match journaled {
        Some(moves) => {
            let (posted, _) = balance_peek(tx, hot, credit, asset)?;
            if posted.checked_add(to_db(amount, "amount")?).is_none() {
                return Err(LedgerError::Conflict(format!(
                    "`{credit}`'s {asset} would pass {} with {amount} more",
                    i64::MAX
                )));
            }
            moves.push((debit.to_string(), credit.to_string(), asset, amount));
            Ok(())
        }
        None => move_balances(tx, hot, debit, credit, asset, amount),
    }
}

/// The invocation's holds, each with whether it lives in memory (a fast
/// reservation's) rather than in the `holds` table. None holding fuel: it
/// never reserved.
fn holds_of(tx: &Connection, s: &Settlement, fast: Option<&FastReservation>) -> Result<Vec<(Hold, bool)>, LedgerError> {
    let mut holds: Vec<(Hold, bool)> =
        fast.map(|f| f.holds(&s.invocation_id)).unwrap_or_default().into_iter().map(|h| (h, true)).collect();
    if fast.is_none_or(|f| f.guest_holds) {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id, debit, credit, asset, amount, kind, memo FROM holds
                 WHERE invocation = ?1 AND state = 'pending' ORDER BY rowid",
            )
            .map_err(storage)?;
        let rows = stmt.query_map([&s.invocation_id], transfer_from_row).map_err(storage)?;
        for row in rows {
            holds.push((row.map_err(storage)?, false));
        }
    }
    if !holds.iter().any(|(h, _)| h.kind == TransferKind::Fuel) {
        return Err(LedgerError::NoReservation(s.invocation_id.clone()));
    }
    Ok(holds)
}

/// Post what each hold's kind says it posts (the rest is released);
/// returns the price paid and the fuel charged.
fn post_holds(
    tx: &Connection,
    hot: &Hot,
    s: &Settlement,
    holds: &[(Hold, bool)],
    in_record: bool,
    journaled: &mut Option<Vec<Move>>,
) -> Result<(u64, u64), LedgerError> {
    let success = s.outcome == Outcome::Success;
    let (mut price_paid, mut fuel_charged) = (0, 0);
    for (hold, in_memory) in holds {
        let post_amount = hold.kind.settled_amount(hold.amount, success, s.consumed.fuel);
        match hold.kind {
            TransferKind::Price => price_paid = post_amount,
            TransferKind::Fuel => fuel_charged = post_amount,
            _ => {}
        }
        if !in_memory {
            resolve_hold(tx, hot, hold, &s.invocation_id, post_amount)?;
        } else if post_amount > 0 && in_record {
            move_or_journal(tx, hot, (&hold.from, &hold.to, hold.asset, post_amount), journaled)?;
        } else if post_amount > 0 {
            let inv = Some(s.invocation_id.as_str());
            post(tx, hot, &hold.id, &hold.from, &hold.to, hold.asset, post_amount, hold.kind, &hold.memo, inv)?;
        }
    }
    Ok((price_paid, fuel_charged))
}

/// The sponsor grant and the allocation a persisted reservation drew on
/// (a fast one draws on neither).
fn governing(
    tx: &Connection,
    s: &Settlement,
    fast: Option<&FastReservation>,
) -> Result<(Option<String>, Option<String>), LedgerError> {
    if fast.is_some() {
        return Ok((None, None));
    }
    Ok(one(
        tx,
        "SELECT sponsor_grant, allocation FROM reservations WHERE invocation_id = ?1",
        [&s.invocation_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(storage)?
    .unwrap_or((None, None)))
}

/// The disk growth to charge: what the run grew, within what the payer
/// (and the sponsor grant paying, if any) has left.
fn disk_to_charge(tx: &Connection, hot: &Hot, s: &Settlement, grant: Option<&str>) -> Result<u64, LedgerError> {
    if s.consumed.disk_bytes == 0 {
        return Ok(0);
    }
    // A check only: a journaled disk charge is a move in memory, and
    // disk is held and charged under the connection lock alone.
    let (dp, dh) = balance_peek(tx, hot, s.payer.as_str(), Asset::DiskBytes)?;
    let mut disk_cap = available(dp, dh);
    if let Some(g) = grant.map(|id| read_grant(tx, id)).transpose()?.flatten() {
        disk_cap = disk_cap.min(g.grant.disk_limit.saturating_sub(g.disk_spent));
    }
    Ok(s.consumed.disk_bytes.min(disk_cap))
}

/// Charge `disk` bytes to the payer: in the usage record's charges, or as
/// a transfer of its own (`<invocation>/disk`).
fn charge_disk(
    tx: &Connection,
    hot: &Hot,
    s: &Settlement,
    disk: u64,
    in_record: bool,
    journaled: &mut Option<Vec<Move>>,
) -> Result<(), LedgerError> {
    if disk > 0 && in_record {
        move_or_journal(tx, hot, (s.payer.as_str(), CONSUMED_ACCOUNT, Asset::DiskBytes, disk), journaled)?;
    } else if disk > 0 {
        post_consumed(tx, hot, s, TransferKind::Disk, Asset::DiskBytes, disk)?;
    }
    Ok(())
}

/// Post `amount` of `asset` from the payer to `@consumed` as the call's
/// charge of `kind`, a transfer of its own (`<invocation>/<kind>`).
fn post_consumed(
    tx: &Connection,
    hot: &Hot,
    s: &Settlement,
    kind: TransferKind,
    asset: Asset,
    amount: u64,
) -> Result<(), LedgerError> {
    let id = format!("{}/{}", s.invocation_id, kind.as_str());
    post(tx, hot, &id, s.payer.as_str(), CONSUMED_ACCOUNT, asset, amount, kind, "", Some(&s.invocation_id))?;
    Ok(())
}

/// Charge the LLM tokens the call's model requests used (its holds were
/// released), within what the payer has: a transfer of its own,
/// `<invocation>/llm`, whatever the outcome (the provider spent them).
/// Returns what was charged.
fn charge_llm_tokens(tx: &Connection, hot: &Hot, s: &Settlement) -> Result<u64, LedgerError> {
    if s.consumed.llm_tokens == 0 {
        return Ok(0);
    }
    let (posted, held) = balance_peek(tx, hot, s.payer.as_str(), Asset::LlmTokens)?;
    let tokens = s.consumed.llm_tokens.min(available(posted, held));
    if tokens > 0 {
        post_consumed(tx, hot, s, TransferKind::Llm, Asset::LlmTokens, tokens)?;
    }
    Ok(tokens)
}

/// The statements that write a usage record: into the table, or into the
/// settlement journal (which has no `postings` column: every journaled
/// record carries its charges).
const WRITE_RECORD: [&str; 2] = [
    concat!(
        "INSERT INTO usage_records (",
        record_columns!(),
        ", rowid, postings) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
         ?19, ?20)"
    ),
    concat!(
        "INSERT INTO settlement_journal (",
        record_columns!(),
        ", seq, audit_at_ms, audit_decision, audit_decided_by, audit_reason, audit_latency_us) VALUES (?1, ?2, ?3, \
         ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)"
    ),
];

/// Write the usage record of `s` at position `seq` (`in_record`: it
/// carries the call's charges), into the settlement journal if
/// `journaled` (with the admission's audit record, which the projection
/// writes), and return it. Not journaled, the admission's audit record is
/// written now, in the same transaction.
fn write_record(
    tx: &Connection,
    s: &Settlement,
    consumed: ResourcesConsumed,
    price_paid: u64,
    seq: i64,
    in_record: bool,
    journaled: bool,
) -> Result<UsageRecord, LedgerError> {
    let cost_usd_micros = s.cost_model.cost_usd_micros(consumed.fuel, consumed.disk_bytes);
    let settled_ms = now_ms();
    let values = params![
        s.invocation_id,
        s.artifact,
        s.caller.as_str(),
        s.owner.as_str(),
        s.payer.as_str(),
        s.resource_policy.as_str(),
        s.outcome.as_str(),
        to_db(consumed.fuel, "fuel")?,
        to_db(consumed.memory_peak_bytes, "memory")?,
        to_db(consumed.disk_bytes, "disk")?,
        to_db(consumed.wall_time_ns, "wall time")?,
        to_db(consumed.cpu_time_ns, "cpu time")?,
        to_db(price_paid, "price")?,
        to_db(cost_usd_micros, "cost")?,
        s.output,
        s.error,
        settled_ms,
        to_db(consumed.llm_tokens, "llm tokens")?,
        seq,
        in_record,
    ];
    if journaled {
        // The record's columns and position (not `postings`, the table's
        // own), then the admission's.
        let a = s.admission.as_ref();
        let latency = a.map(|a| to_db(a.latency_us, "latency")).transpose()?;
        let audit = params![
            a.map(|a| a.at_ms),
            a.map(|a| a.decision.as_str()),
            a.and_then(|a| a.decided_by.as_deref()),
            a.and_then(|a| a.reason.as_deref()),
            latency,
        ];
        let all = values[..19].iter().chain(audit.iter()).copied();
        exec(tx, WRITE_RECORD[1], rusqlite::params_from_iter(all)).map_err(storage)?;
    } else {
        exec(tx, WRITE_RECORD[0], values).map_err(storage)?;
        if let Some(a) = &s.admission {
            exec(
                tx,
                "INSERT INTO audit (at_ms, invocation, kind, subject, target, decision, decided_by, reason, latency_us)
                 VALUES (?1, ?2, 'invoke', ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    a.at_ms,
                    s.invocation_id,
                    s.caller.as_str(),
                    s.artifact,
                    a.decision,
                    a.decided_by,
                    a.reason,
                    to_db(a.latency_us, "latency")?
                ],
            )
            .map_err(storage)?;
        }
    }
    Ok(UsageRecord {
        invocation_id: s.invocation_id.clone(),
        artifact: s.artifact.clone(),
        caller: s.caller.clone(),
        owner: s.owner.clone(),
        charged_to: s.payer.clone(),
        resource_policy: s.resource_policy,
        outcome: s.outcome,
        consumed,
        price_paid,
        cost_usd_micros,
        output: s.output.clone(),
        error: s.error.clone(),
        settled_at_ms: settled_ms,
        seq,
    })
}
