//! Policy check latency, side by side in one run: an empty chain, the
//! declarative rules (a rule set of the shape operators write, evaluated in
//! process), and the spend-limit plugin compiled from Rust, C, WAT, Python
//! and JavaScript (each check in a fresh instance of the plugin).
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

criterion_group!(benches, policy_check);
criterion_main!(benches);
