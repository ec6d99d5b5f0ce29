//! Test support for fuelhost's integration tests: finding the guest
//! components that `scripts/build-guests.sh` built from source, and hosts
//! set up with funded agents.

use std::path::PathBuf;

use fuelhost::{Asset, Host, Limits, Manifest, ResourcePolicy};

/// Where the built guests are: `$FUELHOST_GUESTS`, else
/// `~/.cache/fuelhost/guests`.
pub fn guests_dir() -> PathBuf {
    std::env::var_os("FUELHOST_GUESTS").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME or FUELHOST_GUESTS must be set"))
            .join(".cache/fuelhost/guests")
    })
}

/// The bytes of guest `name` (a plugin folder name, e.g. `rust-probe`).
pub fn guest(name: &str) -> Vec<u8> {
    let path = guests_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("guest {} is missing ({e}): run scripts/setup.sh, which builds every guest from source", path.display())
    })
}

/// A host in a fresh temporary directory, sharing one precompiled-code
/// cache with the other tests so each guest is compiled once per run.
pub struct TestHost {
    /// The host.
    pub host: Host,
    /// Its data directory (removed on drop).
    pub dir: tempfile::TempDir,
}

/// The compile cache shared by every test host.
pub fn shared_compile_cache() -> PathBuf {
    std::env::temp_dir().join(format!("fuelhost-test-compiled-{}", env!("CARGO_PKG_VERSION")))
}

/// A fresh host with agents `alice` (owns artifacts) and `bob` (calls
/// them), each funded with 1,000 scrip, 1e9 fuel and 1 MiB of disk.
pub fn test_host() -> TestHost {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = Host::builder()
        .data_dir(dir.path())
        .compile_cache_dir(shared_compile_cache())
        .max_instances(8)
        // The tests' callers may use every slot.
        .limits(fuelhost::HostLimits { max_calls_per_agent: 8, ..fuelhost::HostLimits::default() })
        .build()
        .expect("host opens");
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
        fund(&host, agent, 1_000, 1_000_000_000, 1 << 20);
    }
    TestHost { host, dir }
}

/// Mint scrip, fuel and disk for `agent` (ids derived, so idempotent).
pub fn fund(host: &Host, agent: &str, scrip: u64, fuel: u64, disk: u64) {
    for (asset, amount) in [(Asset::Scrip, scrip), (Asset::Fuel, fuel), (Asset::DiskBytes, disk)] {
        if amount > 0 {
            host.mint(&format!("fund-{agent}-{asset}-{amount}"), agent, asset, amount).unwrap();
        }
    }
}

/// A manifest owned by `alice`.
pub fn manifest(name: &str, price: u64, policy: ResourcePolicy, limits: Limits) -> Manifest {
    Manifest {
        owner: "alice".try_into().unwrap(),
        name: name.into(),
        version: "0.1.0".into(),
        price,
        resource_policy: policy,
        description: String::new(),
        limits,
        metering: fuelhost::Metering::Fuel,
        capabilities: Vec::new(),
        quality: None,
    }
}

/// Upload guest `guest` as `alice/NAME@0.1.0`; returns the artifact id.
pub fn upload(host: &Host, guest_name: &str, name: &str, price: u64, policy: ResourcePolicy, limits: Limits) -> String {
    host.upload(manifest(name, price, policy, limits), &guest(guest_name)).unwrap().id
}

/// Sum of every asset over all accounts must be zero, and no agent below
/// what it holds.
pub fn assert_conserved(host: &Host) {
    for asset in Asset::ALL {
        assert_eq!(host.ledger().asset_total(asset).unwrap(), 0, "{asset} is not conserved");
    }
}
