//! The one epoch ticker of the process: it advances the engine's epoch every
//! [`TICK`] while policy calls are running. At each tick a running call
//! yields to other requests, or traps if it is past its deadline. After
//! [`LINGER`] ticks without a call the ticker sleeps until the next one, so
//! an idle sigd never wakes up for it, and a busy one never pays for
//! waking it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, Thread};
use std::time::Duration;
use wasmtime::Engine;

/// How often the epoch advances while calls run: a deadline's precision.
pub const TICK: Duration = Duration::from_millis(1);
/// Idle ticks before the ticker sleeps.
pub const LINGER: u32 = 100;

/// Advances an engine's epoch while any call is in flight.
pub struct Ticker {
    /// Calls in flight; the ticker thread parks while this is 0.
    active: Arc<AtomicUsize>,
    thread: Thread,
}

impl Ticker {
    /// Start the ticker thread for `engine`. It lives as long as the process.
    pub fn start(engine: Engine) -> std::io::Result<Ticker> {
        let active = Arc::new(AtomicUsize::new(0));
        let seen = active.clone();
        let handle = thread::Builder::new()
            .name("sigd-epoch".into())
            .spawn(move || {
                let mut idle = 0;
                loop {
                    if seen.load(Ordering::Acquire) == 0 {
                        idle += 1;
                        if idle > LINGER {
                            thread::park();
                            idle = 0;
                            continue;
                        }
                    } else {
                        idle = 0;
                    }
                    thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            active,
            thread: handle.thread().clone(),
        })
    }

    /// Mark a call in flight until the returned guard drops. (Unparking a
    /// ticker that is not parked costs one atomic operation, no syscall.)
    pub fn enter(&self) -> Running<'_> {
        if self.active.fetch_add(1, Ordering::AcqRel) == 0 {
            self.thread.unpark();
        }
        Running(self)
    }
}

/// A call in flight (see [`Ticker::enter`]).
pub struct Running<'a>(&'a Ticker);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}
