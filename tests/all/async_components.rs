//! WASI 0.3 and component-model-async components, built from source with
//! the ecosystem's own tools (the `wasip3` crate, `wit-bindgen`'s async
//! support), run and charged as any artifact: a WASI 0.3 command reads its
//! input from a stdin stream and writes its output to a stdout stream; an
//! `async func` export is called by name with JSON or WAVE arguments. Each
//! is metered (a loop ends `out_of_fuel`, charged its fuel), held to its
//! timeout while it waits on the host, and the ledger stays conserved.

use std::time::{Duration, Instant};

use fuelhost::{Invocation, Limits, Outcome, ResourcePolicy};
use fuelhost_tests::{assert_conserved, test_host, upload};
use serde_json::json;

#[test]
fn a_wasi_0_3_command_reads_a_stdin_stream_and_is_charged() {
    let t = test_host();
    let echo = upload(&t.host, "rust-p3-echo", "p3-echo", 3, ResourcePolicy::CallerPays, Limits::default());
    assert_eq!(t.host.artifact_kind(&echo).unwrap(), Some("command"));

    let before = t.host.balances("bob").unwrap();
    let report = t.host.invoke(Invocation::new("bob", &echo, "hello, wasi 0.3")).unwrap();
    assert!(report.success, "{:?}", report.error);
    assert_eq!(String::from_utf8(report.output).unwrap(), "p3: HELLO, WASI 0.3");
    assert_eq!(report.price_paid, 3);
    assert!(report.resources_consumed.fuel > 0);
    let record = t.host.ledger().usage_record(&report.invocation_id).unwrap().unwrap();
    assert_eq!(
        (record.outcome, record.price_paid, record.consumed.fuel),
        (Outcome::Success, 3, report.resources_consumed.fuel)
    );
    assert_eq!(t.host.balances("bob").unwrap().scrip.posted, before.scrip.posted - 3);

    let failed = t.host.invoke(Invocation::new("bob", &echo, "fail")).unwrap();
    assert_eq!((failed.outcome, failed.price_paid), (Outcome::RunError, 0));
    let why = failed.error.unwrap();
    assert!(why.contains("exited with code 1") && why.contains("asked to fail"), "{why}");
    assert_conserved(&t.host);
}

#[test]
fn a_wasi_0_3_command_that_loops_runs_out_of_fuel_and_one_that_waits_times_out() {
    let t = test_host();
    let limits = Limits { timeout_ms: 400, ..Limits::default() };
    let echo = upload(&t.host, "rust-p3-echo", "p3-echo", 3, ResourcePolicy::CallerPays, limits);

    let spun = t.host.invoke(Invocation::new("bob", &echo, "loop").fuel_limit(3_000_000)).unwrap();
    assert_eq!((spun.outcome, spun.resources_consumed.fuel, spun.price_paid), (Outcome::OutOfFuel, 3_000_000, 0));

    // Waiting on the monotonic clock for a minute: no wasm runs, so no
    // fuel or epoch check stops it; the run's own deadline does.
    let started = Instant::now();
    let slept = t.host.invoke(Invocation::new("bob", &echo, "sleep")).unwrap();
    assert_eq!(slept.outcome, Outcome::Timeout, "{:?}", slept.error);
    assert!(started.elapsed() < Duration::from_secs(20), "it ended at its timeout: {:?}", started.elapsed());
    assert!(slept.resources_consumed.fuel > 0, "the fuel it burned before waiting is charged");
    assert_eq!(slept.price_paid, 0);
    assert_conserved(&t.host);
}

#[test]
fn an_async_func_export_is_called_by_name_and_charged() {
    let t = test_host();
    let limits = Limits { timeout_ms: 400, ..Limits::default() };
    let adder = upload(&t.host, "rust-p3-adder", "async-adder", 2, ResourcePolicy::OwnerPays, limits);
    let exports = t.host.artifact_exports(&adder).unwrap().unwrap();
    let names: Vec<(&str, bool)> = exports.iter().map(|f| (f.name.as_str(), f.lifted_async)).collect();
    assert_eq!(names, [("add", true), ("nap", true), ("spin", true)]);

    let report = t.host.invoke(Invocation::export("bob", &adder, "add", json!([40, 2]))).unwrap();
    assert!(report.success, "{:?}", report.error);
    assert_eq!((report.output.as_slice(), report.price_paid), (&b"42"[..], 2));
    assert!(report.resources_consumed.fuel > 0);
    let wave = t.host.invoke(Invocation::call("bob", &adder, "add(1, 2)")).unwrap();
    assert_eq!(wave.output, b"3");

    // It waits on the host's clock, and is woken.
    let napped = t.host.invoke(Invocation::export("bob", &adder, "nap", json!([20]))).unwrap();
    assert!(napped.success, "{:?}", napped.error);
    assert_eq!(napped.output, b"20");

    let long = t.host.invoke(Invocation::export("bob", &adder, "nap", json!([60_000]))).unwrap();
    assert_eq!(long.outcome, Outcome::Timeout, "{:?}", long.error);

    let spun = t.host.invoke(Invocation::export("bob", &adder, "spin", json!([])).fuel_limit(2_000_000)).unwrap();
    assert_eq!((spun.outcome, spun.resources_consumed.fuel), (Outcome::OutOfFuel, 2_000_000));

    // Wrong arguments are refused before anything runs, as for any export.
    let refused = t.host.invoke(Invocation::export("bob", &adder, "add", json!([1, "x"])));
    assert!(refused.is_err());
    assert_conserved(&t.host);
}
