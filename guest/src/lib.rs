//! sigd's default policy: where a Send Signal request is validated.
//!
//! The decision is plain Rust: [`decide`] takes the request, a [`Host`] that
//! can look processes up and send signals, and the [`Rules`] of the policy, and
//! returns the HTTP answer. It compiles natively, so it is unit-tested (and can
//! be fuzzed) without wasm; [`component`] binds it to the WIT world
//! `sigd:policy/policy` for the host to load.
//!
//! Checks run in the order a caller would fix them: the pid in the path, then
//! the body, then the signal number, then the target process, then the kill.

pub mod component;

use serde_json::{Value, json};
use std::ops::RangeInclusive;

/// One Send Signal request, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The `{pid}` path segment, exactly as it arrived.
    pub pid: &'a str,
    /// The body, exactly as it arrived.
    pub body: &'a [u8],
}

/// The HTTP answer: a status and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Why the host did not deliver a signal (mirrors WIT `host.kill-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillError {
    NotFound,
    InvalidSignal,
    Protected,
    PermissionDenied,
    Failed,
}

/// What the policy needs from the host (the WIT `host` interface, narrowed).
pub trait Host {
    /// SIGRTMIN..=SIGRTMAX of the host's libc.
    fn realtime_signals(&self) -> RangeInclusive<i32>;
    /// `None` if no process has this pid; else whether it can still take a
    /// signal (false for a zombie or a dying process).
    fn is_running(&self, pid: i32) -> Option<bool>;
    /// Send `signal` to the process `pid`.
    fn kill(&self, pid: i32, signal: i32) -> Result<(), KillError>;
}

/// What makes one policy differ from another.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The signals this policy lets through; `None` lets through every signal
    /// Linux delivers. Others are refused with 403 `SIGNAL_NOT_ALLOWED`.
    pub allowed_signals: Option<&'static [i32]>,
}

impl Rules {
    /// The endpoint as Tensorlake specifies it: any deliverable signal.
    pub const DEFAULT: Rules = Rules {
        allowed_signals: None,
    };
}

/// Every way a request can fail, each with one status and code (see [`Rejection::response`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// `{pid}` is not a positive 32-bit integer.
    InvalidPid(String),
    /// The body is not a JSON object with an integer `signal`.
    InvalidRequest(&'static str),
    /// The number (as written) is not a signal Linux delivers.
    InvalidSignal(String),
    /// A deliverable signal that these rules do not allow.
    SignalNotAllowed(i32),
    /// No process has this pid.
    ProcessNotFound(i32),
    /// The process exists but has exited (zombie) or is being torn down.
    ProcessNotRunning(i32),
    /// The host never signals this process (pid 1, sigd itself, ...).
    ProtectedProcess(i32),
    /// The kernel refused sigd permission to signal it.
    PermissionDenied(i32),
    /// The host failed for a reason it logged.
    Internal,
}

impl Rejection {
    /// The one place a rejection becomes an HTTP status, a code and a sentence.
    pub fn response(&self) -> Response {
        let (status, code, error) = match self {
            Rejection::InvalidPid(raw) => (
                400,
                "INVALID_PID",
                format!(
                    "pid must be a positive 32-bit integer, got \"{}\"",
                    shorten(raw)
                ),
            ),
            Rejection::InvalidRequest(why) => (
                400,
                "INVALID_REQUEST",
                format!("the body must be a JSON object like {{\"signal\": 15}}: {why}"),
            ),
            Rejection::InvalidSignal(n) => (
                400,
                "INVALID_SIGNAL",
                format!("{n} is not a signal Linux delivers: use 1-31 or SIGRTMIN..SIGRTMAX"),
            ),
            Rejection::SignalNotAllowed(n) => (
                403,
                "SIGNAL_NOT_ALLOWED",
                format!("this policy does not allow signal {n}"),
            ),
            Rejection::ProcessNotFound(pid) => (
                404,
                "PROCESS_NOT_FOUND",
                format!("no process has pid {pid}"),
            ),
            Rejection::ProcessNotRunning(pid) => (
                400,
                "PROCESS_NOT_RUNNING",
                format!("process {pid} has exited and is no longer running"),
            ),
            Rejection::ProtectedProcess(pid) => (
                403,
                "PROTECTED_PROCESS",
                format!("process {pid} is protected: sigd never signals pid 1 or itself"),
            ),
            Rejection::PermissionDenied(pid) => (
                403,
                "PERMISSION_DENIED",
                format!("sigd is not permitted to signal process {pid}"),
            ),
            Rejection::Internal => (
                500,
                "INTERNAL",
                "sigd failed to handle the request; see its log".to_string(),
            ),
        };
        Response {
            status,
            body: json!({ "error": error, "code": code }).to_string(),
        }
    }
}

/// Decide one request under `rules`, ordering the signal through `host`.
pub fn decide(rules: &Rules, host: &impl Host, request: &Request) -> Response {
    match order_signal(rules, host, request) {
        Ok(()) => Response {
            status: 200,
            body: json!({ "success": true }).to_string(),
        },
        Err(rejection) => rejection.response(),
    }
}

fn order_signal(rules: &Rules, host: &impl Host, request: &Request) -> Result<(), Rejection> {
    let pid = parse_pid(request.pid)?;
    let signal = parse_signal(request.body)?;
    let signal = deliverable(signal, host.realtime_signals())?;
    if let Some(allowed) = rules.allowed_signals
        && !allowed.contains(&signal)
    {
        return Err(Rejection::SignalNotAllowed(signal));
    }
    match host.is_running(pid) {
        None => return Err(Rejection::ProcessNotFound(pid)),
        Some(false) => return Err(Rejection::ProcessNotRunning(pid)),
        Some(true) => {}
    }
    host.kill(pid, signal).map_err(|error| match error {
        KillError::NotFound => Rejection::ProcessNotFound(pid),
        KillError::InvalidSignal => Rejection::InvalidSignal(signal.to_string()),
        KillError::Protected => Rejection::ProtectedProcess(pid),
        KillError::PermissionDenied => Rejection::PermissionDenied(pid),
        KillError::Failed => Rejection::Internal,
    })
}

/// A positive int32 written in plain decimal digits (no sign, no spaces).
pub fn parse_pid(raw: &str) -> Result<i32, Rejection> {
    let invalid = || Rejection::InvalidPid(raw.to_string());
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match raw.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(invalid()),
    }
}

/// The integer `signal` field of a JSON object body. Other fields are ignored.
pub fn parse_signal(body: &[u8]) -> Result<i64, Rejection> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Rejection::InvalidRequest("the body is not valid JSON"))?;
    let object = value
        .as_object()
        .ok_or(Rejection::InvalidRequest("the body is not a JSON object"))?;
    let signal = object
        .get("signal")
        .ok_or(Rejection::InvalidRequest("the field \"signal\" is missing"))?;
    let not_integer = Rejection::InvalidRequest("the field \"signal\" must be an integer");
    let Value::Number(n) = signal else {
        return Err(not_integer);
    };
    if let Some(n) = n.as_i64() {
        return Ok(n);
    }
    // An integer too large for i64 is still an integer, just not a signal.
    match n.as_f64() {
        Some(f) if n.is_u64() || (f.fract() == 0.0 && f.abs() >= 9.2e18) => {
            Err(Rejection::InvalidSignal(n.to_string()))
        }
        _ => Err(not_integer),
    }
}

/// `signal` if Linux delivers it: 1-31, or a realtime signal in `realtime`.
/// (32 and 33 are reserved by the C library for its threads.)
pub fn deliverable(signal: i64, realtime: RangeInclusive<i32>) -> Result<i32, Rejection> {
    match i32::try_from(signal) {
        Ok(n) if (1..=31).contains(&n) || realtime.contains(&n) => Ok(n),
        _ => Err(Rejection::InvalidSignal(signal.to_string())),
    }
}

/// At most 32 characters of caller input, for echoing in an error sentence.
fn shorten(raw: &str) -> String {
    match raw.char_indices().nth(32) {
        Some((end, _)) => format!("{}...", &raw[..end]),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A process table in memory that records the signals it was asked to send.
    #[derive(Default)]
    struct FakeHost {
        /// pid -> running?
        processes: HashMap<i32, bool>,
        /// What `kill` answers for a pid, when not `Ok`.
        refusals: HashMap<i32, KillError>,
        sent: RefCell<Vec<(i32, i32)>>,
    }

    impl Host for FakeHost {
        fn realtime_signals(&self) -> RangeInclusive<i32> {
            34..=64
        }
        fn is_running(&self, pid: i32) -> Option<bool> {
            self.processes.get(&pid).copied()
        }
        fn kill(&self, pid: i32, signal: i32) -> Result<(), KillError> {
            if let Some(error) = self.refusals.get(&pid) {
                return Err(*error);
            }
            self.sent.borrow_mut().push((pid, signal));
            Ok(())
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
        host
    }

    /// Runs one request against `host()` and returns (status, code or "", signals sent).
    fn run(rules: &Rules, pid: &str, body: &str) -> (u16, String, Vec<(i32, i32)>) {
        let host = host();
        let response = decide(
            rules,
            &host,
            &Request {
                pid,
                body: body.as_bytes(),
            },
        );
        let json: Value = serde_json::from_str(&response.body).expect("body is JSON");
        if response.status == 200 {
            assert_eq!(json, json!({"success": true}));
        } else {
            assert!(json["error"].as_str().is_some_and(|s| !s.is_empty()));
        }
        let code = json["code"].as_str().unwrap_or_default().to_string();
        (response.status, code, host.sent.take())
    }

    /// A valid request to a running process is delivered once and answered 200.
    #[test]
    fn delivers_a_valid_signal() {
        assert_eq!(
            run(&Rules::DEFAULT, "42", r#"{"signal": 15}"#),
            (200, String::new(), vec![(42, 15)])
        );
        assert_eq!(
            run(&Rules::DEFAULT, "42", r#"{"signal": 64}"#).2,
            vec![(42, 64)]
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

    /// Bodies that are not an object with an integer `signal` are INVALID_REQUEST.
    #[test]
    fn rejects_bad_bodies() {
        for body in [
            "",
            "not json",
            "15",
            "[15]",
            "null",
            "{}",
            r#"{"sig": 15}"#,
            r#"{"signal": "15"}"#,
            r#"{"signal": 15.5}"#,
            r#"{"signal": 1.5e1}"#,
            r#"{"signal": null}"#,
            r#"{"signal": true}"#,
            r#"{"signal": 15"#,
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

    /// Integers Linux does not deliver are INVALID_SIGNAL, checked before the process.
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
        ] {
            let body = format!(r#"{{"signal": {signal}}}"#);
            assert_eq!(
                run(&Rules::DEFAULT, "999", &body),
                (400, "INVALID_SIGNAL".into(), vec![]),
                "{signal}"
            );
        }
    }

    /// Missing, exited, protected and forbidden targets map to their codes.
    #[test]
    fn maps_process_outcomes() {
        let body = r#"{"signal": 15}"#;
        assert_eq!(run(&Rules::DEFAULT, "999", body).1, "PROCESS_NOT_FOUND");
        assert_eq!(run(&Rules::DEFAULT, "999", body).0, 404);
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

    /// Rules narrow the signals: others get 403 SIGNAL_NOT_ALLOWED, still after validation.
    #[test]
    fn rules_restrict_signals() {
        let strict = Rules {
            allowed_signals: Some(&[2, 9, 15]),
        };
        assert_eq!(run(&strict, "42", r#"{"signal": 9}"#).0, 200);
        assert_eq!(
            run(&strict, "42", r#"{"signal": 10}"#),
            (403, "SIGNAL_NOT_ALLOWED".into(), vec![])
        );
        assert_eq!(run(&strict, "42", r#"{"signal": 0}"#).1, "INVALID_SIGNAL");
    }

    /// Caller input echoed in an error sentence is cut short and stays valid JSON.
    #[test]
    fn echoes_input_safely() {
        let long = "\"x".repeat(100);
        let response = Rejection::InvalidPid(long).response();
        let json: Value = serde_json::from_str(&response.body).unwrap();
        assert!(json["error"].as_str().unwrap().len() < 120);
    }
}
