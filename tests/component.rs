//! The built policy components under wasmtime, with a fake process table
//! behind their imports: every decision of the endpoint's table, checked
//! without a real process or a real signal.

mod common;

use sigd::guard::{Guard, Guarded};
use sigd::policy::{CallError, DEFAULT_POLICY, Limits, Policy, Request, Response, Runtime};
use sigd::process::{KillError, ProcessInfo, ProcessTable, RunState};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// The pid the fake table says sigd runs as.
const SIGD_PID: i32 = 4242;
/// A process the kernel would refuse to let sigd signal (EPERM).
const FOREIGN_PID: i32 = 77;

/// An in-memory process table that records the signals it is asked to send.
#[derive(Clone, Default)]
struct FakeTable {
    processes: Arc<HashMap<i32, ProcessInfo>>,
    sent: Arc<Mutex<Vec<(i32, i32)>>>,
}

impl FakeTable {
    /// pid 1 (init), sigd, a running 42, a zombie 43 and a foreign 77.
    fn new() -> FakeTable {
        let process = |pid, state| ProcessInfo {
            pid,
            ppid: 1,
            pgid: pid,
            sid: pid,
            uid: 0,
            state,
            start_time: 1000,
            command: "fake".into(),
        };
        let processes = [
            process(1, RunState::Sleeping),
            process(SIGD_PID, RunState::Running),
            process(42, RunState::Sleeping),
            process(43, RunState::Zombie),
            process(FOREIGN_PID, RunState::Running),
        ];
        FakeTable {
            processes: Arc::new(processes.into_iter().map(|p| (p.pid, p)).collect()),
            sent: Arc::default(),
        }
    }

    fn sent(&self) -> Vec<(i32, i32)> {
        self.sent.lock().unwrap().clone()
    }
}

impl ProcessTable for FakeTable {
    fn lookup(&self, pid: i32) -> Option<ProcessInfo> {
        self.processes.get(&pid).cloned()
    }

    fn kill(&self, pid: i32, signal: i32) -> Result<(), KillError> {
        match self.processes.get(&pid) {
            None => Err(KillError::NotFound),
            Some(_) if pid == FOREIGN_PID => Err(KillError::PermissionDenied),
            Some(_) => {
                self.sent.lock().unwrap().push((pid, signal));
                Ok(())
            }
        }
    }
}

/// A loaded policy, with a fake table it reaches through a guard for `SIGD_PID`.
struct Loaded {
    policy: Policy,
    processes: Guarded,
    table: FakeTable,
}

fn load(component: &[u8]) -> Loaded {
    let table = FakeTable::new();
    let runtime = Runtime::new(Limits::default(), None).expect("a runtime");
    Loaded {
        policy: runtime.load(component).expect("the component loads"),
        processes: Guard::for_pid(table.clone(), SIGD_PID).into(),
        table,
    }
}

/// (status, code) of one request.
/// One call, run to completion on a shared tokio runtime.
fn call(loaded: &Loaded, request: Request) -> Result<Response, CallError> {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> =
        LazyLock::new(|| tokio::runtime::Runtime::new().expect("a tokio runtime"));
    RUNTIME.block_on(loaded.policy.call(&loaded.processes, request))
}

fn ask(loaded: &Loaded, pid: &str, body: &str) -> (u16, String) {
    let response = call(loaded, request(pid, body)).expect("the policy answers");
    let json: serde_json::Value = serde_json::from_str(&response.body).expect("JSON body");
    let code = json["code"].as_str().unwrap_or_default().to_string();
    if response.status == 200 {
        assert_eq!(json, serde_json::json!({"success": true}));
    } else {
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    (response.status, code)
}

fn request(pid: &str, body: &str) -> Request {
    Request {
        pid: pid.into(),
        body: body.into(),
        headers: vec![("content-type".into(), "application/json".into())],
    }
}

/// Asserts each (pid segment, body) -> (status, code) row.
#[track_caller]
fn assert_rows(loaded: &Loaded, rows: &[(&str, &str, u16, &str)]) {
    for (pid, body, status, code) in rows {
        assert_eq!(
            ask(loaded, pid, body),
            (*status, code.to_string()),
            "{pid} {body}"
        );
    }
}

/// The default policy answers every row of the endpoint's table, and signals
/// exactly the one process it should.
#[test]
fn default_policy_decision_table() {
    let loaded = load(DEFAULT_POLICY);
    let rtmax = nix::libc::SIGRTMAX();
    let rows: &[(&str, &str, u16, &str)] = &[
        ("42", r#"{"signal": 15}"#, 200, ""),
        ("42", &format!(r#"{{"signal": {rtmax}}}"#), 200, ""),
        ("abc", r#"{"signal": 15}"#, 400, "INVALID_PID"),
        ("0", r#"{"signal": 15}"#, 400, "INVALID_PID"),
        ("-5", r#"{"signal": 15}"#, 400, "INVALID_PID"),
        ("99999999999", r#"{"signal": 15}"#, 400, "INVALID_PID"),
        ("42", "not json", 400, "INVALID_REQUEST"),
        ("42", "[15]", 400, "INVALID_REQUEST"),
        ("42", "{}", 400, "INVALID_REQUEST"),
        ("42", r#"{"signal": "15"}"#, 400, "INVALID_REQUEST"),
        ("42", r#"{"signal": 0}"#, 400, "INVALID_SIGNAL"),
        ("42", r#"{"signal": 32}"#, 400, "INVALID_SIGNAL"),
        ("42", r#"{"signal": 33}"#, 400, "INVALID_SIGNAL"),
        (
            "42",
            &format!(r#"{{"signal": {}}}"#, rtmax + 1),
            400,
            "INVALID_SIGNAL",
        ),
        ("42", r#"{"signal": -9}"#, 400, "INVALID_SIGNAL"),
        ("43", r#"{"signal": 15}"#, 400, "PROCESS_NOT_RUNNING"),
        ("999", r#"{"signal": 15}"#, 404, "PROCESS_NOT_FOUND"),
        ("1", r#"{"signal": 15}"#, 403, "PROTECTED_PROCESS"),
        (
            &SIGD_PID.to_string(),
            r#"{"signal": 9}"#,
            403,
            "PROTECTED_PROCESS",
        ),
        (
            &FOREIGN_PID.to_string(),
            r#"{"signal": 15}"#,
            403,
            "PERMISSION_DENIED",
        ),
    ];
    assert_rows(&loaded, rows);
    assert_eq!(loaded.table.sent(), vec![(42, 15), (42, rtmax)]);
}

/// The strict example refuses deliverable signals outside SIGINT/SIGKILL/SIGTERM
/// with 403 SIGNAL_NOT_ALLOWED, and otherwise decides like the default.
#[test]
fn strict_policy_narrows_signals() {
    let loaded = load(&std::fs::read(common::STRICT_POLICY).unwrap());
    assert_rows(
        &loaded,
        &[
            ("42", r#"{"signal": 10}"#, 403, "SIGNAL_NOT_ALLOWED"),
            ("42", r#"{"signal": 1}"#, 403, "SIGNAL_NOT_ALLOWED"),
            ("42", r#"{"signal": 0}"#, 400, "INVALID_SIGNAL"),
            ("999", r#"{"signal": 9}"#, 404, "PROCESS_NOT_FOUND"),
            ("42", r#"{"signal": 2}"#, 200, ""),
            ("42", r#"{"signal": 9}"#, 200, ""),
            ("42", r#"{"signal": 15}"#, 200, ""),
        ],
    );
    assert_eq!(loaded.table.sent(), vec![(42, 2), (42, 9), (42, 15)]);
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
                    assert_eq!(ask(loaded, "42", r#"{"signal": 15}"#).0, 200);
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
        assert!(matches!(call(&trap, "666"), Err(CallError::Trap(_))));
        assert_eq!(call(&trap, "42").unwrap().status, 418);
    }
    let status = load(&common::answering_policy(600, "{}"));
    assert!(matches!(
        call(&status, "666"),
        Err(CallError::BadStatus(600))
    ));
    let body = load(&common::answering_policy(200, "{"));
    assert!(matches!(call(&body, "666"), Err(CallError::BadBody(_))));
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
        call(&huge, "666"),
        Err(CallError::TooLarge(70000))
    ));
}

/// The default policy's machine code comes from the build, not a compile at
/// start-up (on the machine that built it).
#[test]
fn default_policy_is_precompiled() {
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let policy = runtime.load(DEFAULT_POLICY).unwrap();
    assert_eq!(policy.compiled(), sigd::policy::Compiled::AtBuild);
}
