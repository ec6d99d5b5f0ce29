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

/// Bindings for `fuelhost:host@0.2.0` (`wit-0.2.0`): its `llm` interface.
/// Every interface it shares with 0.1.0 is 0.1.0's, so only `llm` is
/// generated here.
#[allow(unsafe_code, missing_docs)]
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit-0.2.0",
        world: "fuelhost:host/artifact@0.2.0",
        imports: {
            default: trappable,
        },
        with: {
            "fuelhost:host/types@0.1.0": fuelhost_policy::bindings::fuelhost::host::types,
            "fuelhost:host/log@0.1.0": fuelhost_policy::bindings::fuelhost::host::log,
            "fuelhost:host/ledger@0.1.0": super::artifact::fuelhost::host::ledger,
            "fuelhost:host/policy@0.1.0": super::artifact::fuelhost::host::policy,
            "fuelhost:host/invoke@0.1.0": super::artifact::fuelhost::host::invoke,
            "fuelhost:host/tasks@0.1.0": super::artifact::fuelhost::host::tasks,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:filesystem": wasmtime_wasi::p2::bindings::sync::filesystem,
        },
        require_store_data_send: true,
    });
}
