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

/// The PostgreSQL server the suite runs on, when it runs on one:
/// `FUELHOST_TEST_DATABASE_URL` (a URL of the server's `postgres`
/// database, as `scripts/test.sh` sets it for the suite's second run).
/// Unset, every host keeps its ledger in its data directory's SQLite file.
pub fn postgres_server() -> Option<String> {
    std::env::var("FUELHOST_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

/// The database a host of data directory `dir` keeps everything in on the
/// suite's PostgreSQL server: its own, made on first use and the same
/// each time the directory is opened again (a restart).
pub fn postgres_database(server: &str, dir: &std::path::Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let _ = std::fs::create_dir_all(dir);
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()).hash(&mut h);
    let name = format!("t{:016x}", h.finish());
    let mut client = postgres_client(server);
    let made = client.batch_execute(&format!("CREATE DATABASE {name}"));
    if let Err(e) = made {
        let exists = e.as_db_error().is_some_and(|d| d.code().code() == "42P04");
        assert!(exists, "making a database on the suite's PostgreSQL server at {server}: {e}");
    }
    let (base, _) = server.rsplit_once('/').expect("a URL ending in /DATABASE");
    format!("{base}/{name}")
}

fn postgres_client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("the suite's PostgreSQL server at {url} is not reachable: {e}"))
}

/// `Host::builder()` for data directory `dir`, sharing the tests' compile
/// cache, on the suite's database: the data directory's SQLite file, or a
/// database of its own on the suite's PostgreSQL server.
pub fn builder(dir: &std::path::Path) -> fuelhost::HostBuilder {
    let b = Host::builder().data_dir(dir).compile_cache_dir(shared_compile_cache());
    match postgres_server() {
        Some(server) => b.database(postgres_database(&server, dir)),
        None => b,
    }
}

/// The database of the host of data directory `dir`, for a test to look
/// at its tables (or change them, as a crash would have left them)
/// whichever database the suite runs on. SQL in the dialect both accept.
pub enum Tables {
    /// The data directory's SQLite file.
    Sqlite(rusqlite::Connection),
    /// The host's database on the suite's PostgreSQL server.
    Postgres(Box<postgres::Client>),
}

/// [`Tables`] of the host of `dir`.
pub fn tables(dir: &std::path::Path) -> Tables {
    match postgres_server() {
        Some(server) => Tables::Postgres(Box::new(postgres_client(&postgres_database(&server, dir)))),
        None => {
            let conn = rusqlite::Connection::open(dir.join("fuelhost.db")).expect("the host's SQLite file opens");
            conn.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
            Tables::Sqlite(conn)
        }
    }
}

impl Tables {
    /// The one integer `sql` returns (a count).
    pub fn count(&mut self, sql: &str) -> i64 {
        match self {
            Tables::Sqlite(c) => c.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}")),
            Tables::Postgres(c) => c.query_one(sql, &[]).map(|r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// Run `sql`; the rows it changed.
    pub fn execute(&mut self, sql: &str) -> u64 {
        match self {
            Tables::Sqlite(c) => c.execute(sql, []).unwrap_or_else(|e| panic!("{sql}: {e}")) as u64,
            Tables::Postgres(c) => c.execute(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }
}

/// Whether the suite runs on PostgreSQL: tests of what only the SQLite
/// file does (its crash recovery, archive files) say so and pass over it.
pub fn on_postgres(test: &str) -> bool {
    let on = postgres_server().is_some();
    if on {
        eprintln!("{test}: tests the embedded SQLite file alone; not run on PostgreSQL");
    }
    on
}

/// A fresh host with agents `alice` (owns artifacts) and `bob` (calls
/// them), each funded with 1,000 scrip, 1e9 fuel and 1 MiB of disk.
pub fn test_host() -> TestHost {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = builder(dir.path())
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
        command: Default::default(),
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

/// Every line of the archive files in each of `dirs` (a folder of one kind,
/// such as `archive/usage`), as JSON; none for a folder that is not there.
pub fn archive_lines(dirs: &[std::path::PathBuf]) -> Vec<serde_json::Value> {
    dirs.iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten())
        .flat_map(|f| {
            std::fs::read_to_string(f.expect("an archive file").path())
                .expect("an archive file reads")
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("an archive line is not JSON ({e}): {l}")))
        .collect()
}

/// The price charges `host`'s archive moves summed up: the amounts of its
/// `archived:` summary transfers of kind `price`.
pub fn archived_prices(host: &Host) -> u64 {
    host.ledger()
        .transfers()
        .expect("the ledger lists its transfers")
        .iter()
        .filter(|t| t.id.starts_with(fuelhost::ARCHIVED_PREFIX) && t.kind == fuelhost::TransferKind::Price)
        .map(|t| t.amount)
        .sum()
}
