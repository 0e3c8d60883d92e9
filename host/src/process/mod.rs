//! The process table a policy sees: facts read from `/proc`, and
//! [`System::kill`], the one place sigd actually sends a signal.
//!
//! [`ProcessTable`] is the seam: the daemon uses [`System`]; tests and policy
//! authors put a fake table behind it. Either way it is wrapped in a
//! [`Guard`](crate::guard::Guard) before a policy can reach it.

use nix::errno::Errno;
use std::fmt;

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
    /// `comm`, lossily decoded.
    pub command: String,
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

/// Looks processes up and signals them.
pub trait ProcessTable: Send + Sync + 'static {
    /// The process with this pid, or `None` if there is none (or `pid` names
    /// a thread that is not its group's leader).
    fn lookup(&self, pid: i32) -> Option<ProcessInfo>;
    /// Send `signal` to the single process `pid`.
    fn kill(&self, pid: i32, signal: i32) -> Result<(), KillError>;
}

/// The real process table of this machine (or of sigd's PID namespace).
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl ProcessTable for System {
    fn lookup(&self, pid: i32) -> Option<ProcessInfo> {
        let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let (tgid, uid) = parse_status(&status)?;
        if tgid != pid {
            return None; // a thread, not a process
        }
        let mut info = parse_stat(&stat)?;
        info.uid = uid;
        Some(info)
    }

    fn kill(&self, pid: i32, signal: i32) -> Result<(), KillError> {
        // nix's `Signal` has no realtime signals, so the number goes to
        // kill(2) as is; nix turns the result into an `Errno`.
        // SAFETY: kill(2) takes two integers and touches no memory of ours.
        Errno::result(unsafe { nix::libc::kill(pid, signal) })
            .map(drop)
            .map_err(|errno| match errno {
                Errno::ESRCH => KillError::NotFound,
                Errno::EPERM => KillError::PermissionDenied,
                Errno::EINVAL => KillError::InvalidSignal,
                other => KillError::Failed(other),
            })
    }
}

/// Parse `/proc/<pid>/stat`. The command name sits in parentheses and may
/// itself hold spaces and `)`, so the fields after it are found from the
/// *last* `)`. `uid` is not in this file and is left 0.
pub fn parse_stat(stat: &[u8]) -> Option<ProcessInfo> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let pid = std::str::from_utf8(stat.get(..open)?)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let command = String::from_utf8_lossy(stat.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    // Fields from 3 (state) on; field N is rest[N - 3].
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    let mut state = field(3)?.chars();
    let state = RunState::from_letter(state.next()?)?;
    Some(ProcessInfo {
        pid,
        ppid: field(4)?.parse().ok()?,
        pgid: field(5)?.parse().ok()?,
        sid: field(6)?.parse().ok()?,
        uid: 0,
        state,
        start_time: field(22)?.parse().ok()?,
        command,
    })
}

/// `(Tgid, real Uid)` from `/proc/<pid>/status`.
fn parse_status(status: &str) -> Option<(i32, u32)> {
    let value = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|v| v.split_ascii_whitespace().next())
    };
    Some((value("Tgid:")?.parse().ok()?, value("Uid:")?.parse().ok()?))
}

impl fmt::Display for ProcessInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {:?})", self.pid, self.command, self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command name with spaces and `)` does not shift the fields after it.
    #[test]
    fn stat_with_tricky_command_name() {
        let stat = b"4242 (my ) (odd) name) S 1 4242 4200 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615";
        let info = parse_stat(stat).unwrap();
        assert_eq!(info.pid, 4242);
        assert_eq!(info.command, "my ) (odd) name");
        assert_eq!(info.state, RunState::Sleeping);
        assert_eq!((info.ppid, info.pgid, info.sid), (1, 4242, 4200));
        assert_eq!(info.start_time, 987654);
    }

    /// Truncated or garbled stat lines are rejected, not misread.
    #[test]
    fn stat_garbage() {
        for stat in [
            &b""[..],
            b"12",
            b"12 (x",
            b"12 (x) Q 1 2 3",
            b"12 (x) S 1 2",
        ] {
            assert_eq!(
                parse_stat(stat),
                None,
                "{:?}",
                String::from_utf8_lossy(stat)
            );
        }
    }

    /// sigd finds itself in /proc, running, with its real uid.
    #[test]
    fn lookup_self() {
        let me = std::process::id() as i32;
        let info = System.lookup(me).unwrap();
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
        assert_eq!(System.lookup(tid), None);
        thread.thread().unpark();
        thread.join().unwrap();
    }
}
