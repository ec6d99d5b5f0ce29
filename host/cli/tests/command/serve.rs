//! The `fuelhost` command end to end: `fuelhost serve` in a child process
//! on a loopback port, and the client commands a user types against it:
//! log in, create agents, mint, upload, invoke, look at the bill, as tables
//! and as `--json`; errors say what to fix and exit non-zero; SIGTERM
//! stops the server cleanly.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub(super) const BIN: &str = env!("CARGO_BIN_EXE_fuelhost");

pub(super) fn guests_dir() -> PathBuf {
    std::env::var_os("FUELHOST_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/fuelhost/guests"))
}

pub(super) struct Server {
    child: Child,
    pub(super) url: String,
    admin_key: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn serve() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, format!("data_dir = {:?}\nlisten = \"127.0.0.1:0\"\n", dir.path().join("data"))).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("FUELHOST_DATA_DIR")
        .env_remove("FUELHOST_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin_key = None;
    let url = loop {
        let line = lines.next().expect("the server exited before listening").unwrap();
        if let Some(k) = line.strip_prefix("bootstrap admin key (shown once, keep it safe): ") {
            admin_key = Some(k.to_string());
        }
        if let Some(u) = line.strip_prefix("fuelhost serving on ") {
            break u.to_string();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, url, admin_key: admin_key.expect("a first start prints the admin key"), _dir: dir }
}

struct Run {
    ok: bool,
    code: i32,
    stdout: String,
    stderr: String,
}

/// `fuelhost ARGS` with the client config in `home`.
fn fuelhost(home: &Path, args: &[&str]) -> Run {
    // The toolchains `fuelhost build` uses are in the real home's cache.
    let cache = std::env::var_os("FUELHOST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/fuelhost"));
    let out = Command::new(BIN)
        .args(args)
        .env("FUELHOST_CACHE", cache)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("FUELHOST_CONFIG")
        .env_remove("FUELHOST_URL")
        .env_remove("FUELHOST_API_KEY")
        .output()
        .unwrap();
    Run {
        ok: out.status.success(),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(super) fn ok(home: &Path, args: &[&str]) -> String {
    let r = fuelhost(home, args);
    assert!(r.ok, "fuelhost {args:?} failed:\n{}\n{}", r.stdout, r.stderr);
    r.stdout
}

pub(super) fn json(home: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ok(home, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("fuelhost {args:?} --json is not JSON ({e}):\n{out}"))
}

#[test]
fn a_user_serves_uploads_invokes_and_reads_the_bill_from_the_command_line() {
    let server = serve();
    let admin_home = tempfile::tempdir().unwrap();
    let alice_home = tempfile::tempdir().unwrap();
    let bob_home = tempfile::tempdir().unwrap();
    let admin = admin_home.path();

    // Log in as the admin: the URL and key land in ~/.config/fuelhost/config.toml.
    ok(admin, &["login", "--url", &server.url, "--api-key", &server.admin_key]);
    let saved = std::fs::read_to_string(admin.join(".config/fuelhost/config.toml")).unwrap();
    assert!(saved.contains(&server.url), "{saved}");
    let alice_key = json(admin, &["agent", "create", "alice"])["api_key"].as_str().unwrap().to_string();
    let bob_key = json(admin, &["agent", "create", "bob"])["api_key"].as_str().unwrap().to_string();
    ok(admin, &["mint", "bob", "scrip", "1000", "--id", "seed-bob"]);
    ok(admin, &["mint", "bob", "fuel", "1000000000", "--id", "seed-bob-fuel"]);
    ok(alice_home.path(), &["login", "--url", &server.url, "--api-key", &alice_key]);

    // Alice uploads an artifact (a manifest in TOML, a real component).
    let manifest = alice_home.path().join("echo.toml");
    std::fs::write(
        &manifest,
        "owner = \"alice\"\nname = \"echo\"\nversion = \"0.1.0\"\nprice = 7\nresource_policy = \"caller_pays\"\n",
    )
    .unwrap();
    let component = guests_dir().join("rust-echo.wasm");
    let out = ok(alice_home.path(), &["upload", manifest.to_str().unwrap(), component.to_str().unwrap()]);
    assert!(out.starts_with("uploaded alice/echo@0.1.0"), "{out}");
    let listed = ok(alice_home.path(), &["artifacts", "list"]);
    assert!(listed.lines().any(|l| l.starts_with("alice/echo@0.1.0") && l.contains("caller_pays")), "{listed}");

    // Bob invokes it with flags only (no config file), sees output and bill.
    let bob = bob_home.path();
    let conn = ["--url", server.url.as_str(), "--api-key", bob_key.as_str()];
    let out = ok(bob, &[&conn[..], &["invoke", "alice/echo@0.1.0", "hello", "--id", "call-1"]].concat());
    assert!(out.starts_with("hello\n---\n"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("charged to") && l.ends_with("bob")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("price paid") && l.ends_with(" 7")), "{out}");
    let report = json(bob, &[&conn[..], &["invoke", "alice/echo@0.1.0", "hello", "--id", "call-1"]].concat());
    assert_eq!(report["replayed"], true, "the same id is not charged twice: {report}");
    assert_eq!(report["charged_to"], "bob");

    // The bill: bob paid 7 scrip once; alice earned it.
    let b = json(bob, &[&conn[..], &["balance", "bob"]].concat());
    assert_eq!(b["balances"]["scrip"]["posted"], 993, "{b}");
    let table = ok(bob, &[&conn[..], &["balance", "bob"]].concat());
    assert!(table.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["scrip", "993", "0", "993"]), "{table}");
    let usage = json(bob, &[&conn[..], &["usage"]].concat());
    assert_eq!(usage["records"].as_array().unwrap().len(), 1, "{usage}");
    let a = json(alice_home.path(), &["balance", "alice"]);
    assert_eq!(a["balances"]["scrip"]["posted"], 7);

    // Transfers move scrip and are idempotent by id.
    ok(bob, &[&conn[..], &["transfer", "alice", "3", "--id", "tip-1"]].concat());
    ok(bob, &[&conn[..], &["transfer", "alice", "3", "--id", "tip-1"]].concat());
    assert_eq!(json(bob, &[&conn[..], &["balance", "bob"]].concat())["balances"]["scrip"]["posted"], 990);

    // A task runs the same call through the server's queue.
    let submit = ["task", "submit", "alice/echo@0.1.0", "queued", "--priority", "high", "--id", "job-1"];
    let t = json(bob, &[&conn[..], &submit].concat());
    assert_eq!((t["id"].as_str(), t["priority"].as_str()), (Some("job-1"), Some("high")), "{t}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while json(bob, &[&conn[..], &["task", "show", "job-1"]].concat())["state"] != "completed" {
        assert!(std::time::Instant::now() < deadline, "the task never completed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let shown = ok(bob, &[&conn[..], &["task", "show", "job-1"]].concat());
    assert!(shown.lines().any(|l| l.starts_with("job-1") && l.contains("completed")), "{shown}");
    let late = fuelhost(bob, &[&conn[..], &["task", "cancel", "job-1"]].concat());
    assert!(!late.ok && late.stderr.contains("already completed"), "{}", late.stderr);
    assert_eq!(json(bob, &[&conn[..], &["balance", "bob"]].concat())["balances"]["scrip"]["posted"], 983);
    // A task that waits for another; a cycle is refused; breakers list.
    let waits =
        ["task", "submit", "alice/echo@0.1.0", "x", "--id", "job-3", "--after", "job-2", "--timeout-ms", "9000"];
    let t = json(bob, &[&conn[..], &waits].concat());
    assert_eq!((t["depends_on"][0].as_str(), t["timeout_ms"].as_u64()), (Some("job-2"), Some(9000)), "{t}");
    let cycle = fuelhost(
        bob,
        &[&conn[..], &["task", "submit", "alice/echo@0.1.0", "x", "--id", "job-2", "--after", "job-3"]].concat(),
    );
    assert!(!cycle.ok && cycle.stderr.contains("job-2 -> job-3 -> job-2"), "{}", cycle.stderr);
    let breakers = ok(bob, &[&conn[..], &["task", "breakers"]].concat());
    assert!(breakers.contains("ARTIFACT") && breakers.contains("TIMES OPENED"), "{breakers}");
    ok(bob, &[&conn[..], &["task", "cancel", "job-3"]].concat());
    let nobody = fuelhost(bob, &[&conn[..], &["task", "submit", "--capability", "fly", "x"]].concat());
    assert!(!nobody.ok && nobody.stderr.contains("no artifact declares capability `fly`"), "{}", nobody.stderr);

    // An agent registered with a configuration file.
    let config = admin.join("carol.toml");
    let rules = "[rules.quiet]\neffect = \"deny\"\naction = \"transfer\"\nreason = \"carol keeps her scrip\"\n";
    std::fs::write(&config, format!("[budget]\nscrip = 25\n[limits]\nconcurrent_tasks = 1\n{rules}")).unwrap();
    let carol = json(admin, &["agent", "create", "carol", "--agent-config", config.to_str().unwrap()]);
    assert!(carol["api_key"].is_string(), "{carol}");
    assert_eq!(json(admin, &["balance", "carol"])["balances"]["scrip"]["posted"], 25);
    let rules = json(admin, &["policy", "list"]);
    assert_eq!(rules["rules"][0]["name"], "carol/quiet", "{rules}");

    // Errors name the problem and exit non-zero.
    let denied = fuelhost(bob, &[&conn[..], &["balance", "alice"]].concat());
    assert!(!denied.ok && denied.stderr.contains("may not read"), "{}", denied.stderr);
    let nokey = fuelhost(bob, &["--url", &server.url, "balance", "bob"]);
    assert!(!nokey.ok && nokey.stderr.contains("fuelhost login"), "{}", nokey.stderr);
    let bad_id = fuelhost(bob, &[&conn[..], &["artifacts", "show", "echo"]].concat());
    assert!(!bad_id.ok && bad_id.stderr.contains("owner/name@version"), "{}", bad_id.stderr);
    let down = fuelhost(bob, &["--url", "http://127.0.0.1:9", "--api-key", "x", "balance", "bob"]);
    assert!(!down.ok && down.stderr.contains("cannot reach the server"), "{}", down.stderr);

    // The admin sees the audit log and the stats.
    let audit = json(admin, &["audit", "--kind", "invoke"]);
    assert!(!audit["entries"].as_array().unwrap().is_empty(), "{audit}");
    let stats = ok(admin, &["stats"]);
    assert!(stats.contains("usage records"), "{stats}");
}

/// Log in as the admin (client config in `h`), create `alice` and `bob`,
/// fund bob with `scrip` and plenty of fuel; their API keys.
pub(super) fn alice_and_bob(server: &Server, h: &Path, scrip: u64) -> (String, String) {
    ok(h, &["login", "--url", &server.url, "--api-key", &server.admin_key]);
    let alice = json(h, &["agent", "create", "alice"])["api_key"].as_str().unwrap().to_string();
    let bob = json(h, &["agent", "create", "bob"])["api_key"].as_str().unwrap().to_string();
    ok(h, &["mint", "bob", "scrip", &scrip.to_string(), "--id", "s"]);
    ok(h, &["mint", "bob", "fuel", "100000000000", "--id", "f"]);
    (alice, bob)
}

/// What a script sees: an exit code per kind of outcome, errors as JSON
/// under `--json`, the newest audit entries first, tables for people.
#[test]
fn scripts_read_the_exit_code_and_json_errors() {
    let server = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (alice, bob) = alice_and_bob(&server, h, 10);
    let upload = |name: &str, guest: &str, price: u64, fuel: u64| {
        let manifest = h.join(format!("{name}.toml"));
        std::fs::write(
            &manifest,
            format!(
                "owner = \"alice\"\nname = \"{name}\"\nversion = \"1\"\nprice = {price}\nresource_policy = \"caller_pays\"\n[limits]\nfuel = {fuel}\n"
            ),
        )
        .unwrap();
        let component = guests_dir().join(format!("{guest}.wasm"));
        ok(h, &["--api-key", &alice, "upload", manifest.to_str().unwrap(), component.to_str().unwrap()]);
    };
    upload("probe", "rust-probe", 0, 100_000);
    upload("dear", "rust-echo", 100, 1_000_000);
    upload("adder", "rust-adder", 0, 1_000_000);
    let as_bob = |args: &[&str]| fuelhost(h, &[&["--api-key", bob.as_str()][..], args].concat());

    // A component of its own interfaces, called by function.
    let sum = as_bob(&["invoke", "alice/adder@1", "--export", "add", "--args", "[1, 2]"]);
    assert!(sum.ok && sum.stdout.starts_with("3\n---\n"), "{}{}", sum.stdout, sum.stderr);
    let bad = as_bob(&["invoke", "alice/adder@1", "--export", "add", "--args", r#"[1, "x"]"#]);
    assert!(!bad.ok && bad.stderr.contains(r#"argument b: expected u32, got "x""#), "{}", bad.stderr);
    let bad = as_bob(&["invoke", "alice/adder@1", "--export", "add", "--args", "[1,"]);
    assert!(!bad.ok && bad.stderr.contains("--args is not JSON"), "{}", bad.stderr);

    let ran = as_bob(&["invoke", "alice/probe@1", "spin:100000000"]);
    assert_eq!(ran.code, 5, "a call that ran out of fuel: {}{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.lines().any(|l| l.starts_with("outcome") && l.ends_with("out_of_fuel")), "{}", ran.stdout);
    let ran = as_bob(&["--json", "invoke", "alice/probe@1", "spin:100000000"]);
    let report: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!((ran.code, report["outcome"].as_str()), (5, Some("out_of_fuel")), "{report}");

    let poor = as_bob(&["invoke", "alice/dear@1", "x"]);
    assert_eq!(poor.code, 4, "{}", poor.stderr);
    assert!(poor.stderr.starts_with("error: ") && poor.stderr.contains("HTTP 402"), "{}", poor.stderr);
    let poor = as_bob(&["--json", "invoke", "alice/dear@1", "x"]);
    let e: Value = serde_json::from_str(&poor.stdout).unwrap_or_else(|e| panic!("{e}: {}", poor.stdout));
    assert_eq!((e["error"]["status"].as_u64(), e["error"]["exit_code"].as_u64()), (Some(402), Some(4)), "{e}");
    assert!(e["error"]["code"].as_str().unwrap().starts_with("insufficient"), "{e}");
    assert_eq!(poor.code, 4);

    assert_eq!(as_bob(&["invoke", "alice/none@1", "x"]).code, 8);
    assert_eq!(as_bob(&["balance", "alice"]).code, 3);
    assert_eq!(fuelhost(h, &["--url", &server.url, "--api-key", "nope", "balance", "bob"]).code, 7);
    let down = fuelhost(h, &["--url", "http://127.0.0.1:9", "--json", "balance", "bob"]);
    let e: Value = serde_json::from_str(&down.stdout).unwrap();
    assert_eq!((down.code, e["error"]["code"].as_str()), (6, Some("unreachable")), "{e}");
    let typo = fuelhost(h, &["mint", "bob", "scrips", "1"]);
    assert_eq!(typo.code, 2);
    assert!(typo.stderr.contains("a similar value exists: 'scrip'"), "{}", typo.stderr);
    assert_eq!(as_bob(&["invoke", "alice/probe@1", "echo:ok"]).code, 0);
    let local = fuelhost(h, &["serve", "--url", "http://127.0.0.1:1"]);
    assert_eq!(local.code, 2, "a client flag on a local command: {}", local.stderr);
    assert!(local.stderr.contains("--url is for the commands that talk to a server"), "{}", local.stderr);

    // The audit log, newest first by default; a time filter.
    let all = json(h, &["audit", "--oldest-first", "--limit", "1000"]);
    let newest = all["entries"].as_array().unwrap().last().unwrap()["seq"].clone();
    let first = json(h, &["audit", "--limit", "1"]);
    assert_eq!(first["entries"][0]["seq"], newest, "{first}");
    let none = json(h, &["audit", "--until", "2000-01-01"]);
    assert!(none["entries"].as_array().unwrap().is_empty(), "{none}");
    let recent = json(h, &["audit", "--since", "1h", "--kind", "invoke"]);
    assert!(!recent["entries"].as_array().unwrap().is_empty(), "{recent}");

    // Archiving on demand: with no horizon set, nothing moves.
    let archived = ok(h, &["archive"]);
    assert!(archived.lines().any(|l| l.starts_with("usage records") && l.ends_with(" 0")), "{archived}");
    assert_eq!(as_bob(&["archive"]).code, 3, "admin only");

    // Completions for the shells.
    let bash = ok(h, &["completions", "bash"]);
    assert!(bash.contains("complete") && bash.contains("fuelhost") && bash.contains("invoke"), "{bash}");

    // A transfer a policy wants approved: parked (exit 11, nothing moved),
    // then made once by its approver.
    let rules = h.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"big-transfers\"\neffect = \"require_approval\"\naction = \"transfer\"\n\
         approvers = [\"alice\"]\nwhen = [{ field = \"price\", greater_than = 5 }]\n",
    )
    .unwrap();
    ok(h, &["policy", "set-rules", rules.to_str().unwrap()]);
    let listed = ok(h, &["policy", "list"]);
    assert!(listed.contains("price>5; approvers alice"), "the table shows when a rule applies: {listed}");
    let wrong = h.join("wrong-rules.toml");
    std::fs::write(
        &wrong,
        "[[rule]]\nname = \"big\"\neffect = \"require_approval\"\naction = \"transfer\"\n\
         approvers = [\"alice\"]\nwhen = [{ field = \"amount\", greater_than = 5 }]\n",
    )
    .unwrap();
    let refused = fuelhost(h, &["policy", "set-rules", wrong.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "a rule that could never apply: {}", refused.stderr);
    assert!(refused.stderr.contains("`amount` is no field") && refused.stderr.contains("price"), "{}", refused.stderr);
    assert!(ok(h, &["policy", "list"]).contains("price>5"), "the rules in force are unchanged");
    let key = ok(h, &["key", "create", "bob", "--key-only"]);
    assert!(key.starts_with("fh_") && key.lines().count() == 1, "{key}");
    let parked = as_bob(&["transfer", "alice", "8", "--id", "big-1"]);
    assert_eq!(parked.code, 11, "{}{}", parked.stdout, parked.stderr);
    assert!(
        parked.stdout.contains("`transfer:big-1`") && parked.stdout.contains("pending_approval"),
        "{}",
        parked.stdout
    );
    let listed = ok(h, &["approvals", "list"]);
    assert!(listed.contains("transfer:big-1") && listed.contains("8 scrip"), "the admin sees it: {listed}");
    let own = fuelhost(h, &["--api-key", &alice, "approvals", "approve", "transfer:big-1"]);
    assert_eq!(own.code, 3, "the recipient may not approve: {}", own.stderr);
    let made = ok(h, &["approvals", "approve", "transfer:big-1"]);
    assert!(made.contains("8 scrip bob -> alice (big-1)"), "{made}");
    let bob_scrip = json(h, &["balance", "bob"])["balances"]["scrip"]["posted"].as_u64();
    assert_eq!(bob_scrip, Some(2), "moved once");

    // Tables for people: sizes in units, digests short.
    let listed = ok(h, &["artifacts", "list"]);
    let row = listed.lines().find(|l| l.starts_with("alice/dear@1")).unwrap();
    assert!(row.contains(" KiB") || row.contains(" MiB"), "{listed}");
    let digest = json(h, &["artifacts", "show", "alice/dear@1"])["digest"].as_str().unwrap().to_string();
    assert!(row.ends_with(&digest[..12]), "{listed}");
}

#[test]
fn sigterm_lets_a_call_in_flight_finish_then_stops() {
    let mut server = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(h, &["login", "--url", &server.url, "--api-key", &server.admin_key]);
    let alice = json(h, &["agent", "create", "alice"])["api_key"].as_str().unwrap().to_string();
    let bob = json(h, &["agent", "create", "bob"])["api_key"].as_str().unwrap().to_string();
    ok(h, &["mint", "bob", "fuel", "100000000000", "--id", "f"]);
    let manifest = h.join("probe.toml");
    std::fs::write(&manifest, "owner = \"alice\"\nname = \"probe\"\nversion = \"1\"\nprice = 0\nresource_policy = \"caller_pays\"\n[limits]\nfuel = 100000000000\ntimeout_ms = 60000\n").unwrap();
    let probe = guests_dir().join("rust-probe.wasm");
    ok(h, &["--api-key", &alice, "upload", manifest.to_str().unwrap(), probe.to_str().unwrap()]);

    // A call that spins for a while, started before the signal.
    let call = Command::new(BIN)
        .args(["--url", &server.url, "--api-key", &bob, "--json", "invoke", "alice/probe@1", "spin:300000000"])
        .env("HOME", h)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the server has the call (its reservation is an open hold).
    let started = std::time::Instant::now();
    loop {
        let b = json(h, &["balance", "bob"]);
        if b["balances"]["fuel"]["held"].as_u64().unwrap() > 0 {
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "the call never started: {b}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());

    let out = call.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the call in flight was cut: {text}{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["outcome"], "success", "{report}");
    assert!(server.child.wait().unwrap().success(), "then the server exits 0");
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = serve();
    let home = tempfile::tempdir().unwrap();
    ok(home.path(), &["--url", &server.url, "--api-key", &server.admin_key, "key", "list"]);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

/// From nothing to a charged call in each language: `fuelhost new`, then
/// `fuelhost upload DIR` (which builds), then `invoke`; and policy plugin
/// projects (Python, then C) added with `policy add NAME DIR` judge the
/// next calls.
#[test]
fn a_new_project_builds_uploads_and_runs_in_each_language() {
    let server = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (alice, bob) = alice_and_bob(&server, h, 1_000);
    let work = tempfile::tempdir().unwrap();
    for lang in ["rust", "python", "js", "ts", "c"] {
        let dir = work.path().join(format!("hello-{lang}"));
        let made = ok(h, &["new", "artifact", lang, dir.to_str().unwrap()]);
        assert!(made.contains("next: fuelhost upload"), "{made}");
        let up = ok(h, &["--api-key", &alice, "upload", dir.to_str().unwrap()]);
        assert!(up.starts_with(&format!("uploaded alice/hello-{lang}@0.1.0")), "{up}");
        let out = ok(h, &["--api-key", &bob, "invoke", &format!("alice/hello-{lang}@0.1.0"), "world"]);
        assert!(out.starts_with("hello, world\n---\n"), "{lang}: {out}");
        // The template's own error: an empty input is a `run-error`.
        let empty = fuelhost(h, &["--api-key", &bob, "invoke", &format!("alice/hello-{lang}@0.1.0"), ""]);
        assert_eq!(empty.code, 5, "{lang}: {}{}", empty.stdout, empty.stderr);
        assert!(
            empty.stdout.lines().any(|l| l.starts_with("outcome") && l.ends_with("run_error")),
            "{lang}: {}",
            empty.stdout
        );
    }
    // Uploading a version again is refused before anything is built,
    // naming the file to change.
    let again = fuelhost(h, &["--api-key", &alice, "upload", work.path().join("hello-python").to_str().unwrap()]);
    assert_eq!(again.code, 9, "{}", again.stderr);
    assert!(again.stderr.contains("raise `version`") && again.stderr.contains("manifest.toml"), "{}", again.stderr);
    assert!(!again.stderr.contains("building"), "nothing was built: {}", again.stderr);
    // A policy plugin project: built and added; it denies a dear call.
    let dir = work.path().join("limit");
    ok(h, &["new", "policy", "python", dir.to_str().unwrap()]);
    ok(h, &["policy", "add", "limit", dir.to_str().unwrap()]);
    let manifest = work.path().join("dear.toml");
    std::fs::write(
        &manifest,
        "owner = \"alice\"\nname = \"dear\"\nversion = \"1\"\nprice = 101\nresource_policy = \"caller_pays\"\n",
    )
    .unwrap();
    let echo = guests_dir().join("rust-echo.wasm");
    ok(h, &["--api-key", &alice, "upload", manifest.to_str().unwrap(), echo.to_str().unwrap()]);
    let denied = fuelhost(h, &["--api-key", &bob, "invoke", "alice/dear@1", "x"]);
    assert_eq!(denied.code, 3, "{}", denied.stderr);
    assert!(denied.stderr.contains("limit: alice/dear@1 costs 101 scrip"), "{}", denied.stderr);

    // The C policy template, in the Python one's place: it denies the same
    // call with its own name, and lets a cheap one through.
    ok(h, &["policy", "remove", "limit"]);
    let c_dir = work.path().join("c-limit");
    ok(h, &["new", "policy", "c", c_dir.to_str().unwrap()]);
    ok(h, &["policy", "add", "c-limit", c_dir.to_str().unwrap()]);
    let denied = fuelhost(h, &["--api-key", &bob, "invoke", "alice/dear@1", "x"]);
    assert_eq!(denied.code, 3, "{}", denied.stderr);
    assert!(denied.stderr.contains("c-limit: alice/dear@1 costs 101 scrip, over 100"), "{}", denied.stderr);
    let cheap = ok(h, &["--api-key", &bob, "invoke", "alice/hello-c@0.1.0", "again"]);
    assert!(cheap.starts_with("hello, again\n---\n"), "{cheap}");

    // A policy project is not an artifact: said before anything is built.
    let policy = fuelhost(h, &["--api-key", &alice, "upload", dir.to_str().unwrap()]);
    assert_eq!(policy.code, 2);
    assert!(policy.stderr.contains("has no manifest.toml"), "{}", policy.stderr);

    // What is wrong is said: an existing folder, a folder with no project.
    let again = fuelhost(h, &["new", "artifact", "rust", work.path().join("hello-rust").to_str().unwrap()]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("exists and is not empty"), "{}", again.stderr);
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let nothing = fuelhost(h, &["build", empty.to_str().unwrap()]);
    assert_eq!(nothing.code, 2);
    assert!(nothing.stderr.contains("holds no project fuelhost knows"), "{}", nothing.stderr);
}
