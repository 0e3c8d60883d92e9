//! The default policy's decision logic (`guest/`) linked natively instead
//! of run as wasm, over the same host calls: the baseline the benchmarks
//! measure the wasm policy against (`sigd-baseline`, and the `policy_cost`
//! bench). Not part of sigd: it cannot be swapped or limited.
//!
//! [`Native`] is a [`Decide`]r like sigd's active policy; its host side is
//! sigd's own [`HostCalls`], adapted to the logic's [`sigd_policy::Host`]
//! in a few lines per call, as the wasm imports adapt it to WIT.

use sigd::decision::{Decide, Deciding, Decision, Described};
use sigd::guard::{Authority, GuardedTable, Scope};
use sigd::host_calls::{HostCalls, Target};
use sigd::policy::{Answer, CallLimits, Request};
use sigd::process::{ExitStatus, KillError};
use sigd::reload::FailMode;
use sigd::shares::Holder;
use sigd_policy::{Rules, Settings};
use std::cell::RefCell;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The default policy, native.
pub struct Native {
    /// What the audit log names as the deciding policy.
    name: Arc<str>,
    loaded_at: SystemTime,
}

impl Default for Native {
    fn default() -> Native {
        Native {
            name: "native".into(),
            loaded_at: SystemTime::now(),
        }
    }
}

impl Native {
    /// Decide one request (synchronously: waits block the worker thread).
    pub fn call(&self, processes: &GuardedTable, request: Request) -> Decision {
        let started = Instant::now();
        let host = Host(RefCell::new(HostCalls::new(
            processes.clone(),
            request.headers,
            Holder::of(&request.caller),
        )));
        let caller = sigd_policy::Caller {
            principal: request.caller.principal,
            uid: request.caller.peer.credentials.map(|c| c.uid),
        };
        let asked = sigd_policy::Request {
            pid: &request.pid,
            body: &request.body,
            caller: &caller,
        };
        let sigd_policy::Response { status, body } =
            sigd_policy::decide(&Rules::DEFAULT, &Settings::default(), &&host, &asked);
        // Checked as sigd checks a wasm policy's answer (which also reads its code).
        let answer = Answer::check(status, body, CallLimits::default().response_bytes);
        Decision {
            answer,
            actions: host.0.borrow_mut().take_actions(),
            took: started.elapsed(),
            policy_sha256: self.name.clone(),
            settings_sha256: None,
            fell_back: None,
        }
    }
}

impl Decide for Native {
    fn decide<'a>(&'a self, processes: &'a GuardedTable, request: Request) -> Deciding<'a> {
        Box::pin(async move { self.call(processes, request) })
    }

    fn describe(&self) -> Described {
        Described {
            sha256: self.name.to_string(),
            source: "the default policy linked natively (baseline)".into(),
            settings_sha256: None,
            loaded_at: self.loaded_at,
            last_reload: None,
            fail_mode: FailMode::Closed,
        }
    }
}

/// sigd's host calls, as the logic's [`sigd_policy::Host`].
struct Host(RefCell<HostCalls>);

/// An opened process, as the logic's [`sigd_policy::Process`].
struct Opened<'a> {
    host: &'a Host,
    process: Target,
}

impl<'a> sigd_policy::Host for &'a Host {
    type Process = Opened<'a>;

    fn realtime_signals(&self) -> RangeInclusive<i32> {
        self.0.borrow().realtime_signals()
    }

    fn open_alive(&self, pid: i32) -> Option<(Opened<'a>, bool)> {
        let (process, alive) = self.0.borrow_mut().open_alive(pid)?;
        let opened = Opened {
            host: self,
            process,
        };
        Some((opened, alive))
    }

    fn open_with_info(&self, pid: i32) -> Option<(Opened<'a>, sigd_policy::Target)> {
        let (process, info) = self.0.borrow_mut().open_with_info(pid)?;
        let target = sigd_policy::Target {
            running: !info.state.has_exited(),
            uid: info.uids.real,
            command: info.command,
        };
        let opened = Opened {
            host: self,
            process,
        };
        Some((opened, target))
    }
}

impl sigd_policy::Process for Opened<'_> {
    fn signal(
        &self,
        signal: i32,
        scope: sigd_policy::Scope,
        on_behalf_of: Option<u32>,
    ) -> Result<Vec<i32>, sigd_policy::KillError> {
        let authority = Authority::from(on_behalf_of);
        let mut calls = self.host.0.borrow_mut();
        calls
            .signal(&self.process, signal, scope_of(scope), authority)
            .map_err(kill_error)
    }

    fn escalate(
        &self,
        after_ms: u32,
        signal: i32,
        scope: sigd_policy::Scope,
        on_behalf_of: Option<u32>,
    ) -> Result<(), sigd_policy::KillError> {
        let authority = Authority::from(on_behalf_of);
        let mut calls = self.host.0.borrow_mut();
        calls
            .escalate(&self.process, after_ms, signal, scope_of(scope), authority)
            .map_err(kill_error)
    }

    fn wait_exit(&self, timeout_ms: u32) -> Option<sigd_policy::Exit> {
        let mut calls = self.host.0.borrow_mut();
        let wait = calls.wait_exit(&self.process, timeout_ms);
        // The native logic is synchronous: block this worker while waiting.
        let exit = tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(wait));
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
        KillError::NotPermitted => sigd_policy::KillError::NotPermitted,
        KillError::NoRoom(_)
        | KillError::Moving
        | KillError::EscalationsFull(_)
        | KillError::Failed(_) => sigd_policy::KillError::Failed,
    }
}
