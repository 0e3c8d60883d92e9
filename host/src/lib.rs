//! sigd: delivers POSIX signals to processes over HTTP, speaking Tensorlake's
//! sandbox "Send Signal" API (`POST /api/v1/processes/{pid}/signal`).
//!
//! The decisions are a WebAssembly component (the *policy*, see `wit/`); this
//! crate is the host around it. `ARCHITECTURE.md` at the repository's root
//! is the map; in short, a request travels through these modules, in order:
//!
//! - [`server`]: the [`Listener`](server::Listener)s, the accept loop, the
//!   connection cap and graceful shutdown; one hyper connection per socket.
//!   [`connections`] keeps the cap, making room by ending the connection
//!   idle longest. [`caller`] finds who is at the other end of each one.
//! - [`http`]: one request: authenticate ([`auth`]), route, cap the body,
//!   hand it to the [`Decide`](decision::Decide)r, answer; the one place host
//!   failures become HTTP responses. Then [`metrics`] and [`audit`].
//! - [`reload`]: the active policy, the [`Decide`](decision::Decide)r of
//!   `sigd serve`, swapped on SIGHUP or `--watch`.
//! - [`policy`]: the wasm runtime: compiled component, instance pool,
//!   limits, the answer check, and the guest's imports.
//! - [`host_calls`]: every host call a policy makes, written once, each
//!   noted as an action for the audit log.
//! - [`guard`]: the rules no policy can break (never pid <= 0, pid 1, sigd,
//!   its ancestors or its group, never an undeliverable signal), scopes and
//!   waiting; [`escalations`] owns the escalations it schedules.
//! - [`process`]: process facts, the Linux process table (`/proc`, pidfds)
//!   and the pidfd syscalls; `SystemProcess::send` is where a signal is sent.
//!
//! Around that path: [`cli`] (the flags), [`config`] (the same settings
//! from a `--config` file and `SIGD_*` variables), [`options`] (the flags `serve` and
//! `policy` share), [`serve`] (the composition root of `sigd serve`),
//! [`logs`] (stderr, with syslog priorities for the journal),
//! [`privileges`] (the capabilities sigd keeps, settled before any thread
//! starts), [`systemd`] (readiness, and sockets a service manager hands in),
//! [`decision`] (what a decider hands back), [`record`] (decision
//! records, in the audit log) and [`replay`] (deciding one again, from its
//! record; [`shadow`] does so for a candidate beside the active policy), [`signal`] (which signals Linux
//! delivers here) and [`kit`] (`sigd policy check|eval|test|wit`, with its
//! simulated process table).

pub mod audit;
pub mod auth;
pub mod caller;
pub mod cli;
pub mod config;
pub mod connections;
pub mod decision;
pub mod escalations;
pub mod guard;
pub mod host_calls;
pub mod http;
pub mod kit;
pub mod logs;
pub mod metrics;
pub mod options;
pub mod policy;
mod poll;
pub mod privileges;
pub mod process;
pub mod record;
pub mod reload;
pub mod replay;
pub mod serve;
pub mod server;
pub mod shadow;
pub mod shares;
pub mod signal;
pub mod systemd;
pub mod trusted_file;
