//! The audit log: one event per signal request (target `sigd::audit`), with
//! what was asked, what the policy made the host do, and how it was answered:
//! who asked (the token's principal, the peer's pid and uid where the kernel
//! tells them, the transport and remote address), pid, the target's start
//! time, signal, scope, decision, errno, status, latency, the sha256 of the
//! policy that decided (and of its settings), the uid the signal went on
//! behalf of (absent: sigd's own authority) and the caller's trace id.
//!
//! Each event carries its decision id (the answer's `sigd-decision-id`
//! header) and, for a request a policy decided, its decision `record`
//! ([`Record`]): what `sigd policy replay` decides again.
//!
//! `--log-format json` makes each event one JSON object per line (the
//! record an object inside it). The fields are one struct ([`Event`]),
//! each part written in one go into the log line: as JSON members, or as
//! ` name=value` pairs for people. A request hands its event's parts to the
//! log's thread ([`logs::defer`]), where the event is gathered and written,
//! with the time of the request.

use crate::caller::{Peer, Remote, Transport};
use crate::decision::{Decision, MAX_LISTED};
use crate::guard::Authority;
use crate::host_calls::Action;
use crate::logs;
use crate::process::KillError;
use crate::record::{Record, Unmade};
use crate::shares::Holder;
use http::HeaderMap;
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// The target of audit events.
pub const TARGET: &str = "sigd::audit";

/// Whether audit events are written at all.
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

/// The trace id of a W3C `traceparent` header (`00-<trace id>-<span>-<flags>`).
pub fn trace_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    let mut parts = value.trim().split('-');
    let (_version, trace) = (parts.next()?, parts.next()?);
    let valid = trace.len() == 32
        && trace.bytes().all(|b| b.is_ascii_hexdigit())
        && trace.bytes().any(|b| b != b'0');
    valid.then(|| trace.to_ascii_lowercase())
}

/// Log the audit event of one signal request `decision_id` from `peer`,
/// presenting `principal`'s token. `decided` is its `{pid}` segment, its
/// decision and its record's parts, `None` when it was refused before any
/// policy saw it. Nothing is copied but the principal and the peer: the
/// parts go to the log's thread, which makes the record and writes the
/// event ([`write`]) with the time of this call.
#[allow(clippy::too_many_arguments)]
pub fn log(
    decision_id: String,
    status: u16,
    code: String,
    took: Duration,
    trace_id: Option<String>,
    principal: Option<&str>,
    peer: &Peer,
    decided: Option<(String, Decision, Option<Unmade>)>,
) {
    // Nothing is gathered or formatted when audit events are off.
    if !enabled() {
        return;
    }
    let size = decided.as_ref().map_or(512, |(segment, decision, record)| {
        // The record's size counts every call; without one they wait here all the same.
        let record_or_calls = match record {
            Some(record) => record.size(segment, decision),
            None => decision.actions.iter().map(Action::size).sum(),
        };
        512 + 2 * segment.len() + record_or_calls
    });
    // What callers held to shares can send without end may fill only
    // their share of the log's queue: the rest is kept for the others, and
    // half of it for root's and the operator's.
    let uid = peer.credentials.map(|credentials| credentials.uid);
    let room = match Holder::named(uid, principal) {
        Holder::Trusted => logs::Room::All,
        held => logs::Room::Share(held),
    };
    let (principal, peer) = (principal.map(str::to_string), peer.clone());
    logs::defer(size, room, move || {
        let decided = decided.as_ref().map(|(segment, decision, record)| {
            let record = record
                .as_ref()
                .map(|r| r.record(&decision_id, segment, decision));
            (segment.as_str(), decision, record)
        });
        let decided = (decided.as_ref())
            .map(|(segment, decision, record)| (*segment, *decision, record.as_ref()));
        write(
            &decision_id,
            status,
            &code,
            took,
            trace_id.as_deref(),
            principal.as_deref(),
            &peer,
            decided,
        );
    });
}

/// Write the audit event [`log`] was given.
#[allow(clippy::too_many_arguments)]
fn write(
    decision_id: &str,
    status: u16,
    code: &str,
    took: Duration,
    trace_id: Option<&str>,
    principal: Option<&str>,
    peer: &Peer,
    decided: Option<(&str, &Decision, Option<&Record>)>,
) {
    let record = decided.and_then(|(.., record)| record);
    let decided = decided.map(|(pid, decision, _)| (pid, decision));
    let actions = decided
        .map(|(_, d)| d.actions.as_slice())
        .unwrap_or_default();
    let opened = actions.iter().find_map(|action| match action {
        Action::Opened { pid, start_time } => Some((*pid, *start_time)),
        _ => None,
    });
    let signalled = actions.iter().find_map(|action| match action {
        Action::Signalled {
            signal,
            scope,
            outcome,
            unlisted,
            ..
        } => Some((*signal, *scope, outcome, *unlisted)),
        _ => None,
    });
    // What happened: "delivered", the host's refusal, or the answer's code.
    let (decision, errno) = match signalled {
        Some((_, _, Ok(_), _)) => (Cow::Borrowed("delivered"), None),
        Some((_, _, Err(error), _)) => (Cow::Borrowed("refused"), Some(errno(error))),
        None if code.is_empty() => (Cow::Borrowed("answered"), None),
        None => (Cow::Owned(code.to_ascii_lowercase()), None),
    };
    let (delivered, unlisted): (&[i32], usize) = match signalled {
        Some((_, _, Ok(pids), unlisted)) => (pids, unlisted),
        _ => (&[], 0),
    };
    let (transport, remote) = match &peer.transport {
        Transport::Tcp(remote) => ("tcp", Some(remote)),
        Transport::Unix => ("unix", None),
    };
    let event = Event {
        decision_id,
        principal,
        peer_pid: peer.credentials.and_then(|c| c.pid),
        peer_uid: peer.credentials.map(|c| c.uid),
        transport,
        remote,
        pid: match opened {
            Some((pid, _)) => Pid::Opened(pid),
            None => Pid::Asked(decided.map(|(pid, _)| pid).unwrap_or_default()),
        },
        start_time: opened.and_then(|(_, start)| start),
        signal: signalled.map(|(signal, ..)| signal),
        scope: signalled.map(|(_, scope, ..)| scope.name()),
        decision,
        errno,
        delivered_to: Listed(&delivered[..delivered.len().min(MAX_LISTED)]),
        delivered_count: delivered.len() + unlisted,
        status,
        code,
        latency_us: took.as_micros() as u64,
        // Whose authority the signal used: the uid it went on behalf of, if any.
        on_behalf_of_uid: actions.iter().find_map(|action| match action {
            Action::Signalled {
                authority: Authority::OnBehalfOf(uid),
                ..
            } => Some(*uid),
            _ => None,
        }),
        policy_sha256: decided.map(|(_, d)| &*d.policy_sha256),
        settings_sha256: decided.and_then(|(_, d)| d.settings_sha256.as_deref()),
        trace_id,
        escalation: actions
            .iter()
            .any(|a| matches!(a, Action::Escalated { .. })),
        wait_cut_short: actions
            .iter()
            .any(|a| matches!(a, Action::Waited { waited, .. } if waited.cut_short))
            .then_some(true),
        record,
    };
    // Each written in one go into the line, not field by field (see
    // `logs::INLINE_FIELD`).
    if logs::json() {
        tracing::info!(target: TARGET, audit = %AsJson(&event), "signal request");
    } else {
        tracing::info!(target: TARGET, audit = %AsText(&event), "signal request");
    }
}

/// One audit event's fields, in the order they are written; absent ones
/// (`None`) are left out.
#[derive(Serialize)]
struct Event<'a> {
    decision_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_uid: Option<u32>,
    transport: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<&'a Remote>,
    /// The pid opened, or the `{pid}` segment as it arrived.
    pid: Pid<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'static str>,
    decision: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errno: Option<String>,
    /// At most [`MAX_LISTED`], as the answer lists them: `"[3, 4]"`.
    delivered_to: Listed<'a>,
    delivered_count: usize,
    status: u16,
    code: &'a str,
    latency_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_behalf_of_uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settings_sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    escalation: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_cut_short: Option<bool>,
    /// Last: a text line ends with it, `record={...}` (`sigd policy
    /// replay` finds it there).
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a Record>,
}

/// The target's pid: as opened (a number), or the segment as it arrived.
enum Pid<'a> {
    Opened(i32),
    Asked(&'a str),
}

impl Serialize for Pid<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A string either way, as it always was.
        serializer.collect_str(self)
    }
}

impl fmt::Display for Pid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pid::Opened(pid) => write!(f, "{pid}"),
            Pid::Asked(segment) => f.write_str(segment),
        }
    }
}

/// Pids as one string, `[3, 4]`.
#[derive(Clone, Copy)]
struct Listed<'a>(&'a [i32]);

impl Serialize for Listed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Listed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// An event as a JSON object (`--log-format json`; `logs.rs` writes its
/// members into the line), written in one piece.
struct AsJson<'a>(&'a Event<'a>);

impl fmt::Display for AsJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // serde_json writes into a buffer far faster than it writes through
        // a formatter (a call per token); sized for a whole event with its
        // record, so it is not grown (and copied) four times on the way.
        write_built(f, || {
            let mut json = Vec::with_capacity(2048);
            serde_json::to_writer(&mut json, self.0).map_err(|_| fmt::Error)?;
            Ok(json)
        })
    }
}

/// Write what `build` builds into `f`, in one go. A panic in `build` (a
/// bug) fails this event's formatting, which tracing then reports in a
/// line of its own, rather than leaving half a line in tracing's buffer of
/// the log's thread, where the next line would begin.
fn write_built(
    f: &mut fmt::Formatter<'_>,
    build: impl FnOnce() -> Result<Vec<u8>, fmt::Error>,
) -> fmt::Result {
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(build));
    let built = built.map_err(|_| fmt::Error)??;
    f.write_str(std::str::from_utf8(&built).map_err(|_| fmt::Error)?)
}

/// An event as ` name=value` pairs, as tracing writes fields for people:
/// strings quoted and escaped (as `{:?}` does), a peer's address and
/// numbers as they are, and last the record as JSON. Built in one buffer
/// and written once: each `write!` through a formatter costs more than the
/// pair it writes, and this is done for every request.
struct AsText<'a>(&'a Event<'a>);

impl fmt::Display for AsText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_built(f, || self.pairs())
    }
}

impl AsText<'_> {
    /// The pairs, the record last.
    fn pairs(&self) -> Result<Vec<u8>, fmt::Error> {
        let e = self.0;
        let mut out = Pairs(Vec::with_capacity(2048));
        out.quoted("decision_id", e.decision_id);
        if let Some(principal) = e.principal {
            out.quoted("principal", principal);
        }
        if let Some(pid) = e.peer_pid {
            out.number("peer_pid", pid);
        }
        if let Some(uid) = e.peer_uid {
            out.number("peer_uid", uid);
        }
        out.quoted("transport", e.transport);
        if let Some(remote) = e.remote {
            out.plain("remote", remote.as_str());
        }
        match e.pid {
            Pid::Opened(pid) => out.quoted("pid", itoa::Buffer::new().format(pid)),
            // As it arrived: escaped, like every string from a caller.
            Pid::Asked(segment) => out.quoted("pid", segment),
        }
        if let Some(start_time) = e.start_time {
            out.number("start_time", start_time);
        }
        if let Some(signal) = e.signal {
            out.number("signal", signal);
        }
        if let Some(scope) = e.scope {
            out.quoted("scope", scope);
        }
        out.quoted("decision", &e.decision);
        if let Some(errno) = &e.errno {
            out.quoted("errno", errno);
        }
        out.listed("delivered_to", e.delivered_to);
        out.number("delivered_count", e.delivered_count);
        out.number("status", e.status);
        out.quoted("code", e.code);
        out.number("latency_us", e.latency_us);
        if let Some(uid) = e.on_behalf_of_uid {
            out.number("on_behalf_of_uid", uid);
        }
        if let Some(sha256) = e.policy_sha256 {
            out.quoted("policy_sha256", sha256);
        }
        if let Some(sha256) = e.settings_sha256 {
            out.quoted("settings_sha256", sha256);
        }
        if let Some(trace_id) = &e.trace_id {
            out.quoted("trace_id", trace_id);
        }
        out.flag("escalation", e.escalation);
        if let Some(cut_short) = e.wait_cut_short {
            out.flag("wait_cut_short", cut_short);
        }
        if let Some(record) = e.record {
            out.0.extend_from_slice(b" record=");
            serde_json::to_writer(&mut out.0, record).map_err(|_| fmt::Error)?;
        }
        Ok(out.0)
    }
}

/// ` name=value` pairs, written into one buffer.
struct Pairs(Vec<u8>);

impl Pairs {
    /// What was written.
    #[cfg(test)]
    fn text(&self) -> Result<&str, fmt::Error> {
        std::str::from_utf8(&self.0).map_err(|_| fmt::Error)
    }

    /// ` name=value`, `value` as it is.
    fn plain(&mut self, name: &str, value: &str) {
        self.0.push(b' ');
        self.0.extend_from_slice(name.as_bytes());
        self.0.push(b'=');
        self.0.extend_from_slice(value.as_bytes());
    }

    /// ` name=n`.
    fn number(&mut self, name: &str, n: impl itoa::Integer) {
        self.plain(name, itoa::Buffer::new().format(n));
    }

    /// ` name="[3, 4]"`: pids quoted as the one string they are, as
    /// [`Listed`] writes them.
    fn listed(&mut self, name: &str, pids: Listed<'_>) {
        use std::io::Write as _;
        let _ = write!(self.0, " {name}=\"{pids}\"");
    }

    /// ` name=true` or ` name=false`.
    fn flag(&mut self, name: &str, value: bool) {
        self.plain(name, if value { "true" } else { "false" });
    }

    /// ` name="value"`, escaped exactly as `{:?}` escapes a `str`: as it
    /// is when every byte is printable ASCII but `"` and `\` (what
    /// `{:?}` leaves alone), through `{:?}` otherwise.
    fn quoted(&mut self, name: &str, value: &str) {
        let plain = (value.bytes()).all(|b| matches!(b, b' '..=b'~') && b != b'"' && b != b'\\');
        if plain {
            self.0.push(b' ');
            self.0.extend_from_slice(name.as_bytes());
            self.0.extend_from_slice(b"=\"");
            self.0.extend_from_slice(value.as_bytes());
            self.0.push(b'"');
        } else {
            use std::io::Write as _;
            let _ = write!(self.0, " {name}={value:?}");
        }
    }
}

/// The errno behind a refusal (`protected`: refused before any syscall).
fn errno(error: &KillError) -> String {
    match error {
        KillError::NotFound => "ESRCH".into(),
        KillError::PermissionDenied => "EPERM".into(),
        KillError::InvalidSignal => "EINVAL".into(),
        KillError::Protected => "protected".into(),
        KillError::NotPermitted => "not-permitted".into(),
        KillError::NoRoom(error) => format!("{:?}", error.0),
        KillError::Moving => "moving".into(),
        KillError::EscalationsFull(_) => "escalations-full".into(),
        KillError::Failed(errno) => format!("{errno:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a well-formed, non-zero W3C trace id is taken.
    #[test]
    fn traceparent() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("traceparent", value.parse().unwrap());
            trace_id(&headers)
        };
        assert_eq!(
            with("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            with("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(with("00-xyz-00f067aa0ba902b7-01"), None);
        assert_eq!(with("garbage"), None);
        assert_eq!(trace_id(&HeaderMap::new()), None);
    }

    /// A panic while an event's text is built (a bug) fails its
    /// formatting and writes nothing of it: no half line is left for the
    /// next line to begin with.
    #[test]
    fn a_panic_while_built_writes_nothing() {
        struct Built(bool);
        impl fmt::Display for Built {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("before ")?;
                write_built(f, || match self.0 {
                    true => panic!("a bug"),
                    false => Ok(b"built".to_vec()),
                })
            }
        }
        assert_eq!(Built(false).to_string(), "before built");
        let mut text = String::new();
        assert!(fmt::write(&mut text, format_args!("{}", Built(true))).is_err());
        assert_eq!(text, "before ");
    }

    /// The pairs' writer escapes a string exactly as `{:?}` does, whether
    /// it takes the fast path (nothing to escape) or not, and lists pids
    /// as `{:?}` writes a slice.
    #[test]
    fn pairs_are_written_as_debug_writes_them() {
        let strings = [
            "",
            "plain text ~!@#$%^&*()_+{}|:<>?`-=[];',./",
            "3f9c0e5a1b2d4c6e-9a0b1c2d3e4f5061",
            "a \"quoted\" word",
            "back\\slash",
            "new\nline\ttab\rreturn",
            "\u{1b}[31mred\u{7f}\u{0}",
            "caf\u{e9} \u{1f600} \u{200b}",
        ];
        for value in strings {
            let mut pairs = Pairs(Vec::new());
            pairs.quoted("name", value);
            assert_eq!(pairs.text(), Ok(&*format!(" name={value:?}")), "{value:?}");
        }
        for pids in [&[][..], &[3], &[3, -4, i32::MAX]] {
            let mut pairs = Pairs(Vec::new());
            pairs.listed("delivered_to", Listed(pids));
            assert_eq!(pairs.text(), Ok(&*format!(" delivered_to=\"{pids:?}\"")));
        }
        let mut pairs = Pairs(Vec::new());
        pairs.number("start_time", u64::MAX);
        pairs.number("peer_pid", -1);
        let expected = format!(" start_time={} peer_pid=-1", u64::MAX);
        assert_eq!(pairs.text(), Ok(&*expected));
    }
}
