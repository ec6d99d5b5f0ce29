//! The same policy in every language: one table of cases runs against the
//! spend-limit plugin written in Rust, Python, JavaScript, C and bare WAT.
//! Each must allow and deny exactly the same actions, both when asked
//! directly and inside the invocation pipeline.

use fuelhost::{Action, Decision, Invocation, InvokeError, Limits, ResourcePolicy, Usage};
use fuelhost_tests::{guest, test_host, upload};

const PLUGINS: [&str; 5] =
    ["rust-spend-limit", "python-spend-limit", "js-spend-limit", "c-spend-limit", "wat-spend-limit"];

/// (action kind, price, `None` to allow or `Some(text the reason holds)`).
const CASES: &[(&str, u64, Option<&str>)] = &[
    ("invoke", 0, None),
    ("invoke", 100, None),
    ("invoke", 101, Some("over the limit of 100")),
    ("invoke", u64::MAX, Some("over the limit of 100")),
    ("transfer", 1_000, None),
    ("transfer", 1_001, Some("over the limit of 1000")),
    ("transfer", 1 << 40, Some("over the limit of 1000")),
    ("upload", 1_000_000, None),
    ("invokes", 5_000, None),
    ("", 5_000, None),
];

fn action(kind: &str, price: u64) -> Action {
    Action {
        kind: kind.into(),
        subject: "bob".into(),
        tenant: Some("acme".into()),
        target: "alice/thing@1".into(),
        attributes: vec![fuelhost::Attribute { key: "k".into(), value: "v".into() }],
        price,
        estimated: Usage { fuel: 1, memory_peak_bytes: 2, disk_bytes: 3, llm_tokens: 4, wall_time_ns: 5 },
    }
}

#[test]
fn every_language_decides_the_table_the_same_way() {
    for plugin in PLUGINS {
        let t = test_host();
        t.host.add_policy_plugin("spend-limit", &guest(plugin)).unwrap_or_else(|e| panic!("{plugin}: {e}"));
        for (kind, price, expected) in CASES {
            let verdict = t.host.check_policy(&action(kind, *price));
            match (expected, &verdict.decision) {
                (None, Decision::Allow) => {}
                (Some(text), Decision::Deny(reason)) => {
                    assert!(reason.contains(text), "{plugin}: {kind} at {price}: reason {reason:?} lacks {text:?}");
                    assert!(!reason.contains("failed"), "{plugin} must decide, not fail: {reason}");
                }
                (expected, got) => panic!("{plugin}: {kind} at {price}: expected {expected:?}, got {got:?}"),
            }
        }
        // And inside the pipeline: an invocation over the limit is refused
        // before anything is charged, one at the limit goes through.
        let dear = upload(&t.host, "rust-echo", "dear", 101, ResourcePolicy::CallerPays, Limits::default());
        let fair = upload(&t.host, "rust-echo", "fair", 100, ResourcePolicy::CallerPays, Limits::default());
        let bob = t.host.balances("bob").unwrap();
        let err = t.host.invoke(Invocation::new("bob", &dear, "x")).unwrap_err();
        assert!(matches!(err, InvokeError::Denied(_)), "{plugin}: {err}");
        assert_eq!(t.host.balances("bob").unwrap(), bob, "{plugin}: a denied call charged something");
        assert!(t.host.invoke(Invocation::new("bob", &fair, "x")).unwrap().success, "{plugin}");
    }
}
