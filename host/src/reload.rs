//! The active policy, and replacing it while sigd serves (on SIGHUP, or when
//! `--watch` sees the file change).
//!
//! A new policy is read, compiled, checked against the WIT world and given one
//! smoke call (against an empty process table, so it can signal nothing)
//! before it is swapped in. Requests hold the policy they started with, so
//! in-flight ones finish on the old policy while new ones get the new one. A
//! policy that fails any step is logged and dropped; the old one keeps serving.

use crate::decision::{Decide, Deciding, Decision, Described};
use crate::guard::GuardedTable;
use crate::metrics::Metrics;
use crate::policy::{CallError, DEFAULT_POLICY, LoadError, Policy, Request, Runtime};
use crate::process::NoProcesses;
use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tracing::{error, info};

/// Where the policy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The default policy built into the binary.
    Builtin,
    /// A component file (`--policy`).
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Builtin => f.write_str("the built-in default policy"),
            Source::File(path) => write!(f, "policy file {}", path.display()),
        }
    }
}

/// Why a policy was not (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read {0}: {1}")]
    Read(Source, std::io::Error),
    #[error("{0} {1}")]
    Load(Source, LoadError),
    #[error("{0} failed its smoke call: {1}")]
    Smoke(Source, CallError),
    #[error("loading {0} crashed: {1}")]
    Crashed(Source, String),
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// A new policy is active.
    Swapped { from: String, to: String },
    /// The source holds the active policy already.
    Unchanged,
}

/// The policy requests are answered with, swappable while sigd serves.
pub struct ActivePolicy {
    runtime: Arc<Runtime>,
    source: Source,
    current: RwLock<Arc<Policy>>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl ActivePolicy {
    /// Load the first policy from `source`.
    pub async fn load(runtime: Arc<Runtime>, source: Source) -> Result<ActivePolicy, ReloadError> {
        let policy = prepare(&runtime, &source, None)
            .await?
            .ok_or_else(|| ReloadError::Crashed(source.clone(), "no policy was loaded".into()))?;
        info!(sha256 = policy.sha256(), compiled = ?policy.compiled(), "loaded {source}");
        Ok(ActivePolicy {
            runtime,
            source,
            current: RwLock::new(Arc::new(policy)),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// The policy to answer the next request with.
    pub fn current(&self) -> Arc<Policy> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Where the policy comes from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Load the source again and swap it in if it is new and sound.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.current();
        let Some(new) = prepare(&self.runtime, &self.source, Some(old.sha256())).await? else {
            return Ok(Reloaded::Unchanged);
        };
        let to = new.sha256().to_string();
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(new);
        Ok(Reloaded::Swapped {
            from: old.sha256().to_string(),
            to,
        })
    }

    /// Reload, log the outcome and count it.
    pub async fn reload_and_log(&self, why: &str, metrics: &Metrics) {
        match self.reload().await {
            Ok(Reloaded::Swapped { from, to }) => {
                info!(from, to, "policy swapped ({why}): now {}", self.source);
                metrics.reload("swapped");
            }
            Ok(Reloaded::Unchanged) => {
                info!("policy unchanged ({why})");
                metrics.reload("unchanged");
            }
            Err(error) => {
                error!(%error, "policy not swapped ({why}); the old one keeps serving");
                metrics.reload("failed");
            }
        }
    }
}

impl Decide for ActivePolicy {
    /// Decide with the policy active now; the request keeps it to the end.
    fn decide<'a>(&'a self, processes: &'a GuardedTable, request: Request) -> Deciding<'a> {
        let policy = self.current();
        Box::pin(async move { policy.call(processes, request).await })
    }

    fn describe(&self) -> Described {
        Described {
            sha256: self.current().sha256().to_string(),
            source: self.source.to_string(),
        }
    }
}

/// Reload on every SIGHUP that `hangups` (a SIGHUP stream, made before sigd
/// announces it is ready, so no early SIGHUP kills it) delivers.
pub async fn on_sighup(
    active: Arc<ActivePolicy>,
    mut hangups: tokio::signal::unix::Signal,
    metrics: Arc<Metrics>,
) {
    while hangups.recv().await.is_some() {
        active.reload_and_log("SIGHUP", &metrics).await;
    }
}

/// Reload whenever the policy file's size, modification time or inode
/// changes, checking every `every`.
pub async fn watch(active: Arc<ActivePolicy>, every: Duration, metrics: Arc<Metrics>) {
    let Source::File(path) = active.source().clone() else {
        return;
    };
    let mut seen = stamp(&path);
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let now = stamp(&path);
        if now != seen && now.is_some() {
            seen = now;
            active.reload_and_log("file changed", &metrics).await;
        }
    }
}

/// What `watch` compares: (length, modification time, inode).
fn stamp(path: &Path) -> Option<(u64, SystemTime, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?, meta.ino()))
}

fn read(source: &Source) -> Result<Cow<'static, [u8]>, ReloadError> {
    match source {
        Source::Builtin => Ok(Cow::Borrowed(DEFAULT_POLICY)),
        Source::File(path) => std::fs::read(path)
            .map(Cow::Owned)
            .map_err(|e| ReloadError::Read(source.clone(), e)),
    }
}

/// Read and load `source` (on a blocking thread: compiling takes a while),
/// then prove the policy answers a request well-formed. `None` if its sha256
/// is `unless_sha256`, the policy already active.
async fn prepare(
    runtime: &Arc<Runtime>,
    source: &Source,
    unless_sha256: Option<&str>,
) -> Result<Option<Policy>, ReloadError> {
    let unless = unless_sha256.map(str::to_string);
    let (runtime, from) = (runtime.clone(), source.clone());
    let loaded = tokio::task::spawn_blocking(move || {
        let bytes = read(&from)?;
        if unless.is_some_and(|sha256| sha256 == crate::policy::sha256_hex(&bytes)) {
            return Ok(None);
        }
        runtime
            .load(&bytes)
            .map(Some)
            .map_err(|e| ReloadError::Load(from, e))
    })
    .await
    .map_err(|crash| ReloadError::Crashed(source.clone(), crash.to_string()))??;
    let Some(policy) = loaded else {
        return Ok(None);
    };
    smoke(&policy)
        .await
        .answer
        .map_err(|e| ReloadError::Smoke(source.clone(), e))?;
    Ok(Some(policy))
}

/// The request a policy must answer well-formed before sigd takes it on
/// (`sigd policy check` makes it too): signal 15 to pid 1, against an empty
/// process table, so nothing can be signalled.
pub async fn smoke(policy: &Policy) -> Decision {
    let nothing = GuardedTable::new(NoProcesses);
    let request = Request {
        pid: "1".into(),
        body: br#"{"signal": 15}"#.to_vec(),
        headers: vec![("content-type".into(), "application/json".into())],
    };
    policy.call(&nothing, request).await
}
