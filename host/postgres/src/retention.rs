//! Retention of call history on PostgreSQL: the usage records of calls
//! settled before a horizon moved into archive files, as on SQLite
//! (`fuelhost_sqlite::retention` says what leaves and what stays, and
//! `fuelhost_store::archive` how a file is written once however often a
//! move is interrupted). Each call's charges are `transfers` rows here:
//! they leave with its record, and the hour's summary transfers (one per
//! kind, debit and credit, id `archived:…`) take their place, so every
//! balance is still the sum of the ledger's transfers.
//!
//! Several hosts may move at once: each writes files of its own (their
//! names carry a tag of its host name, [`host_archive_id`], and each move
//! first cuts its files' unrecorded tails), and the
//! transaction that deletes a batch deletes exactly its records or
//! nothing; a host that finds another moved them first stops its move
//! there, and the next one cuts its file's unrecorded tail.

use std::collections::BTreeMap;
use std::path::Path;

use fuelhost_ledger::{
    usage_archive_line, Archived, ArchivedCharge, Asset, LedgerError, TransferKind, UsageRecord, ARCHIVED_PREFIX,
};
use fuelhost_store::archive::{archive_id, host_archive_id, hour_name, ArchiveFile, HOUR_MS};

use crate::calls::{record_from_row, RECORD_COLUMNS};
use crate::connect::{Database, Tx};
use crate::ledger::PgLedger;

/// Records moved per transaction.
const CHUNK: i64 = 2_000;

/// The archive files' folder for usage records.
const KIND: &str = "usage";

/// Up to [`CHUNK`] records settled in one hour, oldest first, with their
/// charges.
struct Batch {
    hour_ms: i64,
    records: Vec<(UsageRecord, Vec<ArchivedCharge>)>,
}

/// A move's charges of one kind from one debit to one credit.
struct Sum {
    asset: Asset,
    amount: u64,
    charges: u64,
}

fn store_error(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Storage(e.to_string())
}

impl PgLedger {
    /// See [`fuelhost_ledger::Ledger::archive_settled`].
    pub(crate) fn archive_settled_here(&self, before_ms: i64, dir: &Path) -> Result<Archived, LedgerError> {
        let _one_mover = self.archiving.lock().unwrap_or_else(|p| p.into_inner());
        let db = self.database();
        let id = host_archive_id(&archive_id(db).map_err(store_error)?, &self.lease.name);
        ArchiveFile::cut_unrecorded_tails(db, dir, KIND, &id).map_err(store_error)?;
        let mut done = Archived::default();
        loop {
            let Some(batch) = next_batch(db, before_ms)? else { return Ok(done) };
            let file = ArchiveFile::of_hour(dir, KIND, batch.hour_ms, &id);
            let recorded = fuelhost_store::read(db, |tx| file.recorded_length(tx)).map_err(store_error)?;
            let mut lines = Vec::with_capacity(batch.records.len() * 512);
            for (record, charges) in &batch.records {
                lines.extend(usage_archive_line(record, charges)?);
            }
            let length = file.append(recorded, &lines).map_err(store_error)?;
            match db.write(|tx| batch.remove(db, tx, &file, length)) {
                Ok(()) => {}
                // Another host moved them first: its move goes on.
                Err(LedgerError::Conflict(m)) => {
                    tracing::debug!(reason = %m, "another host is archiving the same records; this move stops");
                    file.cut_back(recorded).map_err(store_error)?;
                    return Ok(done);
                }
                Err(e) => {
                    // The lines go now (else at the next move's start).
                    let _ = file.cut_back(recorded);
                    return Err(e);
                }
            }
            done.records += batch.records.len() as u64;
            done.charges += batch.records.iter().map(|(_, c)| c.len() as u64).sum::<u64>();
            if done.files.last() != Some(&file.name) {
                done.files.push(file.name);
            }
        }
    }
}

/// The oldest records settled before `before_ms`, all of one hour, with
/// their charges; `None` when there are none.
fn next_batch(db: &Database, before_ms: i64) -> Result<Option<Batch>, LedgerError> {
    db.read(|c| {
        let rows = c
            .query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM usage_records WHERE settled_ms < $1 ORDER BY settled_ms, seq LIMIT $2"
                ),
                &[&before_ms, &CHUNK],
            )
            .map_err(|e| db.failed(e))?;
        let mut records: Vec<UsageRecord> = rows.iter().map(record_from_row).collect();
        let Some(first) = records.first() else { return Ok(None) };
        let hour_ms = first.settled_at_ms.div_euclid(HOUR_MS) * HOUR_MS;
        records.retain(|r| r.settled_at_ms.div_euclid(HOUR_MS) * HOUR_MS == hour_ms);
        let ids: Vec<&str> = records.iter().map(|r| r.invocation_id.as_str()).collect();
        let mut charges: BTreeMap<String, Vec<ArchivedCharge>> = BTreeMap::new();
        let rows = c
            .query(
                "SELECT invocation, id, debit, credit, asset, amount, kind FROM transfers
                 WHERE invocation = ANY($1)
                    AND id IN (invocation || '/price', invocation || '/fuel', invocation || '/disk', invocation || '/llm')
                 ORDER BY seq",
                &[&ids],
            )
            .map_err(|e| db.failed(e))?;
        for r in rows {
            let (asset, kind): (String, String) = (r.get(4), r.get(6));
            charges.entry(r.get(0)).or_default().push(ArchivedCharge {
                id: r.get(1),
                debit: r.get(2),
                credit: r.get(3),
                asset: Asset::parse(&asset).unwrap_or(Asset::Scrip),
                amount: r.get::<_, i64>(5) as u64,
                kind: TransferKind::parse(&kind).unwrap_or(TransferKind::Price),
            });
        }
        let records =
            records.into_iter().map(|r| (charges.remove(&r.invocation_id).unwrap_or_default(), r)).map(|(c, r)| (r, c));
        Ok(Some(Batch { hour_ms, records: records.collect() }))
    })
}

impl Batch {
    /// In one transaction: delete the records, their charges, settled
    /// reservations and decided holds; add the charges to this move's
    /// summaries; record the file's length. [`LedgerError::Conflict`] (and
    /// nothing done) when another move took any of the records first.
    fn remove(&self, db: &Database, tx: &mut Tx<'_>, file: &ArchiveFile, length: u64) -> Result<(), LedgerError> {
        let ids: Vec<&str> = self.records.iter().map(|(r, _)| r.invocation_id.as_str()).collect();
        let deleted =
            tx.execute("DELETE FROM usage_records WHERE invocation_id = ANY($1)", &[&ids]).map_err(|e| db.failed(e))?;
        if deleted != ids.len() as u64 {
            return Err(LedgerError::Conflict(format!(
                "{} of {} usage records were archived by another move",
                ids.len() as u64 - deleted,
                ids.len()
            )));
        }
        let charge_ids: Vec<&str> = self.records.iter().flat_map(|(_, c)| c.iter().map(|c| c.id.as_str())).collect();
        for sql in [
            "DELETE FROM transfers WHERE id = ANY($1)",
            "DELETE FROM holds WHERE invocation = ANY($1) AND state <> 'pending'",
            "DELETE FROM reservations WHERE invocation_id = ANY($1) AND settled",
        ] {
            let which = if sql.contains("transfers") { &charge_ids } else { &ids };
            tx.execute(sql, &[which]).map_err(|e| db.failed(e))?;
        }
        // By kind, debit and credit (a kind moves one asset): the sum and
        // the number of charges.
        let mut sums: BTreeMap<(&str, &str, &str), Sum> = BTreeMap::new();
        for c in self.records.iter().flat_map(|(_, c)| c) {
            let sum = sums.entry((c.kind.as_str(), &c.debit, &c.credit)).or_insert(Sum {
                asset: c.asset,
                amount: 0,
                charges: 0,
            });
            sum.amount += c.amount;
            sum.charges += 1;
        }
        let hour = hour_name(self.hour_ms);
        let (first, last) = (self.records[0].0.seq, self.records[self.records.len() - 1].0.seq);
        for ((kind, debit, credit), Sum { asset, amount, charges }) in sums {
            let id = format!("{ARCHIVED_PREFIX}{hour}:{first}:{kind}:{debit}:{credit}");
            let amount = i64::try_from(amount).map_err(|_| LedgerError::Invalid("a move's charges overflow".into()))?;
            let memo = format!(
                "{charges} {kind} charges of calls settled in the hour from {hour}:00Z (positions {first} to {last}), \
                 archived in {}",
                file.name
            );
            let written = tx
                .execute(
                    "INSERT INTO transfers (id, debit, credit, asset, amount, kind, memo, invocation, created_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8) ON CONFLICT (id) DO NOTHING",
                    &[&id, &debit, &credit, &asset.as_str(), &amount, &kind, &memo, &self.hour_ms],
                )
                .map_err(|e| db.failed(e))?;
            if written != 1 {
                return Err(LedgerError::IdConflict(id));
            }
        }
        crate::store::in_tx(db, tx, |t| file.commit(t, length))
    }
}
