//! The [`Runtime`] every policy shares (the engine, the linkers, the epoch
//! ticker, the compiled cache) and a loaded [`Policy`]: its machine code
//! (compiled, or taken precompiled from the build, a `sigd policy compile`
//! file or the cache), type-checked against the WIT world and
//! pre-instantiated. [`Policy::call`] decides one request on an instance
//! from its pool; a call that traps or hits a limit takes only its own
//! instance down.
//!
//! WASI is linked only for a policy that imports it: the linker with WASI
//! is made the first time one is loaded, and only its instances get a WASI
//! context.

use super::bindings::{BindingsPre, WitRequest};
use super::imports::{self, State};
use super::pool::{Instance, Pool, SettingsRejected};
use super::precompiled::Precompiled;
use super::ticker::{self, Ticker};
use super::{Answer, Cache, CallError, CallLimits, Compiled, DEFAULT_POLICY, Isolation, Limit};
use super::{LoadError, Request, config, sha256_hex};
use crate::caller::Caller;
use crate::decision::Decision;
use crate::guard::GuardedTable;
use crate::host_calls::HostCalls;
use crate::record::Record;
use crate::replay::Recorded;
use crate::shares::Holder;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Trap};

/// [`DEFAULT_POLICY`] compiled by `host/build.rs` under
/// [`config::portable_config`] for any CPU of the target's architecture.
const DEFAULT_POLICY_COMPILED: &[u8] = include_bytes!(env!("SIGD_POLICY_DEFAULT_COMPILED"));

/// A call's stack for the host functions a guest calls, above the guest's
/// own (`CallLimits::stack_bytes`): with the default 512 KiB guest stack,
/// wasmtime's default 2 MiB fiber.
const HOST_STACK_BYTES: usize = 1536 << 10;

/// The first bytes of a component (the wasm preamble, layer 1).
const COMPONENT_PREAMBLE: &[u8] = b"\0asm\x0d\0\x01\0";

/// What every policy shares.
pub struct Runtime {
    engine: Engine,
    /// The host interface alone: what a policy importing no WASI is linked with.
    linker: Linker<State>,
    /// The host interface and WASI, made when a policy first imports WASI.
    wasi_linker: OnceLock<Linker<State>>,
    limits: CallLimits,
    isolation: Isolation,
    ticker: Ticker,
    /// Compiled policies on disk (a build without a compiler compiles none).
    #[cfg(feature = "compiler")]
    cache: Option<Cache>,
}

impl Runtime {
    /// An engine and linker for policies under `limits` and `isolation`,
    /// caching compiled policies in `cache` if given (a build without a
    /// compiler has none to cache).
    pub fn new(
        limits: CallLimits,
        isolation: Isolation,
        cache: Option<Cache>,
    ) -> Result<Arc<Runtime>, LoadError> {
        let mut config = config::compile_config();
        config.max_wasm_stack(limits.stack_bytes);
        // A call's fiber holds the guest's stack and, above it, the host
        // functions the guest calls: room for those on top of any guest
        // stack (wasmtime's default fiber is 2 MiB whatever the guest's,
        // which a large `--policy-stack-kib` left the host nearly none of).
        config.async_stack_size(limits.stack_bytes + HOST_STACK_BYTES);
        let engine = Engine::new(&config).map_err(LoadError::Engine)?;
        let mut linker = Linker::new(&engine);
        imports::add_host_to_linker(&mut linker).map_err(LoadError::Engine)?;
        let ticker = Ticker::start(engine.clone())
            .map_err(|e| LoadError::Engine(wasmtime::Error::new(e)))?;
        #[cfg(not(feature = "compiler"))]
        drop(cache); // it compiles nothing, so it caches nothing
        Ok(Arc::new(Runtime {
            engine,
            linker,
            wasi_linker: OnceLock::new(),
            limits,
            isolation,
            ticker,
            #[cfg(feature = "compiler")]
            cache,
        }))
    }

    /// Compile (or find compiled) and link a policy: a component, or one
    /// precompiled by `sigd policy compile`.
    pub fn load(self: &Arc<Self>, policy: &[u8]) -> Result<Policy, LoadError> {
        self.link(self.compile(policy)?)
    }

    /// Compile a policy (or find it compiled), without linking it.
    pub fn compile(&self, policy: &[u8]) -> Result<Unlinked, LoadError> {
        if let Some(precompiled) = Precompiled::parse(policy) {
            let precompiled = precompiled.map_err(LoadError::Precompiled)?;
            let component = precompiled
                .load(&self.engine)
                .map_err(LoadError::Precompiled)?;
            return Ok(Unlinked {
                component,
                sha256: precompiled.header.sha256,
                compiled: Compiled::Ahead,
            });
        }
        let sha256 = sha256_hex(policy);
        let (component, compiled) = self.machine_code(policy, &sha256)?;
        Ok(Unlinked {
            component,
            sha256,
            compiled,
        })
    }

    /// Set up a compiled policy's initial memory, link it against the host's
    /// imports (and WASI, if it imports any) and find its export. When the
    /// kernel refuses the memory (see [`MEMORY_IMAGE_TRIES`]) this blocks,
    /// for 300 ms of pauses and the kernel's own waits: not on an async
    /// worker.
    pub fn link(self: &Arc<Self>, unlinked: Unlinked) -> Result<Policy, LoadError> {
        let make_images = || unlinked.component.initialize_copy_on_write_image();
        retried(MEMORY_IMAGE_TRIES, MEMORY_IMAGE_PAUSE, make_images)
            .map_err(LoadError::MemoryImage)?;
        let wasi = unlinked.imports_wasi(&self.engine);
        let linker = match wasi {
            false => &self.linker,
            true => self.wasi_linker()?,
        };
        let pre = linker
            .instantiate_pre(&unlinked.component)
            .and_then(BindingsPre::new)
            .map_err(LoadError::Incompatible)?;
        Ok(Policy {
            runtime: self.clone(),
            pre,
            sha256: unlinked.sha256.into(),
            compiled: unlinked.compiled,
            wasi,
            settings: None,
            pool: Pool::new(self.isolation),
        })
    }

    /// The engine policies are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether WASI has been linked: a policy that imports it was loaded.
    pub fn links_wasi(&self) -> bool {
        self.wasi_linker.get().is_some()
    }

    /// The linker with WASI, made the first time it is needed.
    fn wasi_linker(&self) -> Result<&Linker<State>, LoadError> {
        if let Some(linker) = self.wasi_linker.get() {
            return Ok(linker);
        }
        let mut linker = Linker::new(&self.engine);
        imports::add_host_to_linker(&mut linker).map_err(LoadError::Engine)?;
        imports::add_wasi_to_linker(&mut linker).map_err(LoadError::Engine)?;
        Ok(self.wasi_linker.get_or_init(|| linker))
    }

    /// The machine code of a component: built in, cached, or compiled now
    /// (a build without a compiler runs only the first).
    fn machine_code(
        &self,
        component: &[u8],
        sha256: &str,
    ) -> Result<(Component, Compiled), LoadError> {
        if super::is_builtin(component) || component == DEFAULT_POLICY {
            // SAFETY: host/build.rs wrote these bytes with
            // `Engine::precompile_component` from `DEFAULT_POLICY`; wasmtime
            // checks they suit this engine and CPU before using them.
            match unsafe { Component::deserialize(&self.engine, DEFAULT_POLICY_COMPILED) } {
                Ok(compiled) => return Ok((compiled, Compiled::AtBuild)),
                Err(error) if cfg!(feature = "compiler") => {
                    tracing::info!(%error, "the built-in compiled policy does not suit this machine; compiling")
                }
                Err(error) => return Err(LoadError::BuiltIn(error)),
            }
        }
        if !component.starts_with(COMPONENT_PREAMBLE) {
            return Err(LoadError::NotAComponent(wasmtime::Error::msg(
                "it is neither a component nor a policy precompiled by `sigd policy compile`",
            )));
        }
        self.compiled_now(component, sha256)
    }

    /// A component's machine code, from the cache or compiled now.
    #[cfg(feature = "compiler")]
    fn compiled_now(
        &self,
        component: &[u8],
        sha256: &str,
    ) -> Result<(Component, Compiled), LoadError> {
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

    /// Without a compiler, a component cannot run: it must be precompiled.
    #[cfg(not(feature = "compiler"))]
    fn compiled_now(
        &self,
        _component: &[u8],
        _sha256: &str,
    ) -> Result<(Component, Compiled), LoadError> {
        Err(LoadError::NoCompiler)
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

    /// The sha256 of the component, in hex: the policy's name.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Whether it imports any WASI interface.
    fn imports_wasi(&self, engine: &Engine) -> bool {
        (self.component.component_type().imports(engine)).any(|(name, _)| name.starts_with("wasi:"))
    }
}

/// A compiled, linked policy, ready to answer requests from many threads.
pub struct Policy {
    runtime: Arc<Runtime>,
    pre: BindingsPre<State>,
    /// The sha256 of the component's bytes, in hex; shared with every
    /// decision it makes.
    sha256: Arc<str>,
    compiled: Compiled,
    /// Whether it imports WASI (its instances then get a WASI context).
    wasi: bool,
    /// The operator's settings (JSON) every instance is configured with,
    /// and their sha256.
    settings: Option<(Arc<str>, Arc<str>)>,
    pool: Pool,
}

impl Policy {
    /// Let go of the instances idle for [`IDLE_FOR`](super::pool::IDLE_FOR).
    /// True if that let the last ones go: the policy has been idle that long.
    pub fn trim_idle(&self) -> bool {
        self.pool.trim(super::pool::IDLE_FOR)
    }

    /// The sha256 of the component's bytes, in hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Where its machine code came from.
    pub fn compiled(&self) -> Compiled {
        self.compiled
    }

    /// Whether it imports WASI, and so was linked with it.
    pub fn links_wasi(&self) -> bool {
        self.wasi
    }

    /// This policy, each of its instances configured with `settings` (a
    /// JSON document) before its first request.
    pub fn with_settings(mut self, settings: Option<String>) -> Policy {
        self.settings = settings.map(|text| (Arc::from(sha256_hex(text.as_bytes())), text.into()));
        self
    }

    /// The sha256 of its settings, if it has any.
    pub fn settings_sha256(&self) -> Option<&str> {
        self.settings.as_ref().map(|(sha256, _)| &**sha256)
    }

    /// Decide one request on an instance (see [`Isolation`]) whose imports
    /// reach `processes`. A call that has run a whole epoch tick yields to
    /// the async runtime, so it holds up no other request; past its
    /// deadline it traps.
    pub async fn call(&self, processes: &GuardedTable, request: Request) -> Decision {
        let Request {
            pid,
            body,
            headers,
            caller,
        } = request;
        let calls = HostCalls::new(processes.clone(), headers, Holder::of(&caller));
        self.decide(calls, pid, body, &caller).await
    }

    /// Decide a recorded request again, its host calls answered from its
    /// record (see [`crate::replay`]): nothing reaches a process.
    pub async fn replay(&self, record: &Record) -> Decision {
        let calls = HostCalls::replaying(Recorded::new(record));
        let asked = &record.request;
        (self.decide(calls, asked.pid.clone(), asked.body.bytes(), &asked.caller)).await
    }

    async fn decide(
        &self,
        calls: HostCalls,
        pid: String,
        body: Vec<u8>,
        caller: &Caller,
    ) -> Decision {
        let started = Instant::now();
        let limits = &self.runtime.limits;
        let running = self.runtime.ticker.enter();
        let mut instance = match self.pool.take() {
            Some(mut instance) => {
                instance.prepare(calls, started);
                instance
            }
            None => Instance::new(&self.pre, limits, calls, self.wasi, started),
        };
        let request = WitRequest {
            pid,
            body,
            caller: caller.into(),
        };
        let clock = instance.clock();
        let settings = self.settings.as_ref().map(|(_, text)| &**text);
        let answer = {
            let call = std::pin::pin!(instance.handle_signal(&self.pre, settings, &request));
            let give_up = started.checked_add(limits.wall_clock);
            ticker::clocked(&clock, give_up, call).await
        };
        drop(running);
        instance.log_output(&self.sha256);
        let answer = match answer {
            // Given up on: the instance is dropped mid-call, never reused.
            None => Err(CallError::Limit(Limit::WallClock)),
            Some(answer) => answer
                .map_err(|error| classify(error, instance.memory_hit()))
                .and_then(|wit| Answer::check(wit.status, wit.body, limits.response_bytes)),
        };
        let actions = instance.take_actions();
        let ended = Instant::now();
        // A call that trapped or answered badly may have left the guest's
        // state broken: its instance goes. A sound one may serve again.
        if answer.is_ok() {
            self.pool.keep(instance, ended);
        }
        Decision {
            answer,
            actions,
            took: ended.saturating_duration_since(started),
            policy_sha256: self.sha256.clone(),
            settings_sha256: self.settings.as_ref().map(|(sha256, _)| sha256.clone()),
            fell_back: None,
        }
    }
}

/// How often a policy's memory images are tried before its load fails.
///
/// They are made at load ([`Runtime::link`]), not in the policy's first
/// call. On Linux wasmtime writes each into a memfd and seals it, and the
/// kernel refuses the seal (EBUSY) while something else holds one of the
/// memfd's pages, after waiting for it a while (about 150 ms, by the
/// kernel's source, `memfd_wait_for_pins`; not measured). That happened once
/// in CI, to a 12 MB JavaScript policy: its smoke call failed, as "policy
/// trapped". What held the page was not found; that the hold passes, and
/// that a new memfd (new pages) then succeeds, is the hope behind trying
/// again. Every failure is tried again: the others (no memory, no
/// descriptors) may pass too, and trying costs at most 300 ms of pauses.
const MEMORY_IMAGE_TRIES: u32 = 4;

/// The pause after a first failed try; each next one is this much longer.
const MEMORY_IMAGE_PAUSE: Duration = Duration::from_millis(50);

/// `attempt`, tried up to `tries` times while it fails, `pause` more apart
/// each time (50, 100, 150 ms for the memory images); the last failure if
/// none succeeds.
fn retried(
    tries: u32,
    pause: Duration,
    mut attempt: impl FnMut() -> wasmtime::Result<()>,
) -> wasmtime::Result<()> {
    let mut tried = 1;
    loop {
        match attempt() {
            Err(error) if tried < tries => {
                let error = super::every_cause(&error);
                tracing::warn!(%error, tried, "a policy's initial memory could not be set up; trying again");
                std::thread::sleep(pause * tried);
                tried += 1;
            }
            done => return done,
        }
    }
}

/// Which limit, if any, made a call fail.
fn classify(error: wasmtime::Error, memory_hit: bool) -> CallError {
    if let Some(SettingsRejected(sentence)) = error.downcast_ref::<SettingsRejected>() {
        return CallError::Settings(sentence.clone());
    }
    let limit = match error.downcast_ref::<Trap>() {
        _ if memory_hit => Limit::Memory,
        Some(Trap::Interrupt) => Limit::Deadline,
        Some(Trap::StackOverflow) => Limit::Stack,
        _ => return CallError::Trap(error),
    };
    CallError::Limit(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy call's future is small. The decider's future holds it and
    /// is copied into a box on every request, so all it holds is copied
    /// with it. Before the instantiation a new instance does was boxed
    /// apart, the call's future was 3.7 KiB, the decider's 4.4 KiB; the
    /// old code fails this test (3680 bytes).
    #[test]
    fn a_policy_calls_future_is_small() {
        use crate::kit::simulated::Simulated;
        let runtime = Runtime::new(CallLimits::default(), Isolation::ReuseSound, None).unwrap();
        let policy = runtime.load(crate::policy::DEFAULT_POLICY).unwrap();
        let table = GuardedTable::for_pid(Simulated::from_json("[]").unwrap(), 4242);
        let request = Request {
            pid: "42".into(),
            body: br#"{"signal": 15}"#.to_vec(),
            headers: crate::host_calls::Headers::json_body(),
            caller: Caller::local(Some(0), None),
        };
        let call = policy.call(&table, request);
        let size = std::mem::size_of_val(&call);
        assert!(size <= 1536, "a policy call's future is {size} bytes");
    }

    /// A failing attempt is tried again, up to the count, and the first
    /// success ends it; the last failure is what comes back.
    #[test]
    fn retried_tries_until_success_or_the_count() {
        let busy = |calls: i32| wasmtime::Error::msg(format!("busy {calls}"));
        let mut calls = 0;
        let twice_failed = retried(4, Duration::ZERO, || {
            calls += 1;
            if calls < 3 { Err(busy(calls)) } else { Ok(()) }
        });
        assert!(twice_failed.is_ok());
        assert_eq!(calls, 3);

        let mut calls = 0;
        let always = retried(4, Duration::ZERO, || {
            calls += 1;
            Err(busy(calls))
        });
        assert_eq!(always.map_err(|e| e.to_string()), Err("busy 4".into()));
        assert_eq!(calls, 4);
    }
}
