//! The built policy components under wasmtime, with a simulated process
//! table behind their imports: every decision of the endpoint (the
//! conformance suite), concurrency and misbehaviour, checked without a real
//! process or a real signal.

mod common;

use serde_json::{Value, json};
use sigd::caller::Caller;
use sigd::guard::GuardedTable;
use sigd::host_calls::Headers;
use sigd::kit::simulated::Simulated;
use sigd::kit::suite::{self, Outcome};
use sigd::policy::{
    Answer, CallError, CallLimits, DEFAULT_POLICY, Isolation, Limit, Policy, Request, Runtime,
};
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// The runtime the calls here run on.
static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Runtime::new().expect("a tokio runtime"));

/// A loaded policy, with the conformance suite's simulated table (sigd is
/// 4242 in it) behind a guard, as `sigd policy eval` has it.
struct Loaded {
    policy: Policy,
    processes: GuardedTable,
    table: Simulated,
}

fn load(component: &[u8]) -> Loaded {
    load_with(component, CallLimits::default())
}

fn load_with(component: &[u8], limits: CallLimits) -> Loaded {
    let table = Simulated::from_json(suite::TABLE).expect("the simulated table");
    let runtime = Runtime::new(limits, Isolation::ReuseSound, None).expect("a runtime");
    Loaded {
        policy: runtime.load(component).expect("the component loads"),
        processes: sigd::kit::guarded(&table),
        table,
    }
}

/// One call, run to completion.
fn call(loaded: &Loaded, request: Request) -> Result<Answer, CallError> {
    RUNTIME
        .block_on(loaded.policy.call(&loaded.processes, request))
        .answer
}

fn ask(loaded: &Loaded, pid: &str, body: &str) -> (u16, String) {
    let response = call(loaded, request(pid, body)).expect("the policy answers");
    let json: Value = serde_json::from_str(&response.body).expect("JSON body");
    let code = json["code"].as_str().unwrap_or_default().to_string();
    if response.status == 200 {
        assert_eq!(json["success"], json!(true));
    } else {
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    (response.status.as_u16(), code)
}

fn request(pid: &str, body: &str) -> Request {
    Request {
        pid: pid.into(),
        body: body.into(),
        headers: Headers::json_body(),
        caller: Caller::local(Some(0), None),
    }
}

/// One loaded policy answers from many threads at once, each call on its own instance.
#[test]
fn serves_concurrent_calls() {
    let loaded = load(DEFAULT_POLICY);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let loaded = &loaded;
            move || {
                for _ in 0..50 {
                    // 44 survives SIGTERM.
                    assert_eq!(ask(loaded, "44", r#"{"signal": 15}"#).0, 200);
                }
            }
        })
        .collect();
    std::thread::scope(|scope| {
        for thread in threads {
            scope.spawn(thread);
        }
    });
    assert_eq!(loaded.table.sent().len(), 400);
}

/// Traps and malformed answers (bad status, not JSON, too large) are errors
/// for the host to answer (500), not crashes, and the policy answers the next
/// request.
#[test]
fn misbehaviour_is_a_call_error() {
    let call = |loaded: &Loaded, pid: &str| call(loaded, request(pid, "{}"));
    let trap = load(&common::misbehaving_policy("(unreachable)"));
    for _ in 0..3 {
        assert!(matches!(
            call(&trap, common::TRIGGER_PID),
            Err(CallError::Trap(_))
        ));
        assert_eq!(call(&trap, "42").unwrap().status, 418);
    }
    let status = load(&common::answering_policy(600, "{}"));
    assert!(matches!(
        call(&status, common::TRIGGER_PID),
        Err(CallError::BadStatus(600))
    ));
    let body = load(&common::answering_policy(200, "{"));
    assert!(matches!(
        call(&body, common::TRIGGER_PID),
        Err(CallError::BadBody(_))
    ));
    // A 70,000-byte body (zeros from address 2048), past the 64 KiB cap;
    // the record pointing at it sits beyond, at 100,000.
    let huge = load(&common::misbehaving_policy(
        "(drop (memory.grow (i32.const 1)))
         (i32.store16 (i32.const 100000) (i32.const 200))
         (i32.store (i32.const 100004) (i32.const 2048))
         (i32.store (i32.const 100008) (i32.const 70000))
         (i32.const 100000)",
    ));
    assert!(matches!(
        call(&huge, common::TRIGGER_PID),
        Err(CallError::TooLarge(70000))
    ));
}

/// An instance whose memory has grown through three quarters of its room
/// under the cap is not reused: a guest that leaves garbage behind on every
/// call (1 page here, under a 1 MiB cap) is never failed by the memory limit.
/// The guest answers its memory's size, so the test sees both reuse (the
/// size grows from call to call) and recycling (it starts again).
#[test]
fn nearly_full_instances_are_not_reused() {
    let limits = CallLimits {
        memory_bytes: 1 << 20,
        ..CallLimits::default()
    };
    let loaded = load_with(&common::memory_reporting_policy(), limits);
    let pages: Vec<u16> = (0..100)
        .map(|i| {
            let answer = call(&loaded, request(common::TRIGGER_PID, "{}"));
            let answer = answer.unwrap_or_else(|e| panic!("call {i}: {e}"));
            answer.status.as_u16() - 400
        })
        .collect();
    let steps: BTreeSet<i32> = pages
        .windows(2)
        .map(|pair| i32::from(pair[1]) - i32::from(pair[0]))
        .collect();
    assert!(steps.contains(&1), "never reused: {pages:?}");
    assert!(
        steps.iter().any(|step| *step < 0),
        "never recycled: {pages:?}"
    );
    // 1 MiB is 16 pages: no instance came near the cap.
    assert!(pages.iter().all(|p| (2..=13).contains(p)), "{pages:?}");
}

/// Time a call spends waiting does not count against its deadline, but the
/// wall-clock backstop bounds it: a wait longer than the backstop (200 ms
/// here) ends the call with the wall-clock limit, about when it is due, and
/// the policy answers the next request.
#[test]
fn waits_are_bounded_by_the_wall_clock_backstop() {
    let limits = CallLimits {
        wall_clock: std::time::Duration::from_millis(200),
        ..CallLimits::default()
    };
    let loaded = load_with(DEFAULT_POLICY, limits);
    // 44 survives SIGTERM, so the policy waits the whole wait_ms.
    let started = std::time::Instant::now();
    let answer = call(&loaded, request("44", r#"{"signal": 15, "wait_ms": 5000}"#));
    let took = started.elapsed();
    assert!(
        matches!(answer, Err(CallError::Limit(Limit::WallClock))),
        "{answer:?}"
    );
    assert!(
        took >= limits.wall_clock && took < limits.wall_clock * 3,
        "{took:?}"
    );
    assert_eq!(
        ask(&loaded, "44", r#"{"signal": 15, "wait_ms": 50}"#).0,
        200
    );
}

/// The default policy's machine code comes from the build, not a compile at
/// start-up (on the machine that built it).
#[test]
fn default_policy_is_precompiled() {
    let runtime = Runtime::new(CallLimits::default(), Isolation::ReuseSound, None).unwrap();
    let policy = runtime.load(DEFAULT_POLICY).unwrap();
    assert_eq!(policy.compiled(), sigd::policy::Compiled::AtBuild);
}

/// The default policy passes every case of the conformance suite (the
/// endpoint's table, then signal names, scopes, waits and escalation), each
/// on a fresh simulated table, signalling exactly what each case says.
#[test]
fn default_policy_passes_the_conformance_suite() {
    let loaded = load(DEFAULT_POLICY);
    let cases = suite::cases();
    let names: BTreeSet<&str> = cases.iter().map(|case| case.name).collect();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    let mut passed = 0;
    for case in &cases {
        let (outcome, answer) = RUNTIME.block_on(suite::run_case(&loaded.policy, case, None));
        assert_eq!(outcome, Outcome::Passed, "{}: {answer}", case.name);
        passed += 1;
    }
    // Not an empty loop: every case of the spec's table is among them.
    for name in [
        "delivered",
        "pid-zero",
        "body-not-json",
        "zombie",
        "no-such-process",
    ] {
        assert!(names.contains(name), "no case {name}");
    }
    assert_eq!(passed, cases.len());
}

/// WASI is linked only for a policy that imports it: loading the default
/// policy (which imports none) links none, and its instances get no WASI
/// context; loading one that imports WASI links it then, and it still runs.
#[test]
fn wasi_is_linked_only_for_policies_that_import_it() {
    let runtime = Runtime::new(CallLimits::default(), Isolation::ReuseSound, None).unwrap();
    let default = runtime.load(DEFAULT_POLICY).unwrap();
    assert!(!default.links_wasi() && !runtime.links_wasi());
    let probe = std::fs::read(common::WASI_PROBE_POLICY).unwrap();
    let probe = runtime.load(&probe).unwrap();
    assert!(probe.links_wasi() && runtime.links_wasi());
    assert!(!default.links_wasi());
    let table = Simulated::from_json(suite::TABLE).unwrap();
    let processes = sigd::kit::guarded(&table);
    let answer = RUNTIME.block_on(probe.call(&processes, request("42", r#"{"signal": 15}"#)));
    assert!(answer.answer.is_ok(), "{:?}", answer.answer);
}

/// The `policy_cost` bench's boundary alone (`tests/guests/floor`) is like
/// for like: for a request like the bench's (SIGTERM to a process that
/// survives it, from a local caller without a token) it makes the host do
/// what the default policy makes it do, and answers with the same status
/// and body. So what it costs over the same host calls made natively is the
/// boundary's cost, not a different call's. (The bench itself checks the
/// native floor against the component before it measures them.)
#[test]
fn the_floor_policy_calls_and_answers_as_the_default_does() {
    let floor = std::fs::read(common::FLOOR_POLICY).unwrap();
    let (floor, default) = (load(&floor), load(DEFAULT_POLICY));
    let decide = |loaded: &Loaded| {
        let request = request("44", r#"{"signal": 15}"#);
        RUNTIME.block_on(loaded.policy.call(&loaded.processes, request))
    };
    let (floor, default) = (decide(&floor), decide(&default));
    assert_eq!(floor.actions, default.actions);
    assert!(!default.actions.is_empty());
    let (floor, default) = (floor.answer.unwrap(), default.answer.unwrap());
    assert_eq!(default.status, 200);
    assert_eq!((floor.status, &floor.body), (default.status, &default.body));
}

/// The floor policy stops short as the bench's cases say: a body of
/// `answer` makes no host call, `open` only opens (and drops) the process;
/// both answer as the whole call does.
#[test]
fn the_floor_policy_stops_short_when_asked() {
    let floor = load(&std::fs::read(common::FLOOR_POLICY).unwrap());
    let signalled = RUNTIME.block_on(floor.policy.call(&floor.processes, request("44", "{}")));
    let answer = signalled.answer.unwrap();
    for (body, calls) in [("answer", 0), ("open", 2)] {
        let decision = RUNTIME.block_on(floor.policy.call(&floor.processes, request("44", body)));
        assert_eq!(decision.actions[..], signalled.actions[..calls], "{body}");
        assert_eq!(decision.answer.unwrap(), answer, "{body}");
    }
}
