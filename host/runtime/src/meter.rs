//! How a run is metered: [`Metering`] is the mode an artifact chooses
//! (deterministic fuel, or CPU time); [`Meter`] counts one run's use by
//! that mode.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How an artifact's calls are metered, chosen per artifact. Both modes
/// charge the payer's fuel budget and stop a call at the budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metering {
    /// Deterministic fuel: wasmtime counts the instructions, so the same
    /// call costs the same on any machine (reproducible bills). The default.
    #[default]
    Fuel,
    /// CPU time: the calling thread's CPU time is measured around the call
    /// and converted to fuel by the cost model (`fuelhost calibrate`); the
    /// budget is enforced by an epoch deadline. The code carries no fuel
    /// checks, so it runs faster, but bills vary a little from run to run.
    CpuTime,
}

impl Metering {
    /// The stable snake_case name, as in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Metering::Fuel => "fuel",
            Metering::CpuTime => "cpu_time",
        }
    }
}

/// How a run's fuel is counted: by wasmtime in the store, or from the
/// thread's CPU time (the artifact's [`Metering`]).
pub enum Meter {
    /// The store's fuel counter.
    Fuel,
    /// CPU time of the calling thread since `started`, at `picos_per_fuel`
    /// picoseconds a fuel unit, against a budget of `budget` fuel.
    CpuTime {
        /// The thread's CPU time when the run started (a run stays on its
        /// thread from start to end).
        started: Duration,
        /// The cost model's rate.
        picos_per_fuel: u64,
        /// Fuel reserved for the run.
        budget: u64,
    },
}

impl Meter {
    /// Start counting CPU time now.
    pub fn cpu_time(picos_per_fuel: u64, budget: u64) -> Meter {
        Meter::CpuTime {
            started: cpu_time::ThreadTime::now().as_duration(),
            picos_per_fuel: picos_per_fuel.max(1),
            budget,
        }
    }

    /// Start counting again from now (just before the guest runs, so the
    /// host's own setup is not billed).
    pub fn restart(&mut self) {
        if let Meter::CpuTime { started, .. } = self {
            *started = cpu_time::ThreadTime::now().as_duration();
        }
    }

    /// CPU time spent so far, as fuel; `None` when the store counts fuel.
    pub fn cpu_fuel_spent(&self) -> Option<u64> {
        match self {
            Meter::Fuel => None,
            Meter::CpuTime { started, picos_per_fuel, .. } => {
                let elapsed = cpu_time::ThreadTime::now().as_duration().saturating_sub(*started);
                let picos = elapsed.as_nanos().saturating_mul(1000);
                Some((picos / *picos_per_fuel as u128).min(u64::MAX as u128) as u64)
            }
        }
    }

    /// Fuel left of the budget, by CPU time; `None` when the store counts
    /// fuel.
    pub fn cpu_fuel_left(&self) -> Option<u64> {
        match self {
            Meter::Fuel => None,
            Meter::CpuTime { budget, .. } => self.cpu_fuel_spent().map(|spent| budget.saturating_sub(spent)),
        }
    }
}
