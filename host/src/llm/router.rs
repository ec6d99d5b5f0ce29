//! Which provider answers a request, in what order the others are tried,
//! and what the calls so far say of each.
//!
//! Every (provider, model) pair that can take the request is a candidate:
//! it serves the model named (`model` or `provider/model`), or any model
//! for a routed request; its context holds the prompt's estimate plus
//! `max-tokens`; its breaker is closed. Candidates are ranked by the
//! scheduler's scorer ([`crate::scheduler::route_choose`], the same
//! weights of cost, latency, quality and reliability task routing uses):
//! cost is the provider's price per 1,000 tokens, latency the mean of its
//! latest answers (its hint until it has some), reliability the share of
//! its latest requests that were answered. The best is tried first, the
//! next on failure, and so on.
//!
//! A provider's breaker opens after [`BREAKER_FAILURES`] failures in a
//! row, for [`BREAKER_OPEN`]: its requests are not tried meanwhile, then
//! one is, and an answer closes it again.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::provider::LlmProvider;
use crate::scheduler::{route_choose, Candidate, RouteMode};

/// Failures in a row that open a provider's breaker.
pub const BREAKER_FAILURES: u32 = 3;
/// How long an open breaker keeps a provider out.
pub const BREAKER_OPEN: Duration = Duration::from_secs(30);
/// Requests remembered per provider for its latency and reliability.
const REMEMBERED: usize = 20;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelChoice {
    /// A model id, or `provider/model`.
    Named(String),
    /// Any model, ranked in this mode.
    Routed(RouteMode),
}

/// Why no provider can be tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoProvider {
    /// No configured provider serves what was named, or none is configured.
    Unknown(String),
    /// Every provider that serves it has a context too small for it.
    TooLarge(String),
    /// Every provider that could take it has its breaker open.
    Open(String),
}

/// One provider to try, and the model to ask it for.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its position among the providers (for [`Providers::record`]).
    pub index: usize,
    /// The model.
    pub model: String,
}

#[derive(Default)]
struct Stats {
    /// Wall times of its latest answers, ms.
    latencies: VecDeque<f64>,
    /// Whether each of its latest requests was answered.
    answered: VecDeque<bool>,
    /// Failures since its last answer.
    failures_in_a_row: u32,
    /// Until when its breaker keeps it out.
    open_until: Option<Instant>,
}

struct Entry {
    provider: LlmProvider,
    key: Option<String>,
    stats: Mutex<Stats>,
}

/// The providers the operator configured, with what their calls measured.
pub struct Providers {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|e| &e.provider.name)).finish()
    }
}

impl Providers {
    /// The providers `list` configures, each checked and its key read from
    /// the environment; why not, naming the provider, otherwise.
    pub fn new(list: Vec<LlmProvider>) -> Result<Providers, String> {
        let mut entries: Vec<Entry> = Vec::with_capacity(list.len());
        for provider in list {
            if let Some(problem) = provider.problem() {
                return Err(problem);
            }
            if entries.iter().any(|e| e.provider.name == provider.name) {
                return Err(format!(
                    "LLM provider `{}` is configured twice: give each a name of its own",
                    provider.name
                ));
            }
            let key = provider.key()?;
            entries.push(Entry { provider, key, stats: Mutex::default() });
        }
        Ok(Providers { entries })
    }

    /// The provider at `index`.
    pub fn provider(&self, index: usize) -> &LlmProvider {
        &self.entries[index].provider
    }

    /// The key of the provider at `index`, if it has one.
    pub(crate) fn key(&self, index: usize) -> Option<&str> {
        self.entries[index].key.as_deref()
    }

    /// The providers to try for `choice`, best first, each able to hold
    /// `tokens` (the prompt's estimate plus `max-tokens`), at `now`.
    pub fn plan(&self, choice: &ModelChoice, tokens: u64, now: Instant) -> Result<Vec<Target>, NoProvider> {
        if self.entries.is_empty() {
            return Err(NoProvider::Unknown(
                "no language-model provider is configured on this host; the operator adds one under \
                 `[[llm.providers]]` in serve.toml"
                    .into(),
            ));
        }
        let (mode, serving) = match choice {
            ModelChoice::Routed(mode) => (*mode, self.pairs(|_, _| true)),
            ModelChoice::Named(named) => {
                let (provider, model) = match named.split_once('/') {
                    Some((p, m)) if self.entries.iter().any(|e| e.provider.name == p) => (Some(p), m),
                    _ => (None, named.as_str()),
                };
                let serving = self.pairs(|p, m| m == model && provider.is_none_or(|name| p.name == name));
                (RouteMode::Standard, serving)
            }
        };
        if serving.is_empty() {
            let known: Vec<String> = self
                .pairs(|_, _| true)
                .iter()
                .map(|t| format!("{}/{}", self.provider(t.index).name, t.model))
                .collect();
            let named = match choice {
                ModelChoice::Named(n) => n.as_str(),
                ModelChoice::Routed(_) => "",
            };
            return Err(NoProvider::Unknown(format!(
                "no configured provider serves `{named}`; this host serves {}",
                known.join(", ")
            )));
        }
        let fits: Vec<Target> =
            serving.iter().filter(|t| self.provider(t.index).context_tokens >= tokens).cloned().collect();
        if fits.is_empty() {
            let largest = serving.iter().map(|t| self.provider(t.index).context_tokens).max().unwrap_or(0);
            return Err(NoProvider::TooLarge(format!(
                "the request needs {tokens} tokens of context (the prompt's estimate plus max-tokens), past the \
                 largest context serving it ({largest}): ask for fewer max-tokens or send a shorter prompt"
            )));
        }
        let closed: Vec<Target> = fits.iter().filter(|t| !self.is_open(t.index, now)).cloned().collect();
        if closed.is_empty() {
            let names: Vec<&str> = fits.iter().map(|t| self.provider(t.index).name.as_str()).collect();
            return Err(NoProvider::Open(format!(
                "every provider serving it is failing and kept out for now (breaker open): {}; try again in {} s",
                names.join(", "),
                BREAKER_OPEN.as_secs()
            )));
        }
        Ok(self.ranked(closed, mode))
    }

    /// Every (provider, model) pair `keep` keeps, in configuration order.
    fn pairs(&self, keep: impl Fn(&LlmProvider, &str) -> bool) -> Vec<Target> {
        let mut pairs = Vec::new();
        for (index, e) in self.entries.iter().enumerate() {
            for model in e.provider.models.iter().filter(|m| keep(&e.provider, m)) {
                pairs.push(Target { index, model: model.clone() });
            }
        }
        pairs
    }

    /// `targets` best first by the scorer, each pick scored among those
    /// left.
    fn ranked(&self, mut targets: Vec<Target>, mode: RouteMode) -> Vec<Target> {
        let mut ranked = Vec::with_capacity(targets.len());
        while !targets.is_empty() {
            let candidates: Vec<Candidate> = targets.iter().map(|t| self.candidate(t)).collect();
            let Some(choice) = route_choose(&candidates, mode, u64::MAX) else { break };
            let at = candidates.iter().position(|c| c.artifact == choice.artifact).unwrap_or(0);
            ranked.push(targets.remove(at));
        }
        ranked
    }

    /// `target` as the scorer sees it (its `artifact` is `provider/model`).
    fn candidate(&self, target: &Target) -> Candidate {
        let e = &self.entries[target.index];
        let stats = e.stats.lock().unwrap_or_else(|p| p.into_inner());
        let latency_ms = match stats.latencies.is_empty() {
            true => Some(e.provider.latency_hint_ms as f64),
            false => Some(stats.latencies.iter().sum::<f64>() / stats.latencies.len() as f64),
        };
        let reliability = (!stats.answered.is_empty())
            .then(|| stats.answered.iter().filter(|a| **a).count() as f64 / stats.answered.len() as f64);
        Candidate {
            artifact: format!("{}/{}", e.provider.name, target.model),
            price: e.provider.price_per_1k(),
            latency_ms,
            quality: e.provider.quality,
            reliability,
        }
    }

    fn is_open(&self, index: usize, now: Instant) -> bool {
        let stats = self.entries[index].stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.open_until.is_some_and(|until| now < until)
    }

    /// What a request to the provider at `index` came to: `answered` in
    /// `latency`, or failed. A failure the caller caused (a malformed
    /// request) is not the provider's and is not recorded.
    pub fn record(&self, index: usize, answered: bool, latency: Duration, now: Instant) {
        let e = &self.entries[index];
        let mut stats = e.stats.lock().unwrap_or_else(|p| p.into_inner());
        if stats.answered.len() == REMEMBERED {
            stats.answered.pop_front();
        }
        stats.answered.push_back(answered);
        if answered {
            if stats.latencies.len() == REMEMBERED {
                stats.latencies.pop_front();
            }
            stats.latencies.push_back(latency.as_secs_f64() * 1_000.0);
            stats.failures_in_a_row = 0;
            stats.open_until = None;
        } else {
            stats.failures_in_a_row += 1;
            if stats.failures_in_a_row >= BREAKER_FAILURES {
                stats.open_until = Some(now + BREAKER_OPEN);
                tracing::warn!(provider = %e.provider.name, failures = stats.failures_in_a_row,
                    "an LLM provider keeps failing: kept out for {} s", BREAKER_OPEN.as_secs());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providers() -> Providers {
        let mut cheap = LlmProvider::new("cheap", "http://127.0.0.1:1/v1", &["small"]);
        cheap.input_price_per_1k = 0;
        cheap.output_price_per_1k = 1;
        cheap.quality = 40;
        cheap.latency_hint_ms = 800;
        let mut fast = LlmProvider::new("fast", "http://127.0.0.1:2/v1", &["small", "large"]);
        fast.input_price_per_1k = 20;
        fast.output_price_per_1k = 20;
        fast.quality = 60;
        fast.latency_hint_ms = 100;
        fast.context_tokens = 32_000;
        let mut best = LlmProvider::new("best", "http://127.0.0.1:3/v1", &["large"]);
        best.input_price_per_1k = 30;
        best.output_price_per_1k = 60;
        best.quality = 95;
        best.latency_hint_ms = 1_500;
        Providers::new(vec![cheap, fast, best]).unwrap()
    }

    fn names(p: &Providers, plan: &[Target]) -> Vec<String> {
        plan.iter().map(|t| format!("{}/{}", p.provider(t.index).name, t.model)).collect()
    }

    #[test]
    fn each_mode_ranks_by_its_weights() {
        let p = providers();
        let now = Instant::now();
        let plan = |mode| names(&p, &p.plan(&ModelChoice::Routed(mode), 100, now).unwrap());
        assert_eq!(plan(RouteMode::CostOptimized)[0], "cheap/small");
        assert_eq!(plan(RouteMode::LatencyOptimized)[0].split('/').next(), Some("fast"));
        assert_eq!(plan(RouteMode::QualityOptimized)[0], "best/large");
        assert_eq!(plan(RouteMode::Standard).len(), 4, "every pair is a candidate");
    }

    #[test]
    fn a_named_model_goes_to_those_serving_it_and_fits_their_context() {
        let p = providers();
        let now = Instant::now();
        let plan = p.plan(&ModelChoice::Named("large".into()), 100, now).unwrap();
        assert_eq!(names(&p, &plan).len(), 2);
        let plan = p.plan(&ModelChoice::Named("best/large".into()), 100, now).unwrap();
        assert_eq!(names(&p, &plan), ["best/large"]);
        let plan = p.plan(&ModelChoice::Named("large".into()), 20_000, now).unwrap();
        assert_eq!(names(&p, &plan), ["fast/large"], "only its context holds 20,000 tokens");
        match p.plan(&ModelChoice::Named("large".into()), 50_000, now) {
            Err(NoProvider::TooLarge(m)) => assert!(m.contains("50000 tokens"), "{m}"),
            other => panic!("{other:?}"),
        }
        match p.plan(&ModelChoice::Named("huge".into()), 10, now) {
            Err(NoProvider::Unknown(m)) => assert!(m.contains("cheap/small"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failures_lower_a_provider_and_open_its_breaker() {
        let p = providers();
        let now = Instant::now();
        let first = |p: &Providers, now| {
            names(p, &p.plan(&ModelChoice::Routed(RouteMode::CostOptimized), 10, now).unwrap())[0].clone()
        };
        assert_eq!(first(&p, now), "cheap/small");
        for _ in 0..BREAKER_FAILURES {
            p.record(0, false, Duration::ZERO, now);
        }
        assert!(!first(&p, now).starts_with("cheap"), "its breaker is open");
        assert!(first(&p, now + BREAKER_OPEN).starts_with("cheap"), "it is tried again once the breaker's time passes");
        p.record(0, true, Duration::from_millis(5), now + BREAKER_OPEN);
        assert!(!p.is_open(0, now + BREAKER_OPEN));
        for _ in 0..16 {
            p.record(0, true, Duration::from_millis(5), now + BREAKER_OPEN);
        }
        // Its measured latency (5 ms) replaces the hint (800 ms), and its
        // reliability (17 of 20) is back up.
        let fastest = names(&p, &p.plan(&ModelChoice::Routed(RouteMode::LatencyOptimized), 10, now).unwrap());
        assert_eq!(fastest[0], "cheap/small");
    }

    #[test]
    fn a_bad_configuration_is_refused_by_name() {
        let twice = vec![LlmProvider::new("a", "http://x/v1", &["m"]), LlmProvider::new("a", "http://y/v1", &["m"])];
        assert!(Providers::new(twice).unwrap_err().contains("configured twice"));
        let none = Providers::new(Vec::new()).unwrap();
        match none.plan(&ModelChoice::Named("m".into()), 1, Instant::now()) {
            Err(NoProvider::Unknown(m)) => assert!(m.contains("[[llm.providers]]"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
