//! The docs run: every code block of `README.md` and `docs/*.md` is
//! checked, so a renamed field, a stale output or a command that no longer
//! works fails the tests instead of a reader.
//!
//! What each kind of block must satisfy:
//!
//! - `sh`: run as written by bash (`set -euo pipefail`) in a scratch
//!   folder with a fresh `HOME` and `fuelhost` on the `PATH`; port 8080
//!   becomes a free port. Lines `# text` right after a command are what the
//!   command prints: each must match one of its output lines, in order
//!   (runs of spaces count as one, `...` stands for any text). The set-up
//!   block (`scripts/demo.sh`, `scripts/test.sh`) is not run here (it is
//!   what runs the tests): its scripts must exist and `.ci/run` must run
//!   the test command.
//! - `rust`: a run of consecutive lines of a file that is compiled and run
//!   by the tests (blank lines and indentation aside): `examples/embed.rs`,
//!   the guest `plugins/rust-echo`, or `tests/all/readme_examples.rs`.
//! - `python`: what `fuelhost new artifact python hello` writes.
//! - `toml`: parsed by what reads it: `[[rule]]` tables by the rules
//!   parser, a manifest by the manifest parser, anything else by
//!   `fuelhost serve --config FILE --check`.
//! - a block without a language: the demo's output (checked against the
//!   demo by `tests/all/demo.rs`), or a tree of the repository, whose paths
//!   must exist.
//!
//! Besides the blocks, every repository path a document names in backticks
//! must exist.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_fuelhost");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// One fenced block of a document.
struct Block {
    /// `README.md:12`: where its fence opens.
    at: String,
    /// The fence's language (`sh`, `rust`, ...), empty when none.
    lang: String,
    body: String,
}

/// The documents: the README, then `docs/*.md` in name order.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root.join("README.md"));
    docs
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

fn blocks_of(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (n, line) in text.lines().enumerate() {
        // A fence may be indented (in a list) and made of tildes.
        let fence = line.trim_start().strip_prefix("```").or_else(|| line.trim_start().strip_prefix("~~~"));
        match (&mut open, fence) {
            (None, Some(info)) => {
                let lang = info.split([' ', ',']).next().unwrap_or("").to_string();
                open = Some(Block { at: format!("{}:{}", relative(path), n + 1), lang, body: String::new() });
            }
            (Some(_), Some("")) => blocks.push(open.take().unwrap()),
            (Some(block), _) => {
                block.body.push_str(line);
                block.body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "{}: a code block is never closed", relative(path));
    blocks
}

fn all_blocks() -> Vec<Block> {
    documents().iter().flat_map(|d| blocks_of(d)).collect()
}

/// Whether `line` matches `pattern`: equal once runs of whitespace are
/// one space, with `...` in the pattern standing for any text.
fn matches(pattern: &str, line: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (pattern, line) = (norm(pattern), norm(line));
    let pieces: Vec<&str> = pattern.split("...").collect();
    if pieces.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !line.starts_with(first) || !line[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    true
}

/// A shell block as commands, each with the output lines it shows.
fn commands(body: &str) -> Vec<(String, Vec<String>)> {
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    let mut expecting = false;
    let mut continued = false;
    for line in body.lines() {
        if continued {
            let (cmd, _) = steps.last_mut().unwrap();
            cmd.push('\n');
            cmd.push_str(line);
            continued = line.ends_with('\\');
            continue;
        }
        if let Some(shown) = line.strip_prefix("# ").filter(|shown| !shown.trim().is_empty()) {
            if expecting {
                steps.last_mut().unwrap().1.push(shown.to_string());
            }
            continue;
        }
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            expecting = false;
            continue;
        }
        steps.push((line.to_string(), Vec::new()));
        expecting = true;
        continued = line.ends_with('\\');
    }
    steps
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

const STEP_MARK: &str = "@@docs-step-end@@";

/// Run a shell block as written; panics with the command, what it should
/// have shown and what it did show when an output line is missing.
fn run_shell(block: &Block) {
    let steps = commands(&block.body);
    let port = free_port().to_string();
    let mut script = String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    for (cmd, _) in &steps {
        script.push_str(&cmd.replace("8080", &port));
        script.push_str(&format!("\necho; echo {STEP_MARK}\n"));
    }
    script.push_str("wait\n");
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let cache = std::env::var_os("FUELHOST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/fuelhost"));
    // A server that never came up must fail the test, not hang it.
    let mut cmd = Command::new("timeout");
    cmd.args(["600", "bash", "-c"]).arg(&script).current_dir(work.path()).env("PATH", path).env("HOME", home.path());
    cmd.env("FUELHOST_CACHE", cache);
    // Rust's own homes stay where they are when HOME moves.
    let home_dir = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    cmd.env("CARGO_HOME", std::env::var_os("CARGO_HOME").map(PathBuf::from).unwrap_or(home_dir.join(".cargo")));
    cmd.env("RUSTUP_HOME", std::env::var_os("RUSTUP_HOME").map(PathBuf::from).unwrap_or(home_dir.join(".rustup")));
    for var in [
        "FUELHOST_URL",
        "FUELHOST_API_KEY",
        "FUELHOST_CONFIG",
        "XDG_CONFIG_HOME",
        "FUELHOST_DATA_DIR",
        "FUELHOST_LISTEN",
        "FUELHOST_SERVE_CONFIG",
        "FUELHOST_LOG",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the block at {} failed ({}; 124: still running after 600 s):\n{stdout}\n{stderr}",
        block.at,
        out.status
    );
    let outputs: Vec<&str> = stdout.split(STEP_MARK).collect();
    assert!(outputs.len() > steps.len(), "{}: not every command ran:\n{stdout}\n{stderr}", block.at);
    for ((cmd, shown), output) in steps.iter().zip(&outputs) {
        let mut lines = output.lines();
        for want in shown {
            assert!(
                lines.any(|got| matches(want, got)),
                "{}: `{cmd}` should print a line like\n    {want}\nafter the lines above it; it printed:\n{output}",
                block.at
            );
        }
    }
}

/// The set-up block names the two scripts, and CI runs the test one.
fn check_setup_block(block: &Block) {
    let root = root();
    for line in block.body.lines() {
        let script = line.split_whitespace().next().unwrap();
        assert!(root.join(script).is_file(), "{}: `{script}` does not exist", block.at);
    }
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.contains("scripts/test.sh"), ".ci/run must run the README's test command, scripts/test.sh");
}

/// Files whose lines a `rust` block may show: each is compiled and run by
/// the tests.
const RUST_SOURCES: [&str; 4] = [
    "examples/embed.rs",
    "plugins/rust-echo/src/lib.rs",
    "plugins/rust-llm-ask/src/lib.rs",
    "tests/all/readme_examples.rs",
];

fn check_rust(block: &Block) {
    let lines = |text: &str| -> Vec<String> {
        text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
    };
    let shown = lines(&block.body);
    assert!(shown.len() >= 3, "{}: a Rust block this short would match almost anywhere; show more", block.at);
    let found = RUST_SOURCES.iter().any(|file| {
        let source = lines(&std::fs::read_to_string(root().join(file)).unwrap());
        source.windows(shown.len()).any(|w| w == shown.as_slice())
    });
    assert!(
        found,
        "{}: this Rust block is not a run of lines of {} (blank lines and indentation aside); put it in one of \
         them, where it is compiled and run, or make it one:\n{}",
        block.at,
        RUST_SOURCES.join(", "),
        block.body
    );
}

fn check_python(block: &Block) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).args(["new", "artifact", "python", "hello"]).current_dir(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let made = std::fs::read_to_string(dir.path().join("hello/app.py")).unwrap();
    assert_eq!(block.body, made, "{}: the Python block is not the app.py `fuelhost new` writes", block.at);
}

fn check_toml(block: &Block) {
    if block.body.contains("[[rule]]") {
        if let Err(e) = fuelhost::RuleSet::from_toml(&block.body) {
            panic!("{}: the rules do not parse: {e}", block.at);
        }
    } else if block.body.starts_with("owner =") {
        if let Err(e) = fuelhost::Manifest::from_toml(&block.body) {
            panic!("{}: the manifest does not parse: {e}", block.at);
        }
    } else {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.toml");
        std::fs::write(&file, &block.body).unwrap();
        let out = Command::new(BIN).arg("serve").arg("--config").arg(&file).arg("--check").output().unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("settings ok"),
            "{}: `fuelhost serve --check` refuses this file:\n{}{}",
            block.at,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A block without a language: the demo's output, or a tree of paths.
fn check_plain(block: &Block) {
    if block.body.starts_with("$ scripts/demo.sh\n") {
        let demo = std::fs::read_to_string(root().join("tests/all/demo.rs")).unwrap();
        assert!(demo.contains("$ scripts/demo.sh"), "tests/all/demo.rs checks the README's demo output");
        return;
    }
    let mut paths = Vec::new();
    for line in block.body.lines() {
        // A graph names each crate's folder in parentheses; a tree starts
        // each entry at the margin, its continuation lines indented.
        let in_parens: Vec<&str> =
            line.split('(').skip(1).filter_map(|p| p.split(')').next()).filter(|p| !p.contains(' ')).collect();
        if !in_parens.is_empty() {
            paths.extend(in_parens.into_iter().map(String::from));
        } else if !line.starts_with(' ') && !line.is_empty() {
            let mut words = line.split_whitespace();
            let dir = words.next().unwrap();
            paths.push(dir.to_string());
            // The files a folder's line names: `scripts/  setup.sh, demo.sh`.
            if dir.ends_with('/') {
                let files = words
                    .map(|w| w.trim_matches(|c: char| matches!(c, ',' | ':' | ';' | '(' | ')')))
                    .filter(|w| [".sh", ".py", ".rs", ".toml"].iter().any(|ext| w.ends_with(ext)) && !w.contains('/'));
                paths.extend(files.map(|f| format!("{dir}{f}")));
            }
        }
    }
    assert!(!paths.is_empty(), "{}: a block without a language that is neither the demo nor a tree", block.at);
    for path in &paths {
        assert!(root().join(path).exists(), "{}: `{path}` does not exist", block.at);
    }
}

#[test]
fn every_code_block_of_the_docs_is_checked() {
    let blocks = all_blocks();
    assert!(blocks.len() >= 15, "the documents lost their examples: {} blocks", blocks.len());
    let mut ran = 0;
    for block in &blocks {
        match block.lang.as_str() {
            "sh" if block.body.starts_with("scripts/demo.sh") => check_setup_block(block),
            "sh" => {
                run_shell(block);
                ran += 1;
            }
            "rust" => check_rust(block),
            "python" => check_python(block),
            "toml" => check_toml(block),
            "" => check_plain(block),
            other => panic!("{}: no check knows `{other}` blocks: add one to this test", block.at),
        }
    }
    assert!(ran >= 3, "the quick start, the project block and the curl examples run");
}

/// A path in backticks that starts at a top-level folder of the repository
/// names a file or folder that exists.
#[test]
fn every_repository_path_the_docs_name_exists() {
    let root = root();
    let tops: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".git" && n != "target")
        .collect();
    let mut missing = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (n, line) in text.lines().enumerate() {
            for quoted in line.split('`').skip(1).step_by(2) {
                let path = quoted.split_whitespace().next().unwrap_or("").trim_start_matches("./");
                let top = path.split('/').next().unwrap_or("");
                let looks_like_path = path.contains('/')
                    && tops.iter().any(|t| t == top)
                    && !path.contains(['*', '{', '<', '$'])
                    && !path.contains("NAME");
                if looks_like_path && !root.join(path.trim_end_matches(['.', ',', ':'])).exists() {
                    missing.push(format!("{}:{}: `{path}`", relative(&doc), n + 1));
                }
            }
        }
    }
    assert!(missing.is_empty(), "the docs name paths that do not exist:\n{}", missing.join("\n"));
}

#[test]
fn a_shown_line_matches_as_the_module_docs_say() {
    assert!(matches(
        "uploaded alice/hello@0.1.0 (... bytes, sha256 ...)",
        "uploaded alice/hello@0.1.0 (12 bytes, sha256 ab)"
    ));
    assert!(matches("scrip  999 0   999", "scrip             999     0     999"));
    assert!(matches("inv-...", "inv-123"));
    assert!(!matches("scrip 999", "scrip 998"));
    assert!(!matches("a...c", "ab"));
    let steps = commands("x \\\n  y\n# out\n\n# a comment\nz   # a note\n");
    assert_eq!(steps, vec![("x \\\n  y".to_string(), vec!["out".to_string()]), ("z   # a note".to_string(), vec![])]);
}
