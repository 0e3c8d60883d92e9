//! Least privilege: before `sigd serve` starts any thread it keeps only
//! the capabilities its configuration needs ([`needed`]: `CAP_KILL`, to
//! signal other users' processes, `CAP_SYS_PTRACE` if given, to see how
//! they ended, and what binding its listeners takes),
//! drops every other one from every set it can (effective, permitted,
//! inheritable, ambient, and the bounding set when it holds
//! `CAP_SETPCAP`), and sets `no_new_privs`. Capabilities belong to a
//! thread, and a thread inherits its creator's: done first, on the only
//! thread, it holds for every thread sigd ever has.

use crate::cli::ServeArgs;
use crate::server::Endpoint;
use caps::{CapSet, Capability, CapsHashSet};
use std::fmt;
use tracing::{info, warn};

/// Why the capabilities could not be settled.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("cannot read the {0:?} capability set: {1}")]
    Read(CapSet, caps::errors::CapsError),
    #[error("cannot drop {0} from the bounding set: {1}")]
    Bounding(Capability, caps::errors::CapsError),
    #[error("cannot set the {0:?} capability set: {1}")]
    Set(CapSet, caps::errors::CapsError),
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(nix::Error),
}

/// What sigd holds once [`settle`] has run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// The effective (and permitted) capabilities.
    pub effective: Names,
    /// Capabilities it held and gave up.
    pub dropped: Names,
    /// Whether the bounding set is down to what is kept too (it takes
    /// `CAP_SETPCAP`; without it `no_new_privs` keeps the rest unusable).
    pub bounding_dropped: bool,
}

/// A set of capabilities, shown as `CAP_KILL, CAP_CHOWN` (or `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names(pub Vec<Capability>);

impl fmt::Display for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<String> = self.0.iter().map(Capability::to_string).collect();
        f.write_str(&names.join(", "))
    }
}

impl From<CapsHashSet> for Names {
    fn from(set: CapsHashSet) -> Names {
        let mut caps: Vec<Capability> = set.into_iter().collect();
        caps.sort_by_key(|cap| cap.index());
        Names(caps)
    }
}

/// The capabilities `sigd serve` needs with `args`: `CAP_KILL` to signal
/// processes of other users; `CAP_SYS_PTRACE`, to read how such a process
/// ended while it is a zombie (the kernel shows its exit code only to who
/// may ptrace it: without, sigd answers that it ended, not how), if sigd
/// was given it (root is; sigd.service gives CAP_KILL alone);
/// `CAP_NET_BIND_SERVICE` if it binds a TCP port
/// below 1024 itself; `CAP_CHOWN` if `--socket-group` names a group for its
/// Unix sockets (which sigd's user need not be a member of). The two last
/// are kept for as long as sigd runs: a socket unit (`sigd.socket`) binds
/// for sigd instead and needs neither (sockets handed in replace `--listen`).
pub fn needed(args: &ServeArgs) -> CapsHashSet {
    let mut needed = CapsHashSet::from([Capability::CAP_KILL, Capability::CAP_SYS_PTRACE]);
    if crate::systemd::activated() {
        return needed;
    }
    let low_port = |endpoint: &Endpoint| matches!(endpoint, Endpoint::Tcp(addr) if (1..1024).contains(&addr.port()));
    if args.listen.iter().any(low_port) {
        needed.insert(Capability::CAP_NET_BIND_SERVICE);
    }
    let unix = |endpoint: &Endpoint| matches!(endpoint, Endpoint::Unix(_));
    if args.socket_group.is_some() && args.listen.iter().any(unix) {
        needed.insert(Capability::CAP_CHOWN);
    }
    needed
}

/// Settle the capabilities for `sigd serve` with `args`: what it needs
/// ([`needed`]), or all it was given with `--keep-capabilities`.
pub fn settle_for(args: &ServeArgs) -> Result<Kept, PrivilegeError> {
    match args.keep_capabilities {
        true => settle(None),
        false => settle(Some(&needed(args))),
    }
}

/// Keep `keep` (those of it sigd holds; `None`: all it holds), drop the
/// rest from every set, set `no_new_privs`, and log what was kept. Call it
/// while the calling thread is the only one.
pub fn settle(keep: Option<&CapsHashSet>) -> Result<Kept, PrivilegeError> {
    let read = |set| caps::read(None, set).map_err(|error| PrivilegeError::Read(set, error));
    let permitted = read(CapSet::Permitted)?;
    let kept: CapsHashSet = match keep {
        Some(keep) => permitted.intersection(keep).copied().collect(),
        None => permitted.clone(),
    };
    // The bounding set first: dropping from it takes CAP_SETPCAP, given
    // up below.
    let bounding = read(CapSet::Bounding)?;
    let can_bound = read(CapSet::Effective)?.contains(&Capability::CAP_SETPCAP);
    if keep.is_some() && can_bound {
        for cap in bounding.difference(&kept) {
            caps::drop(None, CapSet::Bounding, *cap)
                .map_err(|error| PrivilegeError::Bounding(*cap, error))?;
        }
    }
    let set = |set, value: &CapsHashSet| {
        caps::set(None, set, value).map_err(|error| PrivilegeError::Set(set, error))
    };
    // sigd starts no program: nothing is to be passed on.
    caps::clear(None, CapSet::Ambient)
        .map_err(|error| PrivilegeError::Set(CapSet::Ambient, error))?;
    set(CapSet::Inheritable, &CapsHashSet::new())?;
    set(CapSet::Effective, &kept)?;
    set(CapSet::Permitted, &kept)?;
    set_no_new_privs()?;
    let now = Kept {
        dropped: Names::from(
            permitted
                .difference(&kept)
                .copied()
                .collect::<CapsHashSet>(),
        ),
        effective: Names::from(kept.clone()),
        bounding_dropped: read(CapSet::Bounding)?.is_subset(&kept),
    };
    log(&now, keep.is_none());
    Ok(now)
}

/// Say what sigd kept, and what that means for what it can signal.
fn log(kept: &Kept, asked_to_keep: bool) {
    let bounding = match (asked_to_keep, kept.bounding_dropped) {
        (true, _) => "--keep-capabilities: every capability sigd was given",
        (false, true) => "the bounding set is down to them",
        (false, false) => {
            "the bounding set stays (no CAP_SETPCAP to drop from it; no_new_privs keeps it unusable)"
        }
    };
    info!(
        kept = %kept.effective,
        dropped = %kept.dropped,
        "capabilities: kept {} ({bounding}); no_new_privs set",
        kept.effective
    );
    if !kept.effective.0.contains(&Capability::CAP_KILL) {
        warn!(
            "no CAP_KILL: sigd can signal only processes of its own user ({})",
            nix::unistd::geteuid()
        );
    }
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`: nothing sigd (or a program it might
/// start) executes can gain privileges (set-uid, file capabilities).
fn set_no_new_privs() -> Result<(), PrivilegeError> {
    // SAFETY: prctl(2) with integer arguments only; it touches no memory.
    let done = unsafe { nix::libc::prctl(nix::libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    nix::errno::Errno::result(done)
        .map(drop)
        .map_err(PrivilegeError::NoNewPrivs)
}
