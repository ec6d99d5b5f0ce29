//! Where a charged call's time goes: the wall time of each stage of the
//! pipeline, summed over every call that settled since the host started.
//!
//! The pipeline carries a [`StageClock`] through one call and marks the
//! end of each stage; a settled call adds its clock to the host's
//! [`StageTotals`] (atomics, so threads never wait on each other here).
//! [`StageBudget`] is a snapshot of the totals; the difference of two is
//! the per-call budget of the calls in between, which `fuelhost bench`
//! and the throughput bench print. `GET /metrics` exposes the totals as
//! `fuelhost_invocation_stage_seconds_total{stage}`.
//!
//! A nested call is a call of its own and counts its own stages; its time
//! is also inside its caller's `call` stage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A stage of one invocation, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The policy chain, the artifact and caller looked up, the payer
    /// decided, a replay answered.
    Admit,
    /// The price and fuel held in the ledger.
    Reserve,
    /// The sandbox and its store built, the meters and watches installed.
    Setup,
    /// A fresh instance from the artifact's `InstancePre` (pool slot,
    /// memory, tables).
    Instantiate,
    /// The guest's `run`, host calls included.
    Call,
    /// The store dropped (the slot back to its pool), the ending
    /// classified, the disk meter read.
    Teardown,
    /// Holds posted or released and the usage record written, durable
    /// before the call is answered.
    Settle,
    /// The call counted in the metrics, logged and answered.
    Report,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 8] = [
        Stage::Admit,
        Stage::Reserve,
        Stage::Setup,
        Stage::Instantiate,
        Stage::Call,
        Stage::Teardown,
        Stage::Settle,
        Stage::Report,
    ];

    /// Its name, as in the `stage` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Admit => "admit",
            Stage::Reserve => "reserve",
            Stage::Setup => "setup",
            Stage::Instantiate => "instantiate",
            Stage::Call => "call",
            Stage::Teardown => "teardown",
            Stage::Settle => "settle",
            Stage::Report => "report",
        }
    }
}

/// One call's stages as they end: each mark charges the time since the
/// previous one to the stage named.
pub(crate) struct StageClock {
    last: Instant,
    nanos: [u64; Stage::ALL.len()],
}

impl StageClock {
    /// A clock started now, at the start of admission.
    pub(crate) fn start() -> StageClock {
        StageClock { last: Instant::now(), nanos: [0; Stage::ALL.len()] }
    }

    /// `stage` ended now.
    pub(crate) fn mark(&mut self, stage: Stage) {
        let now = Instant::now();
        self.nanos[stage as usize] += now.duration_since(self.last).as_nanos() as u64;
        self.last = now;
    }
}

/// The stage times of every settled call since the host started.
#[derive(Default)]
pub(crate) struct StageTotals {
    nanos: [AtomicU64; Stage::ALL.len()],
    calls: AtomicU64,
}

impl StageTotals {
    /// Add one settled call's clock.
    pub(crate) fn add(&self, clock: &StageClock) {
        for (total, spent) in self.nanos.iter().zip(clock.nanos) {
            total.fetch_add(spent, Ordering::Relaxed);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// The totals now.
    pub(crate) fn snapshot(&self) -> StageBudget {
        StageBudget {
            calls: self.calls.load(Ordering::Relaxed),
            nanos: std::array::from_fn(|i| self.nanos[i].load(Ordering::Relaxed)),
        }
    }
}

/// Stage times summed over `calls` settled calls: a snapshot of the
/// host's totals ([`crate::Host::stage_budget`]), or the difference of two
/// ([`StageBudget::since`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageBudget {
    /// Settled calls counted.
    pub calls: u64,
    /// Nanoseconds spent in each stage, indexed as [`Stage::ALL`].
    pub nanos: [u64; Stage::ALL.len()],
}

impl StageBudget {
    /// What was spent between `earlier` and this snapshot.
    pub fn since(&self, earlier: &StageBudget) -> StageBudget {
        StageBudget {
            calls: self.calls.saturating_sub(earlier.calls),
            nanos: std::array::from_fn(|i| self.nanos[i].saturating_sub(earlier.nanos[i])),
        }
    }

    /// Mean microseconds per call spent in `stage` (0 with no calls).
    pub fn per_call_us(&self, stage: Stage) -> f64 {
        if self.calls == 0 {
            return 0.0;
        }
        self.nanos[stage as usize] as f64 / self.calls as f64 / 1000.0
    }

    /// Mean microseconds per call, all stages.
    pub fn total_per_call_us(&self) -> f64 {
        Stage::ALL.iter().map(|&s| self.per_call_us(s)).sum()
    }
}

impl std::fmt::Display for StageBudget {
    /// One line: `admit 3.1 µs, reserve 1.0 µs, ...; total 40.2 µs`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, stage) in Stage::ALL.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{} {:.1} µs", stage.as_str(), self.per_call_us(*stage))?;
        }
        write!(f, "; total {:.1} µs", self.total_per_call_us())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_charge_the_time_since_the_previous_mark_to_the_stage_named() {
        let mut clock = StageClock::start();
        std::thread::sleep(std::time::Duration::from_millis(2));
        clock.mark(Stage::Admit);
        clock.mark(Stage::Reserve);
        let totals = StageTotals::default();
        totals.add(&clock);
        totals.add(&clock);
        let budget = totals.snapshot();
        assert_eq!(budget.calls, 2);
        assert!(budget.per_call_us(Stage::Admit) >= 2000.0, "{budget}");
        assert!(budget.per_call_us(Stage::Reserve) < budget.per_call_us(Stage::Admit), "{budget}");
        assert_eq!(budget.per_call_us(Stage::Call), 0.0);
        let later = totals.snapshot();
        assert_eq!(later.since(&budget).calls, 0);
        assert_eq!(later.since(&budget).per_call_us(Stage::Admit), 0.0);
        assert!(budget.to_string().starts_with("admit "), "{budget}");
    }
}
