//! The connections being served: at most `--max-connections` at once, what
//! each is doing, and which one makes room when a new one arrives and every
//! slot is taken. A client that holds a slot without a request being worked
//! on (an idle keep-alive, headers or a body trickling in) gives it up to a
//! newcomer: one of the caller holding the most connections, oldest first;
//! a request being decided or waiting for an exit is never cut off. So
//! `/healthz` and a well-behaved request get in even when slow or idle
//! clients fill every slot, and a caller opening connections without end
//! ends its own, not others'. (How many requests one caller may have
//! answered at once is [`crate::http::App`]'s `answering` share.)

use crate::shares::Holder;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// What a connection is doing, as far as making room goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum State {
    /// Between requests: its headers not in yet (slow, or an idle
    /// keep-alive). Evicted first.
    Awaiting = 0,
    /// Its request's body not in yet. Evicted next.
    ReadingBody = 1,
    /// Its request is being answered: never evicted.
    Answering = 2,
}

/// An [`Activity`]'s state once its connection was ended to make room:
/// its request, if one comes, is not answered. (It is out of the table by
/// then, so nothing asks what it is doing.)
const EVICTED: u8 = u8::MAX;

/// One connection's activity, shared by its task and the table; the
/// request carries it (as an extension) so the handler can say when the
/// body is in.
#[derive(Debug)]
pub struct Activity {
    state: AtomicU8,
    /// When the state began, in µs after the table was made.
    since_us: AtomicU64,
    epoch: Instant,
}

impl Activity {
    /// Now doing `state`, unless the connection was ended to make room
    /// (false): then it has nothing more to do. A request that gets to
    /// [`State::Answering`] so is never evicted, and one evicted never
    /// gets there.
    pub fn advance(&self, state: State) -> bool {
        let now = self.epoch.elapsed().as_micros() as u64;
        let advanced = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current != EVICTED).then_some(state as u8)
            })
            .is_ok();
        if advanced {
            self.since_us.store(now, Ordering::Relaxed);
        }
        advanced
    }

    /// Whether its request is being answered.
    pub fn answering(&self) -> bool {
        self.state.load(Ordering::Acquire) == State::Answering as u8
    }

    /// Mark it evicted, if it is still doing `seen`.
    fn evict(&self, seen: State) -> bool {
        let seen = seen as u8;
        let evicted =
            self.state
                .compare_exchange(seen, EVICTED, Ordering::AcqRel, Ordering::Acquire);
        evicted.is_ok()
    }

    /// Mark it evicted, whatever it is doing, unless its request is being
    /// answered (false then): in one step, so a request never gets to
    /// answering after.
    fn evict_unless_answering(&self) -> bool {
        let answering = State::Answering as u8;
        let evicted = (self.state).fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
            (current != answering).then_some(EVICTED)
        });
        evicted.is_ok()
    }

    fn get(&self) -> (State, u64) {
        let state = match self.state.load(Ordering::Acquire) {
            0 => State::Awaiting,
            1 => State::ReadingBody,
            _ => State::Answering,
        };
        (state, self.since_us.load(Ordering::Relaxed))
    }
}

/// The connections being served, at most `max` of them.
pub struct Connections {
    max: usize,
    epoch: Instant,
    table: Mutex<Table>,
    freed: Notify,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
}

struct Entry {
    activity: Arc<Activity>,
    /// Whose connection it is (by its peer's uid).
    holder: Holder,
    /// Ends the connection's task; set once it is spawned.
    abort: Option<AbortHandle>,
}

/// A connection's place in the table, given up when dropped.
pub struct Slot {
    id: u64,
    connections: Arc<Connections>,
    pub activity: Arc<Activity>,
}

impl Slot {
    /// Its number in the table.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.lock().open.remove(&self.id);
        self.connections.freed.notify_one();
    }
}

impl Connections {
    /// A table of at most `max` connections.
    pub fn new(max: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max,
            epoch: Instant::now(),
            table: Mutex::default(),
            freed: Notify::new(),
        })
    }

    /// A slot for a connection of `holder`'s just accepted: a free one, or
    /// one made by ending a connection without a request being answered
    /// (`Some` says what it was doing): of the caller holding the most
    /// connections, the one in the earliest state, longest. If every slot
    /// is answering a request, waits for one to be given up.
    pub async fn admit(self: &Arc<Self>, holder: Holder) -> (Slot, Option<State>) {
        loop {
            let freed = self.freed.notified();
            if let Some(admitted) = self.try_admit(&holder) {
                return admitted;
            }
            freed.await;
        }
    }

    /// Wait until every slot is given up: every connection ended, and
    /// every request still being answered after its connection did.
    pub async fn all_given_up(&self) {
        loop {
            let freed = self.freed.notified();
            if self.lock().open.is_empty() {
                return;
            }
            freed.await;
        }
    }

    /// The drain's end: end every connection without a request being
    /// answered (its task aborted; a request of its own never gets to
    /// answering), and count the requests being answered, which end with
    /// the process.
    pub fn close(&self) -> usize {
        let table = self.lock();
        let mut answering = 0;
        for entry in table.open.values() {
            if entry.activity.evict_unless_answering() {
                if let Some(abort) = &entry.abort {
                    abort.abort();
                }
            } else {
                answering += 1;
            }
        }
        answering
    }

    /// The task serving the connection in slot `id`, to end if it must
    /// make room (nothing if it has ended already).
    pub fn served_by(&self, id: u64, task: AbortHandle) {
        if let Some(entry) = self.lock().open.get_mut(&id) {
            entry.abort = Some(task);
        }
    }

    fn try_admit(self: &Arc<Self>, holder: &Holder) -> Option<(Slot, Option<State>)> {
        let mut table = self.lock();
        let mut evicted = None;
        if table.open.len() >= self.max {
            let mut held: HashMap<&Holder, usize> = HashMap::new();
            for entry in table.open.values() {
                *held.entry(&entry.holder).or_default() += 1;
            }
            let mut candidates: Vec<_> = (table.open.iter())
                .filter(|(_, entry)| entry.abort.is_some())
                .map(|(id, entry)| (*id, held[&entry.holder], entry.activity.get()))
                .filter(|(_, _, (state, _))| *state < State::Answering)
                .collect();
            // The caller holding the most first; then the earliest state;
            // then the longest in it; then the one admitted first. One
            // whose request has just got to answering (since it was looked
            // at) is passed over.
            candidates.sort_unstable_by_key(|(id, held, (state, since))| {
                (Reverse(*held), *state, *since, *id)
            });
            let (id, state) = candidates
                .into_iter()
                .map(|(id, _, (state, _))| (id, state))
                .find(|(id, state)| table.open[id].activity.evict(*state))?;
            if let Some(Entry {
                abort: Some(abort), ..
            }) = table.open.remove(&id)
            {
                abort.abort();
            }
            evicted = Some(state);
        }
        let id = table.next_id;
        table.next_id += 1;
        let activity = Arc::new(Activity {
            state: AtomicU8::new(State::Awaiting as u8),
            since_us: AtomicU64::new(self.epoch.elapsed().as_micros() as u64),
            epoch: self.epoch,
        });
        table.open.insert(
            id,
            Entry {
                activity: activity.clone(),
                holder: holder.clone(),
                abort: None,
            },
        );
        Some((
            Slot {
                id,
                connections: self.clone(),
                activity,
            },
            evicted,
        ))
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// With every slot taken, a newcomer ends the connection awaiting a
    /// request longest, then one reading a body; one answering a request
    /// is never ended (nor answers, once its connection is), and with only
    /// those left the newcomer waits for a slot to be given up.
    #[tokio::test]
    async fn makes_room_idle_first_and_never_ends_an_answer() {
        let connections = Connections::new(3);
        let task = || tokio::spawn(std::future::pending::<()>());
        let mut slots = Vec::new();
        let mut tasks = Vec::new();
        for state in [State::Awaiting, State::ReadingBody, State::Answering] {
            let (slot, evicted) = connections.admit(Holder::Uid(1000)).await;
            assert_eq!(evicted, None);
            let running = task();
            connections.served_by(slot.id(), running.abort_handle());
            assert!(slot.activity.advance(state));
            slots.push(slot);
            tasks.push(running);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (newcomer, evicted) = connections.admit(Holder::Uid(1000)).await;
        assert_eq!(evicted, Some(State::Awaiting));
        assert!(newcomer.activity.advance(State::Answering));
        connections.served_by(newcomer.id(), task().abort_handle());
        let (_second, evicted) = connections.admit(Holder::Uid(1000)).await;
        assert_eq!(evicted, Some(State::ReadingBody));
        tokio::task::yield_now().await;
        assert!(tasks[0].is_finished() && tasks[1].is_finished());
        assert!(!tasks[2].is_finished());
        // A request of an evicted connection never gets to answering.
        assert!(!slots[1].activity.advance(State::Answering));
        assert!(!slots[0].activity.answering());
        // Only answering connections (and one not yet served) are left.
        let third = tokio::time::timeout(
            Duration::from_millis(50),
            connections.admit(Holder::Uid(1000)),
        )
        .await;
        assert!(third.is_err(), "admitted with every slot answering");
        drop(slots.pop()); // the answering one gives its slot up
        let (_third, evicted) = connections.admit(Holder::Uid(1000)).await;
        assert_eq!(evicted, None);
    }

    /// With every slot taken, a newcomer ends a connection of the caller
    /// holding the most, though another's has waited longer: a caller
    /// opening connections without end ends its own.
    #[tokio::test]
    async fn makes_room_from_the_caller_holding_the_most() {
        let connections = Connections::new(3);
        let mut slots = Vec::new();
        for holder in [Holder::Trusted, Holder::Uid(65534), Holder::Uid(65534)] {
            let (slot, _) = connections.admit(holder).await;
            let running = tokio::spawn(std::future::pending::<()>());
            connections.served_by(slot.id(), running.abort_handle());
            slots.push(slot);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for newcomer in [Holder::Uid(65534), Holder::Trusted] {
            let (slot, evicted) = connections.admit(newcomer).await;
            assert_eq!(evicted, Some(State::Awaiting));
            let running = tokio::spawn(std::future::pending::<()>());
            connections.served_by(slot.id(), running.abort_handle());
            slots.push(slot);
        }
        // Root's first connection, the oldest, is still there; nobody's
        // first two were ended.
        assert!(slots[0].activity.advance(State::Answering));
        assert!(!slots[1].activity.advance(State::Answering));
        assert!(!slots[2].activity.advance(State::Answering));
    }

    /// At the drain's end every connection without a request being
    /// answered is ended and can answer none; those answering are counted
    /// (what the drain's warning says were cut off) and left to run.
    #[tokio::test]
    async fn closing_ends_the_idle_and_counts_the_answering() {
        let connections = Connections::new(4);
        let mut slots = Vec::new();
        let mut tasks = Vec::new();
        for state in [State::Awaiting, State::ReadingBody, State::Answering] {
            let (slot, _) = connections.admit(Holder::Uid(1000)).await;
            let running = tokio::spawn(std::future::pending::<()>());
            connections.served_by(slot.id(), running.abort_handle());
            assert!(slot.activity.advance(state));
            slots.push(slot);
            tasks.push(running);
        }
        assert_eq!(connections.close(), 1);
        tokio::task::yield_now().await;
        assert!(tasks[0].is_finished() && tasks[1].is_finished());
        assert!(!tasks[2].is_finished());
        for ended in &slots[..2] {
            assert!(!ended.activity.advance(State::Answering));
        }
        assert!(slots[2].activity.answering());
    }
}
