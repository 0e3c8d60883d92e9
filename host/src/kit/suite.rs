//! `sigd policy test PATH`: the conformance suite. Every behaviour of the
//! endpoint (the spec's table, then sigd's extensions: signal names, scopes,
//! waiting, escalation) is a [`Case`] run against a fresh simulated process
//! table. The default policy passes every case.
//!
//! A policy that deliberately decides some cases differently declares them
//! in a deviations file (`--deviations FILE`), a JSON object from case name
//! to the answer it gives instead and why:
//!
//! ```json
//! {"signal-usr1": {"status": 403, "code": "SIGNAL_NOT_ALLOWED",
//!                  "why": "only SIGINT, SIGKILL and SIGTERM may be sent"}}
//! ```
//!
//! A declared case passes as "changed" only if the policy answers exactly
//! that (and, when it refuses, signals nothing); one that answers as the
//! default does fails, so declarations cannot go stale.

use super::millis;
use super::simulated::{Sent, Simulated};
use crate::caller::Caller;
use crate::host_calls::Headers;
use crate::options::RuntimeOptions;
use crate::policy::{Policy, Request};
use crate::signal;
use anyhow::Context;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The process table each case starts from, afresh: init; sigd (4242) under
/// a supervisor 70, in group 60 with 61; 42 asleep; a zombie 43; 44, which
/// survives SIGTERM; 77, which sigd may not signal (EPERM); a tree
/// 50 -> 51 -> 52 where 50 and 51 are group 50 and 52 called setsid; and,
/// for the callers' cases, 45 of uid 1000, 46 of uid 0 whose saved uid is
/// 1000, 47 of uid 0 whose effective uid is 1000, and group 90 of uid 1000
/// holding 91 of uid 0; 53, which its parent reaps the moment a signal
/// ends it. Every other process is root's.
pub const TABLE: &str = r#"[
    {"pid": 1, "ppid": 0, "command": "init"},
    {"pid": 70, "command": "supervisor"},
    {"pid": 4242, "ppid": 70, "pgid": 60, "command": "sigd"},
    {"pid": 61, "ppid": 70, "pgid": 60, "command": "sidecar"},
    {"pid": 42, "state": "sleeping", "command": "server"},
    {"pid": 43, "state": "zombie", "command": "exited"},
    {"pid": 44, "ignores": [15], "command": "stubborn"},
    {"pid": 77, "uid": 0, "permission_denied": true, "command": "foreign"},
    {"pid": 50, "command": "shell"},
    {"pid": 51, "ppid": 50, "pgid": 50, "command": "worker"},
    {"pid": 52, "ppid": 51, "pgid": 52, "command": "daemon"},
    {"pid": 45, "uid": 1000, "command": "user-job"},
    {"pid": 46, "uid": 0, "suid": 1000, "command": "setuid-job"},
    {"pid": 47, "uid": 0, "euid": 1000, "command": "seteuid-job"},
    {"pid": 90, "uid": 1000, "command": "user-shell"},
    {"pid": 91, "ppid": 90, "pgid": 90, "uid": 0, "command": "root-child"},
    {"pid": 53, "reaped": true, "command": "reaped-at-once"}
]"#;

/// One behaviour of the endpoint, as a request and the answer it must get.
pub struct Case {
    /// A short name, for reports and deviation files.
    pub name: &'static str,
    /// What the case is about.
    pub about: &'static str,
    /// The `{pid}` path segment.
    pub pid: String,
    /// The request body.
    pub body: String,
    /// The answer's status, and its `code` ("" for a success).
    pub status: u16,
    pub code: &'static str,
    /// The signals the table must have received: (pid, signal, to its group).
    pub sent: Vec<(i32, i32, bool)>,
    /// Fields a success's JSON body must hold, as given.
    pub fields: Value,
    /// How long to wait before counting signals (for escalations).
    pub settle: Duration,
    /// Who asks: root on this machine, without a token, unless the case
    /// is about callers.
    pub caller: Caller,
}

/// A case's request and its expected answer.
fn case(
    name: &'static str,
    about: &'static str,
    pid: impl ToString,
    body: impl ToString,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        about,
        pid: pid.to_string(),
        body: body.to_string(),
        status,
        code,
        sent: Vec::new(),
        fields: json!({}),
        settle: Duration::ZERO,
        caller: Caller::local(Some(0), None),
    }
}

impl Case {
    /// The signals it must send, in order.
    fn sends(mut self, sent: &[(i32, i32, bool)]) -> Case {
        self.sent = sent.to_vec();
        self
    }

    /// Fields its success body must hold.
    fn with(mut self, fields: Value) -> Case {
        self.fields = fields;
        self
    }

    /// Asked by a caller with `uid` (`None`: the kernel cannot tell who)
    /// and `principal`'s token.
    fn by(mut self, uid: Option<u32>, principal: Option<&str>) -> Case {
        self.caller = Caller::local(uid, principal.map(str::to_string));
        self
    }
}

/// Every case, the spec's table first. One line each, so the table reads as one.
#[rustfmt::skip]
pub fn cases() -> Vec<Case> {
    let (rtmin, rtmax) = (*signal::realtime().start(), *signal::realtime().end());
    let signal = |n: i64| json!({ "signal": n }).to_string();
    let ok = |name, about, n: i32| {
        case(name, about, 42, signal(n.into()), 200, "")
            .sends(&[(42, n, false)])
            .with(json!({"success": true, "pid": 42, "signal": n, "delivered_to": [42]}))
    };
    let bad_pid = |name, about, pid: &str| case(name, about, pid, signal(15), 400, "INVALID_PID");
    let bad_body = |name, about, body: &str| case(name, about, 42, body, 400, "INVALID_REQUEST");
    let bad_signal = |name, about, body: &str| case(name, about, 42, body, 400, "INVALID_SIGNAL");
    let escalation = |case: Case| Case { settle: Duration::from_millis(300), ..case };
    vec![
        ok("delivered", "SIGTERM to a running process: 200 {\"success\": true}", 15),
        ok("signal-1", "the lowest standard signal, SIGHUP", 1),
        ok("signal-kill", "SIGKILL", 9),
        ok("signal-usr1", "SIGUSR1, a signal programs handle", 10),
        ok("signal-31", "the highest standard signal, SIGSYS", 31),
        ok("signal-rtmin", "SIGRTMIN as the host's libc reports it", rtmin),
        ok("signal-rtmax", "SIGRTMAX as the host's libc reports it", rtmax),
        case("float-signal", "an integral JSON number, 15.0, is the integer 15", 42, r#"{"signal": 15.0}"#, 200, "").sends(&[(42, 15, false)]),
        case("extra-fields", "fields sigd does not know are ignored", 42, r#"{"signal": 15, "why": "deploy"}"#, 200, "").sends(&[(42, 15, false)]),
        bad_pid("pid-text", "a pid that is not a number", "abc"),
        bad_pid("pid-zero", "pid 0 (kill(0) would signal sigd's group)", "0"),
        bad_pid("pid-negative", "a negative pid (kill(-n) would signal a group)", "-5"),
        bad_pid("pid-too-large", "a pid beyond 32 bits", "99999999999"),
        bad_pid("pid-plus", "a sign is not part of a pid", "+42"),
        bad_pid("pid-fraction", "a pid with a fraction", "42.0"),
        bad_pid("pid-empty", "an empty pid", ""),
        bad_body("body-not-json", "a body that is not JSON", "not json"),
        bad_body("body-empty", "an empty body", ""),
        bad_body("body-array", "a JSON array instead of an object", "[15]"),
        bad_body("body-array-of-fields", "an array of the fields' values, in order", "[15, null, null, null]"),
        bad_body("body-number", "a bare JSON number", "15"),
        bad_body("signal-missing", "an object without `signal`", "{}"),
        bad_body("signal-null", "`signal` is null", r#"{"signal": null}"#),
        bad_body("signal-array", "`signal` is an array", r#"{"signal": [15]}"#),
        bad_body("signal-fraction", "`signal` has a fraction", r#"{"signal": 1.5}"#),
        bad_body("signal-twice", "`signal` given twice", r#"{"signal": 15, "signal": 9}"#),
        bad_body("twice-in-escalate", "a key given twice inside `escalate`", r#"{"signal": 15, "escalate": {"after_ms": 5, "after_ms": 600000}}"#),
        bad_body("unknown-twice", "a field sigd does not know, given twice", r#"{"signal": 15, "why": "a", "why": "b"}"#),
        bad_body("twice-deep-in-unknown", "a key given twice in an object deep in an unknown field", r#"{"signal": 15, "why": [{"a": 1}, {"b": {"c": 1, "c": 2}}]}"#),
        bad_body("unknown-too-deep", "an unknown field nesting 200 deep", &format!(r#"{{"signal": 15, "why": {}{}}}"#, "[".repeat(200), "]".repeat(200))),
        case("same-key-elsewhere", "one key in different objects is no repetition", 42, r#"{"signal": 15, "why": [{"a": 1}, {"a": 2}], "a": {"a": 3}}"#, 200, "").sends(&[(42, 15, false)]),
        bad_signal("signal-zero", "0 only probes a process; it is no signal", &signal(0)),
        bad_signal("signal-32", "32, kept by glibc for its threads", &signal(32)),
        bad_signal("signal-33", "33, kept by glibc for its threads", &signal(33)),
        bad_signal("signal-above-rtmax", "one past SIGRTMAX", &signal((rtmax + 1).into())),
        bad_signal("signal-negative", "a negative number", &signal(-9)),
        bad_signal("signal-huge", "a number beyond 32 bits", &signal(1 << 40)),
        bad_signal("signal-text-number", "a number written as a string is no name", r#"{"signal": "15"}"#),
        bad_signal("signal-unknown-name", "a name Linux does not have", r#"{"signal": "SIGFOO"}"#),
        case("zombie", "a process that has exited but is not reaped", 43, signal(15), 400, "PROCESS_NOT_RUNNING"),
        case("no-such-process", "a pid no process has", 999, signal(15), 404, "PROCESS_NOT_FOUND"),
        case("pid-1", "init, never signalled", 1, signal(15), 403, "PROTECTED_PROCESS"),
        case("sigd-itself", "sigd's own pid", 4242, signal(9), 403, "PROTECTED_PROCESS"),
        case("sigd-ancestor", "sigd's parent, whose end would end sigd", 70, signal(15), 403, "PROTECTED_PROCESS"),
        case("permission-denied", "the kernel refuses sigd (EPERM)", 77, signal(15), 403, "PERMISSION_DENIED"),
        // sigd's extensions: names, scopes, waiting, escalation.
        case("name-sigterm", "a signal by name", 42, r#"{"signal": "SIGTERM"}"#, 200, "").sends(&[(42, 15, false)]).with(json!({"signal": 15, "signal_name": "SIGTERM"})),
        case("name-short", "a name without SIG, in any case", 42, r#"{"signal": "term"}"#, 200, "").sends(&[(42, 15, false)]),
        case("name-realtime", "a realtime signal by name", 42, r#"{"signal": "SIGRTMIN+1"}"#, 200, "").sends(&[(42, rtmin + 1, false)]),
        case("scope-process", "scope \"process\", the spec's behaviour", 50, r#"{"signal": 15, "scope": "process"}"#, 200, "").sends(&[(50, 15, false)]).with(json!({"scope": "process", "delivered_to": [50]})),
        case("scope-group", "scope \"group\": one signal to the process group", 50, r#"{"signal": 15, "scope": "group"}"#, 200, "").sends(&[(50, 15, true)]).with(json!({"scope": "group", "delivered_to": [50, 51]})),
        case("scope-tree", "scope \"tree\": it and its descendants, setsid ones too", 50, r#"{"signal": 15, "scope": "tree"}"#, 200, "").with(json!({"scope": "tree", "delivered_to": [50, 51, 52]})),
        bad_body("scope-unknown", "a scope sigd does not have", r#"{"signal": 15, "scope": "world"}"#),
        case("group-with-sigd", "a group holding sigd is refused whole", 61, r#"{"signal": 15, "scope": "group"}"#, 403, "PROTECTED_PROCESS"),
        case("tree-with-sigd", "a tree holding sigd is refused whole", 70, r#"{"signal": 15, "scope": "tree"}"#, 403, "PROTECTED_PROCESS"),
        case("wait-exit", "wait_ms: how the process ended", 50, r#"{"signal": 15, "wait_ms": 1000}"#, 200, "").sends(&[(50, 15, false)]).with(json!({"exit": {"exited": true, "signal": 15}})),
        case("wait-survivor", "wait_ms: a process that outlives the wait", 44, r#"{"signal": 15, "wait_ms": 50}"#, 200, "").sends(&[(44, 15, false)]).with(json!({"exit": {"exited": false, "waited_ms": 50}})),
        bad_body("wait-too-long", "wait_ms above the policy's limit", r#"{"signal": 15, "wait_ms": 3600000}"#),
        bad_body("wait-negative", "wait_ms below zero", r#"{"signal": 15, "wait_ms": -1}"#),
        escalation(case("escalate", "SIGKILL 30 ms later to a process that survived SIGTERM", 44, r#"{"signal": 15, "escalate": {"after_ms": 30, "signal": 9}}"#, 200, "").sends(&[(44, 15, false), (44, 9, false)]).with(json!({"escalation": {"after_ms": 30, "signal": 9}}))),
        escalation(case("escalate-not-needed", "no escalation once the process has ended", 42, r#"{"signal": 15, "escalate": {"after_ms": 30}}"#, 200, "").sends(&[(42, 15, false)])),
        case("escalate-after-reaped", "an escalation with nothing to do (the target was reaped at once) is no failure", 53, r#"{"signal": 15, "scope": "group", "escalate": {"after_ms": 30}}"#, 200, "").sends(&[(53, 15, true)]).with(json!({"escalation": {"after_ms": 30, "signal": 9, "scheduled": false}})),
        bad_body("escalate-without-delay", "escalate without after_ms", r#"{"signal": 15, "escalate": {"signal": 9}}"#),
        bad_signal("escalate-bad-signal", "escalate with a signal Linux does not deliver", r#"{"signal": 15, "escalate": {"after_ms": 10, "signal": 0}}"#),
        // Who asks: without a token, a caller is held to kill(2) for its uid.
        case("caller-own-process", "uid 1000, no token, signals its own process", 45, signal(15), 200, "").by(Some(1000), None).sends(&[(45, 15, false)]),
        case("caller-foreign-process", "uid 1000, no token, may not signal root's", 42, signal(9), 403, "NOT_PERMITTED").by(Some(1000), None),
        case("caller-saved-uid", "kill(2) also lets it signal a process whose saved uid is its own", 46, signal(15), 200, "").by(Some(1000), None).sends(&[(46, 15, false)]),
        case("caller-effective-uid", "but not one that only acts with its uid (effective)", 47, signal(15), 403, "NOT_PERMITTED").by(Some(1000), None),
        case("caller-group-foreign-member", "a group holding a process it may not signal is refused whole", 90, r#"{"signal": 15, "scope": "group"}"#, 403, "NOT_PERMITTED").by(Some(1000), None),
        case("caller-escalation", "its escalation is held to kill(2) too", 42, r#"{"signal": 15, "escalate": {"after_ms": 30}}"#, 403, "NOT_PERMITTED").by(Some(1000), None),
        case("caller-unknown", "a caller the kernel cannot tell may signal nothing without a token", 45, signal(15), 403, "NOT_PERMITTED").by(None, None),
        case("caller-root", "root, without a token, may signal what root may", 45, signal(15), 200, "").by(Some(0), None).sends(&[(45, 15, false)]),
        case("principal-has-sigd-authority", "a token gives sigd's authority, whatever the uid", 42, signal(15), 200, "").by(Some(1000), Some("platform")).sends(&[(42, 15, false)]),
    ]
}

/// `sigd policy test`: the conformance suite.
#[derive(Debug, clap::Args)]
pub struct Test {
    /// The policy component (.wasm).
    path: PathBuf,

    /// Cases this policy deliberately decides differently: a JSON object
    /// from case name to `{"status": 403, "code": "...", "why": "..."}`.
    #[arg(long, value_name = "FILE")]
    deviations: Option<PathBuf>,

    /// Run only the cases whose names contain this; repeat for more.
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,

    /// Settings (a JSON file) to configure the policy with; the cases
    /// expect the default policy's answers, so settings that change an
    /// answer need a deviation.
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,

    #[command(flatten)]
    runtime: RuntimeOptions,
}

/// A declared change to a case's expected answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    pub status: u16,
    #[serde(default)]
    pub code: String,
    pub why: String,
}

/// How one case went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Decided as its deviation declares.
    Changed,
    /// What was wrong.
    Failed(String),
}

impl Test {
    /// Run the suite and print the report; `Ok(false)` if a case failed.
    pub async fn run(self) -> anyhow::Result<bool> {
        let deviations = match &self.deviations {
            None => BTreeMap::new(),
            Some(path) => read_deviations(path)?,
        };
        let loaded = super::load(&self.path, self.settings.as_deref(), &self.runtime)?;
        let cases: Vec<Case> = cases()
            .into_iter()
            .filter(|c| {
                self.only.is_empty() || self.only.iter().any(|o| c.name.contains(o.as_str()))
            })
            .collect();
        println!(
            "conformance of {} to {}@{}: {} cases, simulated processes, no real signal",
            self.path.display(),
            crate::policy::WIT_PACKAGE,
            crate::policy::WIT_VERSION,
            cases.len()
        );
        let (mut passed, mut changed, mut failed) = (0, 0, 0);
        for case in &cases {
            let deviation = deviations.get(case.name);
            let (outcome, answer) = run_case(&loaded.policy, case, deviation).await;
            let expected = match deviation {
                Some(d) => format!("{} {}", d.status, d.code).trim_end().to_string(),
                None => format!("{} {}", case.status, case.code)
                    .trim_end()
                    .to_string(),
            };
            match &outcome {
                Outcome::Passed => {
                    passed += 1;
                    println!("  pass     {:<24} {expected:<28} {}", case.name, case.about);
                }
                Outcome::Changed => {
                    changed += 1;
                    let why = deviation.map_or("", |d| d.why.as_str());
                    println!(
                        "  changed  {:<24} {expected:<28} declared: {why}",
                        case.name
                    );
                }
                Outcome::Failed(what) => {
                    failed += 1;
                    println!("  FAIL     {:<24} {}", case.name, case.about);
                    println!(
                        "             request  pid {:?}, body {}, from {}",
                        case.pid,
                        case.body,
                        super::describe_caller(&case.caller)
                    );
                    println!("             expected {expected}");
                    println!("             {what}");
                    println!("             answer   {answer}");
                }
            }
        }
        println!(
            "result    {passed} passed, {changed} changed as declared, {failed} failed \
             (policy {}, loaded in {})",
            &loaded.policy.sha256()[..12],
            millis(loaded.took)
        );
        Ok(failed == 0)
    }
}

/// The deviations file at `path`; every name must be a case.
fn read_deviations(path: &std::path::Path) -> anyhow::Result<BTreeMap<String, Deviation>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let deviations: BTreeMap<String, Deviation> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a JSON object of deviations", path.display()))?;
    let names: Vec<&str> = cases().iter().map(|c| c.name).collect();
    if let Some(unknown) = deviations
        .keys()
        .find(|name| !names.contains(&name.as_str()))
    {
        anyhow::bail!("{}: there is no case {unknown:?}", path.display());
    }
    Ok(deviations)
}

/// Run one case on a fresh table: its outcome, and the answer as received.
pub async fn run_case(
    policy: &Policy,
    case: &Case,
    deviation: Option<&Deviation>,
) -> (Outcome, String) {
    let table = Simulated::from_json(TABLE).unwrap_or_default();
    let request = Request {
        pid: case.pid.clone(),
        body: case.body.clone().into_bytes(),
        headers: Headers::json_body(),
        caller: case.caller.clone(),
    };
    let decision = policy.call(&super::guarded(&table), request).await;
    tokio::time::sleep(case.settle).await;
    let answer = match decision.answer {
        Ok(answer) => answer,
        Err(error) => {
            return (
                Outcome::Failed(format!("the policy failed: {error}")),
                "500".into(),
            );
        }
    };
    let status = answer.status.as_u16();
    let shown = format!("{status} {}", answer.body);
    let sent: Vec<(i32, i32, bool)> = table
        .sent()
        .iter()
        .map(|s: &Sent| (s.pid, s.signal, s.group))
        .collect();
    let outcome = match deviation {
        None => judge(case, status, &answer.body, &sent),
        Some(deviation) => judge_deviation(case, deviation, status, &answer.body, &sent),
    };
    (outcome, shown)
}

/// The body's shape: `{"success": true, ...}` for a 200, else
/// `{"error": "<sentence>", "code": "<CODE>"}`; the `code`, or a complaint.
fn shape(status: u16, body: &str) -> Result<String, String> {
    let json: Value = serde_json::from_str(body).map_err(|_| "the body is not JSON".to_string())?;
    if status == 200 {
        return match json.get("success") {
            Some(Value::Bool(true)) => Ok(String::new()),
            _ => Err("a 200 body must hold \"success\": true".into()),
        };
    }
    match (json.get("error"), json.get("code")) {
        (Some(Value::String(error)), Some(Value::String(code))) if !error.is_empty() => {
            Ok(code.clone())
        }
        _ => Err("an error body must be {\"error\": \"<sentence>\", \"code\": \"<CODE>\"}".into()),
    }
}

fn judge(case: &Case, status: u16, body: &str, sent: &[(i32, i32, bool)]) -> Outcome {
    let code = match shape(status, body) {
        Ok(code) => code,
        Err(what) => return Outcome::Failed(what),
    };
    if (status, code.as_str()) != (case.status, case.code) {
        return Outcome::Failed(format!("got      {status} {code}"));
    }
    if (!case.sent.is_empty() || status != 200) && sent != case.sent {
        return Outcome::Failed(format!("signals  sent {sent:?}, expected {:?}", case.sent));
    }
    if let Some(fields) = case.fields.as_object() {
        let json: Value = serde_json::from_str(body).unwrap_or_default();
        for (key, value) in fields {
            if json.get(key) != Some(value) {
                return Outcome::Failed(format!(
                    "field    {key:?} is {}, expected {value}",
                    json.get(key).unwrap_or(&Value::Null)
                ));
            }
        }
    }
    Outcome::Passed
}

fn judge_deviation(
    case: &Case,
    deviation: &Deviation,
    status: u16,
    body: &str,
    sent: &[(i32, i32, bool)],
) -> Outcome {
    let code = match shape(status, body) {
        Ok(code) => code,
        Err(what) => return Outcome::Failed(what),
    };
    if (status, code.as_str()) == (case.status, case.code)
        && (status, code.as_str()) != (deviation.status, deviation.code.as_str())
    {
        return Outcome::Failed(
            "declared as changed, but decided as the default policy does".into(),
        );
    }
    if (status, code.as_str()) != (deviation.status, deviation.code.as_str()) {
        return Outcome::Failed(format!("got      {status} {code}"));
    }
    if status != 200 && !sent.is_empty() {
        return Outcome::Failed(format!("signals  sent {sent:?} while refusing"));
    }
    Outcome::Changed
}
