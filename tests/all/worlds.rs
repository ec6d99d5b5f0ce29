//! Components of standard worlds reach the economy, and what cannot be
//! served is refused at upload with the reason and what would make it
//! fit: a component called by function that imports fuelhost's `ledger`
//! gets it; an import nobody provides is named; a stackful async build,
//! and WASI 0.3's filesystem, are refused saying what fits instead. (The `wasi:http/proxy`
//! component of `api::proxy` imports `ledger` too.)

use fuelhost::{Invocation, Limits, ResourcePolicy, UploadError};
use fuelhost_tests::{manifest, test_host};

/// A component exporting `left: func() -> u64`, answered by fuelhost's
/// `ledger.fuel-left`, its one import.
const FUEL_LEFT: &str = r#"
(component
  (import "fuelhost:host/ledger@0.1.0" (instance $ledger
    (export "fuel-left" (func (result u64)))))
  (core func $fuel_left (canon lower (func $ledger "fuel-left")))
  (core module $m
    (import "host" "fuel-left" (func $fuel_left (result i64)))
    (func (export "left") (result i64) call $fuel_left))
  (core instance $i (instantiate $m (with "host" (instance (export "fuel-left" (func $fuel_left))))))
  (func (export "left") (result u64) (canon lift (core func $i "left"))))
"#;

#[test]
fn a_component_called_by_function_may_import_fuelhosts_ledger() {
    let t = test_host();
    let m = manifest("left", 1, ResourcePolicy::CallerPays, Limits { fuel: 1_000_000, ..Limits::default() });
    let id = t.host.upload(m, &wat::parse_str(FUEL_LEFT).unwrap()).unwrap().id;
    let report = t.host.invoke(Invocation::export("bob", &id, "left", serde_json::json!([]))).unwrap();
    assert!(report.success, "{:?}", report.error);
    let left: u64 = serde_json::from_slice(&report.output).unwrap();
    assert!(left > 0 && left < 1_000_000, "the fuel it had left: {left}");
    assert_eq!(report.price_paid, 1);
}

#[test]
fn an_import_nobody_provides_is_refused_by_name() {
    let t = test_host();
    let wat = FUEL_LEFT.replace("fuelhost:host/ledger@0.1.0", "wasi:keyvalue/store@0.2.0");
    let m = manifest("kv", 1, ResourcePolicy::CallerPays, Limits::default());
    let e = t.host.upload(m, &wat::parse_str(&wat).unwrap()).unwrap_err();
    assert!(matches!(e, UploadError::UnsatisfiableImport(..)), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("wasi:keyvalue/store@0.2.0"), "the import is named: {message}");
    assert!(message.contains("may import WASI 0.2"), "what is offered instead: {message}");
    assert!(t.host.artifacts().is_empty());
}

#[test]
fn a_stackful_async_build_is_refused_saying_how_to_build_it() {
    let t = test_host();
    // An async lift without a callback: component-model-async's stackful
    // form, which the engines do not take (its callback form they do).
    let wat = r#"
    (component
      (core module $m
        (func (export "f")))
      (core instance $i (instantiate $m))
      (func (export "f") (canon lift (core func $i "f") async)))
    "#;
    let m = manifest("async", 1, ResourcePolicy::CallerPays, Limits::default());
    let e = t.host.upload(m, &wat::parse_str(wat).unwrap()).unwrap_err();
    let message = e.to_string();
    assert!(message.contains("stackful") && message.contains("default async options"), "{message}");
    assert!(t.host.artifacts().is_empty());
}

#[test]
fn a_wasi_0_3_filesystem_import_is_refused_naming_what_is_offered() {
    let t = test_host();
    let wat = FUEL_LEFT.replace("fuelhost:host/ledger@0.1.0", "wasi:filesystem/preopens@0.3.0");
    let m = manifest("fs3", 1, ResourcePolicy::CallerPays, Limits::default());
    let e = t.host.upload(m, &wat::parse_str(&wat).unwrap()).unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("wasi:filesystem/preopens@0.3.0") && message.contains("WASI 0.2's filesystem"),
        "{message}"
    );
    assert!(t.host.artifacts().is_empty());
}

#[test]
fn an_import_of_a_wasi_release_candidate_is_refused_saying_to_build_against_a_release() {
    let t = test_host();
    let wat = FUEL_LEFT.replace("fuelhost:host/ledger@0.1.0", "wasi:clocks/monotonic-clock@0.3.0-rc-2025-09-16");
    let m = manifest("rc", 1, ResourcePolicy::CallerPays, Limits::default());
    let e = t.host.upload(m, &wat::parse_str(&wat).unwrap()).unwrap_err();
    let message = e.to_string();
    assert!(message.contains("0.3.0-rc-2025-09-16") && message.contains("a released WASI"), "{message}");
}
