//! Builds the policy components this repository ships, so the host can embed
//! the default one and the tests can load the others.
//!
//! Each policy crate is compiled for `wasm32-unknown-unknown` by a nested cargo
//! (into `target/wasm-guests`, apart from the host's own build) and turned into
//! a component with `wit-component`. The components land in `OUT_DIR`, and
//! `SIGD_POLICY_<NAME>` names each path at compile time.
//!
//! Two toolchains can build the guests, tried in this order:
//! 1. the host's own rustc, when its `wasm32-unknown-unknown` std is installed
//!    (`rustup target add wasm32-unknown-unknown`);
//! 2. Debian's `rustc-web` (`/usr/bin/rustc`) with `rust-web-src`, building std
//!    from source (`-Zbuild-std`), linking with `rust-lld`.
//!
//! `scripts/wasm-toolchain.sh` (run by `make`) installs the second when neither
//! is there.
//!
//! The default policy is also compiled to machine code here, under the same
//! wasmtime configuration the runtime uses (`src/policy/config.rs`), so a
//! fresh sigd answers its first request without compiling anything.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/policy/config.rs"]
mod config;

/// (name in `SIGD_POLICY_<NAME>`, cargo package, cargo lib name)
const POLICIES: &[(&str, &str, &str)] = &[
    ("DEFAULT", "sigd-policy", "sigd_policy"),
    ("STRICT", "sigd-policy-strict", "sigd_policy_strict"),
    (
        "HOSTILE",
        "sigd-test-guest-hostile",
        "sigd_test_guest_hostile",
    ),
    (
        "WASI_PROBE",
        "sigd-test-guest-wasi-probe",
        "sigd_test_guest_wasi_probe",
    ),
];

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf();
    for watched in [
        "wit",
        "guest",
        "examples/policies",
        "tests/guests",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=SIGD_WASM_TOOLCHAIN");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // <target>/<profile>/build/sigd-<hash>/out -> <target>/wasm-guests, shared by
    // every profile so the guests (always built in release) are built once.
    let guest_target = out_dir
        .ancestors()
        .nth(4)
        .expect("OUT_DIR is deep inside the target directory")
        .join("wasm-guests");

    let toolchain = Toolchain::find();
    for (name, package, lib) in POLICIES {
        let core = toolchain.build(&root, &guest_target, package, lib);
        let component = componentize(&core);
        let path = out_dir.join(format!("{lib}.component.wasm"));
        std::fs::write(&path, &component).expect("write component");
        println!("cargo:rustc-env=SIGD_POLICY_{name}={}", path.display());
        if *name == "DEFAULT" {
            println!(
                "cargo:rustc-env=SIGD_POLICY_DEFAULT_SHA256={}",
                sha256_hex(&component)
            );
            let compiled = out_dir.join(format!("{lib}.cwasm"));
            std::fs::write(&compiled, precompile(&component)).expect("write compiled policy");
            println!(
                "cargo:rustc-env=SIGD_POLICY_DEFAULT_COMPILED={}",
                compiled.display()
            );
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The default policy compiled for this machine, or nothing when building
/// for another one (the runtime then compiles it at start-up).
fn precompile(component: &[u8]) -> Vec<u8> {
    if env::var("TARGET").ok() != env::var("HOST").ok() {
        return Vec::new();
    }
    wasmtime::Engine::new(&config::compile_config())
        .and_then(|engine| engine.precompile_component(component))
        .unwrap_or_else(|e| panic!("precompile the default policy: {e:?}"))
}

/// How to run cargo for the wasm target.
enum Toolchain {
    /// The host's rustc has the wasm std: plain cargo.
    Installed { cargo: PathBuf, rustc: PathBuf },
    /// Debian's rustc-web: std built from source.
    Debian,
}

impl Toolchain {
    fn find() -> Toolchain {
        let cargo = PathBuf::from(env::var_os("CARGO").expect("cargo sets CARGO"));
        let rustc = PathBuf::from(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
        let forced = env::var("SIGD_WASM_TOOLCHAIN").ok();
        if forced.as_deref() != Some("debian") && has_wasm_std(&rustc) {
            return Toolchain::Installed { cargo, rustc };
        }
        if Path::new("/usr/bin/cargo").exists()
            && sysroot(Path::new("/usr/bin/rustc"))
                .is_some_and(|s| s.join("lib/rustlib/src/rust/library").is_dir())
        {
            return Toolchain::Debian;
        }
        panic!(
            "\n\nno Rust toolchain here can build wasm32-unknown-unknown policies.\n\
             Fix: run `scripts/wasm-toolchain.sh` (or `make`), which installs Debian's \
             rustc-web, cargo-web, rust-web-src and lld; or `rustup target add {WASM_TARGET}`.\n\n"
        );
    }

    /// Build one policy crate; returns the core module's path.
    fn build(&self, root: &Path, target_dir: &Path, package: &str, lib: &str) -> PathBuf {
        let mut cmd = match self {
            Toolchain::Installed { cargo, rustc } => {
                let mut cmd = Command::new(cargo);
                cmd.env("RUSTC", rustc);
                cmd
            }
            Toolchain::Debian => Command::new("/usr/bin/cargo"),
        };
        // Forget the outer build's settings (wrappers such as clippy-driver,
        // rustflags for the host target, target dir), keep its jobserver.
        for (key, _) in env::vars_os() {
            let key = key.to_string_lossy();
            let outer_cargo =
                key.starts_with("CARGO_") && !matches!(&*key, "CARGO_HOME" | "CARGO_MAKEFLAGS");
            if outer_cargo || key.starts_with("RUSTC_") || key == "RUSTFLAGS" {
                cmd.env_remove(&*key);
            }
        }
        cmd.current_dir(root)
            // `rustc --crate-type cdylib`: the crates are plain libraries
            // natively (their logic is tested there); only here a wasm module.
            .args(["rustc", "--release", "--locked", "--target", WASM_TARGET])
            .args(["-p", package, "--crate-type", "cdylib", "--target-dir"])
            .arg(target_dir)
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
            .env("CARGO_PROFILE_RELEASE_LTO", "true")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
            .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_STRIP", "true");
        if let Toolchain::Debian = self {
            cmd.env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1")
                .arg("-Zbuild-std=std,panic_abort");
        }
        let status = cmd.status().expect("run cargo for the wasm policies");
        assert!(status.success(), "building policy {package} failed");
        target_dir
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{lib}.wasm"))
    }
}

fn sysroot(rustc: &Path) -> Option<PathBuf> {
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn has_wasm_std(rustc: &Path) -> bool {
    sysroot(rustc).is_some_and(|s| s.join("lib/rustlib").join(WASM_TARGET).join("lib").is_dir())
}

/// Wrap a core module (with wit-bindgen's type section) into a component.
fn componentize(core: &Path) -> Vec<u8> {
    let module = std::fs::read(core).unwrap_or_else(|e| panic!("read {}: {e}", core.display()));
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("turn {} into a component: {e:?}", core.display()))
}
