//! # fuelhost-ledger
//!
//! The ledger's model: accounts, balances, holds and settlement, in exact
//! integer units with double entry; allocations of resources; the cost
//! model; and [`Ledger`], the trait a storage backend implements.
//!
//! **What it must not know.** How anything is stored (`fuelhost-sqlite`
//! is the embedded backend) or run: no SQL, no wasmtime, no policy. Types
//! here are plain data that every layer above shares.
//!
//! **Where to start reading.** [`Ledger`] (what a backend writes) and
//! [`LedgerQuery`] (what it reads), then
//! [`Reservation`] and [`Settlement`] (one invocation's hold and its
//! settling), then `allocation` (quotas over periods).
//!
//! Every balance change is a [`Transfer`] from one account to another;
//! nothing is ever edited. Money enters through the `@mint` system account
//! (whose balance goes negative by exactly what was minted) and resources
//! that are consumed leave to `@consumed`, so the sum of all balances of an
//! asset is always zero: conservation is a query, and tests check it.
//!
//! An invocation uses two-phase transfers (*holds*): [`Ledger::reserve`]
//! holds the price from the caller and the fuel limit from the payer;
//! [`Ledger::settle`] posts what was really used, releases the rest and
//! writes the usage record, all in one transaction keyed by the invocation
//! id, so settling twice is impossible.
//!
//! [`LedgerQuery`] and [`Ledger`] are the traits a backend implements;
//! `fuelhost-sqlite`'s `SqliteLedger` is the embedded default.

mod agent;
mod allocation;
mod cost;
pub mod guest_output;
mod payer;
mod transfer;

pub use agent::{AgentId, InvalidAgentId};
pub use allocation::{
    contract_allocation, period_index, reputation_scaled, roll_quota, Alert, AlertKind, Allocation, AllocationRequest,
    AllocationStatus, AllocationTransition, CallCaps, CallUsage, Period, QuotaUsage, Raised, Resource, Rollover,
    MONTH_MS,
};
pub use cost::CostModel;
pub use payer::ResourcePolicy;
pub use transfer::{
    is_system_account, may_overdraw, Transfer, TransferKind, TransferPhase, TransferRequest, ARCHIVED_PREFIX,
    BURN_ACCOUNT, CONSUMED_ACCOUNT, MINT_ACCOUNT, POOL_ACCOUNT,
};

/// Where the ledger reads the time for expiries and periods. The system
/// clock by default; a [`ManualClock`] lets tests and simulations move
/// time by hand.
pub trait Clock: Send + Sync {
    /// Unix time, milliseconds.
    fn now_ms(&self) -> i64;
}

/// Unix time now, milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now_ms())
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// A clock that moves only when told to. Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl ManualClock {
    /// A clock showing `ms`.
    pub fn new(ms: i64) -> ManualClock {
        ManualClock(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(ms)))
    }

    /// Move the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

use serde::{Deserialize, Serialize};

/// What a balance is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Asset {
    /// The economy's currency, in its smallest unit.
    Scrip,
    /// WebAssembly fuel units: the CPU budget.
    Fuel,
    /// Bytes of disk an agent's directory may grow by.
    DiskBytes,
    /// Language-model tokens (prompt and answer) a call may spend through
    /// the host's `llm` capability.
    LlmTokens,
}

impl Asset {
    /// Every asset, in a fixed order.
    pub const ALL: [Asset; 4] = [Asset::Scrip, Asset::Fuel, Asset::DiskBytes, Asset::LlmTokens];

    /// The name stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Asset::Scrip => "scrip",
            Asset::Fuel => "fuel",
            Asset::DiskBytes => "disk_bytes",
            Asset::LlmTokens => "llm_tokens",
        }
    }

    /// The value named `s` (as written by `as_str`), if any.
    pub fn parse(s: &str) -> Option<Asset> {
        Asset::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for Asset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a UBI distribution is paid from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UbiSource {
    /// Newly minted scrip.
    Mint,
    /// The public-goods pool.
    Pool,
}

impl UbiSource {
    /// The system account a distribution from this source draws on.
    pub fn account(self) -> &'static str {
        match self {
            UbiSource::Mint => MINT_ACCOUNT,
            UbiSource::Pool => POOL_ACCOUNT,
        }
    }
}

/// A UBI distribution as it was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    /// Its id; replaying it returns this record.
    pub id: String,
    /// Where the scrip came from.
    pub source: UbiSource,
    /// The amount asked to distribute.
    pub amount: u64,
    /// How many agents received a share.
    pub recipients: u64,
    /// Each agent's share: `amount / recipients`, rounded down.
    pub per_agent: u64,
    /// `amount - per_agent * recipients`: never moved, it stays in the
    /// source, so no unit is created or lost by rounding.
    pub remainder: u64,
}

/// A sponsor's promise to pay the resources of another agent's calls
/// (fee-grant style): up to a spend limit, until an expiry, optionally
/// only for some artifacts. The price in scrip is still the caller's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SponsorGrant {
    /// Idempotency key.
    pub id: String,
    /// Pays.
    pub sponsor: AgentId,
    /// Whose calls are paid for.
    pub beneficiary: AgentId,
    /// Most fuel the sponsor pays over the grant's life.
    pub fuel_limit: u64,
    /// Most disk bytes the sponsor pays over the grant's life.
    #[serde(default)]
    pub disk_limit: u64,
    /// Unix ms after which the grant no longer applies; `None`: never.
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
    /// Artifact ids (`owner/name@version`) it applies to; empty: any.
    #[serde(default)]
    pub artifacts: Vec<String>,
}

/// A grant and how much of it is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SponsorGrantStatus {
    /// The grant as made.
    pub grant: SponsorGrant,
    /// Fuel paid so far.
    pub fuel_spent: u64,
    /// Disk bytes paid so far.
    pub disk_spent: u64,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl SponsorGrantStatus {
    /// Whether the grant pays for `beneficiary` calling `artifact` at `now_ms`.
    pub fn covers(&self, artifact: &str, now_ms: i64) -> bool {
        !self.revoked
            && self.grant.expires_at_ms.is_none_or(|t| now_ms < t)
            && self.fuel_spent < self.grant.fuel_limit
            && (self.grant.artifacts.is_empty() || self.grant.artifacts.iter().any(|a| a == artifact))
    }
}

/// One asset of one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetBalance {
    /// Sum of posted transfers in minus out.
    pub posted: u64,
    /// Sum of open holds against this account.
    pub held: u64,
}

impl AssetBalance {
    /// What can be spent or held now: posted minus held.
    pub fn available(&self) -> u64 {
        self.posted.saturating_sub(self.held)
    }
}

/// All balances of one agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    /// Scrip.
    pub scrip: AssetBalance,
    /// Fuel budget.
    pub fuel: AssetBalance,
    /// Disk budget, in bytes.
    pub disk_bytes: AssetBalance,
    /// Language-model token budget.
    #[serde(default)]
    pub llm_tokens: AssetBalance,
}

impl Balances {
    /// The balance of one asset.
    pub fn get(&self, asset: Asset) -> AssetBalance {
        match asset {
            Asset::Scrip => self.scrip,
            Asset::Fuel => self.fuel,
            Asset::DiskBytes => self.disk_bytes,
            Asset::LlmTokens => self.llm_tokens,
        }
    }

    /// The balance of `asset`, to change.
    pub fn get_mut(&mut self, asset: Asset) -> &mut AssetBalance {
        match asset {
            Asset::Scrip => &mut self.scrip,
            Asset::Fuel => &mut self.fuel,
            Asset::DiskBytes => &mut self.disk_bytes,
            Asset::LlmTokens => &mut self.llm_tokens,
        }
    }
}

/// What an invocation holds before its guest runs.
#[derive(Debug, Clone)]
pub struct Reservation {
    /// The invocation; holds are keyed by it.
    pub invocation_id: String,
    /// `owner/name@version`.
    pub artifact: String,
    /// How the payer was chosen.
    pub resource_policy: ResourcePolicy,
    /// Pays the price.
    pub caller: AgentId,
    /// Receives the price on success.
    pub owner: AgentId,
    /// Pays for the resources.
    pub payer: AgentId,
    /// Scrip held from the caller (0 when caller and owner are the same).
    pub price: u64,
    /// The most fuel the call may burn; the hold is this, capped by the
    /// payer's available fuel (and the sponsor grant's remaining limit).
    pub fuel_limit: u64,
    /// The sponsor grant paying for this call, if any (the payer is then
    /// the grant's sponsor).
    pub sponsor_grant: Option<String>,
    /// The host made `invocation_id` for this call just now (time and a
    /// random part), so no earlier call can have used it and the ledger
    /// need not look; `false` for ids a caller chose, which are checked.
    pub fresh_id: bool,
}

/// What [`Ledger::reserve`] granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    /// Fuel held from the payer: the guest runs with exactly this much.
    pub fuel: u64,
    /// Disk bytes the payer has available for this run.
    pub disk_bytes: u64,
    /// Memory cap from the payer's allocation, if it sets one.
    pub memory_bytes: Option<u64>,
    /// The allocation the call draws from, if the payer is governed.
    pub allocation: Option<String>,
}

/// A scrip transfer a running guest asked for, held until settlement.
#[derive(Debug, Clone)]
pub struct GuestTransfer {
    /// Id of the transfer (derived from the invocation id).
    pub id: String,
    /// The invocation it belongs to.
    pub invocation_id: String,
    /// The guest's principal.
    pub from: AgentId,
    /// The recipient.
    pub to: AgentId,
    /// Scrip.
    pub amount: u64,
    /// Free text from the guest.
    pub memo: String,
}

/// How an invocation ended, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `run` returned output. The price is paid.
    Success,
    /// `run` returned a `run-error`. Resources are charged, the price is not.
    RunError,
    /// The guest burned all its fuel.
    OutOfFuel,
    /// The guest tried to grow memory past its cap and then trapped.
    MemoryLimit,
    /// The guest exhausted its wasm stack.
    StackOverflow,
    /// The guest ran past its wall-clock deadline.
    Timeout,
    /// A write would have grown the owner's directory past the payer's disk
    /// budget (or its entries past the host's limit); the write failed with
    /// WASI's `quota` error, and the run then failed. Charged what landed,
    /// the price is not paid.
    DiskLimit,
    /// The output was larger than the artifact's `limits.output_bytes`; it
    /// was dropped. Charged what the run burned, the price is not paid.
    OutputLimit,
    /// The guest logged more than its `limits.log_bytes` or `log_lines`
    /// and was stopped there. Charged what it burned, no price.
    LogLimit,
    /// Any other trap.
    Trap,
    /// The host stopped (crashed, was killed) before the run settled. On
    /// restart its holds are released: nothing is charged, the price is
    /// not paid, the guest's transfers do not happen.
    Aborted,
}

impl Outcome {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::RunError => "run_error",
            Outcome::OutOfFuel => "out_of_fuel",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::StackOverflow => "stack_overflow",
            Outcome::Timeout => "timeout",
            Outcome::DiskLimit => "disk_limit",
            Outcome::OutputLimit => "output_limit",
            Outcome::LogLimit => "log_limit",
            Outcome::Trap => "trap",
            Outcome::Aborted => "aborted",
        }
    }

    /// The value named `s` (as written by `as_str`), if any.
    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Success,
            Outcome::RunError,
            Outcome::OutOfFuel,
            Outcome::MemoryLimit,
            Outcome::StackOverflow,
            Outcome::Timeout,
            Outcome::DiskLimit,
            Outcome::OutputLimit,
            Outcome::LogLimit,
            Outcome::Trap,
            Outcome::Aborted,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resources one invocation consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourcesConsumed {
    /// Fuel burned (charged to the payer).
    pub fuel: u64,
    /// Peak linear memory, bytes (recorded, capped, not billed).
    pub memory_peak_bytes: u64,
    /// Bytes the owner's directory grew by (charged to the payer, up to its
    /// disk budget).
    pub disk_bytes: u64,
    /// Wall-clock time in the guest, nanoseconds (recorded, not billed).
    pub wall_time_ns: u64,
    /// CPU time the fuel stands for, by the host's calibrated cost model,
    /// nanoseconds (set at settlement).
    pub cpu_time_ns: u64,
    /// Language-model tokens the call's `llm` requests used, as the
    /// providers reported them (charged to the payer, up to its budget).
    #[serde(default)]
    pub llm_tokens: u64,
}

/// Everything settlement needs to know about a finished run.
#[derive(Debug, Clone)]
pub struct Settlement {
    /// The invocation being settled.
    pub invocation_id: String,
    /// `owner/name@version`.
    pub artifact: String,
    /// Who invoked.
    pub caller: AgentId,
    /// Who owns the artifact.
    pub owner: AgentId,
    /// Who pays for resources.
    pub payer: AgentId,
    /// How the payer was chosen.
    pub resource_policy: ResourcePolicy,
    /// How it ended.
    pub outcome: Outcome,
    /// What it consumed (disk is charged up to the payer's budget).
    pub consumed: ResourcesConsumed,
    /// The output on success, the error text otherwise.
    pub output: Vec<u8>,
    /// Message for a failed run.
    pub error: Option<String>,
    /// Turns fuel into CPU time and resources into money.
    pub cost_model: CostModel,
    /// The policy decision that admitted the call, for the audit log: the
    /// settlement records it in its own commit (`None`: recorded already,
    /// or not to be).
    pub admission: Option<AdmissionRecord>,
}

/// The policy chain's decision admitting a call, as the audit log keeps it
/// (the kind is `invoke`, the subject the caller, the target the artifact).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdmissionRecord {
    /// When it was decided, Unix ms.
    pub at_ms: i64,
    /// `allow`.
    pub decision: String,
    /// The rule or plugin that decided, if one did.
    pub decided_by: Option<String>,
    /// The reason given, or the approvers.
    pub reason: Option<String>,
    /// Time the chain took, microseconds.
    pub latency_us: u64,
}

/// The durable record of one settled invocation, keyed by its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The invocation.
    pub invocation_id: String,
    /// `owner/name@version`.
    pub artifact: String,
    /// Who invoked.
    pub caller: AgentId,
    /// Who owns the artifact.
    pub owner: AgentId,
    /// Who paid for resources.
    pub charged_to: AgentId,
    /// How the payer was chosen.
    pub resource_policy: ResourcePolicy,
    /// How it ended.
    pub outcome: Outcome,
    /// What was charged (disk capped at the payer's budget).
    pub consumed: ResourcesConsumed,
    /// Scrip paid caller -> owner (0 unless the run succeeded).
    pub price_paid: u64,
    /// Money cost of the resources charged, micro-USD, by the cost model.
    pub cost_usd_micros: u64,
    /// Output on success (in JSON: `output` when UTF-8, else
    /// `output_base64`).
    #[serde(flatten, with = "crate::guest_output")]
    pub output: Vec<u8>,
    /// Message for a failed run.
    pub error: Option<String>,
    /// Unix time, milliseconds.
    pub settled_at_ms: i64,
    /// Its position in the ledger's order of transfers and charges: a
    /// listing is newest first, and `before = seq` of its last record asks
    /// for the next page.
    pub seq: i64,
}

/// Why a ledger operation did not happen. Nothing was changed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LedgerError {
    /// No such account.
    #[error("unknown account `{0}`: create the agent first")]
    UnknownAccount(String),
    /// An account already exists.
    #[error("account `{0}` already exists")]
    AccountExists(String),
    /// Not enough available balance.
    #[error("`{account}` has {available} {asset} available, {needed} needed")]
    Insufficient {
        /// The account short of funds.
        account: String,
        /// The asset.
        asset: Asset,
        /// What it has available (posted minus held).
        available: u64,
        /// What the operation needed.
        needed: u64,
    },
    /// Zero amount, a transfer to oneself, or similar.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// An amount would overflow 64 bits.
    #[error("amount overflow: {0}")]
    Overflow(String),
    /// A transfer id reused with different parameters.
    #[error("transfer id `{0}` was already used for a different transfer; use a new id")]
    IdConflict(String),
    /// The invocation already holds or was already settled.
    #[error("invocation `{0}` was already reserved or settled; use a new invocation id")]
    DuplicateInvocation(String),
    /// The sponsor grant named in a reservation can no longer pay (used up
    /// by concurrent calls, expired or revoked): resolve the payer again.
    #[error("sponsor grant `{0}` can no longer pay for this call")]
    GrantUnavailable(String),
    /// The payer's allocations do not allow this charge.
    #[error("`{agent}` may not be charged: {reason}")]
    AllocationRefused {
        /// The payer.
        agent: String,
        /// Which allocation and why.
        reason: String,
    },
    /// No such allocation.
    #[error("unknown allocation `{0}`")]
    UnknownAllocation(String),
    /// The ledger's state does not allow the change asked for: an
    /// allocation's status (approving an active one, extending a revoked
    /// one, ...), a balance that would pass the 64-bit range.
    #[error("{0}")]
    Conflict(String),
    /// The invocation has no reservation to settle.
    #[error("invocation `{0}` has no reservation")]
    NoReservation(String),
    /// The storage failed; the transaction was rolled back.
    #[error("ledger storage: {0}")]
    Storage(String),
}

/// Reading the ledger: balances, transfers, usage records, allocations,
/// statistics. Every method is a read; nothing here changes a balance.
/// What `Host::ledger` hands out.
pub trait LedgerQuery: Send + Sync {
    /// Whether an account exists.
    fn has_account(&self, agent: &str) -> Result<bool, LedgerError>;

    /// The balances of an agent.
    fn balances(&self, agent: &AgentId) -> Result<Balances, LedgerError>;

    /// The usage record of a settled invocation.
    fn usage_record(&self, invocation_id: &str) -> Result<Option<UsageRecord>, LedgerError>;

    /// Sum of posted balances of `asset` over every account, system
    /// accounts included. Zero unless conservation is broken.
    fn asset_total(&self, asset: Asset) -> Result<i128, LedgerError>;

    /// Every posted transfer, oldest first.
    fn transfers(&self) -> Result<Vec<Transfer>, LedgerError>;

    /// The posted transfer with this id, if any.
    fn transfer_record(&self, id: &str) -> Result<Option<Transfer>, LedgerError>;

    /// Holds not yet posted or voided (zero when nothing is running).
    fn pending_holds(&self) -> Result<u64, LedgerError>;

    /// A grant and its use.
    fn sponsorship(&self, id: &str) -> Result<Option<SponsorGrantStatus>, LedgerError>;

    /// The oldest grant that covers `beneficiary` calling `artifact` now.
    fn sponsorship_for(&self, beneficiary: &AgentId, artifact: &str)
        -> Result<Option<SponsorGrantStatus>, LedgerError>;

    /// An allocation, brought up to date (periods rolled, expiry applied).
    fn allocation(&self, id: &str) -> Result<Option<Allocation>, LedgerError>;

    /// Every allocation of an agent, up to date, oldest first.
    fn allocations_of(&self, agent: &AgentId) -> Result<Vec<Allocation>, LedgerError>;

    /// Every allocation in force (`active` or `exhausted`), up to date, by
    /// agent then oldest first.
    fn allocations_in_force(&self) -> Result<Vec<Allocation>, LedgerError>;

    /// Usage of `resource` reported with [`Ledger::record_usage`] since the
    /// ledger began, summed per agent (each report once, however often it
    /// was retried), by agent.
    fn reported_usage(&self, resource: Resource) -> Result<Vec<(AgentId, u64)>, LedgerError>;

    /// Budget alerts, oldest first; of one agent when given.
    fn alerts(&self, agent: Option<&AgentId>) -> Result<Vec<Alert>, LedgerError>;

    /// Usage records matching `q`, newest first.
    fn usage_records(&self, q: &UsageQuery) -> Result<Vec<UsageRecord>, LedgerError>;

    /// The agents that paid for the most fuel in `[from_ms, to_ms)`, most
    /// first.
    fn top_consumers(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ConsumerStats>, LedgerError> {
        self.top_consumers_by(Asset::Fuel, from_ms, to_ms, limit)
    }

    /// The agents charged the most of `asset` in `[from_ms, to_ms)`, most
    /// first. Payers are charged resources, so `asset` is `fuel` or
    /// `disk_bytes`; `scrip` is refused as [`LedgerError::Invalid`].
    fn top_consumers_by(
        &self,
        asset: Asset,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ConsumerStats>, LedgerError>;

    /// Posted transfers matching `q`, newest first.
    fn transfers_matching(&self, q: &TransferQuery) -> Result<Vec<Transfer>, LedgerError> {
        Ok(self.transfer_listing(q)?.into_iter().map(|l| l.item).collect())
    }

    /// Posted transfers matching `q`, newest first, each with its position
    /// (for the next page).
    fn transfer_listing(&self, q: &TransferQuery) -> Result<Vec<Listed<Transfer>>, LedgerError>;

    /// Service-wide statistics.
    fn stats(&self) -> Result<ServiceStats, LedgerError>;
}

/// A ledger backend. Every method is one atomic transaction: it applies
/// whole or not at all.
pub trait Ledger: LedgerQuery {
    /// Create an agent's account (all balances zero).
    fn open_account(&self, agent: &AgentId) -> Result<(), LedgerError>;

    /// Post a batch of transfers, all or none, each idempotent by its id
    /// (a replay returns the transfer as first posted). Each must pass
    /// [`Transfer::problem`]; no account but `@mint` may go below what it
    /// holds (see [`may_overdraw`]).
    fn post(&self, batch: &[Transfer]) -> Result<Vec<Transfer>, LedgerError>;

    /// [`Ledger::post`] of one transfer.
    fn post_one(&self, transfer: Transfer) -> Result<Transfer, LedgerError> {
        let mut posted = self.post(std::slice::from_ref(&transfer))?;
        posted.pop().ok_or_else(|| LedgerError::Storage("a posted batch of one came back empty".into()))
    }

    /// Hold the price and the fuel of an invocation.
    fn reserve(&self, r: &Reservation) -> Result<Reserved, LedgerError>;

    /// Hold a transfer a running guest asked for; posted or voided at
    /// settlement.
    fn hold_guest_transfer(&self, t: &GuestTransfer) -> Result<(), LedgerError>;

    /// Hold `bytes` more of `payer`'s disk budget for the running
    /// `invocation`, whose writes are about to grow a directory by that
    /// much: [`LedgerError::Insufficient`] (nothing held) when the budget,
    /// less what every running call holds, is short. Released when the
    /// invocation settles, which charges what it really grew.
    fn hold_disk(&self, invocation_id: &str, payer: &AgentId, bytes: u64) -> Result<(), LedgerError>;

    /// Hold `tokens` more of `payer`'s `llm_tokens` budget for the running
    /// `invocation`, about to send a language-model request that may use
    /// that many: [`LedgerError::Insufficient`] (nothing held) when the
    /// budget, less what every running call holds, is short. What the
    /// call's requests used is charged when it settles
    /// ([`ResourcesConsumed::llm_tokens`]), and the hold released.
    fn hold_llm_tokens(&self, invocation_id: &str, payer: &AgentId, tokens: u64) -> Result<(), LedgerError>;

    /// Release up to `tokens` of what the running `invocation` holds of its
    /// payer's `llm_tokens` budget (a request answered with fewer tokens
    /// than held, or failed); returns how many were released.
    fn release_llm_tokens(&self, invocation_id: &str, tokens: u64) -> Result<u64, LedgerError>;

    /// Post or release every hold of the invocation and write its usage
    /// record, in one transaction; with its `admission`, which a backend
    /// must record in the audit log in the same transaction (or in one that
    /// cannot commit without it).
    fn settle(&self, s: &Settlement) -> Result<UsageRecord, LedgerError>;

    /// Settle, as [`Outcome::Aborted`], every reservation that was never
    /// settled: its holds are released and nothing is charged. Called when
    /// a host opens, before it serves, so a crash leaves no hold dangling.
    /// (With several hosts on one database this must only take the
    /// reservations of hosts known to be dead.)
    fn abort_unsettled(&self) -> Result<Vec<UsageRecord>, LedgerError>;

    /// Settle as [`Outcome::Aborted`] what hosts that died left unsettled,
    /// while this one serves (never its own calls in flight): a backend
    /// several hosts share is asked this now and again. The embedded one,
    /// alone with its file, has nothing to take over.
    fn take_over_dead_hosts(&self) -> Result<Vec<UsageRecord>, LedgerError> {
        Ok(Vec::new())
    }

    /// The id of this host's run on a database several hosts share (what
    /// a task it starts is marked with); `None` for a ledger only one host
    /// uses.
    fn host_run(&self) -> Option<String> {
        None
    }

    /// Whether the host run `run` is gone: no live host holds it (its
    /// lease ran out a whole lease ago, or it is an earlier run of this
    /// host's name). Always, for a ledger only one host uses.
    fn host_gone(&self, run: &str) -> Result<bool, LedgerError> {
        let _ = run;
        Ok(true)
    }

    /// Whether a live host other than this one holds the call
    /// `invocation_id` reserved and not yet settled: it is running there,
    /// and is not this host's to take over. Never, for a ledger only one
    /// host uses.
    fn held_elsewhere(&self, invocation_id: &str) -> Result<bool, LedgerError> {
        let _ = invocation_id;
        Ok(false)
    }

    /// Split `amount` equally over every agent, from `source`; the
    /// remainder stays in the source. One transaction; idempotent by id.
    fn distribute_ubi(&self, id: &str, source: UbiSource, amount: u64) -> Result<Distribution, LedgerError>;

    /// Record a sponsor grant. Idempotent by `grant.id`.
    fn grant_sponsorship(&self, grant: &SponsorGrant) -> Result<(), LedgerError>;

    /// Revoke a sponsor grant: it pays for no further call.
    fn revoke_sponsorship(&self, id: &str) -> Result<(), LedgerError>;

    /// Request an allocation (`pending`, or `approved` with
    /// `auto_approve`). Idempotent by `req.id`.
    fn request_allocation(&self, req: &AllocationRequest) -> Result<Allocation, LedgerError>;

    /// Move an allocation through its lifecycle (approve, activate,
    /// extend, revoke); a transition its status does not allow is
    /// [`LedgerError::Conflict`].
    fn transition_allocation(&self, id: &str, t: &AllocationTransition) -> Result<Allocation, LedgerError>;

    /// Report usage the host did not meter itself (LLM tokens, money spent
    /// elsewhere, ...) against the agent's active allocation. Idempotent
    /// by `id`.
    fn record_usage(
        &self,
        id: &str,
        agent: &AgentId,
        resource: Resource,
        amount: u64,
    ) -> Result<Allocation, LedgerError>;

    /// Move the usage records of calls settled before `before_ms` out of
    /// the ledger into JSON-lines files under `dir`, one per kind and UTC
    /// hour (each line a record with its charges), written and fsynced
    /// before anything is deleted. Their charges stay, summed into one
    /// transfer per hour, kind, debit and credit (ids beginning
    /// [`ARCHIVED_PREFIX`]), so every balance is still the sum of the
    /// ledger's transfers. An invocation id is idempotent for as long as
    /// its record is kept. Safe to interrupt anywhere and run again: no
    /// record is lost or archived twice.
    fn archive_settled(&self, before_ms: i64, dir: &std::path::Path) -> Result<Archived, LedgerError>;

    /// Write out what the backend keeps back to write in bulk (settlements
    /// journaled, with their admissions' audit records), so that a reader of
    /// the tables beside the ledger (the audit log) sees every call
    /// settled so far. A backend that keeps nothing back does nothing.
    fn catch_up(&self) -> Result<(), LedgerError> {
        Ok(())
    }
}

/// What one pass of [`Ledger::archive_settled`] moved out of the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archived {
    /// Usage records moved into archive files.
    pub records: u64,
    /// Their charges, now counted in hourly summary transfers.
    pub charges: u64,
    /// The files written to, relative to the archive directory.
    pub files: Vec<String>,
}

/// Which usage records to return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageQuery {
    /// Records where this agent was the caller, the owner or the payer.
    pub agent: Option<AgentId>,
    /// Records of this artifact (`owner/name@version`).
    pub artifact: Option<String>,
    /// Settled at or after, Unix ms.
    pub from_ms: Option<i64>,
    /// Settled before, Unix ms.
    pub to_ms: Option<i64>,
    /// Records before this position in the ledger (a record's `seq`): the
    /// next page of a listing, newest first.
    pub before: Option<i64>,
    /// At most this many (default 100, at most 10,000).
    pub limit: Option<usize>,
}

/// Which posted transfers to return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferQuery {
    /// Transfers this agent sent or received.
    pub agent: Option<AgentId>,
    /// Transfers before this position in the ledger (a listed transfer's
    /// `seq`): the next page of a listing, newest first.
    pub before: Option<i64>,
    /// At most this many (default 100, at most 10,000).
    pub limit: Option<usize>,
}

/// A listed item with its position in the ledger's order: `seq` of the
/// last item of a page is where the next page starts (`before`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed<T> {
    /// Position in the ledger's order of transfers and charges.
    pub seq: i64,
    /// The item.
    #[serde(flatten)]
    pub item: T,
}

/// What one agent paid for, over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerStats {
    /// The payer.
    pub agent: AgentId,
    /// Invocations it paid resources for.
    pub invocations: u64,
    /// Fuel charged to it.
    pub fuel: u64,
    /// Disk bytes charged to it.
    pub disk_bytes: u64,
    /// Money cost of what was charged to it, micro-USD.
    pub cost_usd_micros: u64,
    /// LLM tokens charged to it.
    #[serde(default)]
    pub llm_tokens: u64,
}

/// Service-wide statistics (the fields of the RAP service's `get_stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStats {
    /// Allocations ever requested.
    pub total_allocations: u64,
    /// Allocations active now.
    pub active_allocations: u64,
    /// Usage records (settled invocations).
    pub total_usage_records: u64,
    /// Money cost of everything charged, micro-USD.
    pub total_cost_usd_micros: u64,
    /// Invocations served (API calls).
    pub total_api_calls: u64,
    /// Times an allocation reached its hard threshold.
    pub budget_exceeded_count: u64,
    /// Fuel charged, in all.
    pub total_fuel: u64,
    /// Settled invocations per outcome.
    pub invocations_by_outcome: std::collections::BTreeMap<String, u64>,
}

/// A charge of an archived call (price, fuel or disk), as its line in the
/// usage archive lists it and as the hour's summary transfer counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedCharge {
    /// The charge's transfer id (`<invocation>/price`, `/fuel`, `/disk`).
    pub id: String,
    /// Who paid it.
    pub debit: String,
    /// Who received it.
    pub credit: String,
    /// What was charged.
    pub asset: Asset,
    /// How much.
    pub amount: u64,
    /// Which charge.
    pub kind: TransferKind,
}

/// One line of a usage archive file (ending in a newline): the record as
/// the API shows it, with its `charges`. The same on every backend.
pub fn usage_archive_line(record: &UsageRecord, charges: &[ArchivedCharge]) -> Result<Vec<u8>, LedgerError> {
    let encode = |e: serde_json::Error| LedgerError::Storage(format!("writing a usage record as JSON: {e}"));
    let mut line = serde_json::to_value(record).map_err(encode)?;
    let charges: Vec<_> = charges
        .iter()
        .map(|c| {
            serde_json::json!({"id": c.id, "from": c.debit, "to": c.credit, "asset": c.asset.as_str(),
                               "amount": c.amount, "kind": c.kind.as_str()})
        })
        .collect();
    line["charges"] = serde_json::Value::Array(charges);
    let mut out = serde_json::to_vec(&line).map_err(encode)?;
    out.push(b'\n');
    Ok(out)
}
