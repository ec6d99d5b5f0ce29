//! Metrics in the Prometheus text format: the Agent Fabric seed's
//! `agent_fabric_*` metrics under the `fuelhost_` prefix, plus invocation
//! outcomes and fuel per artifact.
//!
//! Two sources. What the pipeline does (settled invocations, policy
//! decisions) is counted in process, since the host started. What the
//! ledger keeps (budget usage of the allocations in force, LLM tokens
//! reported with `record_usage`) is read from the ledger at render time,
//! so it is exact whoever changed it and survives restarts. Rendered on
//! demand (`GET /metrics`, `Host::metrics_text`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Mutex;

use fuelhost_ledger::{Allocation, Ledger, Resource};

/// Upper bounds of the task duration histogram, seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Counts {
    tasks: BTreeMap<(String, String), u64>,
    invocations: BTreeMap<(String, String), u64>,
    fuel_by_payer: BTreeMap<String, u64>,
    fuel_by_artifact: BTreeMap<String, u64>,
    decisions: BTreeMap<String, u64>,
    agents: BTreeSet<String>,
    duration_buckets: [u64; BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
}

/// The host's counters.
#[derive(Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
    /// Time per pipeline stage, summed over settled calls.
    pub(crate) stages: super::StageTotals,
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One settled invocation.
    pub fn invocation(&self, caller: &str, payer: &str, artifact: &str, outcome: &str, fuel: u64, seconds: f64) {
        let mut c = self.lock();
        *c.tasks.entry((caller.to_string(), outcome.to_string())).or_default() += 1;
        *c.invocations.entry((artifact.to_string(), outcome.to_string())).or_default() += 1;
        *c.fuel_by_payer.entry(payer.to_string()).or_default() += fuel;
        *c.fuel_by_artifact.entry(artifact.to_string()).or_default() += fuel;
        c.agents.insert(caller.to_string());
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                c.duration_buckets[i] += 1;
            }
        }
        c.duration_sum += seconds;
        c.duration_count += 1;
    }

    /// One policy decision (`allow`, `deny`, `require_approval`).
    pub fn decision(&self, decision: &str) {
        *self.lock().decisions.entry(decision.to_string()).or_default() += 1;
    }

    /// Everything, in the Prometheus text exposition format; the
    /// ledger-backed families are read from `ledger` now. If the ledger
    /// cannot be read, those families are rendered without samples and the
    /// failure is logged: a scrape still gets the in-process counters.
    pub fn render(
        &self,
        ledger: &dyn Ledger,
        scheduler: &crate::scheduler::SchedulerSnapshot,
        agents: &[crate::liveness::AgentHealth],
        artifacts: ArtifactCounts,
    ) -> String {
        let allocations = ledger.allocations_in_force().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "metrics: reading the allocations in force failed");
            Vec::new()
        });
        let llm_tokens = ledger.reported_usage(Resource::LlmTokens).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "metrics: reading the reported LLM tokens failed");
            Vec::new()
        });
        let mut out = Exposition::default();
        self.lock().families(&mut out, &llm_tokens, &allocations);
        stage_family(&mut out, &self.stages.snapshot());
        scheduler_families(&mut out, scheduler);
        agent_families(&mut out, agents);
        out.family(
            "fuelhost_artifacts",
            "gauge",
            "Artifacts registered, with their code loaded, and still to compile.",
            vec![
                format!("{{state=\"registered\"}} {}", artifacts.registered),
                format!("{{state=\"loaded\"}} {}", artifacts.loaded),
                format!("{{state=\"compiling\"}} {}", artifacts.compiling),
            ],
        );
        out.0
    }
}

/// The registry's counts, for `fuelhost_artifacts`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ArtifactCounts {
    /// Artifacts registered.
    pub registered: usize,
    /// With their code loaded.
    pub loaded: usize,
    /// Still to compile (after a start with a cold compile cache).
    pub compiling: usize,
}

/// The Prometheus text exposition being written.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    /// One metric family: its help, its type, its samples (`rows`, each
    /// the labels and value that follow the name).
    fn family(&mut self, name: &str, kind: &str, help: &str, rows: Vec<String>) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for r in rows {
            let _ = writeln!(self.0, "{name}{r}");
        }
    }
}

impl Counts {
    /// The families of settled invocations, fuel, tokens, budgets, policy
    /// decisions and call durations.
    fn families(
        &self,
        out: &mut Exposition,
        llm_tokens: &[(fuelhost_ledger::AgentId, u64)],
        allocations: &[Allocation],
    ) {
        let c = self;
        out.family(
            "fuelhost_tasks_total",
            "counter",
            "Invocations settled, by calling agent and outcome.",
            c.tasks
                .iter()
                .map(|((a, st), v)| format!("{{agent_id=\"{}\",status=\"{}\"}} {v}", escape(a), escape(st)))
                .collect(),
        );
        out.family(
            "fuelhost_invocations_total",
            "counter",
            "Invocations settled, by artifact and outcome.",
            c.invocations
                .iter()
                .map(|((a, o), v)| format!("{{artifact=\"{}\",outcome=\"{}\"}} {v}", escape(a), escape(o)))
                .collect(),
        );
        out.family(
            "fuelhost_fuel_total",
            "counter",
            "Fuel charged, by paying agent.",
            c.fuel_by_payer.iter().map(|(a, v)| format!("{{agent_id=\"{}\"}} {v}", escape(a))).collect(),
        );
        out.family(
            "fuelhost_fuel_consumed_total",
            "counter",
            "Fuel charged, by artifact.",
            c.fuel_by_artifact.iter().map(|(a, v)| format!("{{artifact=\"{}\"}} {v}", escape(a))).collect(),
        );
        out.family(
            "fuelhost_llm_tokens_total",
            "counter",
            "LLM tokens reported with record_usage, by agent (from the ledger: since it began).",
            llm_tokens.iter().map(|(a, v)| format!("{{agent=\"{}\"}} {v}", escape(a.as_str()))).collect(),
        );
        out.family(
            "fuelhost_budget_usage_ratio",
            "gauge",
            "Share of this period's quota used, per allocation in force and resource (caps: share in use now).",
            allocations.iter().flat_map(budget_usage_rows).collect(),
        );
        out.family(
            "fuelhost_policy_decisions_total",
            "counter",
            "Policy chain decisions, by result.",
            c.decisions.iter().map(|(d, v)| format!("{{decision=\"{}\"}} {v}", escape(d))).collect(),
        );
        out.family(
            "fuelhost_agents_active",
            "gauge",
            "Agents that invoked since the host started.",
            vec![format!(" {}", c.agents.len())],
        );
        let mut rows: Vec<String> =
            BUCKETS.iter().zip(c.duration_buckets.iter()).map(|(b, v)| format!("_bucket{{le=\"{b}\"}} {v}")).collect();
        rows.push(format!("_bucket{{le=\"+Inf\"}} {}", c.duration_count));
        rows.push(format!("_sum {}", c.duration_sum));
        rows.push(format!("_count {}", c.duration_count));
        out.family("fuelhost_task_duration_seconds", "histogram", "Wall-clock time of invocations in the guest.", rows);
    }
}

/// The scheduler's families: tasks by state, retries, circuit breakers.
/// Seconds spent in each pipeline stage by the calls settled, and how
/// many calls that is.
fn stage_family(out: &mut Exposition, budget: &super::StageBudget) {
    out.family(
        "fuelhost_invocation_stage_seconds_total",
        "counter",
        "Wall time spent in each pipeline stage by settled invocations.",
        super::Stage::ALL
            .iter()
            .map(|&s| format!("{{stage=\"{}\"}} {}", s.as_str(), budget.nanos[s as usize] as f64 / 1e9))
            .collect(),
    );
    out.family(
        "fuelhost_invocation_stage_calls_total",
        "counter",
        "Settled invocations whose stages are counted in fuelhost_invocation_stage_seconds_total.",
        vec![format!(" {}", budget.calls)],
    );
}

fn scheduler_families(out: &mut Exposition, scheduler: &crate::scheduler::SchedulerSnapshot) {
    out.family(
        "fuelhost_scheduler_tasks",
        "gauge",
        "Scheduled tasks now, by state (queued: ready to run).",
        vec![
            format!("{{state=\"queued\"}} {}", scheduler.queued),
            format!("{{state=\"running\"}} {}", scheduler.running),
        ],
    );
    out.family(
        "fuelhost_task_retries_total",
        "counter",
        "Task retries scheduled since the host started, by artifact.",
        scheduler.retries.iter().map(|(a, v)| format!("{{artifact=\"{}\"}} {v}", escape(a))).collect(),
    );
    out.family(
        "fuelhost_circuit_breaker_state",
        "gauge",
        "Each artifact's circuit breaker: 0 closed, 1 half-open, 2 open.",
        scheduler
            .breakers
            .iter()
            .map(|b| {
                let v = match b.state {
                    crate::scheduler::BreakerState::Closed => 0,
                    crate::scheduler::BreakerState::HalfOpen => 1,
                    crate::scheduler::BreakerState::Open => 2,
                };
                format!("{{artifact=\"{}\"}} {v}", escape(&b.artifact))
            })
            .collect(),
    );
    out.family(
        "fuelhost_circuit_breaker_opened_total",
        "counter",
        "Times each artifact's circuit breaker opened since the host started.",
        scheduler
            .breakers
            .iter()
            .map(|b| format!("{{artifact=\"{}\"}} {}", escape(&b.artifact), b.times_opened))
            .collect(),
    );
}

/// Each agent's health by its heartbeats.
fn agent_families(out: &mut Exposition, agents: &[crate::liveness::AgentHealth]) {
    out.family(
        "fuelhost_agent_healthy",
        "gauge",
        "1 while an agent's last heartbeat is within its TTL, 0 after; agents that never sent one are absent.",
        agents
            .iter()
            .map(|a| {
                let v = u8::from(a.health == crate::liveness::Health::Healthy);
                format!("{{agent=\"{}\"}} {v}", escape(&a.agent))
            })
            .collect(),
    );
}

/// One `{agent, allocation, resource} ratio` row per quota of `a`: used
/// over this period's limit (quota plus carry), or for a cap (memory,
/// concurrency) what is held now over the cap. A zero limit reads 1 once
/// anything is used, like [`fuelhost_ledger::QuotaUsage::percent_used`].
fn budget_usage_rows(a: &Allocation) -> Vec<String> {
    a.quotas
        .iter()
        .map(|q| {
            let used = if q.resource.is_cap() { q.held } else { q.used };
            let limit = q.limit();
            let ratio = match (used, limit) {
                (0, _) => 0.0,
                (_, 0) => 1.0,
                (used, limit) => used as f64 / limit as f64,
            };
            format!(
                "{{agent=\"{}\",allocation=\"{}\",resource=\"{}\"}} {ratio}",
                escape(a.agent.as_str()),
                escape(&a.id),
                q.resource
            )
        })
        .collect()
}
