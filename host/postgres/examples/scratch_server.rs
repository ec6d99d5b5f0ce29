//! A throwaway PostgreSQL server for a test run: `initdb` into a temporary
//! directory, started on a loopback port, its URL printed as the first
//! line of standard output; it stops, and its files go, when standard
//! input closes (the script that started it ended, however it ended).
//!
//! `scripts/test.sh` runs the integration suite a second time on it
//! (`FUELHOST_TEST_DATABASE_URL`).

use std::io::{Read, Write};

fn main() {
    let server = match fuelhost_postgres::ScratchServer::start() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("scratch PostgreSQL server: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", server.url());
    let _ = out.flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(server);
}
