//! The decision logic against a process table in memory.

use super::*;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A process table in memory that records what it was asked to do, and
/// applies kill(2)'s rule to signals sent on behalf of a uid, as sigd does.
#[derive(Default)]
struct FakeHost {
    /// pid -> running?
    processes: HashMap<i32, bool>,
    /// pid -> (real uid, command); uid 0 and "fake" if not given.
    owners: HashMap<i32, (u32, &'static str)>,
    /// What `signal` answers for a pid, when not `Ok`.
    refusals: HashMap<i32, KillError>,
    /// What `escalate` answers for a pid, when not `Ok`.
    escalate_refusals: HashMap<i32, KillError>,
    /// The pids a signal to a pid reaches, when not just its own.
    reach: HashMap<i32, Vec<i32>>,
    /// How processes end when waited for.
    exits: HashMap<i32, Exit>,
    log: Rc<RefCell<Vec<String>>>,
}

struct FakeProcess {
    pid: i32,
    running: bool,
    owner: (u32, &'static str),
    escalate_refusal: Option<KillError>,
    reach: Option<Vec<i32>>,
    refusal: Option<KillError>,
    exit: Option<Exit>,
    log: Rc<RefCell<Vec<String>>>,
}

impl Host for FakeHost {
    type Process = FakeProcess;
    fn realtime_signals(&self) -> RangeInclusive<i32> {
        34..=64
    }
    fn open_alive(&self, pid: i32) -> Option<(FakeProcess, bool)> {
        let process = self.open(pid)?;
        let running = process.running;
        Some((process, running))
    }
    fn open_with_info(&self, pid: i32) -> Option<(FakeProcess, Target)> {
        let process = self.open(pid)?;
        self.log.borrow_mut().push(format!("info {pid}"));
        let target = Target {
            running: process.running,
            uid: process.owner.0,
            command: process.owner.1.to_string(),
        };
        Some((process, target))
    }
}

impl FakeHost {
    fn open(&self, pid: i32) -> Option<FakeProcess> {
        Some(FakeProcess {
            pid,
            running: *self.processes.get(&pid)?,
            owner: self.owners.get(&pid).copied().unwrap_or((0, "fake")),
            escalate_refusal: self.escalate_refusals.get(&pid).copied(),
            reach: self.reach.get(&pid).cloned(),
            refusal: self.refusals.get(&pid).copied(),
            exit: self.exits.get(&pid).copied(),
            log: self.log.clone(),
        })
    }
}

impl Process for FakeProcess {
    fn signal(
        &self,
        signal: i32,
        scope: Scope,
        on_behalf_of: Option<u32>,
    ) -> Result<Vec<i32>, KillError> {
        if let Some(error) = self.refusal {
            return Err(error);
        }
        if on_behalf_of.is_some_and(|uid| uid != 0 && uid != self.owner.0) {
            return Err(KillError::NotPermitted);
        }
        let mut log = format!("signal {} {signal} {}", self.pid, scope.as_str());
        if let Some(uid) = on_behalf_of {
            log.push_str(&format!(" as uid {uid}"));
        }
        self.log.borrow_mut().push(log);
        Ok(self.reach.clone().unwrap_or_else(|| vec![self.pid]))
    }
    fn escalate(
        &self,
        after_ms: u32,
        signal: i32,
        scope: Scope,
        on_behalf_of: Option<u32>,
    ) -> Result<(), KillError> {
        let mut log = format!(
            "escalate {} {after_ms} {signal} {}",
            self.pid,
            scope.as_str()
        );
        if let Some(uid) = on_behalf_of {
            log.push_str(&format!(" as uid {uid}"));
        }
        self.log.borrow_mut().push(log);
        self.escalate_refusal.map_or(Ok(()), Err)
    }
    fn wait_exit(&self, timeout_ms: u32) -> Option<Exit> {
        self.log
            .borrow_mut()
            .push(format!("wait {} {timeout_ms}", self.pid));
        self.exit
    }
}

fn host() -> FakeHost {
    let mut host = FakeHost::default();
    host.processes.insert(42, true);
    host.processes.insert(43, false);
    host.processes.insert(1, true);
    host.refusals.insert(1, KillError::Protected);
    host.processes.insert(7, true);
    host.refusals.insert(7, KillError::PermissionDenied);
    host.processes.insert(44, true);
    host.exits.insert(44, Exit::Signal(15));
    host.processes.insert(45, true);
    host.owners.insert(45, (1000, "worker"));
    host.processes.insert(46, true);
    host.owners.insert(46, (1000, "sshd"));
    host
}

/// A caller with a token (so sigd's authority), as root.
fn platform() -> Caller {
    Caller {
        principal: Some("platform".into()),
        uid: Some(0),
    }
}

/// A caller without a token, with this uid (`None`: the kernel cannot tell).
fn local(uid: Option<u32>) -> Caller {
    Caller {
        principal: None,
        uid,
    }
}

/// One request against `host()` from a caller with a token: (status, code
/// or "", what the host was asked).
fn run(rules: &Rules, pid: &str, body: &str) -> (u16, String, Vec<String>) {
    run_as(rules, &Settings::default(), &platform(), pid, body)
}

/// One request against `host()` from `caller` under `settings`.
fn run_as(
    rules: &Rules,
    settings: &Settings,
    caller: &Caller,
    pid: &str,
    body: &str,
) -> (u16, String, Vec<String>) {
    let host = host();
    let response = decide(
        rules,
        settings,
        &host,
        &Request {
            pid,
            body: body.as_bytes(),
            caller,
        },
    );
    let json: Value = serde_json::from_str(&response.body).expect("body is JSON");
    if response.status == 200 {
        assert_eq!(json["success"], json!(true));
        assert!(
            response.body.starts_with(r#"{"success":true"#),
            "{}",
            response.body
        );
    } else {
        assert!(json["error"].as_str().is_some_and(|s| !s.is_empty()));
    }
    let code = json["code"].as_str().unwrap_or_default().to_string();
    (response.status, code, host.log.take())
}

fn body(pid: &str, body: &str) -> Value {
    let host = host();
    let response = decide(
        &Rules::DEFAULT,
        &Settings::default(),
        &host,
        &Request {
            pid,
            body: body.as_bytes(),
            caller: &platform(),
        },
    );
    serde_json::from_str(&response.body).unwrap()
}

/// A valid request to a running process is delivered once and answered 200,
/// with what was done.
#[test]
fn delivers_a_valid_signal() {
    assert_eq!(
        run(&Rules::DEFAULT, "42", r#"{"signal": 15}"#),
        (200, String::new(), vec!["signal 42 15 process".into()])
    );
    assert_eq!(
        body("42", r#"{"signal": 15}"#),
        json!({"success": true, "pid": 42, "signal": 15, "signal_name": "SIGTERM",
               "scope": "process", "delivered_to": [42]})
    );
    assert_eq!(
        run(&Rules::DEFAULT, "42", r#"{"signal": 64}"#).2,
        vec!["signal 42 64 process"]
    );
}

/// Names and numbers give the same result.
#[test]
fn signal_names() {
    for signal in [r#"15"#, r#""SIGTERM""#, r#""TERM""#, r#""term""#] {
        let request = format!(r#"{{"signal": {signal}}}"#);
        assert_eq!(
            run(&Rules::DEFAULT, "42", &request).2,
            vec!["signal 42 15 process"],
            "{signal}"
        );
    }
    assert_eq!(
        run(&Rules::DEFAULT, "42", r#"{"signal": "RTMIN+2"}"#).2,
        vec!["signal 42 36 process"]
    );
    let (status, code, sent) = run(&Rules::DEFAULT, "42", r#"{"signal": "SIGNOPE"}"#);
    assert_eq!(
        (status, code.as_str(), sent.len()),
        (400, "INVALID_SIGNAL", 0)
    );
    let error = body("42", r#"{"signal": "SIGNOPE"}"#)["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("\"SIGTERM\"") && error.contains("RTMIN+2"),
        "{error}"
    );
}

/// Anything but a positive int32 in the path is INVALID_PID, and nothing is sent.
#[test]
fn rejects_bad_pids() {
    for pid in [
        "abc",
        "0",
        "-5",
        "99999999999",
        "2147483648",
        "",
        "+42",
        " 42",
        "4 2",
        "%34%32",
    ] {
        assert_eq!(
            run(&Rules::DEFAULT, pid, r#"{"signal": 15}"#),
            (400, "INVALID_PID".into(), vec![]),
            "{pid:?}"
        );
    }
    assert_eq!(parse_pid("2147483647"), Ok(i32::MAX));
}

/// Bodies that are not an object with an integer or named `signal`, or with
/// malformed extensions, are INVALID_REQUEST.
#[test]
fn rejects_bad_bodies() {
    for body in [
        "",
        "not json",
        "15",
        "[15]",
        "[15, null, null, null]",
        "null",
        "{}",
        r#"{"sig": 15}"#,
        r#"{"signal": 15.5}"#,
        r#"{"signal": null}"#,
        r#"{"signal": true}"#,
        r#"{"signal": [15]}"#,
        r#"{"signal": 15"#,
        r#"{"signal": 15, "scope": "everything"}"#,
        r#"{"signal": 15, "scope": 1}"#,
        r#"{"signal": 15, "wait_ms": -1}"#,
        r#"{"signal": 15, "wait_ms": "100"}"#,
        r#"{"signal": 15, "wait_ms": 30001}"#,
        r#"{"signal": 15, "escalate": 500}"#,
        r#"{"signal": 15, "escalate": {"signal": 9}}"#,
        r#"{"signal": 15, "escalate": {"after_ms": 1.5}}"#,
        r#"{"signal": 15, "wait_ms": 1e10}"#,
        r#"{"signal": 15, "escalate": {"after_ms": 600001}}"#,
    ] {
        assert_eq!(
            run(&Rules::DEFAULT, "42", body),
            (400, "INVALID_REQUEST".into(), vec![]),
            "{body:?}"
        );
    }
    // Unknown fields are ignored, for callers that send more than the spec.
    assert_eq!(
        run(&Rules::DEFAULT, "42", r#"{"signal": 9, "extra": [1]}"#).0,
        200
    );
}

/// A key given twice is refused in every object of the body, however deep
/// and whether sigd reads it or not (before, only the top level was
/// checked: inside `escalate` the last one won): "each field once".
#[test]
fn refuses_a_key_given_twice_at_every_depth() {
    for body in [
        r#"{"signal": 15, "signal": 9}"#,
        r#"{"signal": 15, "escalate": {"after_ms": 5, "after_ms": 600000}}"#,
        r#"{"signal": 15, "escalate": {"after_ms": 5, "signal": 9, "signal": 15}}"#,
        r#"{"signal": 15, "why": {"a": 1, "a": 1}}"#,
        r#"{"signal": 15, "why": [{"a": 1}, {"b": [{"c": 1, "c": 2}]}]}"#,
        r#"{"signal": 15, "why": {"a": 1, "a": 2}}"#,
    ] {
        let answer = self::body("42", body);
        assert_eq!(answer["code"], "INVALID_REQUEST", "{body}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.ends_with("the body is not a JSON object with each field once"),
            "{body}: {error}"
        );
    }
    // The same key in different objects is no repetition.
    let body = r#"{"signal": 15, "why": [{"a": 1}, {"a": 2}], "a": {"a": 3}}"#;
    assert_eq!(run(&Rules::DEFAULT, "42", body).0, 200);
}

/// Of two faults in a body, a key given twice and JSON that does not parse,
/// the one that comes first is answered, at any depth: a repeated key is
/// refused when it is read, before its value.
#[test]
fn the_first_fault_in_a_body_is_answered() {
    let twice = "the body is not a JSON object with each field once";
    let unparsed = "the body is not valid JSON";
    for (body, expected) in [
        (r#"{"a":1,"a":2"#, twice),
        (r#"{"signal":15,"a":{"b":1,"b":2}} x"#, twice),
        (r#"{"signal":15,"escalate":{"signal":9,"signal":x}}"#, twice),
        (r#"{"signal":1,"signal":x}"#, twice),
        (r#"{"signal":15,"signal":1e400}"#, twice),
        (r#"{"signal":x,"signal":1}"#, unparsed),
        (r#"{"signal":15,"a":[x],"a":1}"#, unparsed),
    ] {
        let answer = self::body("42", body);
        let error = answer["error"].as_str().unwrap();
        assert!(error.ends_with(expected), "{body}: {error}");
    }
}

/// Numbers and names Linux does not deliver are INVALID_SIGNAL, checked
/// before the process.
#[test]
fn rejects_undeliverable_signals() {
    for signal in [
        "0",
        "-1",
        "-15",
        "32",
        "33",
        "65",
        "4294967311",
        "99999999999999999999",
        r#""15""#,
        r#""RTMIN+31""#,
        r#""""#,
    ] {
        let body = format!(r#"{{"signal": {signal}}}"#);
        assert_eq!(
            run(&Rules::DEFAULT, "999", &body),
            (400, "INVALID_SIGNAL".into(), vec![]),
            "{signal}"
        );
    }
    let bad_escalation = r#"{"signal": 15, "escalate": {"after_ms": 5, "signal": "NOPE"}}"#;
    assert_eq!(
        run(&Rules::DEFAULT, "42", bad_escalation).1,
        "INVALID_SIGNAL"
    );
}

/// Missing, exited, protected and forbidden targets map to their codes.
#[test]
fn maps_process_outcomes() {
    let body = r#"{"signal": 15}"#;
    assert_eq!(
        run(&Rules::DEFAULT, "999", body),
        (404, "PROCESS_NOT_FOUND".into(), vec![])
    );
    assert_eq!(
        run(&Rules::DEFAULT, "43", body),
        (400, "PROCESS_NOT_RUNNING".into(), vec![])
    );
    assert_eq!(
        run(&Rules::DEFAULT, "1", body),
        (403, "PROTECTED_PROCESS".into(), vec![])
    );
    assert_eq!(
        run(&Rules::DEFAULT, "7", body),
        (403, "PERMISSION_DENIED".into(), vec![])
    );
}

/// Scope, escalation and wait are passed to the host as asked, and reported.
#[test]
fn scope_escalation_and_wait() {
    let request = r#"{"signal": "TERM", "scope": "tree",
                      "escalate": {"after_ms": 5000, "signal": "KILL"}, "wait_ms": 100}"#;
    assert_eq!(
        run(&Rules::DEFAULT, "44", request).2,
        vec![
            "signal 44 15 tree",
            "escalate 44 5000 9 tree",
            "wait 44 100"
        ]
    );
    let answer = body("44", request);
    assert_eq!(answer["escalation"], json!({"after_ms": 5000, "signal": 9}));
    assert_eq!(answer["exit"], json!({"exited": true, "signal": 15}));
    assert_eq!(
        body("42", r#"{"signal": 15, "wait_ms": 10}"#)["exit"],
        json!({"exited": false, "waited_ms": 10})
    );
    // An escalation without a signal sends SIGKILL.
    assert_eq!(
        run(
            &Rules::DEFAULT,
            "42",
            r#"{"signal": 15, "escalate": {"after_ms": 1}}"#
        )
        .2[1],
        "escalate 42 1 9 process"
    );
}

/// Rules narrow signals (escalation signals too) and scopes, still after validation.
#[test]
fn rules_restrict_signals_and_scopes() {
    let strict = Rules {
        allowed_signals: Some(&[2, 9, 15]),
        allowed_scopes: &[Scope::Process],
        ..Rules::DEFAULT
    };
    assert_eq!(run(&strict, "42", r#"{"signal": 9}"#).0, 200);
    assert_eq!(
        run(&strict, "42", r#"{"signal": 10}"#),
        (403, "SIGNAL_NOT_ALLOWED".into(), vec![])
    );
    let escalate_to_usr1 = r#"{"signal": 15, "escalate": {"after_ms": 1, "signal": 10}}"#;
    assert_eq!(run(&strict, "42", escalate_to_usr1).1, "SIGNAL_NOT_ALLOWED");
    assert_eq!(run(&strict, "42", r#"{"signal": 0}"#).1, "INVALID_SIGNAL");
    assert_eq!(
        run(&strict, "42", r#"{"signal": 15, "scope": "group"}"#),
        (403, "SCOPE_NOT_ALLOWED".into(), vec![])
    );
    let group_by_default = Rules {
        default_scope: Scope::Group,
        ..Rules::DEFAULT
    };
    assert_eq!(
        run(&group_by_default, "42", r#"{"signal": 15}"#).2,
        vec!["signal 42 15 group"]
    );
}

/// A delivered signal is never answered as a failure: an escalation the
/// host finds nothing to do for (the target was reaped at once) is answered
/// 200 with `"scheduled": false`, and a scope of thousands is listed up to
/// MAX_LISTED pids with their count.
#[test]
fn delivered_signals_are_answered_as_delivered() {
    let mut host = host();
    host.processes.insert(49, true);
    host.reach.insert(49, (1000..2500).collect());
    let ask = |host: &FakeHost, pid: &str, body: &str| {
        let response = decide(
            &Rules::DEFAULT,
            &Settings::default(),
            host,
            &Request {
                pid,
                body: body.as_bytes(),
                caller: &platform(),
            },
        );
        (
            response.status,
            serde_json::from_str::<Value>(&response.body).unwrap(),
        )
    };
    let (status, answer) = ask(
        &host,
        "44",
        r#"{"signal": 15, "escalate": {"after_ms": 5}}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(answer["escalation"], json!({"after_ms": 5, "signal": 9}));
    host.escalate_refusals.insert(44, KillError::NotFound);
    let (status, answer) = ask(
        &host,
        "44",
        r#"{"signal": 15, "escalate": {"after_ms": 5}}"#,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["escalation"],
        json!({"after_ms": 5, "signal": 9, "scheduled": false})
    );
    let (status, answer) = ask(&host, "49", r#"{"signal": 9, "scope": "tree"}"#);
    assert_eq!(status, 200);
    assert_eq!(answer["delivered_count"], 1500);
    assert_eq!(answer["delivered_to"].as_array().unwrap().len(), MAX_LISTED);
    assert!(
        ask(&host, "42", r#"{"signal": 9}"#)
            .1
            .get("delivered_count")
            .is_none()
    );
}

/// A caller without a token is held to kill(2): its signals go on behalf of
/// its uid (root's too), so it reaches its own processes and not others';
/// one the kernel cannot tell may signal nothing; a token gives sigd's
/// authority.
#[test]
fn callers_without_a_token_are_held_to_kill() {
    let none = Settings::default();
    let rules = Rules::DEFAULT;
    let term = r#"{"signal": 15}"#;
    assert_eq!(
        run_as(&rules, &none, &local(Some(1000)), "45", term),
        (
            200,
            String::new(),
            vec!["signal 45 15 process as uid 1000".into()]
        )
    );
    assert_eq!(
        run_as(&rules, &none, &local(Some(1000)), "42", term),
        (403, "NOT_PERMITTED".into(), vec![])
    );
    assert_eq!(
        run_as(&rules, &none, &local(Some(0)), "42", term).2,
        vec!["signal 42 15 process as uid 0"]
    );
    assert_eq!(
        run_as(&rules, &none, &local(None), "45", term),
        (403, "NOT_PERMITTED".into(), vec![])
    );
    let escalate = r#"{"signal": 15, "escalate": {"after_ms": 5}}"#;
    assert_eq!(
        run_as(&rules, &none, &local(Some(1000)), "45", escalate).2[1],
        "escalate 45 5 9 process as uid 1000"
    );
    assert_eq!(run(&rules, "45", term).2, vec!["signal 45 15 process"]);
}

/// Settings grant and limit callers by principal or uid, first rule first,
/// protect targets by command or uid, and every refusal names its rule.
#[test]
fn settings_grant_limit_and_protect() {
    let realtime = 34..=64;
    let settings = Settings::parse(
        Some(
            r#"{"rules": [
                {"principal": "ci", "signals": ["TERM", 2], "scopes": ["process"],
                 "target_uids": [1000], "max_wait_ms": 100},
                {"uid": 1000, "authority": "sigd", "target_commands": ["worker", "fake"]},
                {"uid": 1001, "signals": []},
                {"principal": "*", "authority": "caller"}
            ], "protect": {"commands": ["sshd"]}}"#,
        ),
        &realtime,
    )
    .unwrap();
    let ci = Caller {
        principal: Some("ci".into()),
        uid: Some(0),
    };
    let rules = Rules::DEFAULT;
    let ask = |caller: &Caller, pid: &str, body: &str| run_as(&rules, &settings, caller, pid, body);
    let (status, code, sent) = ask(&ci, "45", r#"{"signal": 15}"#);
    assert_eq!((status, code.as_str()), (200, ""));
    assert_eq!(sent, vec!["info 45", "signal 45 15 process"]);
    assert_eq!(ask(&ci, "45", r#"{"signal": 9}"#).1, "SIGNAL_NOT_ALLOWED");
    assert_eq!(
        ask(&ci, "45", r#"{"signal": 15, "scope": "tree"}"#).1,
        "SCOPE_NOT_ALLOWED"
    );
    assert_eq!(
        ask(&ci, "45", r#"{"signal": 15, "wait_ms": 500}"#).1,
        "WAIT_NOT_ALLOWED"
    );
    assert_eq!(ask(&ci, "42", r#"{"signal": 15}"#).1, "TARGET_NOT_ALLOWED");
    // uid 1000 gets sigd's authority, for the commands it names.
    assert_eq!(
        ask(&local(Some(1000)), "42", r#"{"signal": 15}"#)
            .2
            .last()
            .unwrap(),
        "signal 42 15 process"
    );
    assert_eq!(
        ask(&local(Some(1000)), "46", r#"{"signal": 15}"#).1,
        "PROTECTED_PROCESS"
    );
    assert_eq!(
        ask(&local(Some(1001)), "45", r#"{"signal": 15}"#).1,
        "SIGNAL_NOT_ALLOWED"
    );
    // Target rules judge the named process only: no group or tree under them.
    assert_eq!(
        ask(
            &local(Some(1000)),
            "45",
            r#"{"signal": 15, "scope": "tree"}"#
        )
        .1,
        "SCOPE_NOT_ALLOWED"
    );
    // Any other token is held to kill(2) by the last rule.
    let other = Caller {
        principal: Some("other".into()),
        uid: Some(1002),
    };
    assert_eq!(ask(&other, "42", r#"{"signal": 15}"#).1, "NOT_PERMITTED");
    // Refusals say which rule refused.
    let host = host();
    let response = decide(
        &rules,
        &settings,
        &host,
        &Request {
            pid: "45",
            body: br#"{"signal": 9}"#,
            caller: &ci,
        },
    );
    assert!(
        response
            .body
            .contains(r#"settings rule 1 (principal \"ci\") does not allow signal 9"#),
        "{}",
        response.body
    );
}

/// Settings that are not what they should be are refused with a sentence
/// that says where.
#[test]
fn bad_settings_are_refused_with_a_sentence() {
    let realtime = 34..=64;
    for (settings, says) in [
        ("[]", "a JSON object"),
        ("[[], {}]", "a JSON object"),
        (r#"{"rule": []}"#, "unknown field"),
        (r#"{"rules": [{"uid": -1}]}"#, "not valid"),
        (
            r#"{"rules": [{"signals": ["SIGFOO"]}]}"#,
            "rules[0]: \"signals\"",
        ),
        (
            r#"{"rules": [{"scopes": ["world"]}]}"#,
            "rules[0]: \"scopes\"",
        ),
        (
            r#"{"rules": [{}, {"authority": "root"}]}"#,
            "rules[1]: \"authority\"",
        ),
        (r#"{"rules": [{"uid": 1, "uid": 2}]}"#, "duplicate field"),
    ] {
        let error = Settings::parse(Some(settings), &realtime).unwrap_err();
        assert!(error.contains(says), "{settings}: {error}");
    }
    assert_eq!(Settings::parse(None, &realtime), Ok(Settings::default()));
}

/// Caller input echoed in an error sentence is cut short and stays valid JSON.
#[test]
fn echoes_input_safely() {
    let long = "\"x".repeat(100);
    let response = Rejection::InvalidPid(long).response();
    let json: Value = serde_json::from_str(&response.body).unwrap();
    assert!(json["error"].as_str().unwrap().len() < 120);
}

/// A target the settings do not allow is refused without a word of what
/// it is: the caller may not be able to see the process at all (another
/// user's, under `hidepid`), and its uid and command are only the
/// record's. Before, the sentence named both, so any caller a rule named
/// could list every process's owner and command.
#[test]
fn a_target_refused_by_settings_is_not_described() {
    let settings = Settings::parse(
        Some(r#"{"rules": [{"uid": 65534, "authority": "sigd", "target_commands": ["worker"]}]}"#),
        &(34..=64),
    )
    .unwrap();
    let mut host = host();
    host.processes.insert(47, true);
    host.owners.insert(47, (1000, "secret-db"));
    let response = decide(
        &Rules::DEFAULT,
        &settings,
        &host,
        &Request {
            pid: "47",
            body: br#"{"signal": 15}"#,
            caller: &local(Some(65534)),
        },
    );
    assert_eq!(response.status, 403);
    assert!(
        response.body.contains("TARGET_NOT_ALLOWED"),
        "{}",
        response.body
    );
    assert!(
        !response.body.contains("1000") && !response.body.contains("secret-db"),
        "{}",
        response.body
    );
}
