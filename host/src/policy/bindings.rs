//! The generated bindings for WIT world `sigd:policy/policy`, fenced in one
//! module. Nothing outside `policy` sees a generated type: this file converts
//! them to and from our own at the boundary, and implements the `host`
//! interface the guest imports on top of a guarded [`ProcessTable`].

use crate::process::{KillError, ProcessInfo, ProcessTable, RunState};
use crate::signal;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy",
    });
}

pub(super) use generated::exports::sigd::policy::handler::{
    Request as WitRequest, Response as WitResponse,
};
use generated::sigd::policy::host as wit;
pub(super) use generated::{Policy as Bindings, PolicyPre as BindingsPre};

/// What each store holds: the process table behind the guest's imports, and
/// an empty WASI context for guests built by toolchains that import WASI.
pub(super) struct State {
    pub(super) processes: Arc<dyn ProcessTable>,
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Link the `host` interface and WASI into `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    Bindings::add_to_linker::<_, HasSelf<_>>(linker, |state| state)
}

impl wit::Host for State {
    fn realtime_signals(&mut self) -> wit::SignalRange {
        let range = signal::realtime();
        wit::SignalRange {
            min: *range.start(),
            max: *range.end(),
        }
    }

    fn lookup(&mut self, pid: i32) -> Option<wit::ProcessInfo> {
        self.processes.lookup(pid).map(wit::ProcessInfo::from)
    }

    fn kill(&mut self, pid: i32, signal: i32) -> Result<(), wit::KillError> {
        self.processes
            .kill(pid, signal)
            .map_err(|error| match error {
                KillError::NotFound => wit::KillError::NotFound,
                KillError::InvalidSignal => wit::KillError::InvalidSignal,
                KillError::Protected => wit::KillError::Protected,
                KillError::PermissionDenied => wit::KillError::PermissionDenied,
                KillError::Failed(errno) => {
                    tracing::error!(pid, signal, %errno, "kill failed");
                    wit::KillError::Failed
                }
            })
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
            state: match info.state {
                RunState::Running => wit::RunState::Running,
                RunState::Sleeping => wit::RunState::Sleeping,
                RunState::DiskSleep => wit::RunState::DiskSleep,
                RunState::Stopped => wit::RunState::Stopped,
                RunState::Idle => wit::RunState::Idle,
                RunState::Zombie => wit::RunState::Zombie,
                RunState::Dead => wit::RunState::Dead,
            },
            start_time: info.start_time,
            command: info.command,
        }
    }
}
