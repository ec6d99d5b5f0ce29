//! The policy audit log: the recorded decisions, filtered, as a table.

use anyhow::Result;

use super::Printer;
use crate::client::Client;
use crate::output::{table, Cell};
use fuelhost_api::replies::AuditPage;

/// Which entries `fuelhost audit` asks for.
pub(super) struct Filter {
    pub subject: Option<String>,
    pub kind: Option<String>,
    pub decision: Option<String>,
    pub invocation: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub oldest_first: bool,
    pub limit: Option<usize>,
}

/// `fuelhost audit ...`.
pub(super) fn run(client: &Client, out: Printer, f: Filter) -> Result<String> {
    let query = [
        ("subject", f.subject),
        ("kind", f.kind),
        ("decision", f.decision),
        ("invocation", f.invocation),
        ("since_ms", f.since.map(|t| t.to_string())),
        ("until_ms", f.until.map(|t| t.to_string())),
        ("newest_first", Some((!f.oldest_first).to_string())),
        ("limit", Some(f.limit.unwrap_or(100).to_string())),
    ];
    out.show(client.get("/v1/audit", &query)?, entries)
}

fn entries(page: &AuditPage) -> String {
    let rows = page
        .entries
        .iter()
        .map(|e| {
            vec![
                Cell::time(e.at_ms),
                Cell::text(&e.kind),
                Cell::text(&e.subject),
                Cell::text(&e.target),
                Cell::text(&e.decision),
                Cell::opt_text(e.decided_by.as_ref()),
                Cell::opt_text(e.reason.as_ref()),
                Cell::num(e.latency_us),
            ]
        })
        .collect();
    table(&["at", "kind", "subject", "target", "decision", "by", "reason", "µs"], rows)
}
