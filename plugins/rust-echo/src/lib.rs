//! rust-echo: the smallest useful artifact. Returns its input unchanged and
//! logs who called it; an empty input is a `run-error`.

use fuelhost_guest::{ledger, log, Artifact, RunError};

struct Echo;

impl Artifact for Echo {
    fn run(input: Vec<u8>) -> Result<Vec<u8>, RunError> {
        if input.is_empty() {
            return Err(RunError::InvalidInput("send some bytes to echo".into()));
        }
        let ctx = ledger::context();
        log::info(&format!("echoing {} bytes for {}", input.len(), ctx.caller));
        Ok(input)
    }
}

fuelhost_guest::export_artifact!(Echo);
