//! The one epoch ticker of the process: it advances the engine's epoch every
//! [`TICK`] while policy calls are running. At each tick a running call
//! yields to other requests, or traps if it is past its deadline. After
//! [`LINGER`] ticks without a call the ticker sleeps until the next one, so
//! an idle sigd never wakes up for it, and a busy one never pays for
//! waking it.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};
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

/// The running time of one call's guest, in CPU time of the threads it ran
/// on: time the call spends preempted by the OS, waiting for the async
/// runtime after a yield, or waiting in the host for an exit is not the
/// guest's, so neither a busy machine nor a busy sigd fails a policy.
///
/// The thread's CPU clock is read only at ticks and resumptions, never on
/// a call that ends before the first tick (the usual, microsecond call).
pub struct GuestClock {
    /// CPU time counted so far.
    ran: Duration,
    /// When the call started: until the first tick, wall time stands in
    /// for CPU time (capped at one tick).
    started: Instant,
    /// The running thread's CPU time when the guest last went on running.
    mark: Option<Duration>,
    /// The thread's CPU time when the guest resumed after a yield, set by
    /// the yield's future.
    resumed: Arc<Mutex<Option<Duration>>>,
}

impl Default for GuestClock {
    fn default() -> GuestClock {
        GuestClock {
            ran: Duration::ZERO,
            started: Instant::now(),
            mark: None,
            resumed: Arc::default(),
        }
    }
}

impl GuestClock {
    /// A call starts.
    pub fn start(&mut self) {
        self.ran = Duration::ZERO;
        self.started = Instant::now();
        self.mark = None;
        self.take_resumed();
    }

    /// The guest's running time so far (at an epoch tick, while it runs).
    pub fn ran(&mut self) -> Duration {
        let now = thread_cpu_time();
        let mark = self.take_resumed().or(self.mark);
        self.ran += match mark {
            Some(mark) => now.saturating_sub(mark),
            None => self.started.elapsed().min(TICK),
        };
        self.mark = Some(now);
        self.ran
    }

    /// A yield that lets other tasks run, then notes the CPU time of the
    /// thread the guest resumes on.
    pub fn yield_now(&self) -> impl Future<Output = ()> + Send + 'static {
        let resumed = self.resumed.clone();
        async move {
            tokio::task::yield_now().await;
            *resumed.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread_cpu_time());
        }
    }

    /// The guest waits in the host: stop its clock.
    pub fn pause(&mut self) {
        self.ran();
    }

    /// The host's wait is over: the guest runs again, on this thread.
    pub fn resume(&mut self) {
        self.take_resumed();
        self.mark = Some(thread_cpu_time());
    }

    fn take_resumed(&mut self) -> Option<Duration> {
        self.resumed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// The CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    use nix::time::{ClockId, clock_gettime};
    // This clock always exists on Linux; zero would only pause the deadline.
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}
