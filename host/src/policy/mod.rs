//! The policy runtime: compile a policy component once, then answer each
//! request from an instance of it, inside limits.
//!
//! [`Runtime`] owns what all policies share: the engine, the linker (the
//! `host` interface plus an empty WASI), the epoch [`ticker`] and the compiled
//! cache. [`Runtime::load`] turns component bytes into a [`Policy`]: compiled
//! (or taken precompiled from the build, or from the cache), type-checked
//! against the WIT world and pre-instantiated. [`Policy::call`] then takes
//! an idle instance that answered well before (or a fresh one, see
//! [`Isolation`]), resets the host's per-call state and makes one call; a
//! call that traps or hits a limit takes only its own instance down.

mod bindings;
mod cache;
pub mod config;
mod guest_output;
mod ticker;

pub use cache::{Cache, CacheError};

use crate::guard::{Guard, Guarded, Scope};
use crate::process::{ExitStatus, KillError, RunState};
use crate::simulated::Simulated;
use bindings::{Bindings, BindingsPre, Limiter, State, WitRequest, WitResponse};
use guest_output::GuestOutput;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ticker::{GuestClock, Ticker};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtx;

/// The WIT package policies are written against, and its version.
pub const WIT_PACKAGE: &str = "sigd:policy";
pub const WIT_VERSION: &str = "0.2.0";
/// The WIT text itself (`wit/policy.wit`), for `sigd policy wit`.
pub const WIT: &str = include_str!("../../../wit/policy.wit");

/// The default policy (`guest/`), built into the binary.
pub const DEFAULT_POLICY: &[u8] = include_bytes!(env!("SIGD_POLICY_DEFAULT"));

/// [`DEFAULT_POLICY`] compiled by `host/build.rs` under
/// [`config::compile_config`] for the build machine's CPU (empty when
/// cross-compiling). Used when this machine's CPU can run it.
const DEFAULT_POLICY_COMPILED: &[u8] = include_bytes!(env!("SIGD_POLICY_DEFAULT_COMPILED"));

/// What one policy call may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest linear memory, in bytes; growing past it traps.
    pub memory_bytes: usize,
    /// The guest's own CPU time a call may take before it traps (time it
    /// spends suspended, waiting or preempted does not count).
    pub deadline: Duration,
    /// Wall-clock time a call may take in all, waits included: the backstop
    /// for a policy that waits in the host (or in WASI) again and again.
    pub wall_clock: Duration,
    /// Largest wasm stack, in bytes.
    pub stack_bytes: usize,
    /// Largest response body, in bytes.
    pub response_bytes: usize,
    /// Largest stdout (and, apart, stderr) a call may write, in bytes;
    /// more is dropped.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_bytes: 16 << 20,
            deadline: Duration::from_millis(50),
            wall_clock: crate::guard::MAX_WAIT + Duration::from_secs(5),
            stack_bytes: 512 << 10,
            response_bytes: 64 << 10,
            output_bytes: 64 << 10,
        }
    }
}

/// A limit a call ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Limit {
    #[error("memory")]
    Memory,
    #[error("deadline")]
    Deadline,
    #[error("wall-clock")]
    WallClock,
    #[error("stack")]
    Stack,
}

/// One request as the policy receives it (WIT `handler.request`).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The `{pid}` path segment, as it arrived.
    pub pid: String,
    /// The body, as it arrived.
    pub body: Vec<u8>,
    /// Lower-case header names and UTF-8 values, without `authorization`
    /// (the policy asks for those it needs).
    pub headers: Vec<(String, String)>,
}

/// The policy's answer, checked: a status in 200..=599 and a JSON body
/// within the size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot set up the wasm engine: {0:#}")]
    Engine(wasmtime::Error),
    #[error("is not a WebAssembly component: {0:#}")]
    NotAComponent(wasmtime::Error),
    #[error("does not fit sigd's policy world (sigd:policy/policy@{WIT_VERSION}): {0:#}")]
    Incompatible(wasmtime::Error),
}

/// Why a policy call gave no usable answer. Each becomes a 500 `INTERNAL`.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("policy hit its {0} limit")]
    Limit(Limit),
    #[error("policy trapped: {0:#}")]
    Trap(wasmtime::Error),
    #[error("policy answered status {0}, outside 200..=599")]
    BadStatus(u16),
    #[error("policy answered a {0}-byte body, over the limit")]
    TooLarge(usize),
    #[error("policy answered a body that is not JSON: {0}")]
    BadBody(serde_json::Error),
}

/// Something a policy made the host do, for the audit log.
#[derive(Debug, Clone)]
pub enum Action {
    /// It read a request header; whether the request had it.
    ReadHeader { name: String, found: bool },
    /// It asked to open `pid`, which does not exist.
    NoProcess { pid: i32 },
    /// It opened the process `pid`, which started at `start_time`.
    Opened { pid: i32, start_time: u64 },
    /// It asked what `pid` is doing: its state then, `None` once gone.
    Inspected { pid: i32, state: Option<RunState> },
    /// It asked for `signal` to `pid`'s `scope`; the pids reached, or why not.
    Signalled {
        pid: i32,
        signal: i32,
        scope: Scope,
        outcome: Result<Vec<i32>, KillError>,
    },
    /// It asked for `signal` to `pid`'s `scope` after `after_ms` if still alive.
    Escalated {
        pid: i32,
        after_ms: u32,
        signal: i32,
        scope: Scope,
        outcome: Result<(), KillError>,
    },
    /// It waited for `pid` to exit; how it ended, if it did in time.
    Waited { pid: i32, exit: Option<ExitStatus> },
}

/// One call's outcome: the answer, and what the policy did on the way.
pub struct Called {
    pub answer: Result<Response, CallError>,
    /// In order, including what it did before trapping.
    pub actions: Vec<Action>,
    /// Wall-clock time of the call.
    pub took: Duration,
}

/// Where a loaded policy's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiled {
    /// Compiled into the binary at build time (the default policy).
    AtBuild,
    /// Read from the compiled-policy cache.
    FromCache,
    /// Compiled when loaded.
    OnLoad,
}

/// How much one request's policy call is kept apart from another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Reuse an instance that answered well (~3 µs a call instead of ~60):
    /// a guest may keep state from one request to the next, but only its
    /// own, in its own memory. The host's per-call state (the process
    /// table, headers, clock, actions) is reset per call. An instance is
    /// never reused if it trapped or answered badly, still holds a process
    /// handle, or its memory has grown through three quarters of its room
    /// under the cap since its first call.
    ReuseSound,
    /// A fresh instance for every request: nothing survives a call.
    FreshInstance,
}

/// What every policy shares.
pub struct Runtime {
    engine: Engine,
    linker: Linker<State>,
    limits: Limits,
    isolation: Isolation,
    ticker: Ticker,
    cache: Option<Cache>,
}

impl Runtime {
    /// An engine and linker for policies under `limits` and `isolation`,
    /// caching compiled policies in `cache` if given.
    pub fn new(
        limits: Limits,
        isolation: Isolation,
        cache: Option<Cache>,
    ) -> Result<Arc<Runtime>, LoadError> {
        let mut config = config::compile_config();
        config.max_wasm_stack(limits.stack_bytes);
        let engine = Engine::new(&config).map_err(LoadError::Engine)?;
        let mut linker = Linker::new(&engine);
        bindings::add_to_linker(&mut linker).map_err(LoadError::Engine)?;
        let ticker = Ticker::start(engine.clone())
            .map_err(|e| LoadError::Engine(wasmtime::Error::new(e)))?;
        Ok(Arc::new(Runtime {
            engine,
            linker,
            limits,
            isolation,
            ticker,
            cache,
        }))
    }

    /// Compile (or find compiled) and link a policy component.
    pub fn load(self: &Arc<Self>, component: &[u8]) -> Result<Policy, LoadError> {
        self.link(self.compile(component)?)
    }

    /// Compile a policy component (or find it compiled), without linking it.
    pub fn compile(&self, component: &[u8]) -> Result<Unlinked, LoadError> {
        let sha256 = sha256_hex(component);
        let (compiled, how) = self.machine_code(component, &sha256)?;
        Ok(Unlinked {
            component: compiled,
            sha256,
            compiled: how,
        })
    }

    /// Link a compiled policy against the host's imports and find its export.
    pub fn link(self: &Arc<Self>, unlinked: Unlinked) -> Result<Policy, LoadError> {
        let pre = self
            .linker
            .instantiate_pre(&unlinked.component)
            .and_then(BindingsPre::new)
            .map_err(LoadError::Incompatible)?;
        Ok(Policy {
            runtime: self.clone(),
            pre,
            sha256: unlinked.sha256,
            compiled: unlinked.compiled,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The engine policies are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn machine_code(
        &self,
        component: &[u8],
        sha256: &str,
    ) -> Result<(Component, Compiled), LoadError> {
        if component == DEFAULT_POLICY && !DEFAULT_POLICY_COMPILED.is_empty() {
            // SAFETY: host/build.rs wrote these bytes with
            // `Engine::precompile_component` from `DEFAULT_POLICY`; wasmtime
            // checks they suit this engine and CPU before using them.
            match unsafe { Component::deserialize(&self.engine, DEFAULT_POLICY_COMPILED) } {
                Ok(compiled) => return Ok((compiled, Compiled::AtBuild)),
                Err(error) => {
                    tracing::info!(%error, "the built-in compiled policy does not suit this CPU; compiling")
                }
            }
        }
        if let Some(compiled) = self
            .cache
            .as_ref()
            .and_then(|c| c.load(&self.engine, sha256))
        {
            return Ok((compiled, Compiled::FromCache));
        }
        let compiled =
            Component::from_binary(&self.engine, component).map_err(LoadError::NotAComponent)?;
        if let Some(cache) = &self.cache {
            cache.store(&self.engine, sha256, &compiled);
        }
        Ok((compiled, Compiled::OnLoad))
    }
}

/// A compiled policy component, not yet linked (see [`Runtime::compile`]).
pub struct Unlinked {
    component: Component,
    sha256: String,
    compiled: Compiled,
}

impl Unlinked {
    /// The compiled component, whose type lists its imports and exports.
    pub fn component(&self) -> &Component {
        &self.component
    }

    /// Where its machine code came from.
    pub fn compiled(&self) -> Compiled {
        self.compiled
    }
}

/// A compiled, linked policy, ready to answer requests from many threads.
pub struct Policy {
    runtime: Arc<Runtime>,
    pre: BindingsPre<State>,
    sha256: String,
    compiled: Compiled,
    /// Instances that answered well, for the next calls (see [`Isolation`]).
    idle: Mutex<Vec<Instance>>,
}

impl Policy {
    /// The sha256 of the component's bytes, in hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Where its machine code came from.
    pub fn compiled(&self) -> Compiled {
        self.compiled
    }

    /// Answer one request from an instance (see [`Isolation`]) whose imports
    /// reach `processes`. A call that has run a whole epoch tick yields to
    /// the async runtime, so it holds up no other request; past its
    /// deadline it traps.
    pub async fn call(&self, processes: &Guarded, request: Request) -> Called {
        let started = Instant::now();
        let (answer, actions) = self.run(processes, request).await;
        Called {
            answer,
            actions,
            took: started.elapsed(),
        }
    }

    async fn run(
        &self,
        processes: &Guarded,
        request: Request,
    ) -> (Result<Response, CallError>, Vec<Action>) {
        let limits = &self.runtime.limits;
        let running = self.runtime.ticker.enter();
        let mut instance = match self.idle_instance() {
            Some(instance) => instance,
            None => self.new_instance(),
        };
        instance.prepare(processes, request.headers);
        let request = WitRequest {
            pid: request.pid,
            body: request.body,
        };
        let clock = instance.store.data().clock.clone();
        let call = async {
            let handler = match instance.handler.take() {
                Some(handler) => handler,
                None => self.pre.instantiate_async(&mut instance.store).await?,
            };
            let answer = handler
                .sigd_policy_handler()
                .call_handle_signal(&mut instance.store, &request)
                .await;
            instance.handler = Some(handler);
            answer
        };
        let answer = ticker::clocked(&clock, limits.wall_clock, call).await;
        drop(running);
        guest_output::log(&self.sha256, &instance.stdout, &instance.stderr);
        let checked = match answer {
            // Given up on: the instance is dropped mid-call, never reused.
            None => Err(CallError::Limit(Limit::WallClock)),
            Some(answer) => answer
                .map_err(|error| classify(error, instance.store.data().limiter.hit()))
                .and_then(|WitResponse { status, body }| check(status, body, limits)),
        };
        let actions = std::mem::take(&mut instance.store.data_mut().actions);
        // A call that trapped or answered badly may have left the guest's
        // state broken: its instance goes. A sound one serves again.
        if checked.is_ok() {
            self.keep(instance);
        }
        (checked, actions)
    }

    /// An instance that answered well before, if reuse is on and one is idle.
    fn idle_instance(&self) -> Option<Instance> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        idle.pop()
    }

    /// Put a sound instance back for the next call, within the pool's bounds.
    fn keep(&self, mut instance: Instance) {
        if self.runtime.isolation == Isolation::FreshInstance
            || instance.calls >= MAX_CALLS
            || instance.store.data().open_processes > 0
            || instance.store.data_mut().limiter.nearly_full()
        {
            return;
        }
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(instance);
        }
    }

    /// A store ready for its first call (instantiated on that call, inside
    /// the deadline).
    fn new_instance(&self) -> Instance {
        let limits = &self.runtime.limits;
        let (stdout, stderr) = (
            GuestOutput::new(limits.output_bytes),
            GuestOutput::new(limits.output_bytes),
        );
        let state = State {
            processes: Guard::new(Simulated::default()).into(),
            wasi: WasiCtx::builder()
                .stdout(stdout.clone())
                .stderr(stderr.clone())
                .build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(limits.memory_bytes),
            headers: Vec::new(),
            clock: GuestClock::default(),
            open_processes: 0,
            actions: Vec::new(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        let deadline = limits.deadline;
        store.epoch_deadline_callback(move |store| {
            let clock = &store.data().clock;
            let ran = clock.ran();
            Ok(if ran >= deadline {
                tracing::warn!(ran_us = ran.as_micros() as u64, "policy ran out of time");
                UpdateDeadline::Interrupt
            } else if ran >= ticker::TICK {
                // A long call: tokio's own yield lets every other ready
                // task run first.
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            } else {
                // A short call that only straddles a tick goes on: a yield
                // would send its request to the back of the queue.
                UpdateDeadline::Continue(1)
            })
        });
        Instance {
            store,
            handler: None,
            stdout,
            stderr,
            calls: 0,
        }
    }
}

/// Instances kept idle per policy, at most.
const MAX_IDLE: usize = 64;
/// Calls one instance serves before it is replaced, bounding whatever a
/// guest may accumulate (memory it never frees, WASI resources it keeps).
const MAX_CALLS: u64 = 10_000;

/// One instance of a policy: its store, its bindings once instantiated, and
/// its output streams.
struct Instance {
    store: Store<State>,
    handler: Option<Bindings>,
    stdout: GuestOutput,
    stderr: GuestOutput,
    calls: u64,
}

impl Instance {
    /// Set the store up for one call against `processes`, for a request
    /// with these `headers`.
    fn prepare(&mut self, processes: &Guarded, headers: Vec<(String, String)>) {
        self.calls += 1;
        let state = self.store.data_mut();
        state.processes = processes.clone();
        state.headers = headers;
        state.clock.start();
        state.actions.clear();
        self.store.set_epoch_deadline(1);
    }
}

/// The answer, if it is one sigd may pass on.
fn check(status: u16, body: String, limits: &Limits) -> Result<Response, CallError> {
    if !(200..=599).contains(&status) {
        return Err(CallError::BadStatus(status));
    }
    if body.len() > limits.response_bytes {
        return Err(CallError::TooLarge(body.len()));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&body).map_err(CallError::BadBody)?;
    Ok(Response { status, body })
}

/// Which limit, if any, made a call fail.
fn classify(error: wasmtime::Error, memory_hit: bool) -> CallError {
    let limit = match error.downcast_ref::<Trap>() {
        _ if memory_hit => Limit::Memory,
        Some(Trap::Interrupt) => Limit::Deadline,
        Some(Trap::StackOverflow) => Limit::Stack,
        _ => return CallError::Trap(error),
    };
    CallError::Limit(limit)
}

/// The sha256 of `bytes`, in lower-case hex: how sigd names a policy.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
