//! Group commit: many threads' jobs applied in one transaction.
//!
//! A thread submits its job and either finds no commit under way, and
//! becomes the *leader*: it takes every job queued so far, runs them as one
//! batch (one transaction, one fsync) and hands each thread its own result;
//! or it waits for a leader to do so. There is no timer: a batch is whatever
//! queued while the previous one was committing, so a lone caller pays no
//! delay and a crowd shares each fsync. A job's result is returned only
//! after its batch committed, so durability per call is unchanged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a waiting thread watches for the batch under way to end
/// before it sleeps: about one commit. Waking a sleeping thread on
/// another core costs tens of microseconds, which with few threads is on
/// every call's path.
const WATCH_FOR: Duration = Duration::from_micros(60);

struct Queue<J, R> {
    next_ticket: u64,
    waiting: Vec<(u64, J)>,
    finished: HashMap<u64, R>,
    leading: bool,
    /// Threads watching for the end of the batch (see [`WATCH_FOR`]).
    watching: usize,
    /// How many jobs the last batch took: more than one, and batches form
    /// by themselves (threads outnumber what one commit serves), so a
    /// waiting thread sleeps rather than take a core from them.
    last_batch: usize,
}

/// Batches jobs of type `J` into runs that yield one `R` per job.
pub struct GroupCommit<J, R> {
    queue: Mutex<Queue<J, R>>,
    done: Condvar,
    /// Counts batches that ended: what watching threads look at.
    ended: AtomicU64,
    /// How many threads may watch at once: one fewer than the cores, so
    /// that watching never takes a core from the batch's leader.
    watchers: usize,
}

impl<J, R> Default for GroupCommit<J, R> {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        GroupCommit {
            queue: Mutex::new(Queue {
                next_ticket: 0,
                waiting: Vec::new(),
                finished: HashMap::new(),
                leading: false,
                watching: 0,
                last_batch: 0,
            }),
            done: Condvar::new(),
            ended: AtomicU64::new(0),
            watchers: cores.saturating_sub(1),
        }
    }
}

impl<J, R> GroupCommit<J, R> {
    fn lock(&self) -> MutexGuard<'_, Queue<J, R>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Submit `job` and wait for its result. `run` applies a batch and
    /// returns one result per job, in order; `failed` is the result given
    /// to every job of a batch whose run panicked or lost results.
    pub fn submit(&self, job: J, run: impl FnOnce(Vec<J>) -> Vec<R>, failed: impl Fn() -> R) -> R {
        let mut queue = self.lock();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push((ticket, job));
        let mut run = Some(run);
        loop {
            if let Some(result) = queue.finished.remove(&ticket) {
                return result;
            }
            if queue.leading && queue.watching < self.watchers && queue.last_batch <= 1 {
                // Watch for the batch to end instead of sleeping at once.
                let seen = self.ended.load(Ordering::Acquire);
                queue.watching += 1;
                drop(queue);
                let since = Instant::now();
                while self.ended.load(Ordering::Acquire) == seen && since.elapsed() < WATCH_FOR {
                    std::hint::spin_loop();
                }
                queue = self.lock();
                queue.watching -= 1;
                if self.ended.load(Ordering::Acquire) != seen {
                    continue;
                }
            }
            if queue.leading {
                queue = self.done.wait(queue).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead: our own job is in the batch, so we lead at most once.
            queue.leading = true;
            let (tickets, jobs): (Vec<u64>, Vec<J>) = std::mem::take(&mut queue.waiting).into_iter().unzip();
            let batch_size = jobs.len();
            drop(queue);
            let run = run.take().expect("a thread leads at most one batch");
            let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(jobs)));
            queue = self.lock();
            let mut results = match results {
                Ok(r) if r.len() == tickets.len() => r.into_iter().map(Some).collect::<Vec<_>>(),
                _ => tickets.iter().map(|_| None).collect(),
            };
            for (t, r) in tickets.into_iter().zip(results.iter_mut()) {
                queue.finished.insert(t, r.take().unwrap_or_else(&failed));
            }
            queue.leading = false;
            queue.last_batch = batch_size;
            self.ended.fetch_add(1, Ordering::Release);
            self.done.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::GroupCommit;

    /// Every job gets its own result back, and concurrent jobs share runs.
    #[test]
    fn every_job_gets_its_result_and_batches_form() {
        let gc: GroupCommit<u64, u64> = GroupCommit::default();
        let runs = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let (gc, runs) = (&gc, &runs);
                s.spawn(move || {
                    for i in 0..200u64 {
                        let job = t * 1_000 + i;
                        let r = gc.submit(
                            job,
                            |jobs| {
                                runs.fetch_add(1, Ordering::Relaxed);
                                std::thread::yield_now();
                                jobs.into_iter().map(|j| j * 2).collect()
                            },
                            || u64::MAX,
                        );
                        assert_eq!(r, job * 2);
                    }
                });
            }
        });
        assert!(runs.load(Ordering::Relaxed) <= 1_600);
    }

    /// A run that panics fails its batch, and the next batch still runs.
    #[test]
    fn a_panicking_run_fails_its_batch_only() {
        let gc: GroupCommit<u32, Result<u32, ()>> = GroupCommit::default();
        let r = gc.submit(1, |_| panic!("storage exploded"), || Err(()));
        assert_eq!(r, Err(()));
        assert_eq!(gc.submit(2, |jobs| jobs.into_iter().map(Ok).collect(), || Err(())), Ok(2));
    }
}
