//! # fuelhost-postgres
//!
//! fuelhost on PostgreSQL, for deployments of several stateless hosts
//! over one database (SQLite, `fuelhost-sqlite`, stays the embedded
//! default).
//!
//! **What it owns.** Connecting ([`Database`]: a pool, errors that name
//! the database without its password, transactions retried when
//! PostgreSQL asks for it), the schema as versioned migrations
//! (`migrations/V*.sql`, run at open with refinery), the ledger as SQL
//! ([`PgLedger`]), and [`ScratchServer`], a throwaway server the tests
//! start from Debian's `postgresql` package.
//!
//! **What it must not know.** Wasm, policies, HTTP: like
//! `fuelhost-sqlite`, it stores what the ledger model (`fuelhost-ledger`)
//! describes.
//!
//! **Status.** The ledger's accounts, transfers, balances and listings
//! (`ledger.rs`), sponsor grants and UBI (`economy.rs`), allocations
//! (`allocations.rs`), and a call's reservation, holds and settlement with
//! its usage record and admission audit (`calls.rs`), each held to the
//! SQLite backend by the same scenarios, and statistics kept as records
//! settle (`counters.rs`); it implements the ledger traits (`backend.rs`).
//! Each host holds a lease (`leases.rs`), so a host takes over only
//! a dead host's reservations. The host's other stores run on it through
//! `fuelhost-store` (`store.rs`: the shared SQL's placeholders and
//! values). Still to come: archiving (refused, saying so).
//!
//! **Where to start reading.** `connect.rs`, then `ledger.rs`, then
//! `calls.rs`; the schema is `migrations/`.

mod allocations;
mod backend;
mod calls;
mod changes;
mod connect;
mod counters;
mod economy;
mod leases;
mod ledger;
mod retention;
pub mod scratch;
mod store;

pub use changes::{Change, Listener};
pub use connect::{redact, Database, OpenError};
pub use store::CHANNEL;

/// How long a host's lease lasts unless renewed: a host that stopped is
/// taken for dead this long after its last renewal.
pub const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(30);
pub use ledger::PgLedger;
pub use scratch::{ScratchError, ScratchServer};
