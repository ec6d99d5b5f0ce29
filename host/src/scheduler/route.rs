//! Handing a task to an artifact by capability: among the artifacts that
//! declare the capability, the one with the best score for the task's
//! routing mode that the submitter can afford.
//!
//! Each candidate is scored on four things, each in 0..=1, weighted by
//! the mode (the compute router of the Lab 3 seed):
//!
//! | mode | cost | latency | quality | reliability |
//! | --- | --- | --- | --- | --- |
//! | `standard` | 0.4 | 0.3 | 0.2 | 0.1 |
//! | `cost_optimized` | 0.7 | 0.1 | 0.1 | 0.1 |
//! | `latency_optimized` | 0.1 | 0.7 | 0.1 | 0.1 |
//! | `quality_optimized` | 0.1 | 0.1 | 0.7 | 0.1 |
//!
//! Cost is the artifact's price, latency its mean wall time over its
//! latest successful calls, both scored `1 - value / largest`; quality is
//! the owner's claim (0 to 100, default 50); reliability is the share of
//! its latest calls that succeeded (a trap, a timeout, ... count against
//! it; refusals and cancellations do not). An artifact with no calls yet
//! scores the candidates' mean latency and full reliability, so a
//! newcomer gets tried. Ties go to the cheaper, then to the smaller id.
//!
//! The budget: a candidate whose price is above what the submitter can pay
//! is passed over; when none is affordable, the cheapest is chosen, and
//! its call says why it could not be paid.

use serde::{Deserialize, Serialize};

/// How a task handed over by capability weighs its candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteMode {
    /// Balance cost, latency and quality.
    #[default]
    Standard,
    /// Prefer the cheapest.
    CostOptimized,
    /// Prefer the fastest.
    LatencyOptimized,
    /// Prefer the best.
    QualityOptimized,
}

impl RouteMode {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteMode::Standard => "standard",
            RouteMode::CostOptimized => "cost_optimized",
            RouteMode::LatencyOptimized => "latency_optimized",
            RouteMode::QualityOptimized => "quality_optimized",
        }
    }

    /// The mode named `s`.
    pub fn parse(s: &str) -> Option<RouteMode> {
        [RouteMode::Standard, RouteMode::CostOptimized, RouteMode::LatencyOptimized, RouteMode::QualityOptimized]
            .into_iter()
            .find(|m| m.as_str() == s)
    }

    /// Weights of cost, latency, quality, reliability.
    fn weights(self) -> [f64; 4] {
        match self {
            RouteMode::Standard => [0.4, 0.3, 0.2, 0.1],
            RouteMode::CostOptimized => [0.7, 0.1, 0.1, 0.1],
            RouteMode::LatencyOptimized => [0.1, 0.7, 0.1, 0.1],
            RouteMode::QualityOptimized => [0.1, 0.1, 0.7, 0.1],
        }
    }
}

/// An artifact that declares the capability, with what is known of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    /// `owner/name@version`.
    pub artifact: String,
    /// Its price, scrip.
    pub price: u64,
    /// Mean wall time of its latest successful calls, ms; `None` if none.
    pub latency_ms: Option<f64>,
    /// The owner's claim, 0 to 100.
    pub quality: u8,
    /// Share of its latest calls that succeeded; `None` if no calls.
    pub reliability: Option<f64>,
}

/// The choice and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Choice {
    /// The artifact chosen.
    pub artifact: String,
    /// Its score (0 for a fallback).
    pub score: f64,
    /// Why it was chosen.
    pub reason: String,
}

/// Choose among `candidates` by `mode` within `budget` scrip; `None` when
/// there is no candidate.
pub(crate) fn choose(candidates: &[Candidate], mode: RouteMode, budget: u64) -> Option<Choice> {
    let max_price = candidates.iter().map(|c| c.price).max()? as f64;
    let known: Vec<f64> = candidates.iter().filter_map(|c| c.latency_ms).collect();
    let mean_latency = if known.is_empty() { 0.0 } else { known.iter().sum::<f64>() / known.len() as f64 };
    let latency = |c: &Candidate| c.latency_ms.unwrap_or(mean_latency);
    let max_latency = candidates.iter().map(latency).fold(0.0, f64::max);
    let [wc, wl, wq, wr] = mode.weights();
    let score = |c: &Candidate| {
        let cost = if max_price > 0.0 { 1.0 - c.price as f64 / max_price } else { 1.0 };
        let lat = if max_latency > 0.0 { 1.0 - latency(c) / max_latency } else { 1.0 };
        cost * wc + lat * wl + (f64::from(c.quality) / 100.0) * wq + c.reliability.unwrap_or(1.0) * wr
    };
    let better = |a: &(f64, &Candidate), b: &(f64, &Candidate)| {
        a.0 > b.0 + 1e-12 || ((a.0 - b.0).abs() <= 1e-12 && (a.1.price, &a.1.artifact) < (b.1.price, &b.1.artifact))
    };
    let mut best: Option<(f64, &Candidate)> = None;
    for c in candidates.iter().filter(|c| c.price <= budget) {
        let scored = (score(c), c);
        if best.as_ref().is_none_or(|b| better(&scored, b)) {
            best = Some(scored);
        }
    }
    if let Some((s, c)) = best {
        return Some(Choice {
            artifact: c.artifact.clone(),
            score: s,
            reason: format!("best {} score {s:.3} of {} within a budget of {budget}", mode.as_str(), candidates.len()),
        });
    }
    let cheapest = candidates.iter().min_by(|a, b| (a.price, &a.artifact).cmp(&(b.price, &b.artifact)))?;
    Some(Choice {
        artifact: cheapest.artifact.clone(),
        score: 0.0,
        reason: format!("no candidate fits a budget of {budget}: fell back to the cheapest, at {}", cheapest.price),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's providers: price per call in micro-units, latency,
    /// quality, reliability.
    fn seed() -> Vec<Candidate> {
        let c = |a: &str, price, lat, q, r| Candidate {
            artifact: a.into(),
            price,
            latency_ms: Some(lat),
            quality: q,
            reliability: Some(r),
        };
        vec![
            c("claude", 150, 600.0, 97, 0.99),
            c("gpt4", 100, 800.0, 95, 0.98),
            c("gemini", 80, 700.0, 92, 0.97),
            c("deepseek", 20, 1200.0, 88, 0.95),
            c("llama", 1, 2500.0, 80, 0.99),
        ]
    }

    #[test]
    fn each_mode_prefers_what_it_weighs_most() {
        let pick = |mode, budget| choose(&seed(), mode, budget).unwrap().artifact;
        // Scores worked by hand from the table (cost and latency relative
        // to the dearest and slowest): the cheapest wins on cost; on
        // latency and quality the fastest and best lose to runners-up that
        // cost much less (claude's cost scores 0).
        assert_eq!(pick(RouteMode::CostOptimized, 1_000), "llama");
        assert_eq!(pick(RouteMode::LatencyOptimized, 1_000), "gemini"); // 0.740 vs claude 0.728
        assert_eq!(pick(RouteMode::QualityOptimized, 1_000), "gpt4"); // 0.864 vs claude 0.854
        assert_eq!(pick(RouteMode::Standard, 1_000), "deepseek"); // 0.774
                                                                  // A budget that rules out the best picks the best affordable.
        assert_eq!(pick(RouteMode::QualityOptimized, 90), "gemini");
    }

    #[test]
    fn a_short_budget_falls_back_to_the_cheapest() {
        let choice = choose(&seed()[..4], RouteMode::QualityOptimized, 10).unwrap();
        assert_eq!((choice.artifact.as_str(), choice.score), ("deepseek", 0.0));
        assert!(choice.reason.contains("fell back to the cheapest"), "{}", choice.reason);
        assert_eq!(choose(&[], RouteMode::Standard, 10), None);
    }

    #[test]
    fn a_newcomer_scores_the_mean_latency_and_full_reliability() {
        let mut cands = seed();
        cands.push(Candidate { artifact: "new".into(), price: 1, latency_ms: None, quality: 80, reliability: None });
        assert_eq!(choose(&cands, RouteMode::CostOptimized, 1_000).unwrap().artifact, "new", "ties: cheaper, then id");
    }
}
