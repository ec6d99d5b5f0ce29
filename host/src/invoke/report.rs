//! Stage 5, report: the settled call counted in the metrics, logged, and
//! answered as an [`InvocationReport`].

use fuelhost_ledger::UsageRecord;

use crate::invocation::InvocationReport;
use crate::telemetry::Metrics;

/// Count, log and answer the settled `record`.
pub(super) fn report(metrics: &Metrics, record: UsageRecord) -> InvocationReport {
    metrics.invocation(
        record.caller.as_str(),
        record.charged_to.as_str(),
        &record.artifact,
        record.outcome.as_str(),
        record.consumed.fuel,
        record.consumed.wall_time_ns as f64 / 1e9,
    );
    tracing::info!(
        outcome = %record.outcome,
        fuel = record.consumed.fuel,
        memory_peak = record.consumed.memory_peak_bytes,
        disk = record.consumed.disk_bytes,
        charged_to = %record.charged_to,
        price_paid = record.price_paid,
        "invocation settled"
    );
    InvocationReport::from_record(record, false)
}
