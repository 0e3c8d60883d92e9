//! The command line, and `sigd serve` put together from it: load the policy,
//! settle authentication, bind, serve until SIGTERM or SIGINT.

use crate::auth::Token;
use crate::guard::Guard;
use crate::http::App;
use crate::policy::{DEFAULT_POLICY, Policy};
use crate::process::System;
use crate::server::{self, Limits};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
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
        let policy = self.policy()?;
        let listener = TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.listen))?;
        info!("listening on http://{}", listener.local_addr()?);
        let app = Arc::new(App {
            policy,
            token,
            max_body_bytes: self.max_body_bytes,
        });
        let limits = Limits {
            max_connections: self.max_connections,
            header_timeout: Duration::from_secs(self.header_timeout),
            drain: Duration::from_secs(self.drain),
        };
        server::run(listener, app, limits, shutdown_signal()).await;
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

    fn policy(&self) -> anyhow::Result<Policy> {
        let (origin, bytes) = match &self.policy {
            None => (
                "the built-in default policy".to_string(),
                Cow::Borrowed(DEFAULT_POLICY),
            ),
            Some(path) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read policy file {}", path.display()))?;
                (format!("policy file {}", path.display()), Cow::Owned(bytes))
            }
        };
        let policy = Policy::load(&bytes, Guard::new(System)).with_context(|| origin.clone())?;
        info!(sha256 = policy.sha256(), "loaded {origin}");
        Ok(policy)
    }
}

/// Completes on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot watch SIGTERM/SIGINT; stop sigd with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
    }
}
