//! Any bytes uploaded as an artifact component: recognised, compiled and
//! linked, or refused with an error; never a panic, and the host keeps
//! serving.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use fuelhost::{Host, Manifest};
use libfuzzer_sys::fuzz_target;

fn host() -> &'static Host {
    static HOST: OnceLock<(Host, tempfile::TempDir)> = OnceLock::new();
    &HOST
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let host = Host::builder().data_dir(dir.path()).max_instances(2).build().unwrap();
            host.create_agent("alice").unwrap();
            (host, dir)
        })
        .0
}

fuzz_target!(|data: &[u8]| {
    static N: AtomicU64 = AtomicU64::new(0);
    let version = N.fetch_add(1, Ordering::Relaxed);
    let manifest = Manifest::from_toml(&format!(
        "owner = \"alice\"\nname = \"fuzzed\"\nversion = \"{version}\"\nresource_policy = \"caller_pays\"\n"
    ))
    .unwrap();
    let _ = host().upload(manifest, data);
});
