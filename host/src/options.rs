//! The flags `sigd serve` and `sigd policy ...` share: how policies run
//! (their limits, isolation and compiled-policy cache), turned into a
//! [`Runtime`].

use crate::policy::{self, Cache, Isolation, Runtime};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// How policies run: their limits, isolation and compiled-policy cache
/// (shared by `sigd serve` and `sigd policy`).
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeOptions {
    /// Memory of a policy instance, in MiB: all its linear memories and
    /// tables together; growing past it traps.
    #[arg(long, default_value_t = policy::CallLimits::default().memory_bytes >> 20, value_name = "MIB")]
    pub policy_memory_mib: usize,

    /// Milliseconds of its own CPU time a policy call may use before it
    /// traps (time it spends waiting does not count; a call may take at
    /// most 65 s in all).
    #[arg(long, default_value_t = policy::CallLimits::default().deadline.as_millis() as u64, value_name = "MS")]
    pub policy_deadline_ms: u64,

    /// Largest wasm stack of a policy call, in KiB.
    #[arg(long, default_value_t = policy::CallLimits::default().stack_bytes >> 10, value_name = "KIB")]
    pub policy_stack_kib: usize,

    /// Give every request a fresh policy instance (~60 µs more a request),
    /// so not even the policy's own state survives from one request to the
    /// next. By default an instance that answered well serves again; one
    /// that trapped or answered badly never does.
    #[arg(long)]
    pub fresh_instances: bool,

    /// Directory for compiled policies, so restarts skip compiling. Must be
    /// sigd's user's own and not writable by others. The slim build compiles
    /// nothing and keeps none. [default: /var/cache/sigd as root, else
    /// $XDG_CACHE_HOME/sigd or ~/.cache/sigd]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not cache compiled policies.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

impl RuntimeOptions {
    /// A policy runtime under these options.
    pub fn runtime(&self) -> anyhow::Result<Arc<Runtime>> {
        let limits = policy::CallLimits {
            memory_bytes: self.policy_memory_mib << 20,
            deadline: Duration::from_millis(self.policy_deadline_ms),
            stack_bytes: self.policy_stack_kib << 10,
            ..policy::CallLimits::default()
        };
        let cache = match self.cache_dir() {
            None => None,
            Some(dir) => match Cache::open(&dir) {
                Ok(cache) => Some(cache),
                Err(error) => {
                    warn!(%error, "compiled policies will not be cached");
                    None
                }
            },
        };
        let isolation = match self.fresh_instances {
            true => Isolation::FreshInstance,
            false => Isolation::ReuseSound,
        };
        Ok(Runtime::new(limits, isolation, cache)?)
    }

    /// `--cache-dir`, or the default for this user; `None` with `--no-cache`
    /// or without a compiler (nothing is compiled, so nothing is cached).
    fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache || !cfg!(feature = "compiler") {
            return None;
        }
        if let Some(dir) = &self.cache_dir {
            return Some(dir.clone());
        }
        if nix::unistd::geteuid().is_root() {
            return Some(PathBuf::from("/var/cache/sigd"));
        }
        let xdg = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from);
        let home = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache"));
        xdg.or(home).map(|base| base.join("sigd"))
    }
}
