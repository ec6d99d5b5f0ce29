//! The data directory, one host's at a time: a lock file held while the
//! host is open, and within one process a wait for a host that is closing
//! to let the directory go.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::HostError;

/// The data directories hosts of this process hold, and a signal when one
/// is let go: a host closing in this process (its background threads
/// finishing their last step) releases its directory moments after its
/// last handle is dropped, so one opening it again waits for that.
static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
static RELEASED: std::sync::Condvar = std::sync::Condvar::new();

/// How long a host opening waits for another host of this process to let
/// its data directory go.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// A data directory held by one host ([`lock`]): its lock file,
/// locked, and its place in [`HELD`], let go on drop.
pub(crate) struct DataDirLock {
    _file: std::fs::File,
    _held: Held,
}

/// A data directory's place in [`HELD`].
struct Held(PathBuf);

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|d| d != &self.0);
        RELEASED.notify_all();
    }
}

/// Take the data directory for this process. One host per directory: the
/// ledger keeps in-flight holds in memory and recovery at open releases
/// every hold it does not know, so a second host on the same files (a
/// second `serve`, or `calibrate` pointed at a live server's directory)
/// would spend or release what the first one holds. The lock is released
/// when the host is closed or its process dies.
pub(crate) fn lock(dir: &Path) -> Result<DataDirLock, HostError> {
    let in_use = |path: &Path| {
        HostError::Invalid(format!(
            "the data directory `{}` is in use by another fuelhost host (it holds `{}`); stop that host, or give \
             this one another data directory",
            dir.display(),
            path.display()
        ))
    };
    let path = dir.join("fuelhost.lock");
    let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    {
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = std::time::Instant::now() + RELEASE_WAIT;
        while held.contains(&key) {
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(in_use(&path));
            }
            held = RELEASED.wait_timeout(held, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
        held.push(key.clone());
    }
    // Let go again if the file lock is not had.
    let held = Held(key);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| HostError::DataDir { path: path.display().to_string(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(DataDirLock { _file: file, _held: held }),
        Err(std::fs::TryLockError::WouldBlock) => Err(in_use(&path)),
        Err(std::fs::TryLockError::Error(source)) => {
            Err(HostError::DataDir { path: path.display().to_string(), source })
        }
    }
}
