//! Archive files: history moved out of the database (usage records, audit
//! rows) into JSON-lines files, one per kind and hour, each line written
//! exactly once however often a move is interrupted.
//!
//! A move is two steps. [`ArchiveFile::append`] cuts the file back to the
//! length the database last recorded for it (dropping what an interrupted
//! move wrote), appends the new lines and fsyncs them. Then one
//! transaction deletes the rows the lines hold and records the file's new
//! length ([`ArchiveFile::commit`]). A crash before that commit leaves the
//! rows in the database and the file's extra tail, which the next move cuts
//! off and writes again; a crash after it has nothing left to do. So a row
//! is never lost (its line is on disk before it is deleted) and never
//! archived twice.
//!
//! The lengths live in the `archive_files` table (on SQLite and PostgreSQL
//! alike; the statements are the stores' SQL). A file shorter than its
//! recorded length was changed outside fuelhost, and no more is written to
//! it until an operator looks. File names carry the database's archive id
//! (made at its first move, kept in `settings`), so two databases sharing
//! an archive directory, or a new database given an old one, never cut
//! each other's lines; on a database several hosts share, the id also
//! names the host that moves (see [`host_archive_id`]), so each host's
//! files, and their lengths, are its own.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::{params, Commit, Sql, StoreError, Tx};

/// Milliseconds in an archive file's hour.
pub const HOUR_MS: i64 = 3_600_000;

/// One archive file: `<dir>/<kind>/<YYYY-MM-DD>T<HH>-<archive id>.jsonl`,
/// the rows of `kind` from one UTC hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    /// Its name relative to the archive directory (how the database and
    /// summaries name it).
    pub name: String,
    path: PathBuf,
}

/// Why an archive file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file system refused.
    #[error("writing the archive file `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The file is shorter than the database recorded.
    #[error(
        "the archive file `{path}` holds {found} bytes but {recorded} were written to it: it was truncated or replaced \
         outside fuelhost; restore it (or move it aside and delete its row from `archive_files` to start it anew) \
         before archiving more"
    )]
    Shortened {
        /// The file.
        path: String,
        /// Its length now.
        found: u64,
        /// The length recorded when its last lines were committed.
        recorded: u64,
    },
    /// The database failed or refused (what it said).
    #[error("the database: {0}")]
    Store(#[from] StoreError),
    /// Another host moving the same rows at once (on a database several
    /// hosts share) took them first: nothing of this move was deleted,
    /// and it stops there.
    #[error("another host archived these rows first")]
    Taken,
    /// Archiving is not done where the history is kept; what to do.
    #[error("{0}")]
    Refused(String),
    /// A row could not be written as JSON.
    #[error("writing a row as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

/// `YYYY-MM-DDTHH` of the UTC hour holding `ms` (Unix milliseconds).
pub fn hour_name(ms: i64) -> String {
    let hours = ms.div_euclid(HOUR_MS);
    let (days, hour) = (hours.div_euclid(24), hours.rem_euclid(24));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{hour:02}")
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The database's archive id: made at the first call (from the time and
/// the process), then read back (a second host making one at once keeps
/// the first).
pub fn archive_id(db: &dyn Sql) -> Result<String, StoreError> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40) ^ ((nanos >> 64) as u64);
    let made = format!("{:012x}", mixed & 0xffff_ffff_ffff);
    crate::write(db, Commit::Durable, |tx| {
        tx.execute(
            "INSERT INTO settings (key, value) VALUES ('archive_id', ?1) ON CONFLICT (key) DO NOTHING",
            params![&made],
        )?;
        tx.query_one("SELECT value FROM settings WHERE key = 'archive_id'", params![])?.get(0)
    })
}

/// The archive id a host of a shared database writes its files under:
/// the database's, and a tag of the host's name (the same across its
/// restarts, as a host's name must be, and distinct from every other
/// host's), so hosts moving at once, each to its own archive directory or
/// to one shared, never write or cut each other's files, and a host cuts
/// its own files' unrecorded tails after a restart.
pub fn host_archive_id(database_id: &str, host: &str) -> String {
    // FNV-1a: stable across releases and machines, unlike std's hasher.
    let tag = host.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{database_id}-{:08x}", tag as u32)
}

impl ArchiveFile {
    /// The file of `kind`'s rows from the hour holding `ms`, under `dir`,
    /// of the database whose archive id is `id`.
    pub fn of_hour(dir: &Path, kind: &str, ms: i64, id: &str) -> ArchiveFile {
        let name = format!("{kind}/{}-{id}.jsonl", hour_name(ms));
        ArchiveFile { path: dir.join(&name), name }
    }

    /// The length recorded for this file by the last committed move (0
    /// for a new file).
    pub fn recorded_length(&self, tx: &mut dyn Tx) -> Result<u64, StoreError> {
        let bytes: Option<i64> = tx
            .query_opt("SELECT bytes FROM archive_files WHERE file = ?1", params![&self.name])?
            .map(|r| r.get(0))
            .transpose()?;
        Ok(bytes.unwrap_or(0) as u64)
    }

    /// Cut the file back to `recorded` bytes, append `lines` (each ending
    /// in a newline) and fsync it; while nothing is recorded for it, its
    /// directory and theirs too (the file, or the directories, may be new
    /// to the disk). Returns the length to record once the rows are
    /// deleted.
    pub fn append(&self, recorded: u64, lines: &[u8]) -> Result<u64, ArchiveError> {
        let io = |source| ArchiveError::Io { path: self.path.display().to_string(), source };
        let parent = self.path.parent().expect("an archive file is inside its kind's directory");
        std::fs::create_dir_all(parent).map_err(io)?;
        let mut file = OpenOptions::new().create(true).truncate(false).write(true).open(&self.path).map_err(io)?;
        let found = file.metadata().map_err(io)?.len();
        if found < recorded {
            return Err(ArchiveError::Shortened { path: self.path.display().to_string(), found, recorded });
        }
        if found > recorded {
            // An interrupted move's lines: their rows are still in the
            // database and are about to be written again.
            file.set_len(recorded).map_err(io)?;
        }
        use std::io::Seek as _;
        file.seek(std::io::SeekFrom::Start(recorded)).map_err(io)?;
        file.write_all(lines).map_err(io)?;
        file.sync_all().map_err(io)?;
        if recorded == 0 {
            // The file's entry in its kind's directory, that one's in the
            // archive directory, and the archive directory's in its parent.
            for dir in parent.ancestors().take(3) {
                let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
                File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            }
        }
        Ok(recorded + lines.len() as u64)
    }

    /// Cut the file back to `recorded` bytes: the lines a move appended
    /// are dropped at once when its rows turned out to be taken (another
    /// host moved them first), rather than left for the next move to this
    /// file, which may never come.
    pub fn cut_back(&self, recorded: u64) -> Result<(), ArchiveError> {
        let io = |source| ArchiveError::Io { path: self.path.display().to_string(), source };
        let file = OpenOptions::new().write(true).open(&self.path).map_err(io)?;
        file.set_len(recorded).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Cut back every file of `kind` under `dir` written under archive id
    /// `id` to the length its last committed move recorded: the lines of
    /// moves that died (or failed, or found their rows taken by another
    /// host) before their commit, whose rows are still in the database or
    /// were archived by someone else, and whose file no later move of
    /// this id may touch again. Run at the start of each move, by the one
    /// mover of this id.
    pub fn cut_unrecorded_tails(db: &dyn Sql, dir: &Path, kind: &str, id: &str) -> Result<(), ArchiveError> {
        let suffix = format!("-{id}.jsonl");
        let Ok(entries) = std::fs::read_dir(dir.join(kind)) else { return Ok(()) };
        let recorded: std::collections::HashMap<String, i64> = crate::read(db, |tx| {
            tx.query("SELECT file, bytes FROM archive_files WHERE file LIKE ?1", params![format!("{kind}/%{suffix}")])?
                .iter()
                .map(|r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)))
                .collect::<Result<_, StoreError>>()
        })?;
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if !file_name.ends_with(&suffix) {
                continue;
            }
            let name = format!("{kind}/{file_name}");
            let file = ArchiveFile { path: dir.join(&name), name };
            let length = recorded.get(&file.name).copied().unwrap_or(0).max(0) as u64;
            let found = entry
                .metadata()
                .map_err(|source| ArchiveError::Io { path: file.path.display().to_string(), source })?
                .len();
            if found > length {
                file.cut_back(length)?;
            }
        }
        Ok(())
    }

    /// In the transaction that deletes the rows appended: record the
    /// file's new length.
    pub fn commit(&self, tx: &mut dyn Tx, length: u64) -> Result<(), StoreError> {
        tx.execute(
            "INSERT INTO archive_files (file, bytes) VALUES (?1, ?2)
             ON CONFLICT (file) DO UPDATE SET bytes = excluded.bytes",
            params![&self.name, length],
        )
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_named_in_utc() {
        assert_eq!(hour_name(0), "1970-01-01T00");
        // 2026-12-07 06:38:56 UTC.
        assert_eq!(hour_name(1_796_625_536_000), "2026-12-07T06");
        // 2024-02-29 23:59:59.999 UTC, a leap day.
        assert_eq!(hour_name(1_709_251_199_999), "2024-02-29T23");
        assert_eq!(hour_name(1_709_251_200_000), "2024-03-01T00");
        assert_eq!(hour_name(-1), "1969-12-31T23");
    }

    #[test]
    fn a_tail_past_the_recorded_length_is_cut_and_a_shortened_file_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = ArchiveFile::of_hour(dir.path(), "usage", 0, "abc");
        assert_eq!(file.name, "usage/1970-01-01T00-abc.jsonl");
        let len = file.append(0, b"one\n").unwrap();
        // An interrupted move: written, never committed.
        file.append(len, b"lost\n").unwrap();
        let len = file.append(len, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(&file.name)).unwrap(), "one\ntwo\n");
        assert_eq!(len, 8);
        file.append(len, b"taken\n").unwrap();
        file.cut_back(len).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(&file.name)).unwrap(), "one\ntwo\n");
        let err = file.append(100, b"three\n").unwrap_err();
        assert!(err.to_string().contains("holds 8 bytes but 100 were written"), "{err}");
    }
}
