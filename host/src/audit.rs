//! The audit log: every policy decision (who, what, which rule or plugin
//! decided, the result, how long it took), written durably to the database
//! and queryable. What is written is the action: never an invocation's input
//! or output, and URLs lose their user info and query string before they
//! get here (see `egress`). Entries older than a horizon move to archive
//! files ([`AuditLog::archive_before`], see `retention`).
//!
//! **Admissions ride with settlements.** The decision allowing a call is
//! kept back ([`AuditLog::defer_admission`]) for the call's settlement to
//! write in its own commit (in the journal row, which the projection turns
//! into the audit row), instead of costing the commit a row of its own.
//! It is written on its own, appended as any other decision, as soon as
//! the call does not settle (its reservation or settlement failed), the
//! call is judged on anything else (so a call's decisions keep their
//! order), or it has waited [`KEEP_BACK`]: a crash loses no more of it than
//! of any decision appended.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bindings::{Action, Decision};
use fuelhost_ledger::now_ms;
use fuelhost_ledger::AdmissionRecord;
use fuelhost_policy::Verdict;
use fuelhost_sqlite::Database;
use fuelhost_store::archive::{archive_id, host_archive_id, ArchiveError, ArchiveFile, HOUR_MS};
use fuelhost_store::{self as store, params, Commit, Row, Sql, StoreError, Tx, Value};

/// How long an admission may be kept back for its settlement.
const KEEP_BACK: Duration = Duration::from_millis(5);

/// An allowed call's admission, kept back for its settlement.
#[derive(Debug, Clone)]
pub(crate) struct KeptAdmission {
    caller: String,
    artifact: String,
    since: Instant,
    /// The decision, as the settlement records it.
    pub(crate) record: AdmissionRecord,
}

/// Entries moved per transaction (see [`AuditLog::archive_before`]).
const ARCHIVE_CHUNK: i64 = 2_000;

/// The columns of an entry, in [`AuditEntry`]'s order.
const COLUMNS: &str = "at_ms, invocation, kind, subject, target, decision, decided_by, reason, latency_us, seq";

/// One recorded decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// Unix time, milliseconds.
    pub at_ms: i64,
    /// The invocation the decision belongs to, if any.
    pub invocation: Option<String>,
    /// Action kind (`invoke`, `transfer`, ...).
    pub kind: String,
    /// Who acted.
    pub subject: String,
    /// What the action was aimed at.
    pub target: String,
    /// `allow`, `deny` or `require_approval`.
    pub decision: String,
    /// The plugin that decided (none when every plugin allowed).
    pub decided_by: Option<String>,
    /// The reason given with a deny, or the approvers.
    pub reason: Option<String>,
    /// Time the chain took, microseconds.
    pub latency_us: u64,
    /// Its position in the log: `after = seq` of the last entry of a page
    /// asks for the next one.
    pub seq: i64,
}

/// Which audit entries to return; every field narrows the query.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditQuery {
    /// Entries of this subject (acting agent).
    pub subject: Option<String>,
    /// Entries of this action kind (`invoke`, `file-open`, ...).
    pub kind: Option<String>,
    /// `allow`, `deny` or `require_approval`.
    pub decision: Option<String>,
    /// Entries of this invocation.
    pub invocation: Option<String>,
    /// At or after this Unix ms.
    pub since_ms: Option<i64>,
    /// Before this Unix ms.
    pub until_ms: Option<i64>,
    /// Newest first (default: oldest first).
    pub newest_first: bool,
    /// Entries after this position (oldest first: the last `seq` of the
    /// previous page).
    pub after: Option<i64>,
    /// Entries before this position (newest first: the last `seq` of the
    /// previous page).
    pub before: Option<i64>,
    /// At most this many (default 1,000).
    pub limit: Option<usize>,
}

/// Where the audit table is.
#[derive(Clone)]
enum Table {
    /// In the host's SQLite file: written by appending to its next commit,
    /// read on its second connection, archived to files.
    Sqlite(Arc<Database>),
    /// In a database other hosts share: each entry its own insert; this
    /// host's archive files named after `host`.
    Shared {
        /// The database.
        db: Arc<dyn Sql>,
        /// The host's name.
        host: Arc<str>,
    },
}

/// Writes and reads the audit table. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    table: Table,
    /// Held by the one move to the archive at a time.
    archiving: Arc<Mutex<()>>,
    /// Admissions kept back for their calls' settlements, by invocation.
    kept: Arc<Mutex<HashMap<String, KeptAdmission>>>,
    /// Held while kept admissions are taken out and written on their own,
    /// so a call's next decision waits for its admission being written
    /// by the background and lands after it.
    writing: Arc<Mutex<()>>,
}

/// What one move of audit entries to the archive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AuditArchived {
    /// Entries moved.
    pub entries: u64,
    /// The files written to, relative to the archive directory.
    pub files: Vec<String>,
}

/// The SQL and parameters of the entries `q` asks for, oldest first (or
/// newest): each filter a term, so that a subject's or an invocation's
/// entries are read through their index. `span`: the positions a period
/// covers (see [`first_at`]), which bound the read; the times are checked
/// too.
pub(crate) fn listing(q: &AuditQuery, span: (i64, i64)) -> (String, Vec<Value>) {
    let limit = q.limit.unwrap_or(1_000).min(i64::MAX as usize) as i64;
    // `after` and `before` bound the positions in either order; a pager
    // sends the one its order moves towards.
    let order = if q.newest_first { "seq DESC" } else { "seq" };
    let low = span.0.max(q.after.map_or(i64::MIN, |a| a.saturating_add(1)));
    let high = span.1.min(q.before.unwrap_or(i64::MAX));
    let mut filters = vec!["seq >= ?1".to_string(), "seq < ?3".into()];
    let mut values = vec![Value::Integer(low), Value::Integer(limit), Value::Integer(high)];
    let fields: [(&str, Option<Value>); 6] = [
        ("subject = ", q.subject.clone().map(Value::Text)),
        ("invocation = ", q.invocation.clone().map(Value::Text)),
        ("kind = ", q.kind.clone().map(Value::Text)),
        ("decision = ", q.decision.clone().map(Value::Text)),
        ("at_ms >= ", q.since_ms.map(Value::Integer)),
        ("at_ms < ", q.until_ms.map(Value::Integer)),
    ];
    for (test, value) in fields {
        if let Some(value) = value {
            values.push(value);
            filters.push(format!("{test}?{}", values.len()));
        }
    }
    let sql = format!("SELECT {COLUMNS} FROM audit WHERE {} ORDER BY {order} LIMIT ?2", filters.join(" AND "));
    (sql, values)
}

/// The insert of one entry, in [`AuditEntry`]'s column order less `seq`.
const INSERT: &str =
    "INSERT INTO audit (at_ms, invocation, kind, subject, target, decision, decided_by, reason, latency_us)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

impl AuditLog {
    /// The audit log in the host's SQLite file.
    pub fn new(db: Arc<Database>) -> AuditLog {
        AuditLog::on(Table::Sqlite(db))
    }

    /// The audit log in a database other hosts share, kept by host `host`.
    pub fn shared(db: Arc<dyn Sql>, host: &str) -> AuditLog {
        AuditLog::on(Table::Shared { db, host: host.into() })
    }

    fn on(table: Table) -> AuditLog {
        let log = AuditLog { table, archiving: Arc::default(), kept: Arc::default(), writing: Arc::default() };
        // Writes the admissions kept back too long; ends with the log.
        let kept = Arc::downgrade(&log.kept);
        let (table, writing) = (log.table.clone(), log.writing.clone());
        let spawned = std::thread::Builder::new().name("fuelhost-audit".into()).spawn(move || loop {
            std::thread::sleep(KEEP_BACK);
            let Some(kept) = kept.upgrade() else { return };
            let log = AuditLog { table: table.clone(), archiving: Arc::default(), kept, writing: writing.clone() };
            log.flush_kept_back(KEEP_BACK);
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "starting the audit log's writer failed; admissions are written as decided");
        }
        log
    }

    /// Write one entry (its columns as [`INSERT`] takes them). On SQLite
    /// it is appended: written with the next commit (a call's, with its
    /// settlement), without taking the connection now. A failure is
    /// logged, not propagated: the decision itself stands.
    fn append(&self, values: Vec<Value>) {
        let written = match &self.table {
            Table::Sqlite(db) => db.append(INSERT, fuelhost_sqlite::sqlite_values(&values)).map_err(|e| e.to_string()),
            Table::Shared { db, .. } => store::write(&**db, Commit::Deferred, |tx| tx.execute(INSERT, &values))
                .map(drop)
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "writing the audit log failed");
        }
    }

    /// Run `f`'s reads of the log: on SQLite on the committed connection
    /// (the open write batch committed first), never on the one calls
    /// settle on.
    fn read<T: Send>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError> + Send) -> Result<T, StoreError> {
        match &self.table {
            Table::Sqlite(db) => fuelhost_sqlite::read_committed(db, f),
            Table::Shared { db, .. } => {
                let mut f = Some(f);
                store::read(&**db, |tx| {
                    let f = f.take().ok_or_else(|| StoreError::Refused("the audit read ran twice".into()))?;
                    f(tx)
                })
            }
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<String, KeptAdmission>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep the allow admitting call `invocation` back for its settlement
    /// (see the module docs).
    pub(crate) fn defer_admission(&self, invocation: &str, action: &Action, verdict: &Verdict) {
        let record = AdmissionRecord {
            at_ms: now_ms(),
            decision: "allow".into(),
            decided_by: verdict.decided_by.clone(),
            reason: None,
            latency_us: verdict.latency.as_micros().min(u64::MAX as u128) as u64,
        };
        let kept = KeptAdmission {
            caller: action.subject.clone(),
            artifact: action.target.clone(),
            since: Instant::now(),
            record,
        };
        self.kept().insert(invocation.to_string(), kept);
    }

    /// The admission of `invocation`, if still kept back: for its
    /// settlement to record (or, should that fail, [`AuditLog::record_admission`]).
    pub(crate) fn take_admission(&self, invocation: &str) -> Option<KeptAdmission> {
        self.kept().remove(invocation)
    }

    /// Write the admission of `invocation` on its own now, if it is still
    /// kept back.
    pub(crate) fn flush_admission(&self, invocation: &str) {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(kept) = self.take_admission(invocation) {
            self.record_admission(invocation, &kept);
        }
    }

    /// Write on its own every admission kept back `older` than this.
    fn flush_kept_back(&self, older: Duration) {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let due: Vec<(String, KeptAdmission)> = {
            let mut kept = self.kept();
            let ids: Vec<String> =
                kept.iter().filter(|(_, k)| k.since.elapsed() >= older).map(|(id, _)| id.clone()).collect();
            ids.into_iter().filter_map(|id| kept.remove(&id).map(|k| (id, k))).collect()
        };
        for (id, kept) in due {
            self.record_admission(&id, &kept);
        }
    }

    /// Record one decision. A failure to write is logged, not propagated:
    /// the decision itself stands.
    pub fn record(&self, invocation: Option<&str>, action: &Action, verdict: &Verdict) {
        let (decision, reason) = match &verdict.decision {
            Decision::Allow => ("allow", None),
            Decision::Deny(r) => ("deny", Some(r.clone())),
            Decision::RequireApproval(who) => ("require_approval", Some(who.join(","))),
        };
        self.append(
            params![
                now_ms(),
                invocation,
                &action.kind,
                &action.subject,
                &action.target,
                decision,
                &verdict.decided_by,
                reason,
                verdict.latency.as_micros().min(i64::MAX as u128) as i64,
            ]
            .to_vec(),
        );
    }

    /// Record the decision that admitted a call (`invoke` of `artifact` by
    /// `caller`), when its settlement did not (see
    /// `fuelhost_ledger::Settlement::admission`).
    pub(crate) fn record_admission(&self, invocation: &str, kept: &KeptAdmission) {
        let (caller, artifact, a) = (kept.caller.as_str(), kept.artifact.as_str(), &kept.record);
        self.append(
            params![
                a.at_ms,
                invocation,
                "invoke",
                caller,
                artifact,
                &a.decision,
                &a.decided_by,
                &a.reason,
                a.latency_us
            ]
            .to_vec(),
        );
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.query(&AuditQuery { limit: Some(usize::MAX), ..AuditQuery::default() })
    }

    /// The entries matching `q`, oldest first (see [`AuditLog::read`]
    /// for where they are read); a subject's or an invocation's entries
    /// come through their index.
    pub fn query(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|tx| {
            // Positions follow time to within how long an admission waits
            // for its settlement's projection: a period's positions,
            // widened by [`OUT_OF_ORDER`], bound the read.
            let low = q.since_ms.map(|ms| first_at(tx, ms.saturating_sub(OUT_OF_ORDER))).transpose()?;
            let high = q.until_ms.map(|ms| first_at(tx, ms.saturating_add(OUT_OF_ORDER))).transpose()?;
            let (sql, values) = listing(q, (low.unwrap_or(i64::MIN), high.unwrap_or(i64::MAX)));
            tx.query(&sql, &values)?.iter().map(entry_from_row).collect()
        })
    }

    /// Move the entries decided before `before_ms` to JSON-lines files
    /// under `dir` (`audit/<YYYY-MM-DD>T<HH>-<archive id>.jsonl`, one line
    /// per entry as the API shows it), fsynced before they are deleted;
    /// safe to interrupt anywhere (see `fuelhost_store::archive`). Entries
    /// go in the order written, up to the first one at or past the
    /// horizon. On a shared database, hosts moving at once never move an
    /// entry twice: each batch's delete takes exactly its entries or
    /// nothing, and the host that finds them gone stops.
    pub fn archive_before(&self, before_ms: i64, dir: &Path) -> Result<AuditArchived, ArchiveError> {
        let _one_mover = self.archiving.lock().unwrap_or_else(|p| p.into_inner());
        let (db, host): (&dyn Sql, Option<&str>) = match &self.table {
            Table::Sqlite(db) => {
                // The open write batch's entries committed first.
                drop(db.lock());
                (&**db, None)
            }
            Table::Shared { db, host } => (&**db, Some(host)),
        };
        let mut done = AuditArchived::default();
        let id = match host {
            Some(host) => host_archive_id(&archive_id(db)?, host),
            None => archive_id(db)?,
        };
        ArchiveFile::cut_unrecorded_tails(db, dir, "audit", &id)?;
        loop {
            let entries = self.oldest(before_ms)?;
            let Some(first) = entries.first() else { return Ok(done) };
            let file = ArchiveFile::of_hour(dir, "audit", first.at_ms, &id);
            let recorded = self.read(|tx| file.recorded_length(tx))?;
            let mut lines = Vec::with_capacity(entries.len() * 200);
            for e in &entries {
                serde_json::to_writer(&mut lines, e)?;
                lines.push(b'\n');
            }
            let length = file.append(recorded, &lines)?;
            // Exactly these entries, or nothing: another host moving the
            // same ones at once took them first, and this move stops.
            // Exactly the entries read, by position: on a shared database
            // positions are taken at insert and committed in any order, so
            // a range could take an entry committed since, never written.
            let seqs: Vec<Value> = entries.iter().map(|e| Value::from(e.seq)).collect();
            let moved = store::write(db, Commit::Durable, |tx| {
                let mut n = 0;
                for chunk in seqs.chunks(500) {
                    let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
                    n += tx.execute(&format!("DELETE FROM audit WHERE seq IN ({})", marks.join(", ")), chunk)?;
                }
                if n != entries.len() as u64 {
                    return Err(ArchiveError::Taken);
                }
                Ok(file.commit(tx, length)?)
            });
            match moved {
                Ok(()) => {}
                Err(ArchiveError::Taken) => {
                    file.cut_back(recorded)?;
                    return Ok(done);
                }
                Err(e) => {
                    // The lines go now (else at the next move's start).
                    let _ = file.cut_back(recorded);
                    return Err(e);
                }
            }
            done.entries += entries.len() as u64;
            if done.files.last() != Some(&file.name) {
                done.files.push(file.name);
            }
        }
    }

    /// The oldest entries, in order, up to the first decided at or after
    /// `before_ms` or in a later hour than the first: at most
    /// [`ARCHIVE_CHUNK`]. Never the newest entry of all: the table numbers
    /// its rows from the last one it holds, and an emptied table would
    /// number the next entry 1 again, under the positions readers have
    /// paged past.
    fn oldest(&self, before_ms: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self.read(|tx| {
            tx.query(
                &format!("SELECT {COLUMNS} FROM audit WHERE seq < (SELECT max(seq) FROM audit) ORDER BY seq LIMIT ?1"),
                params![ARCHIVE_CHUNK],
            )
        })?;
        let mut entries: Vec<AuditEntry> = Vec::new();
        for row in &rows {
            let e = entry_from_row(row)?;
            let hour = |ms: i64| ms.div_euclid(HOUR_MS);
            if e.at_ms >= before_ms || entries.first().is_some_and(|f| hour(f.at_ms) != hour(e.at_ms)) {
                break;
            }
            entries.push(e);
        }
        Ok(entries)
    }
}

/// How far out of time order an entry may be written: an admission is
/// written when its call's settlement is projected (milliseconds later,
/// normally; after a crash, when the host opens again, so a period query
/// may miss the admissions of calls a crash interrupted for longer).
const OUT_OF_ORDER: i64 = 60_000;

/// The first position whose entry was decided at or after `ms` (one past
/// the last when none was), by bisection through the primary key (about
/// forty reads, no index on time), as if positions followed time.
fn first_at(tx: &mut dyn Tx, ms: i64) -> Result<i64, StoreError> {
    let bounds = tx.query_one("SELECT min(seq), max(seq) FROM audit", params![])?;
    let (Some(mut lo), Some(last)) = (bounds.get::<Option<i64>>(0)?, bounds.get::<Option<i64>>(1)?) else {
        return Ok(i64::MAX);
    };
    let mut hi = last + 1;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let r = tx.query_one("SELECT seq, at_ms FROM audit WHERE seq >= ?1 ORDER BY seq LIMIT 1", params![mid])?;
        let (seq, at): (i64, i64) = (r.get(0)?, r.get(1)?);
        if at >= ms {
            hi = mid;
        } else {
            lo = seq + 1;
        }
    }
    Ok(lo)
}

fn entry_from_row(r: &Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        at_ms: r.get(0)?,
        invocation: r.get(1)?,
        kind: r.get(2)?,
        subject: r.get(3)?,
        target: r.get(4)?,
        decision: r.get(5)?,
        decided_by: r.get(6)?,
        reason: r.get(7)?,
        latency_us: r.get(8)?,
        seq: r.get(9)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every audit listing reads an index, never the whole log.
    #[test]
    fn audit_listings_read_through_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("p.db"), fuelhost_sqlite::Durability::Process).unwrap();
        let queries = [
            ("a subject's decisions", AuditQuery { subject: Some("bob".into()), ..Default::default() }),
            ("an invocation's decisions", AuditQuery { invocation: Some("inv-1".into()), ..Default::default() }),
            (
                "a subject's denials",
                AuditQuery { subject: Some("bob".into()), decision: Some("deny".into()), ..Default::default() },
            ),
            ("the next page", AuditQuery { after: Some(1_000), ..Default::default() }),
            ("the newest", AuditQuery { newest_first: true, ..Default::default() }),
            ("a period", AuditQuery { since_ms: Some(5), until_ms: Some(9), ..Default::default() }),
            (
                "a subject's newest",
                AuditQuery { subject: Some("bob".into()), newest_first: true, before: Some(9), ..Default::default() },
            ),
        ];
        for (what, q) in queries {
            let (sql, params) = listing(&q, (0, 100));
            fuelhost_sqlite::plans::assert_no_scan(
                what,
                &fuelhost_sqlite::plans::plan(&db, &sql, fuelhost_sqlite::sqlite_values(&params)),
            );
        }
    }
}
