//! The one place bindings to the `fuelhost:host@0.1.0` WIT contract are
//! generated: the `artifact` world (which the host links and calls) and the
//! `policy-plugin` world (which shares the artifact world's `types`).

/// Bindings for the `artifact` world.
#[allow(unsafe_code, missing_docs)]
pub mod artifact {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "fuelhost:host/artifact@0.1.0",
        imports: {
            default: trappable,
        },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:filesystem": wasmtime_wasi::p2::bindings::sync::filesystem,
        },
        require_store_data_send: true,
    });
}

/// Bindings for the `policy-plugin` world.
#[allow(unsafe_code, missing_docs)]
pub mod policy_plugin {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "fuelhost:host/policy-plugin@0.1.0",
        imports: { default: trappable },
        with: {
            "fuelhost:host/types": super::artifact::fuelhost::host::types,
            "fuelhost:host/log": super::artifact::fuelhost::host::log,
        },
        require_store_data_send: true,
    });
}

/// No resources at all: the estimate of actions that consume none.
pub(crate) const NO_USAGE: Usage =
    Usage { fuel: 0, memory_peak_bytes: 0, disk_bytes: 0, llm_tokens: 0, wall_time_ns: 0 };

pub use artifact::fuelhost::host::types::{
    Action, Attribute, Decision, ResourcePolicy as WitResourcePolicy, RunError, Usage,
};

/// A guest's log level as the host's log has it.
pub(crate) fn tracing_level(level: artifact::fuelhost::host::log::Level) -> tracing::Level {
    use artifact::fuelhost::host::log::Level;
    match level {
        Level::Trace => tracing::Level::TRACE,
        Level::Debug => tracing::Level::DEBUG,
        Level::Info => tracing::Level::INFO,
        Level::Warn => tracing::Level::WARN,
        Level::Error => tracing::Level::ERROR,
    }
}
