//! The README's quick start, run as it is written: a shell block a user
//! pastes, against a real `fuelhost serve` (on a free port instead of
//! 8080), in a scratch folder, with `fuelhost` on the PATH.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_fuelhost");

/// The shell block after "A quick start" in the README.
fn quick_start() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let from = readme.find("A quick start, on one machine").expect("the README has a quick start");
    let block = &readme[from..];
    let start = block.find("```sh\n").expect("a shell block") + "```sh\n".len();
    let end = start + block[start..].find("```").unwrap();
    block[start..end].to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn the_readme_quick_start_runs_as_written() {
    let script = quick_start().replace("8080", &free_port().to_string());
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let cache = std::env::var_os("FUELHOST_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/fuelhost"));
    // Whatever happens, the server started in the background is stopped.
    let wrapped = format!("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}\nwait\n");
    let out = Command::new("bash")
        .arg("-c")
        .arg(&wrapped)
        .current_dir(work.path())
        .env("PATH", path)
        .env("HOME", home.path())
        .env("FUELHOST_CACHE", cache)
        .env_remove("FUELHOST_URL")
        .env_remove("FUELHOST_API_KEY")
        .env_remove("FUELHOST_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("FUELHOST_DATA_DIR")
        .env_remove("FUELHOST_LISTEN")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the quick start failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("uploaded alice/hello@0.1.0"), "{stdout}");
    assert!(stdout.contains("hello, world\n---\n"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["scrip", "999", "0", "999"]),
        "{stdout}"
    );
}
