//! Calls from a guest into the host: what each costs in fuel, and what
//! is checked at the boundary.
//!
//! Fuel counts a guest's own instructions; the host's work for it would be
//! free without this. Each store gets one call hook
//! ([`install`](crate::boundary::install)) that, at
//! every crossing into the host (an import, WASI or fuelhost's, or one of
//! the runtime's own calls: memory growth, bulk memory):
//!
//! - charges [`CROSSING`] fuel before the host works, and on the way back
//!   what the import added for its work ([`GuestCtx::charge`](crate::GuestCtx::charge): per byte
//!   moved, or a fixed price for imports that ask the ledger, the policy
//!   chain or the scheduler); a guest without the fuel to pay ends
//!   `out_of_fuel`, so an endless loop of host calls ends within its
//!   budget;
//! - under deterministic fuel, stops the run at its wall-clock deadline or
//!   when it is cancelled (compute is then bounded by fuel alone, and
//!   this is where the wall clock is read).
//!
//! The prices are fuel, not time, so a bill is the same on every host.
//! They were calibrated so that a unit of fuel spent in the host costs
//! about the time a unit spent in guest compute does: `cargo bench -p
//! fuelhost --bench hostcalls` measures both side by side and prints the
//! ratio for each kind of call (`docs/benchmarks.md`). A CPU-time metered
//! artifact pays its host calls as the CPU time they take on its thread.

/// Fuel of every crossing into the host and back: an import, or one of
/// the runtime's own calls (a bulk memory instruction, a memory growth),
/// which the boundary cannot tell apart. Small, so that copying memory
/// stays compute-priced; imports that work in the host add their price.
pub const CROSSING: u64 = 100;

/// Fuel per byte a call moves between the guest and the host, in
/// thousandths (a file read or write, a stream's bytes, a log line).
pub const PER_BYTE_MILLI: u64 = 2_000;

/// Fuel of an import that answers from memory (the call's context, the
/// sponsorship).
pub const CHEAP_IMPORT: u64 = 3_000;

/// Fuel of one log line, and per byte logged in thousandths on top of
/// [`PER_BYTE_MILLI`]: a line is formatted and written to the host's log.
pub const LOG_LINE: u64 = 16_000;

/// See [`LOG_LINE`].
pub const LOG_BYTE_MILLI: u64 = 46_000;

/// Fuel of a filesystem operation (a system call: an open, a stat, a
/// read, a write, a directory listing) or a blocking stream operation.
pub const FILE_OP: u64 = 10_000;

/// Fuel of an import that reads the ledger (a balance, an allocation, a
/// task's state).
pub const LEDGER_READ: u64 = 45_000;

/// Fuel of an import that writes the ledger or asks the policy chain (a
/// transfer, a policy check, a task submission, opening a file, an
/// outgoing request), on top of the fuel the policy plugins burned
/// answering it.
pub const HOST_DECISION: u64 = 20_000;

/// Fuel of the host's own work for a nested invocation (admit, reserve,
/// settle), on top of the nested guest's fuel (charged to its payer).
pub const NESTED_INVOKE: u64 = 500_000;

/// Fuel for moving `bytes` (rounded up), at `milli` thousandths a byte.
pub fn per_byte(bytes: usize, milli: u64) -> u64 {
    (bytes as u64).saturating_mul(milli).div_ceil(1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_charged_in_thousandths_rounded_up() {
        assert_eq!(per_byte(0, PER_BYTE_MILLI), 0);
        assert_eq!(per_byte(1, 400), 1);
        assert_eq!(per_byte(4096, 400), 1639);
        assert_eq!(per_byte(4096, PER_BYTE_MILLI), 8192);
        assert_eq!(per_byte(usize::MAX, u64::MAX), u64::MAX.div_ceil(1_000));
    }
}
