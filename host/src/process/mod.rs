//! The process table a policy sees: facts read from `/proc`, and handles
//! that name one process each (pidfds), through which sigd sends signals.
//! [`SystemProcess::send`] is the one place a signal is actually sent.
//!
//! [`ProcessTable`] and [`Process`] are the seam: the daemon uses
//! [`System`]; tests and policy authors put a fake table behind it. Either way
//! a [`Guard`](crate::guard::Guard) stands between it and any policy.

mod stat;

use crate::pidfd::{self, Pidfd};
use nix::errno::Errno;
use stat::{Stat, Status};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::time::Duration;

/// The scheduler state of a process (`/proc/<pid>/stat`, field 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// What sigd knows of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// Real user id.
    pub uid: u32,
    pub state: RunState,
    /// Start time in clock ticks after boot.
    pub start_time: u64,
    /// `comm`, decoded lossily as UTF-8.
    pub command: String,
    /// The wait status a zombie exited with (`/proc/<pid>/stat` field 52).
    pub exit_code: Option<i32>,
}

/// Why a signal was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
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
    /// Any other failure of the kill syscall.
    #[error("kill failed: {0}")]
    Failed(Errno),
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Every process now, for group and tree scopes.
    fn snapshot(&self) -> Vec<ProcessInfo>;
    /// A handle that names the process `pid` and no other from now on.
    fn open(&self, pid: i32) -> Option<Arc<dyn Process>>;
}

/// One process, held so that nothing done through it reaches another
/// process that later gets the same pid.
pub trait Process: Send + Sync + 'static {
    /// Its pid.
    fn pid(&self) -> i32;
    /// When it started (clock ticks after boot), as read when opened.
    fn start_time(&self) -> u64;
    /// Its facts now: `None` once it is gone entirely (exited and reaped).
    fn info(&self) -> Option<ProcessInfo>;
    /// Send `signal` to it, or with `group` to its whole process group.
    fn send(&self, signal: i32, group: bool) -> Result<(), KillError>;
    /// Completes once it has exited.
    fn exited(&self) -> Exited;
    /// How it ended: `None` while it runs.
    fn exit_status(&self) -> Option<ExitStatus>;
}

/// The real process table of this machine (or of sigd's PID namespace).
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl ProcessTable for System {
    fn lookup(&self, pid: i32) -> Option<ProcessInfo> {
        read_process(pid)
    }

    fn snapshot(&self) -> Vec<ProcessInfo> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .filter_map(read_process)
            .collect()
    }

    fn open(&self, pid: i32) -> Option<Arc<dyn Process>> {
        let pidfd = match Pidfd::open(pid) {
            Ok(pidfd) => Some(pidfd),
            // No such process, or a thread id that is not a process.
            Err(Errno::ESRCH | Errno::EINVAL) => return None,
            Err(errno) => {
                static ONCE: Once = Once::new();
                ONCE.call_once(|| {
                    tracing::warn!(%errno, "no pidfds on this kernel: signals go by pid, \
                                   which a reused pid could misdirect")
                });
                None
            }
        };
        // Read the facts after opening, and keep them only if the pidfd's
        // process was still there afterwards: then they are its own.
        let info = read_process(pid)?;
        if pidfd.as_ref().is_some_and(|pidfd| !pidfd.is_alive()) {
            return None;
        }
        Some(Arc::new(SystemProcess {
            pid,
            start_time: info.start_time,
            pidfd: pidfd.map(Arc::new),
        }))
    }
}

/// A process of this machine, held by a pidfd (or, on kernels without
/// pidfds, by pid and start time).
#[derive(Debug)]
pub struct SystemProcess {
    pid: i32,
    /// Its start time when opened: tells it from a later process with its pid.
    start_time: u64,
    pidfd: Option<Arc<Pidfd>>,
}

impl SystemProcess {
    /// Whether `info` describes this process rather than a successor.
    fn is_mine(&self, info: &ProcessInfo) -> bool {
        info.start_time == self.start_time
    }

    /// Signal this process's group. The kernel signals a group through its
    /// leader's pidfd; a group whose leader has gone is signalled by id,
    /// which cannot have been reused while this process, a member, lives.
    fn send_to_group(&self, signal: i32) -> Result<(), Errno> {
        let pgid = self.info().ok_or(Errno::ESRCH)?.pgid;
        let leader = match &self.pidfd {
            Some(own) if pgid == self.pid => Some(own.clone()),
            Some(_) => Pidfd::open(pgid).ok().map(Arc::new).filter(|leader| {
                // Still the leader of that group after opening it.
                read_process(pgid).is_some_and(|p| p.pgid == pgid) && leader.is_alive()
            }),
            None => None,
        };
        match leader.map(|leader| leader.send(signal, true)) {
            Some(Err(Errno::EINVAL)) | None => {
                // No leader, or a kernel older than 6.9 without the group
                // flag (the guard has already checked the signal).
                pidfd::kill(-pgid, signal)
            }
            Some(sent) => sent,
        }
    }
}

impl Process for SystemProcess {
    fn pid(&self) -> i32 {
        self.pid
    }

    fn start_time(&self) -> u64 {
        self.start_time
    }

    fn info(&self) -> Option<ProcessInfo> {
        let info = read_process(self.pid).filter(|info| self.is_mine(info))?;
        match &self.pidfd {
            Some(pidfd) if !pidfd.is_alive() => None,
            _ => Some(info),
        }
    }

    fn send(&self, signal: i32, group: bool) -> Result<(), KillError> {
        let sent = match (&self.pidfd, group) {
            (Some(pidfd), false) => pidfd.send(signal, false),
            (_, true) => self.send_to_group(signal),
            (None, false) => {
                // No pidfd: check the start time, then signal by pid.
                self.info().ok_or(KillError::NotFound)?;
                pidfd::kill(self.pid, signal)
            }
        };
        sent.map_err(|errno| match errno {
            Errno::ESRCH => KillError::NotFound,
            Errno::EPERM => KillError::PermissionDenied,
            Errno::EINVAL => KillError::InvalidSignal,
            other => KillError::Failed(other),
        })
    }

    fn exited(&self) -> Exited {
        let watched = self.pidfd.as_ref().map(|pidfd| pidfd.try_clone());
        let pid = self.pid;
        let start_time = self.start_time;
        Box::pin(async move {
            // SAFETY: the AsyncFd owns this pidfd (a fresh duplicate) and
            // nothing else closes or replaces it while registered.
            if let Some(Ok(pidfd)) = watched
                && let Ok(readable) = unsafe { tokio::io::unix::AsyncFd::register(pidfd) }
            {
                let _ = readable.readable().await;
                return;
            }
            // No pidfd to poll: look every 10 ms.
            while read_process(pid)
                .is_some_and(|info| info.start_time == start_time && info.state != RunState::Zombie)
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        // A zombie still says how it ended in /proc; a reaped process only
        // through its pidfd (Linux 6.15 and later).
        if let Some(info) = read_process(self.pid).filter(|info| self.is_mine(info)) {
            return match info.state {
                RunState::Zombie | RunState::Dead => Some(
                    info.exit_code
                        .map_or(ExitStatus::Unknown, ExitStatus::from_wait_status),
                ),
                _ => None,
            };
        }
        let reaped = self.pidfd.as_ref().and_then(|pidfd| pidfd.exit_status());
        Some(reaped.map_or(ExitStatus::Unknown, ExitStatus::from_wait_status))
    }
}

/// A process's facts from `/proc/<pid>/stat` and `/proc/<pid>/status`, if it
/// is a process (a thread-group leader).
fn read_process(pid: i32) -> Option<ProcessInfo> {
    let stat = Stat::parse(&std::fs::read(format!("/proc/{pid}/stat")).ok()?)?;
    let status = Status::parse(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)?;
    if status.tgid != pid || stat.pid != pid {
        return None; // a thread, not a process
    }
    Some(ProcessInfo {
        pid,
        ppid: stat.ppid,
        pgid: stat.pgid,
        sid: stat.sid,
        uid: status.uid,
        state: RunState::from_letter(stat.state)?,
        start_time: stat.start_time,
        command: stat.command,
        exit_code: stat.exit_code,
    })
}

impl fmt::Display for ProcessInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {:?})", self.pid, self.command, self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sigd finds itself in /proc, running, with its real uid.
    #[test]
    fn lookup_self() {
        let me = std::process::id() as i32;
        let info = System.open(me).unwrap().info().unwrap();
        assert_eq!(info.pid, me);
        assert_eq!(info.uid, nix::unistd::getuid().as_raw());
        assert_eq!(info.pgid, nix::unistd::getpgrp().as_raw());
    }

    /// A thread id is not a process.
    #[test]
    fn thread_is_not_a_process() {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            tx.send(nix::unistd::gettid().as_raw()).unwrap();
            std::thread::park();
        });
        let tid = rx.recv().unwrap();
        assert!(std::path::Path::new(&format!("/proc/{tid}/stat")).exists());
        assert!(System.open(tid).is_none());
        assert_eq!(System.lookup(tid), None);
        thread.thread().unpark();
        thread.join().unwrap();
    }
}
