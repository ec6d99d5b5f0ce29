//! Instance slots: how many calls run at once, and how they are shared.
//!
//! The pooling allocator has a fixed number of instance slots. Every call
//! (a nested one too) takes a [`Slot`] before anything is charged and
//! holds it until it has settled, so an instance is always free when it
//! instantiates, and:
//!
//! - no agent holds more than its share (`HostLimits::max_calls_per_agent` in the host,
//!   three quarters of the slots by default): a call past it is refused
//!   at once, so one agent's sleeping or looping calls cannot starve the
//!   others;
//! - a call that finds every slot taken waits in a short queue (at most
//!   [`Slots::MAX_WAIT`], at most as many waiters as there are slots), then
//!   is refused: backpressure, not a thread held for the call's timeout;
//! - a refusal is [`Busy`]: retryable, charged nothing, never blamed on the
//!   artifact (the API answers `503` with `Retry-After`; the scheduler
//!   retries the task without counting an attempt or the breaker).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Why a call got no slot. Nothing was charged; retry shortly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    /// The agent already runs as many calls as one agent may.
    #[error(
        "busy: `{agent}` already runs {running} calls at once, the most one agent may on this host \
         (max_calls_per_agent); retry when one ends"
    )]
    AgentAtLimit {
        /// The agent.
        agent: String,
        /// Its calls running now.
        running: u32,
    },
    /// Every slot stayed taken for as long as a call may wait.
    #[error("busy: all {capacity} instance slots are taken and none came free within {waited_ms} ms; retry shortly")]
    Full {
        /// Slots in all.
        capacity: u32,
        /// How long this call waited.
        waited_ms: u64,
    },
}

/// The slots of one host.
#[derive(Debug)]
pub struct Slots {
    capacity: u32,
    per_agent: u32,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    in_use: u32,
    waiting: u32,
    by_agent: HashMap<String, u32>,
}

impl Slots {
    /// Longest a call waits for a free slot.
    pub const MAX_WAIT: Duration = Duration::from_millis(250);

    /// `capacity` slots, at most `per_agent` held by one agent.
    pub fn new(capacity: u32, per_agent: u32) -> Arc<Slots> {
        Arc::new(Slots {
            capacity: capacity.max(1),
            per_agent: per_agent.max(1),
            state: Mutex::default(),
            freed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a call of `agent`'s. `queue`: wait (briefly) when all
    /// are taken; without it (a nested call, which holds its caller's
    /// slot meanwhile) a full pool is refused at once.
    pub fn acquire(self: &Arc<Self>, agent: &str, queue: bool) -> Result<Slot, Busy> {
        let started = Instant::now();
        let mut state = self.lock();
        let running = state.by_agent.get(agent).copied().unwrap_or(0);
        if running >= self.per_agent {
            return Err(Busy::AgentAtLimit { agent: agent.to_string(), running });
        }
        if state.in_use >= self.capacity {
            if !queue || state.waiting >= self.capacity {
                return Err(Busy::Full { capacity: self.capacity, waited_ms: 0 });
            }
            state.waiting += 1;
            let deadline = started + Self::MAX_WAIT;
            while state.in_use >= self.capacity {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                state = self.freed.wait_timeout(state, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
            }
            state.waiting -= 1;
            if state.in_use >= self.capacity {
                let waited_ms = started.elapsed().as_millis() as u64;
                return Err(Busy::Full { capacity: self.capacity, waited_ms });
            }
            // The agent may have taken more slots while this call waited.
            let running = state.by_agent.get(agent).copied().unwrap_or(0);
            if running >= self.per_agent {
                self.freed.notify_one();
                return Err(Busy::AgentAtLimit { agent: agent.to_string(), running });
            }
        }
        state.in_use += 1;
        *state.by_agent.entry(agent.to_string()).or_default() += 1;
        Ok(Slot { slots: self.clone(), agent: agent.to_string() })
    }

    /// Slots taken now.
    #[cfg(test)]
    fn in_use(&self) -> u32 {
        self.lock().in_use
    }
}

/// A slot held by one call; freed when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    agent: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.slots.lock();
        state.in_use -= 1;
        if let Some(n) = state.by_agent.get_mut(&self.agent) {
            *n -= 1;
            if *n == 0 {
                state.by_agent.remove(&self.agent);
            }
        }
        drop(state);
        self.slots.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_agent_cannot_take_every_slot() {
        let slots = Slots::new(4, 2);
        let _a = (slots.acquire("greedy", true).unwrap(), slots.acquire("greedy", true).unwrap());
        assert!(matches!(slots.acquire("greedy", true), Err(Busy::AgentAtLimit { running: 2, .. })));
        let _b = slots.acquire("other", true).unwrap();
        assert_eq!(slots.in_use(), 3);
    }

    #[test]
    fn a_full_pool_refuses_after_a_short_wait_and_a_freed_slot_is_taken() {
        let slots = Slots::new(2, 2);
        let first = slots.acquire("a", true).unwrap();
        let _second = slots.acquire("b", true).unwrap();
        assert!(matches!(slots.acquire("c", false), Err(Busy::Full { waited_ms: 0, .. })));
        let started = Instant::now();
        assert!(matches!(slots.acquire("c", true), Err(Busy::Full { .. })));
        assert!(started.elapsed() >= Slots::MAX_WAIT);
        let waiter = {
            let slots = slots.clone();
            std::thread::spawn(move || slots.acquire("c", true).map(drop))
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(first);
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(slots.in_use(), 1);
    }
}
