//! The command line, and `sigd serve` put together from it: load the policy,
//! settle authentication, bind, serve until SIGTERM or SIGINT, reloading the
//! policy on SIGHUP (and on file changes with `--watch`).

use crate::auth::Token;
use crate::guard::Guard;
use crate::http::App;
use crate::policy::{self, Cache, Runtime};
use crate::process::System;
use crate::reload::{self, ActivePolicy, Source};
use crate::server::{self, Limits};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

/// The environment variable that may hold the bearer token.
pub const TOKEN_ENV: &str = "SIGD_TOKEN";

/// sigd delivers POSIX signals to processes over HTTP
/// (`POST /api/v1/processes/{pid}/signal`, body `{"signal": 15}`).
/// Its decisions are a WebAssembly policy component.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Send Signal API.
    Serve(Config),
}

/// How `sigd serve` runs.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on. Without a token, only loopback addresses are allowed.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,

    /// Policy component (.wasm) to load instead of the built-in default policy.
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,

    /// File holding the bearer token callers must present as
    /// `Authorization: Bearer <token>`. The environment variable SIGD_TOKEN
    /// may hold the token instead.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    pub max_body_bytes: usize,

    /// Most connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,

    /// Seconds a client may take to send its request headers.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub header_timeout: u64,

    /// Seconds in-flight requests may take to finish after SIGTERM or SIGINT.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub drain: u64,

    /// Reload the policy file when it changes (it is also reloaded on SIGHUP).
    #[arg(long, requires = "policy")]
    pub watch: bool,

    /// Largest linear memory of a policy call, in MiB; growing past it traps.
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    pub policy_memory_mib: usize,

    /// Milliseconds a policy call may run before it traps.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    pub policy_deadline_ms: u64,

    /// Largest wasm stack of a policy call, in KiB.
    #[arg(long, default_value_t = 512, value_name = "KIB")]
    pub policy_stack_kib: usize,

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
    /// Run the daemon until SIGTERM or SIGINT.
    pub async fn serve(self) -> anyhow::Result<()> {
        let token = self.token()?;
        if token.is_none() {
            if !self.listen.ip().is_loopback() {
                bail!(
                    "refusing to listen on {} without a token: anyone who can reach it could \
                     signal processes; give --token-file (or SIGD_TOKEN), or listen on loopback",
                    self.listen
                );
            }
            warn!("no token: every local client may send signals");
        }
        let policy = Arc::new(self.policy().await?);
        let listener = TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.listen))?;
        // Take over SIGHUP, SIGTERM and SIGINT before announcing readiness:
        // until then they would kill sigd.
        let hangups = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
        let shutdown = shutdown_signal()?;
        info!("listening on http://{}", listener.local_addr()?);
        tokio::spawn(reload::on_sighup(policy.clone(), hangups));
        if self.watch {
            tokio::spawn(reload::watch(policy.clone(), WATCH_EVERY));
        }
        let app = Arc::new(App {
            policy,
            processes: Guard::new(System).into(),
            token,
            max_body_bytes: self.max_body_bytes,
        });
        let limits = Limits {
            max_connections: self.max_connections,
            header_timeout: Duration::from_secs(self.header_timeout),
            drain: Duration::from_secs(self.drain),
        };
        server::run(listener, app, limits, shutdown).await;
        Ok(())
    }

    /// The token from --token-file or SIGD_TOKEN (not both), if any.
    fn token(&self) -> anyhow::Result<Option<Token>> {
        let from_env = std::env::var(TOKEN_ENV).ok();
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
        let runtime = Runtime::new(limits, cache)?;
        let source = match &self.policy {
            None => Source::Builtin,
            Some(path) => Source::File(path.clone()),
        };
        Ok(ActivePolicy::load(runtime, source).await?)
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

/// How often `--watch` looks at the policy file.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// A future that completes on the first SIGTERM or SIGINT; the handlers are
/// in place when this returns.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received"),
            _ = int.recv() => info!("SIGINT received"),
        }
    })
}
