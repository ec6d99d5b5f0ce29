//! Policy check latency, side by side in one run: an empty chain, the
//! declarative rules (a rule set of the shape operators write, evaluated in
//! process), and the spend-limit plugin compiled from Rust, C, WAT, Python
//! and JavaScript (each check in a fresh instance of the plugin).
//!
//! After criterion's means, a table of each configuration's latency
//! percentiles over `FUELHOST_POLICY_CHECKS` checks (default 5,000) beside
//! its target: a rule-only check p99 at most 20 µs, a Rust plugin's at most
//! 50 µs, a Python or JavaScript plugin's at most 500 µs.
//!
//! Run: `scripts/setup.sh && cargo bench -p fuelhost --bench policy`

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use fuelhost::{Action, Attribute, Host, Usage};

/// The example rule set shipped in `examples/`.
const RULES: &str = include_str!("../../examples/policy-rules.toml");

fn action() -> Action {
    Action {
        kind: "invoke".into(),
        subject: "bob".into(),
        tenant: None,
        target: "alice/echo@1".into(),
        attributes: vec![Attribute { key: "resource-policy".into(), value: "caller_pays".into() }],
        price: 5,
        estimated: Usage { fuel: 1_000_000, memory_peak_bytes: 1 << 20, disk_bytes: 0, llm_tokens: 0, wall_time_ns: 0 },
    }
}

fn policy_check(c: &mut Criterion) {
    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    let mut group = c.benchmark_group("policy_check");
    let dir = std::env::temp_dir().join(format!("fuelhost-bench-policy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let action = action();

    let host = Host::builder().data_dir(dir.join("empty")).build().unwrap();
    group.bench_function("empty-chain", |b| b.iter(|| host.check_policy(&action)));

    let host = Host::builder().data_dir(dir.join("rules")).build().unwrap();
    host.set_policy_rules(RULES).unwrap();
    assert!(host.check_policy(&action).refusal().is_none());
    group.bench_function("rules-4", |b| b.iter(|| host.check_policy(&action)));

    for plugin in ["rust-spend-limit", "c-spend-limit", "wat-spend-limit", "python-spend-limit", "js-spend-limit"] {
        let Ok(bytes) = std::fs::read(format!("{guests}/{plugin}.wasm")) else {
            eprintln!("skipping {plugin}: not built (run scripts/setup.sh)");
            continue;
        };
        let host = Host::builder().data_dir(dir.join(plugin)).build().unwrap();
        host.add_policy_plugin("spend-limit", &bytes).unwrap();
        assert!(host.check_policy(&action).refusal().is_none(), "{plugin} allows a call at price 5");
        group.bench_function(format!("plugin-{plugin}"), |b| b.iter(|| host.check_policy(&action)));
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every configuration the group measures, as (name, host, p99 target in
/// µs); `None` for a plugin that is not built.
fn configurations(dir: &std::path::Path) -> Vec<(String, Host, Option<u64>)> {
    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    let mut out = Vec::new();
    out.push(("empty chain".to_string(), Host::builder().data_dir(dir.join("empty")).build().unwrap(), None));
    let rules = Host::builder().data_dir(dir.join("rules")).build().unwrap();
    rules.set_policy_rules(RULES).unwrap();
    out.push(("rules (4)".to_string(), rules, Some(20)));
    for (plugin, target) in [
        ("rust-spend-limit", Some(50)),
        ("c-spend-limit", None),
        ("wat-spend-limit", None),
        ("python-spend-limit", Some(500)),
        ("js-spend-limit", Some(500)),
    ] {
        let Ok(bytes) = std::fs::read(format!("{guests}/{plugin}.wasm")) else { continue };
        let host = Host::builder().data_dir(dir.join(plugin)).build().unwrap();
        host.add_policy_plugin("spend-limit", &bytes).unwrap();
        out.push((format!("plugin {plugin}"), host, target));
    }
    out
}

/// The percentile table (not a criterion measurement: every check timed
/// on its own, so the tail shows).
fn policy_check_percentiles(_: &mut Criterion) {
    let checks: usize = std::env::var("FUELHOST_POLICY_CHECKS").ok().and_then(|n| n.parse().ok()).unwrap_or(5_000);
    let dir = std::env::temp_dir().join(format!("fuelhost-bench-policy-p-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let action = action();
    println!("| configuration | checks | p50 µs | p99 µs | p99 target µs | met |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, host, target) in configurations(&dir) {
        for _ in 0..checks / 10 {
            host.check_policy(&action); // warm up
        }
        let mut ns: Vec<u64> = (0..checks)
            .map(|_| {
                let t = std::time::Instant::now();
                std::hint::black_box(host.check_policy(&action));
                t.elapsed().as_nanos() as u64
            })
            .collect();
        ns.sort_unstable();
        let at = |q: f64| ns[((ns.len() as f64 * q).ceil() as usize).clamp(1, ns.len()) - 1] as f64 / 1000.0;
        let (p50, p99) = (at(0.50), at(0.99));
        let (target, met) = match target {
            Some(t) => (t.to_string(), if p99 <= t as f64 { "yes" } else { "no" }),
            None => ("-".to_string(), "-"),
        };
        println!("| {name} | {checks} | {p50:.1} | {p99:.1} | {target} | {met} |");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, policy_check, policy_check_percentiles);
criterion_main!(benches);
