//! The process-wide `tracing` subscriber, installed once by [`init`]:
//!
//! - **log lines** on stderr, as text or JSON, each with the fields of the
//!   spans it happened in (a request id on an enclosing span shows on every
//!   line), filtered by `FUELHOST_LOG` when set, else by the configured
//!   filter;
//! - **span export** when an OTLP endpoint is configured: every span at
//!   `info` and above (the pipeline's spans are), whatever the log filter
//!   says, is exported over OTLP/HTTP (protobuf) by a batch processor that
//!   runs on its own thread, so it works with or without a tokio runtime.
//!   The client speaks plain `http://` (no TLS): point it at a collector on
//!   the host or in the pod.
//!
//! [`TelemetryGuard`] flushes the spans not yet exported and shuts the
//! exporter down when dropped.

use std::io::IsTerminal as _;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde::{Deserialize, Serialize};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

/// The environment variable that overrides [`TelemetryConfig::log_filter`].
pub const LOG_FILTER_ENV: &str = "FUELHOST_LOG";

/// The OTLP/HTTP path of the traces signal.
const TRACES_PATH: &str = "/v1/traces";

/// How long one export to the collector may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines: time, level, spans with their fields, message.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields`, `target`,
    /// `span` (the innermost span) and `spans` (all of them, outermost
    /// first, each with its fields).
    Json,
}

/// How a process reports on itself: its logs and, optionally, its spans.
/// Every field has a default, so a config file may give only some:
///
/// ```toml
/// log_format = "json"
/// log_filter = "info,fuelhost::guest=debug"
/// otlp_endpoint = "http://localhost:4318"
/// service_name = "fuelhost-eu-1"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Text or JSON log lines. Default: text.
    pub log_format: LogFormat,
    /// Which log lines to print, in `EnvFilter` syntax (`warn`,
    /// `info,fuelhost::guest=debug`, ...). `FUELHOST_LOG`, when set,
    /// replaces it. Default: `warn`, quiet enough for one-shot commands; a
    /// server usually wants `info`, one line per settled invocation.
    pub log_filter: String,
    /// Base URL of an OTLP/HTTP collector (`http://HOST:4318`); spans go
    /// to its `/v1/traces`. A URL that already ends in `/v1/traces` is used
    /// as it is. `None` (the default): no span export.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans. Default: `fuelhost`.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_format: LogFormat::Text,
            log_filter: "warn".into(),
            otlp_endpoint: None,
            service_name: "fuelhost".into(),
        }
    }
}

/// Why [`init`] could not install the subscriber, or a flush failed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("invalid log filter `{filter}` (from {origin}): {reason}")]
    InvalidFilter {
        /// The filter text.
        filter: String,
        /// Where it came from: `FUELHOST_LOG` or `log_filter`.
        origin: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The OTLP endpoint is not a plain `http://` URL.
    #[error("invalid OTLP endpoint `{endpoint}`: {reason}")]
    InvalidEndpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The OTLP exporter could not be built.
    #[error("building the OTLP exporter for `{endpoint}` failed: {reason}")]
    Exporter {
        /// The traces URL.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// Exporting the finished spans failed.
    #[error("exporting spans to the OTLP collector failed: {0}")]
    Export(String),
    /// The process already has a global subscriber (or `log` logger).
    #[error("a global tracing subscriber is already installed: telemetry::init runs once per process")]
    AlreadyInstalled,
}

/// Keeps span export running; dropping it exports the spans still buffered
/// and shuts the exporter down (waiting for the collector at most the
/// export timeout). Hold it until the end of `main`.
#[must_use = "dropping the guard at once stops span export"]
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Export every finished span now, waiting for the collector's answer.
    /// Without OTLP export, nothing to do.
    pub fn flush(&self) -> Result<(), TelemetryError> {
        match &self.provider {
            Some(p) => p.force_flush().map_err(|e| TelemetryError::Export(e.to_string())),
            None => Ok(()),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                ::tracing::warn!(error = %e, "flushing spans to the OTLP collector at shutdown failed");
            }
        }
    }
}

/// Install the process-wide subscriber `config` describes: log lines on
/// stderr and, with an `otlp_endpoint`, span export. Call it once, early in
/// `main`, and keep the guard until `main` returns. Fails, installing
/// nothing, on a bad filter or endpoint, or when a subscriber is already
/// installed.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let log_filter = log_filter(config)?;
    let provider = config.otlp_endpoint.as_deref().map(|e| tracer_provider(e, &config.service_name)).transpose()?;

    let log_layer = log_layer(config.log_format, std::io::stderr, std::io::stderr().is_terminal());
    let span_layer = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("fuelhost")).with_filter(LevelFilter::INFO));
    let installed = tracing_subscriber::registry().with(log_layer.with_filter(log_filter)).with(span_layer).try_init();
    if installed.is_err() {
        if let Some(p) = provider {
            let _ = p.shutdown();
        }
        return Err(TelemetryError::AlreadyInstalled);
    }
    Ok(TelemetryGuard { provider })
}

/// Log lines in `format` to `writer`, each with the fields of the spans it
/// happened in (`spans` in JSON, `name{fields}:` prefixes in text).
fn log_layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: ::tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .boxed(),
    }
}

/// `FUELHOST_LOG` when set (and not blank), else the configured filter.
fn log_filter(config: &TelemetryConfig) -> Result<EnvFilter, TelemetryError> {
    let (filter, origin) = match std::env::var(LOG_FILTER_ENV) {
        Ok(f) if !f.trim().is_empty() => (f, LOG_FILTER_ENV),
        _ => (config.log_filter.clone(), "log_filter"),
    };
    EnvFilter::builder().parse(&filter).map_err(|e| TelemetryError::InvalidFilter {
        filter: filter.clone(),
        origin,
        reason: e.to_string(),
    })
}

/// The traces URL of a collector's base URL.
fn traces_url(endpoint: &str) -> Result<String, TelemetryError> {
    let invalid = |reason: &str| TelemetryError::InvalidEndpoint { endpoint: endpoint.into(), reason: reason.into() };
    let uri: http::Uri = endpoint.parse().map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(invalid(
                "https is not supported (the exporter has no TLS): send to a local collector over http",
            ))
        }
        _ => return Err(invalid("give an http:// URL, such as http://localhost:4318")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    let base = endpoint.trim_end_matches('/');
    Ok(if base.ends_with(TRACES_PATH) { base.to_string() } else { format!("{base}{TRACES_PATH}") })
}

fn tracer_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let url = traces_url(endpoint)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| TelemetryError::Exporter { endpoint: url, reason: e.to_string() })?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name.to_string()).build())
        .build())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Log lines written by `format` while an event happens inside a
    /// `request` span inside which an `invocation` span is entered too.
    fn lines(format: LogFormat) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(log_layer(format, move || writer.clone(), false));
        ::tracing::subscriber::with_default(subscriber, || {
            let _request = ::tracing::info_span!("request", request_id = "req-7").entered();
            ::tracing::info!("accepted");
            let _invocation = ::tracing::info_span!("invocation", invocation_id = "inv-1").entered();
            ::tracing::info!(fuel = 42, "invocation settled");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn json_lines_carry_the_fields_of_every_enclosing_span() {
        let lines = lines(LogFormat::Json);
        assert_eq!(lines.len(), 2, "{lines:?}");
        for line in &lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["spans"][0]["name"], "request", "{line}");
            assert_eq!(v["spans"][0]["request_id"], "req-7", "{line}");
        }
        let last: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(last["fields"]["message"], "invocation settled");
        assert_eq!(last["fields"]["fuel"], 42);
        assert_eq!(last["span"]["invocation_id"], "inv-1");
        assert_eq!(last["spans"][1]["invocation_id"], "inv-1");
    }

    #[test]
    fn text_lines_carry_the_fields_of_every_enclosing_span() {
        let lines = lines(LogFormat::Text);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().all(|l| l.contains("request{request_id=\"req-7\"}")), "{lines:?}");
        assert!(lines[1].contains("invocation{invocation_id=\"inv-1\"}") && lines[1].contains("fuel=42"), "{lines:?}");
    }

    #[test]
    fn the_traces_url_is_derived_from_the_collector_base_url() {
        assert_eq!(traces_url("http://localhost:4318").unwrap(), "http://localhost:4318/v1/traces");
        assert_eq!(traces_url("http://localhost:4318/").unwrap(), "http://localhost:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/v1/traces").unwrap(), "http://c:4318/v1/traces");
        let err = traces_url("https://c:4318").unwrap_err().to_string();
        assert!(err.contains("https is not supported"), "{err}");
        let err = traces_url("localhost:4318").unwrap_err().to_string();
        assert!(err.contains("http://"), "{err}");
    }

    #[test]
    fn the_config_has_documented_defaults_and_rejects_unknown_keys() {
        let c: TelemetryConfig = toml::from_str("log_format = \"json\"").unwrap();
        assert_eq!(
            c,
            TelemetryConfig {
                log_format: LogFormat::Json,
                log_filter: "warn".into(),
                otlp_endpoint: None,
                service_name: "fuelhost".into()
            }
        );
        let err = toml::from_str::<TelemetryConfig>("otlp = \"http://x\"").unwrap_err().to_string();
        assert!(err.contains("unknown field `otlp`"), "{err}");
    }
}
