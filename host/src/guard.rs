//! The rules no policy can break. Every [`ProcessTable`] a policy reaches is
//! wrapped in a [`Guard`], which refuses before anything reaches the kernel:
//!
//! - a pid <= 0 (kill(2) would signal a process group or every process);
//! - pid 1, the init of sigd's PID namespace;
//! - sigd itself; and so any process group holding sigd, since only single
//!   pids > 0 ever pass;
//! - a signal number Linux does not deliver (see [`crate::signal`]).

use crate::process::{KillError, ProcessInfo, ProcessTable};
use crate::signal;
use std::sync::Arc;

/// A [`ProcessTable`] that enforces sigd's invariants on `kill`.
pub struct Guard<T> {
    inner: T,
    /// sigd's own pid, as its PID namespace numbers it.
    own_pid: i32,
}

impl<T: ProcessTable> Guard<T> {
    /// Guard `inner` on behalf of this process.
    pub fn new(inner: T) -> Guard<T> {
        Guard::for_pid(inner, std::process::id() as i32)
    }

    /// Guard `inner` on behalf of the process `own_pid` (tests give a fake one).
    pub fn for_pid(inner: T, own_pid: i32) -> Guard<T> {
        Guard { inner, own_pid }
    }

    /// Why `kill(pid, signal)` may not happen, if it may not.
    pub fn check(&self, pid: i32, signal: i32) -> Result<(), KillError> {
        if !signal::is_deliverable(signal) {
            return Err(KillError::InvalidSignal);
        }
        if pid <= 1 || pid == self.own_pid {
            return Err(KillError::Protected);
        }
        Ok(())
    }
}

/// A process table a policy may use: built only from a [`Guard`], so every
/// table a policy can reach enforces the invariants. Cheap to clone.
#[derive(Clone)]
pub struct Guarded(Arc<dyn ProcessTable>);

impl Guarded {
    /// The table behind the guard.
    pub fn table(&self) -> &dyn ProcessTable {
        &*self.0
    }
}

impl<T: ProcessTable> From<Guard<T>> for Guarded {
    fn from(guard: Guard<T>) -> Guarded {
        Guarded(Arc::new(guard))
    }
}

impl<T: ProcessTable> ProcessTable for Guard<T> {
    fn lookup(&self, pid: i32) -> Option<ProcessInfo> {
        if pid <= 0 {
            return None;
        }
        self.inner.lookup(pid)
    }

    fn kill(&self, pid: i32, signal: i32) -> Result<(), KillError> {
        self.check(pid, signal)
            .inspect_err(|error| tracing::warn!(pid, signal, %error, "refused a policy's kill"))?;
        self.inner.kill(pid, signal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records every kill that gets through the guard.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(i32, i32)>>);

    impl ProcessTable for &'static Recorder {
        fn lookup(&self, _pid: i32) -> Option<ProcessInfo> {
            None
        }
        fn kill(&self, pid: i32, signal: i32) -> Result<(), KillError> {
            self.0.lock().unwrap().push((pid, signal));
            Ok(())
        }
    }

    /// Non-positive pids, pid 1, sigd's pid and undeliverable signals never pass.
    #[test]
    fn refuses_protected_targets() {
        let recorder: &'static Recorder = Box::leak(Box::default());
        let guard = Guard::for_pid(recorder, 500);
        for pid in [i32::MIN, -500, -1, 0, 1, 500] {
            assert_eq!(guard.kill(pid, 15), Err(KillError::Protected), "pid {pid}");
        }
        for signal in [0, -9, 32, 33, 65, i32::MAX] {
            assert_eq!(
                guard.kill(42, signal),
                Err(KillError::InvalidSignal),
                "{signal}"
            );
        }
        assert!(recorder.0.lock().unwrap().is_empty());
        assert_eq!(guard.kill(42, 9), Ok(()));
        assert_eq!(*recorder.0.lock().unwrap(), vec![(42, 9)]);
    }
}
