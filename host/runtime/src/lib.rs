//! # fuelhost-runtime
//!
//! Running a guest: the wasmtime engines ([`Engines`]: one per metering
//! mode, pooling, epochs), the compiled-code cache ([`CodeCache`]),
//! instance slots ([`Slots`]), a guest's store data ([`GuestCtx`], shared
//! by artifacts and policy plugins), its limiter ([`GuestLimiter`]), how a
//! run is metered ([`Metering`], [`Meter`]), what a call into the host
//! costs in fuel ([`hostcall`]) and the boundary that charges it
//! ([`boundary`]), waits
//! bounded by the run's deadline ([`io`]), component-model-async calls run
//! to their end ([`concurrent`]), and why a run stopped
//! ([`classify_trap`]).
//!
//! **What it must not know.** The ledger, policies, the host's imports:
//! those are the layers above, and each kind of guest brings its own store
//! data type, which hands the runtime its [`GuestCtx`] through [`Guest`].
//!
//! **Where to start reading.** `guest.rs` ([`GuestCtx`] and [`new_store`]),
//! then [`boundary`] (the call hook every import crosses), then
//! `engine.rs`.

pub mod boundary;
mod cache;
pub mod concurrent;
mod engine;
mod guest;
pub mod hostcall;
pub mod io;
mod limiter;
mod meter;
mod slots;
mod wait;

pub use cache::{digest, CacheStats, CodeCache};
pub use engine::{build_engine, build_engine_for, ticks_for, EngineSettings, Engines, EpochTicker};
pub use guest::{
    classify_trap, closed_wasi, new_store, when_a_slot_is_free, CapReached, Guest, GuestCtx, LogCap, Stop,
};
pub use limiter::GuestLimiter;
pub use meter::{Meter, Metering};
pub use slots::{Busy, Slot, Slots};
pub use wait::WaitLimit;
