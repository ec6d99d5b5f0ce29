//! Any text as an artifact manifest, TOML and JSON: parsed and checked
//! against the host's maxima, or refused with an error; never a panic.
#![no_main]

use fuelhost::{HostLimits, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for parsed in [Manifest::from_toml(text), Manifest::from_json(text)] {
        if let Ok(manifest) = parsed {
            let _ = manifest.validate_within(&HostLimits::default(), 1 << 30);
            let _ = manifest.limits.within(&HostLimits::default(), 1 << 30);
            let _ = manifest.artifact_id();
        }
    }
});
