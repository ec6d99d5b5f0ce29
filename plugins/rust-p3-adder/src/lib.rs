//! rust-p3-adder: `docs:async-adder/add`, whose functions are `async
//! func`s: plain `wit-bindgen` with its async support, no fuelhost SDK.
//! fuelhost calls them by name with JSON (or WAVE) arguments, as it calls
//! synchronous ones, on the component-model-async machinery.

wit_bindgen::generate!({ path: "wit", world: "adder", generate_all });

use exports::docs::async_adder::add::Guest;
use wasi::clocks::monotonic_clock;

struct Adder;

impl Guest for Adder {
    async fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }

    async fn nap(ms: u64) -> u64 {
        monotonic_clock::wait_for(ms * 1_000_000).await;
        ms
    }

    async fn spin() -> u32 {
        let mut x: u32 = 1;
        loop {
            x = core::hint::black_box(x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223));
        }
    }
}

export!(Adder);
