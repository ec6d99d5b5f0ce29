//! Retention of call history: the usage records of calls settled before a
//! horizon moved out of the database into archive files (`archive`), their
//! charges kept as hourly summary transfers, so that every balance is
//! still the sum of the ledger's transfers and conservation still checks.
//!
//! What leaves with a record: the charges a call posted as `transfers`
//! rows (a call reserved through the tables, whose record has
//! `postings = 0`), its settled `reservations` row and its posted or
//! voided `holds`. What stays: balances, every explicit transfer (mints,
//! payments, guest transfers), the statistics' counters (`counters`, which
//! must include a record before it may go), and for each move, per kind,
//! debit and credit, one summary transfer of the charges it archived (id
//! `archived:<hour>:<first position>:<kind>:<debit>:<credit>`, no
//! invocation, dated at the start of the hour; like every transfer, never
//! changed once written).
//!
//! A move takes at most [`CHUNK`] records of one hour: their lines are
//! appended to the hour's file and fsynced, then one transaction deletes
//! them and writes their summaries (see `archive` for why an interruption
//! anywhere loses and doubles nothing). The positions of the records
//! deleted are never handed out again (`journal::last_seq`).
//!
//! An invocation id is idempotent for as long as its record is kept: a
//! call replayed with an archived id is a new call.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection};

use crate::hot::Hot;
use crate::sql::{exec, one};
use crate::storage;
use crate::store::LiteTx;
use crate::usage::{usage_from_row, USAGE_COLUMNS};
use crate::Database;
use fuelhost_ledger::{
    usage_archive_line, Archived, ArchivedCharge, Asset, LedgerError, TransferKind, UsageRecord, CONSUMED_ACCOUNT,
};
use fuelhost_store::archive::{archive_id, hour_name, ArchiveError, ArchiveFile, HOUR_MS};

/// Records moved per transaction: small enough that the deletes hold the
/// connection for milliseconds, not seconds.
pub(crate) const CHUNK: usize = 2_000;

/// The archive files' folder for usage records.
const KIND: &str = "usage";

/// One charge of an archived call.
struct Charge {
    id: String,
    debit: String,
    credit: String,
    asset: Asset,
    amount: u64,
    kind: TransferKind,
    /// A `transfers` row of its own (deleted with the record), rather than
    /// columns of the record.
    row: bool,
}

/// A record about to be archived, with its charges.
struct Record {
    record: UsageRecord,
    charges: Vec<Charge>,
}

/// A move's charges of one kind from one debit to one credit.
struct Sum {
    kind: TransferKind,
    asset: Asset,
    amount: u64,
    charges: u64,
}

/// Up to [`CHUNK`] records settled in one hour, oldest first.
struct Batch {
    hour_ms: i64,
    records: Vec<Record>,
}

fn archive_error(e: ArchiveError) -> LedgerError {
    LedgerError::Storage(e.to_string())
}

/// Move every record settled before `before_ms` that the counters include
/// into the archive under `dir`, [`CHUNK`] at a time. Reads go through
/// the committed-data connection; only the deletes take the connection
/// calls settle on. One mover at a time (the caller's lock).
pub(crate) fn archive_settled(db: &Database, hot: &Hot, before_ms: i64, dir: &Path) -> Result<Archived, LedgerError> {
    let mut done = Archived::default();
    let id = archive_id(db).map_err(|e| LedgerError::Storage(e.to_string()))?;
    ArchiveFile::cut_unrecorded_tails(db, dir, KIND, &id).map_err(archive_error)?;
    loop {
        let batch = next_batch(&db.committed(), before_ms)?;
        let Some(batch) = batch else { return Ok(done) };
        let file = ArchiveFile::of_hour(dir, KIND, batch.hour_ms, &id);
        let recorded =
            file.recorded_length(&mut LiteTx(&db.committed())).map_err(|e| LedgerError::Storage(e.to_string()))?;
        let length = file.append(recorded, &batch.lines()?).map_err(archive_error)?;
        db.durable_then(|tx| batch.remove(tx, hot, &file, length), |_, _| hot.transaction_ended())?;
        done.records += batch.records.len() as u64;
        done.charges += batch.records.iter().map(|r| r.charges.len() as u64).sum::<u64>();
        if done.files.last() != Some(&file.name) {
            done.files.push(file.name);
        }
    }
}

/// The oldest records settled before `before_ms`, all of one hour and all
/// included in the counters, or `None` when there are none.
fn next_batch(conn: &Connection, before_ms: i64) -> Result<Option<Batch>, LedgerError> {
    let through: i64 =
        one(conn, "SELECT coalesce((SELECT through FROM counter_state WHERE id = 1), 0)", [], |r| r.get(0))
            .map_err(storage)?;
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {USAGE_COLUMNS}, postings FROM usage_records WHERE settled_ms < ?1 AND rowid <= ?2
             ORDER BY settled_ms, rowid LIMIT ?3"
        ))
        .map_err(storage)?;
    let rows = stmt
        .query_map(params![before_ms, through, CHUNK as i64], |r| Ok((usage_from_row(r)?, r.get::<_, bool>(19)?)))
        .map_err(storage)?;
    let mut batch: Option<Batch> = None;
    for row in rows {
        let (record, postings) = row.map_err(storage)?;
        let hour_ms = record.settled_at_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let b = batch.get_or_insert_with(|| Batch { hour_ms, records: Vec::new() });
        if hour_ms != b.hour_ms {
            break;
        }
        let charges = match postings {
            // Its LLM tokens are a transfer of its own even so.
            true if record.consumed.llm_tokens > 0 => {
                let mut charges = charges_in_record(&record);
                charges.extend(charge_rows(conn, &record.invocation_id)?);
                charges
            }
            true => charges_in_record(&record),
            false => charge_rows(conn, &record.invocation_id)?,
        };
        b.records.push(Record { record, charges });
    }
    Ok(batch)
}

/// The charges a record carries in its columns (`postings = 1`), as the
/// `ledger_transfers` view derives them.
fn charges_in_record(r: &UsageRecord) -> Vec<Charge> {
    let inv = &r.invocation_id;
    let payer = r.charged_to.as_str();
    [
        (TransferKind::Price, Asset::Scrip, r.caller.as_str(), r.owner.as_str(), r.price_paid),
        (TransferKind::Fuel, Asset::Fuel, payer, CONSUMED_ACCOUNT, r.consumed.fuel),
        (TransferKind::Disk, Asset::DiskBytes, payer, CONSUMED_ACCOUNT, r.consumed.disk_bytes),
    ]
    .into_iter()
    .filter(|c| c.4 > 0)
    .map(|(kind, asset, debit, credit, amount)| Charge {
        id: format!("{inv}/{}", kind.as_str()),
        debit: debit.to_string(),
        credit: credit.to_string(),
        asset,
        amount,
        kind,
        row: false,
    })
    .collect()
}

/// The charges a call posted as `transfers` rows of their own.
fn charge_rows(conn: &Connection, invocation: &str) -> Result<Vec<Charge>, LedgerError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, debit, credit, asset, amount, kind FROM transfers
             WHERE id IN (?1 || '/price', ?1 || '/fuel', ?1 || '/disk', ?1 || '/llm') AND invocation = ?1
             ORDER BY seq",
        )
        .map_err(storage)?;
    let rows = stmt
        .query_map([invocation], |r| {
            let (asset, kind): (String, String) = (r.get(3)?, r.get(5)?);
            Ok(Charge {
                id: r.get(0)?,
                debit: r.get(1)?,
                credit: r.get(2)?,
                asset: Asset::parse(&asset).unwrap_or(Asset::Scrip),
                amount: r.get::<_, i64>(4)? as u64,
                kind: TransferKind::parse(&kind).unwrap_or(TransferKind::Price),
                row: true,
            })
        })
        .map_err(storage)?;
    rows.collect::<Result<_, _>>().map_err(storage)
}

impl Batch {
    /// One JSON line per record: the record as the API shows it, with its
    /// charges.
    fn lines(&self) -> Result<Vec<u8>, LedgerError> {
        let mut out = Vec::with_capacity(self.records.len() * 512);
        for r in &self.records {
            let charges: Vec<ArchivedCharge> = r
                .charges
                .iter()
                .map(|c| ArchivedCharge {
                    id: c.id.clone(),
                    debit: c.debit.clone(),
                    credit: c.credit.clone(),
                    asset: c.asset,
                    amount: c.amount,
                    kind: c.kind,
                })
                .collect();
            out.extend(usage_archive_line(&r.record, &charges)?);
        }
        Ok(out)
    }

    /// In one transaction: delete the records and what leaves with them,
    /// add their charges to the hour's summaries, record the file's length.
    fn remove(&self, tx: &Connection, hot: &Hot, file: &ArchiveFile, length: u64) -> Result<(), LedgerError> {
        // By kind, debit and credit (a kind moves one asset), in a fixed
        // order so that a move's summaries take their positions alike.
        let mut sums: BTreeMap<(&str, &str, &str), Sum> = BTreeMap::new();
        for r in &self.records {
            let inv = &r.record.invocation_id;
            let deleted = exec(
                tx,
                "DELETE FROM usage_records WHERE rowid = ?1 AND invocation_id = ?2",
                params![r.record.seq, inv],
            )
            .map_err(storage)?;
            if deleted != 1 {
                return Err(LedgerError::Conflict(format!("the usage record of `{inv}` was archived by another move")));
            }
            for c in &r.charges {
                if c.row {
                    exec(tx, "DELETE FROM transfers WHERE id = ?1", [&c.id]).map_err(storage)?;
                }
                let sum = sums.entry((c.kind.as_str(), &c.debit, &c.credit)).or_insert(Sum {
                    kind: c.kind,
                    asset: c.asset,
                    amount: 0,
                    charges: 0,
                });
                sum.amount += c.amount;
                sum.charges += 1;
            }
            exec(tx, "DELETE FROM holds WHERE invocation = ?1 AND state <> 'pending'", [inv]).map_err(storage)?;
            exec(tx, "DELETE FROM reservations WHERE invocation_id = ?1 AND settled = 1", [inv]).map_err(storage)?;
        }
        for ((_, debit, credit), sum) in sums {
            self.write_summary(tx, hot, file, debit, credit, &sum)?;
        }
        file.commit(&mut LiteTx(tx), length).map_err(|e| LedgerError::Storage(e.to_string()))
    }

    /// Write this move's summary of `sum`'s charges from `debit` to
    /// `credit`, at the next position in the ledger's order, dated at the
    /// hour's start.
    fn write_summary(
        &self,
        tx: &Connection,
        hot: &Hot,
        file: &ArchiveFile,
        debit: &str,
        credit: &str,
        sum: &Sum,
    ) -> Result<(), LedgerError> {
        let hour = hour_name(self.hour_ms);
        let (first, last) = (self.records[0].record.seq, self.records[self.records.len() - 1].record.seq);
        let kind = sum.kind.as_str();
        let id = format!("{}{hour}:{first}:{kind}:{debit}:{credit}", fuelhost_ledger::ARCHIVED_PREFIX);
        let amount = i64::try_from(sum.amount).map_err(|_| LedgerError::Invalid("a move's charges overflow".into()))?;
        let memo = format!(
            "{} {kind} charges of calls settled in the hour from {hour}:00Z (positions {first} to {last}), archived \
             in {}",
            sum.charges, file.name
        );
        let seq = hot.next_seq(|| crate::journal::last_seq(tx))?;
        let written = exec(
            tx,
            "INSERT OR IGNORE INTO transfers (seq, id, debit, credit, asset, amount, kind, memo, invocation, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9)",
            params![seq, id, debit, credit, sum.asset.as_str(), amount, kind, memo, self.hour_ms],
        )
        .map_err(storage)?;
        if written != 1 {
            // The records of a move are deleted with its summaries, so a
            // second summary of the same move cannot be.
            return Err(LedgerError::IdConflict(id));
        }
        Ok(())
    }
}
