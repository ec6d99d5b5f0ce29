//! The API against its own OpenAPI document, checked by schemathesis (a
//! property-based API tester, installed by `scripts/setup.sh`): every
//! operation gets schema-valid and schema-violating requests, then
//! stateful sequences that follow the document's links (create an
//! allocation, approve it, activate it, ...). Every check is on
//! (`--checks all`): no 5xx, responses and status codes as documented,
//! schema-valid requests accepted (or refused only for what no schema can
//! say; see `tests/contract/schemathesis.toml`), schema-violating ones
//! refused, and keys required where the document says so.
//!
//! It runs once with the admin key and once with an agent's, so the
//! agent-only routes (uploading, invoking) are reached too. The runs are
//! deterministic (a fixed seed); `FUELHOST_CONTRACT_SEED` and
//! `FUELHOST_CONTRACT_EXAMPLES` explore further.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use super::{call, mint, start};

/// The schemathesis CLI in the project's Python environment.
fn schemathesis() -> PathBuf {
    let venv = std::env::var_os("FUELHOST_VENV").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME or FUELHOST_VENV must be set")).join(".cache/fuelhost/venv")
    });
    let st = venv.join("bin/st");
    assert!(st.exists(), "schemathesis is missing ({}): run scripts/setup.sh, which installs it", st.display());
    st
}

/// Run schemathesis against the document `base` serves, as `key`; panics
/// with its report when it finds anything.
fn check(base: &str, key: &str, who: &str) {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contract/schemathesis.toml");
    let seed = std::env::var("FUELHOST_CONTRACT_SEED").unwrap_or_else(|_| "20261206".into());
    let examples = std::env::var("FUELHOST_CONTRACT_EXAMPLES").unwrap_or_else(|_| "25".into());
    // Its own directory: schemathesis keeps a database of examples there.
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new(schemathesis())
        .current_dir(scratch.path())
        .env("NO_COLOR", "1")
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{base}/openapi.json"), "--checks", "all", "--workers", "1"])
        .args(["--max-examples", &examples, "--seed", &seed, "--no-color"])
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found the API and its document disagree ({who} key, seed {seed}):\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It tested every operation the document lists, and generated cases.
    let count = |label: &str| -> usize {
        let at = report.find(label).unwrap_or_else(|| panic!("no `{label}` in the report:\n{report}"));
        report[at + label.len()..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    assert!(count("Selected: ") > 40, "{report}");
    assert_eq!(count("Tested: "), count("Selected: "), "{report}");
    assert!(count("Test cases:\n  ") > 1000, "{report}");
}

#[test]
fn the_api_keeps_to_its_openapi_document() {
    let s = start(1 << 20);
    let (status, v) = call(
        "POST",
        &s.url("/v1/agents"),
        Some(&s.admin),
        Some(json!({"id": "tester", "config": {"budget": {"scrip": 1_000_000, "fuel": 1_000_000_000}}})),
    );
    assert_eq!(status, 201, "{v}");
    let agent = v["api_key"].as_str().unwrap().to_string();
    mint(&s, "tester", "disk_bytes", 1 << 20);
    check(&s.base, &s.admin, "admin");
    check(&s.base, &agent, "agent");
}
