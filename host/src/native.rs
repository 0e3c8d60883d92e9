//! The default policy's decision logic (`guest/`) linked natively instead
//! of run as wasm, over the same guarded process table: the baseline the
//! benchmarks measure the wasm policy against (`sigd-baseline`, and the
//! `policy_cost` bench). Not a user mode: it cannot be swapped or limited.

use crate::guard::{Guarded, Scope};
use crate::policy::{Action, Called, Request, Response};
use crate::process::{ExitStatus, KillError, Process, RunState};
use crate::signal;
use sigd_policy::Rules;
use std::cell::RefCell;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default policy, native.
pub fn call(processes: &Guarded, request: &Request) -> Called {
    let started = Instant::now();
    let host = Host {
        processes,
        actions: RefCell::default(),
    };
    let request = sigd_policy::Request {
        pid: &request.pid,
        body: &request.body,
    };
    let sigd_policy::Response { status, body } =
        sigd_policy::decide(&Rules::DEFAULT, &&host, &request);
    Called {
        answer: Ok(Response { status, body }),
        actions: host.actions.into_inner(),
        took: started.elapsed(),
    }
}

/// The host's side of the policy, as the wasm policy's imports provide it.
struct Host<'a> {
    processes: &'a Guarded,
    actions: RefCell<Vec<Action>>,
}

/// An opened process, as the wasm policy's `process` resource.
struct Opened<'a> {
    host: &'a Host<'a>,
    process: Arc<dyn Process>,
}

impl<'a> sigd_policy::Host for &'a Host<'a> {
    type Process = Opened<'a>;

    fn realtime_signals(&self) -> RangeInclusive<i32> {
        signal::realtime()
    }

    fn open(&self, pid: i32) -> Option<Opened<'a>> {
        let Some(process) = self.processes.open(pid) else {
            self.actions.borrow_mut().push(Action::NoProcess { pid });
            return None;
        };
        let start_time = process.start_time();
        self.actions
            .borrow_mut()
            .push(Action::Opened { pid, start_time });
        Some(Opened {
            host: self,
            process,
        })
    }
}

impl sigd_policy::Process for Opened<'_> {
    fn is_running(&self) -> Option<bool> {
        // Noted as the wasm policy's `state` import notes it.
        let state = self.process.info().map(|info| info.state);
        let pid = self.process.pid();
        self.host
            .actions
            .borrow_mut()
            .push(Action::Inspected { pid, state });
        Some(!matches!(state?, RunState::Zombie | RunState::Dead))
    }

    fn signal(
        &self,
        signal: i32,
        scope: sigd_policy::Scope,
    ) -> Result<Vec<i32>, sigd_policy::KillError> {
        let scope = scope_of(scope);
        let outcome = self.host.processes.signal(&self.process, signal, scope);
        self.host.actions.borrow_mut().push(Action::Signalled {
            pid: self.process.pid(),
            signal,
            scope,
            outcome: outcome.clone(),
        });
        outcome.map_err(kill_error)
    }

    fn escalate(
        &self,
        after_ms: u32,
        signal: i32,
        scope: sigd_policy::Scope,
    ) -> Result<(), sigd_policy::KillError> {
        let scope = scope_of(scope);
        let after = Duration::from_millis(after_ms.into());
        let outcome = self
            .host
            .processes
            .escalate(self.process.clone(), after, signal, scope);
        self.host.actions.borrow_mut().push(Action::Escalated {
            pid: self.process.pid(),
            after_ms,
            signal,
            scope,
            outcome,
        });
        outcome.map_err(kill_error)
    }

    fn wait_exit(&self, timeout_ms: u32) -> Option<sigd_policy::Exit> {
        let timeout = Duration::from_millis(timeout_ms.into());
        let wait = Guarded::wait_exit(&self.process, timeout);
        // The native logic is synchronous: block this worker while waiting.
        let exit = tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(wait));
        self.host.actions.borrow_mut().push(Action::Waited {
            pid: self.process.pid(),
            exit,
        });
        exit.map(|exit| match exit {
            ExitStatus::Code(code) => sigd_policy::Exit::Code(code),
            ExitStatus::Signal(signal) => sigd_policy::Exit::Signal(signal),
            ExitStatus::Unknown => sigd_policy::Exit::Unknown,
        })
    }
}

fn scope_of(scope: sigd_policy::Scope) -> Scope {
    match scope {
        sigd_policy::Scope::Process => Scope::Process,
        sigd_policy::Scope::Group => Scope::Group,
        sigd_policy::Scope::Tree => Scope::Tree,
    }
}

fn kill_error(error: KillError) -> sigd_policy::KillError {
    match error {
        KillError::NotFound => sigd_policy::KillError::NotFound,
        KillError::InvalidSignal => sigd_policy::KillError::InvalidSignal,
        KillError::Protected => sigd_policy::KillError::Protected,
        KillError::PermissionDenied => sigd_policy::KillError::PermissionDenied,
        KillError::Failed(_) => sigd_policy::KillError::Failed,
    }
}
