//! sigd: delivers POSIX signals to processes over HTTP, speaking Tensorlake's
//! sandbox "Send Signal" API (`POST /api/v1/processes/{pid}/signal`).
//!
//! The decisions are a WebAssembly component (the *policy*, see `wit/`); this
//! crate is the host around it.
//!
//! # Layout
//!
//! A request travels through these modules, one role each:
//!
//! - [`cli`]: the command line (`sigd serve ...`), turned into a [`Config`].
//! - [`server`]: the [`Listener`](server::Listener): accept loop, connection cap,
//!   graceful shutdown; one hyper connection per accepted socket.
//! - [`http`]: one request: authenticate, route, cap the body, call the policy,
//!   and the one place errors become HTTP responses.
//! - [`auth`]: the bearer token and its constant-time check.
//! - [`audit`]: one audit event per signal request; [`metrics`]: what
//!   `GET /metrics` reports.
//! - [`reload`]: the active policy, swapped in place on SIGHUP or `--watch`
//!   after a load and a smoke call; in-flight requests keep the old one.
//! - [`policy`]: the wasm runtime: compile the component once (or take it
//!   precompiled from the build or the disk cache), instantiate it per request
//!   inside memory, stack and deadline limits, call its `handle-signal` export,
//!   check the answer. `policy/bindings.rs` fences the generated WIT bindings.
//! - [`guard`]: everything a policy can make the host do to processes
//!   (signal a process, group or tree; escalate; wait), each checked against
//!   the rules no policy can break (never pid <= 0, pid 1, sigd or its
//!   ancestors, its group, or an undeliverable signal).
//! - [`process`]: the process table: `/proc` for facts, handles that name
//!   one process each, and `SystemProcess::send`, the one place a signal is
//!   actually sent, through [`pidfd`].
//! - [`signal`]: which signal numbers Linux delivers here.
//! - [`native`]: the default policy's logic linked natively, the baseline
//!   the benchmarks measure the wasm policy against (`sigd-baseline`).
//! - [`simulated`]: a process table in memory, for trying policies without
//!   processes (tests, `sigd policy eval`).
//! - [`kit`]: the policy authoring kit, `sigd policy check|eval|test|wit`,
//!   and the conformance suite.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod guard;
pub mod http;
pub mod kit;
pub mod metrics;
pub mod native;
pub mod pidfd;
pub mod policy;
pub mod process;
pub mod reload;
pub mod server;
pub mod signal;
pub mod simulated;

pub use cli::Config;
