//! Processes as the host sees them: the facts sigd knows of one
//! ([`ProcessInfo`], [`RunState`], [`ExitStatus`]), why a signal was not
//! delivered ([`KillError`]), and the seam between the host and a process
//! table ([`ProcessTable`], [`Process`], [`Listed`]).
//!
//! - [`linux`]: the real table, `/proc` and pidfds; where signals are sent.
//! - [`pidfd`]: the pidfd syscalls, all the unsafe code that touches processes.
//! - [`NoProcesses`]: a table with nothing in it, for calls that must reach none.
//!
//! Whatever table is used, a [`GuardedTable`](crate::guard::GuardedTable)
//! stands between it and any policy.

pub mod linux;
pub mod pidfd;
mod stat;

pub use linux::System;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The scheduler state of a process (`/proc/<pid>/stat`, field 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Sleeping,
    DiskSleep,
    Stopped,
    Idle,
    Zombie,
    Dead,
}

impl RunState {
    /// The state for a `/proc/<pid>/stat` state letter, `None` if unknown.
    pub fn from_letter(letter: char) -> Option<RunState> {
        Some(match letter {
            'R' => RunState::Running,
            'S' => RunState::Sleeping,
            'D' => RunState::DiskSleep,
            'T' | 't' => RunState::Stopped,
            'I' => RunState::Idle,
            // Waking, parked and paging: asleep, as far as a signal is concerned.
            'W' | 'K' | 'P' => RunState::Sleeping,
            'Z' => RunState::Zombie,
            'X' | 'x' => RunState::Dead,
            _ => return None,
        })
    }

    /// Whether the process has exited: a zombie or a dead process can take
    /// no signal. The one place this rule is written on the host's side.
    pub fn has_exited(self) -> bool {
        matches!(self, RunState::Zombie | RunState::Dead)
    }
}

/// The user (or group) ids of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
}

impl Ids {
    /// All three the same.
    pub fn all(id: u32) -> Ids {
        Ids {
            real: id,
            effective: id,
            saved: id,
        }
    }

    /// Whether kill(2) lets a sender whose real and effective uid is `uid`
    /// signal a process with these uids: root may, and so may its real or
    /// saved uid. The one place this rule is written on the host's side.
    pub fn may_be_signalled_by(&self, uid: u32) -> bool {
        self.may_be_signalled_by_sender(uid, linux::may_be_unnamed(uid))
    }

    /// [`may_be_signalled_by`](Ids::may_be_signalled_by), for a sender whose
    /// uid may (`unnamed`) stand for a uid sigd's user namespace cannot
    /// name: that sender may be anyone, and may signal nothing.
    fn may_be_signalled_by_sender(&self, uid: u32, unnamed: bool) -> bool {
        !unnamed && (uid == 0 || uid == self.real || uid == self.saved)
    }
}

/// What sigd knows of one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// User ids: real, effective, saved.
    pub uids: Ids,
    /// Group ids: real, effective, saved.
    pub gids: Ids,
    pub state: RunState,
    /// Start time in clock ticks after boot.
    pub start_time: u64,
    /// `comm`, decoded lossily as UTF-8.
    pub command: String,
    /// The wait status a zombie exited with (`/proc/<pid>/stat` field 52).
    pub exit_code: Option<i32>,
}

/// Where one process sits in the table, as a walk of the whole table lists
/// it: what the tree scope needs to find whom it reaches. No ids: on
/// Linux they would cost a second file (`status`) for every process of the
/// machine; a scope reads them only for the processes it reaches, and only
/// when a signal goes on behalf of a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    /// Start time in clock ticks after boot.
    pub start_time: u64,
}

impl From<&ProcessInfo> for Listed {
    fn from(info: &ProcessInfo) -> Listed {
        Listed {
            pid: info.pid,
            ppid: info.ppid,
            pgid: info.pgid,
            start_time: info.start_time,
        }
    }
}

/// Why a signal was not delivered. In a decision record it is written as
/// its [`name`](KillError::name) (`not-found`, `no-room:24`: the errno's number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum KillError {
    /// No process has this pid.
    #[error("no such process")]
    NotFound,
    /// Not a signal this system delivers.
    #[error("not a deliverable signal")]
    InvalidSignal,
    /// The target is one sigd never signals (see [`crate::guard`]).
    #[error("protected target")]
    Protected,
    /// The kernel refused (EPERM).
    #[error("permission denied")]
    PermissionDenied,
    /// Sent on behalf of a uid that kill(2) would not let signal a process
    /// of the scope; nothing was signalled.
    #[error("not permitted for the caller")]
    NotPermitted,
    /// The host had no room (file descriptors, memory) to reach every
    /// process of the scope; nothing was signalled.
    #[error(transparent)]
    NoRoom(#[from] NoRoom),
    /// A group-scope target changed process group while sigd looked
    /// at its group, or left the group found before the signal was sent;
    /// nothing was signalled (ask again).
    #[error("the target changed process group")]
    Moving,
    /// An escalation refused: as many are pending as sigd keeps.
    #[error(transparent)]
    EscalationsFull(#[from] crate::escalations::Full),
    /// Any other failure of the kill syscall.
    #[error("kill failed: {0}")]
    Failed(Errno),
}

/// The host ran out of room (EMFILE, ENFILE, ENOMEM) opening a process or
/// reading its facts: an answer about sigd, never about the process. In a
/// decision record, the errno's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(into = "i32", from = "i32")]
#[error("no room to open a process ({0})")]
pub struct NoRoom(pub Errno);

impl From<NoRoom> for i32 {
    fn from(NoRoom(errno): NoRoom) -> i32 {
        errno as i32
    }
}

impl From<i32> for NoRoom {
    fn from(errno: i32) -> NoRoom {
        NoRoom(Errno::from_raw(errno))
    }
}

impl KillError {
    /// How a decision record names it: `not-found`, `invalid-signal`,
    /// `protected`, `permission-denied`, `not-permitted`, `no-room:ERRNO`,
    /// `moving`, `escalations-full:MAX`, `escalations-share:MAX` (the
    /// caller's share was full), `failed:ERRNO` (errnos by number).
    pub fn name(&self) -> String {
        match self {
            KillError::NotFound => "not-found".into(),
            KillError::InvalidSignal => "invalid-signal".into(),
            KillError::Protected => "protected".into(),
            KillError::PermissionDenied => "permission-denied".into(),
            KillError::NotPermitted => "not-permitted".into(),
            KillError::NoRoom(NoRoom(errno)) => format!("no-room:{}", *errno as i32),
            KillError::Moving => "moving".into(),
            KillError::EscalationsFull(full) if full.share => {
                format!("escalations-share:{}", full.max)
            }
            KillError::EscalationsFull(full) => format!("escalations-full:{}", full.max),
            KillError::Failed(errno) => format!("failed:{}", *errno as i32),
        }
    }
}

impl From<KillError> for String {
    fn from(error: KillError) -> String {
        error.name()
    }
}

impl TryFrom<String> for KillError {
    type Error = String;

    /// The error a [`KillError::name`] names.
    fn try_from(name: String) -> Result<KillError, String> {
        let (kind, number) = match name.split_once(':') {
            Some((kind, number)) => (kind, number.parse::<i64>().ok()),
            None => (name.as_str(), None),
        };
        let errno = || {
            number
                .and_then(|n| i32::try_from(n).ok())
                .map(Errno::from_raw)
        };
        let error = match (kind, number) {
            ("not-found", None) => KillError::NotFound,
            ("invalid-signal", None) => KillError::InvalidSignal,
            ("protected", None) => KillError::Protected,
            ("permission-denied", None) => KillError::PermissionDenied,
            ("not-permitted", None) => KillError::NotPermitted,
            ("no-room", Some(_)) => KillError::NoRoom(NoRoom(errno().ok_or("bad errno")?)),
            ("moving", None) => KillError::Moving,
            ("failed", Some(_)) => KillError::Failed(errno().ok_or("bad errno")?),
            (kind @ ("escalations-full" | "escalations-share"), Some(max)) => {
                let max = usize::try_from(max).map_err(|_| "bad count")?;
                let share = kind == "escalations-share";
                KillError::EscalationsFull(crate::escalations::Full { max, share })
            }
            _ => return Err(format!("{name:?} is not a kill error")),
        };
        Ok(error)
    }
}

/// How a process ended (`{"code": 0}`, `{"signal": 9}`, `"unknown"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// This signal ended it.
    Signal(i32),
    /// It ended; the kernel no longer says how.
    Unknown,
}

impl ExitStatus {
    /// Decode a wait(2) status.
    pub fn from_wait_status(status: i32) -> ExitStatus {
        if status & 0x7f == 0 {
            ExitStatus::Code((status >> 8) & 0xff)
        } else {
            ExitStatus::Signal(status & 0x7f)
        }
    }
}

/// A future that completes once a process has exited.
pub type Exited = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Looks processes up and opens handles on them.
pub trait ProcessTable: Send + Sync + 'static {
    /// The process with this pid now, or `None` if there is none (or `pid`
    /// names a thread that is not its group's leader). No handle: use it for
    /// facts only, never to decide what to signal.
    fn lookup(&self, pid: i32) -> Option<ProcessInfo>;
    /// The parent now of sigd itself, whose pid in this table is `sigd`:
    /// [`lookup`]'s `ppid`, which the real table learns with one syscall
    /// (getppid(2)), cheap enough to ask on every request.
    ///
    /// [`lookup`]: ProcessTable::lookup
    fn parent_of_sigd(&self, sigd: i32) -> Option<i32> {
        self.lookup(sigd).map(|info| info.ppid)
    }
    /// Every process now, for the tree scope: where each sits, no more.
    /// Facts only: a scope opens each process it reaches before it checks
    /// or signals it.
    fn snapshot(&self) -> Vec<Listed>;
    /// The pids in process group `pgid` now, in order, for the group scope
    /// (from [`snapshot`] unless a table knows a cheaper way). `Err` when
    /// the table cannot tell them all: a group is checked whole or not
    /// signalled.
    ///
    /// [`snapshot`]: ProcessTable::snapshot
    fn group(&self, pgid: i32) -> Result<Vec<i32>, KillError> {
        let processes = self.snapshot().into_iter();
        let mut pids: Vec<i32> = (processes.filter(|p| p.pgid == pgid))
            .map(|p| p.pid)
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }
    /// The start time (clock ticks after boot) a process starting now
    /// would have: one started later than a look at the table is no
    /// process that look saw.
    fn now(&self) -> u64;
    /// A handle that names the process `pid` and no other from now on,
    /// with what the same look at it found (`look` says how much);
    /// `Ok(None)` if there is no such process, `Err` if the host had no room
    /// to open one (which says nothing about the process).
    fn open(&self, pid: i32, look: Look) -> Result<Option<Opened>, NoRoom>;
}

/// How much opening a process learns of it, in the same look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Only whether it has exited (on Linux, from its pidfd: no `/proc` file).
    Alive,
    /// Its scheduler state (on Linux, `/proc/<pid>/stat` alone).
    State,
    /// All its facts, its ids included (`stat` and `status`).
    Info,
}

/// A process just opened, and what the look that opened it found.
pub struct Opened {
    pub process: Arc<dyn Process>,
    pub seen: Seen,
}

/// What a look at a process found then: what its [`Look`] asked for, or
/// more (a table that reads all its facts anyway gives them all).
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// Whether it had not exited ([`Look::Alive`]).
    Alive(bool),
    /// Its scheduler state ([`Look::State`]).
    State(RunState),
    /// All its facts ([`Look::Info`]).
    Info(ProcessInfo),
}

impl Seen {
    /// Whether it had not exited (false for a zombie).
    pub fn alive(&self) -> bool {
        match self {
            Seen::Alive(alive) => *alive,
            Seen::State(state) => !state.has_exited(),
            Seen::Info(info) => !info.state.has_exited(),
        }
    }

    /// Its scheduler state, unless the look learned less.
    pub fn state(&self) -> Option<RunState> {
        match self {
            Seen::Alive(_) => None,
            Seen::State(state) => Some(*state),
            Seen::Info(info) => Some(info.state),
        }
    }

    /// Its facts, if the look read them all.
    pub fn into_info(self) -> Option<ProcessInfo> {
        match self {
            Seen::Info(info) => Some(info),
            Seen::Alive(_) | Seen::State(_) => None,
        }
    }
}

/// One process, held so that nothing done through it reaches another
/// process that later gets the same pid.
pub trait Process: Send + Sync + 'static {
    /// Its pid.
    fn pid(&self) -> i32;
    /// When it started (clock ticks after boot), as read when opened;
    /// `None` if the look that opened it read no start time
    /// ([`Look::Alive`]): [`info`] has it.
    ///
    /// [`info`]: Process::info
    fn start_time(&self) -> Option<u64>;
    /// Its facts now: `None` once it is gone entirely (exited and reaped).
    fn info(&self) -> Option<ProcessInfo>;
    /// Its scheduler state now, `None` once it is gone entirely: [`info`]'s
    /// state, which a table may learn more cheaply.
    ///
    /// [`info`]: Process::info
    fn state(&self) -> Option<RunState> {
        self.info().map(|info| info.state)
    }
    /// Its user ids now, `None` once it is gone entirely, `Err` if the host
    /// had no room to read them (which says nothing about the process):
    /// [`info`]'s uids, which a table may learn more cheaply. What kill(2)'s
    /// rule asks of a process signalled on behalf of a caller.
    ///
    /// [`info`]: Process::info
    fn uids(&self) -> Result<Option<Ids>, NoRoom> {
        Ok(self.info().map(|info| info.uids))
    }
    /// Whether it still holds its pid: it has not been reaped (a zombie
    /// has not), so no other process can have that pid. Whether [`info`]
    /// has its facts, unless the table can tell without a read (a read
    /// that found no room would say it is gone).
    ///
    /// [`info`]: Process::info
    fn holds_its_pid(&self) -> bool {
        self.info().is_some()
    }
    /// Send `signal` to it.
    fn send(&self, signal: i32) -> Result<(), KillError>;
    /// Send `signal` to the process group whose id is its pid, as one: the
    /// group it leads (or led, if it has moved to another since).
    fn send_to_group(&self, signal: i32) -> Result<(), KillError>;
    /// Completes once it has exited.
    fn exited(&self) -> Exited;
    /// How it ended: `None` while it runs.
    fn exit_status(&self) -> Option<ExitStatus>;
}

impl fmt::Display for ProcessInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {:?})", self.pid, self.command, self.state)
    }
}

/// A process table with nothing in it: what a call that must reach no
/// process (the smoke call before a policy is taken on) runs against.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProcesses;

impl ProcessTable for NoProcesses {
    fn lookup(&self, _pid: i32) -> Option<ProcessInfo> {
        None
    }

    fn snapshot(&self) -> Vec<Listed> {
        Vec::new()
    }

    fn now(&self) -> u64 {
        0
    }

    fn open(&self, _pid: i32, _look: Look) -> Result<Option<Opened>, NoRoom> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process's effective `CAP_KILL` is read as it is: the tests' own
    /// (root's, holding it), and not that of root's process started
    /// without it (`setpriv --bounding-set=-kill`); pid 0 is no process.
    #[test]
    fn cap_kill_is_read_from_the_effective_set() {
        let mut without = std::process::Command::new("setpriv")
            .args(["--bounding-set=-kill", "sleep", "30"])
            .spawn()
            .unwrap();
        let pid = without.id() as i32;
        let comm = format!("/proc/{pid}/comm");
        while std::fs::read_to_string(&comm).unwrap() != "sleep\n" {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let held = linux::holds_cap_kill(pid);
        without.kill().unwrap();
        without.wait().unwrap();
        assert!(!held, "root's process started without CAP_KILL holds it");
        assert!(
            linux::holds_cap_kill(std::process::id() as i32),
            "the tests run as root"
        );
        assert!(!linux::holds_cap_kill(0));
    }

    /// kill(2)'s rule: root, or the process's real or saved uid (not its
    /// effective one); a sender whose uid may stand for one the namespace
    /// cannot name matches nothing, not even a process shown with its uid,
    /// and not as root either (an overflow uid set to 0).
    #[test]
    fn who_may_signal_whom() {
        let ids = Ids {
            real: 1000,
            effective: 1001,
            saved: 1002,
        };
        for (uid, may) in [
            (0, true),
            (1000, true),
            (1002, true),
            (1001, false),
            (7, false),
        ] {
            assert_eq!(ids.may_be_signalled_by_sender(uid, false), may, "{uid}");
            assert!(!ids.may_be_signalled_by_sender(uid, true), "{uid}");
        }
        let nobodys = Ids::all(65534);
        assert!(nobodys.may_be_signalled_by_sender(65534, false));
        assert!(!nobodys.may_be_signalled_by_sender(65534, true));
    }
}
