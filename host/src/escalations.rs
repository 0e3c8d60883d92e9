//! The escalations still pending: "if it still runs after a delay, signal
//! it again". Each is a task owned here, never a detached one, so the server
//! can count them and, at shutdown, end the ones still waiting with a word
//! in the log instead of losing them silently.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use tokio::task::JoinSet;
use tracing::warn;

/// The tasks keeping watch for escalations; one per [`GuardedTable`](crate::guard::GuardedTable).
#[derive(Default)]
pub struct Escalations {
    tasks: Mutex<JoinSet<()>>,
}

impl Escalations {
    /// Run `watch` (it waits, then signals or not) as an owned task.
    pub fn schedule(&self, watch: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.lock();
        // Forget the tasks that have ended, so the set holds only pending ones.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(watch);
    }

    /// How many escalations are still pending.
    pub fn pending(&self) -> usize {
        let mut tasks = self.lock();
        while tasks.try_join_next().is_some() {}
        tasks.len()
    }

    /// End every pending escalation (none of them will signal), saying how
    /// many there were; at shutdown.
    pub fn cancel_all(&self) -> usize {
        let mut tasks = self.lock();
        while tasks.try_join_next().is_some() {}
        let pending = tasks.len();
        tasks.abort_all();
        if pending > 0 {
            warn!(pending, "shutting down: pending escalations cancelled");
        }
        pending
    }

    fn lock(&self) -> MutexGuard<'_, JoinSet<()>> {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Ended tasks are not counted; pending ones are, until cancelled.
    #[tokio::test]
    async fn counts_and_cancels_pending_tasks() {
        let escalations = Escalations::default();
        escalations.schedule(async {});
        escalations.schedule(tokio::time::sleep(Duration::from_secs(600)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(escalations.pending(), 1);
        assert_eq!(escalations.cancel_all(), 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(escalations.pending(), 0);
    }
}
