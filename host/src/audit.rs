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
//! record an object inside it).

use crate::caller::{Peer, Transport};
use crate::decision::{Decision, MAX_LISTED};
use crate::guard::Authority;
use crate::host_calls::Action;
use crate::process::KillError;
use crate::record::Record;
use http::HeaderMap;
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

/// Write the audit event of one signal request `decision_id` from `peer`,
/// presenting `principal`'s token. `decided` is its `{pid}` segment, its
/// decision and its record, `None` when it was refused before any policy
/// saw it.
#[allow(clippy::too_many_arguments)]
pub fn log(
    decision_id: &str,
    status: u16,
    code: &str,
    took: Duration,
    trace_id: Option<String>,
    principal: Option<&str>,
    peer: &Peer,
    decided: Option<(&str, &Decision, Option<&Record>)>,
) {
    // Nothing is gathered or formatted when audit events are off.
    if !enabled() {
        return;
    }
    let record = decided
        .and_then(|(.., record)| record)
        .and_then(|record| serde_json::to_string(record).ok());
    let decided = decided.map(|(pid, decision, _)| (pid, decision));
    let actions = decided
        .map(|(_, d)| d.actions.as_slice())
        .unwrap_or_default();
    let policy_sha256 = decided.map(|(_, d)| &*d.policy_sha256);
    let opened = actions.iter().find_map(|action| match action {
        Action::Opened { pid, start_time } => Some((*pid, *start_time)),
        _ => None,
    });
    let signalled = actions.iter().find_map(|action| match action {
        Action::Signalled {
            signal,
            scope,
            outcome,
            ..
        } => Some((*signal, *scope, outcome)),
        _ => None,
    });
    // Whose authority the signal used: the uid it went on behalf of, if any.
    let on_behalf_of_uid = actions.iter().find_map(|action| match action {
        Action::Signalled {
            authority: Authority::OnBehalfOf(uid),
            ..
        } => Some(*uid),
        _ => None,
    });
    let settings_sha256 = decided.and_then(|(_, d)| d.settings_sha256.as_deref());
    let pid = match opened {
        Some((pid, _)) => pid.to_string(),
        None => decided.map(|(pid, _)| pid.to_string()).unwrap_or_default(),
    };
    // What happened: "delivered", the host's refusal, or the answer's code.
    let (decision, errno) = match signalled {
        Some((_, _, Ok(_))) => ("delivered".to_string(), None),
        Some((_, _, Err(error))) => ("refused".to_string(), Some(errno(error))),
        None if code.is_empty() => ("answered".to_string(), None),
        None => (code.to_ascii_lowercase(), None),
    };
    // Bounded like the answer's list: the first MAX_LISTED pids, and a count.
    let delivered: &[i32] = match signalled {
        Some((_, _, Ok(pids))) => pids,
        _ => &[],
    };
    let delivered_to = format!("{:?}", &delivered[..delivered.len().min(MAX_LISTED)]);
    let credentials = peer.credentials;
    let (transport, remote) = match &peer.transport {
        Transport::Tcp(remote) => ("tcp", Some(remote)),
        Transport::Unix => ("unix", None),
    };
    tracing::info!(
        target: TARGET,
        decision_id,
        principal,
        peer_pid = credentials.and_then(|c| c.pid),
        peer_uid = credentials.map(|c| c.uid),
        transport,
        // Formatted only when the event is written.
        remote = remote.map(tracing::field::display),
        pid,
        start_time = opened.map(|(_, start)| start),
        signal = signalled.map(|(signal, ..)| signal),
        scope = signalled.map(|(_, scope, _)| scope.name()),
        decision,
        errno,
        delivered_to,
        delivered_count = delivered.len(),
        status,
        code,
        latency_us = took.as_micros() as u64,
        on_behalf_of_uid,
        policy_sha256,
        settings_sha256,
        trace_id,
        escalation = actions.iter().any(|a| matches!(a, Action::Escalated { .. })),
        wait_cut_short = actions
            .iter()
            .any(|a| matches!(a, Action::Waited { waited, .. } if waited.cut_short))
            .then_some(true),
        // Written as a JSON object with --log-format json (see logs.rs).
        record = record.as_deref().map(tracing::field::display),
        "signal request"
    );
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
}
