//! Circuit breakers, one per artifact: after `failures` attempts in a row
//! failed by the artifact's fault, its tasks stop being run for a
//! cool-down, then one trial task is let through.
//!
//! - **Closed**: tasks run; a failure counts, a success resets the count.
//! - **Open** (the count reached `failures`): a task taken for the
//!   artifact does not run; its attempt fails `circuit_open` (nothing is
//!   charged) and is retried by its policy, not before the cool-down ends.
//! - **Half-open** (the cool-down passed): one task runs as a trial while
//!   the others are refused as when open; its success closes the breaker,
//!   its failure opens it for another cool-down.
//!
//! What counts as the artifact's fault: a trap, a stack overflow, a memory
//! limit, a timeout. A clean error the guest returns, running out of fuel
//! (the caller's budget), a refusal by policy or ledger and a cancellation
//! do not count, and do not reset the count either.
//!
//! Breakers live in memory, and what of them is shared (open until when,
//! times opened) is kept in the `breakers` table: a breaker stays open
//! across a restart, and one a host opens is open on every host sharing
//! its database (each host hears of it, see `changes`). Failure counts and
//! a half-open breaker's trial are each host's own.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use fuelhost_ledger::Outcome;

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Tasks run.
    Closed,
    /// Tasks are refused until the cool-down ends.
    Open,
    /// One trial task runs; the others are refused.
    HalfOpen,
}

impl BreakerState {
    /// The name shown.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// One artifact's breaker, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BreakerStatus {
    /// `owner/name@version`.
    pub artifact: String,
    /// Where it is.
    pub state: BreakerState,
    /// Failures in a row counted so far (while closed).
    pub consecutive_failures: u32,
    /// When an open breaker lets a trial through (Unix ms).
    pub open_until_ms: Option<i64>,
    /// How many times it opened (kept across restarts and shared by the
    /// hosts of one database).
    pub times_opened: u64,
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until_ms: Option<i64>,
    trial_running: bool,
    times_opened: u64,
}

/// What the breaker says of running a task of an artifact now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Run it.
    Run,
    /// Run it as the half-open breaker's trial.
    Trial,
    /// Do not; the breaker is open until this Unix ms (or a trial runs).
    Refuse { until_ms: i64 },
}

/// The breakers of every artifact that failed since the host started.
pub(crate) struct Breakers {
    failures: u32,
    cool_down_ms: i64,
    by_artifact: Mutex<HashMap<String, Breaker>>,
}

/// Whether `outcome` is the artifact's fault (see the module docs).
fn counts_against(outcome: Outcome) -> Option<bool> {
    match outcome {
        Outcome::Success => Some(false),
        Outcome::Trap
        | Outcome::StackOverflow
        | Outcome::MemoryLimit
        | Outcome::Timeout
        | Outcome::OutputLimit
        | Outcome::LogLimit => Some(true),
        _ => None,
    }
}

impl Breakers {
    /// Breakers that open after `failures` in a row (at least 1), for
    /// `cool_down_ms`.
    pub(crate) fn new(failures: u32, cool_down_ms: i64) -> Breakers {
        Breakers { failures: failures.max(1), cool_down_ms: cool_down_ms.max(0), by_artifact: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Breaker>> {
        self.by_artifact.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a task of `artifact` run at `now_ms`?
    pub(crate) fn admit(&self, artifact: &str, now_ms: i64) -> Admission {
        let mut map = self.lock();
        let Some(b) = map.get_mut(artifact) else { return Admission::Run };
        match b.open_until_ms {
            None => Admission::Run,
            Some(until_ms) if now_ms < until_ms || b.trial_running => Admission::Refuse { until_ms },
            Some(_) => {
                b.trial_running = true;
                Admission::Trial
            }
        }
    }

    /// A task of `artifact` that was admitted ended its attempt with
    /// `outcome` (`None`: it never ran, e.g. the host refused it), at
    /// `now_ms`. Whether this opened the breaker.
    pub(crate) fn record(&self, artifact: &str, admission: Admission, outcome: Option<Outcome>, now_ms: i64) -> bool {
        let mut map = self.lock();
        let verdict = outcome.and_then(counts_against);
        let b = match (map.get_mut(artifact), verdict) {
            (Some(b), _) => b,
            (None, Some(true)) => map.entry(artifact.to_string()).or_default(),
            (None, _) => return false,
        };
        if admission == Admission::Trial {
            b.trial_running = false;
        }
        match verdict {
            // A success of a task let in before the breaker opened says
            // nothing of the artifact now: only a trial closes it.
            Some(false) if b.open_until_ms.is_some() && admission != Admission::Trial => false,
            Some(false) => {
                let times_opened = b.times_opened;
                *b = Breaker { times_opened, ..Breaker::default() };
                false
            }
            Some(true) if admission == Admission::Trial || b.open_until_ms.is_none() => {
                b.failures += 1;
                if admission == Admission::Trial || b.failures >= self.failures {
                    b.open_until_ms = Some(now_ms + self.cool_down_ms);
                    b.times_opened += 1;
                    true
                } else {
                    false
                }
            }
            // A failure of a task admitted before the breaker opened.
            Some(true) => false,
            None => false,
        }
    }

    /// What of `artifact`'s breaker is shared: open until when (`None`:
    /// closed), and how many times it opened.
    pub(crate) fn shared(&self, artifact: &str) -> (Option<i64>, u64) {
        self.lock().get(artifact).map_or((None, 0), |b| (b.open_until_ms, b.times_opened))
    }

    /// Take `artifact`'s breaker as another host (or an earlier run) left
    /// it: opened (until `open_until_ms`) or closed (its failures
    /// forgotten), `times_opened` in all.
    pub(crate) fn adopt(&self, artifact: &str, open_until_ms: Option<i64>, times_opened: u64) {
        let mut map = self.lock();
        let b = map.entry(artifact.to_string()).or_default();
        b.times_opened = b.times_opened.max(times_opened);
        match open_until_ms {
            Some(until) => b.open_until_ms = Some(until),
            None if b.open_until_ms.is_some() => {
                b.open_until_ms = None;
                b.failures = 0;
            }
            None => {}
        }
    }

    /// Every breaker that has seen a failure, at `now_ms`.
    pub(crate) fn statuses(&self, now_ms: i64) -> Vec<BreakerStatus> {
        let map = self.lock();
        let mut out: Vec<BreakerStatus> = map
            .iter()
            .map(|(artifact, b)| BreakerStatus {
                artifact: artifact.clone(),
                state: match b.open_until_ms {
                    None => BreakerState::Closed,
                    Some(until) if now_ms < until && !b.trial_running => BreakerState::Open,
                    Some(_) => BreakerState::HalfOpen,
                },
                consecutive_failures: b.failures,
                open_until_ms: b.open_until_ms,
                times_opened: b.times_opened,
            })
            .collect();
        out.sort_by(|a, b| a.artifact.cmp(&b.artifact));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closed until `failures` in a row; open for the cool-down; then one
    /// trial; its failure reopens, its success closes.
    #[test]
    fn a_breaker_opens_half_opens_and_closes() {
        let b = Breakers::new(3, 1_000);
        for _ in 0..2 {
            assert_eq!(b.admit("x", 0), Admission::Run);
            assert!(!b.record("x", Admission::Run, Some(Outcome::Trap), 0));
        }
        // A success resets the count; a clean error neither counts nor resets.
        assert!(!b.record("x", Admission::Run, Some(Outcome::Success), 0));
        for _ in 0..2 {
            b.record("x", Admission::Run, Some(Outcome::Timeout), 0);
            b.record("x", Admission::Run, Some(Outcome::RunError), 0);
        }
        assert!(b.record("x", Admission::Run, Some(Outcome::Trap), 10), "the third failure in a row opens it");
        assert_eq!(b.admit("x", 500), Admission::Refuse { until_ms: 1_010 });
        assert_eq!(b.admit("other", 500), Admission::Run, "other artifacts are not affected");
        assert_eq!(b.statuses(500)[0].state, BreakerState::Open);
        // A success of a task let in before it opened does not close it.
        assert!(!b.record("x", Admission::Run, Some(Outcome::Success), 600));
        assert_eq!(b.admit("x", 600), Admission::Refuse { until_ms: 1_010 });

        assert_eq!(b.admit("x", 1_010), Admission::Trial);
        assert_eq!(b.admit("x", 1_011), Admission::Refuse { until_ms: 1_010 }, "one trial at a time");
        assert_eq!(b.statuses(1_011)[0].state, BreakerState::HalfOpen);
        assert!(b.record("x", Admission::Trial, Some(Outcome::Trap), 1_020), "a failed trial reopens it");
        assert_eq!(b.admit("x", 1_500), Admission::Refuse { until_ms: 2_020 });

        assert_eq!(b.admit("x", 2_020), Admission::Trial);
        assert!(!b.record("x", Admission::Trial, Some(Outcome::Success), 2_030));
        assert_eq!(b.admit("x", 2_031), Admission::Run);
        let status = &b.statuses(2_031)[0];
        assert_eq!((status.state, status.consecutive_failures, status.times_opened), (BreakerState::Closed, 0, 2));
    }

    /// A trial that never ran (refused by the host) frees the trial slot.
    #[test]
    fn a_trial_that_did_not_run_lets_another_through() {
        let b = Breakers::new(1, 100);
        b.record("x", Admission::Run, Some(Outcome::Trap), 0);
        assert_eq!(b.admit("x", 100), Admission::Trial);
        assert!(!b.record("x", Admission::Trial, None, 100));
        assert_eq!(b.admit("x", 101), Admission::Trial);
    }
}
