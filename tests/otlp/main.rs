//! OTLP export, for real: `fuelhost::telemetry::init` pointed at a
//! collector on a loopback port (axum) that decodes each `POST /v1/traces`
//! body as a protobuf `ExportTraceServiceRequest`. After one charged
//! invocation and a flush, the collector must hold the `invocation` span
//! and its `admit`, `reserve`, `run` and `settle` children, each naming the
//! invocation as its parent, all in one trace.
//!
//! `init` installs the process-wide subscriber, so this test has a binary
//! (a process) of its own: `cargo test -p fuelhost-tests --test otlp`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::routing::post;
use axum::Router;
use fuelhost::telemetry::{init, TelemetryConfig, TelemetryError};
use fuelhost::{Invocation, Limits, Outcome, ResourcePolicy};
use fuelhost_tests::{test_host, upload};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// What the collector received: (service.name, span) pairs.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

async fn traces(
    State(received): State<Received>,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let content_type = [(header::CONTENT_TYPE, "application/x-protobuf")];
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, content_type, e.to_string().into_bytes()),
    };
    let mut received = received.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service =
            resource_spans.resource.as_ref().and_then(|r| text(&r.attributes, "service.name")).unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            received.extend(scope_spans.spans.into_iter().map(|s| (service.clone(), s)));
        }
    }
    (StatusCode::OK, content_type, ExportTraceServiceResponse::default().encode_to_vec())
}

/// A string (or integer, as text) attribute.
fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
    match value {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// Start the collector; its base URL.
fn start_collector(received: Received) -> String {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            let app = Router::new().route("/v1/traces", post(traces)).with_state(received);
            axum::serve(listener, app).await.unwrap();
        });
    });
    let port = port_rx.recv_timeout(Duration::from_secs(10)).expect("the collector starts");
    format!("http://127.0.0.1:{port}")
}

#[test]
fn pipeline_spans_reach_an_otlp_collector_with_their_parents() {
    let received = Received::default();
    let collector = start_collector(received.clone());
    let config = TelemetryConfig {
        otlp_endpoint: Some(collector.clone()),
        service_name: "fuelhost-otlp-test".into(),
        ..TelemetryConfig::default()
    };

    // A bad endpoint fails and installs nothing...
    let bad = TelemetryConfig { otlp_endpoint: Some(collector.replace("http:", "https:")), ..config.clone() };
    assert!(matches!(init(&bad), Err(TelemetryError::InvalidEndpoint { .. })));
    // ...so the real one installs; a second install is refused.
    let guard = init(&config).expect("telemetry installs");
    assert!(guard.exporting());
    assert!(matches!(init(&TelemetryConfig::default()), Err(TelemetryError::AlreadyInstalled)));

    let t = test_host();
    let echo = upload(&t.host, "rust-echo", "echo", 5, ResourcePolicy::CallerPays, Limits::default());
    let report = t.host.invoke(Invocation::new("bob", &echo, "hi").id("otlp-1")).unwrap();
    assert_eq!(report.outcome, Outcome::Success);
    guard.flush().expect("the collector accepts the spans");

    // The flush waits for the export; allow the collector a moment anyway.
    let deadline = Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans = received.lock().unwrap().clone();
        if spans.iter().any(|(_, s)| s.name == "settle") || Instant::now() > deadline {
            break spans;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let invocation = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "invocation" && text(&s.attributes, "invocation_id").as_deref() == Some("otlp-1"))
        .unwrap_or_else(|| {
            panic!("no invocation span among {:?}", spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>())
        });
    assert!(invocation.parent_span_id.is_empty(), "the invocation is a root span");
    assert_eq!(invocation.trace_id.len(), 16);
    assert_eq!(invocation.span_id.len(), 8);
    assert_eq!(text(&invocation.attributes, "caller").as_deref(), Some("bob"));
    assert_eq!(text(&invocation.attributes, "payer").as_deref(), Some("bob"));
    assert_eq!(text(&invocation.attributes, "outcome").as_deref(), Some("success"));
    assert_eq!(text(&invocation.attributes, "price").as_deref(), Some("5"));
    assert_eq!(text(&invocation.attributes, "fuel"), Some(report.resources_consumed.fuel.to_string()));

    for stage in ["admit", "reserve", "run", "settle"] {
        let found: Vec<&Span> =
            spans.iter().map(|(_, s)| s).filter(|s| s.name == stage && s.trace_id == invocation.trace_id).collect();
        assert_eq!(found.len(), 1, "one `{stage}` span in the invocation's trace");
        assert_eq!(found[0].parent_span_id, invocation.span_id, "`{stage}` is a child of the invocation");
        assert!(found[0].start_time_unix_nano >= invocation.start_time_unix_nano);
        assert!(found[0].end_time_unix_nano <= invocation.end_time_unix_nano);
    }
    assert!(spans.iter().all(|(service, _)| service == "fuelhost-otlp-test"), "service.name is the configured one");
    drop(guard);
}
