//! The generated bindings for WIT world `sigd:policy/policy`, fenced in one
//! module. Nothing outside `policy` sees a generated type: this file converts
//! them to and from our own at the boundary, and implements the `host`
//! interface the guest imports on top of a [`Guarded`] process table.

use super::Action;
use super::ticker::GuestClock;
use crate::guard::{Guarded, Scope};
use crate::process::{ExitStatus, KillError, Process, ProcessInfo, RunState};
use crate::signal;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::ResourceLimiter;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy",
        // Calls into the guest are async so a long one yields to other
        // requests at every epoch tick. Of the host's functions only
        // waiting for an exit is async; the rest are quick.
        exports: { default: async },
        imports: { "sigd:policy/host.[method]process.wait-exit": async },
        with: { "sigd:policy/host.process": super::OpenProcess },
    });
}

pub(super) use generated::exports::sigd::policy::handler::{
    Request as WitRequest, Response as WitResponse,
};
use generated::sigd::policy::host as wit;
pub(super) use generated::{Policy as Bindings, PolicyPre as BindingsPre};

/// What a guest's `process` resource holds: our handle on the process.
pub struct OpenProcess(Arc<dyn Process>);

/// What each store holds: the process table behind the guest's imports, an
/// empty WASI context for guests built by toolchains that import WASI (no
/// files, no environment, no network; stdout and stderr captured), the
/// memory limiter, and the guest's running-time clock.
pub(super) struct State {
    pub(super) processes: Guarded,
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: Limiter,
    /// The current request's headers (lower-case names, no `authorization`).
    pub(super) headers: Vec<(String, String)>,
    /// The guest's own running time in this call, which the deadline counts.
    pub(super) clock: GuestClock,
    /// `process` handles the guest holds: an instance that keeps one past
    /// its call is not reused, so no handle outlives its request.
    pub(super) open_processes: usize,
    /// What the guest made the host do, for the audit log.
    pub(super) actions: Vec<Action>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps each linear memory; growing past the cap traps the call.
pub(super) struct Limiter {
    memory_bytes: usize,
    hit: bool,
    /// The largest size any memory has grown to.
    largest: usize,
    /// `largest` after the instance's first call: its working size.
    settled: Option<usize>,
}

impl Limiter {
    pub(super) fn new(memory_bytes: usize) -> Limiter {
        Limiter {
            memory_bytes,
            hit: false,
            largest: 0,
            settled: None,
        }
    }

    /// Whether a memory asked to grow past the cap.
    pub(super) fn hit(&self) -> bool {
        self.hit
    }

    /// Whether the memories have grown, since the first call, through three
    /// quarters of the room they had left under the cap (called after each
    /// sound call). An instance this full is not reused, so garbage that a
    /// guest's runtime (a JavaScript or Python heap) leaves behind never
    /// grows into the cap and fails a sound request.
    pub(super) fn nearly_full(&mut self) -> bool {
        let settled = *self.settled.get_or_insert(self.largest);
        let room = self.memory_bytes.saturating_sub(settled);
        self.largest > settled + room / 4 * 3
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
        self.largest = self.largest.max(desired);
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

    fn request_header(&mut self, name: String) -> Option<String> {
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
}

impl State {
    fn process(&self, this: &Resource<OpenProcess>) -> Option<&Arc<dyn Process>> {
        self.table.get(this).ok().map(|open| &open.0)
    }

    /// What the host knows of an opened process now, noted as an action.
    fn inspect(&mut self, this: &Resource<OpenProcess>) -> Option<ProcessInfo> {
        let process = self.process(this)?;
        let (pid, info) = (process.pid(), process.info());
        let state = info.as_ref().map(|info| info.state);
        self.actions.push(Action::Inspected { pid, state });
        info
    }
}

impl wit::HostProcess for State {
    fn open(&mut self, pid: i32) -> Option<Resource<OpenProcess>> {
        let Some(process) = self.processes.open(pid) else {
            self.actions.push(Action::NoProcess { pid });
            return None;
        };
        let start_time = process.start_time();
        self.actions.push(Action::Opened { pid, start_time });
        let handle = self.table.push(OpenProcess(process)).ok()?;
        self.open_processes += 1;
        Some(handle)
    }

    fn info(&mut self, this: Resource<OpenProcess>) -> Option<wit::ProcessInfo> {
        self.inspect(&this).map(wit::ProcessInfo::from)
    }

    fn state(&mut self, this: Resource<OpenProcess>) -> Option<wit::RunState> {
        self.inspect(&this).map(|info| info.state.into())
    }

    fn signal(
        &mut self,
        this: Resource<OpenProcess>,
        signal: i32,
        scope: wit::Scope,
    ) -> Result<Vec<i32>, wit::KillError> {
        let process = self.process(&this).ok_or(wit::KillError::NotFound)?;
        let (pid, scope) = (process.pid(), Scope::from(scope));
        let outcome = self.processes.signal(process, signal, scope);
        self.actions.push(Action::Signalled {
            pid,
            signal,
            scope,
            outcome: outcome.clone(),
        });
        outcome.map_err(wit::KillError::from)
    }

    fn escalate(
        &mut self,
        this: Resource<OpenProcess>,
        after_ms: u32,
        signal: i32,
        scope: wit::Scope,
    ) -> Result<(), wit::KillError> {
        let process = self.process(&this).ok_or(wit::KillError::NotFound)?.clone();
        let (pid, scope) = (process.pid(), Scope::from(scope));
        let after = Duration::from_millis(after_ms.into());
        let outcome = self.processes.escalate(process, after, signal, scope);
        self.actions.push(Action::Escalated {
            pid,
            after_ms,
            signal,
            scope,
            outcome,
        });
        outcome.map_err(wit::KillError::from)
    }

    async fn wait_exit(
        &mut self,
        this: Resource<OpenProcess>,
        timeout_ms: u32,
    ) -> Option<wit::ExitStatus> {
        let process = self.process(&this)?.clone();
        let status = Guarded::wait_exit(&process, Duration::from_millis(timeout_ms.into())).await;
        self.actions.push(Action::Waited {
            pid: process.pid(),
            exit: status,
        });
        status.map(|status| match status {
            ExitStatus::Code(code) => wit::ExitStatus::Code(code),
            ExitStatus::Signal(signal) => wit::ExitStatus::Signal(signal),
            ExitStatus::Unknown => wit::ExitStatus::Unknown,
        })
    }

    fn drop(&mut self, this: Resource<OpenProcess>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        self.open_processes -= 1;
        Ok(())
    }
}

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
            KillError::Failed(errno) => {
                tracing::error!(%errno, "signal failed");
                wit::KillError::Failed
            }
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
