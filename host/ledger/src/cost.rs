//! The cost model: how fuel becomes CPU time, and resources become money
//! where an allocation has a money budget. Integers throughout.
//!
//! - **CPU time** = fuel x `picos_per_fuel` / 1000 (nanoseconds). The rate
//!   depends on the machine: `fuelhost calibrate` measures it on a
//!   reference kernel and stores it with the host's data, where a host
//!   opening that data finds it. Until calibrated, 1 ns per fuel unit.
//! - **Money** (micro-USD) = CPU seconds x `usd_micros_per_cpu_second`,
//!   plus MiB of disk growth x `usd_micros_per_disk_mib`, rounded up so
//!   that a call that burned anything is never free. Both prices default
//!   to 0: money is charged only where the operator sets a price.

use serde::{Deserialize, Serialize};

/// Prices and rates of the cost model. Every field documents its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostModel {
    /// CPU time per fuel unit, picoseconds. Default: 1,000 (1 ns), until
    /// `fuelhost calibrate` measures this machine.
    pub picos_per_fuel: u64,
    /// Price of one CPU second, micro-USD. Default: 0.
    pub usd_micros_per_cpu_second: u64,
    /// Price of one MiB of disk growth, micro-USD. Default: 0.
    pub usd_micros_per_disk_mib: u64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel { picos_per_fuel: 1_000, usd_micros_per_cpu_second: 0, usd_micros_per_disk_mib: 0 }
    }
}

impl CostModel {
    /// CPU time of `fuel` units, nanoseconds.
    pub fn cpu_time_ns(&self, fuel: u64) -> u64 {
        ((fuel as u128 * self.picos_per_fuel as u128) / 1_000).min(u64::MAX as u128) as u64
    }

    /// Fuel that takes `time` of CPU, rounded down: how a deterministic
    /// fuel run counts its timeout.
    pub fn fuel_for(&self, time: std::time::Duration) -> u64 {
        (time.as_nanos().saturating_mul(1_000) / self.picos_per_fuel.max(1) as u128).min(u64::MAX as u128) as u64
    }

    /// Money cost of `fuel` and `disk_bytes`, micro-USD, rounded up.
    pub fn cost_usd_micros(&self, fuel: u64, disk_bytes: u64) -> u64 {
        let cpu = self.cpu_time_ns(fuel) as u128 * self.usd_micros_per_cpu_second as u128;
        let disk = disk_bytes as u128 * self.usd_micros_per_disk_mib as u128;
        let total = cpu.div_ceil(1_000_000_000) + disk.div_ceil(1 << 20);
        total.min(u64::MAX as u128) as u64
    }
}
