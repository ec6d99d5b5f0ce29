//! MCP at `/mcp`, as JSON-RPC on the wire (the official SDK's view is the
//! command tests' `mcp`): the handshake, notifications, batches, errors by
//! the protocol's codes, the key's agent as the caller, and the tools the
//! policy chain would deny left out of the list.

use serde_json::{json, Value};

use super::{agents, call, mint, send, start, upload};
use fuelhost_tests::guest;

fn rpc(s: &super::Server, key: Option<&str>, body: Value) -> super::Reply {
    send("POST", &s.url("/mcp"), key, &[("Content-Type", "application/json")], body.to_string().as_bytes())
}

#[test]
fn the_mcp_endpoint_speaks_json_rpc_and_lists_only_what_the_caller_may_call() {
    let s = start(1 << 20);
    let keys = agents(&s, &["alice", "bob"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    mint(&s, "bob", "scrip", 100);
    mint(&s, "alice", "fuel", 500_000_000);
    for name in ["echo", "secret"] {
        let m = json!({"owner": "alice", "name": name, "version": "1", "price": 2, "resource_policy": "owner_pays"});
        assert_eq!(upload(&s, alice, m, &guest("rust-echo")).0, 201);
    }
    s.host
        .set_policy_rules(
            "[[rule]]\nname = \"no-secrets\"\neffect = \"deny\"\naction = \"invoke\"\nsubject = \"bob\"\n\
             target = \"alice/secret@*\"\nreason = \"not for bob\"\n",
        )
        .unwrap();

    let init = rpc(
        &s,
        Some(bob),
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
    );
    assert_eq!(init.status, 200, "{}", init.text);
    assert_eq!(init.body["result"]["protocolVersion"], "2025-03-26", "the client's version, when spoken");
    assert_eq!(init.body["result"]["serverInfo"]["name"], "fuelhost");
    let later = rpc(
        &s,
        Some(bob),
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2099-01-01"}}),
    );
    assert_eq!(later.body["result"]["protocolVersion"], "2025-06-18", "else the newest this server speaks");
    let note = rpc(&s, Some(bob), json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    assert_eq!((note.status, note.text.as_str()), (202, ""));

    // Bob sees echo, not the artifact a rule keeps from him; its owner pays.
    let list = rpc(&s, Some(bob), json!({"jsonrpc": "2.0", "id": "l", "method": "tools/list"}));
    let names: Vec<&str> =
        list.body["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice__echo"], "{}", list.text);
    let description = list.body["result"]["tools"][0]["description"].as_str().unwrap();
    assert!(
        description.contains("Price: 2 scrip") && description.contains("charged to its owner, alice"),
        "{description}"
    );

    // A batch: a call, a ping, a notification (no answer), an unknown method.
    let batch = rpc(
        &s,
        Some(bob),
        json!([
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "alice__echo", "arguments": {"input": "hey"}}},
            {"jsonrpc": "2.0", "id": 3, "method": "ping"},
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}},
            {"jsonrpc": "2.0", "id": 4, "method": "resources/list"},
            {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "alice__secret", "arguments": {"input": "x"}}},
        ]),
    );
    let replies = batch.body.as_array().unwrap_or_else(|| panic!("{}", batch.text));
    assert_eq!(replies.len(), 4, "{}", batch.text);
    let result = &replies[0]["result"];
    assert_eq!((result["content"][0]["text"].as_str(), result["isError"].as_bool()), (Some("hey"), Some(false)));
    assert_eq!(
        (result["structuredContent"]["charged_to"].as_str(), result["structuredContent"]["price_paid"].as_u64()),
        (Some("alice"), Some(2))
    );
    assert_eq!(replies[1]["result"], json!({}));
    assert_eq!(replies[2]["error"]["code"], -32601);
    assert_eq!(replies[3]["error"]["code"], -32602, "a denied tool is no tool of bob's: {}", replies[3]);

    // Arguments of the wrong shape, bad JSON, no key, an admin key, GET.
    let bad = rpc(
        &s,
        Some(bob),
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "alice__echo", "arguments": {}}}),
    );
    assert_eq!(bad.body["error"]["code"], -32602, "{}", bad.text);
    let garbled = send("POST", &s.url("/mcp"), Some(bob), &[("Content-Type", "application/json")], b"{not json");
    assert_eq!((garbled.status, garbled.body["error"]["code"].as_i64()), (400, Some(-32700)), "{}", garbled.text);
    assert_eq!(rpc(&s, None, json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).status, 401);
    assert_eq!(rpc(&s, Some(&s.admin), json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).status, 403);
    assert_eq!(send("GET", &s.url("/mcp"), Some(bob), &[], b"").status, 405);

    // One call charged: alice's fuel paid it, bob paid her 2 scrip.
    let (_, b) = call("GET", &s.url("/v1/agents/bob"), Some(bob), None);
    assert_eq!(b["balances"]["scrip"]["posted"].as_u64(), Some(98), "{b}");
}

/// `tools/list` comes in pages of 200 artifacts: `nextCursor` says where
/// the next starts, and the pages together list each tool once.
#[test]
fn tools_are_listed_in_pages() {
    let s = start(1 << 20);
    let keys = agents(&s, &["alice", "bob"]);
    let bob = &keys[1];
    let echo = guest("rust-echo");
    for i in 0..205 {
        let m = fuelhost_tests::manifest(
            &format!("echo-{i:03}"),
            1,
            fuelhost::ResourcePolicy::CallerPays,
            fuelhost::Limits::default(),
        );
        s.host.upload(m, &echo).unwrap();
    }
    let page = |cursor: Option<&str>| {
        let params = cursor.map_or(json!({}), |c| json!({"cursor": c}));
        rpc(&s, Some(bob), json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params})).body
    };
    let first = page(None);
    let tools = first["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 200);
    let cursor = first["result"]["nextCursor"].as_str().expect("a next page");
    let second = page(Some(cursor));
    let rest: Vec<&str> =
        second["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(rest, ["alice__echo-200", "alice__echo-201", "alice__echo-202", "alice__echo-203", "alice__echo-204"]);
    assert!(second["result"].get("nextCursor").is_none(), "the last page says so");
}
