//! The [`Runtime`] every policy shares (the engine, the linker, the epoch
//! ticker, the compiled cache) and a loaded [`Policy`]: compiled (or taken
//! precompiled from the build, or from the cache), type-checked against the
//! WIT world and pre-instantiated. [`Policy::call`] decides one request on
//! an instance from its pool; a call that traps or hits a limit takes only
//! its own instance down.

use super::bindings::{BindingsPre, WitRequest};
use super::imports::{self, State};
use super::pool::{Instance, Pool, SettingsRejected};
use super::ticker::{self, Ticker};
use super::{Answer, Cache, CallError, CallLimits, Compiled, DEFAULT_POLICY, Isolation, Limit};
use super::{LoadError, Request, config, sha256_hex};
use crate::caller::Caller;
use crate::decision::Decision;
use crate::guard::GuardedTable;
use crate::host_calls::HostCalls;
use crate::record::Record;
use crate::replay::Recorded;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Trap};

/// [`DEFAULT_POLICY`] compiled by `host/build.rs` under
/// [`config::compile_config`] for the build machine's CPU (empty when
/// cross-compiling). Used when this machine's CPU can run it.
const DEFAULT_POLICY_COMPILED: &[u8] = include_bytes!(env!("SIGD_POLICY_DEFAULT_COMPILED"));

/// What every policy shares.
pub struct Runtime {
    engine: Engine,
    linker: Linker<State>,
    limits: CallLimits,
    isolation: Isolation,
    ticker: Ticker,
    cache: Option<Cache>,
}

impl Runtime {
    /// An engine and linker for policies under `limits` and `isolation`,
    /// caching compiled policies in `cache` if given.
    pub fn new(
        limits: CallLimits,
        isolation: Isolation,
        cache: Option<Cache>,
    ) -> Result<Arc<Runtime>, LoadError> {
        let mut config = config::compile_config();
        config.max_wasm_stack(limits.stack_bytes);
        let engine = Engine::new(&config).map_err(LoadError::Engine)?;
        let mut linker = Linker::new(&engine);
        imports::add_to_linker(&mut linker).map_err(LoadError::Engine)?;
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
            sha256: unlinked.sha256.into(),
            compiled: unlinked.compiled,
            settings: None,
            pool: Pool::new(self.isolation),
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
    /// The sha256 of the component's bytes, in hex; shared with every
    /// decision it makes.
    sha256: Arc<str>,
    compiled: Compiled,
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
        let calls = HostCalls::new(processes.clone(), headers);
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
                instance.prepare(calls);
                instance
            }
            None => Instance::new(&self.pre, limits, calls),
        };
        let request = WitRequest {
            pid,
            body,
            caller: caller.into(),
        };
        let clock = instance.clock();
        let settings = self.settings.as_ref().map(|(_, text)| &**text);
        let call = instance.handle_signal(&self.pre, settings, &request);
        let answer = ticker::clocked(&clock, limits.wall_clock, call).await;
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
        // A call that trapped or answered badly may have left the guest's
        // state broken: its instance goes. A sound one may serve again.
        if answer.is_ok() {
            self.pool.keep(instance);
        }
        Decision {
            answer,
            actions,
            took: started.elapsed(),
            policy_sha256: self.sha256.clone(),
            settings_sha256: self.settings.as_ref().map(|(sha256, _)| sha256.clone()),
            fell_back: None,
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
