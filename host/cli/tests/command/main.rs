//! The `fuelhost` command as a user runs it, in one test binary (each
//! binary links the whole host): `serve` (the client commands against a
//! server in a child process), `crash` (a server killed with SIGKILL
//! mid-work, restarted, its ledger still exact), `hosts` (several servers
//! over one PostgreSQL database) and `docs` (every code block of the README
//! and `docs/` run or checked).

mod crash;
mod docs;
mod hosts;
mod mcp;
mod serve;

use std::path::PathBuf;

use fuelhost::{Limits, Manifest, Metering, ResourcePolicy};

/// The bytes of guest `name`, built from source by `scripts/setup.sh`.
fn guest(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("FUELHOST_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/fuelhost/guests"));
    std::fs::read(dir.join(format!("{name}.wasm"))).unwrap_or_else(|e| panic!("{name}.wasm: {e}; run scripts/setup.sh"))
}

/// A manifest of alice's: `name` at 0.1.0, caller pays.
fn manifest(name: &str, price: u64, limits: Limits) -> Manifest {
    Manifest {
        owner: "alice".try_into().unwrap(),
        name: name.into(),
        version: "0.1.0".into(),
        price,
        resource_policy: ResourcePolicy::CallerPays,
        description: String::new(),
        limits,
        metering: Metering::Fuel,
        capabilities: Vec::new(),
        quality: None,
        command: Default::default(),
    }
}
