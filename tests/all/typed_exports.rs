//! Components of the ecosystem's own making, called by function: a
//! component that exports functions of its own interfaces (the component
//! model book's `docs:adder/add@0.1.0`, built from source with plain
//! `wit-bindgen`, plus richer types) is an artifact; an invocation names
//! the function and passes JSON arguments, checked against the WIT types
//! before anything is charged; the result comes back as JSON; the call is
//! metered and charged like any other.

use fuelhost::{Invocation, InvokeError, Limits, Outcome, ResourcePolicy};
use fuelhost_tests::{assert_conserved, test_host, upload};
use serde_json::{json, Value};

/// The call's result, as JSON.
fn result(host: &fuelhost::Host, artifact: &str, export: &str, args: Value) -> Value {
    let report = host.invoke(Invocation::export("bob", artifact, export, args.clone())).unwrap();
    assert!(report.success, "{export}({args}): {:?}", report.error);
    serde_json::from_slice(&report.output).unwrap()
}

#[test]
fn a_component_of_its_own_interfaces_is_called_by_function_with_json() {
    let t = test_host();
    let adder = upload(&t.host, "rust-adder", "adder", 4, ResourcePolicy::CallerPays, Limits::default());

    // Its exports, with their WIT types and JSON Schemas.
    let exports = t.host.artifact_exports(&adder).unwrap().unwrap();
    let names: Vec<&str> = exports.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["add", "area", "farthest", "spin"]);
    let add = &exports[0];
    assert_eq!(add.interface.as_deref(), Some("docs:adder/add@0.1.0"));
    let params: Vec<(&str, &str)> = add.params.iter().map(|p| (p.name.as_str(), p.wit.as_str())).collect();
    assert_eq!((params, add.results.clone()), (vec![("a", "u32"), ("b", "u32")], vec!["u32".to_string()]));
    assert_eq!(add.args_schema["prefixItems"][1]["maximum"], json!(u32::MAX));
    assert_eq!(exports[1].params[0].wit, "variant { circle(u32), rect(record { x: s32, y: s32 }), empty }");

    // Called by name, positionally or by parameter name, and charged.
    let before = t.host.balances("bob").unwrap();
    let report = t.host.invoke(Invocation::export("bob", &adder, "add", json!([1, 2]))).unwrap();
    assert!(report.success, "{:?}", report.error);
    assert_eq!(report.output, b"3");
    assert_eq!(report.price_paid, 4);
    assert!(report.resources_consumed.fuel > 0);
    let record = t.host.ledger().usage_record(&report.invocation_id).unwrap().unwrap();
    assert_eq!((record.outcome, record.price_paid), (Outcome::Success, 4));
    assert_eq!(t.host.balances("bob").unwrap().scrip.posted, before.scrip.posted - 4);
    assert_eq!(result(&t.host, &adder, "add", json!({"b": 40, "a": 2})), json!(42));
    assert_eq!(result(&t.host, &adder, "docs:adder/add@0.1.0#add", json!([5, 6])), json!(11));

    // Records, variants, enums, options, results and lists, both ways.
    assert_eq!(result(&t.host, &adder, "area", json!([{"rect": {"x": 3, "y": 4}}, null])), json!({"ok": 12}));
    assert_eq!(result(&t.host, &adder, "area", json!([{"circle": 10}, "feet"])), json!({"ok": 3379}));
    assert_eq!(result(&t.host, &adder, "area", json!({"s": "empty"})), json!({"ok": 0}));
    assert_eq!(
        result(&t.host, &adder, "area", json!([{"rect": {"x": -1, "y": 4}}, "metres"])),
        json!({"err": "a rectangle of -1 by 4 has no area"})
    );
    assert_eq!(result(&t.host, &adder, "farthest", json!([[]])), Value::Null);
    assert_eq!(
        result(&t.host, &adder, "farthest", json!([[{"x": 1, "y": 1}, {"x": -5, "y": 0}, {"x": 2, "y": 2}]])),
        json!({"x": -5, "y": 0})
    );
    assert_conserved(&t.host);
}

#[test]
fn arguments_of_the_wrong_type_are_refused_before_anything_is_charged() {
    let t = test_host();
    let adder = upload(&t.host, "rust-adder", "adder", 4, ResourcePolicy::CallerPays, Limits::default());
    let before = (t.host.balances("bob").unwrap(), t.host.usage_records(&Default::default()).unwrap().len());
    let refused = |export: &str, args: Value| -> String {
        match t.host.invoke(Invocation::export("bob", &adder, export, args)) {
            Err(e @ InvokeError::InvalidArguments { .. }) => e.to_string(),
            other => panic!("{export}: expected invalid arguments, got {other:?}"),
        }
    };
    let e = refused("add", json!([1, "x"]));
    assert!(e.contains(r#"argument b: expected u32, got "x""#), "{e}");
    let e = refused("add", json!([1, -1]));
    assert!(e.contains("argument b: -1 is out of range for u32"), "{e}");
    let e = refused("add", json!([1]));
    assert!(e.contains("expected 2 arguments (a: u32, b: u32), got 1"), "{e}");
    let e = refused("add", json!({"a": 1, "c": 2}));
    assert!(e.contains("argument c: no parameter has this name"), "{e}");
    let e = refused("area", json!([{"rect": {"x": 1}}, null]));
    assert!(e.contains("argument s.rect.y: missing (a s32)"), "{e}");
    let e = refused("area", json!([{"square": 1}, null]));
    assert!(e.contains("argument s: expected variant"), "{e}");
    let e = refused("area", json!([{"circle": 1}, "yards"]));
    assert!(e.contains(r#"argument u: expected enum { metres, feet }, got "yards""#), "{e}");
    let e = refused("subtract", json!([1, 2]));
    assert!(e.contains("no export `subtract` (its exports: add, area, farthest, spin)"), "{e}");
    // Input that is not a call by function says what to send.
    let e = match t.host.invoke(Invocation::new("bob", &adder, "hello")) {
        Err(e @ InvokeError::InvalidArguments { .. }) => e.to_string(),
        other => panic!("expected invalid arguments, got {other:?}"),
    };
    assert!(e.contains(r#"send {"export": NAME, "args": [...]}"#) && e.contains("add, area"), "{e}");
    let after = (t.host.balances("bob").unwrap(), t.host.usage_records(&Default::default()).unwrap().len());
    assert_eq!(before, after, "nothing charged, nothing recorded");
}

#[test]
fn a_function_that_loops_ends_out_of_fuel_and_is_charged_for_it() {
    let t = test_host();
    let adder = upload(&t.host, "rust-adder", "adder", 4, ResourcePolicy::CallerPays, Limits::default());
    let report = t.host.invoke(Invocation::export("bob", &adder, "spin", json!([])).fuel_limit(2_000_000)).unwrap();
    assert_eq!(report.outcome, Outcome::OutOfFuel);
    assert_eq!(report.resources_consumed.fuel, 2_000_000);
    assert_eq!(report.price_paid, 0, "the price is paid on success only");
    assert_conserved(&t.host);
}

/// The call written in WAVE, as `wasmtime run --invoke` takes it: the same
/// function, the same checks, the same charge; what is not WAVE, or not of
/// the function's types, is refused before anything is charged.
#[test]
fn a_call_written_in_wave_is_the_same_call() {
    let t = test_host();
    let adder = upload(&t.host, "rust-adder", "adder", 4, ResourcePolicy::CallerPays, Limits::default());
    let call = |wave: &str| t.host.invoke(Invocation::call("bob", &adder, wave));
    let value = |wave: &str| -> Value {
        let report = call(wave).unwrap();
        assert!(report.success, "{wave}: {:?}", report.error);
        assert_eq!(report.price_paid, 4);
        serde_json::from_slice(&report.output).unwrap()
    };
    assert_eq!(value("add(1, 2)"), json!(3));
    assert_eq!(value("area(rect({x: 3, y: 4}), none)"), json!({"ok": 12}));
    assert_eq!(value("area(circle(10), some(feet))"), json!({"ok": 3379}));
    assert_eq!(value("farthest([{x: 1, y: 1}, {x: -5, y: 0}])"), json!({"x": -5, "y": 0}));

    let before = (t.host.balances("bob").unwrap(), t.host.usage_records(&Default::default()).unwrap().len());
    let refused = |wave: &str| -> String {
        match call(wave) {
            Err(e @ InvokeError::InvalidArguments { .. }) => e.to_string(),
            other => panic!("{wave}: expected invalid arguments, got {other:?}"),
        }
    };
    let e = refused(r#"add(1, "x")"#);
    assert!(e.contains("add"), "{e}");
    let e = refused("subtract(1, 2)");
    assert!(e.contains("no export `subtract`"), "{e}");
    let e = refused("add(1, 2");
    assert!(e.contains("not a function call in WAVE"), "{e}");
    let deep = format!("farthest({}{})", "[".repeat(100_000), "]".repeat(100_000));
    let e = refused(&deep);
    assert!(e.contains("farthest") || e.contains("WAVE"), "{e}");
    let both = fuelhost::TypedInput { export: "add".into(), args: json!([1, 2]), call: Some("add(1, 2)".into()) };
    let e = match t.host.invoke(Invocation::new("bob", &adder, serde_json::to_vec(&both).unwrap())) {
        Err(e @ InvokeError::InvalidArguments { .. }) => e.to_string(),
        other => panic!("expected invalid arguments, got {other:?}"),
    };
    assert!(e.contains("not both"), "{e}");
    let after = (t.host.balances("bob").unwrap(), t.host.usage_records(&Default::default()).unwrap().len());
    assert_eq!(before, after, "nothing charged, nothing recorded");
}
