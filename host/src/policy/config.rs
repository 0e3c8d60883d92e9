//! The parts of wasmtime's configuration that shape compiled code. Shared with
//! `host/build.rs`, which precompiles the embedded default policy with it, so
//! the artifact it embeds matches the engine that loads it.

/// The configuration every policy is compiled under.
///
/// Epoch interruption puts a deadline check in every loop and function entry;
/// the limits that only matter at run time (stack size, memory, deadline) are
/// set by the runtime on top of this.
pub fn compile_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config
}
