//! # fuelhost-api
//!
//! The HTTP API as Rust types: every request body a client sends
//! ([`requests`]) and every reply the server answers with ([`replies`]),
//! and the grammar of the values they carry ([`grammar`]). The server
//! (`fuelhost-server`) reads and writes exactly these types, and the
//! `fuelhost` command reads its answers into them, so a field renamed on
//! one side is a compile error on the other, not a blank column.
//!
//! **What it must not know.** HTTP itself (routes, status codes, axum,
//! authentication) or how a request is served: those are the server's.
//! Types here are plain serde data with their OpenAPI schemas.
//!
//! **Where to start reading.** [`requests`] in the order of the API's
//! routes, then [`replies`]; the domain values inside replies (a
//! `Transfer`, a `UsageRecord`, an `InvocationReport`, a `Task`, ...) are
//! the host's own types, re-exported here so a client needs one import.
//!
//! The domain values come from `fuelhost`, so this crate links the host
//! (and wasmtime) today. A client that must stay small needs those
//! plain-data types moved into a crate of their own first, as the
//! ledger's already are (`fuelhost-ledger`).
//!
//! A reply is read leniently (an unknown field from a newer server is
//! ignored); a request body is checked strictly by the server (an
//! unknown field is refused), so a typo in a client is an error, not a
//! silent default.

pub mod grammar;
pub mod replies;
pub mod requests;

pub use fuelhost::{AgentHealth, AgentId, Asset};
pub use fuelhost::{
    Allocation, AllocationRequest, ArtifactInfo, AuditEntry, Balances, BreakerStatus, ConsumerStats, CostModel,
    InvocationReport, Listed, PendingAction, Rule, ServiceStats, SponsorGrant, SponsorGrantStatus, Task, Transfer,
    UsageRecord,
};
