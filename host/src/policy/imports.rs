//! What a policy imports: the `host` interface, adapted in a few lines per
//! function to [`HostCalls`] (where the calls are implemented), and an
//! empty WASI, linked only for guests built by toolchains that import it.
//! [`State`] is what each store holds.

use super::bindings::{Bindings, wit};
use super::limiter::MemoryLimiter;
use super::ticker::GuestClock;
use crate::host_calls::{HostCalls, MAX_NOTED_BYTES, Target};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What a guest's `process` resource holds: our handle on the process.
pub struct OpenProcess(Target);

/// What each store holds: the current call's [`HostCalls`], for a policy
/// that imports WASI an empty WASI context (no files, no environment, no
/// network; stdout and stderr captured), the memory limiter, and the
/// guest's running-time clock.
pub(super) struct State {
    /// The host's side of the call in progress (or of the last one).
    pub(super) calls: HostCalls,
    /// Only for a policy that imports WASI.
    pub(super) wasi: Option<WasiCtx>,
    pub(super) table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    /// The guest's own running time in this call, which the deadline counts.
    pub(super) clock: GuestClock,
    /// `process` handles the guest holds: an instance that keeps one past
    /// its call is not reused, so no handle outlives its request.
    pub(super) open_processes: usize,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            // WASI is linked only for policies whose instances have a
            // context; any other would get an empty one.
            ctx: self.wasi.get_or_insert_with(|| WasiCtx::builder().build()),
            table: &mut self.table,
        }
    }
}

/// Link the `host` interface into `linker`.
pub(super) fn add_host_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    Bindings::add_to_linker::<_, HasSelf<_>>(linker, |state| state)
}

/// Link WASI 0.2 into `linker`, for policies that import it.
pub(super) fn add_wasi_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
}

impl State {
    /// Make a host call with the guest's clock stopped: the host's work on
    /// a scope (a tree of thousands, stopped and walked) is not the guest's
    /// to pay for out of its deadline.
    fn off_the_clock<T>(&mut self, call: impl FnOnce(&mut HostCalls) -> T) -> T {
        self.clock.suspend();
        let out = call(&mut self.calls);
        self.clock.resume();
        out
    }

    /// A guest's handle on `process`, counted until it drops it.
    fn handle(&mut self, process: Target) -> Option<Resource<OpenProcess>> {
        let handle = self.table.push(OpenProcess(process)).ok()?;
        self.open_processes += 1;
        Some(handle)
    }

    /// The process behind a guest's handle (a handle the guest dropped is none).
    fn process(&self, this: &Resource<OpenProcess>) -> Option<Target> {
        self.table.get(this).ok().map(|open| open.0.clone())
    }

    /// What an `open-*` found, for the guest: a handle on the process and
    /// what the same look saw ([`answer`](State::answer)ed).
    fn opened<T, U: From<T>>(
        &mut self,
        opened: Option<(Target, T)>,
    ) -> wasmtime::Result<Option<(Resource<OpenProcess>, U)>> {
        let handle = opened.and_then(|(process, seen)| Some((self.handle(process)?, seen.into())));
        self.answer(handle)
    }

    /// `answer` for the guest, unless its calls took what the host notes
    /// of them past their bound: then the guest is stopped (a trap), and
    /// gets nothing.
    fn answer<T>(&self, answer: T) -> wasmtime::Result<T> {
        if self.calls.overspent() {
            wasmtime::bail!(
                "its host calls would have noted more than {MAX_NOTED_BYTES} bytes for the \
                 decision record (header names it asked for, and its calls)"
            );
        }
        Ok(answer)
    }
}

impl wit::Host for State {
    fn realtime_signals(&mut self) -> wasmtime::Result<wit::SignalRange> {
        Ok(self.calls.realtime_signals().into())
    }

    fn request_header(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        let value = self.calls.request_header(name);
        self.answer(value)
    }
}

impl wit::HostProcess for State {
    fn open(&mut self, pid: i32) -> wasmtime::Result<Option<Resource<OpenProcess>>> {
        let process = self.calls.open(pid);
        let handle = process.and_then(|process| self.handle(process));
        self.answer(handle)
    }

    fn open_alive(&mut self, pid: i32) -> wasmtime::Result<Option<(Resource<OpenProcess>, bool)>> {
        let opened = self.calls.open_alive(pid);
        self.opened(opened)
    }

    fn open_with_state(
        &mut self,
        pid: i32,
    ) -> wasmtime::Result<Option<(Resource<OpenProcess>, wit::RunState)>> {
        let opened = self.calls.open_with_state(pid);
        self.opened(opened)
    }

    fn open_with_info(
        &mut self,
        pid: i32,
    ) -> wasmtime::Result<Option<(Resource<OpenProcess>, wit::ProcessInfo)>> {
        let opened = self.calls.open_with_info(pid);
        self.opened(opened)
    }

    fn info(&mut self, this: Resource<OpenProcess>) -> wasmtime::Result<Option<wit::ProcessInfo>> {
        let info = self
            .process(&this)
            .and_then(|process| self.calls.info(&process));
        self.answer(info.map(Into::into))
    }

    fn state(&mut self, this: Resource<OpenProcess>) -> wasmtime::Result<Option<wit::RunState>> {
        let state = self
            .process(&this)
            .and_then(|process| self.calls.state(&process));
        self.answer(state.map(Into::into))
    }

    fn signal(
        &mut self,
        this: Resource<OpenProcess>,
        signal: i32,
        scope: wit::Scope,
        on_behalf_of: Option<u32>,
    ) -> wasmtime::Result<Result<Vec<i32>, wit::KillError>> {
        let Some(process) = self.process(&this) else {
            return self.answer(Err(wit::KillError::NotFound));
        };
        let authority = on_behalf_of.into();
        let sent =
            self.off_the_clock(|calls| calls.signal(&process, signal, scope.into(), authority));
        self.answer(sent.map_err(Into::into))
    }

    fn escalate(
        &mut self,
        this: Resource<OpenProcess>,
        after_ms: u32,
        signal: i32,
        scope: wit::Scope,
        on_behalf_of: Option<u32>,
    ) -> wasmtime::Result<Result<(), wit::KillError>> {
        let Some(process) = self.process(&this) else {
            return self.answer(Err(wit::KillError::NotFound));
        };
        let authority = on_behalf_of.into();
        let outcome = self.off_the_clock(|calls| {
            calls.escalate(&process, after_ms, signal, scope.into(), authority)
        });
        self.answer(outcome.map_err(Into::into))
    }

    async fn wait_exit(
        &mut self,
        this: Resource<OpenProcess>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Option<wit::ExitStatus>> {
        let Some(process) = self.process(&this) else {
            return self.answer(None);
        };
        let exit = self.calls.wait_exit(&process, timeout_ms).await;
        self.answer(exit.map(Into::into))
    }

    fn drop(&mut self, this: Resource<OpenProcess>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        self.open_processes -= 1;
        Ok(())
    }
}
