//! What the table benches (`throughput`, `scaling`, `registry`) share: whether `cargo
//! bench -- FILTER` asks for them, the guest they call, and how long each
//! row runs.

use std::time::Duration;

use fuelhost::loadgen::{prepare, run, LoadConfig, LoadReport, CALLER};
use fuelhost::{Durability, Host, Metering};

/// Whether the command line's filters (if any) name the bench `name`:
/// `cargo bench -- FILTER` hands the filter to every bench binary.
pub fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

/// The guest `name` (`rust-kernels`, ...), or `None` (saying so) when the
/// guests are not built.
pub fn guest(name: &str, table: &str) -> Option<Vec<u8>> {
    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    let guest = std::fs::read(format!("{guests}/{name}.wasm")).ok();
    if guest.is_none() {
        eprintln!("skipping the {table} table: guests not built (run scripts/setup.sh)");
    }
    guest
}

/// How long each row runs: `FUELHOST_BENCH_SECONDS`, default 3.
#[allow(dead_code)] // the registry bench's rows are counts, not times
pub fn row_duration() -> Duration {
    let seconds: f64 = std::env::var("FUELHOST_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    Duration::from_secs_f64(seconds)
}

/// `threads` threads invoking `input` on `guest` for `duration` in a fresh
/// embedded host of `durability`, every call charged; none may fail.
#[allow(dead_code)] // the registry bench runs no load
pub fn fuelhost_load(
    bench: &str,
    guest: &[u8],
    input: &str,
    durability: Durability,
    threads: usize,
    duration: Duration,
) -> LoadReport {
    let dir = std::env::temp_dir().join(format!("fuelhost-{bench}-{}-{threads}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let host = Host::builder().data_dir(&dir).durability(durability).build().unwrap();
    let artifact = prepare(&host, "kernels", guest, Metering::Fuel).unwrap();
    let config = LoadConfig { caller: CALLER.into(), artifact, input: input.into(), threads, duration };
    let report = run(&host, &config);
    assert_eq!(report.errors, 0, "{:?}", report.first_error);
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
    report
}
