//! A WASIp3 command, as the `wasip3` crate's own example writes one: an
//! async `wasi:cli/run@0.3` export that reads stdin as a stream and
//! writes stdout as one. fuelhost runs it like any command: the input is
//! stdin, stdout the output.
//!
//! `loop` spins forever (it must end `out_of_fuel`), `sleep` waits a
//! minute on the monotonic clock (it must end at its timeout), `fail`
//! returns an error (exit code 1); anything else comes back upper-cased.

use wasip3::cli::{stderr, stdin, stdout};
use wasip3::clocks::monotonic_clock;

wasip3::cli::command::export!(Echo);

struct Echo;

impl wasip3::exports::cli::run::Guest for Echo {
    async fn run() -> Result<(), ()> {
        let input = read_stdin().await;
        match input.trim_ascii() {
            b"loop" => spin(),
            b"sleep" => {
                monotonic_clock::wait_for(60_000_000_000).await;
                Ok(())
            }
            b"fail" => {
                write(stderr::write_via_stream, b"asked to fail\n".to_vec()).await;
                Err(())
            }
            _ => {
                let mut out = b"p3: ".to_vec();
                out.extend(input.to_ascii_uppercase());
                write(stdout::write_via_stream, out).await;
                Ok(())
            }
        }
    }
}

/// All of stdin.
async fn read_stdin() -> Vec<u8> {
    let (mut rx, done) = stdin::read_via_stream();
    let mut input = Vec::new();
    loop {
        let (result, chunk) = rx.read(Vec::with_capacity(4096)).await;
        input.extend(chunk);
        if !matches!(result, wasip3::wit_bindgen::StreamResult::Complete(_)) {
            break;
        }
    }
    drop(rx);
    let _ = done.await;
    input
}

/// Write `bytes` through a `write-via-stream` function (stdout's or
/// stderr's).
async fn write<F>(via: fn(wasip3::wit_bindgen::StreamReader<u8>) -> F, bytes: Vec<u8>)
where
    F: core::future::IntoFuture,
{
    let (mut tx, rx) = wasip3::wit_stream::new();
    futures::join!(async { via(rx).await }, async {
        tx.write_all(bytes).await;
        drop(tx);
    });
}

/// Compute that never ends, which only the meter stops.
fn spin() -> Result<(), ()> {
    let mut x: u64 = 1;
    loop {
        x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
