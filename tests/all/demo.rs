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
            out.lines().any(|l| l.starts_with(kept)),
            "the README shows a row the demo does not print:\n{row}\n\n{out}"
        );
    }
}
