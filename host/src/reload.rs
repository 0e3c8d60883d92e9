//! The active policy, and replacing it while sigd serves (on SIGHUP, or when
//! `--watch` sees the file change).
//!
//! A new policy (or new settings for it) is read, compiled, checked against
//! the WIT world, configured with the settings and given one smoke call
//! (against an empty process table, so it can signal nothing) before it is
//! swapped in. Requests hold the policy they started with, so
//! in-flight ones finish on the old policy while new ones get the new one. A
//! policy that fails any step is logged and dropped; the old one keeps serving.
//! The last attempt, and when the policy serving was loaded, are kept for
//! `/healthz`.
//!
//! What a policy's fault (a trap, a limit, a bad answer) answers is the
//! operator's [`FailMode`]: 500 (closed), or the built-in default policy's
//! answer (fallback).

use crate::auth::HeldTokens;
use crate::caller::Caller;
use crate::decision::{Decide, Deciding, Decision, Described, FellBack};
use crate::guard::GuardedTable;
use crate::host_calls::Headers;
use crate::metrics::Metrics;
use crate::policy::precompiled::read_file;
use crate::policy::{CallError, DEFAULT_POLICY, LoadError, Policy, Request, Runtime};
use crate::policy::{policy_sha256, sha256_hex};
use crate::process::NoProcesses;
use crate::systemd::Notifier;
use crate::trusted_file::{self, Kind};
use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
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
    #[error("cannot read the policy settings {path}: {error}", path = .0.display(), error = .1)]
    ReadSettings(PathBuf, std::io::Error),
    /// The policy's sentence: one line, bounded.
    #[error("{source} rejected the settings {path}: {why}", source = .0, path = .1.display(), why = crate::logs::contained(.2))]
    Settings(Source, PathBuf, String),
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

/// What a policy's fault answers: its trap, a limit it hit, an answer sigd
/// may not pass on (a fault after a signal was delivered is always
/// answered 200 with what was delivered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FailMode {
    /// Refuse: 500 `INTERNAL`, nothing signalled.
    #[default]
    Closed,
    /// Decide the request again with the built-in default policy (without
    /// settings), when the faulty policy had signalled and scheduled nothing.
    Fallback,
}

/// One reload attempt: when, and how it went (the error's sentence if it failed).
#[derive(Debug, Clone)]
pub struct ReloadAttempt {
    pub at: SystemTime,
    pub outcome: Result<Reloaded, String>,
}

/// The policy requests are answered with, swappable while sigd serves.
pub struct ActivePolicy {
    runtime: Arc<Runtime>,
    source: Source,
    /// The settings file (`--policy-settings`), read again with the policy.
    settings: Option<PathBuf>,
    current: RwLock<Arc<Policy>>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// When the current policy was loaded, and the last reload attempt.
    status: Mutex<(SystemTime, Option<ReloadAttempt>)>,
    /// With [`FailMode::Fallback`]: the built-in default policy.
    fallback: Option<Policy>,
    /// "active", or "shadow" (see [`crate::shadow`]).
    role: &'static str,
}

impl ActivePolicy {
    /// Load the first policy from `source`, configured with the settings
    /// in the file `settings`, if given.
    pub async fn load(
        runtime: Arc<Runtime>,
        source: Source,
        settings: Option<PathBuf>,
    ) -> Result<ActivePolicy, ReloadError> {
        let policy = prepare(&runtime, &source, settings.as_deref(), None)
            .await?
            .ok_or_else(|| ReloadError::Crashed(source.clone(), "no policy was loaded".into()))?;
        info!(
            sha256 = policy.sha256(),
            settings_sha256 = policy.settings_sha256(),
            compiled = ?policy.compiled(),
            "loaded {source}"
        );
        Ok(ActivePolicy {
            runtime,
            source,
            settings,
            current: RwLock::new(Arc::new(policy)),
            reloading: tokio::sync::Mutex::new(()),
            status: Mutex::new((SystemTime::now(), None)),
            fallback: None,
            role: "active",
        })
    }

    /// This policy as the shadow of the active one: so it is named in logs
    /// and metrics.
    pub fn as_shadow(mut self) -> ActivePolicy {
        self.role = "shadow";
        self
    }

    /// Show in metrics which policy serves in this role now.
    pub fn publish(&self, metrics: &Metrics) {
        let current = self.current();
        metrics.policy_serving(self.role, current.sha256(), current.settings_sha256());
    }

    /// This policy, its faults answered as `mode` says.
    pub fn with_fail_mode(mut self, mode: FailMode) -> Result<ActivePolicy, ReloadError> {
        self.fallback = match mode {
            FailMode::Closed => None,
            FailMode::Fallback => Some(
                (self.runtime.load(DEFAULT_POLICY))
                    .map_err(|error| ReloadError::Load(Source::Builtin, error))?,
            ),
        };
        Ok(self)
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

    /// Load the source and the settings again and swap them in if either
    /// is new and both are sound; the attempt is kept for [`describe`](Decide::describe).
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let reloaded = self.swap().await;
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(Reloaded::Swapped { .. }) = &reloaded {
            status.0 = SystemTime::now();
        }
        status.1 = Some(ReloadAttempt {
            at: SystemTime::now(),
            outcome: reloaded.as_ref().map_err(ToString::to_string).cloned(),
        });
        reloaded
    }

    async fn swap(&self) -> Result<Reloaded, ReloadError> {
        let old = self.current();
        let settings = self.settings.as_deref();
        let Some(new) = prepare(&self.runtime, &self.source, settings, Some(&old)).await? else {
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

    /// Reload, log the outcome (why, if it failed) and count it: whether
    /// it failed.
    pub async fn reload_and_log(&self, why: &str, metrics: &Metrics) -> bool {
        let role = self.role;
        match self.reload().await {
            Ok(Reloaded::Swapped { from, to }) => {
                info!(
                    role,
                    from, to, "policy swapped ({why}): now {}", self.source
                );
                metrics.reload("swapped");
                self.publish(metrics);
                false
            }
            Ok(Reloaded::Unchanged) => {
                info!(role, "policy unchanged ({why})");
                metrics.reload("unchanged");
                false
            }
            Err(error) => {
                error!(role, %error, "policy not swapped ({why}); the old one keeps serving");
                metrics.reload("failed");
                true
            }
        }
    }
}

impl Decide for ActivePolicy {
    /// Decide with the policy active now; the request keeps it to the end.
    /// If it fails having done nothing, and the fail mode is fallback, the
    /// built-in default policy decides again.
    fn decide<'a>(&'a self, processes: &'a GuardedTable, request: Request) -> Deciding<'a> {
        let policy = self.current();
        Box::pin(async move {
            let Some(fallback) = &self.fallback else {
                return policy.call(processes, request).await;
            };
            let again = request.clone();
            let failed = policy.call(processes, request).await;
            if failed.answer.is_ok() || failed.acted() {
                return failed;
            }
            // The default's calls alone make the record and the audit
            // event: the faulty policy did nothing (its failure is logged).
            let mut decision = fallback.call(processes, again).await;
            decision.fell_back = failed.answer.err().map(|error| FellBack {
                policy_sha256: failed.policy_sha256,
                error,
            });
            decision
        })
    }

    fn describe(&self) -> Described {
        let current = self.current();
        let (loaded_at, last_reload) = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Described {
            sha256: current.sha256().to_string(),
            source: self.source.to_string(),
            settings_sha256: current.settings_sha256().map(str::to_string),
            loaded_at,
            last_reload,
            fail_mode: match self.fallback {
                None => FailMode::Closed,
                Some(_) => FailMode::Fallback,
            },
        }
    }
}

/// Every `every`, let the active policy's long-idle instances go, so that
/// after a burst of requests sigd's memory comes back to its idle level.
/// When the last went (no call for that long: the burst is over, and no
/// request waits on the allocator), it is asked to give back what it holds
/// free.
pub async fn trim_idle_instances(active: Arc<ActivePolicy>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if active.current().trim_idle() {
            // SAFETY: malloc_trim(3) only returns free heap memory to the
            // kernel; it takes the allocator's own locks, and any thread
            // may call it at any time.
            unsafe { nix::libc::malloc_trim(0) };
        }
    }
}

/// Reload on every SIGHUP that `hangups` (a SIGHUP stream, made before sigd
/// announces it is ready, so no early SIGHUP kills it) delivers: the token
/// file first (a token taken out of it stops working), the policy, the
/// shadow too if there is one, telling the service manager it reloads and,
/// swapped or not, is ready again: with what failed, if anything did (not
/// why: a status is anyone's to read, and the sentence may quote the
/// operator's files; the log says why).
pub async fn on_sighup(
    active: Arc<ActivePolicy>,
    shadow: Option<Arc<ActivePolicy>>,
    tokens: Option<Arc<HeldTokens>>,
    mut hangups: tokio::signal::unix::Signal,
    metrics: Arc<Metrics>,
    notifier: Arc<Notifier>,
) {
    while hangups.recv().await.is_some() {
        notifier.reloading();
        let mut failed = Vec::new();
        match tokens.as_ref().map(|tokens| tokens.reload()) {
            None | Some(Ok(None)) => {}
            Some(Ok(Some(count))) => {
                info!(count, "token file read again: its tokens hold now");
                metrics.token_file_reload("read");
            }
            Some(Err(error)) => {
                error!(%error, "token file not read again: the tokens read before still hold");
                metrics.token_file_reload("failed");
                failed.push("token file not read again (the tokens read before hold)");
            }
        }
        if active.reload_and_log("SIGHUP", &metrics).await {
            failed.push("policy not reloaded (the old one serves)");
        }
        if let Some(shadow) = &shadow
            && shadow.reload_and_log("SIGHUP", &metrics).await
        {
            failed.push("shadow policy not reloaded");
        }
        notifier.ready(&active.describe(), &failed);
    }
}

/// Reload whenever the policy file's or the settings file's size,
/// modification time or inode changes, checking every `every`.
pub async fn watch(active: Arc<ActivePolicy>, every: Duration, metrics: Arc<Metrics>) {
    let mut files: Vec<PathBuf> = active.settings.iter().cloned().collect();
    if let Source::File(path) = active.source() {
        files.push(path.clone());
    }
    if files.is_empty() {
        return;
    }
    let stamps = || files.iter().map(|file| stamp(file)).collect::<Vec<_>>();
    let mut seen = stamps();
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let now = stamps();
        if now != seen && now.iter().all(Option::is_some) {
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
        Source::File(path) => read_file(path)
            .map(Cow::Owned)
            .map_err(|e| ReloadError::Read(source.clone(), e)),
    }
}

/// Read and load `source` with the settings in `settings` (on a blocking
/// thread: reading and compiling take a while; the built-in policy needs
/// neither), then prove the policy takes them and
/// answers a request well-formed. `None` if both are what `unless` (the
/// policy already active) has.
async fn prepare(
    runtime: &Arc<Runtime>,
    source: &Source,
    settings: Option<&Path>,
    unless: Option<&Policy>,
) -> Result<Option<Policy>, ReloadError> {
    let unless = unless.map(|p| {
        (
            p.sha256().to_string(),
            p.settings_sha256().map(str::to_string),
        )
    });
    let (runtime, from) = (runtime.clone(), source.clone());
    let settings_file = settings.map(Path::to_path_buf);
    let load = move || {
        let bytes = read(&from)?;
        let settings = match &settings_file {
            None => None,
            Some(path) => Some(
                trusted_file::read_text(path, Kind::Decisive)
                    .map_err(|e| ReloadError::ReadSettings(path.clone(), e))?,
            ),
        };
        let shas = (
            policy_sha256(&bytes),
            settings.as_deref().map(|text| sha256_hex(text.as_bytes())),
        );
        if unless.is_some_and(|active| active == shas) {
            return Ok(None);
        }
        runtime
            .load(&bytes)
            .map(|policy| Some(policy.with_settings(settings)))
            .map_err(|e| ReloadError::Load(from, e))
    };
    let loaded = match (source, settings) {
        // Nothing to read or compile: a thread would cost more than it.
        // (Loading can wait for its memory images, `Runtime::link`, only
        // when the kernel refuses them: at start-up, before any request;
        // a reload of the built-in policy stops at its unchanged sha256.)
        (Source::Builtin, None) => load()?,
        _ => tokio::task::spawn_blocking(load)
            .await
            .map_err(|crash| ReloadError::Crashed(source.clone(), crash.to_string()))??,
    };
    let Some(policy) = loaded else {
        return Ok(None);
    };
    match smoke(&policy).await.answer {
        Ok(_) => Ok(Some(policy)),
        Err(CallError::Settings(sentence)) => {
            let path = settings.map(Path::to_path_buf).unwrap_or_default();
            Err(ReloadError::Settings(source.clone(), path, sentence))
        }
        Err(error) => Err(ReloadError::Smoke(source.clone(), error)),
    }
}

/// The request a policy must answer well-formed before sigd takes it on
/// (`sigd policy check` makes it too): signal 15 to pid 1, against an empty
/// process table, so nothing can be signalled.
pub async fn smoke(policy: &Policy) -> Decision {
    let nothing = GuardedTable::new(NoProcesses);
    let request = Request {
        pid: "1".into(),
        body: br#"{"signal": 15}"#.to_vec(),
        headers: Headers::json_body(),
        caller: Caller::local(Some(0), None),
    };
    policy.call(&nothing, request).await
}
