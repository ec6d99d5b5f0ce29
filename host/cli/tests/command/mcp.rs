//! MCP, driven by the official Python SDK (PyPI `mcp`, installed by
//! scripts/setup.sh) as an agent would: over streamable HTTP at
//! `fuelhost serve`'s `/mcp`, and over stdio through `fuelhost mcp`. The
//! tools are the caller's artifacts with their JSON Schemas and prices; a
//! call is charged like any other and says what it consumed and who paid.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::serve::{alice_and_bob, guests_dir, ok, serve, BIN};

/// The MCP client script run with `mode` against `target`, as `key`.
fn mcp_client(mode: &str, target: &str, url: &str, key: &str, calls: Value) -> Value {
    let cache = std::env::var_os("FUELHOST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/fuelhost"));
    let python = cache.join("mcp-venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup.sh", python.display());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp/client.py");
    let out = Command::new(python)
        .arg(script)
        .args([mode, target, &calls.to_string()])
        .env("FUELHOST_API_KEY", key)
        .env("FUELHOST_URL", url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the MCP client failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn upload(h: &Path, key: &str, name: &str, guest: &str, extra: &str) {
    let manifest = h.join(format!("{name}.toml"));
    std::fs::write(
        &manifest,
        format!(
            "owner = \"alice\"\nname = \"{name}\"\nversion = \"1\"\nprice = 3\nresource_policy = \"caller_pays\"\n{extra}"
        ),
    )
    .unwrap();
    let component = guests_dir().join(format!("{guest}.wasm"));
    ok(h, &["--api-key", key, "upload", manifest.to_str().unwrap(), component.to_str().unwrap()]);
}

#[test]
fn an_mcp_client_lists_and_calls_charged_tools_over_http_and_stdio() {
    let server = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (alice, bob) = alice_and_bob(&server, h, 100);
    upload(h, &alice, "adder", "rust-adder", "description = \"Adds numbers\"\n");
    upload(h, &alice, "echo", "rust-echo", "");
    upload(h, &alice, "hello", "rust-http-hello", "");

    let calls = json!([
        ["alice__adder__add", {"a": 20, "b": 22}],
        ["alice__echo", {"input": "hi"}],
        ["alice__adder__add", {"a": 1, "b": "x"}],
    ]);
    let endpoint = format!("{}/mcp", server.url);
    let http = mcp_client("http", &endpoint, &server.url, &bob, calls.clone());
    assert_eq!(http["server"], "fuelhost");
    let tools = http["tools"].as_array().unwrap();
    let add = tools.iter().find(|t| t["name"] == "alice__adder__add").unwrap_or_else(|| panic!("{tools:?}"));
    let description = add["description"].as_str().unwrap();
    assert!(description.starts_with("Adds numbers"), "{description}");
    assert!(description.contains("Price: 3 scrip") && description.contains("charged to you"), "{description}");
    assert_eq!(add["inputSchema"]["properties"]["a"]["type"], "integer", "{add}");
    assert_eq!(add["inputSchema"]["required"], json!(["a", "b"]));
    assert!(tools.iter().any(|t| t["name"] == "alice__echo"));
    assert!(!tools.iter().any(|t| t["name"].as_str().unwrap().contains("hello")), "HTTP components have a route");

    let results = http["calls"].as_array().unwrap();
    let sum = &results[0];
    assert_eq!((sum["isError"].as_bool(), sum["text"][0].as_str()), (Some(false), Some("42")), "{sum}");
    let s = &sum["structured"];
    assert_eq!(
        (s["result"].as_u64(), s["price_paid"].as_u64(), s["charged_to"].as_str()),
        (Some(42), Some(3), Some("bob"))
    );
    assert!(s["resources_consumed"]["fuel"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(results[1]["text"][0], "hi");
    let bad = &results[2];
    assert_eq!(bad["isError"], true);
    assert!(bad["text"][0].as_str().unwrap().contains(r#"argument b: expected u32, got "x""#), "{bad}");

    // The same through `fuelhost mcp`, a local process speaking stdio.
    let stdio = mcp_client("stdio", BIN, &server.url, &bob, calls);
    assert_eq!(stdio["tools"], http["tools"]);
    assert_eq!(stdio["calls"][0]["text"][0], "42");

    // Two successful calls each way, 3 scrip each; the refused one is free.
    let balances = super::serve::json(h, &["--api-key", &bob, "balance", "bob"]);
    assert_eq!(balances["balances"]["scrip"]["posted"].as_u64(), Some(88), "{balances}");
}
