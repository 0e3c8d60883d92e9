//! The paths of the policy components sigd's tests load, built by this
//! package's build script for the tests only.

/// The stricter example policy (`examples/policies/strict`).
pub const STRICT_POLICY: &str = env!("SIGD_POLICY_STRICT");
/// A policy that kills whatever its body lists (`tests/guests/hostile`).
pub const HOSTILE_POLICY: &str = env!("SIGD_POLICY_HOSTILE");
/// A policy that imports WASI and reports what it got (`tests/guests/wasi-probe`).
pub const WASI_PROBE_POLICY: &str = env!("SIGD_POLICY_WASI_PROBE");
/// The wasm boundary alone, for the `policy_cost` bench (`tests/guests/floor`).
pub const FLOOR_POLICY: &str = env!("SIGD_POLICY_FLOOR");
