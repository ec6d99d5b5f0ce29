//! Charges recorded by their settlement: the postings of a fast-path call
//! (its price, fuel and disk) are not `transfers` rows but columns of its
//! usage record, flagged `postings = 1`.
//!
//! A charged call used to write two or three transfer rows, each into the
//! `transfers` table and its three indexes; the usage record already
//! carried every amount, so those rows repeated it. Now one row records the
//! call and its charges, and the `ledger_transfers` view (see `db`) unions
//! explicit transfers with the charges derived from usage records, in one
//! order: both draw their position from one sequence (`transfers.seq`,
//! `usage_records.rowid`), handed out by [`super::hot::Hot::next_seq`].
//! Balances still move in the same transaction as the record, so
//! conservation is unchanged.
//!
//! A charge keeps the id it had as a row (`<invocation>/price`, `/fuel`,
//! `/disk`), and ids stay unique across rows and charges: [`charge`] finds
//! a charge by its id, and posting a transfer refuses an id that a charge
//! has or that a running call will give one; the other way round, a call
//! whose charge ids an explicit transfer took first is refused when it
//! reserves, before it runs ([`refuse_taken_ids`]).
//!
//! The sequence lives in memory, so one host process writes a database
//! file at a time (the host's data-directory lock sees to it). A usage
//! record's position is its rowid: a copy made with the `sqlite3` shell's
//! `.dump` needs `--preserve-rowids` to keep the order.

use rusqlite::{Connection, OptionalExtension};

use crate::sql::one;
use crate::storage;
use fuelhost_ledger::{Asset, LedgerError, Transfer, TransferKind, CONSUMED_ACCOUNT};

/// The kinds of charge a usage record carries, with the asset each moves.
const KINDS: [(TransferKind, Asset); 3] =
    [(TransferKind::Price, Asset::Scrip), (TransferKind::Fuel, Asset::Fuel), (TransferKind::Disk, Asset::DiskBytes)];

/// `(invocation, kind)` if `id` has the shape of a charge's id.
pub(super) fn charge_id(id: &str) -> Option<(&str, TransferKind)> {
    let (invocation, kind) = id.rsplit_once('/')?;
    let kind = KINDS.iter().find(|(k, _)| k.as_str() == kind)?.0;
    (!invocation.is_empty()).then_some((invocation, kind))
}

/// The charge recorded by a usage record under `id`, if there is one.
pub(super) fn charge(tx: &Connection, id: &str) -> Result<Option<Transfer>, LedgerError> {
    let Some((invocation, kind)) = charge_id(id) else {
        return Ok(None);
    };
    let row = one(
        tx,
        "SELECT caller, owner, charged_to, price_paid, fuel, disk_bytes FROM usage_records
         WHERE invocation_id = ?1 AND postings = 1",
        [invocation],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                [r.get::<_, i64>(3)?, r.get::<_, i64>(4)?, r.get::<_, i64>(5)?],
            ))
        },
    )
    .optional()
    .map_err(storage)?;
    let Some((caller, owner, payer, amounts)) = row else {
        return Ok(None);
    };
    let i = KINDS.iter().position(|(k, _)| *k == kind).expect("kind comes from KINDS");
    let amount = amounts[i] as u64;
    if amount == 0 {
        return Ok(None);
    }
    let (from, to) = if kind == TransferKind::Price { (caller, owner) } else { (payer, CONSUMED_ACCOUNT.to_string()) };
    Ok(Some(Transfer { id: id.to_string(), from, to, asset: KINDS[i].1, amount, kind, memo: String::new() }))
}

/// Every transfer and charge, `?1` (an agent, or NULL for all) sent or
/// received, with `ORDER BY` and `LIMIT` appended by [`listing`]. The same
/// rows as the `ledger_transfers` view, written as one compound so SQLite
/// merges its arms, each read in its own order, and stops at the limit.
const LISTING: &str = "
    SELECT id, debit, credit, asset, amount, kind, memo, seq, 0 FROM transfers
     WHERE ?1 IS NULL OR debit = ?1 OR credit = ?1
    UNION ALL
    SELECT invocation_id || '/price', caller, owner, 'scrip', price_paid, 'price', '', rowid, 1 FROM usage_records
     WHERE postings = 1 AND price_paid > 0 AND (?1 IS NULL OR caller = ?1 OR owner = ?1)
    UNION ALL
    SELECT invocation_id || '/fuel', charged_to, '@consumed', 'fuel', fuel, 'fuel', '', rowid, 2 FROM usage_records
     WHERE postings = 1 AND fuel > 0 AND (?1 IS NULL OR charged_to = ?1 OR ?1 = '@consumed')
    UNION ALL
    SELECT invocation_id || '/disk', charged_to, '@consumed', 'disk_bytes', disk_bytes, 'disk', '', rowid, 3
      FROM usage_records
     WHERE postings = 1 AND disk_bytes > 0 AND (?1 IS NULL OR charged_to = ?1 OR ?1 = '@consumed')";

/// [`LISTING`] before position `?3`.
const LISTING_BEFORE: &str = "
    SELECT id, debit, credit, asset, amount, kind, memo, seq, 0 FROM transfers
     WHERE (?1 IS NULL OR debit = ?1 OR credit = ?1) AND seq < ?3
    UNION ALL
    SELECT invocation_id || '/price', caller, owner, 'scrip', price_paid, 'price', '', rowid, 1 FROM usage_records
     WHERE postings = 1 AND price_paid > 0 AND (?1 IS NULL OR caller = ?1 OR owner = ?1) AND rowid < ?3
    UNION ALL
    SELECT invocation_id || '/fuel', charged_to, '@consumed', 'fuel', fuel, 'fuel', '', rowid, 2 FROM usage_records
     WHERE postings = 1 AND fuel > 0 AND (?1 IS NULL OR charged_to = ?1 OR ?1 = '@consumed') AND rowid < ?3
    UNION ALL
    SELECT invocation_id || '/disk', charged_to, '@consumed', 'disk_bytes', disk_bytes, 'disk', '', rowid, 3
      FROM usage_records
     WHERE postings = 1 AND disk_bytes > 0 AND (?1 IS NULL OR charged_to = ?1 OR ?1 = '@consumed') AND rowid < ?3";

/// The listing SQL: `?1` an agent or NULL, `?2` the limit (-1: none),
/// newest first if `newest_first`. Columns as `transfers`'s `id, debit,
/// credit, asset, amount, kind, memo`.
pub(super) fn listing(newest_first: bool) -> &'static str {
    static SQL: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        [format!("{LISTING} ORDER BY 8, 9 LIMIT ?2"), format!("{LISTING} ORDER BY 8 DESC, 9 DESC LIMIT ?2")]
    });
    &sql[usize::from(newest_first)]
}

/// The listing of `agent`'s transfers and charges (`?1`; every one when
/// `None` or a system account), `?2` at most, before position `?3`,
/// newest first. An agent's listing reads each arm through the index of
/// its party (`transfers`' debit and credit, the usage records' caller,
/// owner and payer), each stopping at the limit, and merges them: it
/// costs the page, not the ledger.
pub(super) fn agent_listing(agent: Option<&str>) -> &'static str {
    static SQL: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let arm = |select: &str, from: &str, filter: &str| {
            format!("SELECT * FROM (SELECT {select} FROM {from} WHERE {filter} ORDER BY 8 DESC LIMIT ?2)")
        };
        let row = "id, debit, credit, asset, amount, kind, memo, seq, 0";
        let charge = |kind: &str, payer: &str, payee: &str, asset: &str, amount: &str, order: u8| {
            format!("invocation_id || '/{kind}', {payer}, {payee}, '{asset}', {amount}, '{kind}', '', rowid, {order}")
        };
        let price = charge("price", "caller", "owner", "scrip", "price_paid", 1);
        let fuel = charge("fuel", "charged_to", "'@consumed'", "fuel", "fuel", 2);
        let disk = charge("disk", "charged_to", "'@consumed'", "disk_bytes", "disk_bytes", 3);
        let arms = [
            arm(row, "transfers", "debit = ?1 AND seq < ?3"),
            arm(row, "transfers", "credit = ?1 AND debit != ?1 AND seq < ?3"),
            arm(&price, "usage_records", "caller = ?1 AND postings = 1 AND price_paid > 0 AND rowid < ?3"),
            arm(
                &price,
                "usage_records",
                "owner = ?1 AND caller != ?1 AND postings = 1 AND price_paid > 0 AND rowid < ?3",
            ),
            arm(&fuel, "usage_records", "charged_to = ?1 AND postings = 1 AND fuel > 0 AND rowid < ?3"),
            arm(&disk, "usage_records", "charged_to = ?1 AND postings = 1 AND disk_bytes > 0 AND rowid < ?3"),
        ];
        let everyone = format!("{LISTING_BEFORE} ORDER BY 8 DESC, 9 DESC LIMIT ?2");
        [format!("{} ORDER BY 8 DESC, 9 DESC LIMIT ?2", arms.join(" UNION ALL ")), everyone]
    });
    match agent {
        Some(a) if !a.starts_with('@') => &sql[0],
        _ => &sql[1],
    }
}

/// The setting that remembers whether an explicit transfer has an id
/// shaped like a charge's ("1" or "0"), so the question costs a scan of
/// `transfers` once per database, not once per start.
const CHARGE_SHAPED_SETTING: &str = "ledger.charge_shaped_transfer_ids";

/// Whether any explicit transfer has an id shaped like a charge's (read
/// once per process; [`super::hot::Hot`] then keeps it up to date).
pub(super) fn any_charge_shaped_id(tx: &Connection) -> Result<bool, LedgerError> {
    let known: Option<String> =
        one(tx, "SELECT value FROM settings WHERE key = ?1", [CHARGE_SHAPED_SETTING], |r| r.get(0))
            .optional()
            .map_err(storage)?;
    if let Some(v) = known {
        return Ok(v == "1");
    }
    let found: bool = one(
        tx,
        "SELECT EXISTS (SELECT 1 FROM transfers WHERE invocation IS NULL
             AND (id LIKE '%/price' OR id LIKE '%/fuel' OR id LIKE '%/disk'))",
        [],
        |r| r.get(0),
    )
    .map_err(storage)?;
    remember_charge_shaped(tx, found)?;
    Ok(found)
}

/// Record whether an explicit transfer has an id shaped like a charge's,
/// in the transaction that made it so.
pub(super) fn remember_charge_shaped(tx: &Connection, found: bool) -> Result<(), LedgerError> {
    crate::sql::exec(
        tx,
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [CHARGE_SHAPED_SETTING, if found { "1" } else { "0" }],
    )
    .map_err(storage)?;
    Ok(())
}

/// Refuse a call whose charges could not be recorded under their ids: an
/// explicit transfer already has one.
pub(super) fn refuse_taken_ids(tx: &Connection, invocation: &str) -> Result<(), LedgerError> {
    for (kind, _) in KINDS {
        let id = format!("{invocation}/{kind}");
        let taken =
            one(tx, "SELECT 1 FROM transfers WHERE id = ?1", [&id], |_| Ok(())).optional().map_err(storage)?.is_some();
        if taken {
            return Err(LedgerError::Invalid(format!(
                "transfer `{id}` already exists, so invocation `{invocation}` could not record its charges under \
                 their ids; use another invocation id"
            )));
        }
    }
    Ok(())
}

/// The last position handed out: where the sequence resumes at open.
/// Records archived away (see `retention`) took positions no row shows any
/// more; the counters' position covers every one of them (only records the
/// counters include are archived), so the sequence never goes back.
pub(super) fn last_seq(tx: &Connection) -> Result<i64, LedgerError> {
    one(
        tx,
        "SELECT max(coalesce((SELECT max(seq) FROM transfers), 0), coalesce((SELECT max(rowid) FROM usage_records), 0),
                    coalesce((SELECT max(seq) FROM settlement_journal), 0),
                    coalesce((SELECT through FROM counter_state WHERE id = 1), 0))",
        [],
        |r| r.get(0),
    )
    .map_err(storage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_three_charge_kinds_after_a_nonempty_invocation_are_charge_ids() {
        assert_eq!(charge_id("inv-1/price"), Some(("inv-1", TransferKind::Price)));
        assert_eq!(charge_id("task/7/2/fuel"), Some(("task/7/2", TransferKind::Fuel)));
        assert_eq!(charge_id("inv-1/disk"), Some(("inv-1", TransferKind::Disk)));
        assert_eq!(charge_id("inv-1/t0"), None);
        assert_eq!(charge_id("/price"), None);
        assert_eq!(charge_id("price"), None);
    }
}
