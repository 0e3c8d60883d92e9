//! sigd's default policy: where a Send Signal request is validated.
//!
//! The decision is plain Rust: [`decide`] takes the request, a [`Host`] that
//! can open processes and signal them, and the [`Rules`] of the policy, and
//! returns the HTTP answer. It compiles natively, so it is unit-tested (and
//! fuzzed) without wasm; [`component`] binds it to the WIT world
//! `sigd:policy/policy` for the host to load.
//!
//! Checks run in the order a caller would fix them: the pid in the path, then
//! the body (its signal, scope, escalation and wait), then the policy's rules,
//! then the target process, then the signal itself.

pub mod component;
pub mod request;
pub mod signals;

use request::SignalRequest;
use serde::Serialize;
use std::ops::RangeInclusive;

pub use request::Scope;

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

/// How a process ended (mirrors WIT `host.exit-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    Unknown,
}

/// What the policy needs from the host (the WIT `host` interface).
pub trait Host {
    /// A process handle: it names one process, even after its pid is reused.
    type Process: Process;
    /// SIGRTMIN..=SIGRTMAX of the host's libc.
    fn realtime_signals(&self) -> RangeInclusive<i32>;
    /// A handle on the process `pid`, if there is one.
    fn open(&self, pid: i32) -> Option<Self::Process>;
}

/// One opened process (the WIT `host.process` resource).
pub trait Process {
    /// `None` once it is gone; else whether it can still take a signal
    /// (false for a zombie or a dying process).
    fn is_running(&self) -> Option<bool>;
    /// Send `signal` to its `scope`; the pids reached.
    fn signal(&self, signal: i32, scope: Scope) -> Result<Vec<i32>, KillError>;
    /// After `after_ms`, if it still runs, send `signal` to its `scope`.
    fn escalate(&self, after_ms: u32, signal: i32, scope: Scope) -> Result<(), KillError>;
    /// Wait at most `timeout_ms` for it to exit.
    fn wait_exit(&self, timeout_ms: u32) -> Option<Exit>;
}

/// What makes one policy differ from another.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The signals this policy lets through (escalation signals included);
    /// `None` lets through every signal Linux delivers. Others are refused
    /// with 403 `SIGNAL_NOT_ALLOWED`.
    pub allowed_signals: Option<&'static [i32]>,
    /// The scopes callers may ask for; others get 403 `SCOPE_NOT_ALLOWED`.
    pub allowed_scopes: &'static [Scope],
    /// The scope of a request that names none.
    pub default_scope: Scope,
    /// The longest `wait_ms` a caller may ask for.
    pub max_wait_ms: u32,
    /// The longest `escalate.after_ms` a caller may ask for.
    pub max_escalate_ms: u32,
}

impl Rules {
    /// The endpoint as Tensorlake specifies it, plus sigd's extensions: any
    /// deliverable signal, any scope (the process alone unless asked), waits
    /// up to 30 s, escalation up to 10 minutes later.
    pub const DEFAULT: Rules = Rules {
        allowed_signals: None,
        allowed_scopes: &[Scope::Process, Scope::Group, Scope::Tree],
        default_scope: Scope::Process,
        max_wait_ms: 30_000,
        max_escalate_ms: 600_000,
    };
}

/// Every way a request can fail, each with one status and code (see [`Rejection::response`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// `{pid}` is not a positive 32-bit integer.
    InvalidPid(String),
    /// The body is not a JSON object of the expected shape.
    InvalidRequest(String),
    /// The value (as written) is not a signal Linux delivers.
    InvalidSignal(String),
    /// A deliverable signal that these rules do not allow.
    SignalNotAllowed(i32),
    /// A scope that these rules do not allow.
    ScopeNotAllowed(Scope),
    /// No process has this pid.
    ProcessNotFound(i32),
    /// The process exists but has exited (zombie) or is being torn down.
    ProcessNotRunning(i32),
    /// The host never signals this process or scope (pid 1, sigd, ...).
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
            Rejection::InvalidSignal(raw) => (
                400,
                "INVALID_SIGNAL",
                format!(
                    "{} is not a signal Linux delivers; use {}",
                    shorten(raw),
                    signals::ACCEPTED_FORMS
                ),
            ),
            Rejection::SignalNotAllowed(n) => (
                403,
                "SIGNAL_NOT_ALLOWED",
                format!("this policy does not allow signal {n}"),
            ),
            Rejection::ScopeNotAllowed(scope) => (
                403,
                "SCOPE_NOT_ALLOWED",
                format!(
                    "this policy does not allow the scope \"{}\"",
                    scope.as_str()
                ),
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
                format!(
                    "sigd never signals pid 1, itself or its ancestors, nor a group or tree \
                     holding one of them, and the request for process {pid} would"
                ),
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
            body: json(&ErrorBody { error, code }),
        }
    }
}

/// An error answer, as the spec has it: `error` (a sentence), then `code`.
#[derive(Serialize)]
struct ErrorBody {
    error: String,
    code: &'static str,
}

/// A success answer: `success` first, for clients of the plain spec.
#[derive(Serialize)]
struct SuccessBody {
    success: bool,
    pid: i32,
    signal: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal_name: Option<String>,
    scope: &'static str,
    delivered_to: Vec<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    escalation: Option<request::Escalation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<ExitBody>,
}

/// How a waited-for process ended: `{"exited": true, "signal": 15}`, ...
#[derive(Serialize)]
struct ExitBody {
    exited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waited_ms: Option<u32>,
}

/// `value` as JSON text (serializing these plain structs cannot fail).
fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Decide one request under `rules`, ordering the signal through `host`.
pub fn decide(rules: &Rules, host: &impl Host, request: &Request) -> Response {
    match order_signal(rules, host, request) {
        Ok(body) => Response {
            status: 200,
            body: json(&body),
        },
        Err(rejection) => rejection.response(),
    }
}

fn order_signal(
    rules: &Rules,
    host: &impl Host,
    request: &Request,
) -> Result<SuccessBody, Rejection> {
    let pid = parse_pid(request.pid)?;
    let realtime = host.realtime_signals();
    let asked = SignalRequest::parse(request.body, rules.default_scope, &realtime)?;
    asked.check(rules)?;
    let process = host.open(pid).ok_or(Rejection::ProcessNotFound(pid))?;
    match process.is_running() {
        None => return Err(Rejection::ProcessNotFound(pid)),
        Some(false) => return Err(Rejection::ProcessNotRunning(pid)),
        Some(true) => {}
    }
    let refused = |error| rejection(error, pid, asked.signal);
    let delivered = process.signal(asked.signal, asked.scope).map_err(refused)?;

    if let Some(escalation) = asked.escalate {
        process
            .escalate(escalation.after_ms, escalation.signal, asked.scope)
            .map_err(|error| rejection(error, pid, escalation.signal))?;
    }
    let exit = asked.wait_ms.map(|wait_ms| {
        let ended = |code, signal| ExitBody {
            exited: true,
            code,
            signal,
            waited_ms: None,
        };
        match process.wait_exit(wait_ms) {
            None => ExitBody {
                exited: false,
                code: None,
                signal: None,
                waited_ms: Some(wait_ms),
            },
            Some(Exit::Code(code)) => ended(Some(code), None),
            Some(Exit::Signal(signal)) => ended(None, Some(signal)),
            Some(Exit::Unknown) => ended(None, None),
        }
    });
    Ok(SuccessBody {
        success: true,
        pid,
        signal: asked.signal,
        signal_name: signals::name(asked.signal, &realtime),
        scope: asked.scope.as_str(),
        delivered_to: delivered,
        escalation: asked.escalate,
        exit,
    })
}

/// The rejection for a host's refusal to signal `pid` with `signal`.
fn rejection(error: KillError, pid: i32, signal: i32) -> Rejection {
    match error {
        KillError::NotFound => Rejection::ProcessNotFound(pid),
        KillError::InvalidSignal => Rejection::InvalidSignal(signal.to_string()),
        KillError::Protected => Rejection::ProtectedProcess(pid),
        KillError::PermissionDenied => Rejection::PermissionDenied(pid),
        KillError::Failed => Rejection::Internal,
    }
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

/// At most 32 characters of caller input, for echoing in an error sentence.
fn shorten(raw: &str) -> String {
    match raw.char_indices().nth(32) {
        Some((end, _)) => format!("{}...", &raw[..end]),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests;
