//! The parts of wasmtime's configuration that shape compiled code. Shared with
//! `host/build.rs`, which precompiles the embedded default policy with it, and
//! with `sigd policy compile`: so the machine code they write matches the
//! engine that loads it.

/// The configuration every policy is compiled under (for this machine's
/// CPU, when it compiles).
///
/// Epoch interruption puts a deadline check in every loop and function entry;
/// the limits that only matter at run time (stack size, memory, deadline) are
/// set by the runtime on top of this.
pub fn compile_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config
}

/// [`compile_config`] for any CPU of `target`'s architecture (its baseline
/// features only, none inferred from the compiling machine): how the
/// built-in policy is compiled, and `sigd policy compile` by default, so the
/// code runs on every machine of a fleet.
pub fn portable_config(target: &str) -> wasmtime::Result<wasmtime::Config> {
    let mut config = compile_config();
    config.target(target)?;
    Ok(config)
}
