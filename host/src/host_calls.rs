//! The host calls a policy makes, written once: open a process (alone, or
//! with its state or facts from the same look), read its facts or state,
//! signal it, escalate, wait for its exit, read a request header. Each goes through the [`GuardedTable`] (so the rules no policy
//! may break are checked) and is noted as an [`Action`] with what the host
//! answered (for the audit log's decision record and `sigd policy eval`).
//! Replaying a record, the same calls are answered from it instead
//! ([`Recorded`]), and nothing reaches a process.
//!
//! [`HostCalls`] speaks the host's own types. The wasm policy's imports
//! (`policy/imports.rs`) and any native caller (the benchmark's baseline)
//! adapt to it in a few lines each.

use crate::decision::MAX_LISTED;
use crate::guard::{Authority, GuardedTable, Scope, Waited};
use crate::process::{
    ExitStatus, KillError, Look, NoRoom, Opened, Process, ProcessInfo, RunState, Seen,
};
use crate::replay::Recorded;
use crate::shares::Holder;
use crate::signal;
use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderName};
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

/// Something a policy made the host do, and what the host answered: one
/// entry of a decision record's `calls` (`{"call": "opened", "pid": 42,
/// "start_time": 123}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Action {
    /// It read the request header `name`: its value, if the request had it.
    ReadHeader { name: String, value: Option<String> },
    /// It asked to open `pid`, which does not exist.
    NoProcess { pid: i32 },
    /// It asked to open `pid`, and the host had no room to (it was told
    /// there is none; the answer is the host's, see [`Decision::try_again`](crate::decision::Decision::try_again)).
    NoRoom { pid: i32, error: NoRoom },
    /// It opened the process `pid`, which started at `start_time` (absent
    /// when the look that opened it read no start time: `open-alive`).
    Opened {
        pid: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_time: Option<u64>,
    },
    /// It asked whether `pid` had exited, in the look that opened it
    /// (`open-alive`): `alive` if it had not.
    Probed { pid: i32, alive: bool },
    /// It asked for `pid`'s state: the state then, `None` once gone.
    Inspected { pid: i32, state: Option<RunState> },
    /// It asked for `pid`'s facts: those then, `None` once gone.
    Described { pid: i32, info: Option<ProcessInfo> },
    /// It asked for `signal` to `pid`'s `scope` with `authority`; the pids
    /// reached, or why not. At most [`MAX_LISTED`] pids are listed over
    /// all of a call's signals; `unlisted` counts those reached past them.
    Signalled {
        pid: i32,
        signal: i32,
        scope: Scope,
        #[serde(rename = "on_behalf_of")]
        authority: Authority,
        outcome: Result<Vec<i32>, KillError>,
        #[serde(default, skip_serializing_if = "is_zero")]
        unlisted: usize,
    },
    /// It asked for `signal` to `pid`'s `scope` after `after_ms` if still
    /// alive, with `authority`.
    Escalated {
        pid: i32,
        after_ms: u32,
        signal: i32,
        scope: Scope,
        #[serde(rename = "on_behalf_of")]
        authority: Authority,
        outcome: Result<(), KillError>,
    },
    /// It waited at most `timeout_ms` for `pid` to exit: how it ended, if it
    /// did in time, and whether the wait was cut short (see [`Waited`]).
    Waited {
        pid: i32,
        timeout_ms: u32,
        #[serde(flatten)]
        waited: Waited,
    },
    /// Replaying a record: it asked something the record cannot answer
    /// (`asked` says what); it was answered "none" or "failed", and its
    /// decision is not compared.
    Unanswered { asked: String },
}

impl Action {
    /// About its bytes as a record's JSON: its header's name and value
    /// (escaped, up to twice as long), or pids, beyond a fixed part.
    pub fn size(&self) -> usize {
        match self {
            Action::ReadHeader { name, value } => {
                64 + 2 * (name.len() + value.as_ref().map_or(0, String::len))
            }
            Action::Signalled {
                outcome: Ok(pids), ..
            } => 160 + 12 * pids.len(),
            Action::Unanswered { asked } => 64 + 2 * asked.len(),
            _ => 160,
        }
    }

    /// Whether it is something the host did to a process (a signal, an
    /// escalation), which is noted whatever it costs.
    pub fn acted(&self) -> bool {
        matches!(self, Action::Signalled { .. } | Action::Escalated { .. })
    }
}

/// The most a policy call's host calls may note, by [`Action::size`] but
/// for a header read, which counts its name only (see [`HostCalls::note`]):
/// far beyond what any honest decision notes (a few hundred bytes), and
/// what bounds the memory a hostile policy can make the host hold for a
/// call, and the size of its audit event. A call that would note more is
/// stopped ([`HostCalls::overspent`]); what the host did to a process
/// before is noted all the same.
pub const MAX_NOTED_BYTES: usize = 256 * 1024;

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A process a policy opened: the handle on it, or (replaying) its pid alone.
#[derive(Clone)]
pub struct Target {
    pid: i32,
    /// `None` when the process is one of a record's.
    process: Option<Arc<dyn Process>>,
}

impl Target {
    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }
}

/// What the calls reach: the processes, or a record of a decision.
enum Reach {
    Live(GuardedTable),
    Recorded(Recorded),
}

/// A request's headers as a policy may read them (`request-header`):
/// never `authorization` (taken out when made, so nothing here can hand it
/// on; its bytes stay in hyper's buffer of the request's head, which the
/// other values share, until the decision ends), and of a header given more
/// than once its first value, if that is UTF-8, as the contract says. A
/// value is found and copied when a policy asks for it, not for every
/// request.
#[derive(Debug, Clone, Default)]
pub struct Headers(HeaderMap);

impl Headers {
    /// A request's `headers`, but `authorization`.
    pub fn new(mut headers: HeaderMap) -> Headers {
        headers.remove(AUTHORIZATION);
        Headers(headers)
    }

    /// The headers of a request made up by sigd itself (the smoke test at
    /// load, the conformance suite): its body is JSON, and no more.
    pub fn json_body() -> Headers {
        let json = http::HeaderValue::from_static("application/json");
        Headers(HeaderMap::from_iter([(http::header::CONTENT_TYPE, json)]))
    }

    /// The first value of the header `name` (in any case), if it is UTF-8.
    pub fn get(&self, name: &str) -> Option<String> {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        let value = std::str::from_utf8(self.0.get(name)?.as_bytes()).ok()?;
        Some(value.to_string())
    }
}

/// The host's side of one policy call: the processes it may reach (or the
/// record it replays), the request's headers, and what it has made the
/// host do so far.
pub struct HostCalls {
    reach: Reach,
    headers: Headers,
    /// Who asks: what it holds (escalations, waits) counts against its share.
    holder: Holder,
    actions: Vec<Action>,
    /// What the calls counted toward [`MAX_NOTED_BYTES`], kept or not.
    noted: usize,
    /// The pids `actions` list.
    listed: usize,
}

impl HostCalls {
    /// The calls of one request from `holder` with these `headers`,
    /// reaching `processes`.
    pub fn new(processes: GuardedTable, headers: Headers, holder: Holder) -> HostCalls {
        HostCalls {
            reach: Reach::Live(processes),
            headers,
            holder,
            actions: Vec::new(),
            noted: 0,
            listed: 0,
        }
    }

    /// The calls of a recorded request, answered from its record.
    pub fn replaying(recorded: Recorded) -> HostCalls {
        HostCalls {
            reach: Reach::Recorded(recorded),
            headers: Headers::default(),
            holder: Holder::Unknown, // it holds nothing: nothing is live
            actions: Vec::new(),
            noted: 0,
            listed: 0,
        }
    }

    /// What the policy made the host do so far, in order, taken out.
    pub fn take_actions(&mut self) -> Vec<Action> {
        self.noted = 0;
        self.listed = 0;
        std::mem::take(&mut self.actions)
    }

    /// Whether the calls so far would have noted more than
    /// [`MAX_NOTED_BYTES`]: the policy must be stopped, its last call not
    /// kept (but for a signal or an escalation, which are).
    pub fn overspent(&self) -> bool {
        self.noted > MAX_NOTED_BYTES
    }

    /// Note `action`, unless it is no act on a process and would take the
    /// calls past [`MAX_NOTED_BYTES`]: the one place a call's notes are
    /// bounded, which a decision record keeps as they are (but for
    /// [`MAX_CALLS`](crate::record::MAX_CALLS)). A header is noted once,
    /// however often it is read, and counts its name, not its value: the
    /// values noted are bounded by the request. A signal's pids are listed
    /// up to [`MAX_LISTED`] over all of the call's signals, the rest
    /// counted (so a signal to a group of thousands does not stop the
    /// policy before it can ask for its escalation, and many such hold no
    /// more).
    fn note(&mut self, mut action: Action) {
        if let Action::ReadHeader { name, .. } = &action
            && self.actions.iter().any(|noted| {
                matches!(noted, Action::ReadHeader { name: read, .. } if read.eq_ignore_ascii_case(name))
            })
        {
            return;
        }
        if let Action::Signalled {
            outcome: Ok(pids),
            unlisted,
            ..
        } = &mut action
        {
            let room = MAX_LISTED.saturating_sub(self.listed);
            if pids.len() > room {
                *unlisted += pids.len() - room;
                // A copy, not a truncation, which would keep all the room.
                *pids = pids[..room].to_vec();
            }
            self.listed += pids.len();
        }
        let counts = match &action {
            Action::ReadHeader { name, .. } => 64 + 2 * name.len(),
            other => other.size(),
        };
        self.noted = self.noted.saturating_add(counts);
        if !self.overspent() || action.acted() {
            self.actions.push(action);
        }
    }

    /// Note what the record could not answer; `None` to answer with.
    fn unanswered<T>(&mut self, call: String) -> Option<T> {
        self.note(Action::Unanswered { asked: call });
        None
    }

    /// SIGRTMIN..=SIGRTMAX of this host's libc (of the recording host's).
    pub fn realtime_signals(&self) -> RangeInclusive<i32> {
        match &self.reach {
            Reach::Live(_) => signal::realtime(),
            Reach::Recorded(recorded) => recorded.realtime(),
        }
    }

    /// The value of the request header `name` (in any case), if it has one.
    pub fn request_header(&mut self, name: String) -> Option<String> {
        let value = match &mut self.reach {
            Reach::Live(_) => self.headers.get(&name),
            Reach::Recorded(recorded) => match recorded.header(&name) {
                Some(value) => value,
                None => return self.unanswered(format!("request-header({name:?})")),
            },
        };
        let noted = value.clone();
        self.note(Action::ReadHeader { name, value: noted });
        value
    }

    /// A handle on the process `pid`, if there is one (the cheapest look:
    /// what it sees is not kept).
    pub fn open(&mut self, pid: i32) -> Option<Target> {
        self.open_looking(pid, Look::Alive)
            .map(|(target, _)| target)
    }

    /// A handle on the process `pid` and whether it has not exited (false
    /// for a zombie), from one look at it that reads no `/proc` file
    /// (`open`, noted with what it found), if there is one.
    pub fn open_alive(&mut self, pid: i32) -> Option<(Target, bool)> {
        let (target, seen) = self.open_looking(pid, Look::Alive)?;
        let alive = match (seen, &mut self.reach) {
            (Some(seen), _) => seen.alive(),
            // Replaying: the record answers as it answered.
            (None, Reach::Recorded(recorded)) => match recorded.alive(pid) {
                Some(alive) => alive,
                None => return self.unanswered(format!("process {pid}: alive")),
            },
            // A live look always says what it saw.
            (None, Reach::Live(_)) => false,
        };
        self.note(Action::Probed { pid, alive });
        Some((target, alive))
    }

    /// A handle on the process `pid` and its state now, from one look at
    /// it (`open` and `state`, noted as both), if there is one.
    pub fn open_with_state(&mut self, pid: i32) -> Option<(Target, RunState)> {
        let (target, seen) = self.open_looking(pid, Look::State)?;
        let state = match seen.as_ref().and_then(Seen::state) {
            Some(state) => {
                let inspected = Some(state);
                self.note(Action::Inspected {
                    pid,
                    state: inspected,
                });
                state
            }
            // Replaying: the record answers as it answered `state`.
            None => self.state(&target)?,
        };
        Some((target, state))
    }

    /// A handle on the process `pid` and what the host knows of it now,
    /// from one look at it (`open` and `info`, noted as both), if there is
    /// one.
    pub fn open_with_info(&mut self, pid: i32) -> Option<(Target, ProcessInfo)> {
        let (target, seen) = self.open_looking(pid, Look::Info)?;
        let info = match seen.and_then(Seen::into_info) {
            Some(info) => {
                self.note(Action::Described {
                    pid,
                    info: Some(info.clone()),
                });
                info
            }
            // Replaying: the record answers as it answered `info`.
            None => self.info(&target)?,
        };
        Some((target, info))
    }

    /// Open `pid` (noted as `open`) and what the same look found, if it
    /// reached a process (`None` when replaying: the record answers).
    fn open_looking(&mut self, pid: i32, look: Look) -> Option<(Target, Option<Seen>)> {
        let (action, process, seen) = match &mut self.reach {
            Reach::Live(processes) => match processes.open(pid, look) {
                Ok(Some(Opened { process, seen })) => {
                    let start_time = process.start_time();
                    (
                        Action::Opened { pid, start_time },
                        Some(process),
                        Some(seen),
                    )
                }
                Ok(None) => (Action::NoProcess { pid }, None, None),
                Err(error) => {
                    tracing::warn!(pid, %error, "cannot open a process");
                    (Action::NoRoom { pid, error }, None, None)
                }
            },
            Reach::Recorded(recorded) => match recorded.open(pid) {
                Some(action) => (action, None, None),
                None => return self.unanswered(format!("process.open({pid})")),
            },
        };
        let opened = matches!(action, Action::Opened { .. });
        self.note(action);
        opened.then(|| (Target { pid, process }, seen))
    }

    /// What the host knows of `target` now; `None` once it is gone.
    pub fn info(&mut self, target: &Target) -> Option<ProcessInfo> {
        let pid = target.pid;
        let info = match (&mut self.reach, &target.process) {
            (Reach::Live(_), Some(process)) => process.info(),
            (Reach::Recorded(recorded), _) => match recorded.info(pid) {
                Some(info) => info,
                None => return self.unanswered(format!("process {pid}: info()")),
            },
            (Reach::Live(_), None) => None,
        };
        self.note(Action::Described {
            pid,
            info: info.clone(),
        });
        info
    }

    /// Its scheduler state now; `None` once it is gone.
    pub fn state(&mut self, target: &Target) -> Option<RunState> {
        let pid = target.pid;
        let state = match (&mut self.reach, &target.process) {
            (Reach::Live(_), Some(process)) => process.state(),
            (Reach::Recorded(recorded), _) => match recorded.state(pid) {
                Some(state) => state,
                None => return self.unanswered(format!("process {pid}: state()")),
            },
            (Reach::Live(_), None) => None,
        };
        self.note(Action::Inspected { pid, state });
        state
    }

    /// Send `signal` to `target`'s `scope` with `authority`, all or
    /// nothing; the pids reached.
    pub fn signal(
        &mut self,
        target: &Target,
        signal: i32,
        scope: Scope,
        authority: Authority,
    ) -> Result<Vec<i32>, KillError> {
        let pid = target.pid;
        let outcome = match (&mut self.reach, &target.process) {
            (Reach::Live(processes), Some(process)) => {
                let outcome = processes.signal(process, signal, scope, authority);
                log_failure(&outcome);
                outcome
            }
            (Reach::Recorded(recorded), _) => {
                match recorded.signal(pid, signal, scope, authority) {
                    Some(outcome) => outcome,
                    None => {
                        let call = format!("process {pid}: signal({signal}, {})", scope.name());
                        return self.unanswered(call).ok_or(KillError::NotFound);
                    }
                }
            }
            (Reach::Live(_), None) => Err(KillError::NotFound),
        };
        self.note(Action::Signalled {
            pid,
            signal,
            scope,
            authority,
            outcome: outcome.clone(),
            unlisted: 0,
        });
        outcome
    }

    /// After `after_ms`, if `target` still runs, send `signal` to its
    /// `scope` with `authority`.
    pub fn escalate(
        &mut self,
        target: &Target,
        after_ms: u32,
        signal: i32,
        scope: Scope,
        authority: Authority,
    ) -> Result<(), KillError> {
        let pid = target.pid;
        let outcome = match (&mut self.reach, &target.process) {
            (Reach::Live(processes), Some(process)) => {
                let after = Duration::from_millis(after_ms.into());
                let outcome = processes.escalate(
                    process.clone(),
                    after,
                    signal,
                    scope,
                    authority,
                    &self.holder,
                );
                log_failure(&outcome);
                outcome
            }
            (Reach::Recorded(recorded), _) => {
                match recorded.escalate(pid, after_ms, signal, scope, authority) {
                    Some(outcome) => outcome,
                    None => {
                        let call = format!("process {pid}: escalate({after_ms} ms, {signal})");
                        return self.unanswered(call).ok_or(KillError::NotFound);
                    }
                }
            }
            (Reach::Live(_), None) => Err(KillError::NotFound),
        };
        self.note(Action::Escalated {
            pid,
            after_ms,
            signal,
            scope,
            authority,
            outcome,
        });
        outcome
    }

    /// Wait at most `timeout_ms` for `target` to exit: how it ended, if it did.
    pub async fn wait_exit(&mut self, target: &Target, timeout_ms: u32) -> Option<ExitStatus> {
        let pid = target.pid;
        let waited = match (&mut self.reach, &target.process) {
            (Reach::Live(processes), Some(process)) => {
                let timeout = Duration::from_millis(timeout_ms.into());
                processes.wait_exit(process, timeout, &self.holder).await
            }
            (Reach::Recorded(recorded), _) => match recorded.wait_exit(pid, timeout_ms) {
                Some(waited) => waited,
                None => return self.unanswered(format!("process {pid}: wait-exit({timeout_ms})")),
            },
            (Reach::Live(_), None) => return None,
        };
        self.note(Action::Waited {
            pid,
            timeout_ms,
            waited,
        });
        waited.exit
    }
}

/// `actions` as one call's host calls note them (for tests of what is
/// made of the notes).
#[cfg(test)]
pub(crate) fn noted(actions: impl IntoIterator<Item = Action>) -> Vec<Action> {
    use crate::process::NoProcesses;
    let table = GuardedTable::new(NoProcesses);
    let mut calls = HostCalls::new(table, Headers::default(), Holder::Unknown);
    actions.into_iter().for_each(|action| calls.note(action));
    calls.take_actions()
}

/// A failure of the kill syscall itself is the host's to report: the policy
/// only learns that it failed.
fn log_failure<T>(outcome: &Result<T, KillError>) {
    if let Err(KillError::Failed(errno)) = outcome {
        tracing::error!(%errno, "signal failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// What the calls of one policy call note is bounded: reads of a huge
    /// header name are kept until the next would pass the bound, then not
    /// kept, and the calls say they overspent (the import then stops the
    /// guest); a signal past the bound is noted all the same. A new call
    /// starts from nothing.
    #[test]
    fn what_a_call_notes_is_bounded() {
        use crate::process::NoProcesses;
        let mut calls = HostCalls::new(
            GuardedTable::new(NoProcesses),
            Headers::default(),
            Holder::Unknown,
        );
        let name = |n: usize| format!("{n}{}", "x".repeat(40_000));
        // The same header read again is noted once.
        for _ in 0..100 {
            assert_eq!(calls.request_header(name(0)), None);
        }
        assert_eq!(calls.actions.len(), 1);
        let mut reads = 1;
        while !calls.overspent() {
            assert_eq!(calls.request_header(name(reads)), None);
            reads += 1;
        }
        assert_eq!(reads, MAX_NOTED_BYTES / (64 + 2 * name(0).len()) + 1);
        assert_eq!(
            calls.actions.len(),
            reads - 1,
            "the read past the bound was kept"
        );
        let held: usize = calls.actions.iter().map(Action::size).sum();
        assert!(held <= MAX_NOTED_BYTES);
        let target = Target {
            pid: 42,
            process: None,
        };
        let refused = calls.signal(&target, 15, Scope::Process, Authority::Sigd);
        assert_eq!(refused, Err(KillError::NotFound));
        assert!(
            calls.actions.last().is_some_and(Action::acted),
            "a signal was not noted"
        );
        assert_eq!(calls.take_actions().len(), reads);
        assert!(!calls.overspent());
        // Signals to thousands list MAX_LISTED pids over all of them and
        // count the rest, so a policy may signal a large group and still
        // ask for its escalation, and many such signals hold no more.
        let group = Action::Signalled {
            pid: 42,
            signal: 15,
            scope: Scope::Group,
            authority: Authority::Sigd,
            outcome: Ok((1..=30_000).collect()),
            unlisted: 0,
        };
        for _ in 0..20 {
            calls.note(group.clone());
        }
        assert!(!calls.overspent());
        let listed = |action: &Action| match action {
            Action::Signalled {
                outcome: Ok(pids),
                unlisted,
                ..
            } => (pids.len(), *unlisted),
            _ => (0, 0),
        };
        assert_eq!(listed(&calls.actions[0]), (MAX_LISTED, 30_000 - MAX_LISTED));
        assert_eq!(listed(&calls.actions[19]), (0, 30_000));
        let held: usize = (calls.actions.iter())
            .map(|action| match action {
                Action::Signalled {
                    outcome: Ok(pids), ..
                } => pids.capacity(),
                _ => 0,
            })
            .sum();
        assert!(held <= MAX_LISTED, "{held} pids' room held");
    }

    /// A policy reads a header in any case, its first value if it came more
    /// than once, never `authorization` (however many times it came), and
    /// no value that is not UTF-8 (hyper takes any byte but controls in a
    /// value; `HeaderValue::to_str`, used before, refused UTF-8 beyond ASCII,
    /// which the contract promises).
    #[test]
    fn headers_a_policy_may_read() {
        let mut map = HeaderMap::new();
        map.append("x-probe", HeaderValue::from_static("42"));
        map.append("x-probe", HeaderValue::from_static("43"));
        map.append(AUTHORIZATION, HeaderValue::from_static("Bearer secret"));
        map.append(AUTHORIZATION, HeaderValue::from_static("Bearer other"));
        map.append("x-binary", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        map.append(
            "x-utf8",
            HeaderValue::from_bytes("café".as_bytes()).unwrap(),
        );
        let headers = Headers::new(map);
        assert_eq!(headers.get("X-Probe").as_deref(), Some("42"));
        assert_eq!(headers.get("x-probe").as_deref(), Some("42"));
        assert_eq!(headers.get("Authorization"), None);
        assert_eq!(headers.get("authorization"), None);
        assert_eq!(headers.get("x-binary"), None);
        assert_eq!(headers.get("x-utf8").as_deref(), Some("café"));
        assert_eq!(headers.get("not a name"), None);
        assert_eq!(headers.get("x-absent"), None);
        assert!(!format!("{headers:?}").contains("secret"));
        assert_eq!(
            Headers::json_body().get("Content-Type").as_deref(),
            Some("application/json")
        );
    }
}
