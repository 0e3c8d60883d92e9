//! The command line, and `sigd serve` put together from it: load the policy,
//! settle authentication, bind, serve until SIGTERM or SIGINT, reloading the
//! policy on SIGHUP (and on file changes with `--watch`).

use crate::auth::Token;
use crate::guard::Guard;
use crate::http::{App, Decider};
use crate::kit::PolicyCommand;
use crate::metrics::Metrics;
use crate::policy::{self, Cache, Isolation, Runtime};
use crate::process::System;
use crate::reload::{self, ActivePolicy, Source};
use crate::server::{self, Endpoint, Limits, Listener};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

/// The environment variable that may hold the bearer token.
pub const TOKEN_ENV: &str = "SIGD_TOKEN";

/// What `--version` prints: the version and the built-in policy's sha256.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (built-in policy sha256 ",
    env!("SIGD_POLICY_DEFAULT_SHA256"),
    ")"
);

/// sigd delivers POSIX signals to processes over HTTP
/// (`POST /api/v1/processes/{pid}/signal`, body `{"signal": 15}`).
/// Its decisions are a WebAssembly policy component.
#[derive(Debug, Parser)]
#[command(version = VERSION)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Send Signal API.
    Serve(Config),
    /// Write, try and verify policies: check, eval, test, wit.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// How `sigd serve` runs.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Where to listen: HOST:PORT (127.0.0.1:9000, [::1]:9000) or
    /// unix:/PATH. Repeat to listen on several. Without a token only
    /// loopback addresses and Unix sockets are allowed.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    pub listen: Vec<Endpoint>,

    /// File mode of Unix sockets, in octal.
    #[arg(long, value_name = "MODE", default_value = "660", value_parser = octal)]
    pub socket_mode: u32,

    /// Log format. `RUST_LOG` filters what is logged (default: info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Policy component (.wasm) to load instead of the built-in default policy.
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,

    /// File holding the bearer token callers must present as
    /// `Authorization: Bearer <token>`. The environment variable SIGD_TOKEN
    /// may hold the token instead.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, default_value_t = crate::http::MAX_BODY_BYTES, value_name = "BYTES")]
    pub max_body_bytes: usize,

    /// Most connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = Limits::default().max_connections, value_name = "N")]
    pub max_connections: usize,

    /// Seconds a client may take to send a request's headers; also how long
    /// a keep-alive connection may stay idle.
    #[arg(long, default_value_t = Limits::default().header_timeout.as_secs(), value_name = "SECONDS")]
    pub header_timeout: u64,

    /// Most headers in a request; more get 431.
    #[arg(long, default_value_t = Limits::default().max_headers, value_name = "N")]
    pub max_headers: usize,

    /// Most bytes of request line and headers; more get 431 (at least 8192).
    #[arg(long, default_value_t = Limits::default().max_header_bytes, value_name = "BYTES")]
    pub max_header_bytes: usize,

    /// Seconds in-flight requests may take to finish after SIGTERM or SIGINT.
    #[arg(long, default_value_t = Limits::default().drain.as_secs(), value_name = "SECONDS")]
    pub drain: u64,

    /// Reload the policy file when it changes (it is also reloaded on SIGHUP).
    #[arg(long, requires = "policy")]
    pub watch: bool,

    #[command(flatten)]
    pub runtime: RuntimeOptions,
}

/// How policies run: their limits, isolation and compiled-policy cache
/// (shared by `sigd serve` and `sigd policy`).
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeOptions {
    /// Largest linear memory of a policy call, in MiB; growing past it traps.
    #[arg(long, default_value_t = policy::Limits::default().memory_bytes >> 20, value_name = "MIB")]
    pub policy_memory_mib: usize,

    /// Milliseconds of its own CPU time a policy call may use before it
    /// traps (time it spends waiting does not count; a call may take at
    /// most 65 s in all).
    #[arg(long, default_value_t = policy::Limits::default().deadline.as_millis() as u64, value_name = "MS")]
    pub policy_deadline_ms: u64,

    /// Largest wasm stack of a policy call, in KiB.
    #[arg(long, default_value_t = policy::Limits::default().stack_bytes >> 10, value_name = "KIB")]
    pub policy_stack_kib: usize,

    /// Give every request a fresh policy instance (~60 µs more a request),
    /// so not even the policy's own state survives from one request to the
    /// next. By default an instance that answered well serves again; one
    /// that trapped or answered badly never does.
    #[arg(long)]
    pub fresh_instances: bool,

    /// Directory for compiled policies, so restarts skip compiling. Must be
    /// sigd's user's own and not writable by others. [default: /var/cache/sigd
    /// as root, else $XDG_CACHE_HOME/sigd or ~/.cache/sigd]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not cache compiled policies.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

impl Config {
    /// Run the daemon until SIGTERM or SIGINT. `env_token` is what
    /// SIGD_TOKEN held (see [`take_env_token`]).
    pub async fn serve(self, env_token: Option<String>) -> anyhow::Result<()> {
        let token = self.token(env_token)?;
        if token.is_none() {
            if let Some(open) = self.listen.iter().find(|endpoint| !endpoint.is_local()) {
                bail!(
                    "refusing to listen on {open} without a token: anyone who can reach it could \
                     signal processes; give --token-file (or SIGD_TOKEN), or listen on loopback"
                );
            }
            warn!("no token: every local client may send signals");
        }
        raise_file_limit();
        let metrics = Arc::new(Metrics::default());
        let policy = Arc::new(self.policy().await?);
        let mut listeners = Vec::new();
        for endpoint in &self.listen {
            let listener = Listener::bind(endpoint, self.socket_mode)
                .await
                .with_context(|| format!("cannot listen on {endpoint}"))?;
            listeners.push(listener);
        }
        // Take over SIGHUP, SIGTERM and SIGINT before announcing readiness:
        // until then they would kill sigd.
        let hangups = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
        let shutdown = shutdown_signal()?;
        for listener in &listeners {
            info!("listening on {}", listener.endpoint()?);
        }
        tokio::spawn(reload::on_sighup(policy.clone(), hangups, metrics.clone()));
        if self.watch {
            tokio::spawn(reload::watch(policy.clone(), WATCH_EVERY, metrics.clone()));
        }
        let app = Arc::new(App {
            policy: Decider::Policy(policy),
            processes: Guard::new(System).into(),
            token,
            max_body_bytes: self.max_body_bytes,
            metrics,
        });
        let limits = Limits {
            max_connections: self.max_connections,
            header_timeout: Duration::from_secs(self.header_timeout),
            max_headers: self.max_headers,
            max_header_bytes: self.max_header_bytes,
            drain: Duration::from_secs(self.drain),
        };
        server::run(listeners, app, limits, shutdown).await;
        Ok(())
    }

    /// The token from --token-file or SIGD_TOKEN (not both), if any.
    fn token(&self, from_env: Option<String>) -> anyhow::Result<Option<Token>> {
        let text = match (&self.token_file, from_env) {
            (Some(_), Some(_)) => {
                bail!("give the token either by --token-file or {TOKEN_ENV}, not both")
            }
            (Some(path), None) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read token file {}", path.display()))?,
            (None, Some(text)) => text,
            (None, None) => return Ok(None),
        };
        Token::new(&text).context("unusable token").map(Some)
    }

    /// The runtime under the configured limits, and the first policy.
    async fn policy(&self) -> anyhow::Result<ActivePolicy> {
        let runtime = self.runtime.runtime()?;
        let source = match &self.policy {
            None => Source::Builtin,
            Some(path) => Source::File(path.clone()),
        };
        Ok(ActivePolicy::load(runtime, source).await?)
    }
}

impl RuntimeOptions {
    /// A policy runtime under these options.
    pub fn runtime(&self) -> anyhow::Result<Arc<Runtime>> {
        let limits = policy::Limits {
            memory_bytes: self.policy_memory_mib << 20,
            deadline: Duration::from_millis(self.policy_deadline_ms),
            stack_bytes: self.policy_stack_kib << 10,
            ..policy::Limits::default()
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

    /// `--cache-dir`, or the default for this user; `None` with `--no-cache`.
    fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
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

/// Take the token out of the environment: read SIGD_TOKEN, overwrite its
/// value in the process's original environment block (what
/// `/proc/<pid>/environ` shows) and unset it, so it lingers nowhere.
///
/// # Safety
///
/// Call it before any other thread starts: it writes the environment.
pub unsafe fn take_env_token() -> Option<String> {
    let token = std::env::var(TOKEN_ENV).ok()?;
    let prefix = format!("{TOKEN_ENV}=");
    // SAFETY: `environ` is a null-terminated array of NUL-terminated strings
    // that no other thread touches yet (the caller's promise); we only
    // overwrite bytes within the value of our own variable.
    unsafe {
        let mut entry = nix::libc::environ;
        while !entry.is_null() && !(*entry).is_null() {
            let text = std::ffi::CStr::from_ptr(*entry).to_bytes();
            if text.starts_with(prefix.as_bytes()) {
                let value = (*entry).add(prefix.len());
                std::ptr::write_bytes(value, b'*', text.len() - prefix.len());
            }
            entry = entry.add(1);
        }
        std::env::remove_var(TOKEN_ENV);
    }
    Some(token)
}

/// Let sigd hold as many connections as the hard limit on open files allows.
fn raise_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        warn!(%error, soft, "cannot raise the open-file limit");
    }
}

/// Parse an octal file mode such as `660`.
fn octal(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("{text:?} is not an octal file mode such as 660"))
}

/// How often `--watch` looks at the policy file.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// A future that completes on the first SIGTERM or SIGINT; the handlers are
/// in place when this returns.
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received"),
            _ = int.recv() => info!("SIGINT received"),
        }
    })
}
