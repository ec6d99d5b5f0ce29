//! Caps on what one guest instance may allocate: memory summed over its
//! linear memories, table elements, instances, tables and memories. The
//! limiter also remembers whether it refused a growth, so a trap that
//! follows is told apart as `memory_limit`.

use wasmtime::ResourceLimiter;

/// Caps on what one guest instance may allocate.
#[derive(Debug, Clone)]
pub struct GuestLimiter {
    memory_limit: usize,
    memory_total: usize,
    memory_peak: usize,
    memory_refused: bool,
}

impl GuestLimiter {
    /// A limiter allowing `memory_limit` bytes over all linear memories.
    pub fn new(memory_limit: u64) -> GuestLimiter {
        GuestLimiter {
            memory_limit: usize::try_from(memory_limit).unwrap_or(usize::MAX),
            memory_total: 0,
            memory_peak: 0,
            memory_refused: false,
        }
    }

    /// Highest total linear memory seen, in bytes.
    pub fn memory_peak(&self) -> u64 {
        self.memory_peak as u64
    }

    /// Whether a memory growth was refused.
    pub fn memory_refused(&self) -> bool {
        self.memory_refused
    }
}

/// Most table elements one table may hold.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.memory_total - current.min(self.memory_total) + desired;
        if total > self.memory_limit {
            self.memory_refused = true;
            return Ok(false);
        }
        self.memory_total = total;
        self.memory_peak = self.memory_peak.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}
