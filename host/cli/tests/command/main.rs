//! The `fuelhost` command as a user runs it, in one test binary (each
//! binary links the whole host): `serve` (the client commands against a
//! server in a child process), `crash` (a server killed with SIGKILL
//! mid-work, restarted, its ledger still exact) and `readme` (the README's
//! quick start, run as written).

mod crash;
mod readme;
mod serve;
