//! What host calls cost, in time and in fuel, beside guest compute: the
//! check that the fuel prices of `fuelhost::hostcall` track the host's
//! time about as fuel tracks guest compute.
//!
//! Each kind of call runs in the `rust-hostile` guest twice, `n` and `2n`
//! times in one invocation; the difference of the two (best of several
//! runs) is the cost of `n` calls, without the invocation's own. The same
//! for a compute loop. The table prints, per kind, nanoseconds and fuel
//! per call, nanoseconds per fuel, and the ratio to compute's nanoseconds
//! per fuel: 1.0 means a unit of fuel buys the same host time as guest
//! time.
//!
//! Run: `scripts/setup.sh && cargo bench -p fuelhost --bench hostcalls`

use std::time::{Duration, Instant};

use fuelhost::{Durability, Host, Invocation, Limits, Manifest, ResourcePolicy};

/// Kinds of calls: name, the command for `n` calls, and `n`.
const KINDS: &[(&str, &str, u64)] = &[
    ("compute (hash loop)", "spin:{n}", 5_000_000),
    ("cheap import (ledger.context)", "hostcalls:{n}", 100_000),
    ("ledger.balance", "balance:{n}", 20_000),
    ("policy.check (no plugins)", "policy:{n}", 5_000),
    ("log, 100 bytes", "logs:{n}:100", 200),
    ("log, 4 KiB", "logs:{n}:4096", 100),
    ("stdout, 4 KiB", "stdout:{n}:4096", 2_000),
    ("file read + write, 4 KiB", "rw:f:{n}:4096", 5_000),
    ("file read + write, 64 B", "rw:g:{n}:64", 20_000),
];

const RUNS: usize = 7;

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters kinds.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let guests = std::env::var("FUELHOST_GUESTS")
        .unwrap_or_else(|_| format!("{}/.cache/fuelhost/guests", std::env::var("HOME").unwrap_or_default()));
    let Ok(hostile) = std::fs::read(format!("{guests}/rust-hostile.wasm")) else {
        eprintln!("hostcalls: rust-hostile.wasm is missing from {guests}: run scripts/setup.sh");
        return;
    };
    // Guest log lines are formatted and written as a server at `info`
    // does, into a sink.
    tracing_subscriber::fmt().with_writer(std::io::sink).with_env_filter("info").init();
    let dir = tempfile::tempdir().unwrap();
    let host = Host::builder().data_dir(dir.path()).durability(Durability::Process).build().unwrap();
    for agent in ["alice", "bob"] {
        host.create_agent(agent).unwrap();
        host.mint(&format!("{agent}-fuel"), agent, fuelhost::Asset::Fuel, u64::MAX / 4).unwrap();
        host.mint(&format!("{agent}-disk"), agent, fuelhost::Asset::DiskBytes, 1 << 30).unwrap();
    }
    let manifest = Manifest {
        owner: "alice".try_into().unwrap(),
        name: "hostile".into(),
        version: "1".into(),
        price: 0,
        resource_policy: ResourcePolicy::CallerPays,
        description: String::new(),
        limits: Limits {
            fuel: 1 << 40,
            timeout_ms: 600_000,
            log_bytes: 1 << 20,
            log_lines: 10_000,
            ..Limits::default()
        },
        metering: fuelhost::Metering::Fuel,
        capabilities: Vec::new(),
        quality: None,
        command: Default::default(),
    };
    let id = host.upload(manifest, &hostile).unwrap().id;
    let measure = |cmd: &str| -> (Duration, u64) {
        let mut best = Duration::MAX;
        let mut fuel = 0;
        for _ in 0..RUNS {
            let started = Instant::now();
            let r = host.invoke(Invocation::new("bob", &id, cmd)).unwrap();
            let took = started.elapsed();
            assert!(r.success, "{cmd}: {:?}", r.error);
            best = best.min(took);
            fuel = r.resources_consumed.fuel;
        }
        (best, fuel)
    };
    println!("host call costs, fuel against time; best of {RUNS} runs, differenced (n and 2n calls)\n");
    println!("{:<32} {:>12} {:>12} {:>10} {:>9}", "kind", "ns/call", "fuel/call", "ns/fuel", "x compute");
    let mut compute_ns_per_fuel = None;
    for (name, template, n) in KINDS {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let (t1, f1) = measure(&template.replace("{n}", &n.to_string()));
        let (t2, f2) = measure(&template.replace("{n}", &(2 * n).to_string()));
        let ns = t2.saturating_sub(t1).as_nanos() as f64 / *n as f64;
        let fuel = f2.saturating_sub(f1) as f64 / *n as f64;
        let ns_per_fuel = ns / fuel.max(1e-9);
        let base = *compute_ns_per_fuel.get_or_insert(ns_per_fuel);
        println!("{name:<32} {ns:>12.1} {fuel:>12.1} {ns_per_fuel:>10.3} {:>9.2}", ns_per_fuel / base);
    }
}
