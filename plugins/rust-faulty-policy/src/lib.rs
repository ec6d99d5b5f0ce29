//! rust-faulty-policy: a test fixture policy plugin that misbehaves on
//! request, to show that a broken plugin fails closed and never takes the
//! host down. Actions whose target is `trap` make it trap, `loop` makes it
//! loop forever, `grow` makes it exhaust its memory; anything else is
//! allowed.

use std::hint::black_box;

use fuelhost_guest::policy_types::{Action, Decision};
use fuelhost_guest::Policy;

struct Faulty;

impl Policy for Faulty {
    fn check(action: Action) -> Decision {
        match action.target.as_str() {
            "trap" => panic!("faulty policy asked to trap"),
            "loop" => loop {
                black_box(());
            },
            "grow" => {
                // Grow linear memory a MiB at a time until refused, then
                // give up the way an allocator does: by trapping.
                while core::arch::wasm32::memory_grow(0, 16) != usize::MAX {}
                panic!("faulty policy ran out of memory")
            }
            _ => Decision::Allow,
        }
    }
}

fuelhost_guest::export_policy!(Faulty);
