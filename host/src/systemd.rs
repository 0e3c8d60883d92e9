//! Talking to systemd (or anything speaking its protocols), without
//! libsystemd: [`Notifier`] sends `sd_notify` messages (readiness,
//! reloads, stopping, status, watchdog pings) as datagrams to
//! `$NOTIFY_SOCKET`; [`listen_fds`] takes the sockets a socket unit (or
//! `systemd-socket-activate`) handed in (`$LISTEN_PID`, `$LISTEN_FDS`,
//! `$LISTEN_FDNAMES`). Without those variables both do nothing.

use crate::decision::Described;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::warn;

/// Where sd_notify messages go, if anywhere: the service manager's socket.
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET` (a path, or `@name` for an abstract
    /// socket); one that sends nothing if it is unset or unusable.
    pub fn from_env() -> Notifier {
        let Some(name) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier { socket: None };
        };
        let address = match name.as_encoded_bytes() {
            [b'@', abstract_name @ ..] => SocketAddr::from_abstract_name(abstract_name),
            [b'/', ..] => SocketAddr::from_pathname(&name),
            _ => Err(std::io::Error::other("neither /PATH nor @NAME")),
        };
        let socket = address.and_then(|address| {
            let socket = UnixDatagram::unbound()?;
            // A service manager that does not read must never hold sigd up.
            socket.set_nonblocking(true)?;
            Ok((socket, address))
        });
        match socket {
            Ok(socket) => Notifier {
                socket: Some(socket),
            },
            Err(error) => {
                warn!(%error, socket = ?name, "NOTIFY_SOCKET unusable; not notifying");
                Notifier { socket: None }
            }
        }
    }

    /// Send one message (`KEY=value` lines); a failure is logged, never fatal.
    fn send(&self, message: &str) {
        let Some((socket, address)) = &self.socket else {
            return;
        };
        if let Err(error) = socket.send_to_addr(message.as_bytes(), address) {
            warn!(%error, message, "cannot notify the service manager");
        }
    }

    /// `READY=1`: the policy is loaded and every listener is bound (or
    /// again, after a reload); with the status naming the policy, and
    /// what of the reload `failed`, if anything did (then pointing to the
    /// log for why).
    pub fn ready(&self, policy: &Described, failed: &[&str]) {
        self.send(&format!("READY=1\n{}", status(policy, failed)));
    }

    /// `RELOADING=1`, with the monotonic clock's time as systemd requires.
    pub fn reloading(&self) {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|now| now.tv_sec() as u64 * 1_000_000 + now.tv_nsec() as u64 / 1_000)
            .unwrap_or_default();
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={now}\nSTATUS=reloading the policy"
        ));
    }

    /// `STOPPING=1`: sigd accepts no more connections and drains.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=draining");
    }

    /// Ping the watchdog every half of `$WATCHDOG_USEC`, forever, if it is
    /// set for sigd (`$WATCHDOG_PID`, if set, is sigd's pid); else return.
    pub async fn watchdog(&self) {
        let Some(every) = watchdog_interval() else {
            return;
        };
        let mut ticks = tokio::time::interval(every / 2);
        // After a pause (the machine frozen, say) one ping says it all:
        // the missed ones are not sent in a burst.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.send("WATCHDOG=1");
        }
    }
}

/// The most `STATUS=` says: systemd ignores a whole message longer than
/// 4096 bytes (its `NOTIFY_BUFFER_MAX`), `READY=1` with it.
const MAX_STATUS_BYTES: usize = 2048;

/// What `STATUS=` says: the active policy, then what `failed`; one line,
/// and bounded.
fn status(policy: &Described, failed: &[&str]) -> String {
    let mut status = format!(
        "serving; policy sha256 {} ({})",
        policy.sha256, policy.source
    );
    for failure in failed {
        status.push_str("; ");
        status.push_str(failure);
    }
    if !failed.is_empty() {
        status.push_str(" (sigd's log says why)");
    }
    format!(
        "STATUS={}",
        crate::logs::contained_to(&status, MAX_STATUS_BYTES)
    )
}

/// The watchdog's limit, if the service manager set one for this process.
fn watchdog_interval() -> Option<Duration> {
    if !for_me("WATCHDOG_PID").unwrap_or(true) {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Whether the pid in the variable `name` is sigd's; `None` if unset.
fn for_me(name: &str) -> Option<bool> {
    let pid = std::env::var(name).ok()?;
    Some(pid.parse::<u32>().ok() == Some(std::process::id()))
}

/// The first descriptor a service manager passes (`SD_LISTEN_FDS_START`).
const FIRST_FD: i32 = 3;

/// Whether sigd was started with sockets handed in for it.
pub fn activated() -> bool {
    for_me("LISTEN_PID") == Some(true)
}

/// The sockets handed in (descriptors 3, 4, ...), with their names from
/// `$LISTEN_FDNAMES` (`""` where none is given); none unless `$LISTEN_PID`
/// is sigd's, and none after the first call (they are the first call's to
/// close). Each is made close-on-exec.
pub fn listen_fds() -> Vec<(OwnedFd, String)> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if !activated() || TAKEN.swap(true, Ordering::SeqCst) {
        return Vec::new();
    }
    let count: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    let mut names = names.split(':').map(str::to_string);
    (FIRST_FD..FIRST_FD.saturating_add(count.max(0)))
        .map(|fd| {
            // SAFETY: the service manager passed descriptors 3..3+LISTEN_FDS
            // to this process (LISTEN_PID says so), open; nothing in sigd
            // opened or owns them, and TAKEN lets this run once.
            let socket = unsafe { OwnedFd::from_raw_fd(fd) };
            let _ = nix::fcntl::fcntl(
                &socket,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            );
            (socket, names.next().unwrap_or_default())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reload::FailMode;

    /// A status is one line, whatever its parts say, and the whole
    /// `READY=1` message stays under the 4096 bytes past which systemd
    /// ignores it.
    #[test]
    fn a_status_is_one_line_systemd_reads() {
        let policy = Described {
            sha256: "ab".repeat(32),
            source: format!("policy file /x\nREADY=1\n{}", "y".repeat(20_000)),
            settings_sha256: None,
            loaded_at: std::time::SystemTime::UNIX_EPOCH,
            last_reload: None,
            fail_mode: FailMode::Closed,
        };
        let status = status(&policy, &["policy not reloaded (the old one serves)"]);
        assert_eq!(status.lines().count(), 1, "{status}");
        assert!(status.contains(r"/x\nREADY=1\ny"), "{status}");
        assert!(format!("READY=1\n{status}").len() < 4096);
        assert!(status.ends_with("bytes more)"), "{status}");
    }
}
