//! Builds the default policy (`guest/`) into a component and embeds it:
//! `SIGD_POLICY_DEFAULT` names the component, `SIGD_POLICY_DEFAULT_SHA256`
//! its sha256, and `SIGD_POLICY_DEFAULT_COMPILED` its machine code,
//! precompiled here for any CPU of the target's architecture under the same
//! wasmtime configuration the runtime uses (`src/policy/config.rs`), so a
//! fresh sigd answers its first request without compiling anything, and the
//! slim build (no compiler) has a policy to run. `SIGD_TARGET` is the target
//! triple. The test guests are built apart, for the tests only
//! (`tests/guests/build.rs`).

use std::env;
use std::path::Path;

#[path = "build/wasm_guests.rs"]
mod wasm_guests;

#[path = "src/policy/config.rs"]
mod config;

fn main() {
    let root = wasm_guests::workspace_root();
    let target = env::var("TARGET").expect("cargo sets TARGET");
    println!("cargo:rustc-env=SIGD_TARGET={target}");
    // sigd is a static PIE: it relocates itself at start. Packed (RELR)
    // relative relocations take 430 KB less of the binary to read, 0.3 ms
    // less at each start (glibc 2.36 and later apply them; Debian 12 has it).
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    for watched in ["wit", "guest", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let built = wasm_guests::build(&[("DEFAULT", "sigd-policy", "sigd_policy")]);
    let component = std::fs::read(&built[0]).expect("read the default policy");
    println!(
        "cargo:rustc-env=SIGD_POLICY_DEFAULT_SHA256={}",
        sha256_hex(&component)
    );
    let compiled = Path::new(&built[0]).with_extension("cwasm");
    std::fs::write(&compiled, precompile(&component, &target)).expect("write compiled policy");
    println!(
        "cargo:rustc-env=SIGD_POLICY_DEFAULT_COMPILED={}",
        compiled.display()
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The default policy compiled for any CPU of `target`'s architecture: the
/// slim build, which cannot compile, runs it wherever it runs.
fn precompile(component: &[u8], target: &str) -> Vec<u8> {
    config::portable_config(target)
        .and_then(|config| wasmtime::Engine::new(&config))
        .and_then(|engine| engine.precompile_component(component))
        .unwrap_or_else(|e| panic!("precompile the default policy for {target}: {e:?}"))
}
