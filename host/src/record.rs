//! Decision records: what a replay needs of one decided signal request,
//! written in its audit event (`record`, one JSON object; see the README's
//! "Decision records" for every field) and read back by `sigd policy
//! replay`. A record holds the request as the policy saw it (the `{pid}`
//! segment, the body, the caller; the headers it read are among its calls),
//! every host call with what the host answered, the answer sent, and the
//! sha256 of the policy and settings that decided.
//!
//! Bounded: the body is at most `--max-body-bytes` and the answer at most
//! the policy's response limit (64 KiB each by default); every signal and
//! escalation is kept (what the host notes of a call is bounded,
//! [`MAX_NOTED_BYTES`](crate::host_calls::MAX_NOTED_BYTES)), and at most
//! [`MAX_CALLS`] other calls (`calls_left_out` counts the rest), each
//! header read once, and at most [`MAX_LISTED`](crate::decision::MAX_LISTED) pids over all of a
//! record's signals.

use crate::caller::Caller;
use crate::decision::Decision;
use crate::host_calls::Action;
use crate::policy::hex;
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;

/// The most host calls a record keeps, but for signals and escalations,
/// which it keeps all.
pub const MAX_CALLS: usize = 64;

/// A new decision id: 32 hex digits, the first 16 drawn once per sigd
/// process, the last 16 a keyed hash of a counter (`3f9c0e5a1b2d4c6e-
/// 9a0b...`). Unique but for a 1-in-2^64 chance; sequential ids would tell
/// any caller how many requests others made.
pub fn next_decision_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEYS: OnceLock<(u64, RandomState)> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    // RandomState's keys are random per process (std draws them from the
    // kernel): what it hashes comes out unpredictable.
    let (prefix, keyed) = KEYS.get_or_init(|| {
        let keyed = RandomState::new();
        (keyed.hash_one(std::process::id()), keyed)
    });
    let mut hasher = keyed.build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    let mut id = String::with_capacity(33);
    push_hex(&mut id, *prefix);
    id.push('-');
    push_hex(&mut id, hasher.finish());
    id
}

/// `n` as 16 lower-case hex digits (what `format!("{n:016x}")` writes,
/// without the formatting machinery: this is made for every request).
fn push_hex(text: &mut String, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        text.push(char::from(DIGITS[(n >> (shift * 4)) as usize & 0xf]));
    }
}

/// One decided request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The decision id (also the answer's `sigd-decision-id` header).
    pub decision_id: String,
    pub policy_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_sha256: Option<String>,
    pub request: RecordedRequest,
    /// SIGRTMIN and SIGRTMAX of the host that decided.
    pub realtime: [i32; 2],
    /// The host calls, in order, with the host's answers.
    pub calls: Vec<Action>,
    /// Host calls made past [`MAX_CALLS`], not kept: a replay cannot
    /// answer them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub calls_left_out: usize,
    pub answer: RecordedAnswer,
}

/// The request as the policy saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// The `{pid}` path segment, as it arrived.
    pub pid: String,
    pub body: Body,
    pub caller: Caller,
}

/// A request body: `{"text": "..."}` when it is UTF-8, else `{"hex": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    Text(String),
    Hex(String),
}

impl Body {
    /// `bytes`, as a record holds them.
    pub fn of(bytes: &[u8]) -> Body {
        match std::str::from_utf8(bytes) {
            Ok(text) => Body::Text(text.to_string()),
            Err(_) => Body::Hex(hex(bytes)),
        }
    }

    /// The bytes again (a malformed hex string gives what could be read).
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Text(text) => text.as_bytes().to_vec(),
            Body::Hex(hex) => (0..hex.len() / 2)
                .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect(),
        }
    }
}

/// What the caller was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedAnswer {
    pub status: u16,
    /// The body's error code, `""` for a success.
    pub code: String,
    /// The body sent.
    pub body: String,
    /// Why the policy gave no usable answer, if it did not (the answer is
    /// then the host's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_failed: Option<String>,
}

/// A decided request's record before it is made: what it holds besides
/// the decision, the decision id and the `{pid}` segment, which travel with
/// it anyway. The audit log makes the record on the log's thread, where it
/// is written, so a request neither copies the decision's parts for it nor
/// leaves those copies for another thread to free (a shadow makes its own
/// copy in the request, when its queue has room).
#[derive(Debug, Clone)]
pub struct Unmade {
    body: Body,
    caller: Caller,
    answer: RecordedAnswer,
    realtime: [i32; 2],
}

impl Unmade {
    /// What the record of a request with `body` from `caller`, answered
    /// `answer`, on a host whose real-time signals are `realtime`, is made of.
    pub fn new(
        body: &[u8],
        caller: Caller,
        answer: RecordedAnswer,
        realtime: RangeInclusive<i32>,
    ) -> Unmade {
        Unmade {
            body: Body::of(body),
            caller,
            answer,
            realtime: [*realtime.start(), *realtime.end()],
        }
    }

    /// Make the record of `decision` of the request `pid`, under the id
    /// `decision_id`. It copies what it takes: the audit log makes it on
    /// the log's thread and frees it there, leaving what the request
    /// allocated to be freed where it was allocated (`logs::defer`).
    pub fn record(&self, decision_id: &str, pid: &str, decision: &Decision) -> Record {
        let (calls, calls_left_out) = bounded(&decision.actions);
        Record {
            decision_id: decision_id.to_string(),
            policy_sha256: decision.policy_sha256.to_string(),
            settings_sha256: decision.settings_sha256.as_deref().map(str::to_string),
            request: RecordedRequest {
                pid: pid.to_string(),
                body: self.body.clone(),
                caller: self.caller.clone(),
            },
            realtime: self.realtime,
            calls,
            calls_left_out,
            answer: self.answer.clone(),
        }
    }

    /// About the bytes of its record, for bounding what waits to be
    /// written ([`logs::defer`](crate::logs::defer)): a fixed part, what a
    /// caller or policy chose (the `{pid}` segment, body, answer and its
    /// code, failure) twice, for what escaping adds to quotes and
    /// backslashes (a control character's six bytes are beyond it), and
    /// every call (the record keeps at most [`MAX_CALLS`] of those that
    /// are not acts). Never less than the record holds before it is
    /// written.
    pub fn size(&self, pid: &str, decision: &Decision) -> usize {
        let (Body::Text(body) | Body::Hex(body)) = &self.body;
        let calls: usize = decision.actions.iter().map(Action::size).sum();
        let answer = &self.answer;
        let failed = answer.policy_failed.as_ref().map_or(0, String::len);
        let texts = pid.len() + body.len() + answer.code.len() + answer.body.len() + failed;
        512 + 2 * texts + calls
    }
}

/// Every signal and escalation of `calls`, and the first [`MAX_CALLS`]
/// others; and how many were left out past those. So no act of the host
/// goes unrecorded, however many calls a policy makes before it. (The
/// calls come as the host noted them, bounded there: each header once, at
/// most [`MAX_LISTED`](crate::decision::MAX_LISTED) pids over all signals; `HostCalls::note`.)
fn bounded(calls: &[Action]) -> (Vec<Action>, usize) {
    let (mut kept, mut others, mut left_out) = (Vec::new(), 0, 0);
    for call in calls {
        if call.acted() || others < MAX_CALLS {
            others += usize::from(!call.acted());
            kept.push(call.clone());
        } else {
            left_out += 1;
        }
    }
    (kept, left_out)
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::{Authority, Scope, Waited};

    /// A decision id is 16 hex digits drawn once, a dash, and 16 more that
    /// differ from one id to the next.
    #[test]
    fn decision_ids() {
        let (a, b) = (next_decision_id(), next_decision_id());
        for id in [&a, &b] {
            assert_eq!(id.len(), 33, "{id}");
            assert_eq!(&id[16..17], "-");
            assert!(
                id[..16]
                    .bytes()
                    .chain(id[17..].bytes())
                    .all(|c| c.is_ascii_hexdigit())
            );
        }
        assert_eq!(a[..16], b[..16]);
        assert_ne!(a[17..], b[17..]);
        let mut text = String::new();
        push_hex(&mut text, 0x0123_4567_89ab_cdef);
        assert_eq!(text, "0123456789abcdef");
    }
    use crate::process::{ExitStatus, KillError};
    use std::time::Duration;

    /// A record of calls as the host notes them keeps a header read once
    /// however often the policy read it, at most MAX_LISTED pids over all
    /// its signals, every signal, and MAX_CALLS other calls, counting the
    /// rest: a signal after them is kept too (before, a policy could hide
    /// one behind 64 reads).
    #[test]
    fn records_are_bounded() {
        let header = Action::ReadHeader {
            name: "x-big".into(),
            value: Some("v".repeat(8000)),
        };
        let signal = Action::Signalled {
            pid: 42,
            signal: 15,
            scope: Scope::Tree,
            authority: Authority::Sigd,
            outcome: Ok((1..=700).collect()),
            unlisted: 0,
        };
        let mut calls = vec![header.clone(), header, signal.clone(), signal.clone()];
        calls.extend((0..100).map(|pid| Action::NoProcess { pid }));
        calls.push(signal);
        let (kept, left_out) = bounded(&crate::host_calls::noted(calls.clone()));
        let headers = kept
            .iter()
            .filter(|c| matches!(c, Action::ReadHeader { .. }));
        assert_eq!(headers.count(), 1);
        let pids: usize = kept
            .iter()
            .map(|call| match call {
                Action::Signalled { outcome: Ok(p), .. } => p.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(pids, crate::decision::MAX_LISTED);
        let signals = kept.iter().filter(|c| c.acted()).count();
        assert_eq!(signals, 3);
        assert!(
            kept.last().is_some_and(Action::acted),
            "the last signal was left out"
        );
        assert_eq!(kept.len(), MAX_CALLS + signals);
        // Besides the signals and the header read again: the calls left out.
        assert_eq!(left_out, calls.len() - kept.len() - 1);
    }

    /// What the queue of lines to be written counts for a record before it
    /// is made is no less than the record's JSON when what a caller or
    /// policy chose is all quotes (each escaped, twice as long): a body, an
    /// answer and its code, a failure, a header's value, read after the
    /// same header was read more times than a record keeps calls.
    #[test]
    fn an_unmade_records_size_bounds_its_json() {
        use crate::policy::{CallError, Limit};
        let read = |name: &str, value: String| Action::ReadHeader {
            name: name.into(),
            value: Some(value),
        };
        let mut actions: Vec<Action> = (0..MAX_CALLS + 1).map(|_| read("a", "x".into())).collect();
        actions.push(read("b", "\"".repeat(3000)));
        actions.push(Action::Signalled {
            pid: 42,
            signal: 15,
            scope: Scope::Tree,
            authority: Authority::OnBehalfOf(1000),
            outcome: Ok((1..=10).collect()),
            unlisted: 0,
        });
        let decision = Decision {
            answer: Err(CallError::Limit(Limit::Memory)),
            actions: crate::host_calls::noted(actions),
            took: std::time::Duration::ZERO,
            policy_sha256: "ab".repeat(32).into(),
            settings_sha256: Some("cd".repeat(32).into()),
            fell_back: None,
        };
        let answer = RecordedAnswer {
            status: 500,
            code: "\"".repeat(100),
            body: "\"".repeat(2000),
            policy_failed: Some("\"".repeat(500)),
        };
        let caller = Caller::local(Some(1000), Some("ops".into()));
        let unmade = Unmade::new("\"".repeat(4000).as_bytes(), caller, answer, 34..=64);
        let size = unmade.size("\"42", &decision);
        let record = unmade.record(&next_decision_id(), "\"42", &decision);
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.len() <= size, "{} > {size}", json.len());
    }

    /// Every kind of call, and a body that is not UTF-8, reads back as written.
    #[test]
    fn reads_back_as_written() {
        let record = Record {
            decision_id: "d-1".into(),
            policy_sha256: "ab".into(),
            settings_sha256: None,
            request: RecordedRequest {
                pid: "42".into(),
                body: Body::of(&[0xff, 0x00, b'{']),
                caller: Caller::local(Some(1000), Some("ci".into())),
            },
            realtime: [34, 64],
            calls: vec![
                Action::ReadHeader {
                    name: "x-why".into(),
                    value: Some("deploy".into()),
                },
                Action::Opened {
                    pid: 42,
                    start_time: Some(7),
                },
                Action::Inspected {
                    pid: 42,
                    state: Some(crate::process::RunState::Sleeping),
                },
                Action::Signalled {
                    pid: 42,
                    signal: 15,
                    scope: Scope::Tree,
                    authority: Authority::OnBehalfOf(1000),
                    outcome: Ok(vec![42, 43]),
                    unlisted: 0,
                },
                Action::Escalated {
                    pid: 42,
                    after_ms: 100,
                    signal: 9,
                    scope: Scope::Tree,
                    authority: Authority::Sigd,
                    outcome: Err(KillError::EscalationsFull(crate::escalations::Full {
                        max: 4,
                        share: true,
                    })),
                },
                Action::Waited {
                    pid: 42,
                    timeout_ms: 50,
                    waited: Waited {
                        exit: Some(ExitStatus::Signal(15)),
                        took: Duration::from_micros(1234),
                        cut_short: false,
                    },
                },
            ],
            calls_left_out: 0,
            answer: RecordedAnswer {
                status: 200,
                code: String::new(),
                body: "{}".into(),
                policy_failed: None,
            },
        };
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), record);
        assert_eq!(record.request.body.bytes(), [0xff, 0x00, b'{']);
        for error in [
            KillError::NotFound,
            KillError::NoRoom(crate::process::NoRoom(nix::errno::Errno::EMFILE)),
            KillError::Moving,
            KillError::Failed(nix::errno::Errno::EIO),
        ] {
            assert_eq!(KillError::try_from(error.name()), Ok(error));
        }
    }
}
