//! Observability: the pipeline's spans (names, nesting, recorded fields)
//! as a capturing subscriber sees them; the metrics' exact values after
//! known invocations, allocations and usage reports; and the Grafana
//! dashboard, which may only query metrics the host renders.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use fuelhost::{AllocationRequest, Host, Invocation, InvokeError, Limits, Outcome, Resource, ResourcePolicy};
use fuelhost_tests::{fund, guest, manifest, test_host, upload};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// One span as the capturing layer saw it.
#[derive(Debug, Clone)]
struct SeenSpan {
    name: &'static str,
    /// Index of the parent span in the capture.
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
}

/// Records every span created on the thread it is the default subscriber
/// of: name, parent and fields (including those recorded later).
#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<SeenSpan>>>,
    /// Live span id -> index (the registry reuses ids of closed spans).
    live: Arc<Mutex<HashMap<u64, usize>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent_id = ctx.span(id).and_then(|s| s.parent()).map(|p| p.id().into_u64());
        let mut live = self.live.lock().unwrap();
        let mut spans = self.spans.lock().unwrap();
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = parent_id.map(|p| live[&p]);
        spans.push(SeenSpan { name: attrs.metadata().name(), parent, fields });
        live.insert(id.into_u64(), spans.len() - 1);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let index = self.live.lock().unwrap()[&id.into_u64()];
        values.record(&mut Fields(&mut self.spans.lock().unwrap()[index].fields));
    }
}

impl Capture {
    /// Run `f` with this capture as the thread's subscriber.
    fn during<T>(&self, f: impl FnOnce() -> T) -> T {
        tracing::subscriber::with_default(tracing_subscriber::registry().with(self.clone()), f)
    }

    fn spans(&self) -> Vec<SeenSpan> {
        self.spans.lock().unwrap().clone()
    }
}

/// Indices of the spans named `name`.
fn named(spans: &[SeenSpan], name: &str) -> Vec<usize> {
    (0..spans.len()).filter(|&i| spans[i].name == name).collect()
}

/// Names of the direct children of span `parent`, in creation order.
fn children(spans: &[SeenSpan], parent: usize) -> Vec<&'static str> {
    spans.iter().filter(|s| s.parent == Some(parent)).map(|s| s.name).collect()
}

#[test]
fn a_charged_call_runs_in_an_invocation_span_with_one_child_per_stage() {
    let t = test_host();
    let echo = upload(&t.host, "rust-echo", "echo", 5, ResourcePolicy::CallerPays, Limits::default());
    let capture = Capture::default();
    let report = capture.during(|| t.host.invoke(Invocation::new("bob", &echo, "hi").id("call-1"))).unwrap();
    assert_eq!(report.outcome, Outcome::Success);

    let spans = capture.spans();
    let invocations = named(&spans, "invocation");
    assert_eq!(invocations.len(), 1, "{spans:#?}");
    let inv = &spans[invocations[0]];
    assert_eq!(inv.parent, None);
    assert_eq!(children(&spans, invocations[0]), ["admit", "reserve", "run", "settle"]);
    let field = |k: &str| inv.fields.get(k).map(String::as_str);
    assert_eq!(field("invocation_id"), Some("call-1"));
    assert_eq!(field("caller"), Some("bob"));
    assert_eq!(field("artifact"), Some(echo.as_str()));
    assert_eq!(field("payer"), Some("bob"));
    assert_eq!(field("price"), Some("5"));
    assert_eq!(field("outcome"), Some("success"));
    assert_eq!(field("fuel"), Some(report.resources_consumed.fuel.to_string().as_str()));
    assert!(report.resources_consumed.fuel > 0);
}

#[test]
fn a_denied_call_is_admitted_to_the_policy_chain_and_never_runs() {
    let t = test_host();
    let echo = upload(&t.host, "rust-echo", "echo", 5, ResourcePolicy::CallerPays, Limits::default());
    t.host
        .set_policy_rules(
            r#"
            [[rule]]
            name = "bob-may-not"
            effect = "deny"
            action = "invoke"
            subject = "bob"
            reason = "bob is grounded"
            "#,
        )
        .unwrap();
    let capture = Capture::default();
    let err = capture.during(|| t.host.invoke(Invocation::new("bob", &echo, "hi"))).unwrap_err();
    assert!(matches!(&err, InvokeError::Denied(r) if r.contains("grounded")), "{err}");

    let spans = capture.spans();
    let invocations = named(&spans, "invocation");
    assert_eq!(invocations.len(), 1, "{spans:#?}");
    assert_eq!(children(&spans, invocations[0]), ["admit"]);
    for stage in ["reserve", "run", "settle"] {
        assert!(named(&spans, stage).is_empty(), "a denied call has no `{stage}` span: {spans:#?}");
    }
    assert_eq!(spans[invocations[0]].fields.get("outcome").map(String::as_str), Some("denied"));
}

#[test]
fn a_nested_invocation_is_an_invocation_span_under_its_callers_run() {
    let t = test_host();
    t.host.create_agent("carol").unwrap();
    fund(&t.host, "carol", 1_000, 1_000_000_000, 0);
    let probe = upload(&t.host, "rust-probe", "probe", 2, ResourcePolicy::CallerPays, Limits::default());
    let mut m = manifest("echo", 3, ResourcePolicy::CallerPays, Limits::default());
    m.owner = "carol".try_into().unwrap();
    let echo = t.host.upload(m, &guest("rust-echo")).unwrap().id;
    let capture = Capture::default();
    let report =
        capture.during(|| t.host.invoke(Invocation::new("bob", &probe, format!("nested:{echo}:hello")))).unwrap();
    assert_eq!(report.outcome, Outcome::Success, "{:?}", report.error);

    let spans = capture.spans();
    let invocations = named(&spans, "invocation");
    assert_eq!(invocations.len(), 2, "{spans:#?}");
    let (outer, inner) = (invocations[0], invocations[1]);
    let run = spans[inner].parent.expect("the nested invocation has a parent");
    assert_eq!((spans[run].name, spans[run].parent), ("run", Some(outer)));
    assert_eq!(children(&spans, inner), ["admit", "reserve", "run", "settle"]);
    assert_eq!(spans[inner].fields.get("caller").map(String::as_str), Some("alice"), "the probe's principal calls");
    assert_eq!(spans[inner].fields.get("artifact"), Some(&echo));
    assert_eq!(spans[inner].fields.get("depth").map(String::as_str), Some("1"));
}

/// The value of the sample whose series (name and labels) is exactly `series`.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (s, v) = l.rsplit_once(' ')?;
        (s == series).then(|| v.parse().unwrap())
    })
}

#[test]
fn metrics_show_exact_counts_budget_usage_and_reported_tokens() {
    let t = test_host();
    let echo = upload(&t.host, "rust-echo", "echo", 5, ResourcePolicy::CallerPays, Limits::default());
    let quotas =
        BTreeMap::from([(Resource::Fuel, 1_000_000_000), (Resource::ApiCalls, 8), (Resource::LlmTokens, 1_000)]);
    let mut req = AllocationRequest::new("bob-q1", "bob".try_into().unwrap(), quotas);
    req.auto_approve = true;
    t.host.request_allocation(&req).unwrap();
    t.host.activate_allocation("bob-q1").unwrap();

    let page = t.host.metrics_text();
    assert_eq!(
        sample(&page, r#"fuelhost_budget_usage_ratio{agent="bob",allocation="bob-q1",resource="api_calls"}"#),
        Some(0.0)
    );
    assert_eq!(sample(&page, r#"fuelhost_artifacts{state="registered"}"#), Some(1.0));
    assert_eq!(sample(&page, r#"fuelhost_artifacts{state="loaded"}"#), Some(1.0));
    assert_eq!(sample(&page, r#"fuelhost_artifacts{state="compiling"}"#), Some(0.0));
    assert_eq!(sample(&page, r#"fuelhost_llm_tokens_total{agent="bob"}"#), None, "no tokens reported yet");

    let mut fuel = 0;
    for input in ["a", "b"] {
        let r = t.host.invoke(Invocation::new("bob", &echo, input)).unwrap();
        assert_eq!(r.outcome, Outcome::Success);
        fuel += r.resources_consumed.fuel;
    }
    t.host.record_usage("tok-1", "bob", Resource::LlmTokens, 120).unwrap();
    t.host.record_usage("tok-2", "bob", Resource::LlmTokens, 30).unwrap();
    t.host.record_usage("tok-1", "bob", Resource::LlmTokens, 120).unwrap(); // a retry: counted once
    assert!(t.host.record_usage("tok-3", "alice", Resource::LlmTokens, 7).is_err(), "alice has no allocation");
    t.host
        .set_policy_rules(
            "[[rule]]\nname = \"no\"\neffect = \"deny\"\naction = \"invoke\"\nsubject = \"bob\"\nreason = \"enough\"\n",
        )
        .unwrap();
    assert!(matches!(t.host.invoke(Invocation::new("bob", &echo, "c")), Err(InvokeError::Denied(_))));

    let page = t.host.metrics_text();
    let at = |series: &str| sample(&page, series).unwrap_or_else(|| panic!("no sample {series} in\n{page}"));
    assert_eq!(at(r#"fuelhost_tasks_total{agent_id="bob",status="success"}"#), 2.0);
    assert_eq!(at(r#"fuelhost_invocations_total{artifact="alice/echo@0.1.0",outcome="success"}"#), 2.0);
    assert_eq!(at(r#"fuelhost_fuel_total{agent_id="bob"}"#), fuel as f64);
    assert_eq!(at(r#"fuelhost_fuel_consumed_total{artifact="alice/echo@0.1.0"}"#), fuel as f64);
    // The upload and two calls were allowed; the third call was denied.
    assert_eq!(at(r#"fuelhost_policy_decisions_total{decision="allow"}"#), 3.0);
    assert_eq!(at(r#"fuelhost_policy_decisions_total{decision="deny"}"#), 1.0);
    assert_eq!(at("fuelhost_agents_active"), 1.0);
    assert_eq!(at("fuelhost_task_duration_seconds_count"), 2.0);
    assert_eq!(at(r#"fuelhost_task_duration_seconds_bucket{le="+Inf"}"#), 2.0);
    assert_eq!(at(r#"fuelhost_llm_tokens_total{agent="bob"}"#), 150.0);
    assert_eq!(sample(&page, r#"fuelhost_llm_tokens_total{agent="alice"}"#), None);
    let ratio = |resource: &str| {
        at(&format!(r#"fuelhost_budget_usage_ratio{{agent="bob",allocation="bob-q1",resource="{resource}"}}"#))
    };
    assert_eq!(ratio("api_calls"), 2.0 / 8.0);
    assert_eq!(ratio("llm_tokens"), 150.0 / 1_000.0);
    assert_eq!(ratio("fuel"), fuel as f64 / 1e9);

    // A revoked allocation is no longer in force: its gauges go.
    t.host.revoke_allocation("bob-q1", "test over").unwrap();
    let page = t.host.metrics_text();
    assert!(!page.contains("allocation=\"bob-q1\""), "{page}");
    assert_eq!(sample(&page, r#"fuelhost_llm_tokens_total{agent="bob"}"#), Some(150.0), "a counter never goes down");
}

/// Metric families the host renders (`# TYPE` lines).
fn rendered_families(host: &Host) -> BTreeSet<String> {
    host.metrics_text()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Every `fuelhost_*` name in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("fuelhost_") {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&serde_json::Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = stack.pop() {
        if let Some(nested) = p["panels"].as_array() {
            stack.extend(nested);
        }
        out.push(p);
    }
    out
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_the_host_renders() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/fuelhost-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables.iter().any(|v| v["type"] == "datasource" && v["query"] == "prometheus" && v["name"] == "datasource"),
        "a Prometheus datasource variable named `datasource`"
    );

    // Render after some activity, so every family has samples.
    let t = test_host();
    let echo = upload(&t.host, "rust-echo", "echo", 1, ResourcePolicy::CallerPays, Limits::default());
    t.host.invoke(Invocation::new("bob", &echo, "x")).unwrap();
    let families = rendered_families(&t.host);
    assert!(families.contains("fuelhost_budget_usage_ratio") && families.contains("fuelhost_llm_tokens_total"));

    let mut used = BTreeSet::new();
    let mut queried_panels = 0;
    for panel in panels(&dashboard) {
        let Some(targets) = panel["targets"].as_array() else { continue };
        queried_panels += 1;
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {} uses the variable", panel["title"]);
        for target in targets {
            let expr =
                target["expr"].as_str().unwrap_or_else(|| panic!("panel {}: a target without expr", panel["title"]));
            let names = metric_names(expr);
            assert!(!names.is_empty(), "panel {}: `{expr}` queries no fuelhost metric", panel["title"]);
            for name in names {
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| families.contains(*f)))
                    .unwrap_or(&name)
                    .to_string();
                assert!(
                    families.contains(&family),
                    "panel {}: `{name}` is not a metric the host renders",
                    panel["title"]
                );
                used.insert(family);
            }
        }
    }
    assert!(queried_panels >= 8, "{queried_panels} panels with queries");
    let unused: Vec<_> = families.difference(&used).collect();
    assert!(unused.is_empty(), "metrics no panel shows: {unused:?}");
}
