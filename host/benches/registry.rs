//! What each artifact costs the host to hold: `N` artifacts uploaded
//! from the same component bytes (the `rust-echo` guest), then the host
//! reopened on them. For each `N`, the process's resident memory and
//! memory mappings after the uploads and after the restart, the time the
//! restart took, and the growth per artifact past the first. Each `N` runs
//! in a fresh host and directory; the process's baseline is measured
//! before each.
//!
//! Then a cold start: `FUELHOST_REGISTRY_DISTINCT` (default 100) artifacts
//! of distinct bytes (the same guest, each with a custom section of its
//! own), the host reopened with its compile cache emptied: how long the
//! start took (the host serves from then on) and how long its background
//! thread took to compile them all.
//!
//! Then artifacts of distinct code (`FUELHOST_REGISTRY_DISTINCT_CURVE`,
//! default `1,1000`; `0` skips): `N` small artifacts, each a WAT component
//! with a constant of its own (a digest and code of its own, compiled in
//! about a millisecond), uploaded, the host restarted on them with its
//! compile cache: the restart's time, memory and mappings, how many are
//! loaded (at most `max_loaded_artifacts`), then calls to up to 2,000 of
//! them, most not loaded: the mean first call (loading code from the
//! cache) and the memory after.
//!
//! Run: `cargo bench -p fuelhost --bench registry`
//! (`FUELHOST_REGISTRY_COUNTS`, default `1,1000`, the `N`s).

use std::time::Instant;

use fuelhost::loadgen::CALLER;
use fuelhost::{Host, Limits, Manifest, Metering, ResourcePolicy};

#[path = "common/table_bench.rs"]
mod table_bench;

/// Resident memory of this process, bytes (`VmRSS`).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Memory mappings of this process.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count())
}

fn manifest(i: usize) -> Manifest {
    Manifest {
        owner: "alice".try_into().unwrap(),
        name: format!("echo-{i}"),
        version: "1".into(),
        price: 0,
        resource_policy: ResourcePolicy::CallerPays,
        description: String::new(),
        limits: Limits::default(),
        metering: Metering::Fuel,
        capabilities: Vec::new(),
        quality: None,
        command: Default::default(),
    }
}

/// `component` with a custom section naming `i` appended: other bytes,
/// the same code.
fn distinct(component: &[u8], i: usize) -> Vec<u8> {
    let name = b"fuelhost-bench";
    let payload = i.to_le_bytes();
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut out = component.to_vec();
    out.push(0); // a custom section
    out.push(section.len() as u8); // its size, one LEB128 byte
    out.extend_from_slice(&section);
    out
}

/// A small artifact whose code is its own: `run` answers its input with
/// the constant `i` in its first byte's place.
fn tiny(i: usize) -> Vec<u8> {
    let wat = format!(
        r#"(component
  (core module $m
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $bump))
      (global.set $bump (i32.add (global.get $bump) (local.get 3)))
      (local.get $p))
    (func (export "run") (param $ptr i32) (param $len i32) (result i32)
      (if (local.get $len) (then (i32.store8 (local.get $ptr) (i32.const {}))))
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.store (i32.const 4) (local.get $ptr))
      (i32.store (i32.const 8) (local.get $len))
      (i32.add (i32.const 0) (i32.const {i}))
      drop
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (type $error (variant (case "invalid-input" string) (case "denied" string) (case "failed" string)))
  (export $run-error "run-error" (type $error))
  (func $run (param "input" (list u8)) (result (result (list u8) (error $run-error)))
    (canon lift (core func $i "run") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (export "run" (func $run)))"#,
        i % 256
    );
    wat::parse_str(wat).expect("the template is valid WAT")
}

/// `n` artifacts of distinct code: upload, restart, first calls.
fn distinct_curve(n: usize) {
    let dir = std::env::temp_dir().join(format!("fuelhost-registry-distinct-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let open = || Host::builder().data_dir(&dir).durability(fuelhost::Durability::Process).build().unwrap();
    let started = Instant::now();
    {
        let host = open();
        host.create_agent("alice").unwrap();
        host.create_agent(CALLER).unwrap();
        host.mint("fund", CALLER, fuelhost::Asset::Fuel, 1 << 50).unwrap();
        for i in 0..n {
            host.upload(manifest(i), &tiny(i)).unwrap();
        }
    }
    let upload = started.elapsed();
    let (base_rss, base_maps) = (rss(), mappings());
    let started = Instant::now();
    let host = open();
    let restart = started.elapsed();
    let (re_rss, re_maps, loaded) = (rss(), mappings(), host.loaded_artifacts());
    // Calls to artifacts spread over all of them: past the ones loaded at
    // start, each first call loads its code from the cache.
    let calls = n.min(2_000);
    let step = (n / calls).max(1);
    let started = Instant::now();
    for k in 0..calls {
        let i = (n - 1) - (k * step) % n;
        let r = host.invoke(fuelhost::Invocation::new(CALLER, format!("alice/echo-{i}@1"), "x")).unwrap();
        assert!(r.success, "{:?}", r.error);
        assert_eq!(r.output, [(i % 256) as u8]);
    }
    let per_call = started.elapsed() / calls as u32;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "| {n} | {:.1} s | {:.0} ms | +{:.1} MiB | +{} | {loaded} | {calls} | {:.0} µs | +{:.1} MiB | +{} | {} |",
        upload.as_secs_f64(),
        restart.as_secs_f64() * 1000.0,
        mib(re_rss.saturating_sub(base_rss)),
        re_maps as i64 - base_maps as i64,
        per_call.as_secs_f64() * 1e6,
        mib(rss().saturating_sub(base_rss)),
        mappings() as i64 - base_maps as i64,
        host.loaded_artifacts(),
    );
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Upload `n` artifacts of distinct bytes, empty the compile cache, and
/// time the host's start.
fn cold_start(guest: &[u8], n: usize) {
    let dir = std::env::temp_dir().join(format!("fuelhost-registry-cold-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let open = || Host::builder().data_dir(&dir).build().unwrap();
    {
        let host = open();
        host.create_agent("alice").unwrap();
        for i in 0..n {
            host.upload(manifest(i), &distinct(guest, i)).unwrap();
        }
    }
    std::fs::remove_dir_all(dir.join("compiled")).unwrap();
    let started = Instant::now();
    let host = open();
    let start = started.elapsed();
    assert_eq!(host.artifacts().len(), n);
    // The host serves from here; its background thread compiles.
    let warming = host.warming();
    while host.warming().is_some() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let warm = started.elapsed();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "\n{n} artifacts of distinct bytes, compile cache emptied: the host started (and could serve) in {:.3} s \
         with {} left to compile; the background had compiled them all {:.2} s after the start ({cores} cores)",
        start.as_secs_f64(),
        warming.unwrap_or(0),
        warm.as_secs_f64()
    );
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    if !table_bench::selected("registry") {
        return;
    }
    let Some(guest) = table_bench::guest("rust-echo", "registry") else { return };
    let counts: Vec<usize> = std::env::var("FUELHOST_REGISTRY_COUNTS")
        .unwrap_or_else(|_| "1,1000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    println!("| same-digest artifacts | RSS after upload | mappings | RSS after restart | mappings | restart | per artifact past the first |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for n in counts {
        let dir = std::env::temp_dir().join(format!("fuelhost-registry-bench-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let open = || Host::builder().data_dir(&dir).build().unwrap();
        let (base_rss, base_maps) = (rss(), mappings());
        let (up_rss, up_maps) = {
            let host = open();
            host.create_agent("alice").unwrap();
            host.create_agent(CALLER).unwrap();
            for i in 0..n {
                host.upload(manifest(i), &guest).unwrap();
            }
            (rss(), mappings())
        };
        let (base2_rss, base2_maps) = (rss(), mappings());
        let started = Instant::now();
        let host = open();
        let restart = started.elapsed();
        assert_eq!(host.artifacts().len(), n);
        let (re_rss, re_maps) = (rss(), mappings());
        drop(host);
        let _ = std::fs::remove_dir_all(&dir);
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let grown = re_rss.saturating_sub(base2_rss);
        let per = if n > 1 { format!("{:.1} KiB", grown as f64 / n as f64 / 1024.0) } else { "-".into() };
        println!(
            "| {n} | +{:.1} MiB | +{} | +{:.1} MiB | +{} | {:.0} ms | {per} |",
            mib(up_rss.saturating_sub(base_rss)),
            up_maps as i64 - base_maps as i64,
            mib(grown),
            re_maps as i64 - base2_maps as i64,
            restart.as_secs_f64() * 1000.0,
        );
    }
    let curve: Vec<usize> = std::env::var("FUELHOST_REGISTRY_DISTINCT_CURVE")
        .unwrap_or_else(|_| "1,1000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .filter(|&n| n > 0)
        .collect();
    if !curve.is_empty() {
        println!();
        println!("| distinct artifacts | upload | restart | RSS after restart | mappings | loaded | calls | per call, mostly first calls | RSS after the calls | mappings | loaded |");
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for n in curve {
            distinct_curve(n);
        }
    }
    let distinct_n: usize =
        std::env::var("FUELHOST_REGISTRY_DISTINCT").ok().and_then(|n| n.parse().ok()).unwrap_or(100);
    if distinct_n > 0 {
        cold_start(&guest, distinct_n);
    }
}
