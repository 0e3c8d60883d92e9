//! Deciding a recorded request again: [`Recorded`], the host that answers
//! a policy's calls from a [`Record`] (never from the live system), and
//! [`Verdict`], what two decisions of one request are compared on. `sigd
//! policy replay` (`kit/replay.rs`) and the shadow policy (`shadow.rs`)
//! both decide this way.
//!
//! A call is answered only by a recorded call with the same arguments:
//! `open` and `request-header` as often as asked (they name facts fixed for
//! the request), the others each once, in order (a state read twice may
//! have changed between the reads). Anything else is not guessed: the host
//! notes it as [`Action::Unanswered`] and the decision is not compared.

use crate::guard::{Authority, Scope, Waited};
use crate::host_calls::Action;
use crate::http;
use crate::policy::Policy;
use crate::process::{KillError, ProcessInfo, RunState};
use crate::record::{MAX_CALLS, Record};
use serde::Serialize;
use std::ops::RangeInclusive;

/// The host of a replay: a record's calls, each marked once used.
pub struct Recorded {
    calls: Vec<(Action, bool)>,
    realtime: RangeInclusive<i32>,
}

impl Recorded {
    /// The host that answers from `record`.
    pub fn new(record: &Record) -> Recorded {
        Recorded {
            calls: record
                .calls
                .iter()
                .cloned()
                .map(|call| (call, false))
                .collect(),
            realtime: record.realtime[0]..=record.realtime[1],
        }
    }

    /// The answer of the first recorded call `answer` makes one of (and is
    /// not used yet, unless `reusable`), marking it used.
    fn take<T>(&mut self, reusable: bool, answer: impl Fn(&Action) -> Option<T>) -> Option<T> {
        self.calls.iter_mut().find_map(|(call, used)| {
            if *used && !reusable {
                return None;
            }
            let found = answer(call)?;
            *used = true;
            Some(found)
        })
    }

    pub fn realtime(&self) -> RangeInclusive<i32> {
        self.realtime.clone()
    }

    /// The header `name` as the policy read it; `None`: never read.
    pub fn header(&mut self, name: &str) -> Option<Option<String>> {
        self.take(true, |call| match call {
            Action::ReadHeader { name: read, value } if read.eq_ignore_ascii_case(name) => {
                Some(value.clone())
            }
            _ => None,
        })
    }

    /// How opening `pid` went, as noted: `opened`, `no_process` or `no_room`.
    pub fn open(&mut self, pid: i32) -> Option<Action> {
        self.take(true, |call| match *call {
            Action::Opened { pid: p, .. }
            | Action::NoProcess { pid: p }
            | Action::NoRoom { pid: p, .. }
                if p == pid =>
            {
                Some(call.clone())
            }
            _ => None,
        })
    }

    pub fn info(&mut self, pid: i32) -> Option<Option<ProcessInfo>> {
        self.take(false, |call| match call {
            Action::Described { pid: p, info } if *p == pid => Some(info.clone()),
            _ => None,
        })
    }

    /// Whether `pid` had not exited when it was opened: as the look that
    /// opened it found (`probed`), or else as the state read noted right
    /// after its `opened` said (`open-with-state` and `open-with-info` note
    /// the look that opened it so; gone is not alive). A state read later
    /// in the record, after a signal say, does not tell how it was at the
    /// open: not answered.
    pub fn alive(&mut self, pid: i32) -> Option<bool> {
        let probed = self.take(false, |call| match *call {
            Action::Probed { pid: p, alive } if p == pid => Some(alive),
            _ => None,
        });
        probed.or_else(|| {
            Some(
                self.state_when_opened(pid)?
                    .is_some_and(|s| !s.has_exited()),
            )
        })
    }

    /// The first state read not used yet that was noted right after an
    /// `opened` of `pid` (the same look), marking it used.
    fn state_when_opened(&mut self, pid: i32) -> Option<Option<RunState>> {
        let opened = |call: &Action| matches!(*call, Action::Opened { pid: p, .. } if p == pid);
        let calls = &self.calls;
        let at = (1..calls.len()).find(|&at| {
            opened(&calls[at - 1].0) && !calls[at].1 && state_read(&calls[at].0, pid).is_some()
        })?;
        let (call, used) = &mut self.calls[at];
        *used = true;
        state_read(call, pid)
    }

    /// A state read, or the state of facts read (they hold it).
    pub fn state(&mut self, pid: i32) -> Option<Option<RunState>> {
        self.take(false, |call| state_read(call, pid))
    }

    pub fn signal(
        &mut self,
        pid: i32,
        signal: i32,
        scope: Scope,
        authority: Authority,
    ) -> Option<Result<Vec<i32>, KillError>> {
        self.take(false, |call| match call {
            Action::Signalled {
                pid: p,
                signal: s,
                scope: sc,
                authority: a,
                outcome,
                ..
            } if (*p, *s, *sc, *a) == (pid, signal, scope, authority) => Some(outcome.clone()),
            _ => None,
        })
    }

    pub fn escalate(
        &mut self,
        pid: i32,
        after_ms: u32,
        signal: i32,
        scope: Scope,
        authority: Authority,
    ) -> Option<Result<(), KillError>> {
        self.take(false, |call| match *call {
            Action::Escalated {
                pid: p,
                after_ms: ms,
                signal: s,
                scope: sc,
                authority: a,
                outcome,
            } if (p, ms, s, sc, a) == (pid, after_ms, signal, scope, authority) => Some(outcome),
            _ => None,
        })
    }

    pub fn wait_exit(&mut self, pid: i32, timeout_ms: u32) -> Option<Waited> {
        self.take(false, |call| match *call {
            Action::Waited {
                pid: p,
                timeout_ms: t,
                waited,
            } if (p, t) == (pid, timeout_ms) => Some(waited),
            _ => None,
        })
    }
}

/// What two decisions of one request are compared on: what the caller was
/// answered, what was signalled, and what escalation was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub status: u16,
    /// The answer's error code, `""` for a success.
    pub code: String,
    /// The signal sent, or refused by the host; `None`: none asked for.
    pub signal: Option<i32>,
    pub scope: Option<Scope>,
    /// The pids reached (`None`: nothing delivered).
    pub targets: Option<Vec<i32>>,
    /// The escalation asked for, if one was.
    pub escalation: Option<Escalation>,
}

/// An escalation a decision asked for: after how long, which signal, and
/// whether the host scheduled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Escalation {
    pub after_ms: u32,
    pub signal: i32,
    pub scheduled: bool,
}

impl Verdict {
    /// The verdict of an answer `status` and `code` after `calls`.
    pub fn of(status: u16, code: &str, calls: &[Action]) -> Verdict {
        let signalled = calls.iter().find_map(|call| match call {
            Action::Signalled {
                signal,
                scope,
                outcome,
                ..
            } => Some((*signal, *scope, outcome.as_ref().ok().cloned())),
            _ => None,
        });
        Verdict {
            status,
            code: code.to_string(),
            signal: signalled.as_ref().map(|(signal, ..)| *signal),
            scope: signalled.as_ref().map(|(_, scope, _)| *scope),
            targets: signalled.and_then(|(.., targets)| targets),
            escalation: calls.iter().find_map(|call| match call {
                Action::Escalated {
                    after_ms,
                    signal,
                    outcome,
                    ..
                } => Some(Escalation {
                    after_ms: *after_ms,
                    signal: *signal,
                    scheduled: outcome.is_ok(),
                }),
                _ => None,
            }),
        }
    }

    /// What changed from this verdict to `now` in the fields `changed`,
    /// for people: `status 200 -> 403, code none -> SIGNAL_NOT_ALLOWED`.
    pub fn describe_changes(&self, now: &Verdict, changed: &[&str]) -> String {
        let changes: Vec<String> = changed
            .iter()
            .map(|field| format!("{field} {} -> {}", part(self, field), part(now, field)))
            .collect();
        changes.join(", ")
    }

    /// The names of the fields that differ from `other`'s.
    pub fn differences(&self, other: &Verdict) -> Vec<&'static str> {
        [
            ("status", self.status != other.status),
            ("code", self.code != other.code),
            ("signal", self.signal != other.signal),
            ("scope", self.scope != other.scope),
            ("targets", self.targets != other.targets),
            ("escalation", self.escalation != other.escalation),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect()
    }
}

/// What the record could not answer of a replayed decision's calls.
pub fn unanswered(calls: &[Action]) -> Vec<&str> {
    calls
        .iter()
        .filter_map(|call| match call {
            Action::Unanswered { asked } => Some(asked.as_str()),
            _ => None,
        })
        .collect()
}

/// How one replayed decision compares with its record.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Compared {
    Agrees,
    /// `changed` names the fields of the verdict that differ.
    Differs {
        changed: Vec<&'static str>,
        recorded: Verdict,
        replayed: Verdict,
    },
    /// The candidate asked the host what the record cannot answer.
    Unanswered {
        asked: Vec<String>,
    },
    /// The candidate failed: it trapped, hit a limit or answered badly.
    Failed {
        error: String,
    },
}

/// Decide `record`'s request again with `policy`, and compare.
pub async fn compare(policy: &Policy, record: &Record) -> Compared {
    let decision = policy.replay(record).await;
    let asked = unanswered(&decision.actions);
    if !asked.is_empty() {
        let mut asked: Vec<String> = asked.into_iter().map(str::to_string).collect();
        if record.calls_left_out > 0 {
            asked.push(format!(
                "(the record left out {} host calls past its first {})",
                record.calls_left_out, MAX_CALLS
            ));
        }
        return Compared::Unanswered { asked };
    }
    if let Err(error) = &decision.answer
        && !decision.delivered()
    {
        return Compared::Failed {
            error: error.to_string(),
        };
    }
    let (status, code) = match http::answer(&decision) {
        Ok((status, _, code)) => (status.as_u16(), code),
        Err(error) => {
            let (status, code) = error.status_and_code();
            (status.as_u16(), code.to_string())
        }
    };
    let replayed = Verdict::of(status, &code, &decision.actions);
    let answer = &record.answer;
    let recorded = Verdict::of(answer.status, &answer.code, &record.calls);
    let changed = recorded.differences(&replayed);
    match changed.is_empty() {
        true => Compared::Agrees,
        false => Compared::Differs {
            changed,
            recorded,
            replayed,
        },
    }
}

/// One field of a verdict, for people.
fn part(verdict: &Verdict, field: &str) -> String {
    let none = || "none".to_string();
    match field {
        "status" => verdict.status.to_string(),
        "code" if verdict.code.is_empty() => "none".into(),
        "code" => verdict.code.clone(),
        "signal" => verdict.signal.map_or_else(none, |s| s.to_string()),
        "scope" => verdict.scope.map_or_else(none, |s| s.name().to_string()),
        "targets" => verdict
            .targets
            .as_ref()
            .map_or_else(none, |t| format!("{t:?}")),
        _ => String::new(),
    }
}

/// The state `call` read of `pid`, if it read one: a state read, or
/// facts read (they hold it).
fn state_read(call: &Action, pid: i32) -> Option<Option<RunState>> {
    match call {
        Action::Inspected { pid: p, state } if *p == pid => Some(*state),
        Action::Described { pid: p, info } if *p == pid => {
            Some(info.as_ref().map(|info| info.state))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escalated(signal: i32, outcome: Result<(), KillError>) -> Action {
        Action::Escalated {
            pid: 42,
            after_ms: 100,
            signal,
            scope: Scope::Process,
            authority: Authority::Sigd,
            outcome,
        }
    }

    /// Two decisions that answer and signal alike but escalate differently
    /// (or one not at all) do not agree.
    #[test]
    fn an_escalation_is_part_of_the_verdict() {
        let term = Action::Signalled {
            pid: 42,
            signal: 15,
            scope: Scope::Process,
            authority: Authority::Sigd,
            outcome: Ok(vec![42]),
            unlisted: 0,
        };
        let verdict = |calls: &[Action]| Verdict::of(200, "", calls);
        let kills = verdict(&[term.clone(), escalated(9, Ok(()))]);
        assert_eq!(
            kills.differences(&verdict(std::slice::from_ref(&term))),
            ["escalation"]
        );
        let refused = verdict(&[term.clone(), escalated(9, Err(KillError::NotFound))]);
        assert_eq!(kills.differences(&refused), ["escalation"]);
        let other = verdict(&[term, escalated(2, Ok(()))]);
        assert_eq!(kills.differences(&other), ["escalation"]);
        assert!(kills.differences(&kills.clone()).is_empty());
    }

    /// A record holds what a call learned, not how it was asked: a record
    /// made with `open` then `state` answers `open-with-state` (and the
    /// other way round), one made with `info` answers a state too, and what
    /// the record never learned (a process's facts, from a state alone) is
    /// not guessed; nor is whether a process was alive when opened from a
    /// state read later in the record.
    #[test]
    fn a_look_is_answered_however_it_was_asked() {
        use crate::host_calls::HostCalls;
        let facts = ProcessInfo {
            pid: 42,
            ppid: 1,
            pgid: 42,
            sid: 42,
            uids: crate::process::Ids::all(1000),
            gids: crate::process::Ids::all(1000),
            state: RunState::Sleeping,
            start_time: 7,
            command: "sleep".into(),
            exit_code: None,
        };
        let record = |calls: Vec<Action>| Record {
            decision_id: "x".into(),
            policy_sha256: "p".into(),
            settings_sha256: None,
            request: crate::record::RecordedRequest {
                pid: "42".into(),
                body: crate::record::Body::Text("{}".into()),
                caller: crate::caller::Caller::local(Some(0), None),
            },
            realtime: [34, 64],
            calls,
            calls_left_out: 0,
            answer: crate::record::RecordedAnswer {
                status: 200,
                code: String::new(),
                body: "{}".into(),
                policy_failed: None,
            },
        };
        let opened = Action::Opened {
            pid: 42,
            start_time: Some(7),
        };
        let inspected = Action::Inspected {
            pid: 42,
            state: Some(RunState::Sleeping),
        };
        let described = Action::Described {
            pid: 42,
            info: Some(facts.clone()),
        };

        let two_calls = record(vec![opened.clone(), inspected.clone()]);
        let mut calls = HostCalls::replaying(Recorded::new(&two_calls));
        let (target, state) = calls.open_with_state(42).unwrap();
        assert_eq!((target.pid(), state), (42, RunState::Sleeping));
        assert_eq!(calls.take_actions(), two_calls.calls);

        let mut calls = HostCalls::replaying(Recorded::new(&two_calls));
        assert!(calls.open_with_info(42).is_none());
        assert!(last_unanswered(&mut calls));

        let one_look = record(vec![opened.clone(), described.clone()]);
        let mut calls = HostCalls::replaying(Recorded::new(&one_look));
        let target = calls.open(42).unwrap();
        assert_eq!(calls.info(&target), Some(facts));
        let mut calls = HostCalls::replaying(Recorded::new(&one_look));
        assert_eq!(calls.open_with_state(42).unwrap().1, RunState::Sleeping);

        // A state (or facts) read says whether it was alive; whether it was
        // alive says no state.
        let mut calls = HostCalls::replaying(Recorded::new(&two_calls));
        assert!(calls.open_alive(42).unwrap().1);
        let probed = record(vec![
            Action::Opened {
                pid: 42,
                start_time: None,
            },
            Action::Probed {
                pid: 42,
                alive: false,
            },
        ]);
        let mut calls = HostCalls::replaying(Recorded::new(&probed));
        assert!(!calls.open_alive(42).unwrap().1);
        assert_eq!(calls.take_actions(), probed.calls);
        let mut calls = HostCalls::replaying(Recorded::new(&probed));
        assert!(calls.open_with_state(42).is_none());
        assert!(last_unanswered(&mut calls));

        // A state read after the signal (a policy that opened with `open`,
        // signalled, then looked) says nothing of the process when it was
        // opened: not answered, where it answered "not alive" before.
        let gone = Action::Inspected {
            pid: 42,
            state: None,
        };
        let signalled = Action::Signalled {
            pid: 42,
            signal: 9,
            scope: Scope::Process,
            authority: Authority::Sigd,
            outcome: Ok(vec![42]),
            unlisted: 0,
        };
        let looked_after = record(vec![opened.clone(), signalled.clone(), gone.clone()]);
        let mut calls = HostCalls::replaying(Recorded::new(&looked_after));
        assert!(calls.open_alive(42).is_none());
        assert!(last_unanswered(&mut calls));
        // Right after the open, the same read is the opening look's; each
        // open's, when the record opened the process again.
        let looked_at_once = record(vec![opened.clone(), gone.clone()]);
        let mut calls = HostCalls::replaying(Recorded::new(&looked_at_once));
        assert!(!calls.open_alive(42).unwrap().1);
        let opened_again = record(vec![
            opened.clone(),
            signalled,
            opened.clone(),
            inspected.clone(),
        ]);
        let mut calls = HostCalls::replaying(Recorded::new(&opened_again));
        assert!(calls.open_alive(42).unwrap().1);
        let looked_twice = record(vec![opened.clone(), inspected, opened, gone]);
        let mut calls = HostCalls::replaying(Recorded::new(&looked_twice));
        assert!(calls.open_alive(42).unwrap().1);
        assert!(!calls.open_alive(42).unwrap().1);
    }

    /// Whether the last call `calls` made was one the record could not answer.
    fn last_unanswered(calls: &mut crate::host_calls::HostCalls) -> bool {
        matches!(calls.take_actions().last(), Some(Action::Unanswered { .. }))
    }
}
