//! The built policy components under wasmtime, with a fake process table
//! behind their imports: every decision of the endpoint's table, checked
//! without a real process or a real signal.

mod common;

use serde_json::{Value, json};
use sigd::guard::{Guard, Guarded};
use sigd::policy::{
    CallError, DEFAULT_POLICY, Isolation, Limits, Policy, Request, Response, Runtime,
};
use sigd::simulated::{Sent, Simulated};
use std::sync::LazyLock;

/// The pid the simulated table says sigd runs as (see `TABLE`).
const SIGD_PID: i32 = 4242;

/// The simulated processes every test here starts from: init, sigd (under a
/// supervisor 70, in group 60 with 61), 42 that survives the signals these
/// tests send it, a zombie 43, a foreign 77 (EPERM), 44 that survives
/// SIGTERM, and a tree 50 -> 51 -> 52 where 52 called setsid, with 50 and 51
/// in group 50.
const TABLE: &str = r#"[
    {"pid": 1, "ppid": 0, "command": "init"},
    {"pid": 70, "command": "supervisor"},
    {"pid": 4242, "ppid": 70, "pgid": 60, "command": "sigd"},
    {"pid": 61, "pgid": 60},
    {"pid": 42, "state": "sleeping", "ignores": [1, 2, 9, 10, 15, 34, 64]},
    {"pid": 43, "state": "zombie"},
    {"pid": 44, "ignores": [15]},
    {"pid": 77, "permission_denied": true},
    {"pid": 50},
    {"pid": 51, "ppid": 50, "pgid": 50},
    {"pid": 52, "ppid": 51, "pgid": 52}
]"#;

/// A loaded policy, with a simulated table it reaches through a guard for `SIGD_PID`.
struct Loaded {
    policy: Policy,
    processes: Guarded,
    table: Simulated,
}

impl Loaded {
    /// (pid, signal) of every signal sent so far.
    fn sent(&self) -> Vec<(i32, i32)> {
        self.table
            .sent()
            .iter()
            .map(|s| (s.pid, s.signal))
            .collect()
    }
}

fn load(component: &[u8]) -> Loaded {
    let table = Simulated::from_json(TABLE).expect("the simulated table");
    let runtime = Runtime::new(Limits::default(), Isolation::ReuseSound, None).expect("a runtime");
    Loaded {
        policy: runtime.load(component).expect("the component loads"),
        processes: Guard::for_pid(table.clone(), SIGD_PID).into(),
        table,
    }
}

/// One call, run to completion on a shared tokio runtime.
fn call(loaded: &Loaded, request: Request) -> Result<Response, CallError> {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> =
        LazyLock::new(|| tokio::runtime::Runtime::new().expect("a tokio runtime"));
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
        ("42", r#"{"signal": [15]}"#, 400, "INVALID_REQUEST"),
        ("42", r#"{"signal": "15"}"#, 400, "INVALID_SIGNAL"),
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
        ("4242", r#"{"signal": 9}"#, 403, "PROTECTED_PROCESS"),
        ("70", r#"{"signal": 15}"#, 403, "PROTECTED_PROCESS"),
        ("77", r#"{"signal": 15}"#, 403, "PERMISSION_DENIED"),
    ];
    assert_rows(&loaded, rows);
    assert_eq!(loaded.sent(), vec![(42, 15), (42, rtmax)]);
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
    assert_eq!(loaded.sent(), vec![(42, 2), (42, 9), (42, 15)]);
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
    let runtime = Runtime::new(Limits::default(), Isolation::ReuseSound, None).unwrap();
    let policy = runtime.load(DEFAULT_POLICY).unwrap();
    assert_eq!(policy.compiled(), sigd::policy::Compiled::AtBuild);
}

/// `group` reaches the target's process group and `tree` its descendants,
/// a `setsid` grandchild included; one answer says which pids were reached.
#[test]
fn group_and_tree_scopes() {
    let loaded = load(DEFAULT_POLICY);
    let answer = |body: &str| -> Value {
        let response = call(&loaded, request("50", body)).unwrap();
        serde_json::from_str(&response.body).unwrap()
    };
    let group = answer(r#"{"signal": "CONT", "scope": "group"}"#);
    assert_eq!(group["delivered_to"], json!([50, 51]), "{group}");
    assert_eq!(
        loaded.table.sent(),
        vec![Sent {
            pid: 50,
            signal: 18,
            group: true
        }],
        "one syscall for the group, through the target"
    );
    let tree = answer(r#"{"signal": "CONT", "scope": "tree"}"#);
    assert_eq!(tree["delivered_to"], json!([50, 51, 52]), "{tree}");
    assert_eq!(tree["scope"], "tree");
}

/// A group or tree holding sigd, or an ancestor of sigd, is refused whole.
#[test]
fn scopes_holding_sigd_are_refused() {
    let loaded = load(DEFAULT_POLICY);
    assert_rows(
        &loaded,
        &[
            (
                "61",
                r#"{"signal": 15, "scope": "group"}"#,
                403,
                "PROTECTED_PROCESS",
            ),
            (
                "70",
                r#"{"signal": 15, "scope": "tree"}"#,
                403,
                "PROTECTED_PROCESS",
            ),
            ("70", r#"{"signal": 15}"#, 403, "PROTECTED_PROCESS"),
            (
                "4242",
                r#"{"signal": 15, "scope": "tree"}"#,
                403,
                "PROTECTED_PROCESS",
            ),
        ],
    );
    assert_eq!(loaded.sent(), vec![]);
}

/// `wait_ms` reports how the process ended, or that it still runs; time
/// spent waiting does not count against the policy's 50 ms deadline.
#[test]
fn wait_reports_the_exit() {
    let loaded = load(DEFAULT_POLICY);
    let answer = |pid: &str, body: &str| -> Value {
        let response = call(&loaded, request(pid, body)).unwrap();
        serde_json::from_str(&response.body).unwrap()
    };
    let ended = answer("50", r#"{"signal": "TERM", "wait_ms": 1000}"#);
    assert_eq!(ended["exit"], json!({"exited": true, "signal": 15}));
    let survived = answer("44", r#"{"signal": "TERM", "wait_ms": 120}"#);
    assert_eq!(survived["exit"], json!({"exited": false, "waited_ms": 120}));
}

/// Escalation sends the second signal after the delay if the process still
/// runs, and nothing to one that ended in time.
#[test]
fn escalation() {
    let loaded = load(DEFAULT_POLICY);
    let body = r#"{"signal": "TERM", "escalate": {"after_ms": 30, "signal": "KILL"}}"#;
    assert_eq!(ask(&loaded, "44", body), (200, String::new()));
    assert_eq!(ask(&loaded, "51", body), (200, String::new()));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(loaded.sent(), vec![(44, 15), (51, 15), (44, 9)]);
}
