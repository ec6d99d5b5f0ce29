//! A throwaway PostgreSQL server, for tests and trials: `initdb` into a
//! temporary directory, `postgres` on a free loopback port (and a socket in
//! that directory), stopped and removed when dropped, whatever happened
//! meanwhile. It uses the server binaries of Debian's `postgresql`
//! package (or `FUELHOST_PG_BIN`), which `scripts/setup.sh` installs.
//!
//! PostgreSQL refuses to run as root; as root, the server runs as the
//! `postgres` system user the package creates (through `setpriv`, so the
//! process this module starts is the server itself). Durability is off
//! (`fsync`, `synchronous_commit`): a scratch server outlives no crash of
//! its machine, and tests of fuelhost's own crashes kill the host, never
//! the database; benchmarks start it durable ([`ScratchServer::start_with`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Why a scratch server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    /// No PostgreSQL server binaries.
    #[error(
        "no PostgreSQL server binaries (initdb, postgres) found in {looked}: install Debian's `postgresql` \
         package (scripts/setup.sh does), or set FUELHOST_PG_BIN to the folder holding them"
    )]
    NoBinaries {
        /// Where they were looked for.
        looked: String,
    },
    /// A step failed; the message carries its output.
    #[error("{step}: {detail}")]
    Step {
        /// What was being done.
        step: String,
        /// What it said.
        detail: String,
    },
}

/// A running scratch server. Dropping it stops the server and removes
/// its files.
#[derive(Debug)]
pub struct ScratchServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    url: String,
    durable: bool,
}

/// The user and database of a scratch server.
const USER: &str = "fuelhost";

impl ScratchServer {
    /// `initdb`, start, and wait until it takes connections (at most 30 s).
    /// Durability off: for tests.
    pub fn start() -> Result<ScratchServer, ScratchError> {
        ScratchServer::start_with(false)
    }

    /// [`ScratchServer::start`]; `durable`: every commit fsynced, as a
    /// production server commits (for benchmarks).
    pub fn start_with(durable: bool) -> Result<ScratchServer, ScratchError> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("fuelhost-pg-")
            .tempdir()
            .map_err(|e| step("creating the server's directory", e))?;
        let data = dir.path().join("data");
        let as_postgres = running_as_root();
        if as_postgres {
            run(
                Command::new("chown").args(["postgres:postgres"]).arg(dir.path()),
                "handing the directory to postgres",
            )?;
        }
        let mut initdb = server_command(as_postgres, &bin.join("initdb"));
        initdb.arg("-D").arg(&data).args(["-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]);
        run(&mut initdb, "initdb")?;
        // A port found free may be taken before the server binds it (by
        // another test run's server): then it exits, and another is tried.
        let mut server = ScratchServer { child: None, dir, port: 0, url: String::new(), durable };
        let mut attempt = 0;
        loop {
            attempt += 1;
            server.port = free_port().map_err(|e| step("finding a free port", e))?;
            server.url = format!("postgres://{USER}@127.0.0.1:{}/postgres", server.port);
            server.child = Some(server.spawn(&bin, as_postgres)?);
            match server.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return Ok(server),
                Err(e) if attempt >= 3 => return Err(e),
                Err(_) => continue,
            }
        }
    }

    /// Start `postgres` on the data directory and port, its output
    /// appended to the log.
    fn spawn(&self, bin: &Path, as_postgres: bool) -> Result<Child, ScratchError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .map_err(|e| step("opening the log", e))?;
        let log_err = log.try_clone().map_err(|e| step("opening the log", e))?;
        let mut postgres = server_command(as_postgres, &bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]);
        if !self.durable {
            postgres.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
        }
        postgres.stdin(Stdio::null()).stdout(log).stderr(log_err);
        postgres.spawn().map_err(|e| step("starting postgres", e))
    }

    /// One server for the tests running at once: the first caller starts
    /// it, and it stops when the last of them drops its handle (a static
    /// would never be dropped, leaving the server running after the tests).
    pub fn shared() -> Result<Arc<ScratchServer>, ScratchError> {
        static SHARED: Mutex<Weak<ScratchServer>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(server) = shared.upgrade() {
            return Ok(server);
        }
        let server = Arc::new(ScratchServer::start()?);
        *shared = Arc::downgrade(&server);
        Ok(server)
    }

    /// `postgres://fuelhost@127.0.0.1:PORT/postgres` (no password: the
    /// server trusts loopback connections).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL of a fresh database of this server, made now: each test
    /// gets its own, so tests share one server without sharing tables.
    pub fn fresh_database(&self, name: &str) -> Result<String, ScratchError> {
        let mut client = postgres::Client::connect(&self.url, postgres::NoTls)
            .map_err(|e| step("connecting to make a database", e))?;
        client
            .batch_execute(&format!("CREATE DATABASE \"{}\"", name.replace('"', "")))
            .map_err(|e| step(&format!("creating database {name}"), e))?;
        Ok(format!("postgres://{USER}@127.0.0.1:{}/{}", self.port, name.replace('"', "")))
    }

    /// Stop it now (fast shutdown), waiting at most 10 s, then kill it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SIGINT is PostgreSQL's fast shutdown: sessions end, the server
        // exits cleanly. std's kill would be SIGKILL.
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stop it (sessions end at once) and start it again on the same port
    /// and data: what a database restart under load looks like to its
    /// clients.
    pub fn restart(&mut self) -> Result<(), ScratchError> {
        self.stop();
        self.child = Some(self.spawn(&bin_dir()?, running_as_root())?);
        self.wait_ready(Duration::from_secs(30))
    }

    /// Wait until this server (asked through the socket in its own
    /// directory, so never another one on the port) takes connections.
    fn wait_ready(&mut self, within: Duration) -> Result<(), ScratchError> {
        let deadline = Instant::now() + within;
        let mut own = postgres::Config::new();
        own.host_path(self.dir.path()).port(self.port).user(USER).dbname("postgres");
        loop {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_none() && own.connect(postgres::NoTls).is_ok() {
                return Ok(());
            }
            if exited.is_some() || Instant::now() >= deadline {
                let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
                let what = match exited {
                    Some(status) => format!("postgres exited ({status})"),
                    None => format!("postgres took no connection within {} s", within.as_secs()),
                };
                self.stop();
                return Err(ScratchError::Step { step: what, detail: format!("its log:\n{log}") });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ScratchServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn step(what: &str, e: impl std::fmt::Display) -> ScratchError {
    ScratchError::Step { step: what.to_string(), detail: e.to_string() }
}

/// Run `cmd` to its end; its output is the error when it fails.
fn run(cmd: &mut Command, what: &str) -> Result<(), ScratchError> {
    let out = cmd.output().map_err(|e| step(what, e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(ScratchError::Step {
        step: format!("{what} failed ({})", out.status),
        detail: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    })
}

/// `program`, as the `postgres` user when `as_postgres`.
fn server_command(as_postgres: bool, program: &Path) -> Command {
    if !as_postgres {
        return Command::new(program);
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
    cmd
}

/// Whether this process runs as root (uid 0), read from `/proc`.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// The folder with `initdb` and `postgres`: `FUELHOST_PG_BIN`, else the
/// newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> Result<PathBuf, ScratchError> {
    if let Some(dir) = std::env::var_os("FUELHOST_PG_BIN").map(PathBuf::from) {
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
        return Err(ScratchError::NoBinaries { looked: dir.display().to_string() });
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or(ScratchError::NoBinaries { looked: "/usr/lib/postgresql/*/bin".into() })
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
