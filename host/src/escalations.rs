//! The escalations still pending: "if it still runs after a delay, signal
//! it again". Each is a task owned here, never a detached one, with what it
//! will do (pid, signal, scope, when), so the server can count them and, at
//! shutdown, cancel the ones still waiting, each logged and audited, instead
//! of losing them silently; one asked for after that (a request the drain
//! cut off may still be deciding) is logged and audited as cancelled at
//! once, never started. At most a set number are pending at once
//! (`--max-escalations`), and at most a share of them for any one caller
//! ([`crate::shares`]): each holds two file descriptors.

use crate::guard::Scope;
use crate::shares::{Holder, Shares};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::{Id, JoinSet};
use tracing::warn;

/// What one pending escalation will do.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub pid: i32,
    pub signal: i32,
    pub scope: Scope,
    /// When it is due.
    pub due: SystemTime,
}

/// How many escalations may be pending at once unless told otherwise.
pub const DEFAULT_MAX_PENDING: usize = 4096;

/// The tasks keeping watch for escalations; one per [`GuardedTable`](crate::guard::GuardedTable).
pub struct Escalations {
    tasks: Mutex<Tasks>,
    max_pending: usize,
    /// Each caller's share of `max_pending`.
    shares: Arc<Shares>,
}

impl Default for Escalations {
    fn default() -> Escalations {
        Escalations::new(DEFAULT_MAX_PENDING)
    }
}

/// An escalation refused: `max` are pending already, as many as sigd
/// keeps, or (`share`) as many as it keeps for this caller, or for all
/// callers held to shares ([`crate::shares`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{max} escalations are pending already, the most sigd keeps{}", match share {
    true => " for this caller, or for all callers held to shares",
    false => "",
})]
pub struct Full {
    pub max: usize,
    pub share: bool,
}

#[derive(Default)]
struct Tasks {
    set: JoinSet<()>,
    pending: HashMap<Id, Pending>,
    /// Every escalation cancelled at shutdown: none is started after.
    cancelled_all: bool,
}

impl Escalations {
    /// Escalations of which at most `max_pending` are pending at once.
    pub fn new(max_pending: usize) -> Escalations {
        Escalations {
            tasks: Mutex::default(),
            max_pending,
            shares: Shares::of(max_pending),
        }
    }

    /// Run `watch` as an owned task for `holder`: it waits `after`, then
    /// sends `signal` to `pid`'s `scope` if it still runs. Refused if the
    /// most that may be pending are, or the most for `holder`.
    pub fn schedule(
        &self,
        pid: i32,
        signal: i32,
        scope: Scope,
        after: Duration,
        holder: &Holder,
        watch: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Full> {
        let pending = Pending {
            pid,
            signal,
            scope,
            due: SystemTime::now() + after,
        };
        let mut tasks = self.lock();
        if tasks.cancelled_all {
            // Shutting down: it would be cancelled with the rest had it
            // come a moment sooner, and is so now.
            drop(tasks);
            audit_cancelled(&pending);
            return Ok(());
        }
        tasks.forget_ended();
        if tasks.set.len() >= self.max_pending {
            return Err(Full {
                max: self.max_pending,
                share: false,
            });
        }
        let share = (self.shares.take(holder)).map_err(|taken| Full {
            max: taken.share,
            share: true,
        })?;
        // What it logs, when it fires, is its caller's to answer for.
        let watch = crate::logs::charged_to(holder.clone(), watch);
        let id = tasks
            .set
            .spawn(async move {
                let _share = share; // held while it is pending
                watch.await
            })
            .id();
        tasks.pending.insert(id, pending);
        Ok(())
    }

    /// How many escalations are still pending.
    pub fn pending(&self) -> usize {
        let mut tasks = self.lock();
        tasks.forget_ended();
        tasks.set.len()
    }

    /// Cancel every pending escalation (none of them will signal), each
    /// logged and audited with its pid, signal and due time; at shutdown.
    /// Any scheduled after is cancelled as it comes. Returns the ones
    /// cancelled now.
    pub fn cancel_all(&self) -> Vec<Pending> {
        let mut tasks = self.lock();
        tasks.cancelled_all = true;
        tasks.forget_ended();
        tasks.set.abort_all();
        let cancelled: Vec<Pending> = tasks.pending.drain().map(|(_, pending)| pending).collect();
        drop(tasks);
        cancelled.iter().for_each(audit_cancelled);
        if !cancelled.is_empty() {
            warn!(
                pending = cancelled.len(),
                "shutting down: pending escalations cancelled"
            );
        }
        cancelled
    }

    fn lock(&self) -> MutexGuard<'_, Tasks> {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The audit event of an escalation cancelled at shutdown.
fn audit_cancelled(escalation: &Pending) {
    let due_unix_ms = escalation
        .due
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    warn!(
        target: crate::audit::TARGET,
        pid = escalation.pid,
        signal = escalation.signal,
        scope = ?escalation.scope,
        due_unix_ms,
        decision = "escalation-cancelled",
        "escalation cancelled at shutdown"
    );
}

impl Tasks {
    /// Forget the tasks that have ended, so only pending ones are held.
    fn forget_ended(&mut self) {
        while let Some(ended) = self.set.try_join_next_with_id() {
            let id = match ended {
                Ok((id, ())) => id,
                Err(error) => error.id(),
            };
            self.pending.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ended tasks are not counted; pending ones are, until cancelled, and
    /// cancelling says what each would have done.
    #[tokio::test]
    async fn counts_and_cancels_pending_tasks() {
        let escalations = Escalations::default();
        let after = Duration::from_secs(600);
        escalations
            .schedule(7, 9, Scope::Process, after, &Holder::Trusted, async {})
            .unwrap();
        escalations
            .schedule(
                8,
                15,
                Scope::Tree,
                after,
                &Holder::Trusted,
                tokio::time::sleep(after),
            )
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(escalations.pending(), 1);
        let cancelled = escalations.cancel_all();
        assert_eq!(cancelled.len(), 1);
        assert_eq!((cancelled[0].pid, cancelled[0].signal), (8, 15));
        assert!(cancelled[0].due > SystemTime::now() + Duration::from_secs(590));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(escalations.pending(), 0);
    }

    /// Once all are cancelled, one scheduled after (by a request the drain
    /// cut off) is cancelled too: it never starts, and nothing is left
    /// pending.
    #[tokio::test]
    async fn after_cancelling_all_none_starts() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let escalations = Escalations::default();
        assert!(escalations.cancel_all().is_empty());
        let started = Arc::new(AtomicBool::new(false));
        let watch = {
            let started = started.clone();
            async move { started.store(true, Ordering::SeqCst) }
        };
        let after = Duration::from_millis(1);
        assert_eq!(
            escalations.schedule(7, 9, Scope::Process, after, &Holder::Trusted, watch),
            Ok(())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !started.load(Ordering::SeqCst),
            "an escalation started after shutdown"
        );
        assert_eq!(escalations.pending(), 0);
    }

    /// Past the cap an escalation is refused, and scheduled again once one
    /// has ended.
    #[tokio::test]
    async fn refuses_past_the_cap() {
        let escalations = Escalations::new(2);
        let after = Duration::from_secs(600);
        let schedule =
            |watch| escalations.schedule(7, 9, Scope::Process, after, &Holder::Trusted, watch);
        schedule(Box::pin(tokio::time::sleep(after))).unwrap();
        schedule(Box::pin(tokio::time::sleep(Duration::from_millis(10)))).unwrap();
        assert_eq!(
            schedule(Box::pin(tokio::time::sleep(after))),
            Err(Full {
                max: 2,
                share: false
            })
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
        schedule(Box::pin(tokio::time::sleep(after))).unwrap();
        assert_eq!(escalations.pending(), 2);
    }

    /// One caller may hold only its share of the pending escalations:
    /// past it, its next is refused while another caller's and root's are
    /// scheduled; once one of its own has ended, it may schedule again.
    #[tokio::test]
    async fn a_caller_holds_only_its_share() {
        let escalations = Escalations::new(16);
        let tenant = Holder::Uid(1000);
        let after = Duration::from_secs(600);
        let schedule = |holder: &Holder, after| {
            escalations.schedule(
                7,
                9,
                Scope::Process,
                after,
                holder,
                tokio::time::sleep(after),
            )
        };
        schedule(&tenant, Duration::from_millis(10)).unwrap();
        schedule(&tenant, after).unwrap();
        assert_eq!(
            schedule(&tenant, after),
            Err(Full {
                max: 2,
                share: true
            })
        );
        schedule(&Holder::Uid(1001), after).unwrap();
        for _ in 0..5 {
            schedule(&Holder::Trusted, after).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(escalations.pending(), 7);
        schedule(&tenant, after).unwrap();
        // Cancelled, each gives its share back.
        escalations.cancel_all();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(escalations.shares.held(&tenant), 0);
    }
}
