//! The command line: `sigd serve` and its flags, `sigd policy ...`. Only
//! definitions and their `--help` text; `serve.rs` runs the daemon, `kit/`
//! the policy commands.

use crate::kit::PolicyCommand;
use crate::options::RuntimeOptions;
use crate::reload::FailMode;
use crate::server::{Endpoint, TransportLimits};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// What `--version` prints: the version, the built-in policy's sha256,
/// and whether this is the slim build (no compiler).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (built-in policy sha256 ",
    env!("SIGD_POLICY_DEFAULT_SHA256"),
    ")",
    slim!()
);

#[cfg(feature = "compiler")]
macro_rules! slim {
    () => {
        ""
    };
}

#[cfg(not(feature = "compiler"))]
macro_rules! slim {
    () => {
        ", slim: runs only precompiled policies"
    };
}
use slim;

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
    Serve(ServeArgs),
    /// Write, try and verify policies: check, compile, eval, test, replay, wit.
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

/// How `sigd serve` runs. Every flag may also be set in the `--config`
/// file (its name without the dashes is the key) or as `SIGD_<FLAG>`
/// (`SIGD_MAX_CONNECTIONS`); a flag wins, then the environment, then the
/// file (see `config.rs`).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// A TOML file of settings, one key per flag (`max-connections = 2048`,
    /// `listen = ["127.0.0.1:9000"]`); an unknown key stops start-up.
    /// Flags and SIGD_* variables win over it.
    #[arg(long, value_name = "FILE", env = "SIGD_CONFIG")]
    pub config: Option<PathBuf>,

    /// Print the effective configuration (from flags, SIGD_* variables,
    /// the --config file and defaults, each saying which), then exit.
    #[arg(long)]
    pub print_config: bool,

    /// Where to listen: HOST:PORT (127.0.0.1:9000, [::1]:9000) or
    /// unix:/PATH. Repeat to listen on several. Without a token only
    /// loopback addresses and Unix sockets are allowed.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    pub listen: Vec<Endpoint>,

    /// File mode of Unix sockets, in octal. The socket has it (and its
    /// group) from the first instant anyone can reach it.
    #[arg(long, value_name = "MODE", default_value = "660", value_parser = octal)]
    pub socket_mode: u32,

    /// Group of Unix sockets (a name or a number); sigd's own by default.
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// An origin (`scheme://host[:port]`, exactly as browsers send it) whose
    /// web pages may call sigd; repeat for more. Requests carrying any other
    /// `Origin` header are refused with 403, so a page a local user visits
    /// cannot signal processes, nor can a rebound DNS name.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// Log format. `RUST_LOG` filters what is logged (default: info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Policy component (.wasm), or policy precompiled by `sigd policy
    /// compile` (.cwasm; the slim build runs only these), to load instead
    /// of the built-in default policy.
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,

    /// The policy's settings, a JSON file, given to every instance before
    /// its first request (for the default policy: who may send what, with
    /// whose authority; see docs/policy-authoring.md). Read again with the
    /// policy on SIGHUP (and with --watch); settings the policy rejects stop
    /// start-up, or on a reload keep the last good policy and settings.
    #[arg(long, value_name = "PATH")]
    pub policy_settings: Option<PathBuf>,

    /// What a policy's fault (a trap, a limit it hit, an answer sigd may not
    /// pass on) answers: `closed` refuses (500 INTERNAL); `fallback` lets
    /// the built-in default policy (without settings) decide the request
    /// instead, if the faulty policy had signalled and scheduled nothing.
    /// Either way the fault is logged and counted.
    #[arg(long, value_enum, default_value_t = FailMode::Closed, value_name = "MODE")]
    pub policy_fail_mode: FailMode,

    /// A candidate policy component (.wasm) to run in the shadow of the
    /// active one: it decides every decided request too, after the answer
    /// is sent, from the request's decision record (it can look at what the
    /// active policy saw, and signal, escalate or wait for nothing), at the
    /// lowest CPU priority and within 1/20 of one CPU (under heavier traffic
    /// it decides a sample). Disagreements are logged (target sigd::shadow)
    /// and counted (/metrics, /healthz). Reloaded with the active policy;
    /// never promoted by sigd.
    #[arg(long, value_name = "PATH")]
    pub shadow_policy: Option<PathBuf>,

    /// The shadow policy's settings, a JSON file (as --policy-settings).
    #[arg(long, value_name = "PATH", requires = "shadow_policy")]
    pub shadow_settings: Option<PathBuf>,

    /// File holding the bearer tokens callers must present as
    /// `Authorization: Bearer <token>`: one token alone (principal
    /// "default"), or `NAME TOKEN` lines, each naming its principal. Only
    /// sigd's user (or root) may own it, and no one else may read or write
    /// it. The environment variable SIGD_TOKEN may hold a token instead.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, default_value_t = crate::http::MAX_BODY_BYTES, value_name = "BYTES")]
    pub max_body_bytes: usize,

    /// Most connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = TransportLimits::default().max_connections, value_name = "N")]
    pub max_connections: usize,

    /// Most escalations pending at once; past it, an escalation is refused
    /// (the signal asked for first is still sent). Each holds two file
    /// descriptors: sigd lowers this, saying so, if the open-file limit
    /// leaves no room for them.
    #[arg(long, default_value_t = crate::escalations::DEFAULT_MAX_PENDING, value_name = "N")]
    pub max_escalations: usize,

    /// Most requests waiting for an exit (`wait_ms`) at once; past it a
    /// wait ends at once and the answer says it was cut short.
    #[arg(long, default_value_t = crate::guard::DEFAULT_MAX_WAITS, value_name = "N")]
    pub max_waits: usize,

    /// Seconds a client may take to send a request's headers; also how long
    /// a keep-alive connection may stay idle.
    #[arg(long, default_value_t = TransportLimits::default().header_timeout.as_secs(), value_name = "SECONDS")]
    pub header_timeout: u64,

    /// Seconds a client may take to send a request's body once its headers
    /// are in; a slower or unfinished body is answered 408 and the
    /// connection closed.
    #[arg(long, default_value_t = crate::http::BODY_TIMEOUT.as_secs(), value_name = "SECONDS")]
    pub body_timeout: u64,

    /// Most headers in a request; more get 431.
    #[arg(long, default_value_t = TransportLimits::default().max_headers, value_name = "N")]
    pub max_headers: usize,

    /// Most bytes of request line and headers; more get 431 (at least 8192).
    #[arg(long, default_value_t = TransportLimits::default().max_header_bytes, value_name = "BYTES")]
    pub max_header_bytes: usize,

    /// Seconds in-flight requests may take to finish after SIGTERM or SIGINT.
    #[arg(long, default_value_t = TransportLimits::default().drain.as_secs(), value_name = "SECONDS")]
    pub drain: u64,

    /// Reload the policy file or its settings when either changes (both
    /// are also reloaded on SIGHUP).
    #[arg(long)]
    pub watch: bool,

    /// Keep every capability sigd was started with. By default it keeps
    /// only what it needs, of what it was given: CAP_KILL (to signal other
    /// users' processes), CAP_SYS_PTRACE (to see how they ended),
    /// CAP_NET_BIND_SERVICE to bind a port below 1024 and CAP_CHOWN for
    /// --socket-group; it drops the rest and sets no_new_privs either way.
    #[arg(long)]
    pub keep_capabilities: bool,

    #[command(flatten)]
    pub runtime: RuntimeOptions,
}

/// Parse an octal file mode such as `660`.
fn octal(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("{text:?} is not an octal file mode such as 660"))
}
