//! The shadow policy (`sigd serve --shadow-policy NEW.wasm`): a candidate
//! that decides every request the active policy decided, after the real
//! answer is sent, against that request's decision record. It sees what
//! the active policy saw and can signal, escalate or wait for nothing (see
//! [`crate::replay`]). Disagreements are logged (target `sigd::shadow`,
//! with the decision id) and counted in metrics and `/healthz`.
//!
//! The shadow never delays, changes or fails a real answer: it runs on a
//! thread of its own at the lowest CPU priority (SCHED_IDLE), under its own
//! instance of the policy limits, and within a budget: after each decision
//! it rests [`REST`] times as long as the decision took, so it takes at
//! most a 1/(1+REST) share of one CPU whatever the shadow does (a policy
//! that traps or loops costs a fresh instance per decision). Its queue
//! holds [`QUEUE`] records; under more traffic than the budget decides, a
//! record that finds it full is not decided (counted as skipped): the
//! shadow decides a sample. It is reloaded with the active
//! policy (SIGHUP, `--watch`); nothing promotes it: that stays an
//! operator's act.

use crate::decision::{Decide, Described};
use crate::metrics::Metrics;
use crate::record::Record;
use crate::reload::ActivePolicy;
use crate::replay::{Compared, compare};
use crate::shares::Holder;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Records waiting for the shadow, at most.
pub const QUEUE: usize = 64;

/// How many times as long as a decision took the shadow rests after it:
/// at most 1/20 of one CPU.
pub const REST: u32 = 19;

/// How the shadow's decisions went, as `/healthz` and metrics count them.
#[derive(Debug, Default)]
pub struct Counts {
    pub agree: AtomicU64,
    pub differ: AtomicU64,
    pub unanswered: AtomicU64,
    pub failed: AtomicU64,
    /// Records not decided: the queue was full.
    pub skipped: AtomicU64,
}

/// The shadow: its policy, and the queue to its thread.
pub struct Shadow {
    policy: Arc<ActivePolicy>,
    queue: mpsc::Sender<Record>,
    counts: Arc<Counts>,
    metrics: Arc<Metrics>,
}

impl Shadow {
    /// Start deciding with `policy` on a thread of its own.
    pub fn start(policy: Arc<ActivePolicy>, metrics: Arc<Metrics>) -> std::io::Result<Shadow> {
        let (queue, mut records) = mpsc::channel::<Record>(QUEUE);
        let counts = Arc::new(Counts::default());
        let (deciding, counted, measured) = (policy.clone(), counts.clone(), metrics.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        std::thread::Builder::new()
            .name("sigd-shadow".into())
            .spawn(move || {
                lower_priority();
                runtime.block_on(async move {
                    while let Some(record) = records.recv().await {
                        let started = std::time::Instant::now();
                        // What it logs is charged to the caller whose request it decides again.
                        let holder = Holder::of(&record.request.caller);
                        crate::logs::charged_to(holder, async {
                            let compared = compare(&deciding.current(), &record).await;
                            note(&record, &compared, &counted, &measured);
                        })
                        .await;
                        // Nothing else runs on this thread: sleeping it is the budget.
                        std::thread::sleep(started.elapsed() * REST);
                    }
                })
            })?;
        Ok(Shadow {
            policy,
            queue,
            counts,
            metrics,
        })
    }

    /// Queue the record `make` makes for the shadow (the answer is on its
    /// way; the decision comes later), unless the queue is full: then none
    /// is made.
    pub fn judge(&self, make: impl FnOnce() -> Record) {
        if let Ok(room) = self.queue.try_reserve() {
            room.send(make());
        } else {
            self.counts.skipped.fetch_add(1, Ordering::Relaxed);
            self.metrics.shadow_decision("skipped");
        }
    }

    /// The shadow's policy, to reload it.
    pub fn policy(&self) -> &Arc<ActivePolicy> {
        &self.policy
    }

    /// Which policy shadows, and how its decisions went.
    pub fn describe(&self) -> (Described, &Counts) {
        (self.policy.describe(), &self.counts)
    }
}

/// Count one shadow decision, and log it unless it agreed.
fn note(record: &Record, compared: &Compared, counts: &Counts, metrics: &Metrics) {
    let id = record.decision_id.as_str();
    let (counter, outcome) = match compared {
        Compared::Agrees => (&counts.agree, "agree"),
        Compared::Differs {
            changed,
            recorded,
            replayed,
        } => {
            let changes = recorded.describe_changes(replayed, changed);
            tracing::info!(target: "sigd::shadow", decision_id = id, changes, "shadow differs");
            (&counts.differ, "differ")
        }
        Compared::Unanswered { asked } => {
            let asked = asked.join(", ");
            tracing::info!(target: "sigd::shadow", decision_id = id, asked, "shadow asked what the record cannot answer");
            (&counts.unanswered, "unanswered")
        }
        Compared::Failed { error } => {
            tracing::info!(target: "sigd::shadow", decision_id = id, error, "shadow failed");
            (&counts.failed, "failed")
        }
    };
    counter.fetch_add(1, Ordering::Relaxed);
    metrics.shadow_decision(outcome);
}

/// Give the calling thread the lowest CPU priority there is, SCHED_IDLE:
/// it runs only when no other thread wants the CPU (measured: nice 19 left
/// a strict shadow at 1.23x the p99 of none, SCHED_IDLE at 1.03x and 1.07x;
/// BENCHMARKS.md).
fn lower_priority() {
    let thread = nix::unistd::gettid().as_raw();
    let param = nix::libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler(2) on this thread's own id, with a param
    // that lives across the call, changes only how it is scheduled.
    let failed =
        unsafe { nix::libc::sched_setscheduler(thread, nix::libc::SCHED_IDLE, &param) } != 0;
    if failed {
        let error = std::io::Error::last_os_error();
        tracing::warn!(%error, "the shadow policy runs at normal priority");
    }
}
