//! Disk quotas, enforced at each write: what an artifact's writes may add
//! to its owner's directory.
//!
//! - Each agent's directory has an [`AgentDir`]: a lock that every change
//!   which may grow or shrink the directory holds from its check to its
//!   end, and the directory's count of entries (files, directories,
//!   links), counted once when first needed and kept as calls create and
//!   remove entries. A create past [`crate::HostLimits::max_dir_entries`]
//!   fails. No run ever walks the directory again.
//! - Each call has a [`DiskMeter`]: its net growth so far (bytes written
//!   past the end of files, less bytes it removed), and what it holds of
//!   the payer's disk budget. A write that would take the growth past the
//!   hold asks the ledger for the difference first
//!   ([`crate::Ledger::hold_disk`], which sees every running call's hold,
//!   so concurrent calls of one payer share the budget exactly); refused,
//!   the write fails with WASI's `quota` error and nothing lands on disk.
//!   Settling charges the net growth (never below zero) and releases the
//!   hold.
//!
//! Sizes are apparent sizes (a write at offset 1 GiB grows a file by 1 GiB
//! whether or not the file system allocates the hole). A removed file
//! gives its bytes back only when it was its data's last link.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use fuelhost_ledger::AgentId;
use fuelhost_ledger::{Ledger, LedgerError};

/// Why a change to a directory was refused. Reported to the guest as WASI's
/// `quota` error; the first one of a call is kept for its report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskQuota {
    /// The payer's disk budget (less what running calls hold) is short.
    #[error(
        "disk_limit: the write needs {needed} more bytes of disk, payer {payer} has {available} left of its \
         disk_bytes budget; nothing over it was written"
    )]
    Budget {
        /// The payer.
        payer: String,
        /// Bytes the write would have grown the directory by.
        needed: u64,
        /// Bytes of budget left.
        available: u64,
    },
    /// The directory holds as many entries as the host allows.
    #[error(
        "disk_limit: {owner}'s directory holds {entries} files, directories and links, the most this host allows \
         (max_dir_entries); remove some first"
    )]
    Entries {
        /// Whose directory.
        owner: String,
        /// The count, at the limit.
        entries: u64,
    },
}

/// The directories of every agent, each with its lock and entry count.
#[derive(Debug)]
pub struct AgentDirs {
    root: PathBuf,
    max_entries: u64,
    dirs: Mutex<HashMap<String, Arc<AgentDir>>>,
}

impl AgentDirs {
    /// Agents' directories under `root`, each holding at most
    /// `max_entries` entries.
    pub fn new(root: PathBuf, max_entries: u64) -> AgentDirs {
        AgentDirs { root, max_entries, dirs: Mutex::default() }
    }

    /// The directory of `agent` (created on first use).
    pub fn path(&self, agent: &AgentId) -> PathBuf {
        self.root.join(agent.as_str())
    }

    /// `agent`'s directory, with its lock and count. The first time, the
    /// directory is made if it is missing: an agent created through
    /// another host on a shared database has none here yet.
    pub fn get(&self, agent: &AgentId) -> Arc<AgentDir> {
        let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        dirs.entry(agent.to_string())
            .or_insert_with(|| {
                if let Err(e) = std::fs::create_dir_all(self.path(agent)) {
                    tracing::error!(agent = %agent, error = %e, "making the agent's directory failed");
                }
                Arc::new(AgentDir {
                    owner: agent.to_string(),
                    path: self.path(agent),
                    max_entries: self.max_entries,
                    entries: Mutex::new(None),
                })
            })
            .clone()
    }
}

/// One agent's directory: the lock its changes take, and its entry count.
#[derive(Debug)]
pub struct AgentDir {
    owner: String,
    path: PathBuf,
    max_entries: u64,
    /// Entries under the directory; `None` until first counted.
    entries: Mutex<Option<u64>>,
}

/// Entries (files, directories, links) under `dir`, walked through a
/// capability handle that never follows symlinks.
fn count_entries(dir: &Path) -> u64 {
    fn walk(dir: &cap_std::fs::Dir) -> u64 {
        let Ok(entries) = dir.entries() else { return 0 };
        let mut total = 0;
        for entry in entries.flatten() {
            total += 1;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if let Ok(sub) = entry.open_dir() {
                    total += walk(&sub);
                }
            }
        }
        total
    }
    match cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority()) {
        Ok(d) => walk(&d),
        Err(_) => 0,
    }
}

/// One call's disk: see the module docs. Shared (through an `Arc`) by the
/// call's sandbox and the file streams it opens.
pub struct DiskMeter {
    dir: Arc<AgentDir>,
    ledger: Arc<dyn Ledger>,
    invocation: String,
    payer: AgentId,
    /// Most the call may grow the directory by, whatever the budget: a
    /// sponsor grant's or an allocation's disk left when it reserved.
    cap: u64,
    state: Mutex<MeterState>,
}

#[derive(Debug, Default)]
struct MeterState {
    /// Bytes added less bytes removed (may go below zero).
    net: i64,
    /// Bytes held of the payer's budget.
    held: u64,
    /// The first refusal, for the call's report.
    refused: Option<DiskQuota>,
}

impl DiskMeter {
    /// A meter for `invocation`, writing into `dir`, paid by `payer`, at
    /// most `cap` bytes.
    pub fn new(dir: Arc<AgentDir>, ledger: Arc<dyn Ledger>, invocation: &str, payer: AgentId, cap: u64) -> DiskMeter {
        DiskMeter { dir, ledger, invocation: invocation.to_string(), payer, cap, state: Mutex::default() }
    }

    /// Start one change to the directory: holds its lock until dropped,
    /// so the sizes read and the change made are not interleaved with
    /// another call's.
    pub fn change(&self) -> DirChange<'_> {
        let entries = self.dir.entries.lock().unwrap_or_else(|p| p.into_inner());
        DirChange { meter: self, entries }
    }

    /// Net bytes the call grew the directory by (zero if it shrank it).
    pub fn grown(&self) -> u64 {
        self.lock().net.max(0) as u64
    }

    /// The first refusal the call met, if any.
    pub fn refused(&self) -> Option<DiskQuota> {
        self.lock().refused.clone()
    }

    fn lock(&self) -> MutexGuard<'_, MeterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refuse(&self, quota: DiskQuota) -> DiskQuota {
        let mut state = self.lock();
        if state.refused.is_none() {
            state.refused = Some(quota.clone());
        }
        quota
    }
}

/// One change to a directory under its lock (see [`DiskMeter::change`]).
pub struct DirChange<'a> {
    meter: &'a DiskMeter,
    entries: MutexGuard<'a, Option<u64>>,
}

impl DirChange<'_> {
    /// Account `bytes` of growth before writing them: holds more of the
    /// payer's budget when the call's growth passes what it holds.
    pub fn grow(&mut self, bytes: u64) -> Result<(), DiskQuota> {
        if bytes == 0 {
            return Ok(());
        }
        let m = self.meter;
        let mut state = m.lock();
        let net = state.net.saturating_add(i64::try_from(bytes).unwrap_or(i64::MAX));
        let needed = u64::try_from(net).unwrap_or(0);
        if needed > state.held {
            let more = needed - state.held;
            let refusal = |available: u64| DiskQuota::Budget { payer: m.payer.to_string(), needed: bytes, available };
            if needed > m.cap {
                drop(state);
                let left = m.cap.saturating_sub(m.lock().net.max(0) as u64);
                return Err(m.refuse(refusal(left)));
            }
            match m.ledger.hold_disk(&m.invocation, &m.payer, more) {
                Ok(()) => state.held += more,
                Err(LedgerError::Insufficient { available, .. }) => {
                    let left = available + state.held.saturating_sub(state.net.max(0) as u64);
                    drop(state);
                    return Err(m.refuse(refusal(left)));
                }
                Err(other) => {
                    tracing::warn!(error = %other, "holding disk budget failed; the write is refused");
                    drop(state);
                    return Err(m.refuse(refusal(0)));
                }
            }
        }
        state.net = net;
        Ok(())
    }

    /// Account `bytes` removed (a truncation, a file's last link removed).
    pub fn shrink(&mut self, bytes: u64) {
        let mut state = self.meter.lock();
        state.net = state.net.saturating_sub(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Count one new entry before creating it; refused at the directory's
    /// limit.
    pub fn add_entry(&mut self) -> Result<(), DiskQuota> {
        let dir = &self.meter.dir;
        let entries = self.entries.get_or_insert_with(|| count_entries(&dir.path));
        if *entries >= dir.max_entries {
            let quota = DiskQuota::Entries { owner: dir.owner.clone(), entries: *entries };
            return Err(self.meter.refuse(quota));
        }
        *entries += 1;
        Ok(())
    }

    /// Count one entry gone (removed, replaced, or a create that failed
    /// after [`DirChange::add_entry`]).
    pub fn remove_entry(&mut self) {
        if let Some(entries) = self.entries.as_mut() {
            *entries = entries.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fuelhost_ledger::Asset;
    use fuelhost_sqlite::SqliteLedger;

    fn world(disk: u64, max_entries: u64) -> (tempfile::TempDir, Arc<dyn Ledger>, AgentDirs) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = SqliteLedger::open(&dir.path().join("l.db"), crate::Durability::Process).unwrap();
        let bob = AgentId::new("bob").unwrap();
        ledger.open_account(&bob).unwrap();
        if disk > 0 {
            ledger.post_one(fuelhost_ledger::Transfer::mint("m", &bob, Asset::DiskBytes, disk)).unwrap();
        }
        let dirs = AgentDirs::new(dir.path().join("agents"), max_entries);
        std::fs::create_dir_all(dirs.path(&bob)).unwrap();
        (dir, Arc::new(ledger), dirs)
    }

    fn meter(ledger: &Arc<dyn Ledger>, dirs: &AgentDirs, inv: &str, cap: u64) -> DiskMeter {
        let bob = AgentId::new("bob").unwrap();
        DiskMeter::new(dirs.get(&bob), ledger.clone(), inv, bob, cap)
    }

    #[test]
    fn concurrent_calls_of_one_payer_share_the_budget_exactly() {
        let (_d, ledger, dirs) = world(100, 10);
        let (a, b) = (meter(&ledger, &dirs, "a", u64::MAX), meter(&ledger, &dirs, "b", u64::MAX));
        assert_eq!(a.change().grow(60), Ok(()));
        let refused = b.change().grow(41).unwrap_err();
        assert_eq!(refused, DiskQuota::Budget { payer: "bob".into(), needed: 41, available: 40 });
        assert_eq!(b.change().grow(40), Ok(()));
        assert_eq!(a.change().grow(1).unwrap_err(), DiskQuota::Budget { payer: "bob".into(), needed: 1, available: 0 });
        assert_eq!(b.refused().map(|q| q.to_string().contains("41")), Some(true));
        let bob = AgentId::new("bob").unwrap();
        assert_eq!(ledger.balances(&bob).unwrap().disk_bytes.available(), 0, "both holds bind the balance");
    }

    #[test]
    fn removing_what_a_call_wrote_makes_room_again() {
        let (_d, ledger, dirs) = world(10, 10);
        let m = meter(&ledger, &dirs, "a", u64::MAX);
        m.change().grow(10).unwrap();
        m.change().shrink(10);
        assert_eq!(m.grown(), 0);
        m.change().grow(10).unwrap();
        assert!(m.change().grow(1).is_err());
        m.change().shrink(25);
        assert_eq!(m.grown(), 0, "a call that removed more than it added grew nothing");
    }

    #[test]
    fn a_cap_binds_below_the_budget() {
        let (_d, ledger, dirs) = world(1000, 10);
        let m = meter(&ledger, &dirs, "a", 5);
        assert!(m.change().grow(5).is_ok());
        assert_eq!(m.change().grow(1).unwrap_err(), DiskQuota::Budget { payer: "bob".into(), needed: 1, available: 0 });
    }

    #[test]
    fn entries_are_counted_once_and_bounded() {
        let (_d, ledger, dirs) = world(0, 3);
        let bob = AgentId::new("bob").unwrap();
        std::fs::create_dir_all(dirs.path(&bob).join("sub")).unwrap();
        std::fs::write(dirs.path(&bob).join("sub/f"), "").unwrap();
        let m = meter(&ledger, &dirs, "a", u64::MAX);
        assert_eq!(m.change().add_entry(), Ok(()));
        assert!(matches!(m.change().add_entry(), Err(DiskQuota::Entries { entries: 3, .. })));
        m.change().remove_entry();
        assert_eq!(m.change().add_entry(), Ok(()));
        assert!(m.refused().is_some());
    }
}
