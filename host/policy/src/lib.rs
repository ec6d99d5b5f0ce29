//! # fuelhost-policy
//!
//! Deciding actions: the declarative [`rules`], policy plugins (components
//! of the `policy-plugin` world, in any language), and the chain that puts
//! an action to both ([`PolicyChain`], giving a [`Verdict`]). Also the WIT
//! types every decision speaks in ([`Action`], [`Decision`], [`Usage`]),
//! generated here, once, from `wit/` (the host's artifact world reuses
//! them).
//!
//! **What it owns.** The rules' grammar and matching; each plugin check in
//! a fresh instance of its own store type ([`PluginStore`]: the runtime's
//! guest context and nothing else: no call, no ledger, no HTTP), with its
//! own fuel, memory cap and deadline, failing closed; the chain's versions
//! (a check in flight finishes on the version it started with); the
//! [`Judge`] trait through which the host's imports ask for decisions.
//!
//! **What it must not know.** The ledger, the audit log, the host: a
//! verdict is returned, and the host records it.
//!
//! **Where to start reading.** [`PolicyChain::check`], then `rules.rs`.

mod chain;
pub mod rules;

pub use chain::{plugin_linker, Judge, PluginLimits, PluginStore, PolicyChain, PolicyPlugin, Verdict};

/// Bindings of the `policy-plugin` world, and of the `types` and `log`
/// interfaces it shares with the artifact world.
#[allow(unsafe_code, missing_docs)]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "fuelhost:host/policy-plugin@0.1.0",
        imports: { default: trappable },
        require_store_data_send: true,
    });
}

pub use bindings::fuelhost::host::types::{
    Action, Attribute, Decision, ResourcePolicy as WitResourcePolicy, RunError, Usage,
};
pub use bindings::PolicyPluginPre;

/// No resources at all: the estimate of actions that consume none.
pub const NO_USAGE: Usage = Usage { fuel: 0, memory_peak_bytes: 0, disk_bytes: 0, llm_tokens: 0, wall_time_ns: 0 };

/// A guest's log level as the host's log has it.
pub fn tracing_level(level: bindings::fuelhost::host::log::Level) -> tracing::Level {
    use bindings::fuelhost::host::log::Level;
    match level {
        Level::Trace => tracing::Level::TRACE,
        Level::Debug => tracing::Level::DEBUG,
        Level::Info => tracing::Level::INFO,
        Level::Warn => tracing::Level::WARN,
        Level::Error => tracing::Level::ERROR,
    }
}
