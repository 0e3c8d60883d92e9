//! The generated bindings for WIT world `sigd:policy/policy`, fenced in one
//! module, and the one place their types and the host's own are converted.
//! Nothing outside `policy` sees a generated type.

use crate::guard::Scope;
use crate::process::{ExitStatus, KillError, ProcessInfo, RunState};
use std::ops::RangeInclusive;

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy",
        // Calls into the guest are async so a long one yields to other
        // requests at every epoch tick. Of the host's functions only
        // waiting for an exit is async; the rest are quick.
        exports: { default: async },
        imports: { "sigd:policy/host.[method]process.wait-exit": async },
        with: { "sigd:policy/host.process": crate::policy::imports::OpenProcess },
    });
}

pub(super) use generated::exports::sigd::policy::handler::{
    Request as WitRequest, Response as WitResponse,
};
pub(super) use generated::sigd::policy::host as wit;
pub(super) use generated::{Policy as Bindings, PolicyPre as BindingsPre};

impl From<wit::Scope> for Scope {
    fn from(scope: wit::Scope) -> Scope {
        match scope {
            wit::Scope::Process => Scope::Process,
            wit::Scope::Group => Scope::Group,
            wit::Scope::Tree => Scope::Tree,
        }
    }
}

impl From<KillError> for wit::KillError {
    fn from(error: KillError) -> wit::KillError {
        match error {
            KillError::NotFound => wit::KillError::NotFound,
            KillError::InvalidSignal => wit::KillError::InvalidSignal,
            KillError::Protected => wit::KillError::Protected,
            KillError::PermissionDenied => wit::KillError::PermissionDenied,
            KillError::Failed(_) => wit::KillError::Failed,
        }
    }
}

impl From<ExitStatus> for wit::ExitStatus {
    fn from(status: ExitStatus) -> wit::ExitStatus {
        match status {
            ExitStatus::Code(code) => wit::ExitStatus::Code(code),
            ExitStatus::Signal(signal) => wit::ExitStatus::Signal(signal),
            ExitStatus::Unknown => wit::ExitStatus::Unknown,
        }
    }
}

impl From<RangeInclusive<i32>> for wit::SignalRange {
    fn from(range: RangeInclusive<i32>) -> wit::SignalRange {
        wit::SignalRange {
            min: *range.start(),
            max: *range.end(),
        }
    }
}

impl From<ProcessInfo> for wit::ProcessInfo {
    fn from(info: ProcessInfo) -> wit::ProcessInfo {
        wit::ProcessInfo {
            pid: info.pid,
            ppid: info.ppid,
            pgid: info.pgid,
            sid: info.sid,
            uid: info.uid,
            state: info.state.into(),
            start_time: info.start_time,
            command: info.command,
        }
    }
}

impl From<RunState> for wit::RunState {
    fn from(state: RunState) -> wit::RunState {
        match state {
            RunState::Running => wit::RunState::Running,
            RunState::Sleeping => wit::RunState::Sleeping,
            RunState::DiskSleep => wit::RunState::DiskSleep,
            RunState::Stopped => wit::RunState::Stopped,
            RunState::Idle => wit::RunState::Idle,
            RunState::Zombie => wit::RunState::Zombie,
            RunState::Dead => wit::RunState::Dead,
        }
    }
}
