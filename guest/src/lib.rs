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
//! then the operator's [`Settings`] for this caller (who may send what, with
//! whose authority), then the target process, then the signal itself.
//!
//! Whose authority: a caller that presented a token (it has a principal)
//! signals with sigd's; one that did not is held to kill(2)'s rule for its
//! own uid, which the host applies to every process the signal reaches. The
//! settings may grant or limit either.

pub mod component;
pub mod request;
pub mod settings;
pub mod signals;

use request::SignalRequest;
use serde::Serialize;
use std::ops::RangeInclusive;

pub use request::Scope;
pub use settings::{Authority, Settings};

/// One Send Signal request, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The `{pid}` path segment, exactly as it arrived.
    pub pid: &'a str,
    /// The body, exactly as it arrived.
    pub body: &'a [u8],
    /// Who is asking.
    pub caller: &'a Caller,
}

/// Who is asking (what the policy uses of WIT `handler.caller`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The name of the token it presented; `None` without one.
    pub principal: Option<String>,
    /// Its uid, as the kernel tells it; `None` where it cannot.
    pub uid: Option<u32>,
}

/// What the policy may learn of a target (WIT `host.process-info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `false` for a zombie or a dying process.
    pub running: bool,
    /// Its real uid.
    pub uid: u32,
    /// Its command name.
    pub command: String,
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
    /// kill(2) would not let the uid the signal was sent on behalf of
    /// signal a process of the scope.
    NotPermitted,
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
    /// A handle on the process `pid`, if there is one, and whether it can
    /// still take a signal (false once it has exited: a zombie): WIT
    /// `open-alive`, one host call that reads nothing of `/proc`.
    fn open_alive(&self, pid: i32) -> Option<(Self::Process, bool)>;
    /// A handle on the process `pid`, if there is one, and what the host
    /// knows of it: WIT `open-with-info`, one host call.
    fn open_with_info(&self, pid: i32) -> Option<(Self::Process, Target)>;
}

/// One opened process (the WIT `host.process` resource).
pub trait Process {
    /// Send `signal` to its `scope` (on behalf of a uid, or with sigd's
    /// authority); the pids reached.
    fn signal(
        &self,
        signal: i32,
        scope: Scope,
        on_behalf_of: Option<u32>,
    ) -> Result<Vec<i32>, KillError>;
    /// After `after_ms`, if it still runs, send `signal` to its `scope`.
    fn escalate(
        &self,
        after_ms: u32,
        signal: i32,
        scope: Scope,
        on_behalf_of: Option<u32>,
    ) -> Result<(), KillError>;
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
    /// A deliverable signal that `by` (these rules, or a settings rule)
    /// does not allow.
    SignalNotAllowed { signal: i32, by: String },
    /// A scope that `by` does not allow.
    ScopeNotAllowed { scope: Scope, by: String },
    /// A wait or escalation delay longer than the settings rule `by` allows.
    WaitNotAllowed {
        field: &'static str,
        max: u32,
        by: String,
    },
    /// A target (by uid, command) that the settings rule `by` does not
    /// allow. Its uid and command are not said: the caller may not be one
    /// who may see the process at all (the record keeps them).
    TargetNotAllowed { pid: i32, by: String },
    /// A target the operator's settings protect, and why.
    ProtectedBySettings { pid: i32, why: String },
    /// The signal would go on behalf of the caller's uid (`None`: a caller
    /// the kernel cannot tell), and kill(2) would not let it.
    NotPermitted { pid: i32, uid: Option<u32> },
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
            Rejection::SignalNotAllowed { signal, by } => (
                403,
                "SIGNAL_NOT_ALLOWED",
                format!("{by} does not allow signal {signal}"),
            ),
            Rejection::ScopeNotAllowed { scope, by } => (
                403,
                "SCOPE_NOT_ALLOWED",
                format!("{by} does not allow the scope \"{}\"", scope.as_str()),
            ),
            Rejection::WaitNotAllowed { field, max, by } => (
                403,
                "WAIT_NOT_ALLOWED",
                format!("{by} allows \"{field}\" up to {max} ms"),
            ),
            Rejection::TargetNotAllowed { pid, by } => (
                403,
                "TARGET_NOT_ALLOWED",
                format!(
                    "{by} does not allow signalling process {pid}: its uid or command is not \
                     among the targets the rule names"
                ),
            ),
            Rejection::ProtectedBySettings { pid, why } => (
                403,
                "PROTECTED_PROCESS",
                format!("sigd's settings protect process {pid}: {why}"),
            ),
            Rejection::NotPermitted {
                pid,
                uid: Some(uid),
            } => (
                403,
                "NOT_PERMITTED",
                format!(
                    "uid {uid} may not signal process {pid} (or a process of its group or tree): \
                     kill(2) would refuse it, and a caller without a token has no more authority"
                ),
            ),
            Rejection::NotPermitted { pid, uid: None } => (
                403,
                "NOT_PERMITTED",
                format!(
                    "sigd cannot tell who is asking to signal process {pid} (the connection is \
                     not from this machine, or is from another PID namespace, or from root \
                     without CAP_KILL), and without a token such a caller may signal nothing"
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
    signal_name: Option<std::borrow::Cow<'static, str>>,
    scope: &'static str,
    /// The pids reached, the first [`MAX_LISTED`] of them.
    delivered_to: Vec<i32>,
    /// How many were reached, when that is more than are listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    escalation: Option<EscalationBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<ExitBody>,
}

/// The most pids an answer lists: a tree of thousands is answered with a
/// count, and its answer stays well within what the host passes on.
pub const MAX_LISTED: usize = 1000;

/// The escalation asked for; `"scheduled": false` when it had nothing to
/// do (the target was gone, reaped, right after the signal).
#[derive(Serialize)]
struct EscalationBody {
    #[serde(flatten)]
    asked: request::Escalation,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduled: Option<bool>,
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

/// Decide one request under `rules` (the policy's, in code) and `settings`
/// (the operator's), ordering the signal through `host`.
pub fn decide(rules: &Rules, settings: &Settings, host: &impl Host, request: &Request) -> Response {
    match order_signal(rules, settings, host, request) {
        Ok(body) => Response {
            status: 200,
            body: json(&body),
        },
        Err(rejection) => rejection.response(),
    }
}

fn order_signal(
    rules: &Rules,
    settings: &Settings,
    host: &impl Host,
    request: &Request,
) -> Result<SuccessBody, Rejection> {
    let pid = parse_pid(request.pid)?;
    let realtime = host.realtime_signals();
    let asked = SignalRequest::parse(request.body, rules.default_scope, &realtime)?;
    asked.check(rules)?;
    let grant = settings.grant(request.caller);
    grant.check(&asked)?;
    settings.check_scope(&grant, asked.scope)?;
    let on_behalf_of = match grant.authority {
        Authority::Sigd => None,
        Authority::Caller => Some(
            request
                .caller
                .uid
                .ok_or(Rejection::NotPermitted { pid, uid: None })?,
        ),
    };
    // The target's facts only when a setting asks about them: whether it
    // is alive costs the host no `/proc` read. Either way one host call
    // opens it and tells.
    let not_found = || Rejection::ProcessNotFound(pid);
    let (process, running) = match settings.asks_about_targets(&grant) {
        false => host.open_alive(pid).ok_or_else(not_found)?,
        true => {
            let (process, target) = host.open_with_info(pid).ok_or_else(not_found)?;
            let running = target.running;
            settings.check_target(&grant, pid, target)?;
            (process, running)
        }
    };
    if !running {
        return Err(Rejection::ProcessNotRunning(pid));
    }
    let refused = |signal| move |error| rejection(error, pid, signal, on_behalf_of);
    let delivered = process
        .signal(asked.signal, asked.scope, on_behalf_of)
        .map_err(refused(asked.signal))?;

    // The signal is delivered: from here on nothing turns the answer into
    // a failure. An escalation the host would not schedule (the target is
    // gone by now, its parent reaped it at once; or the host keeps as many
    // escalations as it may) is answered as not scheduled.
    let escalation = match asked.escalate {
        None => None,
        Some(escalation) => {
            let scheduled = process.escalate(
                escalation.after_ms,
                escalation.signal,
                asked.scope,
                on_behalf_of,
            );
            let scheduled = scheduled.is_err().then_some(false);
            Some(EscalationBody {
                asked: escalation,
                scheduled,
            })
        }
    };
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
        delivered_count: (delivered.len() > MAX_LISTED).then_some(delivered.len()),
        delivered_to: delivered.into_iter().take(MAX_LISTED).collect(),
        escalation,
        exit,
    })
}

/// The rejection for a host's refusal to signal `pid` with `signal`, sent
/// on behalf of `uid` (or with sigd's authority).
fn rejection(error: KillError, pid: i32, signal: i32, uid: Option<u32>) -> Rejection {
    match error {
        KillError::NotFound => Rejection::ProcessNotFound(pid),
        KillError::InvalidSignal => Rejection::InvalidSignal(signal.to_string()),
        KillError::Protected => Rejection::ProtectedProcess(pid),
        KillError::PermissionDenied => Rejection::PermissionDenied(pid),
        KillError::NotPermitted => Rejection::NotPermitted { pid, uid },
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
