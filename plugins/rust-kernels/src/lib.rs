//! rust-kernels: the metering benchmarks' kernels as an artifact. The input
//! is a command (`hash N`, `fib N`, `mem BYTES PASSES`, `words TEXT`), the
//! output the kernel's result as text; the same code runs natively in the
//! benches (crate `fuelhost-kernels`).

use fuelhost_guest::{Artifact, RunError};

struct Kernels;

impl Artifact for Kernels {
    fn run(input: Vec<u8>) -> Result<Vec<u8>, RunError> {
        let command = String::from_utf8(input).map_err(|_| RunError::InvalidInput("send a UTF-8 command".into()))?;
        fuelhost_kernels::run(&command).map(String::into_bytes).map_err(RunError::InvalidInput)
    }
}

fuelhost_guest::export_artifact!(Kernels);
