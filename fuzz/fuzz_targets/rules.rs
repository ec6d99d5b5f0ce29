//! Any text as a set of policy rules, TOML and JSON: parsed, then asked
//! about a few actions, or refused with an error naming the line; never a
//! panic.
#![no_main]

use fuelhost::{Action, Attribute, RuleSet, Usage};
use libfuzzer_sys::fuzz_target;

fn action(kind: &str, subject: &str, target: &str) -> Action {
    Action {
        kind: kind.into(),
        subject: subject.into(),
        tenant: Some("acme".into()),
        target: target.into(),
        attributes: vec![Attribute { key: "mode".into(), value: "write".into() }],
        price: 7,
        estimated: Usage { fuel: 1_000, memory_peak_bytes: 1 << 20, disk_bytes: 0, llm_tokens: 0, wall_time_ns: 0 },
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for parsed in [RuleSet::from_toml(text), RuleSet::from_json(text)] {
        if let Ok(rules) = parsed {
            for a in [action("invoke", "bob", "alice/echo@1"), action("http-request", "alice", "example.com:443")] {
                let _ = rules.decide(&a);
            }
        }
    }
});
