//! `wasi:cli/command` components as artifacts: a plain Rust `main` built
//! for wasm32-wasip2 (no SDK) runs with the call's input as stdin, its
//! arguments and environment from the manifest (`[command]`), and its
//! stdout as the output; exit code 0 is success, any other a failed
//! outcome quoting its stderr; metered, limited and charged like any
//! artifact.

use fuelhost::{CommandStart, Invocation, Limits, Outcome, ResourcePolicy};
use fuelhost_tests::{assert_conserved, guest, manifest, test_host};

/// `rust-wc` as `alice/wc@0.1.0` at price 2, started with `-x` and
/// `WC_LABEL=count `, its output held to `output_bytes`.
fn upload_wc(host: &fuelhost::Host, output_bytes: u64) -> String {
    let mut m = manifest("wc", 2, ResourcePolicy::CallerPays, Limits { output_bytes, ..Limits::default() });
    m.command = CommandStart {
        args: vec!["-x".into()],
        env: [("WC_LABEL".to_string(), "count ".to_string())].into_iter().collect(),
    };
    host.upload(m, &guest("rust-wc")).unwrap().id
}

#[test]
fn a_command_reads_stdin_and_its_stdout_is_the_output() {
    let t = test_host();
    let wc = upload_wc(&t.host, 1 << 20);
    let report = t.host.invoke(Invocation::new("bob", &wc, "hello world\nbye\n")).unwrap();
    assert!(report.success, "{:?}", report.error);
    assert_eq!(String::from_utf8(report.output).unwrap(), "count -x: 2 3 16\n");
    assert_eq!(report.price_paid, 2);
    assert!(report.resources_consumed.fuel > 0);
    assert!(t.host.artifact_exports(&wc).unwrap().unwrap().is_empty(), "a command is called with input");
    assert_conserved(&t.host);
}

#[test]
fn a_nonzero_exit_code_fails_the_call_quoting_stderr_and_a_loop_runs_out_of_fuel() {
    let t = test_host();
    let wc = upload_wc(&t.host, 1 << 20);
    let failed = t.host.invoke(Invocation::new("bob", &wc, "fail")).unwrap();
    assert_eq!(failed.outcome, Outcome::RunError);
    let why = failed.error.unwrap();
    // WASI 0.2's `exit` carries success or failure alone: code 3 reaches
    // the host as a failure, code 1.
    assert!(why.contains("the command exited with code 1") && why.contains("asked to fail"), "{why}");
    assert_eq!(failed.price_paid, 0, "the price is paid on success only");
    assert!(failed.resources_consumed.fuel > 0, "what it burned is charged");

    let spun = t.host.invoke(Invocation::new("bob", &wc, "spin").fuel_limit(3_000_000)).unwrap();
    assert_eq!((spun.outcome, spun.resources_consumed.fuel), (Outcome::OutOfFuel, 3_000_000));
    assert_conserved(&t.host);
}

#[test]
fn a_command_over_its_output_limit_ends_output_limit_and_bad_settings_are_refused() {
    let t = test_host();
    let wc = upload_wc(&t.host, 8);
    let over = t.host.invoke(Invocation::new("bob", &wc, "a b c")).unwrap();
    assert_eq!(over.outcome, Outcome::OutputLimit, "{:?}", over.error);
    assert!(over.output.is_empty());

    let mut m = manifest("wc-bad", 0, ResourcePolicy::CallerPays, Limits::default());
    m.command.env.insert("A=B".into(), "x".into());
    let refused = t.host.upload(m, &guest("rust-wc")).unwrap_err().to_string();
    assert!(refused.contains("command.env"), "{refused}");
}

/// A C `main` built against wasi-libc with the preview-1 command adapter
/// (`plugins/c-upper`, no SDK, no bindings): the same contract.
#[test]
fn a_c_command_built_with_wasi_libc_runs_and_is_charged() {
    let t = test_host();
    let mut m = manifest("upper", 2, ResourcePolicy::CallerPays, Limits { fuel: 50_000_000, ..Limits::default() });
    m.command = CommandStart { args: vec!["say:".into()], env: Default::default() };
    let upper = t.host.upload(m, &guest("c-upper")).unwrap().id;
    let report = t.host.invoke(Invocation::new("bob", &upper, "hello, c")).unwrap();
    assert!(report.success, "{:?}", report.error);
    assert_eq!(String::from_utf8(report.output).unwrap(), "say: HELLO, C");
    assert_eq!(report.price_paid, 2);
    assert!(report.resources_consumed.fuel > 0);

    let failed = t.host.invoke(Invocation::new("bob", &upper, "fail")).unwrap();
    assert_eq!((failed.outcome, failed.price_paid), (Outcome::RunError, 0));
    assert!(failed.error.unwrap().contains("asked to fail"));
    let spun = t.host.invoke(Invocation::new("bob", &upper, "spin")).unwrap();
    assert_eq!((spun.outcome, spun.resources_consumed.fuel), (Outcome::OutOfFuel, 50_000_000));
    assert_conserved(&t.host);
}
