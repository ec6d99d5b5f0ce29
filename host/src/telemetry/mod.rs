//! Observability: what the host tells its operators about itself.
//!
//! - **Spans.** Each invocation runs in an `invocation` span (fields
//!   `invocation_id`, `caller`, `artifact`, `payer`, `outcome`, `fuel`,
//!   `price`) with one child span per pipeline stage: `admit` (the policy
//!   chain), `reserve`, `run`, `settle`. A guest's nested invocation is an
//!   `invocation` span under its caller's `run`. The pipeline creates them
//!   (`invoke`); with no subscriber listening they cost a branch each.
//! - **Logs and traces** ([`init`]): the process-wide subscriber an
//!   executable installs once: log lines (text or JSON) on stderr, and
//!   optionally every span exported over OTLP/HTTP.
//! - **Metrics** (`metrics`): Prometheus text, counted in process and
//!   read from the ledger, rendered by [`crate::Host::metrics_text`].
//! - **Stage budget** (`stages`): the wall time of each pipeline stage,
//!   summed over settled calls ([`crate::Host::stage_budget`]): where a
//!   call's microseconds go.
//!
//! ```no_run
//! # fn main() -> Result<(), fuelhost::telemetry::TelemetryError> {
//! use fuelhost::telemetry::{self, LogFormat, TelemetryConfig};
//! let config = TelemetryConfig {
//!     log_format: LogFormat::Json,
//!     otlp_endpoint: Some("http://localhost:4318".into()),
//!     ..TelemetryConfig::default()
//! };
//! // Keep the guard alive until the end of `main`: dropping it flushes
//! // the spans not yet exported.
//! let _telemetry = telemetry::init(&config)?;
//! # Ok(()) }
//! ```

mod metrics;
mod stages;
mod tracing;

pub(crate) use self::metrics::{ArtifactCounts, Metrics};
pub use self::stages::{Stage, StageBudget};
pub(crate) use self::stages::{StageClock, StageTotals};
pub use self::tracing::{init, LogFormat, TelemetryConfig, TelemetryError, TelemetryGuard, LOG_FILTER_ENV};
