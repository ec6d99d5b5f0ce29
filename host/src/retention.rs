//! Retention: how long call history and the audit log stay in the
//! database ([`Retention`], `[retention]` in `serve.toml`), and one move
//! of what is older to the archive (which the host's background mover
//! makes at start and then every [`Retention::every_minutes`]).
//!
//! What is kept forever is small and does not grow with calls: balances,
//! explicit transfers, the statistics' totals, and per hour one summary
//! transfer per kind, debit and credit of the charges archived (see
//! `fuelhost_sqlite::retention`). What moves is the per-call history:
//! usage records (with the charges, settled reservations and holds of
//! their calls) and audit entries, into JSON-lines files, one per kind
//! and UTC hour, fsynced before any row is deleted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audit::{AuditArchived, AuditLog};
use crate::error::HostError;
use fuelhost_ledger::{Archived, Ledger};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// How long history stays in the database. Nothing is archived unless a
/// horizon is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Days a usage record stays after its call settled (none: forever).
    /// At least 1: an invocation id is idempotent (a replay is answered,
    /// not run again) for as long as its record is kept.
    pub usage_days: Option<u32>,
    /// Days an audit entry stays after its decision (none: forever).
    pub audit_days: Option<u32>,
    /// Where archive files go (default: `archive/` in the data directory).
    pub archive_dir: Option<PathBuf>,
    /// Minutes between moves (default 60).
    pub every_minutes: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { usage_days: None, audit_days: None, archive_dir: None, every_minutes: 60 }
    }
}

impl Retention {
    /// Whether anything is ever archived.
    pub fn archives(&self) -> bool {
        self.usage_days.is_some() || self.audit_days.is_some()
    }

    /// What is wrong with these settings, said as what to change.
    pub fn check(&self) -> Result<(), HostError> {
        if self.usage_days == Some(0) {
            return Err(HostError::Invalid(
                "retention.usage_days must be at least 1: an invocation id answers its replays only while its usage \
                 record is kept; leave it unset to keep records forever"
                    .into(),
            ));
        }
        if self.audit_days == Some(0) {
            return Err(HostError::Invalid(
                "retention.audit_days must be at least 1; leave it unset to keep the audit log forever".into(),
            ));
        }
        if self.every_minutes == 0 {
            return Err(HostError::Invalid("retention.every_minutes must be at least 1".into()));
        }
        Ok(())
    }
}

/// What one move to the archive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveReport {
    /// Where the files are.
    pub archive_dir: PathBuf,
    /// Usage records (and their charges) moved.
    pub usage: Archived,
    /// Audit entries moved.
    pub audit: AuditArchived,
}

/// The retention settings a host runs with, and its archive directory.
pub(crate) struct Retainer {
    pub(crate) settings: Retention,
    pub(crate) dir: PathBuf,
    pub(crate) clock: Arc<dyn fuelhost_ledger::Clock>,
}

impl Retainer {
    /// How long the background mover waits between moves.
    pub(crate) fn every(&self) -> Duration {
        Duration::from_secs(u64::from(self.settings.every_minutes) * 60)
    }

    /// Archive what is past each horizon now: usage records, then audit
    /// entries, the second tried even when the first failed.
    pub(crate) fn archive(&self, ledger: &dyn Ledger, audit: &AuditLog) -> Result<ArchiveReport, HostError> {
        let now = self.clock.now_ms();
        let horizon = |days: Option<u32>| days.map(|d| now - i64::from(d) * DAY_MS);
        let mut report = ArchiveReport { archive_dir: self.dir.clone(), ..ArchiveReport::default() };
        let mut failed = Vec::new();
        if let Some(before) = horizon(self.settings.usage_days) {
            match ledger.archive_settled(before, &self.dir) {
                Ok(usage) => report.usage = usage,
                Err(e) => failed.push(format!("usage records: {e}")),
            }
        }
        if let Some(before) = horizon(self.settings.audit_days) {
            match audit.archive_before(before, &self.dir) {
                Ok(entries) => report.audit = entries,
                Err(e) => failed.push(format!("audit entries: {e}")),
            }
        }
        if failed.is_empty() {
            Ok(report)
        } else {
            Err(HostError::Archive(failed.join("; ")))
        }
    }
}

/// Log what a move of the background mover did.
pub(crate) fn log(result: Result<ArchiveReport, HostError>) {
    match result {
        Ok(r) if r.usage.records == 0 && r.audit.entries == 0 => {}
        Ok(r) => tracing::info!(
            usage_records = r.usage.records,
            charges = r.usage.charges,
            audit_entries = r.audit.entries,
            dir = %r.archive_dir.display(),
            "archived history past the retention horizon"
        ),
        Err(e) => tracing::error!(error = %e, "archiving history failed; it stays in the database until the next try"),
    }
}
