//! The built policy components under wasmtime, with a fake process table
//! behind their imports: every decision of the endpoint's table, checked
//! without a real process or a real signal.

mod common;

use sigd::guard::Guard;
use sigd::policy::{CallError, DEFAULT_POLICY, Policy, Request};
use sigd::process::{KillError, ProcessInfo, ProcessTable, RunState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

fn load(component: &[u8]) -> (Policy, FakeTable) {
    let table = FakeTable::new();
    let policy = Policy::load(component, Guard::for_pid(table.clone(), SIGD_PID))
        .expect("the component loads");
    (policy, table)
}

/// (status, code) of one request.
fn ask(policy: &Policy, pid: &str, body: &str) -> (u16, String) {
    let response = policy
        .call(Request {
            pid: pid.into(),
            body: body.into(),
            headers: vec![("content-type".into(), "application/json".into())],
        })
        .expect("the policy answers");
    let json: serde_json::Value = serde_json::from_str(&response.body).expect("JSON body");
    let code = json["code"].as_str().unwrap_or_default().to_string();
    if response.status == 200 {
        assert_eq!(json, serde_json::json!({"success": true}));
    } else {
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    (response.status, code)
}

/// Asserts each (pid segment, body) -> (status, code) row.
#[track_caller]
fn assert_rows(policy: &Policy, rows: &[(&str, &str, u16, &str)]) {
    for (pid, body, status, code) in rows {
        assert_eq!(
            ask(policy, pid, body),
            (*status, code.to_string()),
            "{pid} {body}"
        );
    }
}

/// The default policy answers every row of the endpoint's table, and signals
/// exactly the one process it should.
#[test]
fn default_policy_decision_table() {
    let (policy, table) = load(DEFAULT_POLICY);
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
    assert_rows(&policy, rows);
    assert_eq!(table.sent(), vec![(42, 15), (42, rtmax)]);
}

/// The strict example refuses deliverable signals outside SIGINT/SIGKILL/SIGTERM
/// with 403 SIGNAL_NOT_ALLOWED, and otherwise decides like the default.
#[test]
fn strict_policy_narrows_signals() {
    let (policy, table) = load(&std::fs::read(common::STRICT_POLICY).unwrap());
    assert_rows(
        &policy,
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
    assert_eq!(table.sent(), vec![(42, 2), (42, 9), (42, 15)]);
}

/// One loaded policy answers from many threads at once, each call on its own instance.
#[test]
fn serves_concurrent_calls() {
    let (policy, table) = load(DEFAULT_POLICY);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let policy = &policy;
            move || {
                for _ in 0..50 {
                    assert_eq!(ask(policy, "42", r#"{"signal": 15}"#).0, 200);
                }
            }
        })
        .collect();
    std::thread::scope(|scope| {
        for thread in threads {
            scope.spawn(thread);
        }
    });
    assert_eq!(table.sent().len(), 400);
}

/// A trapping policy is an error for the host to answer (500), not a crash,
/// and the next call works.
#[test]
fn trap_is_a_call_error() {
    let (policy, _) = load(&common::wat_policy("(unreachable)", ""));
    let request = Request {
        pid: "42".into(),
        body: br#"{"signal": 15}"#.to_vec(),
        headers: vec![],
    };
    for _ in 0..3 {
        assert!(matches!(
            policy.call(request.clone()),
            Err(CallError::Trap(_))
        ));
    }
    let (policy, _) = load(&common::fixed_answer_policy(600, "{}"));
    assert!(matches!(
        policy.call(request.clone()),
        Err(CallError::BadStatus(600))
    ));
    let (policy, _) = load(&common::fixed_answer_policy(200, "{"));
    assert!(matches!(policy.call(request), Err(CallError::BadBody(_))));
}
