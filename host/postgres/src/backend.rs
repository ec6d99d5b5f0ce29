//! [`PgLedger`] as a ledger backend: the `fuelhost_ledger` traits, each
//! method the one of the same name in `ledger.rs`, `economy.rs`,
//! `allocations.rs`, `calls.rs` or `counters.rs`.

use fuelhost_ledger::{
    AgentId, Alert, Allocation, AllocationRequest, AllocationTransition, Archived, Asset, Balances, ConsumerStats,
    Distribution, GuestTransfer, Ledger, LedgerError, LedgerQuery, Listed, Reservation, Reserved, Resource,
    ServiceStats, Settlement, SponsorGrant, SponsorGrantStatus, Transfer, TransferQuery, UbiSource, UsageQuery,
    UsageRecord,
};

use crate::ledger::PgLedger;

impl LedgerQuery for PgLedger {
    fn has_account(&self, agent: &str) -> Result<bool, LedgerError> {
        PgLedger::has_account(self, agent)
    }
    fn balances(&self, agent: &AgentId) -> Result<Balances, LedgerError> {
        PgLedger::balances(self, agent)
    }
    fn usage_record(&self, invocation_id: &str) -> Result<Option<UsageRecord>, LedgerError> {
        PgLedger::usage_record(self, invocation_id)
    }
    fn asset_total(&self, asset: Asset) -> Result<i128, LedgerError> {
        PgLedger::asset_total(self, asset)
    }
    fn transfers(&self) -> Result<Vec<Transfer>, LedgerError> {
        PgLedger::transfers(self)
    }
    fn transfer_record(&self, id: &str) -> Result<Option<Transfer>, LedgerError> {
        PgLedger::transfer_record(self, id)
    }
    fn pending_holds(&self) -> Result<u64, LedgerError> {
        PgLedger::pending_holds(self)
    }
    fn sponsorship(&self, id: &str) -> Result<Option<SponsorGrantStatus>, LedgerError> {
        PgLedger::sponsorship(self, id)
    }
    fn sponsorship_for(
        &self,
        beneficiary: &AgentId,
        artifact: &str,
    ) -> Result<Option<SponsorGrantStatus>, LedgerError> {
        PgLedger::sponsorship_for(self, beneficiary, artifact)
    }
    fn allocation(&self, id: &str) -> Result<Option<Allocation>, LedgerError> {
        PgLedger::allocation(self, id)
    }
    fn allocations_of(&self, agent: &AgentId) -> Result<Vec<Allocation>, LedgerError> {
        PgLedger::allocations_of(self, agent)
    }
    fn allocations_in_force(&self) -> Result<Vec<Allocation>, LedgerError> {
        PgLedger::allocations_in_force(self)
    }
    fn reported_usage(&self, resource: Resource) -> Result<Vec<(AgentId, u64)>, LedgerError> {
        PgLedger::reported_usage(self, resource)
    }
    fn alerts(&self, agent: Option<&AgentId>) -> Result<Vec<Alert>, LedgerError> {
        PgLedger::alerts(self, agent)
    }
    fn usage_records(&self, q: &UsageQuery) -> Result<Vec<UsageRecord>, LedgerError> {
        PgLedger::usage_records(self, q)
    }
    fn top_consumers_by(
        &self,
        asset: Asset,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ConsumerStats>, LedgerError> {
        PgLedger::top_consumers_by(self, asset, from_ms, to_ms, limit)
    }
    fn transfer_listing(&self, q: &TransferQuery) -> Result<Vec<Listed<Transfer>>, LedgerError> {
        PgLedger::transfer_listing(self, q)
    }
    fn stats(&self) -> Result<ServiceStats, LedgerError> {
        PgLedger::stats(self)
    }
}

impl Ledger for PgLedger {
    fn open_account(&self, agent: &AgentId) -> Result<(), LedgerError> {
        PgLedger::open_account(self, agent)
    }
    fn post(&self, batch: &[Transfer]) -> Result<Vec<Transfer>, LedgerError> {
        PgLedger::post(self, batch)
    }
    fn reserve(&self, r: &Reservation) -> Result<Reserved, LedgerError> {
        PgLedger::reserve(self, r)
    }
    fn hold_guest_transfer(&self, t: &GuestTransfer) -> Result<(), LedgerError> {
        PgLedger::hold_guest_transfer(self, t)
    }
    fn hold_disk(&self, invocation_id: &str, payer: &AgentId, bytes: u64) -> Result<(), LedgerError> {
        PgLedger::hold_disk(self, invocation_id, payer, bytes)
    }
    fn hold_llm_tokens(&self, invocation_id: &str, payer: &AgentId, tokens: u64) -> Result<(), LedgerError> {
        PgLedger::hold_llm_tokens(self, invocation_id, payer, tokens)
    }
    fn release_llm_tokens(&self, invocation_id: &str, tokens: u64) -> Result<u64, LedgerError> {
        PgLedger::release_llm_tokens(self, invocation_id, tokens)
    }
    fn settle(&self, s: &Settlement) -> Result<UsageRecord, LedgerError> {
        PgLedger::settle(self, s)
    }
    fn abort_unsettled(&self) -> Result<Vec<UsageRecord>, LedgerError> {
        PgLedger::abort_unsettled(self)
    }
    fn take_over_dead_hosts(&self) -> Result<Vec<UsageRecord>, LedgerError> {
        PgLedger::take_over_dead_hosts(self)
    }
    fn held_elsewhere(&self, invocation_id: &str) -> Result<bool, LedgerError> {
        PgLedger::held_elsewhere(self, invocation_id)
    }
    fn host_run(&self) -> Option<String> {
        Some(self.host_id().to_string())
    }
    fn host_gone(&self, run: &str) -> Result<bool, LedgerError> {
        PgLedger::host_gone(self, run)
    }
    fn distribute_ubi(&self, id: &str, source: UbiSource, amount: u64) -> Result<Distribution, LedgerError> {
        PgLedger::distribute_ubi(self, id, source, amount)
    }
    fn grant_sponsorship(&self, grant: &SponsorGrant) -> Result<(), LedgerError> {
        PgLedger::grant_sponsorship(self, grant)
    }
    fn revoke_sponsorship(&self, id: &str) -> Result<(), LedgerError> {
        PgLedger::revoke_sponsorship(self, id)
    }
    fn request_allocation(&self, req: &AllocationRequest) -> Result<Allocation, LedgerError> {
        PgLedger::request_allocation(self, req)
    }
    fn transition_allocation(&self, id: &str, t: &AllocationTransition) -> Result<Allocation, LedgerError> {
        PgLedger::transition_allocation(self, id, t)
    }
    fn record_usage(
        &self,
        id: &str,
        agent: &AgentId,
        resource: Resource,
        amount: u64,
    ) -> Result<Allocation, LedgerError> {
        PgLedger::record_usage(self, id, agent, resource, amount)
    }
    /// Not yet on PostgreSQL: refused, saying so, and nothing moves.
    fn archive_settled(&self, before_ms: i64, dir: &std::path::Path) -> Result<Archived, LedgerError> {
        self.archive_settled_here(before_ms, dir)
    }
}
