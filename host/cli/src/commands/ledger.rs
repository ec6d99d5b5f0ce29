//! The ledger: minting, transfers and their listing, usage records, the
//! top consumers and the service statistics.

use anyhow::Result;

use super::input::{agent_id, asset, id_or_fresh};
use super::{Printer, Shown};
use crate::client::Client;
use crate::output::{record, table, Cell};
use fuelhost_api::replies::{StatsReply, TopConsumers, TransferPage, UsagePage};
use fuelhost_api::requests::{Mint, NewTransfer};
use fuelhost_api::Transfer;

/// `fuelhost mint AGENT ASSET AMOUNT [--id ID]`.
pub(super) fn mint(
    client: &Client,
    out: Printer,
    agent: String,
    asset_name: &str,
    amount: u64,
    id: Option<String>,
) -> Result<String> {
    let body = Mint { id: id_or_fresh(id, "mint")?, agent: agent_id(agent)?, asset: asset(asset_name)?, amount };
    out.show(client.send("POST", "/v1/mint", &body)?, transfer_line)
}

/// What `fuelhost transfer` sends.
pub(super) struct Sent {
    pub to: String,
    pub amount: u64,
    pub asset: String,
    pub memo: String,
    pub id: Option<String>,
}

/// `fuelhost transfer TO AMOUNT ...`.
pub(super) fn transfer(client: &Client, out: Printer, sent: Sent) -> Result<Shown> {
    let body = NewTransfer {
        id: id_or_fresh(sent.id, "transfer")?,
        to: agent_id(sent.to)?,
        amount: sent.amount,
        asset: asset(&sent.asset)?,
        memo: sent.memo,
    };
    out.done_or_parked(client.send("POST", "/v1/transfers", &body)?, transfer_line)
}

/// `fuelhost transfers [--agent A] [--limit N]`.
pub(super) fn transfers(client: &Client, out: Printer, agent: Option<String>, limit: Option<usize>) -> Result<String> {
    let reply = client.get("/v1/transfers", &[("agent", agent), ("limit", limit.map(|l| l.to_string()))])?;
    out.show(reply, |page: &TransferPage| {
        let rows = page
            .transfers
            .iter()
            .map(|listed| {
                let t = &listed.item;
                vec![
                    Cell::text(&t.id),
                    Cell::text(t.kind.as_str()),
                    Cell::text(&t.from),
                    Cell::text(&t.to),
                    Cell::text(t.asset.as_str()),
                    Cell::num(t.amount),
                    Cell::text(&t.memo),
                ]
            })
            .collect();
        table(&["id", "kind", "from", "to", "asset", "amount", "memo"], rows)
    })
}

/// Which usage records `fuelhost usage` asks for.
pub(super) struct UsageFilter {
    pub agent: Option<String>,
    pub artifact: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: Option<usize>,
}

/// `fuelhost usage ...`.
pub(super) fn usage(client: &Client, out: Printer, f: UsageFilter) -> Result<String> {
    let query = [
        ("agent", f.agent),
        ("artifact", f.artifact),
        ("from_ms", f.from_ms.map(|t| t.to_string())),
        ("to_ms", f.to_ms.map(|t| t.to_string())),
        ("limit", f.limit.map(|l| l.to_string())),
    ];
    out.show(client.get("/v1/usage", &query)?, |page: &UsagePage| {
        let rows = page
            .records
            .iter()
            .map(|r| {
                vec![
                    Cell::text(&r.invocation_id),
                    Cell::text(&r.artifact),
                    Cell::text(&r.caller),
                    Cell::text(&r.charged_to),
                    Cell::text(r.outcome.as_str()),
                    Cell::num(r.consumed.fuel),
                    Cell::num(r.price_paid),
                    Cell::num(r.cost_usd_micros),
                ]
            })
            .collect();
        table(&["invocation", "artifact", "caller", "charged to", "outcome", "fuel", "price", "µUSD"], rows)
    })
}

/// `fuelhost top ...`.
pub(super) fn top(
    client: &Client,
    out: Printer,
    limit: Option<usize>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
) -> Result<String> {
    let query = [
        ("limit", limit.map(|l| l.to_string())),
        ("since_ms", since_ms.map(|t| t.to_string())),
        ("until_ms", until_ms.map(|t| t.to_string())),
    ];
    out.show(client.get("/v1/top", &query)?, |top: &TopConsumers| {
        let rows = top
            .top
            .iter()
            .map(|c| {
                vec![Cell::text(&c.agent), Cell::num(c.invocations), Cell::num(c.fuel), Cell::num(c.cost_usd_micros)]
            })
            .collect();
        table(&["agent", "invocations", "fuel", "µUSD"], rows)
    })
}

/// `fuelhost stats`.
pub(super) fn stats(client: &Client, out: Printer) -> Result<String> {
    out.show(client.get("/v1/stats", &[])?, |reply: &StatsReply| {
        let s = &reply.stats;
        let mut text = record(&[
            ("allocations", Cell::num(s.total_allocations)),
            ("active allocations", Cell::num(s.active_allocations)),
            ("usage records", Cell::num(s.total_usage_records)),
            ("total fuel", Cell::num(s.total_fuel)),
            ("total cost µUSD", Cell::num(s.total_cost_usd_micros)),
            ("budget exceeded", Cell::num(s.budget_exceeded_count)),
        ]);
        let rows =
            s.invocations_by_outcome.iter().map(|(outcome, n)| vec![Cell::text(outcome), Cell::num(n)]).collect();
        text.push_str(&table(&["outcome", "invocations"], rows));
        text
    })
}

/// One transfer on one line: `mint 1000 scrip @mint -> bob (seed-1)`.
pub(super) fn transfer_line(t: &Transfer) -> String {
    format!("{} {} {} {} -> {} ({})\n", t.kind, t.amount, t.asset, t.from, t.to, t.id)
}

/// `fuelhost archive`: what the move took out of the database.
pub(super) fn archive(client: &Client, out: Printer) -> Result<String> {
    out.show(client.call("POST", "/v1/archive")?, |r: &fuelhost::ArchiveReport| {
        let files = r.usage.files.iter().chain(&r.audit.files).count();
        record(&[
            ("archive", Cell::text(r.archive_dir.display())),
            ("usage records", Cell::num(r.usage.records)),
            ("their charges", Cell::num(r.usage.charges)),
            ("audit entries", Cell::num(r.audit.entries)),
            ("files written", Cell::num(files)),
        ])
    })
}
