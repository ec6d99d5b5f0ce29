//! Golden fuel: the exact fuel fuelhost charges for small programs. The
//! guests are written in WAT here (no compiler between the text and the
//! bytes), so the numbers move only when the accounting moves: a change in
//! wasmtime's fuel costs, in what fuelhost meters (instantiation, the
//! canonical ABI's copies, the call), or in the billing pipeline. Such a
//! change must show up as a diff to these numbers, reviewed like any other
//! change to prices.

use fuelhost::{Limits, ResourcePolicy};
use fuelhost_tests::{manifest, test_host, TestHost};

/// An artifact that sums its input's bytes (one loop iteration per byte)
/// and returns the input: work proportional to the input's length. With
/// `depth`, it also recurses that deep first (call-heavy work).
const SUMMER: &str = r#"(component
  (import "fuelhost:host/types@0.1.0" (instance $types
    (type $re (variant (case "invalid-input" string) (case "denied" string) (case "failed" string)))
    (export "run-error" (type (eq $re)))))
  (alias export $types "run-error" (type $run-error))
  (core module $m
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
      (global.set $heap (i32.add (local.get $p) (local.get 3)))
      (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
        (then (drop (memory.grow (i32.add (i32.const 1)
          (i32.div_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65536)))))))
      (local.get $p))
    (func $down (param $n i32) (result i32)
      (if (result i32) (i32.eqz (local.get $n))
        (then (i32.const 0))
        (else (i32.add (i32.const 1) (call $down (i32.sub (local.get $n) (i32.const 1)))))))
    (func (export "run") (param $ptr i32) (param $len i32) (result i32)
      (local $i i32) (local $sum i32)
      ;; A first byte `r` asks for recursion as deep as the input is long.
      (if (i32.and (i32.gt_u (local.get $len) (i32.const 0))
                   (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 114)))
        (then (local.set $sum (call $down (local.get $len)))))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $sum (i32.add (local.get $sum) (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (local.get $ptr))
      (i32.store (i32.const 24) (local.get $len))
      (i32.const 16)))
  (core instance $i (instantiate $m))
  (func (export "run") (param "input" (list u8)) (result (result (list u8) (error $run-error)))
    (canon lift (core func $i "run") (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))"#;

fn host_with_summer() -> (TestHost, String) {
    let t = test_host();
    let bytes = wat::parse_str(SUMMER).unwrap();
    let id = t.host.upload(manifest("summer", 0, ResourcePolicy::CallerPays, Limits::default()), &bytes).unwrap().id;
    (t, id)
}

fn fuel(t: &TestHost, id: &str, input: &[u8]) -> u64 {
    let report = t.host.invoke(fuelhost::Invocation::new("bob", id, input.to_vec())).unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(report.output, input, "the summer returns its input");
    report.resources_consumed.fuel
}

#[test]
fn the_fuel_of_small_programs_is_pinned() {
    let (t, id) = host_with_summer();
    let measured: Vec<(&str, u64)> = vec![
        ("empty input", fuel(&t, &id, b"")),
        ("1 byte", fuel(&t, &id, b"a")),
        ("10 bytes", fuel(&t, &id, b"abcdefghij")),
        ("1000 bytes", fuel(&t, &id, &[b'x'; 1000])),
        ("recursion 100 deep", fuel(&t, &id, &[b'r'; 100])),
    ];
    let golden: Vec<(&str, u64)> = vec![
        ("empty input", GOLDEN[0]),
        ("1 byte", GOLDEN[1]),
        ("10 bytes", GOLDEN[2]),
        ("1000 bytes", GOLDEN[3]),
        ("recursion 100 deep", GOLDEN[4]),
    ];
    assert_eq!(
        measured, golden,
        "fuel accounting changed: if intended, update GOLDEN and say why in the commit (it changes every bill)"
    );
}

/// The pinned numbers, in the order of the test above.
const GOLDEN: [u64; 5] = [42, 58, 202, 16_042, 2_650];

#[test]
fn fuel_is_deterministic_and_linear_in_the_work() {
    let (t, id) = host_with_summer();
    let runs: Vec<u64> = (0..3).map(|_| fuel(&t, &id, b"same input every time")).collect();
    assert!(runs.windows(2).all(|w| w[0] == w[1]), "the same call costs the same fuel: {runs:?}");
    // Each further byte costs the same: one loop iteration.
    let (f10, f100, f1000) = (fuel(&t, &id, &[b'x'; 10]), fuel(&t, &id, &[b'x'; 100]), fuel(&t, &id, &[b'x'; 1000]));
    assert!(f100 > f10, "{f10} {f100}");
    assert_eq!((f1000 - f100) % 900, 0, "a whole number of fuel per byte: {f100} {f1000}");
    assert_eq!((f1000 - f100) / 900, (f100 - f10) / 90, "the same fuel per byte at any length");
}
