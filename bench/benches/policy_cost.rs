//! What the wasm boundary costs per request: the default policy's logic
//! linked natively, against the same logic as a wasm component called on a
//! reused instance (sigd's default) and on a fresh one (`--fresh-instances`),
//! all over the same simulated process table (no syscalls), all inside the
//! same async runtime; and what calling on an async fiber (as sigd does,
//! so a long call yields and a wait suspends) costs a call that returns at
//! once (`fiber`). And the boundary alone (`floor`): a policy that makes
//! the same host calls with none of the logic (`tests/guests/floor`),
//! called as a component and linked natively; the difference is what the
//! component boundary costs whatever a policy decides (and, stopping short,
//! what a call with no host call costs, and what each host call adds); and
//! that call with no host call made straight through wasmtime's bindings
//! (`bindings`), to tell wasmtime's own cost from sigd's runtime around it.
//! Run: `cargo bench -p sigd-bench --bench policy_cost`.

use divan::Bencher;
use sigd::caller::Caller;
use sigd::guard::GuardedTable;
use sigd::host_calls::Headers;
use sigd::kit::simulated::Simulated;
use sigd::policy::{CallLimits, DEFAULT_POLICY, Isolation, Policy, Request, Runtime};
use sigd_bench::Native;
use std::sync::LazyLock;

fn main() {
    divan::main();
}

/// A process 42 that survives SIGTERM, so every call delivers it again.
static PROCESSES: LazyLock<GuardedTable> = LazyLock::new(|| {
    let table = Simulated::from_json(r#"[{"pid": 42, "ignores": [15]}]"#).unwrap();
    GuardedTable::for_pid(table, 4242)
});

/// What Tensorlake's SDK sends.
fn request() -> Request {
    Request {
        pid: "42".into(),
        body: br#"{"signal": 15}"#.to_vec(),
        headers: Headers::json_body(),
        caller: Caller::local(Some(0), None),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn policy(isolation: Isolation) -> Policy {
    let runtime = Runtime::new(CallLimits::default(), isolation, None).unwrap();
    runtime.load(DEFAULT_POLICY).unwrap()
}

/// The logic linked natively: the baseline.
#[divan::bench]
fn native(bencher: Bencher) {
    let (runtime, native) = (runtime(), Native::default());
    bencher.with_inputs(request).bench_local_values(|request| {
        runtime.block_on(async { native.call(&PROCESSES, request).answer.unwrap() })
    });
}

/// The component, on an instance that answered the call before.
#[divan::bench]
fn wasm_reused(bencher: Bencher) {
    let (runtime, policy) = (runtime(), policy(Isolation::ReuseSound));
    bencher.with_inputs(request).bench_local_values(|request| {
        runtime.block_on(async { policy.call(&PROCESSES, request).await.answer.unwrap() })
    });
}

/// The component, on a fresh instance per call.
#[divan::bench]
fn wasm_fresh(bencher: Bencher) {
    let (runtime, policy) = (runtime(), policy(Isolation::FreshInstance));
    bencher.with_inputs(request).bench_local_values(|request| {
        runtime.block_on(async { policy.call(&PROCESSES, request).await.answer.unwrap() })
    });
}

/// The same host calls, answered the same, with none of the logic
/// (`tests/guests/floor`); and stopping short of them, to tell what each
/// adds: `answer` (no host call), `open` (open-alive and drop), `signal`
/// (open-alive, signal and drop: what the default policy makes).
mod floor {
    use super::{PROCESSES, request, runtime};
    use divan::Bencher;
    use sigd::decision::Decision;
    use sigd::guard::{Authority, Scope};
    use sigd::host_calls::{HostCalls, Target};
    use sigd::policy::{Answer, CallLimits, Isolation, Request, Runtime};
    use std::time::Instant;

    /// How far each case goes: the floor policy reads it from the body.
    const REACH: &[&str] = &["answer", "open", "signal"];

    /// The request of a case.
    pub(super) fn asking(reach: &str) -> Request {
        let mut request = request();
        if reach != "signal" {
            request.body = reach.as_bytes().to_vec();
        }
        request
    }

    /// sigd's host calls, as the floor's two.
    struct Native<'a> {
        calls: &'a mut HostCalls,
        authority: Authority,
    }

    impl sigd_test_guest_floor::Host for Native<'_> {
        type Process = Target;

        fn open_alive(&mut self, pid: i32) -> Option<(Target, bool)> {
            self.calls.open_alive(pid)
        }

        fn signal(&mut self, process: &Target) -> Option<Vec<i32>> {
            let sent = self
                .calls
                .signal(process, 15, Scope::Process, self.authority);
            sent.ok()
        }
    }

    /// The floor policy's call, linked natively (a decision made as
    /// [`sigd_bench::Native`] makes one).
    pub(super) fn decide(request: Request) -> Decision {
        let started = Instant::now();
        let holder = sigd::shares::Holder::of(&request.caller);
        let mut calls = HostCalls::new(PROCESSES.clone(), request.headers, holder);
        let authority = Authority::from(request.caller.peer.credentials.map(|c| c.uid));
        let mut native = Native {
            calls: &mut calls,
            authority,
        };
        let answer = sigd_test_guest_floor::handle(&request.pid, &request.body, &mut native);
        let limit = CallLimits::default().response_bytes;
        Decision {
            answer: Answer::check(answer.status, answer.body, limit),
            actions: calls.take_actions(),
            took: started.elapsed(),
            policy_sha256: "native floor".into(),
            settings_sha256: None,
            fell_back: None,
        }
    }

    /// Natively.
    #[divan::bench(args = REACH)]
    fn native(bencher: Bencher, reach: &str) {
        let runtime = runtime();
        bencher
            .with_inputs(|| asking(reach))
            .bench_local_values(|request| {
                runtime.block_on(async { decide(request).answer.unwrap() })
            });
    }

    /// As a component, on a reused instance; first checked against the
    /// native floor: the same host calls, the same answer.
    #[divan::bench(args = REACH)]
    fn wasm_reused(bencher: Bencher, reach: &str) {
        let component = std::fs::read(sigd_test_guests::FLOOR_POLICY).unwrap();
        let runtime = Runtime::new(CallLimits::default(), Isolation::ReuseSound, None).unwrap();
        let policy = runtime.load(&component).unwrap();
        let tokio = super::runtime();
        let wasm = tokio.block_on(policy.call(&PROCESSES, asking(reach)));
        let native = decide(asking(reach));
        assert_eq!(wasm.actions, native.actions, "{reach}");
        assert_eq!(wasm.answer.unwrap(), native.answer.unwrap(), "{reach}");
        bencher
            .with_inputs(|| asking(reach))
            .bench_local_values(|request| {
                tokio.block_on(async { policy.call(&PROCESSES, request).await.answer.unwrap() })
            });
    }
}

/// A component call that returns at once, synchronously and on a fiber:
/// what sigd's async calls cost beyond the call itself.
mod fiber {
    use divan::Bencher;
    use wasmtime::component::{Component, Linker, TypedFunc};
    use wasmtime::{Config, Engine, Store};

    /// A component exporting `run: func() -> u32`, importing nothing.
    const COMPONENT: &str = r#"(component
      (core module $m (func (export "run") (result i32) (i32.const 7)))
      (core instance $i (instantiate $m))
      (func (export "run") (result u32) (canon lift (core func $i "run"))))"#;

    fn instance() -> (Store<()>, TypedFunc<(), (u32,)>) {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).unwrap();
        let component = Component::new(&engine, wat::parse_str(COMPONENT).unwrap()).unwrap();
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = Linker::new(&engine)
            .instantiate(&mut store, &component)
            .unwrap();
        let run = instance.get_typed_func(&mut store, "run").unwrap();
        (store, run)
    }

    /// Called synchronously, on the caller's stack.
    #[divan::bench]
    fn sync_call(bencher: Bencher) {
        let (mut store, run) = instance();
        bencher.bench_local(|| run.call(&mut store, ()).unwrap());
    }

    /// Called asynchronously, on a fiber (its stack kept by the store).
    #[divan::bench]
    fn async_call(bencher: Bencher) {
        let (mut store, run) = instance();
        let runtime = super::runtime();
        bencher.bench_local(|| runtime.block_on(run.call_async(&mut store, ())).unwrap());
    }

    /// What the `block_on` around `async_call` costs alone.
    #[divan::bench]
    fn block_on_alone(bencher: Bencher) {
        let runtime = super::runtime();
        bencher.bench_local(|| runtime.block_on(async { 7 }));
    }
}

/// The floor's call that makes no host call (`answer`), straight through
/// wasmtime's generated bindings: no pool, clock, ticker, host calls or
/// answer check, only wasmtime lowering the request, running the guest
/// and lifting its answer. Against `floor/wasm_reused/answer`, what sigd's
/// runtime adds around wasmtime's own call.
mod bindings {
    use divan::Bencher;
    use wasmtime::component::{Component, Linker};
    use wasmtime::{Engine, Store};

    /// As sigd binds the guest (its calls async), and synchronously.
    mod called_async {
        wasmtime::component::bindgen!({ path: "../wit", world: "policy", exports: { default: async } });
    }
    mod called_sync {
        wasmtime::component::bindgen!({ path: "../wit", world: "policy" });
    }

    /// The floor component in a store of its own, its imports traps (the
    /// `answer` case calls none), with sigd's engine configuration.
    fn floor() -> (Store<()>, Component, Linker<()>) {
        let runtime = sigd::policy::Runtime::new(
            sigd::policy::CallLimits::default(),
            sigd::policy::Isolation::ReuseSound,
            None,
        )
        .unwrap();
        let engine: Engine = runtime.engine().clone();
        let bytes = std::fs::read(sigd_test_guests::FLOOR_POLICY).unwrap();
        let component = Component::new(&engine, bytes).unwrap();
        let mut linker = Linker::new(&engine);
        linker.define_unknown_imports_as_traps(&component).unwrap();
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        (store, component, linker)
    }

    /// The request of `floor/*/answer` (`floor::asking("answer")`, its
    /// caller `Caller::local(Some(0), None)`), in a binding's types.
    macro_rules! answer_request {
        ($binding:ident) => {{
            use $binding::exports::sigd::policy::handler as wit;
            wit::Request {
                pid: "42".into(),
                body: b"answer".to_vec(),
                caller: wit::Caller {
                    principal: None,
                    peer: Some(wit::Credentials {
                        pid: None,
                        uid: 0,
                        gid: None,
                    }),
                    transport: wit::Transport::Tcp("127.0.0.1:0".into()),
                },
            }
        }};
    }

    /// Check that the guest answered as the native floor does, then
    /// bench its calls.
    fn answered_as_natively(status: u16, body: String) {
        use sigd::policy::{Answer, CallLimits};
        let answer = Answer::check(status, body, CallLimits::default().response_bytes);
        let native = super::floor::decide(super::floor::asking("answer")).answer;
        assert_eq!(answer.unwrap(), native.unwrap());
    }

    /// On a fiber, inside a `block_on`, as sigd calls.
    #[divan::bench]
    fn async_answer(bencher: Bencher) {
        let (mut store, component, linker) = floor();
        let runtime = super::runtime();
        let instance = called_async::Policy::instantiate_async(&mut store, &component, &linker);
        let policy = runtime.block_on(instance).unwrap();
        let handler = policy.sigd_policy_handler();
        let request = answer_request!(called_async);
        let first = runtime.block_on(handler.call_handle_signal(&mut store, &request));
        let first = first.unwrap();
        answered_as_natively(first.status, first.body);
        bencher
            .with_inputs(|| answer_request!(called_async))
            .bench_local_values(|request| {
                let answer = runtime.block_on(handler.call_handle_signal(&mut store, &request));
                answer.unwrap().status
            });
    }

    /// On the caller's stack.
    #[divan::bench]
    fn sync_answer(bencher: Bencher) {
        let (mut store, component, linker) = floor();
        let policy = called_sync::Policy::instantiate(&mut store, &component, &linker).unwrap();
        let handler = policy.sigd_policy_handler();
        let request = answer_request!(called_sync);
        let first = handler.call_handle_signal(&mut store, &request).unwrap();
        answered_as_natively(first.status, first.body);
        bencher
            .with_inputs(|| answer_request!(called_sync))
            .bench_local_values(|request| {
                let answer = handler.call_handle_signal(&mut store, &request);
                answer.unwrap().status
            });
    }
}
