//! The policy runtime: compile a policy component once, then answer each
//! request from an instance of it, inside limits.
//!
//! - [`runtime`]: the [`Runtime`] all policies share (engine, linker, epoch
//!   ticker, compiled cache) and the loaded [`Policy`], whose
//!   [`call`](Policy::call) decides one request.
//! - `pool`: the instances of a policy: reused when they answered well (see
//!   [`Isolation`]), each with its own store.
//! - [`answer`]: the check of what a policy answers, parsed once.
//! - `imports`: the `host` interface a guest imports, over
//!   [`HostCalls`](crate::host_calls::HostCalls), and an empty WASI.
//! - `bindings`: the generated WIT bindings, fenced, and their conversions.
//! - `limiter`, `ticker`, `guest_output`: the memory cap, the deadline's
//!   clock, and the guest's captured stdout and stderr.
//! - [`precompiled`]: policies compiled ahead of time (`sigd policy
//!   compile`), what a build without a compiler runs.
//! - [`cache`]: compiled policies on disk; [`config`]: what shapes compiled code.

pub mod answer;
mod bindings;
pub mod cache;
pub mod config;
mod guest_output;
mod imports;
mod limiter;
mod pool;
pub mod precompiled;
pub mod runtime;
mod ticker;

pub use answer::Answer;
pub use cache::{Cache, CacheError};
pub use runtime::{Policy, Runtime, Unlinked};

use crate::caller::Caller;
use crate::host_calls::Headers;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The WIT package policies are written against, and its version.
pub const WIT_PACKAGE: &str = "sigd:policy";
pub const WIT_VERSION: &str = "0.3.2";
/// The WIT text itself (`wit/policy.wit`), for `sigd policy wit`.
pub const WIT: &str = include_str!("../../../wit/policy.wit");

/// The default policy (`guest/`), built into the binary.
pub static DEFAULT_POLICY: &[u8] = include_bytes!(env!("SIGD_POLICY_DEFAULT"));
/// Its sha256, taken when it was built (`host/build.rs`).
pub const DEFAULT_POLICY_SHA256: &str = env!("SIGD_POLICY_DEFAULT_SHA256");

/// Whether `bytes` are the built-in policy's own (the bytes of the binary,
/// not a copy: nothing to compare or hash).
pub(crate) fn is_builtin(bytes: &[u8]) -> bool {
    std::ptr::eq(bytes, DEFAULT_POLICY)
}

/// What one policy call may use.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Largest linear memory, in bytes; growing past it traps.
    pub memory_bytes: usize,
    /// The guest's own CPU time a call may take before it traps (time it
    /// spends suspended, waiting or preempted does not count).
    pub deadline: Duration,
    /// Wall-clock time a call may take in all, waits included: the backstop
    /// for a policy that waits in the host (or in WASI) again and again.
    pub wall_clock: Duration,
    /// Largest wasm stack, in bytes.
    pub stack_bytes: usize,
    /// Largest response body, in bytes.
    pub response_bytes: usize,
    /// Largest stdout (and, apart, stderr) a call may write, in bytes;
    /// more is dropped.
    pub output_bytes: usize,
}

impl Default for CallLimits {
    fn default() -> CallLimits {
        CallLimits {
            memory_bytes: 16 << 20,
            deadline: Duration::from_millis(50),
            wall_clock: crate::guard::MAX_WAIT + Duration::from_secs(5),
            stack_bytes: 512 << 10,
            response_bytes: 64 << 10,
            output_bytes: 64 << 10,
        }
    }
}

/// A limit a call ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Limit {
    #[error("memory")]
    Memory,
    #[error("deadline")]
    Deadline,
    #[error("wall-clock")]
    WallClock,
    #[error("stack")]
    Stack,
}

/// One request as a policy receives it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The `{pid}` path segment, as it arrived.
    pub pid: String,
    /// The body, as it arrived.
    pub body: Vec<u8>,
    /// Its headers, but `authorization` (the policy asks for those it needs).
    pub headers: Headers,
    /// Who is asking.
    pub caller: Caller,
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot set up the wasm engine: {0:#}")]
    Engine(wasmtime::Error),
    #[error("is not a WebAssembly component: {0:#}")]
    NotAComponent(wasmtime::Error),
    #[error("does not fit sigd's policy world (sigd:policy/policy@{WIT_VERSION}): {0:#}")]
    Incompatible(wasmtime::Error),
    /// A component, and this build cannot compile.
    #[error(
        "is a WebAssembly component, and this sigd is the slim build, which runs only \
         policies compiled ahead of time: precompile it with `sigd policy compile` on a full \
         build of sigd {version}",
        version = env!("CARGO_PKG_VERSION")
    )]
    NoCompiler,
    #[error("{0}")]
    Precompiled(#[from] precompiled::PrecompiledError),
    /// The built-in policy's machine code does not suit this machine, and
    /// this build cannot compile it.
    #[error("has machine code that does not suit this machine: {0:#}")]
    BuiltIn(wasmtime::Error),
    /// Its initial memory could not be set up (after a few tries).
    #[error("cannot have its initial memory set up: {}", every_cause(.0))]
    MemoryImage(wasmtime::Error),
}

/// `error` and each of its causes, the OS's errno too ("cannot add seals to
/// the memfd: Device or resource busy (os error 16)"), which `{:#}` leaves
/// out of a wasmtime error made from another error type.
fn every_cause(error: &wasmtime::Error) -> String {
    let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
    causes.join(": ")
}

/// Why a policy call gave no usable answer. Each becomes a 500 `INTERNAL`.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("policy hit its {0} limit")]
    Limit(Limit),
    /// What wasmtime says, with the function names the component's name
    /// section gives (the policy's own words): one line, bounded.
    #[error("policy trapped: {}", crate::logs::contained(&format!("{:#}", .0)))]
    Trap(wasmtime::Error),
    #[error("policy answered status {0}, outside 200..=599")]
    BadStatus(u16),
    #[error("policy answered a {0}-byte body, over the limit")]
    TooLarge(usize),
    #[error("policy answered a body that is not JSON: {0}")]
    BadBody(serde_json::Error),
    /// The policy's `configure` rejected its settings, with this sentence
    /// (one line, bounded).
    #[error("policy rejected its settings: {}", crate::logs::contained(.0))]
    Settings(String),
}

/// Where a loaded policy's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiled {
    /// Compiled into the binary at build time (the default policy).
    AtBuild,
    /// Read from a file `sigd policy compile` wrote.
    Ahead,
    /// Read from the compiled-policy cache.
    FromCache,
    /// Compiled when loaded.
    OnLoad,
}

/// How much one request's policy call is kept apart from another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Reuse an instance that answered well (~3 µs a call instead of ~60):
    /// a guest may keep state from one request to the next, but only its
    /// own, in its own memory. The host's per-call state (the process
    /// table, headers, clock, actions) is reset per call. An instance is
    /// never reused if it trapped or answered badly, still holds a process
    /// handle, or its memory has grown through three quarters of its room
    /// under the cap since its first call.
    ReuseSound,
    /// A fresh instance for every request: nothing survives a call.
    FreshInstance,
}

/// The sha256 of `bytes`, in lower-case hex: how sigd names a policy.
pub fn sha256_hex(bytes: &[u8]) -> String {
    match is_builtin(bytes) {
        true => DEFAULT_POLICY_SHA256.to_string(),
        false => hex(&Sha256::digest(bytes)),
    }
}

/// The name of the policy in `bytes`: the sha256 of its component, which a
/// precompiled policy's header gives.
pub fn policy_sha256(bytes: &[u8]) -> String {
    match precompiled::Precompiled::parse(bytes) {
        Some(Ok(precompiled)) => precompiled.header.sha256,
        _ => sha256_hex(bytes),
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in policy is named without hashing it, by the sha256 its
    /// build took, and that is the sha256 of its bytes; a copy is hashed.
    #[test]
    fn the_builtin_policy_is_named_by_its_sha256() {
        let copy = DEFAULT_POLICY.to_vec();
        assert!(is_builtin(DEFAULT_POLICY) && !is_builtin(&copy));
        assert_eq!(sha256_hex(DEFAULT_POLICY), sha256_hex(&copy));
        assert_eq!(sha256_hex(&copy), hex(&Sha256::digest(DEFAULT_POLICY)));
    }
}
