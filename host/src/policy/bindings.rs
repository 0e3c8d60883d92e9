//! The generated bindings for WIT world `sigd:policy/policy`, fenced in one
//! module, and the one place their types and the host's own are converted.
//! Nothing outside `policy` sees a generated type.

use crate::caller::{Caller, Transport};
use crate::guard::Scope;
use crate::process::{ExitStatus, Ids, KillError, ProcessInfo, RunState};
use std::ops::RangeInclusive;

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy",
        // Calls into the guest are async so a long one yields to other
        // requests at every epoch tick. Of the host's functions only
        // waiting for an exit is async; the rest are quick. Each may stop
        // the guest (a trap): one that took what the host notes of a call
        // past its bound.
        exports: { default: async },
        imports: {
            "sigd:policy/host.[method]process.wait-exit": async | trappable,
            default: trappable,
        },
        with: { "sigd:policy/host.process": crate::policy::imports::OpenProcess },
    });
}

use generated::exports::sigd::policy::handler as wit_handler;
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

impl From<&Caller> for wit_handler::Caller {
    fn from(caller: &Caller) -> wit_handler::Caller {
        wit_handler::Caller {
            principal: caller.principal.clone(),
            peer: caller.peer.credentials.map(|c| wit_handler::Credentials {
                pid: c.pid,
                uid: c.uid,
                gid: c.gid,
            }),
            transport: match &caller.peer.transport {
                Transport::Tcp(remote) => wit_handler::Transport::Tcp(remote.as_str().into()),
                Transport::Unix => wit_handler::Transport::Unix,
            },
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
            KillError::NotPermitted => wit::KillError::NotPermitted,
            // The host answers these itself (503), whatever the policy says.
            KillError::NoRoom(_)
            | KillError::Moving
            | KillError::EscalationsFull(_)
            | KillError::Failed(_) => wit::KillError::Failed,
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
            uids: info.uids.into(),
            gids: info.gids.into(),
            state: info.state.into(),
            start_time: info.start_time,
            command: info.command,
        }
    }
}

impl From<Ids> for wit::Ids {
    fn from(ids: Ids) -> wit::Ids {
        wit::Ids {
            real: ids.real,
            effective: ids.effective,
            saved: ids.saved,
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
