//! The `fuelhost` command as a user runs it, in one test binary (each
//! binary links the whole host): `serve` (the client commands against a
//! server in a child process), `crash` (a server killed with SIGKILL
//! mid-work, restarted, its ledger still exact), `hosts` (several servers
//! over one PostgreSQL database) and `docs` (every code block of the README
//! and `docs/` run or checked).

mod crash;
mod docs;
mod hosts;
mod serve;
