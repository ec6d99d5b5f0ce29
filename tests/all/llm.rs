//! The `llm` capability end to end: a real guest (`plugins/rust-llm-ask`,
//! built against `fuelhost:host@0.2.0`) asks through the host's production
//! client, over real HTTP, an OpenAI-compatible server on loopback
//! (`fuelhost::llm::loopback`, deterministic; no model provider is
//! reachable from the machines this runs on). The tokens are held from the
//! payer's `llm_tokens`, charged as the provider reports them, and nothing
//! is charged for a request that gets no answer.

use fuelhost::llm::loopback::Loopback;
use fuelhost::{Asset, Host, Invocation, Limits, LlmProvider, Outcome, ResourcePolicy};
use fuelhost_tests::{assert_conserved, builder, fund, manifest};
use serde_json::{json, Value};

/// The key the loopback providers are given, through the environment.
const KEY_VAR: &str = "FUELHOST_TEST_LLM_KEY";
const KEY: &str = "sk-test-never-shown-9f8e7d";

struct LlmHost {
    host: Host,
    _dir: tempfile::TempDir,
}

/// A host whose providers are `providers` (name, server, models), with
/// `alice` (owner) and `bob` (caller) funded, bob with `tokens` llm_tokens
/// and alice with 10,000.
fn llm_host(providers: &[(&str, &Loopback, &[&str])], tokens: u64) -> LlmHost {
    std::env::set_var(KEY_VAR, KEY);
    let dir = tempfile::tempdir().unwrap();
    let mut b = builder(dir.path());
    for (name, server, models) in providers {
        let mut p = LlmProvider::new(*name, server.url(), models);
        p.api_key_env = Some(KEY_VAR.into());
        b = b.llm_provider(p);
    }
    let host = b.build().unwrap();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
        fund(&host, agent, 1_000, 1_000_000_000, 1 << 20);
    }
    if tokens > 0 {
        host.mint("bob-tokens", "bob", Asset::LlmTokens, tokens).unwrap();
    }
    host.mint("alice-tokens", "alice", Asset::LlmTokens, 10_000).unwrap();
    LlmHost { host, _dir: dir }
}

fn upload_ask(host: &Host, policy: ResourcePolicy) -> String {
    let limits = Limits { timeout_ms: 5_000, ..Limits::default() };
    host.upload(manifest("ask", 2, policy, limits), &fuelhost_tests::guest("rust-llm-ask")).unwrap().id
}

fn ask(host: &Host, id: &str, input: Value) -> fuelhost::InvocationReport {
    host.invoke(Invocation::new("bob", id, input.to_string())).unwrap()
}

fn tokens(host: &Host, agent: &str) -> fuelhost::AssetBalance {
    host.balances(agent).unwrap().llm_tokens
}

#[test]
fn an_artifact_asks_a_model_and_the_caller_pays_the_tokens_the_provider_reports() {
    let server = Loopback::start().unwrap();
    let t = llm_host(&[("local", &server, &["small"])], 1_000);
    let id = upload_ask(&t.host, ResourcePolicy::CallerPays);
    let r = ask(&t.host, &id, json!({"prompt": "hello there", "model": "small", "max_tokens": 16}));
    assert!(r.success, "{:?}", r.error);
    let out: Value = serde_json::from_slice(&r.output).unwrap();
    assert_eq!(out["text"], "echo: hello there");
    assert_eq!((out["provider"].as_str(), out["model"].as_str()), (Some("local"), Some("small")));
    // The loopback counts the prompt's words plus three a message, and the answer's words.
    assert_eq!((out["input_tokens"].as_u64(), out["output_tokens"].as_u64()), (Some(5), Some(3)));
    assert_eq!(r.resources_consumed.llm_tokens, 8);
    assert_eq!(r.charged_to.as_str(), "bob");
    let record = t.host.ledger().usage_record(&r.invocation_id).unwrap().unwrap();
    assert_eq!(record.consumed.llm_tokens, 8, "the usage record carries the tokens");
    assert_eq!(tokens(&t.host, "bob"), fuelhost::AssetBalance { posted: 992, held: 0 });
    assert_eq!(tokens(&t.host, "alice").posted, 10_000, "the owner's tokens are untouched under caller_pays");
    let charge = t.host.ledger().transfer_record(&format!("{}/llm", r.invocation_id)).unwrap().unwrap();
    assert_eq!((charge.from.as_str(), charge.to.as_str(), charge.amount), ("bob", "@consumed", 8));
    // The key went to the provider, and only there.
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(received[0].body["model"], "small");
    assert_eq!(received[0].body["max_tokens"], 16);
    assert!(!String::from_utf8_lossy(&r.output).contains(KEY));
    assert_conserved(&t.host);
}

#[test]
fn owner_pays_the_tokens_when_the_artifact_says_so_and_usage_is_what_the_provider_reports() {
    let server = Loopback::start().unwrap();
    let t = llm_host(&[("local", &server, &["small"])], 1_000);
    let id = upload_ask(&t.host, ResourcePolicy::OwnerPays);
    // The provider reports 40 + 2 tokens, whatever the text.
    let r = ask(&t.host, &id, json!({"prompt": "count me [usage:40,2]", "model": "small", "max_tokens": 16}));
    assert!(r.success, "{:?}", r.error);
    assert_eq!(r.resources_consumed.llm_tokens, 42);
    assert_eq!(tokens(&t.host, "alice"), fuelhost::AssetBalance { posted: 10_000 - 42, held: 0 });
    assert_eq!(tokens(&t.host, "bob").posted, 1_000);
    // More than was held (the estimate plus max-tokens): charged as reported.
    let r = ask(&t.host, &id, json!({"prompt": "count me [usage:500,300]", "model": "small", "max_tokens": 16}));
    assert_eq!(r.resources_consumed.llm_tokens, 800);
    // Asked three times in one call: the call is charged all three.
    let r = ask(&t.host, &id, json!({"prompt": "a b", "model": "small", "asks": 3}));
    assert_eq!(r.resources_consumed.llm_tokens, 3 * (5 + 3));
    assert_eq!(tokens(&t.host, "alice").held, 0);
    assert_conserved(&t.host);
}

#[test]
fn a_request_the_budget_cannot_cover_is_refused_and_nothing_is_held_or_charged() {
    let server = Loopback::start().unwrap();
    let t = llm_host(&[("local", &server, &["small"])], 20);
    let id = upload_ask(&t.host, ResourcePolicy::CallerPays);
    let r = ask(&t.host, &id, json!({"prompt": "hello", "model": "small", "max_tokens": 64}));
    assert_eq!(r.outcome, Outcome::RunError);
    let error = r.error.unwrap();
    assert!(error.contains("insufficient budget") && error.contains("20 llm_tokens available"), "{error}");
    assert!(error.contains("max-tokens (64)"), "it says how the hold was counted: {error}");
    assert_eq!(r.resources_consumed.llm_tokens, 0);
    assert_eq!(tokens(&t.host, "bob"), fuelhost::AssetBalance { posted: 20, held: 0 });
    assert_eq!(server.served(), 0, "nothing was sent");
    // Nobody minted tokens to carol: deny by default.
    t.host.create_agent("carol").unwrap();
    fund(&t.host, "carol", 100, 1_000_000_000, 0);
    let r =
        t.host.invoke(Invocation::new("carol", &id, json!({"prompt": "hi", "model": "small"}).to_string())).unwrap();
    assert!(r.error.unwrap().contains("0 llm_tokens available"));
    assert_conserved(&t.host);
}

#[test]
fn a_failing_provider_is_charged_nothing_the_next_answers_and_is_ranked_down() {
    let (down, up) = (Loopback::start().unwrap(), Loopback::start().unwrap());
    down.set_failing(true);
    // Equal in every score: ties go to the smaller name, so `a-down` is tried first.
    let t = llm_host(&[("a-down", &down, &["small"]), ("b-up", &up, &["small"])], 10_000);
    let id = upload_ask(&t.host, ResourcePolicy::CallerPays);
    for round in 0..5 {
        let r = ask(&t.host, &id, json!({"prompt": "hi", "model": "small", "max_tokens": 8}));
        assert!(r.success, "round {round}: {:?}", r.error);
        let out: Value = serde_json::from_slice(&r.output).unwrap();
        assert_eq!(out["provider"], "b-up");
        assert_eq!(r.resources_consumed.llm_tokens, 4 + 2, "only the answer's tokens are charged");
    }
    assert_eq!(down.served(), 1, "after its failure its reliability ranks it below the provider that answers");
    assert_eq!(tokens(&t.host, "bob"), fuelhost::AssetBalance { posted: 10_000 - 5 * 6, held: 0 });
    assert_conserved(&t.host);
}

#[test]
fn no_answer_charges_nothing_and_says_why() {
    let (one, two) = (Loopback::start().unwrap(), Loopback::start().unwrap());
    let t = llm_host(&[("one", &one, &["small"]), ("two", &two, &["small"])], 10_000);
    let id = upload_ask(&t.host, ResourcePolicy::CallerPays);
    // A provider that quotes the key back: the key is cut out.
    let r = ask(&t.host, &id, json!({"prompt": "x [leak]", "model": "small"}));
    let error = r.error.unwrap();
    assert!(error.contains("bad credentials: Bearer <key>") && !error.contains(KEY), "{error}");
    // (A refused request is not the provider's failure; the other three
    // are, and open both breakers by the third.)
    let cases = [
        ("[reject]", "provider failed", "refused the request"),
        ("[fail]", "provider failed", "HTTP 500"),
        ("[quota]", "unavailable", "out of quota"),
        ("[bad]", "provider failed", "not JSON"),
    ];
    for (marker, kind, detail) in cases {
        let r = ask(&t.host, &id, json!({"prompt": format!("x {marker}"), "model": "small"}));
        let error = r.error.clone().unwrap_or_default();
        assert!(error.contains(kind) && error.contains(detail), "{marker}: {error}");
        assert_eq!(r.resources_consumed.llm_tokens, 0, "{marker}");
        assert_eq!(tokens(&t.host, "bob"), fuelhost::AssetBalance { posted: 10_000, held: 0 }, "{marker}");
    }
    let r = ask(&t.host, &id, json!({"prompt": "hi", "model": "small"}));
    assert!(r.error.unwrap().contains("breaker open"), "three failures in a row keep both out for now");
    assert_conserved(&t.host);
}

#[test]
fn the_calls_deadline_ends_a_slow_request_and_nothing_is_charged() {
    let server = Loopback::start().unwrap();
    let t = llm_host(&[("local", &server, &["small"])], 1_000);
    let limits = Limits { timeout_ms: 300, ..Limits::default() };
    let id = t
        .host
        .upload(manifest("ask", 0, ResourcePolicy::CallerPays, limits), &fuelhost_tests::guest("rust-llm-ask"))
        .unwrap()
        .id;
    let started = std::time::Instant::now();
    let r = ask(&t.host, &id, json!({"prompt": "wait [slow:3000]", "model": "small"}));
    assert!(started.elapsed() < std::time::Duration::from_millis(2_500), "the deadline cut the request short");
    assert!(matches!(r.outcome, Outcome::Timeout | Outcome::RunError), "{:?}: {:?}", r.outcome, r.error);
    assert_eq!(r.resources_consumed.llm_tokens, 0);
    assert_eq!(tokens(&t.host, "bob"), fuelhost::AssetBalance { posted: 1_000, held: 0 });
    assert_conserved(&t.host);
}

/// A host with two providers: `cheap` (serving `small`: nearly free,
/// quality 30, an 8,192-token context) and `good` (serving `large`: 90
/// scrip per 1,000 tokens, quality 95, a 100,000-token context); alice and
/// bob funded, bob with 100,000 llm_tokens.
fn cheap_and_good(cheap: &Loopback, good: &Loopback) -> LlmHost {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LlmProvider::new("cheap", cheap.url(), &["small"]);
    c.output_price_per_1k = 1;
    c.quality = 30;
    let mut g = LlmProvider::new("good", good.url(), &["large"]);
    g.input_price_per_1k = 30;
    g.output_price_per_1k = 60;
    g.quality = 95;
    g.context_tokens = 100_000;
    let host = builder(dir.path()).llm_provider(c).llm_provider(g).build().unwrap();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
        fund(&host, agent, 1_000, 10_000_000_000, 1 << 20);
    }
    host.mint("bob-tokens", "bob", Asset::LlmTokens, 100_000).unwrap();
    LlmHost { host, _dir: dir }
}

#[test]
fn routing_picks_by_mode_and_unknown_models_are_refused_listing_what_is_served() {
    let (cheap, good) = (Loopback::start().unwrap(), Loopback::start().unwrap());
    let t = cheap_and_good(&cheap, &good);
    let host = &t.host;
    let id = upload_ask(host, ResourcePolicy::CallerPays);
    let provider = |input: Value| {
        let r = ask(host, &id, input);
        assert!(r.success, "{:?}", r.error);
        serde_json::from_slice::<Value>(&r.output).unwrap()["provider"].as_str().unwrap().to_string()
    };
    assert_eq!(provider(json!({"prompt": "hi", "route": "cost_optimized"})), "cheap");
    assert_eq!(provider(json!({"prompt": "hi", "route": "quality_optimized"})), "good");
    // Past the cheap one's context (8,192): only the large one holds it.
    assert_eq!(provider(json!({"prompt": "hi", "route": "cost_optimized", "max_tokens": 20_000})), "good");
    let r = ask(host, &id, json!({"prompt": "hi", "model": "huge"}));
    let error = r.error.unwrap();
    assert!(
        error.contains("no configured provider serves `huge`") && error.contains("cheap/small, good/large"),
        "{error}"
    );
    let r = ask(host, &id, json!({"prompt": "hi", "model": "small", "max_tokens": 0}));
    assert!(r.error.unwrap().contains("max-tokens is 0"));
    assert_conserved(host);
}

#[test]
fn policy_rules_see_each_request_and_may_deny_a_model_or_a_size() {
    let server = Loopback::start().unwrap();
    let t = llm_host(&[("local", &server, &["small", "large"])], 100_000);
    t.host
        .set_policy_rules(
            r#"
[[rule]]
name = "no-large-model"
effect = "deny"
action = "llm"
target = "local/large"
reason = "the large model is closed"

[[rule]]
name = "big-requests-need-approval"
effect = "require_approval"
action = "llm"
approvers = ["alice"]
when = [{ field = "estimated-tokens", greater_than = 1000 }]
"#,
        )
        .unwrap();
    let id = upload_ask(&t.host, ResourcePolicy::CallerPays);
    let r = ask(&t.host, &id, json!({"prompt": "hi", "model": "large"}));
    let error = r.error.unwrap();
    assert!(error.contains("denied") && error.contains("the large model is closed"), "{error}");
    let r = ask(&t.host, &id, json!({"prompt": "hi", "model": "small", "max_tokens": 2_000}));
    assert!(r.error.unwrap().contains("denied"), "an approval cannot be waited for inside a call");
    let r = ask(&t.host, &id, json!({"prompt": "hi", "model": "small", "max_tokens": 100}));
    assert!(r.success, "{:?}", r.error);
    assert_eq!(server.served(), 1, "refused requests were never sent");
    // An egress rule on the provider's host applies as well.
    let host_port = server.url().trim_start_matches("http://").trim_end_matches("/v1").to_string();
    t.host
        .set_policy_rules(&format!(
            "[[rule]]\nname = \"no-loopback\"\neffect = \"deny\"\naction = \"http-request\"\ntarget = \"{host_port}\"\nreason = \"closed\"\n"
        ))
        .unwrap();
    let r = ask(&t.host, &id, json!({"prompt": "hi", "model": "small"}));
    assert!(r.error.unwrap().contains("its host"), "egress rules apply to providers");
    assert_conserved(&t.host);
}

#[test]
fn a_host_without_providers_says_how_to_add_one() {
    let t = fuelhost_tests::test_host();
    let id = upload_ask(&t.host, ResourcePolicy::CallerPays);
    let r = ask(&t.host, &id, json!({"prompt": "hi", "model": "small"}));
    let error = r.error.unwrap();
    assert!(error.contains("unavailable") && error.contains("[[llm.providers]]"), "{error}");
    assert_conserved(&t.host);
}

#[test]
fn a_bad_provider_configuration_is_refused_when_the_host_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = LlmProvider::new("local", "http://127.0.0.1:9/v1", &["small"]);
    p.api_key_env = Some("FUELHOST_TEST_LLM_KEY_NOT_SET".into());
    let err = builder(dir.path()).llm_provider(p).build().err().expect("refused").to_string();
    assert!(err.contains("FUELHOST_TEST_LLM_KEY_NOT_SET") && err.contains("not set"), "{err}");
}

#[test]
fn an_artifact_asks_a_model_over_the_http_api_and_the_bill_says_so() {
    use crate::api::{agents, call, start_with_llm, upload};
    let server = Loopback::start().unwrap();
    let s = start_with_llm(vec![LlmProvider::new("local", server.url(), &["small"])]);
    let keys = agents(&s, &["alice", "bob"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    for (asset, amount) in [("scrip", 1_000u64), ("fuel", 1_000_000_000), ("llm_tokens", 500)] {
        let body = json!({"id": format!("seed-{asset}"), "agent": "bob", "asset": asset, "amount": amount});
        let (st, v) = call("POST", &s.url("/v1/mint"), Some(&s.admin), Some(body));
        assert_eq!(st, 200, "{v}");
    }
    let manifest =
        json!({"owner": "alice", "name": "ask", "version": "1", "price": 3, "resource_policy": "caller_pays"});
    let (st, v) = upload(&s, alice, manifest, &fuelhost_tests::guest("rust-llm-ask"));
    assert_eq!(st, 201, "{v}");
    // Served on the runtime's blocking threads: the request's I/O runs on the call's own.
    let input = json!({"prompt": "hello over http", "model": "small", "max_tokens": 16}).to_string();
    let (st, v) =
        call("POST", &s.url("/v1/invoke"), Some(bob), Some(json!({"artifact": "alice/ask@1", "input": input})));
    assert_eq!(st, 200, "{v}");
    let out: Value = serde_json::from_str(v["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["text"], "echo: hello over http");
    assert_eq!(v["resources_consumed"]["llm_tokens"], 6 + 4);
    let (st, v) = call("GET", &s.url("/v1/agents/bob"), Some(bob), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["balances"]["llm_tokens"], json!({"posted": 490, "held": 0}));
    let (st, v) = call("GET", &s.url("/v1/top?asset=llm_tokens"), Some(&s.admin), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!((v["top"][0]["agent"].as_str(), v["top"][0]["llm_tokens"].as_u64()), (Some("bob"), Some(10)));
    assert_conserved(&s.host);
}

#[test]
fn a_python_router_picks_a_model_per_request() {
    let (cheap, good) = (Loopback::start().unwrap(), Loopback::start().unwrap());
    let t = cheap_and_good(&cheap, &good);
    let host = &t.host;
    let limits = Limits { timeout_ms: 30_000, ..Limits::default() };
    let id = host
        .upload(manifest("router", 1, ResourcePolicy::CallerPays, limits), &fuelhost_tests::guest("python-llm-router"))
        .unwrap()
        .id;
    let route = |input: Value| {
        let r = ask(host, &id, input);
        assert!(r.success, "{:?}", r.error);
        let out: Value = serde_json::from_slice(&r.output).unwrap();
        assert_eq!(out["tokens"].as_u64(), Some(r.resources_consumed.llm_tokens), "{out}");
        (out["choice"].as_str().unwrap().to_string(), out["provider"].as_str().unwrap().to_string())
    };
    let chose = route(json!({"prompt": "hi there", "task": "chat"}));
    assert_eq!(chose, ("routed:cost_optimized".to_string(), "cheap".to_string()));
    let chose = route(json!({"prompt": "write a parser", "task": "code"}));
    assert_eq!(chose, ("routed:quality_optimized".to_string(), "good".to_string()));
    let chose = route(json!({"prompt": "hi", "model": "large"}));
    assert_eq!(chose, ("named:large".to_string(), "good".to_string()));
    // No budget, no answer: a refusal the caller reads, nothing charged.
    host.create_agent("carol").unwrap();
    fund(host, "carol", 100, 10_000_000_000, 0);
    let r = host.invoke(Invocation::new("carol", &id, json!({"prompt": "hi"}).to_string())).unwrap();
    assert_eq!(r.outcome, Outcome::RunError);
    assert!(r.error.unwrap().contains("InsufficientBudget"), "the Python artifact names the refusal");
    assert_eq!(r.resources_consumed.llm_tokens, 0);
    assert_conserved(host);
}

#[test]
fn an_llm_tokens_quota_counts_each_calls_tokens_alerts_and_caps_the_hold() {
    let server = Loopback::start().unwrap();
    let t = llm_host(&[("local", &server, &["small"])], 10_000);
    let id = upload_ask(&t.host, ResourcePolicy::CallerPays);
    let mut req = fuelhost::AllocationRequest::new(
        "bob-tokens-quota",
        "bob".try_into().unwrap(),
        [(fuelhost::Resource::LlmTokens, 100)].into_iter().collect(),
    );
    req.auto_approve = true;
    t.host.request_allocation(&req).unwrap();
    t.host.activate_allocation("bob-tokens-quota").unwrap();
    // Each call: the prompt (2 words + 3) and the answer (3 words), 8 tokens,
    // held at 3 + (4 + 3) + 16 = 26 before it is sent.
    for _ in 0..10 {
        let r = ask(&t.host, &id, json!({"prompt": "hello there", "model": "small", "max_tokens": 16}));
        assert!(r.success, "{:?}", r.error);
    }
    let a = t.host.allocation("bob-tokens-quota").unwrap().unwrap();
    assert_eq!(a.quota(fuelhost::Resource::LlmTokens).unwrap().used, 80, "each call's charged tokens count");
    let alerts: Vec<_> = t.host.alerts().unwrap().into_iter().map(|a| (a.resource, a.kind, a.percent)).collect();
    assert_eq!(alerts, [(Some(fuelhost::Resource::LlmTokens), fuelhost::AlertKind::SoftThreshold, 80)]);
    // 20 left, 26 to hold: refused before anything is sent, nothing charged.
    let served = server.served();
    let r = ask(&t.host, &id, json!({"prompt": "hello there", "model": "small", "max_tokens": 16}));
    let error = r.error.unwrap();
    assert!(error.contains("allocation `bob-tokens-quota` has 20 llm_tokens left"), "{error}");
    assert_eq!((r.resources_consumed.llm_tokens, server.served()), (0, served));
    assert_eq!(tokens(&t.host, "bob"), fuelhost::AssetBalance { posted: 10_000 - 80, held: 0 });
    assert_conserved(&t.host);
}

/// A real language model, as small as one comes: SmolLM2-135M-Instruct on
/// llama.cpp's OpenAI-compatible server, both from PyPI
/// (`scripts/setup.sh`, `scripts/local-model.py`). Its answer is a model's,
/// and what it costs is what the model's server counts.
struct LocalModel {
    child: std::process::Child,
    url: String,
}

impl Drop for LocalModel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn local_model() -> LocalModel {
    use std::io::BufRead;
    let cache = std::env::var("FUELHOST_CACHE")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost", std::env::var("HOME").unwrap_or_default()));
    let python = format!("{cache}/model-venv/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run scripts/setup.sh, which installs the small model this test runs"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/local-model.py");
    let mut child = std::process::Command::new(&python)
        .arg(script)
        .arg(port.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("listening") {
                let _ = tx.send(());
            }
        }
    });
    let model = LocalModel { child, url: format!("http://127.0.0.1:{port}/v1") };
    rx.recv_timeout(std::time::Duration::from_secs(300)).expect("the local model starts serving");
    model
}

#[test]
fn a_real_small_model_answers_and_is_charged_what_its_server_counts() {
    let model = local_model();
    let dir = tempfile::tempdir().unwrap();
    let mut provider = LlmProvider::new("smol", &model.url, &["smollm2-135m"]);
    provider.context_tokens = 2_048;
    provider.timeout_ms = 240_000;
    let host = builder(dir.path()).llm_provider(provider).build().unwrap();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
        fund(&host, agent, 1_000, 1_000_000_000, 1 << 20);
    }
    host.mint("bob-tokens", "bob", Asset::LlmTokens, 1_000).unwrap();
    // A machine busy with the rest of the suite may run the model ten
    // times slower than an idle one.
    let limits = Limits { timeout_ms: 240_000, ..Limits::default() };
    let id = host
        .upload(manifest("ask", 1, ResourcePolicy::CallerPays, limits), &fuelhost_tests::guest("rust-llm-ask"))
        .unwrap()
        .id;
    let input = json!({"prompt": "Name three colors.", "model": "smollm2-135m", "max_tokens": 24, "temperature": 0.0});
    let r = ask(&host, &id, input);
    assert!(r.success, "{:?}", r.error);
    let out: Value = serde_json::from_slice(&r.output).unwrap();
    let (input_tokens, output_tokens) = (out["input_tokens"].as_u64().unwrap(), out["output_tokens"].as_u64().unwrap());
    assert!(!out["text"].as_str().unwrap().trim().is_empty(), "the model said something: {out}");
    assert!(input_tokens > 0 && (1..=24).contains(&output_tokens), "{out}");
    assert_eq!(r.resources_consumed.llm_tokens, input_tokens + output_tokens, "charged what the server counted");
    assert_eq!(tokens(&host, "bob"), fuelhost::AssetBalance { posted: 1_000 - input_tokens - output_tokens, held: 0 });
    assert_conserved(&host);
}
