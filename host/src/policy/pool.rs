//! The instances of one policy: each with its own store (memory limiter,
//! deadline clock, and for a policy that imports WASI its captured output),
//! reused for the next call when it answered well and [`Isolation`] allows,
//! within the pool's bounds.

use super::bindings::{Bindings, BindingsPre, WitRequest, WitResponse};
use super::guest_output::{self, GuestOutput};
use super::imports::State;
use super::limiter::MemoryLimiter;
use super::ticker::{self, GuestClock};
use super::{CallLimits, Isolation};
use crate::host_calls::{Action, HostCalls};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::WasiCtx;

/// Instances kept idle per policy, at most.
const MAX_IDLE: usize = 64;
/// How long an instance may stay idle before [`Pool::trim`] lets it go:
/// after a burst, sigd's memory comes back to its idle level.
pub const IDLE_FOR: Duration = Duration::from_secs(10);
/// Calls one instance serves before it is replaced, bounding whatever a
/// guest may accumulate (memory it never frees, WASI resources it keeps).
const MAX_CALLS: u64 = 10_000;

/// Instances that answered well, for the next calls: the one kept last is
/// taken first, so the oldest idle ones are at the bottom.
pub(super) struct Pool {
    isolation: Isolation,
    idle: Mutex<Vec<(Instant, Instance)>>,
}

impl Pool {
    pub(super) fn new(isolation: Isolation) -> Pool {
        Pool {
            isolation,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An instance that answered well before, if one is idle.
    pub(super) fn take(&self) -> Option<Instance> {
        self.lock().pop().map(|(_, instance)| instance)
    }

    /// Let go of the instances idle for `idle_for` or longer. True if
    /// that let the last ones go: the policy has been idle that long.
    pub(super) fn trim(&self, idle_for: Duration) -> bool {
        let (gone, left): (Vec<_>, usize) = {
            let mut idle = self.lock();
            let keep_from = idle.partition_point(|(since, _)| since.elapsed() >= idle_for);
            (idle.drain(..keep_from).collect(), idle.len())
        };
        !gone.is_empty() && left == 0 // `gone` is dropped here, outside the lock
    }

    /// Put an instance that answered well back for the next call (its call
    /// ended `ended`), unless isolation forbids it, it still holds a process
    /// handle, it has served its share of calls or grown nearly full, or
    /// the pool is full.
    pub(super) fn keep(&self, mut instance: Instance, ended: Instant) {
        if self.isolation == Isolation::FreshInstance
            || instance.calls >= MAX_CALLS
            || instance.store.data().open_processes > 0
            || instance.store.data_mut().limiter.nearly_full()
        {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            // `trim` needs the idle list in order of time; a call that
            // ended a moment before one kept ahead of it counts from then.
            let since = idle.last().map_or(ended, |(last, _)| ended.max(*last));
            idle.push((since, instance));
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Instant, Instance)>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One instance of a policy: its store, its bindings once instantiated, and
/// its stdout and stderr (a policy that imports no WASI has neither: it
/// cannot write, so nothing is drained and logged after its calls).
pub(super) struct Instance {
    store: Store<State>,
    handler: Option<Bindings>,
    output: Option<(GuestOutput, GuestOutput)>,
    calls: u64,
}

impl Instance {
    /// A store ready for its first call, `calls` (instantiated on that
    /// call, inside the deadline), with a WASI context if `wasi`.
    pub(super) fn new(
        pre: &BindingsPre<State>,
        limits: &CallLimits,
        calls: HostCalls,
        wasi: bool,
        started: Instant,
    ) -> Instance {
        let output = wasi.then(|| {
            (
                GuestOutput::new(limits.output_bytes),
                GuestOutput::new(limits.output_bytes),
            )
        });
        let wasi = output.as_ref().map(|(stdout, stderr)| {
            WasiCtx::builder()
                .stdout(stdout.clone())
                .stderr(stderr.clone())
                .build()
        });
        let state = State {
            calls,
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            clock: GuestClock::default(),
            open_processes: 0,
        };
        let mut store = Store::new(pre.engine(), state);
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
        let mut instance = Instance {
            store,
            handler: None,
            output,
            calls: 0,
        };
        instance.start(started);
        instance
    }

    /// Set a reused store up for the call `calls`, which started at `started`.
    pub(super) fn prepare(&mut self, calls: HostCalls, started: Instant) {
        self.store.data_mut().calls = calls;
        self.start(started);
    }

    /// Start a call's clock (from `started`) and epoch deadline.
    fn start(&mut self, started: Instant) {
        self.calls += 1;
        self.store.data().clock.start(started);
        self.store.set_epoch_deadline(1);
    }

    /// The clock of the guest's running time in this call.
    pub(super) fn clock(&self) -> GuestClock {
        self.store.data().clock.clone()
    }

    /// Call the guest's `handle-signal`, instantiating it first (and
    /// giving it `settings` through `configure`) if this is the instance's
    /// first call.
    pub(super) async fn handle_signal(
        &mut self,
        pre: &BindingsPre<State>,
        settings: Option<&str>,
        request: &WitRequest,
    ) -> wasmtime::Result<WitResponse> {
        let handler = match self.handler.take() {
            Some(handler) => handler,
            // Boxed: instantiating is most of this future's size, and a
            // reused instance never does it; unboxed, every call's future
            // carried it into the decider's box.
            None => Box::pin(self.instantiate(pre, settings)).await?,
        };
        let answer = handler
            .sigd_policy_handler()
            .call_handle_signal(&mut self.store, request)
            .await;
        self.handler = Some(handler);
        answer
    }

    /// Instantiate the guest and give it `settings` through `configure`.
    async fn instantiate(
        &mut self,
        pre: &BindingsPre<State>,
        settings: Option<&str>,
    ) -> wasmtime::Result<Bindings> {
        let handler = pre.instantiate_async(&mut self.store).await?;
        let configure = handler
            .sigd_policy_handler()
            .call_configure(&mut self.store, settings);
        if let Err(sentence) = configure.await? {
            return Err(wasmtime::Error::new(SettingsRejected(sentence)));
        }
        Ok(handler)
    }

    /// Whether a memory asked to grow past the cap in this instance.
    pub(super) fn memory_hit(&self) -> bool {
        self.store.data().limiter.hit()
    }

    /// What the guest made the host do in this call.
    pub(super) fn take_actions(&mut self) -> Vec<Action> {
        self.store.data_mut().calls.take_actions()
    }

    /// Log what the guest wrote to stdout and stderr in this call.
    pub(super) fn log_output(&self, policy_sha256: &str) {
        if let Some((stdout, stderr)) = &self.output {
            guest_output::log(policy_sha256, stdout, stderr);
        }
    }
}

/// A policy's `configure` refused its settings, saying why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct SettingsRejected(pub(super) String);

#[cfg(test)]
mod tests {
    use super::super::{CallLimits, DEFAULT_POLICY, Runtime, imports};
    use super::*;
    use crate::guard::GuardedTable;
    use crate::host_calls::Headers;
    use crate::kit::simulated::Simulated;
    use crate::shares::Holder;
    use wasmtime::component::Linker;

    /// Instances kept in another order than their calls ended in stay in
    /// order of time, which `trim` counts on (an instance whose call ended
    /// before one kept ahead of it counts as idle from that one's end); and
    /// `trim` lets go of exactly those idle long enough, the oldest.
    #[test]
    fn kept_instances_stay_in_order_of_time() {
        let runtime = Runtime::new(CallLimits::default(), Isolation::ReuseSound, None).unwrap();
        let unlinked = runtime.compile(DEFAULT_POLICY).unwrap();
        let mut linker = Linker::new(runtime.engine());
        imports::add_host_to_linker(&mut linker).unwrap();
        let pre = linker.instantiate_pre(unlinked.component()).unwrap();
        let pre = BindingsPre::new(pre).unwrap();
        let table = GuardedTable::for_pid(Simulated::from_json("[]").unwrap(), 4242);
        let calls = || HostCalls::new(table.clone(), Headers::json_body(), Holder::Trusted);
        let limits = CallLimits::default();
        let instance = || Instance::new(&pre, &limits, calls(), false, Instant::now());

        let pool = Pool::new(Isolation::ReuseSound);
        let now = Instant::now();
        let earlier = now.checked_sub(Duration::from_secs(1)).unwrap();
        pool.keep(instance(), earlier);
        pool.keep(instance(), now);
        pool.keep(instance(), earlier);
        let idle: Vec<Instant> = pool.lock().iter().map(|(since, _)| *since).collect();
        assert_eq!(idle, [earlier, now, now]);

        assert!(
            !pool.trim(Duration::from_millis(500)),
            "two have not been idle that long"
        );
        let idle: Vec<Instant> = pool.lock().iter().map(|(since, _)| *since).collect();
        assert_eq!(idle, [now, now], "the one idle a second went");
        assert!(pool.trim(Duration::ZERO), "all idle for no time at all");
        assert!(pool.take().is_none());
    }
}
