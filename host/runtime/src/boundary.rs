//! The boundary between a guest and the host: one store call hook that,
//! at every crossing, charges the prices of [`crate::hostcall`] in fuel and
//! (under deterministic fuel) stops the run at its deadline or cancel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use wasmtime::{CallHook, Store, StoreContextMut, Trap};

use crate::guest::Guest;
use crate::hostcall::CROSSING;

/// What the boundary checks for one store.
pub struct Boundary {
    /// Charge host calls in fuel (stores that count fuel; a CPU-time run
    /// pays its host calls as CPU time).
    pub fuel: bool,
    /// Stop the run at this instant (under deterministic fuel, where the
    /// code has no epoch checks).
    pub deadline: Option<Instant>,
    /// Stop the run when this is raised (with `deadline`).
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Take `fuel` from the store, or end the run `out_of_fuel`.
fn pay<T>(store: &mut StoreContextMut<'_, T>, fuel: u64) -> wasmtime::Result<()> {
    if fuel == 0 {
        return Ok(());
    }
    let left = store.get_fuel()?;
    if left < fuel {
        store.set_fuel(0)?;
        return Err(Trap::OutOfFuel.into());
    }
    store.set_fuel(left - fuel)
}

/// Install the boundary's call hook on `store`; nothing when there is
/// nothing to check.
pub fn install<T: Guest>(store: &mut Store<T>, boundary: Boundary) {
    let Boundary { fuel, deadline, cancel } = boundary;
    if !fuel && deadline.is_none() {
        return;
    }
    store.call_hook(move |mut store, hook| {
        let crossing = matches!(hook, CallHook::CallingHost | CallHook::ReturningFromHost);
        if !crossing {
            // Not on a return to the host's own caller: that would
            // discard a result the run finished in time.
            return Ok(());
        }
        if let Some(deadline) = deadline {
            if cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) || Instant::now() >= deadline {
                return Err(Trap::Interrupt.into());
            }
        }
        if fuel {
            let owed = match hook {
                CallHook::CallingHost => CROSSING,
                _ => std::mem::take(&mut store.data_mut().guest().host_fuel),
            };
            pay(&mut store, owed)?;
        }
        Ok(())
    });
}
