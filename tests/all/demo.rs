//! The main job: `fuelhost demo` runs start to finish on the real guests
//! and shows every kind of call it promises.

use fuelhost::demo::{run, DemoConfig};
use fuelhost_tests::{guests_dir, shared_compile_cache};

#[test]
fn the_demo_runs_and_shows_every_kind_of_call() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&DemoConfig {
        guests: guests_dir(),
        data_dir: dir.path().join("data"),
        compile_cache: Some(shared_compile_cache()),
    })
    .unwrap();
    for expected in [
        "echo, caller pays                      success",
        "wordfreq (Python), owner pays          success",
        "denied by policy `spend-limit`",
        "probe: endless loop                    out_of_fuel       2000000 bob",
        "parked until carol approves",
        "carol approves: it runs once      success",
        "thinker: asks a model, caller pays     success",
        "thinker's model call",
        "ledger balanced",
    ] {
        assert!(out.contains(expected), "the demo lacks {expected:?}:\n{out}");
    }
    // The README shows the demo's table: each of its rows is the demo's,
    // up to where the README cuts the output short (`...`).
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let shown = readme.split("$ scripts/demo.sh\n").nth(1).and_then(|b| b.split("```").next()).unwrap();
    for row in shown.lines().filter(|l| !l.trim().is_empty()) {
        let kept = row.split("...").next().unwrap();
        assert!(
            out.lines().any(|l| same_row(l, kept)),
            "the README shows a row the demo does not print:\n{row}\n\n{out}"
        );
    }
}

/// Whether the demo's `printed` row is the README's `shown` one (cut short
/// where the README cuts it). The Python artifact's fuel varies a little
/// from one build of it to the next (componentize-py's snapshot of the
/// interpreter is not byte for byte the same each time): in its row, the
/// fuel may differ by up to 2%; every other column, and every other row,
/// must be the same.
fn same_row(printed: &str, shown: &str) -> bool {
    if printed.starts_with(shown) {
        return true;
    }
    if !shown.contains("(Python)") {
        return false;
    }
    let (printed, shown): (Vec<&str>, Vec<&str>) =
        (printed.split_whitespace().collect(), shown.split_whitespace().collect());
    let fuel = shown.iter().position(|t| t.parse::<u64>().is_ok());
    shown.iter().enumerate().all(|(i, want)| {
        let Some(got) = printed.get(i) else { return false };
        match (Some(i) == fuel, want.parse::<f64>(), got.parse::<f64>()) {
            (true, Ok(want), Ok(got)) => (got - want).abs() <= want * 0.02,
            _ if i + 1 == shown.len() => got.starts_with(want),
            _ => got == want,
        }
    })
}
