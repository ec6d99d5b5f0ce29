//! The load generator behind `fuelhost bench`: N threads invoke one
//! artifact back to back for a fixed time against an embedded host, each
//! call fully charged; the report gives throughput, latency percentiles and
//! fuel burned per second and the per-call stage budget; [`run_tasks`] submits tasks at a steady rate
//! instead and reports how long they waited to start. Latencies are kept exactly (one `u64` per call)
//! and sorted once at the end, so the percentiles are not estimates.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::telemetry::{Stage, StageBudget};
use crate::{Asset, Host, Invocation, Limits, Manifest, Metering, ResourcePolicy};

/// The agent [`prepare`] makes to own the artifact.
pub const OWNER: &str = "owner";
/// The agent [`prepare`] funds to call it.
pub const CALLER: &str = "caller";

/// Make `host` ready to be driven: agents [`OWNER`] and [`CALLER`] (the
/// caller funded far beyond any run: each call holds its whole fuel limit
/// while it runs), and `component` uploaded as `owner/NAME@1` at price 1,
/// caller pays, metered by `metering`. Returns the artifact id.
pub fn prepare(host: &Host, name: &str, component: &[u8], metering: Metering) -> Result<String, String> {
    for agent in [OWNER, CALLER] {
        if !host.ledger().has_account(agent).map_err(|e| e.to_string())? {
            host.create_agent(agent).map_err(|e| e.to_string())?;
        }
    }
    host.mint("prepare-scrip", CALLER, Asset::Scrip, 1 << 50).map_err(|e| e.to_string())?;
    host.mint("prepare-fuel", CALLER, Asset::Fuel, 1 << 60).map_err(|e| e.to_string())?;
    let manifest = Manifest {
        owner: OWNER.try_into().map_err(|e: crate::InvalidAgentId| e.to_string())?,
        name: name.into(),
        version: "1".into(),
        price: 1,
        resource_policy: ResourcePolicy::CallerPays,
        description: String::new(),
        limits: Limits { fuel: 1 << 40, timeout_ms: 60_000, ..Limits::default() },
        metering,
        capabilities: Vec::new(),
        quality: None,
        command: Default::default(),
    };
    host.upload(manifest, component).map(|a| a.id).map_err(|e| e.to_string())
}

/// What to drive.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The calling agent (funded by the caller of [`run`]).
    pub caller: String,
    /// The artifact to invoke.
    pub artifact: String,
    /// Its input, the same for every call.
    pub input: Vec<u8>,
    /// Threads invoking at once.
    pub threads: usize,
    /// How long to keep invoking.
    pub duration: Duration,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Threads that invoked.
    pub threads: usize,
    /// Wall time from the first call to the last answer, seconds.
    pub seconds: f64,
    /// Calls that returned a report (whatever its outcome).
    pub invocations: u64,
    /// Of those, the successful ones.
    pub successes: u64,
    /// Calls the host refused (policy, budget, an error).
    pub errors: u64,
    /// The first refusal's message, if any.
    pub first_error: Option<String>,
    /// Invocations per second.
    pub per_second: f64,
    /// Latency percentiles of the invocations, microseconds.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// The slowest call.
    pub max_us: f64,
    /// Fuel the invocations burned, in total.
    pub fuel: u64,
    /// Fuel burned per second of wall time.
    pub fuel_per_second: f64,
    /// Where the settled calls' time went, stage by stage.
    #[serde(serialize_with = "stage_budget_us")]
    pub stages: StageBudget,
}

/// A stage budget as JSON: calls, and mean µs per call by stage.
fn stage_budget_us<S: serde::Serializer>(budget: &StageBudget, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(Stage::ALL.len() + 2))?;
    map.serialize_entry("calls", &budget.calls)?;
    for stage in Stage::ALL {
        map.serialize_entry(&format!("{}_us", stage.as_str()), &budget.per_call_us(stage))?;
    }
    map.serialize_entry("total_us", &budget.total_per_call_us())?;
    map.end()
}

struct ThreadResult {
    latencies_ns: Vec<u64>,
    successes: u64,
    errors: u64,
    first_error: Option<String>,
    fuel: u64,
}

/// The `q`th quantile (0..=1) of sorted `values`, nearest rank (0 when
/// there are none). Public for benches that report percentiles the same
/// way.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Drive `host` as `config` says and report.
pub fn run(host: &Host, config: &LoadConfig) -> LoadReport {
    let threads = config.threads.max(1);
    let stages_before = host.stage_budget();
    let started = Instant::now();
    let deadline = started + config.duration;
    let results: Vec<ThreadResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut r =
                        ThreadResult { latencies_ns: Vec::new(), successes: 0, errors: 0, first_error: None, fuel: 0 };
                    while Instant::now() < deadline {
                        let call = Instant::now();
                        let inv = Invocation::new(config.caller.clone(), config.artifact.clone(), config.input.clone());
                        match host.invoke(inv) {
                            Ok(report) => {
                                r.latencies_ns.push(call.elapsed().as_nanos() as u64);
                                r.fuel += report.resources_consumed.fuel;
                                r.successes += u64::from(report.success);
                            }
                            Err(e) => {
                                r.errors += 1;
                                r.first_error.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                    r
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a load thread panicked")).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies: Vec<u64> = results.iter().flat_map(|r| r.latencies_ns.iter().copied()).collect();
    latencies.sort_unstable();
    let invocations = latencies.len() as u64;
    let fuel: u64 = results.iter().map(|r| r.fuel).sum();
    let us = |ns: u64| ns as f64 / 1000.0;
    LoadReport {
        threads,
        seconds,
        invocations,
        successes: results.iter().map(|r| r.successes).sum(),
        errors: results.iter().map(|r| r.errors).sum(),
        first_error: results.iter().find_map(|r| r.first_error.clone()),
        per_second: invocations as f64 / seconds,
        p50_us: us(quantile(&latencies, 0.50)),
        p90_us: us(quantile(&latencies, 0.90)),
        p99_us: us(quantile(&latencies, 0.99)),
        max_us: us(latencies.last().copied().unwrap_or(0)),
        fuel,
        fuel_per_second: fuel as f64 / seconds,
        stages: host.stage_budget().since(&stages_before),
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "threads          {}", self.threads)?;
        writeln!(f, "seconds          {:.2}", self.seconds)?;
        writeln!(f, "invocations      {} ({} successful, {} refused)", self.invocations, self.successes, self.errors)?;
        writeln!(f, "per second       {:.0}", self.per_second)?;
        writeln!(
            f,
            "latency          p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
            self.p50_us, self.p90_us, self.p99_us, self.max_us
        )?;
        writeln!(f, "fuel per second  {:.0}", self.fuel_per_second)?;
        writeln!(f, "per call         {}", self.stages)?;
        if let Some(e) = &self.first_error {
            writeln!(f, "first refusal    {e}")?;
        }
        Ok(())
    }
}

/// What to drive through the scheduler.
#[derive(Debug, Clone)]
pub struct TaskLoadConfig {
    /// The submitting agent (funded by the caller of [`run_tasks`]).
    pub caller: String,
    /// The artifact each task invokes.
    pub artifact: String,
    /// Its input, the same for every task.
    pub input: Vec<u8>,
    /// Tasks submitted per second, steadily (open loop: a submitter that
    /// falls behind catches up at once rather than slowing the rate).
    pub rate: f64,
    /// Threads submitting, each at `rate / submitters` (a submission waits
    /// for its durable commit, so one thread alone caps the rate).
    pub submitters: usize,
    /// How long to keep submitting.
    pub duration: Duration,
}

/// What a task run measured.
#[derive(Debug, Clone, Serialize)]
pub struct TaskLoadReport {
    /// The rate asked for, tasks per second.
    pub rate: f64,
    /// Tasks accepted.
    pub submitted: u64,
    /// Submissions refused (a full queue, an error).
    pub refused: u64,
    /// Tasks that completed, and that ended otherwise.
    pub completed: u64,
    /// Tasks that ended failed, cancelled or timed out.
    pub failed: u64,
    /// Wall time from the first submission to the last task's end, seconds.
    pub seconds: f64,
    /// Tasks ended per second over that time.
    pub per_second: f64,
    /// Delay from submission to a worker taking the task, microseconds.
    pub start_p50_us: f64,
    /// 90th percentile.
    pub start_p90_us: f64,
    /// 99th percentile.
    pub start_p99_us: f64,
    /// The longest.
    pub start_max_us: f64,
}

/// Submit tasks to `host` (whose workers run them) at a steady rate, wait
/// for all of them to end, and report throughput and start delays.
pub fn run_tasks(host: &Host, config: &TaskLoadConfig) -> TaskLoadReport {
    let submitters = config.submitters.max(1);
    let per_thread = (config.rate / submitters as f64).max(0.001);
    let interval = Duration::from_secs_f64(1.0 / per_thread);
    let delays_before = host.task_start_delays().len();
    let started = Instant::now();
    let deadline = started + config.duration;
    let outcomes: Vec<(Vec<String>, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..submitters)
            .map(|t| {
                scope.spawn(move || {
                    let (mut ids, mut refused) = (Vec::new(), 0);
                    let mut next = started;
                    let mut i = 0u64;
                    while next < deadline {
                        if let Some(wait) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let id = format!("load-{}-{t}-{i}", started.elapsed().as_nanos());
                        let req = crate::TaskRequest::new(
                            config.caller.clone(),
                            config.artifact.clone(),
                            config.input.clone(),
                        )
                        .id(&id);
                        match host.submit_task(req) {
                            Ok(_) => ids.push(id),
                            Err(_) => refused += 1,
                        }
                        i += 1;
                        next += interval;
                    }
                    (ids, refused)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a submitter panicked")).collect()
    });
    let (mut completed, mut failed) = (0, 0);
    for id in outcomes.iter().flat_map(|(ids, _)| ids) {
        match host.wait_task(id, Duration::from_secs(600)).map(|t| t.state) {
            Ok(crate::TaskState::Completed) => completed += 1,
            _ => failed += 1,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut delays: Vec<u64> =
        host.task_start_delays().into_iter().skip(delays_before).map(|d| d.as_nanos() as u64).collect();
    delays.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    TaskLoadReport {
        rate: config.rate,
        submitted: outcomes.iter().map(|(ids, _)| ids.len() as u64).sum(),
        refused: outcomes.iter().map(|(_, r)| r).sum(),
        completed,
        failed,
        seconds,
        per_second: (completed + failed) as f64 / seconds,
        start_p50_us: us(quantile(&delays, 0.50)),
        start_p90_us: us(quantile(&delays, 0.90)),
        start_p99_us: us(quantile(&delays, 0.99)),
        start_max_us: us(delays.last().copied().unwrap_or(0)),
    }
}

impl std::fmt::Display for TaskLoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "rate asked       {:.0} tasks/s", self.rate)?;
        writeln!(f, "submitted        {} ({} refused)", self.submitted, self.refused)?;
        writeln!(f, "ended            {} completed, {} not", self.completed, self.failed)?;
        writeln!(f, "seconds          {:.2}", self.seconds)?;
        writeln!(f, "per second       {:.0}", self.per_second)?;
        writeln!(
            f,
            "submit -> start  p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
            self.start_p50_us, self.start_p90_us, self.start_p99_us, self.start_max_us
        )
    }
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!((quantile(&v, 0.5), quantile(&v, 0.9), quantile(&v, 0.99), quantile(&v, 1.0)), (50, 90, 99, 100));
        assert_eq!(quantile(&[7], 0.99), 7);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
