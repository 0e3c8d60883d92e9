//! `poll(2)` on one descriptor, the one place sigd calls it: a pidfd's
//! liveness ([`crate::process::pidfd`]), a full stderr ([`crate::logs`]).
//! (Waiting for a pidfd's exit goes through tokio's reactor instead.)

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::os::fd::BorrowedFd;

/// What of `events` (and of the errors poll always reports: `POLLHUP`,
/// `POLLERR`, `POLLNVAL`) `fd` has ready, waiting up to `timeout` for one;
/// empty if none came in time. Interrupted by a signal, it polls again
/// (for the whole timeout: sigd polls for ever or not at all).
pub fn ready(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    timeout: PollTimeout,
) -> Result<PollFlags, Errno> {
    let mut polled = [PollFd::new(fd, events)];
    loop {
        match nix::poll::poll(&mut polled, timeout) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
            Ok(_) => return Ok(polled[0].revents().unwrap_or(PollFlags::empty())),
        }
    }
}
