//! The run queue: which pending task runs next.
//!
//! The rule, in order:
//!
//! 1. **Priority, with aging.** A task's effective class is its priority
//!    class (critical 0, high 1, normal 2, low 3) minus one for every
//!    `aging_step` it has waited, down to critical. The best effective
//!    class runs first, so a low task that has waited three steps competes
//!    as critical: nothing starves.
//! 2. **Agents take turns.** Among the tasks of the best effective class,
//!    the agent served least recently goes first, so one agent flooding
//!    the queue gets one turn per round like every other agent with work
//!    at that class.
//! 3. **First come, first served** within one agent and class.
//!
//! A task whose dependencies have not all completed is *parked*: it counts
//! in its agent's depth but is never taken until `unpark` queues it, aged
//! from when it was submitted.
//!
//! An agent may have at most `max_depth` tasks queued or parked; beyond
//! that `push` and `park` refuse. A caller-supplied predicate skips agents that may not start
//! another task now (their concurrency cap).

use std::collections::{HashMap, VecDeque};

/// Four priority classes, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Runs before everything else.
    Critical = 0,
    /// Before normal and low.
    High = 1,
    /// The default.
    Normal = 2,
    /// When nothing more urgent waits (aging still brings it forward).
    Low = 3,
}

impl Priority {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    /// The priority named `s` (`critical`, `high`, `normal`, `low`).
    pub fn parse(s: &str) -> Option<Priority> {
        [Priority::Critical, Priority::High, Priority::Normal, Priority::Low].into_iter().find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    queued_ms: i64,
    seq: u64,
}

#[derive(Default)]
struct AgentQueue {
    classes: [VecDeque<Entry>; 4],
}

impl AgentQueue {
    fn len(&self) -> usize {
        self.classes.iter().map(VecDeque::len).sum()
    }
}

/// Why a task was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueFull {
    /// The agent already has `max_depth` tasks queued.
    Depth {
        /// The agent.
        agent: String,
        /// Its limit.
        max_depth: usize,
    },
}

/// A task waiting out a retry's backoff before it may be queued.
#[derive(Debug, Clone)]
struct Parked {
    agent: String,
    priority: Priority,
    queued_ms: i64,
}

struct Delayed {
    due_ms: i64,
    agent: String,
    id: String,
    priority: Priority,
}

/// See the module docs.
pub struct RunQueue {
    agents: HashMap<String, AgentQueue>,
    /// Tasks that may not run before their due time (retries).
    delayed: Vec<Delayed>,
    /// Task id → its agent, for removal.
    owner: HashMap<String, String>,
    /// Tasks waiting for their dependencies, by id.
    parked: HashMap<String, Parked>,
    /// Parked tasks per agent.
    parked_per_agent: HashMap<String, usize>,
    /// Places held per agent for tasks being recorded ([`RunQueue::reserve`]).
    reserved: HashMap<String, usize>,
    /// The pop count when each agent was last served (absent: never);
    /// kept while its queue is empty, so emptying it buys no extra turn.
    served: HashMap<String, u64>,
    aging_step_ms: i64,
    max_depth: usize,
    seq: u64,
    pops: u64,
}

impl RunQueue {
    /// An empty queue: tasks age one class per `aging_step_ms`, and an
    /// agent may queue at most `max_depth` tasks.
    pub fn new(aging_step_ms: i64, max_depth: usize) -> RunQueue {
        RunQueue {
            agents: HashMap::new(),
            delayed: Vec::new(),
            owner: HashMap::new(),
            parked: HashMap::new(),
            parked_per_agent: HashMap::new(),
            reserved: HashMap::new(),
            served: HashMap::new(),
            aging_step_ms: aging_step_ms.max(1),
            max_depth,
            seq: 0,
            pops: 0,
        }
    }

    /// Hold a place in `agent`'s depth for a task about to be recorded
    /// (without the queue's lock, which is not held across a database round
    /// trip); refused like [`RunQueue::push`] when the depth is full. Given
    /// back by [`RunQueue::unreserve`], before the task is queued with
    /// [`RunQueue::restore`] or its recording failed.
    pub fn reserve(&mut self, agent: &str) -> Result<(), QueueFull> {
        if self.depth(agent) >= self.max_depth {
            return Err(QueueFull::Depth { agent: agent.to_string(), max_depth: self.max_depth });
        }
        *self.reserved.entry(agent.to_string()).or_default() += 1;
        Ok(())
    }

    /// Give back a place [`RunQueue::reserve`] held.
    pub fn unreserve(&mut self, agent: &str) {
        if let Some(n) = self.reserved.get_mut(agent) {
            *n -= 1;
            if *n == 0 {
                self.reserved.remove(agent);
            }
        }
    }

    /// Queue task `id` of `agent`, waiting since `queued_ms`.
    pub fn push(&mut self, agent: &str, id: &str, priority: Priority, queued_ms: i64) -> Result<(), QueueFull> {
        if self.owner.contains_key(id) || self.parked.contains_key(id) {
            return Ok(());
        }
        if self.depth(agent) >= self.max_depth {
            return Err(QueueFull::Depth { agent: agent.to_string(), max_depth: self.max_depth });
        }
        let q = self.agents.entry(agent.to_string()).or_default();
        self.seq += 1;
        q.classes[priority as usize].push_back(Entry { id: id.to_string(), queued_ms, seq: self.seq });
        self.owner.insert(id.to_string(), agent.to_string());
        Ok(())
    }

    /// Put back task `id` of `agent`, accepted already (before a restart,
    /// by another host, or under a place [`RunQueue::reserve`] held):
    /// queued (or parked, if it waits for dependencies) whatever the depth
    /// limit says now, since it was accepted under it.
    pub fn restore(&mut self, agent: &str, id: &str, priority: Priority, queued_ms: i64, parked: bool) {
        if self.owner.contains_key(id) || self.parked.contains_key(id) {
            return;
        }
        if parked {
            *self.parked_per_agent.entry(agent.to_string()).or_default() += 1;
            self.parked.insert(id.to_string(), Parked { agent: agent.to_string(), priority, queued_ms });
        } else {
            self.seq += 1;
            let q = self.agents.entry(agent.to_string()).or_default();
            q.classes[priority as usize].push_back(Entry { id: id.to_string(), queued_ms, seq: self.seq });
            self.owner.insert(id.to_string(), agent.to_string());
        }
    }

    /// Park task `id` of `agent` until its dependencies complete: it counts
    /// in the agent's depth, and is refused like `push` when that is full.
    pub fn park(&mut self, agent: &str, id: &str, priority: Priority, queued_ms: i64) -> Result<(), QueueFull> {
        if self.owner.contains_key(id) || self.parked.contains_key(id) {
            return Ok(());
        }
        if self.depth(agent) >= self.max_depth {
            return Err(QueueFull::Depth { agent: agent.to_string(), max_depth: self.max_depth });
        }
        *self.parked_per_agent.entry(agent.to_string()).or_default() += 1;
        self.parked.insert(id.to_string(), Parked { agent: agent.to_string(), priority, queued_ms });
        Ok(())
    }

    /// Queue parked task `id` (its dependencies completed), aged from when
    /// it was parked; whether it was parked.
    pub fn unpark(&mut self, id: &str) -> bool {
        let Some(p) = self.take_parked(id) else { return false };
        self.seq += 1;
        let q = self.agents.entry(p.agent.clone()).or_default();
        q.classes[p.priority as usize].push_back(Entry { id: id.to_string(), queued_ms: p.queued_ms, seq: self.seq });
        self.owner.insert(id.to_string(), p.agent);
        true
    }

    fn take_parked(&mut self, id: &str) -> Option<Parked> {
        let p = self.parked.remove(id)?;
        if let Some(n) = self.parked_per_agent.get_mut(&p.agent) {
            *n -= 1;
            if *n == 0 {
                self.parked_per_agent.remove(&p.agent);
            }
        }
        Some(p)
    }

    /// Whether any task is parked.
    pub fn has_parked(&self) -> bool {
        !self.parked.is_empty()
    }

    /// Whether task `id` is parked.
    pub fn is_parked(&self, id: &str) -> bool {
        self.parked.contains_key(id)
    }

    /// Queue task `id` of `agent` once `due_ms` has come (a retry after
    /// its backoff); it ages from then. Never refused: the task was
    /// accepted already.
    pub fn push_after(&mut self, agent: &str, id: &str, priority: Priority, due_ms: i64) {
        self.delayed.push(Delayed { due_ms, agent: agent.to_string(), id: id.to_string(), priority });
    }

    /// When the next delayed task comes due, if any.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.delayed.iter().map(|d| d.due_ms).min()
    }

    fn release_due(&mut self, now_ms: i64) {
        let (due, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.delayed).into_iter().partition(|d| d.due_ms <= now_ms);
        self.delayed = waiting;
        for d in due {
            self.seq += 1;
            let q = self.agents.entry(d.agent.clone()).or_default();
            q.classes[d.priority as usize].push_back(Entry { id: d.id.clone(), queued_ms: d.due_ms, seq: self.seq });
            self.owner.insert(d.id, d.agent);
        }
    }

    /// Take the task that runs next at `now_ms`, among agents `may_start`
    /// allows; `None` when there is none.
    pub fn pop(&mut self, now_ms: i64, may_start: impl Fn(&str) -> bool) -> Option<(String, String)> {
        self.release_due(now_ms);
        let mut best: Option<((usize, u64, u64), &str, usize)> = None;
        for (agent, q) in &self.agents {
            if q.len() == 0 || !may_start(agent) {
                continue;
            }
            for (class, entries) in q.classes.iter().enumerate() {
                let Some(head) = entries.front() else { continue };
                let aged = ((now_ms - head.queued_ms).max(0) / self.aging_step_ms) as usize;
                let last_served = self.served.get(agent).copied().unwrap_or(0);
                let key = (class.saturating_sub(aged), last_served, head.seq);
                if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
                    best = Some((key, agent.as_str(), class));
                }
            }
        }
        let (_, agent, class) = best?;
        let agent = agent.to_string();
        self.pops += 1;
        self.served.insert(agent.clone(), self.pops);
        let q = self.agents.get_mut(&agent).expect("chosen above");
        let entry = q.classes[class].pop_front().expect("chosen above");
        if q.len() == 0 {
            self.agents.remove(&agent);
        }
        self.owner.remove(&entry.id);
        Some((agent, entry.id))
    }

    /// Whether task `id` is in the queue (waiting its turn, its backoff,
    /// or its dependencies).
    pub fn contains(&self, id: &str) -> bool {
        self.owner.contains_key(id) || self.parked.contains_key(id) || self.delayed.iter().any(|d| d.id == id)
    }

    /// Every task in the queue, in no order.
    pub fn ids(&self) -> Vec<String> {
        let delayed = self.delayed.iter().map(|d| d.id.clone());
        self.owner.keys().cloned().chain(self.parked.keys().cloned()).chain(delayed).collect()
    }

    /// Take task `id` out of the queue; whether it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        if self.take_parked(id).is_some() {
            return true;
        }
        let delayed = self.delayed.len();
        self.delayed.retain(|d| d.id != id);
        if self.delayed.len() != delayed {
            return true;
        }
        let Some(agent) = self.owner.remove(id) else { return false };
        if let Some(q) = self.agents.get_mut(&agent) {
            for entries in &mut q.classes {
                entries.retain(|e| e.id != id);
            }
            if q.len() == 0 {
                self.agents.remove(&agent);
            }
        }
        true
    }

    /// Tasks queued.
    pub fn len(&self) -> usize {
        self.owner.len()
    }

    /// Whether no task is queued.
    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    /// Most tasks one agent may have queued.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Tasks `agent` has queued or parked.
    pub fn depth(&self, agent: &str) -> usize {
        self.agents.get(agent).map_or(0, AgentQueue::len)
            + self.parked_per_agent.get(agent).copied().unwrap_or(0)
            + self.reserved.get(agent).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut RunQueue, now: i64) -> Vec<String> {
        std::iter::from_fn(|| q.pop(now, |_| true).map(|(_, id)| id)).collect()
    }

    #[test]
    fn priority_decides_then_arrival() {
        let mut q = RunQueue::new(1_000_000, 100);
        q.push("a", "low", Priority::Low, 0).unwrap();
        q.push("a", "normal-1", Priority::Normal, 0).unwrap();
        q.push("a", "critical", Priority::Critical, 0).unwrap();
        q.push("a", "normal-2", Priority::Normal, 0).unwrap();
        assert_eq!(drain(&mut q, 0), ["critical", "normal-1", "normal-2", "low"]);
    }

    /// A low task that has waited three aging steps runs before a stream
    /// of fresh critical work from others: it is never starved.
    #[test]
    fn aging_brings_a_waiting_low_task_forward() {
        let mut q = RunQueue::new(100, 1_000);
        q.push("patient", "old-low", Priority::Low, 0).unwrap();
        let mut order = Vec::new();
        for t in 0..10 {
            let now = t * 50;
            q.push("busy", &format!("crit-{t}"), Priority::Critical, now).unwrap();
            order.push(q.pop(now, |_| true).unwrap().1);
        }
        let at = order.iter().position(|id| id == "old-low").expect("the low task ran");
        assert!(at <= 7, "ran as {at}th: {order:?}");
    }

    /// One agent flooding the queue gets one turn per round: another
    /// agent's task at the same class runs next, not after the flood.
    #[test]
    fn a_flooding_agent_gets_its_turn_and_no_more() {
        let mut q = RunQueue::new(1_000_000, 1_000);
        for i in 0..500 {
            q.push("flood", &format!("f{i}"), Priority::Normal, 0).unwrap();
        }
        assert_eq!(q.pop(0, |_| true).unwrap().1, "f0");
        q.push("quiet", "q0", Priority::Normal, 1).unwrap();
        assert_eq!(q.pop(1, |_| true).unwrap().1, "q0");
        q.push("quiet", "q1", Priority::Normal, 2).unwrap();
        q.push("quiet", "q2", Priority::Normal, 2).unwrap();
        let next: Vec<_> = (0..4).map(|_| q.pop(2, |_| true).unwrap().1).collect();
        assert_eq!(next, ["f1", "q1", "f2", "q2"]);
    }

    #[test]
    fn a_reserved_place_counts_in_the_depth_until_given_back() {
        let mut q = RunQueue::new(1_000, 2);
        q.reserve("a").unwrap();
        q.push("a", "1", Priority::Normal, 0).unwrap();
        assert_eq!(q.reserve("a"), Err(QueueFull::Depth { agent: "a".into(), max_depth: 2 }));
        assert_eq!(q.push("a", "2", Priority::Normal, 0), Err(QueueFull::Depth { agent: "a".into(), max_depth: 2 }));
        q.unreserve("a");
        q.restore("a", "2", Priority::Normal, 0, false);
        assert_eq!(q.depth("a"), 2);
        q.unreserve("a");
        assert_eq!(q.depth("a"), 2, "nothing to give back: the count stays");
    }

    #[test]
    fn depth_is_limited_per_agent_and_removal_frees_room() {
        let mut q = RunQueue::new(1_000, 2);
        q.push("a", "1", Priority::Normal, 0).unwrap();
        q.push("a", "2", Priority::Normal, 0).unwrap();
        assert_eq!(q.push("a", "3", Priority::Normal, 0), Err(QueueFull::Depth { agent: "a".into(), max_depth: 2 }));
        q.push("b", "4", Priority::Normal, 0).unwrap();
        assert!(q.remove("1"));
        assert!(!q.remove("1"));
        q.push("a", "3", Priority::Normal, 0).unwrap();
        assert_eq!((q.len(), q.depth("a")), (3, 2));
    }

    /// A retry waits out its backoff, then queues like any task; it can be
    /// taken out while it waits.
    #[test]
    fn a_delayed_task_runs_only_once_due() {
        let mut q = RunQueue::new(1_000, 10);
        q.push_after("a", "retry", Priority::Critical, 100);
        q.push_after("a", "dropped", Priority::Critical, 100);
        assert!(q.remove("dropped"));
        q.push("b", "now", Priority::Low, 0).unwrap();
        assert_eq!(q.next_due_ms(), Some(100));
        assert_eq!(q.pop(50, |_| true).unwrap().1, "now");
        assert_eq!(q.pop(99, |_| true), None);
        assert_eq!(q.pop(100, |_| true).unwrap().1, "retry");
        assert_eq!((q.pop(200, |_| true), q.next_due_ms()), (None, None));
    }

    /// A parked task counts in its agent's depth, is never taken while
    /// parked, and once unparked competes aged from when it was parked.
    #[test]
    fn a_parked_task_waits_counts_and_keeps_its_age() {
        let mut q = RunQueue::new(1_000, 2);
        q.park("a", "later", Priority::Low, 0).unwrap();
        q.push("a", "now", Priority::Normal, 5_000).unwrap();
        assert_eq!(q.park("a", "x", Priority::Low, 0), Err(QueueFull::Depth { agent: "a".into(), max_depth: 2 }));
        assert_eq!(q.pop(5_000, |_| true).unwrap().1, "now");
        assert_eq!(q.pop(5_000, |_| true), None, "parked tasks are not taken");
        q.push("b", "fresh", Priority::Normal, 5_000).unwrap();
        assert!(q.is_parked("later") && q.unpark("later") && !q.unpark("later"));
        assert_eq!(q.pop(5_000, |_| true).unwrap().1, "later", "five steps of waiting: low competes as critical");
        q.park("a", "gone", Priority::Low, 0).unwrap();
        assert!(q.remove("gone"));
        assert_eq!(q.depth("a"), 0);
    }

    /// An agent at its concurrency cap is skipped, not blocking others.
    #[test]
    fn an_agent_that_may_not_start_is_skipped() {
        let mut q = RunQueue::new(1_000, 10);
        q.push("capped", "c", Priority::Critical, 0).unwrap();
        q.push("free", "f", Priority::Low, 0).unwrap();
        assert_eq!(q.pop(0, |a| a != "capped").unwrap().1, "f");
        assert_eq!(q.pop(0, |a| a != "capped"), None);
        assert_eq!(q.pop(0, |_| true).unwrap().1, "c");
    }
}
