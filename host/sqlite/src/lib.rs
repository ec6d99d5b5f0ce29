//! # fuelhost-sqlite
//!
//! The embedded storage: one SQLite file in WAL mode ([`Database`]) that
//! holds the ledger, artifact metadata, policy plugins, tasks, API keys
//! and the audit log, and the SQLite ledger backend ([`SqliteLedger`]).
//!
//! **What it owns.** Opening the file, its pragmas, its schema and how
//! durable a commit is ([`Durability`]); every ledger operation as SQL,
//! the in-memory fast path of calls no allocation governs (`hot`, with
//! the balance rows it reads kept in `stored_rows`), group
//! commit of settlements (`group_commit`), the settlement journal and its
//! projection into the tables (`projection`), the charges a usage record
//! carries (`journal`), the statistics kept as records settle
//! (`counters`), and history past a horizon moved to archive files
//! (`retention`, through `fuelhost_store::archive`).
//!
//! **What it must not know.** Wasm, policies, HTTP: it stores what the
//! ledger model (`fuelhost-ledger`) describes. The host's other stores
//! (registry, tasks, audit, keys, ...) run on [`Database`] through
//! `fuelhost_store::Sql` (`store.rs`), in SQL PostgreSQL accepts too.
//!
//! **Where to start reading.** [`SqliteLedger`] (`ledger.rs`): `reserve`
//! and `settle` are one invocation's two writes; `rows.rs` has the tables
//! row by row (balances, transfers, holds, grants), `usage.rs` the usage
//! records, `settlement.rs` what settling does; then `database.rs` for the
//! schema.

mod allocation;
mod counters;
mod database;
mod group_commit;
mod hot;
mod journal;
mod ledger;
#[cfg(test)]
mod listing_plans;
pub mod plans;
mod projection;
mod projector;
mod reservation;
mod retention;
mod rows;
mod schema;
mod settlement;
mod sql;
mod store;
mod stored_rows;
mod usage;

pub use database::{
    exec, in_savepoint, now_ms, one, Database, Durability, FromSqlite, ReadGuard, WriteGuard, FLUSH_AFTER,
};

/// SQLite's error as the ledger's: what `?` on a statement's result
/// becomes inside the ledger backend.
pub(crate) fn storage(e: rusqlite::Error) -> fuelhost_ledger::LedgerError {
    fuelhost_ledger::LedgerError::Storage(e.to_string())
}
pub use ledger::SqliteLedger;
pub use store::{bind as sqlite_values, read_committed};
