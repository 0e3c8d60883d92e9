//! pidfds: file descriptors that name one process, so a signal sent through
//! one can never reach another process that later got the same pid. nix has
//! no pidfd calls, so this module makes the syscalls itself, holds the plain
//! `kill(2)` for when no pidfd can be had, and registers a pidfd with tokio to
//! wait for an exit: all the unsafe code that touches processes is here.

use nix::errno::Errno;
use nix::libc;
use std::future::Future;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use tokio::io::unix::AsyncFd;

/// `pidfd_send_signal` flag: signal the process group whose id is the
/// pidfd's pid (Linux 6.9).
const PIDFD_SIGNAL_PROCESS_GROUP: libc::c_uint = 4;
/// `PIDFD_GET_INFO` (Linux 6.13): `_IOWR(0xFF, 11, struct pidfd_info)`, 64 bytes.
const PIDFD_GET_INFO: libc::c_ulong = 0xC040_FF0B;
/// `pidfd_info.mask` bit: the credentials are filled in (Linux 6.13, always
/// while the process is there).
const PIDFD_INFO_CREDS: u64 = 1 << 1;
/// `pidfd_info.mask` bit: the exit code is filled in (Linux 6.15).
const PIDFD_INFO_EXIT: u64 = 1 << 3;

/// `struct pidfd_info`, the 64-byte first version.
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
}

/// Where a process held by a pidfd is in its life ([`Pidfd::liveness`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Some thread of it still runs.
    Running,
    /// Every thread has exited; its parent has not reaped it (a zombie).
    Exited,
    /// Reaped: its pid may already be another process's.
    Reaped,
}

/// A process's real, effective and saved user and group ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    pub uids: [u32; 3],
    pub gids: [u32; 3],
}

/// An open pidfd.
#[derive(Debug)]
pub struct Pidfd(OwnedFd);

impl Pidfd {
    /// `pidfd_open(pid, 0)`: ESRCH if there is no such process, EINVAL if
    /// `pid` is a thread that is not a thread-group leader, ENOSYS on a
    /// kernel older than 5.3.
    pub fn open(pid: i32) -> Result<Pidfd, Errno> {
        // SAFETY: pidfd_open takes two integers; a non-negative result is a
        // new file descriptor that we own from here on.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = Errno::result(fd)? as RawFd;
        // SAFETY: `fd` was just returned by the kernel and is not owned elsewhere.
        Ok(Pidfd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Send `signal` to the process.
    pub fn send(&self, signal: i32) -> Result<(), Errno> {
        self.send_with(signal, 0)
    }

    /// Send `signal` to the process group whose id is this pidfd's pid:
    /// the group the process leads, or led before it moved to another
    /// (the kernel goes by the pid the pidfd holds, never by a number that
    /// may have been reused). Linux 6.9; older kernels answer EINVAL.
    pub fn send_to_group(&self, signal: i32) -> Result<(), Errno> {
        self.send_with(signal, PIDFD_SIGNAL_PROCESS_GROUP)
    }

    fn send_with(&self, signal: i32, flags: libc::c_uint) -> Result<(), Errno> {
        // SAFETY: pidfd_send_signal reads no memory of ours (info is NULL).
        let sent = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                flags,
            )
        };
        Errno::result(sent).map(drop)
    }

    /// Whether the process has not been reaped yet (signal 0 through the
    /// pidfd; EPERM means it is there, only not ours to signal).
    pub fn is_alive(&self) -> bool {
        matches!(self.send(0), Ok(()) | Err(Errno::EPERM))
    }

    /// Whether the process runs, has exited (a zombie its parent has not
    /// reaped yet) or is reaped, from a poll of the pidfd: it polls
    /// readable once every thread of the process has exited, so a leader
    /// that exited while its other threads run has not (as `/proc` shows
    /// it: a zombie leader of live threads), and hung up once the process
    /// is reaped. A poll a signal handler interrupts (EINTR) is made again;
    /// `Err` only if poll fails otherwise (out of memory).
    pub fn liveness(&self) -> Result<Liveness, Errno> {
        use nix::poll::{PollFlags, PollTimeout};
        let ready = crate::poll::ready(self.0.as_fd(), PollFlags::POLLIN, PollTimeout::ZERO)?;
        Ok(if ready.contains(PollFlags::POLLHUP) {
            Liveness::Reaped
        } else if ready.contains(PollFlags::POLLIN) {
            Liveness::Exited
        } else {
            Liveness::Running
        })
    }

    /// How the process ended, once it has exited and been reaped, as a
    /// wait status (`None` before that, or on kernels before 6.15).
    pub fn exit_status(&self) -> Option<i32> {
        let info = self.info(PIDFD_INFO_EXIT).ok()?;
        (info.mask & PIDFD_INFO_EXIT != 0).then_some(info.exit_code)
    }

    /// The process's credentials, from the process itself (no `/proc` file
    /// read by a pid that may have been reused), given only while it is
    /// unreaped. ESRCH once it is reaped (and, on Linux 6.13 to 6.17, for a
    /// process whose parent is outside our PID namespace); ENOTTY (EINVAL
    /// on 6.11 and 6.12) on kernels before 6.13, which have no
    /// `PIDFD_GET_INFO`.
    pub fn credentials(&self) -> Result<Credentials, Errno> {
        let info = self.info(PIDFD_INFO_CREDS)?;
        match info.mask & PIDFD_INFO_CREDS {
            0 => Err(Errno::ENOTTY),
            _ => Ok(Credentials {
                uids: [info.ruid, info.euid, info.suid],
                gids: [info.rgid, info.egid, info.sgid],
            }),
        }
    }

    /// `PIDFD_GET_INFO`, asking for `mask`.
    fn info(&self, mask: u64) -> Result<PidfdInfo, Errno> {
        let mut info = PidfdInfo {
            mask,
            ..PidfdInfo::default()
        };
        // SAFETY: the kernel writes at most size_of::<PidfdInfo>() bytes
        // (encoded in the request number) into `info`, which we own.
        let got = unsafe { libc::ioctl(self.0.as_raw_fd(), PIDFD_GET_INFO, &mut info) };
        Errno::result(got).map(|_| info)
    }

    /// A future that completes once the process has exited (a pidfd polls
    /// readable then). It watches a duplicate of this descriptor: each waiter
    /// registers its own with the event loop.
    pub fn exited(&self) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
        let watched = Pidfd(self.0.try_clone()?);
        // SAFETY: the AsyncFd owns this duplicate, and nothing else closes or
        // replaces it while it is registered.
        let readable = unsafe { AsyncFd::register(watched) }?;
        Ok(async move {
            let _ = readable.readable().await;
        })
    }
}

impl From<OwnedFd> for Pidfd {
    /// A pidfd the kernel handed over otherwise (`SO_PEERPIDFD`).
    fn from(fd: OwnedFd) -> Pidfd {
        Pidfd(fd)
    }
}

/// A pidfd polls readable once its process has exited.
impl AsRawFd for Pidfd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// `kill(pid, signal)`: by pid, or by process group for a negative `pid`.
/// For when no pidfd can be had (see `linux.rs`): a caller checks a
/// process's start time first, and signals a group by id only while its
/// leader is unreaped (on kernels before 6.9), so the id is still its own.
pub fn kill(pid: i32, signal: i32) -> Result<(), Errno> {
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    Errno::result(unsafe { libc::kill(pid, signal) }).map(drop)
}
