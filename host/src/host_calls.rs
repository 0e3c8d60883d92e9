//! The host calls a policy makes, written once: open a process, read its
//! facts or state, signal it, escalate, wait for its exit, read a request
//! header. Each goes through the [`GuardedTable`] (so the rules no policy
//! may break are checked) and is noted as an [`Action`] (for the audit log
//! and `sigd policy eval`).
//!
//! [`HostCalls`] speaks the host's own types. The wasm policy's imports
//! (`policy/imports.rs`) and any native caller (the benchmark's baseline)
//! adapt to it in a few lines each.

use crate::guard::{Authority, GuardedTable, Scope, Waited};
use crate::process::{ExitStatus, KillError, NoRoom, Process, ProcessInfo, RunState};
use crate::signal;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

/// Something a policy made the host do, for the audit log.
#[derive(Debug, Clone)]
pub enum Action {
    /// It read a request header; whether the request had it.
    ReadHeader { name: String, found: bool },
    /// It asked to open `pid`, which does not exist.
    NoProcess { pid: i32 },
    /// It asked to open `pid`, and the host had no room to (it was told
    /// there is none; the answer is the host's, see [`Decision::ran_out_of_room`](crate::decision::Decision::ran_out_of_room)).
    NoRoom { pid: i32, error: NoRoom },
    /// It opened the process `pid`, which started at `start_time`.
    Opened { pid: i32, start_time: u64 },
    /// It asked what `pid` is doing: its state then, `None` once gone.
    Inspected { pid: i32, state: Option<RunState> },
    /// It asked for `signal` to `pid`'s `scope` with `authority`; the pids
    /// reached, or why not.
    Signalled {
        pid: i32,
        signal: i32,
        scope: Scope,
        authority: Authority,
        outcome: Result<Vec<i32>, KillError>,
    },
    /// It asked for `signal` to `pid`'s `scope` after `after_ms` if still
    /// alive, with `authority`.
    Escalated {
        pid: i32,
        after_ms: u32,
        signal: i32,
        scope: Scope,
        authority: Authority,
        outcome: Result<(), KillError>,
    },
    /// It waited for `pid` to exit: how it ended, if it did in time, and
    /// whether the wait was cut short (see [`Waited`]).
    Waited { pid: i32, waited: Waited },
}

/// The host's side of one policy call: the processes it may reach, the
/// request's headers, and what it has made the host do so far.
pub struct HostCalls {
    processes: GuardedTable,
    /// Lower-case header names and UTF-8 values, without `authorization`.
    headers: Vec<(String, String)>,
    actions: Vec<Action>,
}

impl HostCalls {
    /// The calls of one request with these `headers`, reaching `processes`.
    pub fn new(processes: GuardedTable, headers: Vec<(String, String)>) -> HostCalls {
        HostCalls {
            processes,
            headers,
            actions: Vec::new(),
        }
    }

    /// What the policy made the host do so far, in order, taken out.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// SIGRTMIN..=SIGRTMAX of this host's libc.
    pub fn realtime_signals(&self) -> RangeInclusive<i32> {
        signal::realtime()
    }

    /// The value of the request header `name` (in any case), if it has one.
    pub fn request_header(&mut self, name: String) -> Option<String> {
        let value = self
            .headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(&name))
            .map(|(_, value)| value.clone());
        self.actions.push(Action::ReadHeader {
            name,
            found: value.is_some(),
        });
        value
    }

    /// A handle on the process `pid`, if there is one.
    pub fn open(&mut self, pid: i32) -> Option<Arc<dyn Process>> {
        let process = match self.processes.open(pid) {
            Ok(Some(process)) => process,
            Ok(None) => {
                self.actions.push(Action::NoProcess { pid });
                return None;
            }
            Err(error) => {
                tracing::warn!(pid, %error, "cannot open a process");
                self.actions.push(Action::NoRoom { pid, error });
                return None;
            }
        };
        let start_time = process.start_time();
        self.actions.push(Action::Opened { pid, start_time });
        Some(process)
    }

    /// What the host knows of `process` now; `None` once it is gone.
    pub fn info(&mut self, process: &Arc<dyn Process>) -> Option<ProcessInfo> {
        let info = process.info();
        self.actions.push(Action::Inspected {
            pid: process.pid(),
            state: info.as_ref().map(|info| info.state),
        });
        info
    }

    /// Its scheduler state now; `None` once it is gone.
    pub fn state(&mut self, process: &Arc<dyn Process>) -> Option<RunState> {
        let state = process.state();
        self.actions.push(Action::Inspected {
            pid: process.pid(),
            state,
        });
        state
    }

    /// Send `signal` to `process`'s `scope` with `authority`, all or
    /// nothing; the pids reached.
    pub fn signal(
        &mut self,
        process: &Arc<dyn Process>,
        signal: i32,
        scope: Scope,
        authority: Authority,
    ) -> Result<Vec<i32>, KillError> {
        let outcome = self.processes.signal(process, signal, scope, authority);
        log_failure(&outcome);
        self.actions.push(Action::Signalled {
            pid: process.pid(),
            signal,
            scope,
            authority,
            outcome: outcome.clone(),
        });
        outcome
    }

    /// After `after_ms`, if `process` still runs, send `signal` to its
    /// `scope` with `authority`.
    pub fn escalate(
        &mut self,
        process: &Arc<dyn Process>,
        after_ms: u32,
        signal: i32,
        scope: Scope,
        authority: Authority,
    ) -> Result<(), KillError> {
        let after = Duration::from_millis(after_ms.into());
        let outcome = (self.processes).escalate(process.clone(), after, signal, scope, authority);
        log_failure(&outcome);
        self.actions.push(Action::Escalated {
            pid: process.pid(),
            after_ms,
            signal,
            scope,
            authority,
            outcome,
        });
        outcome
    }

    /// Wait at most `timeout_ms` for `process` to exit: how it ended, if it did.
    pub async fn wait_exit(
        &mut self,
        process: &Arc<dyn Process>,
        timeout_ms: u32,
    ) -> Option<ExitStatus> {
        let timeout = Duration::from_millis(timeout_ms.into());
        let waited = self.processes.wait_exit(process, timeout).await;
        self.actions.push(Action::Waited {
            pid: process.pid(),
            waited,
        });
        waited.exit
    }
}

/// A failure of the kill syscall itself is the host's to report: the policy
/// only learns that it failed.
fn log_failure<T>(outcome: &Result<T, KillError>) {
    if let Err(KillError::Failed(errno)) = outcome {
        tracing::error!(%errno, "signal failed");
    }
}
