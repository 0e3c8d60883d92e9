//! `sigd serve` put together: settle authentication, load the policy, bind
//! every listener, take over the signals, then serve until SIGTERM or
//! SIGINT, reloading the policy on SIGHUP (and on file changes with
//! `--watch`), telling a service manager each step (`systemd`). The
//! composition root: every other module does one part.

use crate::auth::{HeldTokens, TOKEN_ENV, Tokens};
use crate::cli::ServeArgs;
use crate::decision::Decide;
use crate::escalations::Escalations;
use crate::guard::GuardedTable;
use crate::http::App;
use crate::metrics::Metrics;
use crate::process::System;
use crate::reload::{self, ActivePolicy, Source};
use crate::server::{self, Listener, SocketFile, TransportLimits};
use crate::shadow::Shadow;
use crate::shares::Shares;
use crate::systemd::Notifier;
use anyhow::{Context, bail};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

/// Ignore SIGHUP until sigd takes it over: until then its default action
/// would end sigd, and a reload asked for that early has nothing to reload.
/// `main` calls it first thing, before any other thread starts.
pub fn ignore_early_hangups() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: installs SIG_IGN, no handler code, before other threads exist.
    // (Nothing to report to if it fails: logging is not set up yet, and a
    // SIGHUP then ends sigd as before.)
    let _ = unsafe { signal(Signal::SIGHUP, SigHandler::SigIgn) };
}

/// Run the daemon until SIGTERM or SIGINT. `env_token` is what SIGD_TOKEN
/// held (see [`take_env_token`](crate::auth::take_env_token)).
pub async fn run(args: ServeArgs, env_token: Option<String>) -> anyhow::Result<()> {
    // SIGHUP, SIGTERM and SIGINT are ours from here on: a SIGTERM while the
    // policy loads ends sigd once it is loaded, gracefully; a SIGHUP reloads.
    let hangups = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let shutdown = shutdown_signal()?;
    let tokens = tokens(&args, env_token)?.map(Arc::new);
    let notifier = Arc::new(Notifier::from_env());
    let handed_in = handed_in_listeners()?;
    let endpoints = match handed_in.is_empty() {
        true => args.listen.clone(),
        false => handed_in
            .iter()
            .map(Listener::endpoint)
            .collect::<Result<_, _>>()?,
    };
    if tokens.is_none() {
        if let Some(open) = endpoints.iter().find(|endpoint| !endpoint.is_local()) {
            bail!(
                "refusing to listen on {open} without a token: anyone who can reach it could \
                 signal processes; give --token-file (or SIGD_TOKEN), or listen on loopback"
            );
        }
        warn!("no token: every local client may send signals");
    }
    let max_escalations = escalations_that_fit(args.max_escalations, raise_file_limit());
    if args.max_waits >= args.max_connections {
        warn!(
            max_waits = args.max_waits,
            max_connections = args.max_connections,
            "--max-waits is not below --max-connections: waits may take every connection slot, \
             and new clients then queue until one ends"
        );
    }
    // /proc must describe the processes pidfds open: checked once, here.
    crate::process::linux::check_proc()?;
    // Decided once, from the kernel: never from an errno under load.
    crate::process::linux::pidfds();
    let metrics = Arc::new(Metrics::default());
    let policy = Arc::new(first_policy(&args).await?);
    policy.publish(&metrics);
    let shadow = shadow(&args, &metrics).await?;
    let socket_file = SocketFile {
        mode: args.socket_mode,
        group: args.socket_group.as_deref().map(group).transpose()?,
    };
    let mut listeners = Vec::new();
    for endpoint in args.listen.iter().filter(|_| handed_in.is_empty()) {
        let listener = Listener::bind(endpoint, socket_file)
            .await
            .with_context(|| format!("cannot listen on {endpoint}"))?;
        listeners.push(listener);
    }
    listeners.extend(handed_in);
    for listener in &listeners {
        info!("listening on {}", listener.endpoint()?);
    }
    let listening = (listeners.iter().map(Listener::endpoint)).collect::<Result<Vec<_>, _>>()?;
    let _siblings = server::hold_loopback_siblings(&listening)?;
    notifier.ready(&policy.describe(), &[]);
    let shadow_policy = shadow.as_ref().map(|shadow| shadow.policy().clone());
    tokio::spawn(reload::on_sighup(
        policy.clone(),
        shadow_policy.clone(),
        tokens.clone(),
        hangups,
        metrics.clone(),
        notifier.clone(),
    ));
    let pinging = notifier.clone();
    tokio::spawn(async move { pinging.watchdog().await });
    if args.watch {
        tokio::spawn(reload::watch(policy.clone(), WATCH_EVERY, metrics.clone()));
        if let Some(shadow) = shadow_policy {
            tokio::spawn(reload::watch(shadow, WATCH_EVERY, metrics.clone()));
        }
    }
    tokio::spawn(reload::trim_idle_instances(policy.clone(), TRIM_EVERY));
    let app = Arc::new(App {
        decider: policy,
        processes: GuardedTable::with_limits(
            System,
            std::process::id() as i32,
            Escalations::new(max_escalations),
            args.max_waits,
        ),
        tokens,
        allowed_origins: args.allowed_origins.clone(),
        max_body_bytes: args.max_body_bytes,
        body_timeout: Duration::from_secs(args.body_timeout),
        metrics,
        shadow,
        answering: Shares::of(args.max_connections),
    });
    let limits = TransportLimits {
        max_connections: args.max_connections,
        header_timeout: Duration::from_secs(args.header_timeout),
        max_headers: args.max_headers,
        max_header_bytes: args.max_header_bytes,
        drain: Duration::from_secs(args.drain),
    };
    let shutdown = async move {
        shutdown.await;
        notifier.stopping();
    };
    server::run(listeners, app, limits, shutdown).await;
    Ok(())
}

/// The listeners a service manager handed in (socket activation), if it
/// did: sigd then binds none of `--listen`.
fn handed_in_listeners() -> anyhow::Result<Vec<Listener>> {
    let handed_in = crate::systemd::listen_fds();
    let mut listeners = Vec::new();
    for (socket, name) in handed_in {
        let listener = Listener::from_fd(socket)
            .with_context(|| format!("cannot serve on the socket handed in as {name:?}"))?;
        listeners.push(listener);
    }
    if !listeners.is_empty() {
        info!(
            "{} sockets handed in: --listen is not used",
            listeners.len()
        );
    }
    Ok(listeners)
}

/// The tokens from --token-file or SIGD_TOKEN (not both), if any.
fn tokens(args: &ServeArgs, from_env: Option<String>) -> anyhow::Result<Option<HeldTokens>> {
    match (&args.token_file, from_env) {
        (Some(_), Some(_)) => {
            bail!("give the token either by --token-file or {TOKEN_ENV}, not both")
        }
        (Some(path), None) => Ok(Some(HeldTokens::from_file(path)?)),
        (None, Some(text)) => {
            let tokens = Tokens::parse(&text).context("unusable token")?;
            Ok(Some(HeldTokens::given(tokens)))
        }
        (None, None) => Ok(None),
    }
}

/// The group `--socket-group` names, by name or number.
fn group(name: &str) -> anyhow::Result<nix::unistd::Gid> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(nix::unistd::Gid::from_raw(gid));
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid),
        Ok(None) => bail!("--socket-group {name}: no such group"),
        Err(error) => bail!("--socket-group {name}: cannot look it up: {error}"),
    }
}

/// The runtime under the configured limits, and the first policy.
async fn first_policy(args: &ServeArgs) -> anyhow::Result<ActivePolicy> {
    let runtime = args.runtime.runtime()?;
    let source = match &args.policy {
        None => Source::Builtin,
        Some(path) => Source::File(path.clone()),
    };
    let policy = ActivePolicy::load(runtime, source, args.policy_settings.clone()).await?;
    Ok(policy.with_fail_mode(args.policy_fail_mode)?)
}

/// The shadow policy (`--shadow-policy`), with a runtime of its own (its
/// own limits and deadline clock), deciding on its own thread.
async fn shadow(args: &ServeArgs, metrics: &Arc<Metrics>) -> anyhow::Result<Option<Arc<Shadow>>> {
    let Some(path) = &args.shadow_policy else {
        return Ok(None);
    };
    let runtime = args.runtime.runtime()?;
    let source = Source::File(path.clone());
    let policy = ActivePolicy::load(runtime, source, args.shadow_settings.clone())
        .await
        .context("cannot load the shadow policy")?
        .as_shadow();
    info!(
        sha256 = policy.current().sha256(),
        "shadow policy {}",
        path.display()
    );
    policy.publish(metrics);
    let shadow = Shadow::start(Arc::new(policy), metrics.clone())
        .context("cannot start the shadow policy's thread")?;
    Ok(Some(Arc::new(shadow)))
}

/// Let sigd hold as many descriptors as the hard limit on open files
/// allows; the soft limit then in force.
fn raise_file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return u64::MAX;
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => hard,
        Err(error) => {
            warn!(%error, soft, "cannot raise the open-file limit");
            soft
        }
    }
}

/// Descriptors kept for everything but escalations: listeners, the event
/// loop, policy files, logs.
const RESERVED_FDS: u64 = 32;

/// The most escalations that may be pending under an open-file limit of
/// `limit`: `wanted`, unless their two descriptors each would take more
/// than half of what is not reserved; the rest stays for accepting
/// connections and opening targets.
fn escalations_that_fit(wanted: usize, limit: u64) -> usize {
    let fit = limit.saturating_sub(RESERVED_FDS) / 4;
    if (wanted as u64) <= fit {
        return wanted;
    }
    warn!(
        wanted,
        kept = fit,
        open_file_limit = limit,
        "the open-file limit leaves room for fewer escalations: --max-escalations lowered"
    );
    fit as usize
}

/// How often idle policy instances are looked at, to let the long-idle go.
const TRIM_EVERY: Duration = Duration::from_secs(5);

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
