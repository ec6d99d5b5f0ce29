//! When a guest's waits in the host must end: its deadline, and a flag
//! that cancels it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When a wait must end: the deadline, and a cancel flag.
#[derive(Clone)]
pub struct WaitLimit {
    /// The run's wall-clock deadline.
    pub deadline: Instant,
    /// Raised to stop the run early (a task's cancel, a drain).
    pub cancel: Option<Arc<AtomicBool>>,
}

/// How often a wait looks at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(10);

impl WaitLimit {
    /// Resolves when the wait must end.
    pub(crate) async fn reached(&self) {
        loop {
            if self.cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) {
                return;
            }
            let now = Instant::now();
            if now >= self.deadline {
                return;
            }
            let step = if self.cancel.is_some() { CANCEL_POLL } else { self.deadline - now };
            tokio::time::sleep(step.min(self.deadline - now)).await;
        }
    }
}
