//! Running component-model-async code (WASI 0.3 components, `async func`
//! exports) to its end on the calling thread, held to the run's wall
//! clock.
//!
//! Such a call is a future (`run_concurrent`, `call_async`): wasm runs
//! while it is polled, and it is pending only while the guest waits on the
//! host (a clock, a stream). [`finish`] polls it on this thread, inside
//! the ambient tokio runtime that WASI 0.3's host functions need, without
//! entering that runtime's executor: the synchronous WASI 0.2 functions a
//! mixed component also imports, and a nested call, block on it as they do
//! outside a concurrent call. Compute is held to its fuel and epoch
//! deadline as always; a wait is held to the deadline and the cancel flag
//! here, checked at least every `tick`.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Wakes the thread polling the call.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Poll `call` on this thread until it is ready, or until `deadline`
/// passes or `cancel` is set while it waits: then it is dropped (which
/// cancels it) and the answer is an interrupt trap, which the run
/// classifies as `timeout` (or `aborted`, when cancelled).
pub fn finish<F: Future<Output = wasmtime::Result<T>>, T>(
    call: F,
    deadline: Instant,
    cancel: Option<&AtomicBool>,
    tick: Duration,
) -> wasmtime::Result<T> {
    wasmtime_wasi::runtime::with_ambient_tokio_runtime(|| {
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut call = pin!(call);
        loop {
            if let Poll::Ready(out) = call.as_mut().poll(&mut cx) {
                return out;
            }
            let now = Instant::now();
            if now >= deadline || cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
                return Err(wasmtime::Trap::Interrupt.into());
            }
            std::thread::park_timeout((deadline - now).min(tick.max(Duration::from_millis(1))));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_call_answers_and_a_waiting_one_ends_at_the_deadline() {
        let tick = Duration::from_millis(5);
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(finish(async { Ok(7) }, far, None, tick).unwrap(), 7);

        let started = Instant::now();
        let never = std::future::pending::<wasmtime::Result<()>>();
        let err = finish(never, started + Duration::from_millis(30), None, tick).unwrap_err();
        assert_eq!(err.downcast_ref::<wasmtime::Trap>(), Some(&wasmtime::Trap::Interrupt));
        assert!(started.elapsed() >= Duration::from_millis(30));

        let cancelled = AtomicBool::new(true);
        let never = std::future::pending::<wasmtime::Result<()>>();
        assert!(finish(never, far, Some(&cancelled), tick).is_err());
    }

    #[test]
    fn a_call_woken_from_another_thread_finishes() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let _ = tx.send(42);
        });
        let far = Instant::now() + Duration::from_secs(60);
        let got = finish(async { Ok(rx.await.unwrap()) }, far, None, Duration::from_secs(10)).unwrap();
        assert_eq!(got, 42);
    }
}
