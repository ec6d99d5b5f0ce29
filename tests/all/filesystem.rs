//! The filesystem sandbox: an artifact sees its owner's directory as `/`
//! and nothing else: not `..`, not absolute host paths, not a symlink that
//! points out, not the caller's directory.

use fuelhost::{Invocation, Limits, Outcome, ResourcePolicy};
use fuelhost_tests::{test_host, upload};

fn setup() -> (fuelhost_tests::TestHost, String) {
    let t = test_host();
    let id = upload(&t.host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    (t, id)
}

fn run(t: &fuelhost_tests::TestHost, id: &str, cmd: &str) -> fuelhost::InvocationReport {
    t.host.invoke(Invocation::new("bob", id, cmd)).unwrap()
}

#[test]
fn writes_land_in_the_owners_directory_and_persist() {
    let (t, id) = setup();
    assert_eq!(run(&t, &id, "write:notes.txt:hello").outcome, Outcome::Success);
    let on_host = t.host.agent_dir("alice").unwrap().join("notes.txt");
    assert_eq!(std::fs::read_to_string(on_host).unwrap(), "hello");
    assert_eq!(run(&t, &id, "read:notes.txt").output_text(), "hello");
    assert_eq!(run(&t, &id, "read:/notes.txt").output_text(), "hello");
    assert!(!t.host.agent_dir("bob").unwrap().join("notes.txt").exists());
}

#[test]
fn cannot_climb_out_with_dot_dot() {
    let (t, id) = setup();
    // A file next to the agents' folders, one level up from alice's root.
    std::fs::write(t.host.agent_dir("alice").unwrap().join("../outside.txt"), "secret").unwrap();
    for cmd in ["read:../outside.txt", "read:/../outside.txt", "read:./../../fuelhost.db", "ls:.."] {
        let r = run(&t, &id, cmd);
        assert_eq!(r.outcome, Outcome::RunError, "{cmd} must fail, got {:?}", r.output_text());
    }
}

#[test]
fn absolute_host_paths_resolve_inside_the_root() {
    let (t, id) = setup();
    let r = run(&t, &id, "read:/etc/passwd");
    assert_eq!(r.outcome, Outcome::RunError);
    assert!(!r.output_text().contains("root:"));
    let host_path = t.dir.path().join("fuelhost.db");
    let r = run(&t, &id, &format!("read:{}", host_path.display()));
    assert_eq!(r.outcome, Outcome::RunError);
}

#[test]
fn a_symlink_pointing_out_cannot_be_followed() {
    let (t, id) = setup();
    let secret = t.dir.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    let root = t.host.agent_dir("alice").unwrap();
    std::os::unix::fs::symlink(&secret, root.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../secret.txt", root.join("escape-relative")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
    for cmd in ["read:escape", "read:escape-relative", "read:etc-link/passwd", "write:escape:overwritten"] {
        let r = run(&t, &id, cmd);
        assert_eq!(r.outcome, Outcome::RunError, "{cmd} must fail, got {:?}", r.output_text());
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "top secret");
}

#[test]
fn the_callers_files_are_not_visible() {
    let (t, id) = setup();
    std::fs::write(t.host.agent_dir("bob").unwrap().join("bob-private.txt"), "mine").unwrap();
    assert_eq!(run(&t, &id, "write:a.txt:x").outcome, Outcome::Success);
    assert_eq!(run(&t, &id, "ls:/").output_text(), "a.txt");
    assert_eq!(run(&t, &id, "read:bob-private.txt").outcome, Outcome::RunError);
}

#[test]
fn disk_growth_is_charged_to_the_payer_and_capped_by_its_budget() {
    let (t, id) = setup();
    let before = t.host.balances("bob").unwrap().disk_bytes.available();
    let r = run(&t, &id, "write:data.txt:0123456789");
    assert_eq!(r.resources_consumed.disk_bytes, 10);
    assert_eq!(before - t.host.balances("bob").unwrap().disk_bytes.available(), 10);

    // carol has 5 bytes of disk budget: a 10-byte write is over it, so it
    // fails as it is made (WASI's quota error), writes nothing and is
    // charged nothing.
    t.host.create_agent("carol").unwrap();
    fuelhost_tests::fund(&t.host, "carol", 100, 10_000_000, 5);
    let r = t.host.invoke(Invocation::new("carol", &id, "write:big.txt:0123456789")).unwrap();
    assert_eq!(r.outcome, Outcome::DiskLimit, "{:?}", r.error);
    assert!(r.error.as_deref().unwrap().contains("payer carol has 5 left"), "{:?}", r.error);
    assert_eq!(r.resources_consumed.disk_bytes, 0);
    let on_disk = t.host.agent_dir("alice").unwrap().join("big.txt");
    assert_eq!(std::fs::metadata(on_disk).map(|m| m.len()).unwrap_or(0), 0, "nothing over budget lands on disk");
    assert_eq!(t.host.balances("carol").unwrap().disk_bytes.available(), 5);
    fuelhost_tests::assert_conserved(&t.host);
}

/// Every file an artifact opens is a `file-open` action (target: the path,
/// attribute `mode`: read, write, create or truncate) put to the policy
/// chain: a rule can fence off paths and modes, for guests in any language,
/// and the decisions are audited.
#[test]
fn file_opens_are_put_to_the_policy_chain() {
    let (t, id) = setup();
    let wordfreq = upload(&t.host, "python-wordfreq", "wordfreq", 0, ResourcePolicy::CallerPays, Limits::default());
    t.host
        .set_policy_rules(
            r#"
[[rule]]
name = "no-secrets"
effect = "deny"
action = "file-open"
target = "secrets/*"
reason = "secrets are off limits"

[[rule]]
name = "totals-are-read-only"
effect = "deny"
action = "file-open"
target = "wordfreq-total.txt"
reason = "the running total is read-only"
when = [{ field = "mode", equals = "truncate" }]
"#,
        )
        .unwrap();
    assert_eq!(run(&t, &id, "write:notes.txt:fine").outcome, Outcome::Success);
    std::fs::create_dir_all(t.host.agent_dir("alice").unwrap().join("secrets")).unwrap();
    std::fs::write(t.host.agent_dir("alice").unwrap().join("secrets/key"), "k").unwrap();
    for cmd in ["write:secrets/new:x", "read:secrets/key", "read:/secrets/key"] {
        let r = run(&t, &id, cmd);
        assert_eq!(r.outcome, Outcome::RunError, "{cmd}");
        assert!(r.error.unwrap().contains("ermission denied"), "{cmd}");
    }
    assert!(!t.host.agent_dir("alice").unwrap().join("secrets/new").exists());
    // The Python artifact may read its total but not rewrite it: its
    // `open(..., "w")` creates and truncates, which is mode `truncate`.
    let r = t.host.invoke(Invocation::new("bob", &wordfreq, "one two")).unwrap();
    assert_eq!(r.outcome, Outcome::RunError);
    assert!(r.error.unwrap().contains("cannot record the running total"));
    let audit = t.host.audit_log().unwrap();
    let opens: Vec<_> = audit.iter().filter(|e| e.kind == "file-open").collect();
    assert!(opens.iter().any(|e| e.target == "notes.txt" && e.decision == "allow" && e.subject == "alice"));
    assert!(opens.iter().any(|e| e.target == "secrets/key" && e.decided_by.as_deref() == Some("rule no-secrets")));
    assert!(opens
        .iter()
        .any(|e| e.target == "wordfreq-total.txt" && e.decided_by.as_deref() == Some("rule totals-are-read-only")));
}
