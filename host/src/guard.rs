//! Everything a policy can make the host do to processes, each checked
//! against the rules no policy can break:
//!
//! - only processes opened by pid > 0, through a handle that names that
//!   process and no other (so a pid reused between check and send is safe);
//!   a group through its leader's handle, opened before the group is
//!   checked (member by member once the leader has gone);
//! - never pid 1, sigd itself or any of its ancestors, in any scope: a
//!   group or tree that holds one of them is refused whole (the ancestry is
//!   walked again when sigd's parent changes, not on every request: see
//!   `Ancestry`);
//! - never sigd's own process group;
//! - only signal numbers Linux delivers (see [`crate::signal`]);
//! - on behalf of a caller ([`Authority::OnBehalfOf`]), only processes
//!   kill(2) would let that uid signal: checked for every process of the
//!   scope in the same pass that delivers, all or nothing.
//!
//! It also carries out scopes (process, group, tree: stopped as it is
//! walked, so that no process forked meanwhile escapes) and waiting, and hands
//! escalations, checked, to the [`Escalations`] that own them.

use crate::escalations::Escalations;
use crate::process::{
    ExitStatus, KillError, Look, NoRoom, Opened, Process, ProcessTable, RunState, Seen,
};
use crate::shares::{Holder, Shares};
use crate::signal;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info, warn};

/// Which processes a signal reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The process alone.
    Process,
    /// Its process group.
    Group,
    /// It and all its descendants.
    Tree,
}

impl Scope {
    /// The name callers use in the body: "process", "group", "tree".
    pub fn name(self) -> &'static str {
        match self {
            Scope::Process => "process",
            Scope::Group => "group",
            Scope::Tree => "tree",
        }
    }
}

/// Whose authority a signal is sent with (in a decision record, the uid
/// it went on behalf of, or `null` for sigd's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "Option<u32>", into = "Option<u32>")]
pub enum Authority {
    /// sigd's own: the kernel checks sigd's credentials.
    Sigd,
    /// A caller's: kill(2)'s rule for this uid, which the host applies to
    /// every process of the scope before sending to any.
    OnBehalfOf(u32),
}

impl From<Option<u32>> for Authority {
    /// A policy's `on-behalf-of`: a uid, or `None` for sigd's own authority.
    fn from(on_behalf_of: Option<u32>) -> Authority {
        on_behalf_of.map_or(Authority::Sigd, Authority::OnBehalfOf)
    }
}

impl From<Authority> for Option<u32> {
    fn from(authority: Authority) -> Option<u32> {
        match authority {
            Authority::Sigd => None,
            Authority::OnBehalfOf(uid) => Some(uid),
        }
    }
}

/// The longest a policy may make a request wait for an exit, whatever it asks.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// How many times a group-scope signal looks at the target's group while
/// the target keeps moving to another.
const GROUP_LOOKS: usize = 3;

/// How many times a tree is walked again looking for descendants that
/// appeared meanwhile.
const TREE_ROUNDS: usize = 10;

/// How many walks a tree signal makes at most while stopping the tree:
/// each finds only children forked before their parent was stopped, so a
/// few suffice even for a tree forking as fast as it can.
const FREEZE_ROUNDS: usize = 64;

/// How long a tree signal waits, per walk, for the processes it stopped to
/// be stopped (one in uninterruptible sleep stops only when it wakes).
const STOP_WAIT: Duration = Duration::from_millis(100);

/// How long a tree signal waits, in all its walks, for processes to be
/// stopped: a tree that keeps making processes sigd cannot stop (one in
/// vfork, under a parent whose SIGSTOPs a tracer cancels) would have it
/// wait [`STOP_WAIT`] a walk for each, holding a thread and the caller's
/// connection for seconds. Past it, the walks go on without waiting (a
/// busy tree's new children are still found), up to [`FREEZE_ROUNDS`].
const FREEZE_TIME: Duration = Duration::from_millis(500);

/// SIGSTOP and SIGCONT, by number (the kernel's, on every architecture
/// sigd runs on).
const STOP: i32 = nix::libc::SIGSTOP;
const CONT: i32 = nix::libc::SIGCONT;

/// Whether a tree signal stops the tree first: every signal but SIGCONT
/// (a stopped tree forks nothing) and the terminal stop signals (the
/// SIGCONT that ends the freeze would discard them).
fn freezes(signal: i32) -> bool {
    use nix::libc::{SIGTSTP, SIGTTIN, SIGTTOU};
    ![CONT, SIGTSTP, SIGTTIN, SIGTTOU].contains(&signal)
}

/// A process table held to sigd's invariants: the only kind a policy can
/// reach. Cheap to clone; clones share the table and its escalations.
#[derive(Clone)]
pub struct GuardedTable(Arc<Inner>);

struct Inner {
    /// sigd's own pid, as its PID namespace numbers it.
    own_pid: i32,
    table: Box<dyn ProcessTable>,
    /// The escalations scheduled through this table, still pending.
    escalations: Escalations,
    /// One permit per request that may wait for an exit at once.
    waits: Arc<Semaphore>,
    /// Each caller's share of the permits.
    wait_shares: Arc<Shares>,
    /// True once waits are to end now (the drain is ending).
    cut_waits: watch::Sender<bool>,
    /// sigd's ancestry as last walked, kept until sigd's parent changes.
    ancestry: Mutex<Ancestry>,
}

/// How many requests may wait for an exit at once unless told otherwise.
pub const DEFAULT_MAX_WAITS: usize = 256;

/// How a wait for an exit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Waited {
    /// How the process ended, if it did in time.
    pub exit: Option<ExitStatus>,
    /// How long the wait took (in a decision record, `took_us`).
    #[serde(rename = "took_us", with = "micros")]
    pub took: Duration,
    /// Whether it ended before its time without an exit: sigd was
    /// shutting down, or as many requests were waiting as it lets.
    pub cut_short: bool,
}

impl GuardedTable {
    /// Guard `table` on behalf of this process.
    pub fn new(table: impl ProcessTable) -> GuardedTable {
        GuardedTable::for_pid(table, std::process::id() as i32)
    }

    /// Guard `table` on behalf of the process `own_pid` (simulated tables
    /// give a pid of their own).
    pub fn for_pid(table: impl ProcessTable, own_pid: i32) -> GuardedTable {
        GuardedTable::with_limits(table, own_pid, Escalations::default(), DEFAULT_MAX_WAITS)
    }

    /// Guard `table` on behalf of the process `own_pid`, keeping its
    /// escalations in `escalations` (which says how many may be pending),
    /// and letting at most `max_waits` requests wait for an exit at once.
    pub fn with_limits(
        table: impl ProcessTable,
        own_pid: i32,
        escalations: Escalations,
        max_waits: usize,
    ) -> GuardedTable {
        GuardedTable(Arc::new(Inner {
            own_pid,
            table: Box::new(table),
            escalations,
            waits: Arc::new(Semaphore::new(max_waits)),
            wait_shares: Shares::of(max_waits),
            cut_waits: watch::Sender::new(false),
            ancestry: Mutex::new(Ancestry::default()),
        }))
    }

    /// End every wait for an exit now, and any begun from now on at once:
    /// the drain is ending, and their answers must get out before it does.
    pub fn cut_waits_short(&self) {
        self.0.cut_waits.send_replace(true);
    }

    /// The escalations still pending, to count and to end at shutdown.
    pub fn escalations(&self) -> &Escalations {
        &self.0.escalations
    }

    /// A handle on the process `pid`, if there is one, with what `look`
    /// asks of it (`Err`: no room to open it, which says nothing about the
    /// process).
    pub fn open(&self, pid: i32, look: Look) -> Result<Option<Opened>, NoRoom> {
        if pid <= 0 {
            return Ok(None);
        }
        self.0.table.open(pid, look)
    }

    /// Send `signal` to `target`'s `scope` with `authority`, all or
    /// nothing; the pids reached.
    pub fn signal(
        &self,
        target: &Arc<dyn Process>,
        signal: i32,
        scope: Scope,
        authority: Authority,
    ) -> Result<Vec<i32>, KillError> {
        let sent = self.deliver(target, signal, scope, authority);
        if let Err(error) = &sent {
            // The request's audit event says so at `info`: one event a request.
            debug!(pid = target.pid(), signal, ?scope, %error, "signal not delivered");
        }
        sent
    }

    /// After `after`, if `target` still runs, send `signal` to its `scope`.
    /// Checks what it can now and returns; [`Escalations`] keeps watch
    /// (refused if as many are pending as it keeps, in all or for `holder`).
    pub fn escalate(
        &self,
        target: Arc<dyn Process>,
        after: Duration,
        signal: i32,
        scope: Scope,
        authority: Authority,
        holder: &Holder,
    ) -> Result<(), KillError> {
        if !signal::is_deliverable(signal) {
            return Err(KillError::InvalidSignal);
        }
        may_reach(&target, authority)?;
        let members = self.members(&target, scope)?;
        self.check_authority(&target, members, authority)?;
        let guard = self.clone();
        let pid = target.pid();
        let scheduled =
            self.0
                .escalations
                .schedule(pid, signal, scope, after, holder, async move {
                    let fire = || guard.deliver(&target, signal, scope, authority);
                    tokio::select! {
                        () = target.exited() => info!(pid, "exited in time; no escalation"),
                        () = tokio::time::sleep(after) => match fire() {
                            Ok(reached) => info!(pid, signal, ?scope, ?reached, "escalated"),
                            Err(KillError::NotFound) => info!(pid, "exited in time; no escalation"),
                            Err(error) => warn!(pid, signal, ?scope, %error, "escalation failed"),
                        },
                    }
                });
        if let Err(full) = scheduled {
            warn!(pid, signal, ?holder, %full, "escalation refused");
        }
        Ok(scheduled?)
    }

    /// Wait at most `timeout` (and never more than [`MAX_WAIT`]) for
    /// `target` to exit, for `holder`. The wait is cut short, at once, if
    /// as many requests wait already as may (in all, or for `holder`), and
    /// when [`cut_waits_short`] is called.
    ///
    /// [`cut_waits_short`]: GuardedTable::cut_waits_short
    pub async fn wait_exit(
        &self,
        target: &Arc<dyn Process>,
        timeout: Duration,
        holder: &Holder,
    ) -> Waited {
        let started = tokio::time::Instant::now();
        let ended = |exit, cut_short| Waited {
            exit,
            took: started.elapsed(),
            cut_short,
        };
        let mut cut = self.0.cut_waits.subscribe();
        let Ok(_share) = self.0.wait_shares.take(holder) else {
            return ended(None, true);
        };
        let Ok(_permit) = self.0.waits.clone().try_acquire_owned() else {
            return ended(None, true);
        };
        tokio::select! {
            () = target.exited() => {}
            () = tokio::time::sleep(timeout.min(MAX_WAIT)) => return ended(None, false),
            _ = cut.wait_for(|cut| *cut) => return ended(None, true),
        }
        // Just after the exit, a zombie may not say how yet: ask a few times.
        for _ in 0..20 {
            match target.exit_status() {
                Some(ExitStatus::Unknown) | None => {
                    tokio::time::sleep(Duration::from_millis(1)).await
                }
                Some(status) => return ended(Some(status), false),
            }
        }
        let status = target.exit_status().unwrap_or(ExitStatus::Unknown);
        ended(Some(status), false)
    }

    fn deliver(
        &self,
        target: &Arc<dyn Process>,
        signal: i32,
        scope: Scope,
        authority: Authority,
    ) -> Result<Vec<i32>, KillError> {
        if !signal::is_deliverable(signal) {
            return Err(KillError::InvalidSignal);
        }
        may_reach(target, authority)?;
        if scope == Scope::Tree && freezes(signal) {
            return self.signal_tree(target, signal, authority);
        }
        let members = self.members(target, scope)?;
        match self.check_authority(target, members, authority)? {
            Members::Process => target.send(signal).map(|()| vec![target.pid()]),
            // One syscall reaches the whole group checked: through its
            // leader, opened before it was checked (wherever the leader or
            // the target are now).
            Members::Group { leader, listed } => match leader.send_to_group(signal) {
                // The group found has no one left in it: the target has
                // moved since, or ended.
                Err(KillError::NotFound) => Err(moved(target)),
                sent => sent.map(|()| listed.pids),
            },
            Members::Each(members) => send_each(target, &members, signal),
        }
    }

    /// `members`, once every one of them may be signalled with `authority`
    /// (the target alone, in process scope, was checked before: callers of
    /// this ask [`may_reach`] first). On behalf of a caller, a group is
    /// opened member by member, so the processes checked are exactly those
    /// signalled (each through its own handle).
    fn check_authority(
        &self,
        target: &Arc<dyn Process>,
        members: Members,
        authority: Authority,
    ) -> Result<Members, KillError> {
        let uid = match authority {
            // Root may signal any process kill(2) would: nothing to check,
            // and a group stays one syscall.
            Authority::Sigd | Authority::OnBehalfOf(0) => return Ok(members),
            Authority::OnBehalfOf(uid) => uid,
        };
        let members = match members {
            // The target itself was checked first (`may_reach`).
            Members::Process => return Ok(Members::Process),
            Members::Group { listed, .. } => self.open_members(target, &listed)?,
            Members::Each(members) => members,
        };
        for (_, member) in &members {
            may_signal(member, uid)?;
        }
        Ok(Members::Each(members))
    }

    /// Send `signal` to `target` and all its descendants, none escaping:
    /// each process of the tree is stopped (SIGSTOP, which also cancels a
    /// fork it is making) before its children are looked for, and the tree
    /// is walked until a walk finds no process it has not stopped (at most
    /// [`FREEZE_ROUNDS`] walks, waiting at most [`FREEZE_TIME`] in all). Only
    /// then is `signal` sent to each; afterwards those the freeze stopped
    /// are continued (SIGCONT), unless `signal` was SIGSTOP. A process is
    /// checked (protected, `authority`) before it is stopped; a refusal
    /// continues the processes already stopped and signals none.
    fn signal_tree(
        &self,
        target: &Arc<dyn Process>,
        signal: i32,
        authority: Authority,
    ) -> Result<Vec<i32>, KillError> {
        blocking(|| self.freeze_and_signal_tree(target, signal, authority))
    }

    /// [`signal_tree`](GuardedTable::signal_tree), on the calling thread.
    fn freeze_and_signal_tree(
        &self,
        target: &Arc<dyn Process>,
        signal: i32,
        authority: Authority,
    ) -> Result<Vec<i32>, KillError> {
        let protected = self.protected();
        let mut frozen = Frozen::default();
        let mut tree = HashMap::new();
        let mut found = vec![(target.pid(), target.clone())];
        let deadline = std::time::Instant::now() + FREEZE_TIME;
        for _ in 0..FREEZE_ROUNDS {
            for (pid, member) in &found {
                if let Authority::OnBehalfOf(uid) = authority {
                    may_signal(member, uid)?;
                }
                if protected.holds_process(member.as_ref()) {
                    return Err(KillError::Protected);
                }
                match frozen.stop(member) {
                    Err(error) if *pid == target.pid() => return Err(error),
                    _ => {} // gone meanwhile, or not ours to stop: send_each says
                }
            }
            // A process stops on its way back to user space, so a fork it
            // was making when the SIGSTOP came has ended by then: once it
            // is stopped, every child it will have is in the table.
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            wait_until_stopped(&found, STOP_WAIT.min(left));
            tree.extend(found);
            found = self.grow(&tree)?;
            if found.is_empty() {
                break;
            }
        }
        let members: Vec<_> = tree.into_iter().collect();
        let reached = send_each(target, &members, signal);
        if signal == STOP {
            frozen.keep_stopped();
        }
        reached
    }

    /// Whom `scope` reaches from `target`, once none of them is protected.
    fn members(&self, target: &Arc<dyn Process>, scope: Scope) -> Result<Members, KillError> {
        let protected = self.protected();
        let refuse_protected = |processes: &[&Arc<dyn Process>]| match processes
            .iter()
            .any(|process| protected.holds_process(process.as_ref()))
        {
            true => Err(KillError::Protected),
            false => Ok(()),
        };
        match scope {
            Scope::Process => {
                refuse_protected(&[target])?;
                Ok(Members::Process)
            }
            Scope::Group => self.group(target, &protected),
            Scope::Tree => {
                let tree = self.tree(target)?;
                refuse_protected(&tree.values().collect::<Vec<_>>())?;
                Ok(Members::Each(tree.into_iter().collect()))
            }
        }
    }

    /// The target's process group, looked at as one: its id, then its
    /// leader opened (the target itself if it leads; `None` if gone), then
    /// its members listed, the target among them, none protected. A pidfd
    /// signals the group whose id is its own pid, wherever the leader has
    /// moved since; and the listing, made after, describes that group, or
    /// that group has none left and is signalled nothing (its id was freed
    /// and taken by a new group in between). A target not listed has moved
    /// (or ended) meanwhile: its group is looked at again, at most
    /// [`GROUP_LOOKS`] times, and then not signalled ("try again").
    fn group(
        &self,
        target: &Arc<dyn Process>,
        protected: &Protected,
    ) -> Result<Members, KillError> {
        let table = &self.0.table;
        let started = |pid| move || table.lookup(pid).map(|p| p.start_time);
        for _ in 0..GROUP_LOOKS {
            let pgid = target.info().ok_or(KillError::NotFound)?.pgid;
            if pgid <= 1 || protected.group == Some(pgid) {
                return Err(KillError::Protected);
            }
            let leader = match pgid == target.pid() {
                true => Some(target.clone()),
                false => table.open(pgid, Look::State)?.map(|opened| opened.process),
            };
            let at = table.now();
            let pids = table.group(pgid)?;
            if pids.binary_search(&target.pid()).is_err() {
                continue;
            }
            if pids
                .iter()
                .any(|&pid| protected.holds_pid(pid, started(pid)))
            {
                return Err(KillError::Protected);
            }
            let listed = Listing { pgid, pids, at };
            return match leader {
                Some(leader) => Ok(Members::Group { leader, listed }),
                // No handle names a group whose leader has gone, and its id
                // could be another group's by the send: each member is
                // signalled through its own.
                None => match self.open_members(target, &listed) {
                    Err(KillError::Moving) => continue,
                    opened => Ok(Members::Each(opened?)),
                },
            };
        }
        Err(moved(target))
    }

    /// The members of a group as `listed`, each opened and found still in
    /// it, and started before the listing: a later process that took a
    /// member's pid (and perhaps, the group gone, its id for a group of its
    /// own) is left out. The target must be among them: else it has moved.
    fn open_members(
        &self,
        target: &Arc<dyn Process>,
        listed: &Listing,
    ) -> Result<Vec<Member>, KillError> {
        let mut members = Vec::new();
        for &pid in &listed.pids {
            // Its facts in the same look that opens it.
            let Some(opened) = self.0.table.open(pid, Look::Info)? else {
                continue;
            };
            if let Seen::Info(info) = &opened.seen
                && info.pgid == listed.pgid
                && info.start_time <= listed.at
            {
                members.push((pid, opened.process));
            }
        }
        match members.iter().any(|(pid, _)| *pid == target.pid()) {
            true => Ok(members),
            false => Err(moved(target)),
        }
    }

    /// `target` and its descendants, opened, walked again until no new one
    /// appears (at most [`TREE_ROUNDS`] times). `Err` if there was no room
    /// to open one: the tree would not be whole.
    fn tree(&self, target: &Arc<dyn Process>) -> Result<HashMap<i32, Arc<dyn Process>>, NoRoom> {
        let mut tree = HashMap::from([(target.pid(), target.clone())]);
        for _ in 0..TREE_ROUNDS {
            let found = self.grow(&tree)?;
            if found.is_empty() {
                break;
            }
            tree.extend(found);
        }
        Ok(tree)
    }

    /// One walk of the process table: the descendants of `tree`'s processes
    /// that are not in it yet, each opened and, once opened, still the
    /// child of its parent, the process held (so the handle names a real
    /// descendant). A parent is known by its pid, so its children are
    /// taken only if it has not been reaped since they were seen to be its
    /// own: until then no other process can have its pid.
    fn grow(&self, tree: &HashMap<i32, Arc<dyn Process>>) -> Result<Vec<Member>, NoRoom> {
        let table = &self.0.table;
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        for process in table.snapshot() {
            children.entry(process.ppid).or_default().push(process.pid);
        }
        let mut found: Vec<Member> = Vec::new();
        let mut seen: BTreeSet<i32> = tree.keys().copied().collect();
        let mut frontier: Vec<Arc<dyn Process>> = tree.values().cloned().collect();
        while let Some(parent) = frontier.pop() {
            let mut born = Vec::new();
            for &child in children.get(&parent.pid()).into_iter().flatten() {
                if !seen.insert(child) {
                    continue;
                }
                let Some(Opened {
                    process: handle, ..
                }) = table.open(child, Look::State)?
                else {
                    continue;
                };
                if handle.info().is_some_and(|info| info.ppid == parent.pid()) {
                    born.push((child, handle));
                }
            }
            if born.is_empty() || !parent.holds_its_pid() {
                continue; // none, or the pid they name as their parent's may be another's
            }
            frontier.extend(born.iter().map(|(_, handle)| handle.clone()));
            found.extend(born);
        }
        Ok(found)
    }

    /// pid 1, sigd, its ancestors and its group, now: one question to the
    /// table (sigd's parent), and a walk of the ancestry only when that has
    /// changed since the last (see [`Ancestry`]).
    fn protected(&self) -> Arc<Protected> {
        let inner = &self.0;
        let parent = inner.table.parent_of_sigd(inner.own_pid);
        let mut known = inner
            .ancestry
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if known.parent.is_none() || known.parent != parent {
            *known = Ancestry::walk(&*inner.table, inner.own_pid, &known.protected);
        }
        known.protected.clone()
    }
}

/// The processes no signal reaches, as one walk of sigd's ancestry found
/// them.
#[derive(Default)]
struct Protected {
    /// sigd's own pid.
    own_pid: i32,
    /// Each ancestor of sigd by pid and start time, which together name one
    /// process: an ancestor's pid, once taken by a later process, is not
    /// protected.
    ancestors: BTreeSet<(i32, u64)>,
    /// sigd's process group (it never changes it; nor can its parent once
    /// sigd has exec'd), if sigd's facts could be read.
    group: Option<i32>,
}

impl Protected {
    /// Whether the process `pid`, started at `started`, is one no signal
    /// reaches: pid 1, sigd, or one of its ancestors.
    fn holds(&self, pid: i32, started: u64) -> bool {
        pid <= 1 || pid == self.own_pid || self.ancestors.contains(&(pid, started))
    }

    /// [`holds`](Protected::holds) for an opened process, whose start time
    /// is asked for only if its pid is an ancestor's, and read then (by
    /// [`Process::info`]) if the look that opened it read none.
    fn holds_process(&self, process: &dyn Process) -> bool {
        let started =
            || (process.start_time()).or_else(|| process.info().map(|info| info.start_time));
        self.holds_pid(process.pid(), started)
    }

    /// [`holds`](Protected::holds) for the process that has `pid` now,
    /// whose start time (`started`) is read only if the pid is an
    /// ancestor's; one whose start time cannot be read is taken for the
    /// ancestor (it was found alive with that pid).
    fn holds_pid(&self, pid: i32, started: impl FnOnce() -> Option<u64>) -> bool {
        if pid <= 1 || pid == self.own_pid {
            return true;
        }
        let an_ancestors_pid = self.ancestors.iter().any(|&(held, _)| held == pid);
        an_ancestors_pid && started().is_none_or(|started| self.holds(pid, started))
    }
}

/// sigd's ancestry as last walked, trusted until sigd's parent changes.
///
/// That is enough, and it errs only on the side of refusing. A process
/// changes parent only when its parent dies, and the kernel then hands it
/// to the nearest living ancestor that is a child subreaper, or to pid 1:
/// a process joins sigd's ancestry only by being born into it, before sigd
/// was. So every ancestor of sigd now was one at the last walk (or is pid
/// 1), and is protected. What the kept walk can get wrong is to protect a
/// process that is no longer an ancestor:
///
/// - one that has died: a later process has its pid and start time only if
///   it started within the same clock tick, and is then refused too;
/// - one that lives on, when a process between it and sigd died and a
///   subreaper above it took the orphan: protected until sigd's own parent
///   changes. sigd's parent is asked on every request (getppid(2)), and
///   when it changes the ancestry is walked again at once, so the ancestor
///   that died *was* sigd's parent is forgotten in the same request.
#[derive(Default)]
struct Ancestry {
    /// sigd's parent when it was walked; `None` (walk again next time)
    /// until a walk reaches the top of the ancestry.
    parent: Option<i32>,
    protected: Arc<Protected>,
}

impl Ancestry {
    /// Walk sigd's ancestry in `table` now, up to pid 1 or to a process
    /// whose parent is outside sigd's PID namespace. A walk that cannot get
    /// there (an ancestor gone meanwhile, or a "parent" younger than its
    /// child: another process took a gone ancestor's pid) keeps what
    /// `before` protected too, and is done again on the next request.
    fn walk(table: &dyn ProcessTable, own_pid: i32, before: &Protected) -> Ancestry {
        let me = table.lookup(own_pid);
        let mut whole = me.is_some();
        let mut ancestors = BTreeSet::new();
        let (mut pid, mut child_started) =
            me.as_ref().map_or((0, 0), |me| (me.ppid, me.start_time));
        while pid > 1 {
            let Some(ancestor) = table.lookup(pid) else {
                whole = false;
                break;
            };
            whole &= ancestor.start_time <= child_started;
            if !ancestors.insert((pid, ancestor.start_time)) {
                break; // a cycle, which only a simulated table can have
            }
            (pid, child_started) = (ancestor.ppid, ancestor.start_time);
        }
        if !whole {
            ancestors.extend(before.ancestors.iter().copied());
        }
        Ancestry {
            parent: me.as_ref().filter(|_| whole).map(|me| me.ppid),
            protected: Arc::new(Protected {
                own_pid,
                ancestors,
                group: me.map(|me| me.pgid).or(before.group),
            }),
        }
    }
}

/// A process a scope reaches: its pid and its handle.
type Member = (i32, Arc<dyn Process>);

/// Whom a scope reaches, checked.
enum Members {
    /// The target alone.
    Process,
    /// The target's process group, as listed, and its leader: signalled as
    /// one, through the leader.
    Group {
        leader: Arc<dyn Process>,
        listed: Listing,
    },
    /// Processes each opened, signalled one by one: a tree, a group whose
    /// leader has gone, or a scope sent on behalf of a caller.
    Each(Vec<Member>),
}

/// A process group's members, as one look at the table found them.
struct Listing {
    pgid: i32,
    pids: Vec<i32>,
    /// [`ProcessTable::now`] just before the look.
    at: u64,
}

/// Why a group-scope target was not found in its group: it has ended, or
/// moved to another group.
fn moved(target: &Arc<dyn Process>) -> KillError {
    match target.state() {
        None => KillError::NotFound,
        Some(_) => KillError::Moving,
    }
}

/// Whether kill(2) lets `uid` signal `member`. One that has gone can be
/// signalled by no one, and passes (it is skipped); one whose facts cannot
/// be read is not permitted; no room to read them is no answer about it.
fn may_signal(member: &Arc<dyn Process>, uid: u32) -> Result<(), KillError> {
    match member.uids()? {
        Some(uids) if uids.may_be_signalled_by(uid) => Ok(()),
        Some(_) => Err(KillError::NotPermitted),
        None => match member.send(0) {
            Err(KillError::NotFound) => Ok(()),
            _ => Err(KillError::NotPermitted),
        },
    }
}

/// Whether `authority` may signal `target` at all, asked before anything
/// else of it: to a caller kill(2) would refuse, a protected process is one
/// it may not signal like any other of another user's, so a refusal tells
/// it nothing kill(2) would not (not which processes are sigd and its
/// ancestors). Root may signal any process kill(2) would.
fn may_reach(target: &Arc<dyn Process>, authority: Authority) -> Result<(), KillError> {
    match authority {
        Authority::OnBehalfOf(uid) if uid != 0 => may_signal(target, uid),
        Authority::Sigd | Authority::OnBehalfOf(_) => Ok(()),
    }
}

/// Run `work`, which may block its thread for a while (a tree's freeze
/// waits up to [`STOP_WAIT`] a walk for processes that cannot stop, such
/// as one waiting in vfork), without holding up the other tasks of the
/// async runtime it runs on: on a worker of a multi-threaded runtime,
/// tokio first hands that worker's other tasks to another thread.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Wait, at most `limit`, until each of `members` is stopped or gone:
/// first yielding the CPU (they stop within microseconds), then napping.
fn wait_until_stopped(members: &[Member], limit: Duration) {
    let started = std::time::Instant::now();
    let mut waiting: Vec<&Member> = members.iter().collect();
    for round in 0.. {
        waiting.retain(|(_, member)| {
            member
                .info()
                .is_some_and(|info| info.state != RunState::Stopped && !info.state.has_exited())
        });
        if waiting.is_empty() || started.elapsed() >= limit {
            return;
        }
        match round {
            0..100 => std::thread::yield_now(),
            _ => std::thread::sleep(Duration::from_micros(100)),
        }
    }
}

/// The processes a tree signal has stopped, continued when it is dropped
/// (whatever way the signal ends) unless told to keep them stopped. One
/// that was stopped already is left as it was.
#[derive(Default)]
struct Frozen(Vec<Arc<dyn Process>>);

impl Frozen {
    /// Stop `process` (SIGSTOP through its handle).
    fn stop(&mut self, process: &Arc<dyn Process>) -> Result<(), KillError> {
        let was_stopped = process
            .info()
            .is_some_and(|info| info.state == RunState::Stopped);
        process.send(STOP)?;
        if !was_stopped {
            self.0.push(process.clone());
        }
        Ok(())
    }

    /// Leave every process stopped: the signal was SIGSTOP.
    fn keep_stopped(mut self) {
        self.0.clear();
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for process in &self.0 {
            match process.send(CONT) {
                Ok(()) | Err(KillError::NotFound) => {}
                Err(error) => {
                    warn!(pid = process.pid(), %error, "not continued after a tree signal")
                }
            }
        }
    }
}

/// Signal each of `members` through its own handle; the pids reached. A
/// member that has exited meanwhile is skipped; a failure for the target
/// itself is the call's.
fn send_each(
    target: &Arc<dyn Process>,
    members: &[Member],
    signal: i32,
) -> Result<Vec<i32>, KillError> {
    let mut reached = Vec::new();
    for (pid, member) in members {
        match member.send(signal) {
            Ok(()) => reached.push(*pid),
            Err(KillError::NotFound) => {} // exited meanwhile
            Err(error) if *pid == target.pid() => return Err(error),
            Err(error) => warn!(pid, signal, %error, "scope member not signalled"),
        }
    }
    if reached.is_empty() {
        return Err(KillError::NotFound);
    }
    reached.sort_unstable();
    Ok(reached)
}

/// A [`Duration`] as whole microseconds, for decision records.
mod micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(took: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(took.as_micros() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{Ids, Listed, ProcessInfo};
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const SIGD: i32 = 30;

    /// The facts of root's process `pid`, asleep, leading a group and a
    /// session of its own.
    fn sleeping(pid: i32, ppid: i32, start_time: u64) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            pgid: pid,
            sid: pid,
            uids: Ids::all(0),
            gids: Ids::all(0),
            state: RunState::Sleeping,
            start_time,
            command: format!("p{pid}"),
            exit_code: None,
        }
    }

    /// One opened process as a test has it: its start time as the look
    /// that opened it read it, its facts (`None`: gone, or unreadable; and
    /// once `reaped` is set) and its uids as `uids` gives them; `asked`
    /// tells whether its facts were.
    struct Fake {
        pid: i32,
        start_time: Option<u64>,
        info: Option<ProcessInfo>,
        uids: Result<Option<Ids>, NoRoom>,
        asked: std::sync::atomic::AtomicBool,
        reaped: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Fake {
        fn new(pid: i32, start_time: Option<u64>, info: Option<ProcessInfo>) -> Fake {
            let uids = Ok(info.as_ref().map(|info| info.uids));
            Fake {
                pid,
                start_time,
                info,
                uids,
                asked: Default::default(),
                reaped: Default::default(),
            }
        }
    }

    impl Process for Fake {
        fn pid(&self) -> i32 {
            self.pid
        }
        fn start_time(&self) -> Option<u64> {
            self.start_time
        }
        fn info(&self) -> Option<ProcessInfo> {
            self.asked.store(true, Ordering::Relaxed);
            self.info
                .clone()
                .filter(|_| !self.reaped.load(Ordering::SeqCst))
        }
        fn uids(&self) -> Result<Option<Ids>, NoRoom> {
            self.uids
        }
        fn send_to_group(&self, _signal: i32) -> Result<(), KillError> {
            Err(KillError::NotFound)
        }
        fn send(&self, _signal: i32) -> Result<(), KillError> {
            Ok(())
        }
        fn exited(&self) -> crate::process::Exited {
            Box::pin(std::future::pending())
        }
        fn exit_status(&self) -> Option<crate::process::ExitStatus> {
            None
        }
    }

    /// A table of (pid, ppid, start time) whose processes can die, move and
    /// be born while a guard holds it; it counts its lookups.
    #[derive(Clone, Default)]
    struct Table(Arc<(Mutex<BTreeMap<i32, ProcessInfo>>, AtomicUsize)>);

    impl Table {
        fn with(processes: &[(i32, i32, u64)]) -> Table {
            let table = Table::default();
            table.set(processes);
            table
        }

        /// Add or replace these processes.
        fn set(&self, processes: &[(i32, i32, u64)]) {
            let mut table = self.0.0.lock().unwrap();
            for &(pid, ppid, start_time) in processes {
                table.insert(pid, sleeping(pid, ppid, start_time));
            }
        }

        fn remove(&self, pid: i32) {
            self.0.0.lock().unwrap().remove(&pid);
        }

        fn lookups(&self) -> usize {
            self.0.1.load(Ordering::Relaxed)
        }
    }

    impl ProcessTable for Table {
        fn lookup(&self, pid: i32) -> Option<ProcessInfo> {
            self.0.1.fetch_add(1, Ordering::Relaxed);
            self.0.0.lock().unwrap().get(&pid).cloned()
        }

        fn parent_of_sigd(&self, sigd: i32) -> Option<i32> {
            // The cheap question: not a lookup.
            self.0.0.lock().unwrap().get(&sigd).map(|info| info.ppid)
        }

        fn snapshot(&self) -> Vec<Listed> {
            self.0
                .0
                .lock()
                .unwrap()
                .values()
                .map(Listed::from)
                .collect()
        }

        fn now(&self) -> u64 {
            u64::MAX
        }

        fn open(&self, _pid: i32, _look: Look) -> Result<Option<Opened>, NoRoom> {
            Ok(None)
        }
    }

    /// A tree 10 -> 11 -> 12 as listed, where 11 is reaped (and its pid
    /// taken by an unrelated process, 12's real parent) as 12 is opened,
    /// when `reuse` says so.
    struct ReusedParent {
        reuse: bool,
        reaped: Arc<std::sync::atomic::AtomicBool>,
    }

    impl ProcessTable for ReusedParent {
        fn lookup(&self, pid: i32) -> Option<ProcessInfo> {
            match pid {
                1 => Some(sleeping(1, 0, 1)),
                SIGD => Some(sleeping(SIGD, 1, 2)),
                _ => None,
            }
        }
        fn snapshot(&self) -> Vec<Listed> {
            [sleeping(10, 1, 5), sleeping(11, 10, 6), sleeping(12, 11, 7)]
                .iter()
                .map(Listed::from)
                .collect()
        }
        fn now(&self) -> u64 {
            u64::MAX
        }
        fn open(&self, pid: i32, _look: Look) -> Result<Option<Opened>, NoRoom> {
            let (ppid, reaped) = match pid {
                11 => (10, self.reaped.clone()),
                12 => {
                    self.reaped.store(self.reuse, Ordering::SeqCst);
                    (11, Arc::default())
                }
                _ => return Ok(None),
            };
            let info = sleeping(pid, ppid, pid as u64);
            let fake = Fake::new(pid, Some(info.start_time), Some(info));
            let process = Arc::new(Fake { reaped, ..fake });
            let seen = Seen::State(RunState::Sleeping);
            Ok(Some(Opened { process, seen }))
        }
    }

    /// A tree is walked through the processes the guard holds, not their
    /// pids alone: a child listed under a member's pid is taken only if that
    /// member still held its pid (was not reaped) after the child was seen
    /// to be its child. Before, a member reaped during the walk, its pid
    /// taken by an unrelated process, brought that process's children into
    /// the tree, and a tree signal reached them.
    #[test]
    fn a_tree_is_walked_through_its_members_not_their_pids() {
        for reuse in [false, true] {
            let table = ReusedParent {
                reuse,
                reaped: Arc::default(),
            };
            let guard = GuardedTable::for_pid(table, SIGD);
            let target: Arc<dyn Process> =
                Arc::new(Fake::new(10, Some(5), Some(sleeping(10, 1, 5))));
            let tree = guard.tree(&target).unwrap();
            let pids: BTreeSet<i32> = tree.keys().copied().collect();
            let expected = match reuse {
                false => BTreeSet::from([10, 11, 12]),
                true => BTreeSet::from([10, 11]),
            };
            assert_eq!(pids, expected, "reuse: {reuse}");
        }
    }

    /// A process whose uids sigd has no room to read (out of descriptors)
    /// is neither permitted nor refused for a caller: the host's lack of
    /// room is the answer (503), as it is for opening one.
    #[test]
    fn no_room_for_the_uids_is_no_answer_about_the_process() {
        let unreadable = Fake {
            uids: Err(NoRoom(nix::errno::Errno::EMFILE)),
            ..Fake::new(42, Some(1), None)
        };
        let member: Arc<dyn Process> = Arc::new(unreadable);
        let refused = may_signal(&member, 1000);
        assert_eq!(
            refused,
            Err(KillError::NoRoom(NoRoom(nix::errno::Errno::EMFILE)))
        );
    }

    /// Whether the guard protects `pid` started at `start_time` now.
    fn protects(guard: &GuardedTable, pid: i32, start_time: u64) -> bool {
        guard.protected().holds(pid, start_time)
    }

    /// While sigd's parent stays, the ancestry is not walked again; an
    /// ancestor that died meanwhile is forgotten for what matters: its pid,
    /// taken by a later process, is not protected.
    #[test]
    fn kept_until_the_parent_changes_and_never_for_a_reused_pid() {
        let table = Table::with(&[(1, 0, 1), (10, 1, 5), (20, 10, 6), (SIGD, 20, 7)]);
        let guard = GuardedTable::for_pid(table.clone(), SIGD);
        assert!(protects(&guard, 10, 5) && protects(&guard, 20, 6));
        let walked = table.lookups();
        assert!(protects(&guard, 20, 6));
        assert_eq!(table.lookups(), walked, "walked again with the same parent");
        // 10 dies, 20 is handed to pid 1, and 10 is reused.
        table.set(&[(20, 1, 6), (10, 1, 90)]);
        assert!(!protects(&guard, 10, 90));
        assert!(protects(&guard, 20, 6) && protects(&guard, 1, 1) && protects(&guard, SIGD, 7));
    }

    /// When sigd's parent dies and a subreaper above takes sigd, the
    /// ancestry is walked again at once: the subreaper stays protected, the
    /// process between it and the dead parent is no longer.
    #[test]
    fn walked_again_when_the_parent_changes() {
        let table = Table::with(&[
            (1, 0, 1),
            (10, 1, 5),
            (15, 10, 6),
            (20, 15, 7),
            (SIGD, 20, 8),
        ]);
        let guard = GuardedTable::for_pid(table.clone(), SIGD);
        assert!(protects(&guard, 15, 6));
        table.remove(20);
        table.set(&[(SIGD, 10, 8)]);
        assert!(protects(&guard, 10, 5));
        assert!(!protects(&guard, 15, 6) && !protects(&guard, 20, 7));
    }

    /// A walk that cannot reach the top (an ancestor gone meanwhile) keeps
    /// what the walk before protected, and is done again on the next call.
    #[test]
    fn a_walk_cut_short_keeps_the_one_before() {
        let table = Table::with(&[(1, 0, 1), (10, 1, 5), (20, 10, 6), (SIGD, 20, 7)]);
        let guard = GuardedTable::for_pid(table.clone(), SIGD);
        assert!(protects(&guard, 10, 5));
        // sigd's new parent 40 has gone before the walk reads it.
        table.set(&[(SIGD, 40, 7)]);
        assert!(protects(&guard, 10, 5) && protects(&guard, 20, 6));
        let walked = table.lookups();
        table.set(&[(40, 1, 3)]);
        assert!(protects(&guard, 40, 3));
        assert!(
            table.lookups() > walked,
            "not walked again after a walk cut short"
        );
        assert!(!protects(&guard, 10, 5) && !protects(&guard, 20, 6));
    }

    /// A "parent" that started after its child is a process that took a
    /// gone ancestor's pid: protected too, but the walk is not trusted, and
    /// the one before is kept.
    #[test]
    fn a_younger_parent_is_not_trusted() {
        let table = Table::with(&[(1, 0, 1), (10, 1, 5), (20, 10, 6), (SIGD, 20, 7)]);
        let guard = GuardedTable::for_pid(table.clone(), SIGD);
        assert!(protects(&guard, 10, 5));
        table.set(&[(20, 1, 50), (21, 20, 4), (SIGD, 21, 7)]);
        assert!(protects(&guard, 21, 4) && protects(&guard, 20, 50));
        assert!(protects(&guard, 10, 5), "the walk before was dropped");
    }

    /// sigd's protected set with one ancestor, pid 20, started at tick 50.
    fn ancestor_20() -> Protected {
        Protected {
            own_pid: SIGD,
            ancestors: BTreeSet::from([(20, 50)]),
            group: Some(SIGD),
        }
    }

    /// A process is told protected by its pid alone where the pid says it
    /// (pid 1, sigd); an ancestor's pid needs its start time, which is read
    /// for no other pid.
    #[test]
    fn only_an_ancestors_pid_needs_a_start_time() {
        let protected = ancestor_20();
        let unread = || -> Option<u64> { panic!("a start time read") };
        assert!(protected.holds_pid(1, unread) && protected.holds_pid(SIGD, unread));
        assert!(!protected.holds_pid(21, unread));
        assert!(protected.holds_pid(20, || Some(50)));
        assert!(
            !protected.holds_pid(20, || Some(51)),
            "a later process with its pid"
        );
        assert!(
            protected.holds_pid(20, || None),
            "unread: taken for the ancestor"
        );
    }

    /// An opened process whose look read no start time (`open-alive`) is
    /// protected as one whose look did: its facts are read for its start
    /// time only when its pid is an ancestor's, and one whose facts cannot
    /// be read (gone since) is taken for the ancestor.
    #[test]
    fn a_process_opened_without_a_start_time_is_judged_by_its_facts() {
        let protected = ancestor_20();
        let judged = |pid, started: Option<u64>| {
            let info = started.map(|start_time| sleeping(pid, 1, start_time));
            let process = Fake::new(pid, None, info);
            let held = protected.holds_process(&process);
            (held, process.asked.into_inner())
        };
        assert_eq!(judged(21, Some(50)), (false, false), "no ancestor's pid");
        assert_eq!(judged(20, Some(50)), (true, true), "the ancestor");
        assert_eq!(judged(20, Some(51)), (false, true), "a later process");
        assert_eq!(judged(20, None), (true, true), "gone: taken for it");
        assert_eq!(judged(SIGD, None), (true, false), "sigd, by its pid");
    }

    /// The simulated table, looked at as if at `now`, its group listings
    /// leaving out `hidden` (as if it had moved to another group).
    struct Looked {
        table: crate::kit::simulated::Simulated,
        hidden: i32,
        now: u64,
    }

    impl ProcessTable for Looked {
        fn lookup(&self, pid: i32) -> Option<ProcessInfo> {
            self.table.lookup(pid)
        }
        fn snapshot(&self) -> Vec<Listed> {
            self.table.snapshot()
        }
        fn group(&self, pgid: i32) -> Result<Vec<i32>, KillError> {
            let pids = self.table.group(pgid)?;
            Ok(pids.into_iter().filter(|&pid| pid != self.hidden).collect())
        }
        fn now(&self) -> u64 {
            self.now
        }
        fn open(&self, pid: i32, look: Look) -> Result<Option<Opened>, NoRoom> {
            self.table.open(pid, look)
        }
    }

    /// Processes 50 (leading group 50) and 51 in it, 61 and 62 in group 60,
    /// whose leader is gone; sigd is 30.
    fn groups() -> crate::kit::simulated::Simulated {
        let table = r#"[{"pid": 30, "pgid": 30}, {"pid": 50}, {"pid": 51, "pgid": 50},
            {"pid": 61, "pgid": 60, "ignores": [10]}, {"pid": 62, "pgid": 60, "ignores": [10]}]"#;
        crate::kit::simulated::Simulated::from_json(table).unwrap()
    }

    /// SIGUSR1 (10) as the simulated table notes it: to the group `pid`
    /// leads, or to `pid` alone.
    fn usr1(pid: i32, group: bool) -> crate::kit::simulated::Sent {
        crate::kit::simulated::Sent {
            pid,
            signal: 10,
            group,
        }
    }

    /// A group whose listing no longer holds the target (it moved) is not
    /// signalled: the request is to be made again.
    #[test]
    fn a_target_missing_from_its_group_is_moving() {
        let table = groups();
        let looked = Looked {
            table: table.clone(),
            hidden: 51,
            now: u64::MAX,
        };
        let guard = GuardedTable::for_pid(looked, SIGD);
        let target = guard.open(51, Look::State).unwrap().unwrap().process;
        let sent = guard.signal(&target, 10, Scope::Group, Authority::Sigd);
        assert_eq!(sent, Err(KillError::Moving));
        assert!(table.sent().is_empty(), "{:?}", table.sent());
    }

    /// A group with its leader is signalled as one, through the leader; a
    /// group whose leader has gone, member by member, each through its own
    /// handle (no id is trusted to name the group by the send).
    #[test]
    fn a_group_goes_through_its_leader_or_member_by_member() {
        let table = groups();
        let guard = GuardedTable::for_pid(table.clone(), SIGD);
        let member = guard.open(51, Look::State).unwrap().unwrap().process;
        let sent = guard.signal(&member, 10, Scope::Group, Authority::Sigd);
        assert_eq!(sent, Ok(vec![50, 51]));
        assert_eq!(table.sent(), [usr1(50, true)]);
        let orphan = guard.open(62, Look::State).unwrap().unwrap().process;
        let mut sent = guard
            .signal(&orphan, 10, Scope::Group, Authority::Sigd)
            .unwrap();
        sent.sort();
        assert_eq!(sent, [61, 62]);
        let mut after: Vec<_> = table.sent()[1..].to_vec();
        after.sort_by_key(|s| s.pid);
        assert_eq!(after, [usr1(61, false), usr1(62, false)]);
    }

    /// A group whose leader has gone is signalled member by member, and a
    /// member that started after sigd looked at the group (a later process
    /// with a member's pid) is left out; a target that did is not found in
    /// its group. (The simulated table starts pid `n` at tick 1000 + `n`.)
    #[test]
    fn a_member_younger_than_the_look_is_left_out() {
        let table = groups();
        let looked = Looked {
            table: table.clone(),
            hidden: 0,
            now: 1061,
        };
        let guard = GuardedTable::for_pid(looked, SIGD);
        let older = guard.open(61, Look::State).unwrap().unwrap().process;
        let sent = guard.signal(&older, 10, Scope::Group, Authority::Sigd);
        assert_eq!(sent, Ok(vec![61]));
        assert_eq!(table.sent(), [usr1(61, false)]);
        let younger = guard.open(62, Look::State).unwrap().unwrap().process;
        let sent = guard.signal(&younger, 10, Scope::Group, Authority::Sigd);
        assert_eq!(sent, Err(KillError::Moving));
    }
}
