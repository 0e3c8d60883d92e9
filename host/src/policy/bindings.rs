//! The generated bindings for WIT world `sigd:policy/policy`, fenced in one
//! module. Nothing outside `policy` sees a generated type: this file converts
//! them to and from our own at the boundary, and implements the `host`
//! interface the guest imports on top of a guarded [`ProcessTable`].

use crate::guard::Guarded;
use crate::process::{KillError, ProcessInfo, RunState};
use crate::signal;
use wasmtime::ResourceLimiter;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy",
        // Calls into the guest are async so a long one yields to other
        // requests at every epoch tick; the host's functions are quick and stay sync.
        exports: { default: async },
    });
}

pub(super) use generated::exports::sigd::policy::handler::{
    Request as WitRequest, Response as WitResponse,
};
use generated::sigd::policy::host as wit;
pub(super) use generated::{Policy as Bindings, PolicyPre as BindingsPre};

/// What each store holds: the process table behind the guest's imports, an
/// empty WASI context for guests built by toolchains that import WASI (no
/// files, no environment, no network; stdout and stderr captured), and the
/// memory limiter.
pub(super) struct State {
    pub(super) processes: Guarded,
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: Limiter,
}

/// Caps each linear memory; growing past the cap traps the call.
pub(super) struct Limiter {
    memory_bytes: usize,
    hit: bool,
}

impl Limiter {
    pub(super) fn new(memory_bytes: usize) -> Limiter {
        Limiter {
            memory_bytes,
            hit: false,
        }
    }

    /// Whether a memory asked to grow past the cap.
    pub(super) fn hit(&self) -> bool {
        self.hit
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = true;
            wasmtime::bail!("memory limit of {} bytes reached", self.memory_bytes);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table entry is a pointer or two: hold tables to the memory cap too.
        Ok(desired.saturating_mul(16) <= self.memory_bytes)
    }
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
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
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
        self.processes
            .table()
            .lookup(pid)
            .map(wit::ProcessInfo::from)
    }

    fn kill(&mut self, pid: i32, signal: i32) -> Result<(), wit::KillError> {
        self.processes
            .table()
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
