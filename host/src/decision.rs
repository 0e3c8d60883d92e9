//! What decides a signal request, as HTTP sees it: the [`Decide`] trait
//! (sigd's is the active wasm policy, [`ActivePolicy`](crate::reload::ActivePolicy);
//! the benchmarks plug in a native baseline) and the [`Decision`] it hands
//! back: the checked answer for HTTP, the host calls for the audit log.

use crate::guard::{GuardedTable, Waited};
use crate::host_calls::Action;
use crate::policy::{Answer, CallError, Request};
use crate::process::KillError;
use crate::reload::{FailMode, ReloadAttempt};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// One decided request.
#[derive(Debug)]
pub struct Decision {
    /// The checked answer, or why there is none (a 500 `INTERNAL`).
    pub answer: Result<Answer, CallError>,
    /// What the decider made the host do, in order, including what it did
    /// before failing.
    pub actions: Vec<Action>,
    /// Wall-clock time of the decision.
    pub took: Duration,
    /// The sha256 of the policy that decided (it may have been swapped out since).
    pub policy_sha256: Arc<str>,
    /// The sha256 of the settings it was configured with, if any.
    pub settings_sha256: Option<Arc<str>>,
    /// Set when the policy failed and the built-in default policy decided
    /// instead (`--policy-fail-mode fallback`): the one that failed, and why.
    pub fell_back: Option<FellBack>,
}

/// A policy that failed, and the built-in default decided in its place.
#[derive(Debug)]
pub struct FellBack {
    pub policy_sha256: Arc<str>,
    pub error: CallError,
}

impl Decision {
    /// Whether it made the host do anything: deliver a signal, schedule an
    /// escalation.
    pub fn acted(&self) -> bool {
        self.delivered()
            || (self.actions.iter()).any(|a| {
                matches!(
                    a,
                    Action::Escalated {
                        outcome: Ok(()),
                        ..
                    }
                )
            })
    }

    /// Whether any signal was delivered.
    pub fn delivered(&self) -> bool {
        (self.actions.iter()).any(|a| matches!(a, Action::Signalled { outcome: Ok(_), .. }))
    }

    /// The wait for an exit that was cut short, if one was.
    pub fn cut_short_wait(&self) -> Option<Waited> {
        self.actions.iter().find_map(|action| match action {
            Action::Waited { waited, .. } if waited.cut_short => Some(*waited),
            _ => None,
        })
    }

    /// Whether an escalation was refused because as many were pending as
    /// sigd keeps, in all or for the caller.
    pub fn refused_an_escalation(&self) -> bool {
        self.actions.iter().any(|action| {
            matches!(
                action,
                Action::Escalated {
                    outcome: Err(KillError::EscalationsFull(_)),
                    ..
                }
            )
        })
    }

    /// Whether the host ran out of room (descriptors, memory) for a host
    /// call, or found a group-scope target moving between groups: then what
    /// the policy answered (as "no such process", say) is about that
    /// moment, not about the process, and the caller may try again.
    pub fn try_again(&self) -> bool {
        fn transient<T>(outcome: &Result<T, KillError>) -> bool {
            matches!(outcome, Err(KillError::NoRoom(_) | KillError::Moving))
        }
        self.actions.iter().any(|action| match action {
            Action::NoRoom { .. } => true,
            Action::Signalled { outcome, .. } => transient(outcome),
            Action::Escalated { outcome, .. } => transient(outcome),
            _ => false,
        })
    }
}

/// The most pids the host lists of those a signal reached, in an answer it
/// makes or an audit event (the default policy's bound too); a count goes
/// with them.
pub const MAX_LISTED: usize = 1000;

/// A decider's future.
pub type Deciding<'a> = Pin<Box<dyn Future<Output = Decision> + Send + 'a>>;

/// What decides signal requests.
pub trait Decide: Send + Sync + 'static {
    /// Decide `request`, reaching only `processes`.
    fn decide<'a>(&'a self, processes: &'a GuardedTable, request: Request) -> Deciding<'a>;
    /// Which policy decides now, and where it comes from (for `/healthz`).
    fn describe(&self) -> Described;
}

/// Which policy decides.
#[derive(Debug, Clone)]
pub struct Described {
    pub sha256: String,
    pub source: String,
    /// The sha256 of the settings it runs with, if any.
    pub settings_sha256: Option<String>,
    /// When it was loaded (swapped in).
    pub loaded_at: SystemTime,
    /// The last reload attempt, if there was one.
    pub last_reload: Option<ReloadAttempt>,
    pub fail_mode: FailMode,
}
