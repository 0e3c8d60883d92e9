//! The epoch ticker of a policy runtime (one per [`Runtime`](super::Runtime),
//! so one in `sigd serve`): it advances the engine's epoch every [`TICK`]
//! while policy calls are running. At each tick a running call traps if it
//! is past its deadline, yields to other requests if it has run a whole
//! tick, and otherwise goes on. After
//! [`LINGER`] ticks without a call the ticker sleeps until the next one, so
//! an idle sigd never wakes up for it, and a busy one never pays for
//! waking it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
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
/// on. The call's future stops the clock whenever the call is suspended (a
/// yield, a wait in the host, a WASI wait) and starts it again on the thread
/// that resumes it (see [`clocked`]); the epoch callback reads it at each
/// tick. So neither a busy machine nor a busy sigd fails a policy, and only
/// the guest's own work counts against its deadline. (Until its first tick a
/// call counts from when sigd began it, its instance's setup included, and
/// at most one tick of that: the setup can make a call yield at that tick,
/// not reach a deadline longer than a tick; with a deadline of a tick or
/// less, any call that reaches its first tick traps, setup or not.)
///
/// A thread's CPU clock is a syscall (no vDSO answers
/// `CLOCK_THREAD_CPUTIME_ID`), so it is read only once a call has reached
/// its first tick, never by the usual, microsecond call: until then the
/// clock counts wall time (the vDSO's, free), capped at one tick, and
/// stopping and starting it for a host call costs no syscall.
#[derive(Clone, Default)]
pub struct GuestClock(Arc<Mutex<Counted>>);

#[derive(Default)]
struct Counted {
    /// Time counted so far.
    ran: Duration,
    /// When the guest last went on running, on whichever clock counts now;
    /// `None` while it is suspended (and before the call starts).
    since: Option<Since>,
    /// Whether the call has reached a tick: from then on CPU time counts.
    ticked: bool,
}

/// Where the running guest's time is counted from.
#[derive(Clone, Copy)]
enum Since {
    /// Before the first tick: this wall-clock instant.
    Wall(Instant),
    /// From the first tick on: the running thread's CPU time then.
    Cpu(Duration),
}

impl Counted {
    /// Count the time since the guest last went on running (it runs now);
    /// `true` if the guest is running.
    fn count(&mut self) -> bool {
        match self.since {
            None => return false,
            Some(Since::Wall(at)) => self.ran = (self.ran + at.elapsed()).min(TICK),
            Some(Since::Cpu(mark)) => self.ran += thread_cpu_time().saturating_sub(mark),
        }
        true
    }

    /// The guest goes on running now, on this thread.
    fn mark(&mut self) {
        self.since = Some(match self.ticked {
            false => Since::Wall(Instant::now()),
            true => Since::Cpu(thread_cpu_time()),
        });
    }
}

impl GuestClock {
    /// A call starts, at `started`: when sigd began it, which its caller
    /// read already (no clock is read here); from then it counts as running.
    pub fn start(&self, started: Instant) {
        *self.lock() = Counted {
            since: Some(Since::Wall(started)),
            ..Counted::default()
        };
    }

    /// The guest's running time so far, counted up to now: what the epoch
    /// callback asks at each tick, while the guest runs. From here on the
    /// call counts CPU time.
    pub fn ran(&self) -> Duration {
        let mut counted = self.lock();
        let running = counted.count();
        counted.ticked = true;
        if running {
            counted.mark();
        }
        counted.ran
    }

    /// The call is suspended (or in a host call whose work is the host's):
    /// count its time so far, then stop the clock.
    pub(super) fn suspend(&self) {
        let mut counted = self.lock();
        counted.count();
        counted.since = None;
    }

    /// The call is resumed on this thread (a no-op while it runs).
    pub(super) fn resume(&self) {
        let mut counted = self.lock();
        if counted.since.is_none() {
            counted.mark();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counted> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Drive `call`, keeping `clock` to the time it actually runs; once the
/// call has been suspended, give up on it (`None`) if it has not ended by
/// `give_up` (if any), waits included. The timer is armed only then, so a
/// call that ends in one poll pays for none (the caller, which has the
/// call's start, says when: no clock is read here). `call` is pinned by the
/// caller (`Unpin`: a `Pin<&mut _>`), so this future holds no copy of it.
pub async fn clocked<F: Future + Unpin>(
    clock: &GuestClock,
    give_up: Option<Instant>,
    mut call: F,
) -> Option<F::Output> {
    let mut backstop: Option<Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        clock.resume();
        if let Poll::Ready(output) = Pin::new(&mut call).poll(cx) {
            return Poll::Ready(Some(output));
        }
        clock.suspend();
        let Some(give_up) = give_up else {
            return Poll::Pending;
        };
        let backstop =
            backstop.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(give_up.into())));
        match backstop.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// The CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    use nix::time::{ClockId, clock_gettime};
    // This clock always exists on Linux; zero would only pause the deadline.
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Time spent with the clock stopped (in a host call, say) is not the
    /// guest's: only the work before and after it is counted.
    #[test]
    fn a_stopped_clock_counts_nothing() {
        let burn = |time: Duration| {
            let started = thread_cpu_time();
            while thread_cpu_time() - started < time {}
        };
        let clock = GuestClock::default();
        clock.start(Instant::now());
        clock.ran(); // past the first tick: CPU time from here on
        burn(Duration::from_millis(5));
        clock.suspend();
        burn(Duration::from_millis(50));
        clock.resume();
        burn(Duration::from_millis(5));
        let ran = clock.ran();
        assert!(
            ran >= Duration::from_millis(10) && ran < Duration::from_millis(30),
            "{ran:?}"
        );
    }

    /// Before its first tick a call is counted in wall time, capped at one
    /// tick (a call the OS preempted is not charged for it), and a stopped
    /// clock counts nothing then either.
    #[test]
    fn before_the_first_tick_wall_time_counts_up_to_a_tick() {
        let clock = GuestClock::default();
        clock.start(Instant::now());
        clock.suspend();
        std::thread::sleep(Duration::from_millis(20));
        clock.resume();
        clock.suspend();
        assert!(clock.ran() < TICK / 2, "{:?}", clock.ran());

        clock.start(Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.ran(), TICK);
    }
}
