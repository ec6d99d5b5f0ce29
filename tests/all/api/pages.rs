//! Listings come a page at a time (`limit`, then the position of the last
//! item: `before` for usage and transfers, newest first; `after` for the
//! audit log and keys), readiness answers without the database, and an
//! invocation's output travels once: as text, or as base64 when it is not
//! UTF-8.

use serde_json::{json, Value};

use super::{agents, call, mint, start, upload};

/// Follow `path`'s pages of `size` (cursor parameter `cursor`, items under
/// `field`) to the end; every item, in order.
fn all_pages(s: &super::Server, key: &str, path: &str, field: &str, cursor: &str, size: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &next {
            None => format!("{path}{sep}limit={size}"),
            Some(n) => format!("{path}{sep}limit={size}&{cursor}={n}"),
        };
        let (st, v) = call("GET", &s.url(&url), Some(key), None);
        assert_eq!(st, 200, "{url}: {v}");
        let page = v[field].as_array().unwrap().clone();
        assert!(page.len() <= size, "{url}: a page holds at most its limit");
        items.extend(page);
        next = match &v["next"] {
            Value::Null => break,
            Value::String(n) => Some(n.clone()),
            n => Some(n.to_string()),
        };
    }
    items
}

#[test]
fn every_listing_pages_to_the_end_without_repeats() {
    let s = start(8 << 20);
    let keys = agents(&s, &["alice", "bob"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    mint(&s, "bob", "scrip", 1_000);
    mint(&s, "bob", "fuel", 10_000_000_000);
    let manifest =
        json!({"owner": "alice", "name": "echo", "version": "1", "price": 1, "resource_policy": "caller_pays"});
    assert_eq!(upload(&s, alice, manifest, &fuelhost_tests::guest("rust-echo")).0, 201);
    for i in 0..7 {
        let (st, v) = call(
            "POST",
            &s.url("/v1/invoke"),
            Some(bob),
            Some(json!({"artifact": "alice/echo@1", "input": format!("call {i}")})),
        );
        assert_eq!(st, 200, "{v}");
    }
    let usage = all_pages(&s, bob, "/v1/usage", "records", "before", 3);
    assert_eq!(usage.len(), 7);
    let seqs: Vec<i64> = usage.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats: {seqs:?}");
    assert_eq!(usage[0]["output"], "call 6", "the output travels as text");
    // Bob's transfers: his mints, and a price and a fuel charge per call.
    let transfers = all_pages(&s, bob, "/v1/transfers", "transfers", "before", 4);
    assert_eq!(transfers.len(), 2 + 7 * 2);
    let seqs: Vec<i64> = transfers.iter().map(|t| t["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] >= w[1]), "{seqs:?}");
    let audit = all_pages(&s, &s.admin, "/v1/audit?subject=bob", "entries", "after", 2);
    assert_eq!(audit.len(), 7, "one invoke decision per call");
    let newest = all_pages(&s, &s.admin, "/v1/audit?subject=bob&newest_first=true", "entries", "before", 2);
    let seqs = |v: &[Value]| v.iter().map(|e| e["seq"].as_i64().unwrap()).collect::<Vec<_>>();
    let mut oldest_first = seqs(&audit);
    oldest_first.reverse();
    assert_eq!(seqs(&newest), oldest_first, "newest first is the same entries the other way round");
    // A period, through positions: the entries at or after the fourth's time.
    let at = audit[3]["at_ms"].as_i64().unwrap();
    let since = all_pages(&s, &s.admin, &format!("/v1/audit?subject=bob&since_ms={at}"), "entries", "after", 2);
    assert!(since.iter().all(|e| e["at_ms"].as_i64().unwrap() >= at));
    assert_eq!(since.len(), audit.iter().filter(|e| e["at_ms"].as_i64().unwrap() >= at).count());
    let until = all_pages(&s, &s.admin, &format!("/v1/audit?subject=bob&until_ms={at}"), "entries", "after", 2);
    assert_eq!(since.len() + until.len(), 7, "a period and the time before it cover the log");
    // `after` and `before` bound a window of positions in either order.
    let (a, b) = (oldest_first[5], oldest_first[1]);
    for order in ["false", "true"] {
        let url = format!("/v1/audit?subject=bob&after={a}&before={b}&newest_first={order}");
        let (st, v) = call("GET", &s.url(&url), Some(&s.admin), None);
        assert_eq!(st, 200, "{v}");
        let mut window = seqs(v["entries"].as_array().unwrap());
        window.sort();
        assert_eq!(window, seqs(&audit)[2..5], "{url}: {v}");
    }
    let keys = all_pages(&s, &s.admin, "/v1/keys", "keys", "after", 1);
    assert_eq!(keys.len(), 3, "the admin's and the two agents'");
}

#[test]
fn readiness_answers_without_the_database_and_outputs_travel_once() {
    let s = start(8 << 20);
    let (st, v) = call("GET", &s.url("/readyz"), None, None);
    assert_eq!((st, v["status"].as_str()), (200, Some("ready")));
    let keys = agents(&s, &["alice", "bob"]);
    mint(&s, "bob", "fuel", 10_000_000_000);
    let manifest = json!({"owner": "alice", "name": "probe", "version": "1", "resource_policy": "caller_pays"});
    assert_eq!(upload(&s, &keys[0], manifest, &fuelhost_tests::guest("rust-probe")).0, 201);
    let (st, v) = call(
        "POST",
        &s.url("/v1/invoke"),
        Some(&keys[1]),
        Some(json!({"artifact": "alice/probe@1", "input": "echo:plain text"})),
    );
    assert_eq!((st, v["output"].as_str()), (200, Some("plain text")), "{v}");
    assert!(v.get("output_base64").is_none() && v.get("output_text").is_none(), "once: {v}");
}
