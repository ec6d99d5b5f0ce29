//! Bindings to the `fuelhost:host@0.1.0` WIT contract's `artifact` world
//! (which the host links and calls). Its `types` and `log` interfaces are
//! the ones `fuelhost-policy` generates with the `policy-plugin` world, so
//! an action is one type everywhere.

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
            "fuelhost:host/types": fuelhost_policy::bindings::fuelhost::host::types,
            "fuelhost:host/log": fuelhost_policy::bindings::fuelhost::host::log,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:filesystem": wasmtime_wasi::p2::bindings::sync::filesystem,
        },
        require_store_data_send: true,
    });
}

pub(crate) use fuelhost_policy::{tracing_level, NO_USAGE};
pub use fuelhost_policy::{Action, Attribute, Decision, RunError, Usage, WitResourcePolicy};
