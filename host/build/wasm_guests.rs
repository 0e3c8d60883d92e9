//! Building policy crates into components, shared by the build scripts that
//! need them: `host/build.rs` (the default policy, embedded in sigd) and
//! `tests/guests/build.rs` (the test guests and the strict example, for the
//! tests only). Included by path, so both use this one copy.
//!
//! Each crate is compiled for `wasm32-unknown-unknown` by a nested cargo
//! (into `<target>/wasm-guests`, apart from the outer build) and turned into
//! a component with `wit-component`. Which toolchain compiles them is
//! decided by `scripts/wasm-toolchain.sh --which`, the one probe (`make`
//! runs the same script to install a toolchain where none is found).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// One policy crate to build: (name in `SIGD_POLICY_<NAME>`, cargo
/// package, cargo lib name).
pub type Guest = (&'static str, &'static str, &'static str);

/// The workspace's root, from a package one level below it.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    manifest
        .ancestors()
        .find(|dir| dir.join("wit/policy.wit").is_file())
        .expect("the package sits inside sigd's workspace")
        .to_path_buf()
}

/// Build each of `guests` into a component in `OUT_DIR`, set
/// `SIGD_POLICY_<NAME>` to its path for the package being built, and return
/// the components' paths.
pub fn build(guests: &[Guest]) -> Vec<PathBuf> {
    let root = workspace_root();
    println!("cargo:rerun-if-env-changed=SIGD_WASM_TOOLCHAIN");
    println!(
        "cargo:rerun-if-changed={}",
        root.join("scripts/wasm-toolchain.sh").display()
    );
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // <target>/<profile>/build/<pkg>-<hash>/out -> <target>/wasm-guests, shared
    // by every profile and package so each guest is built once.
    let guest_target = out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "build"))
        .and_then(|build| build.parent()?.parent())
        .expect("OUT_DIR is inside the target directory")
        .join("wasm-guests");
    let toolchain = Toolchain::find(&root);
    guests
        .iter()
        .map(|(name, package, lib)| {
            let core = toolchain.build(&root, &guest_target, package, lib);
            let path = out_dir.join(format!("{lib}.component.wasm"));
            std::fs::write(&path, componentize(&core)).expect("write component");
            println!("cargo:rustc-env=SIGD_POLICY_{name}={}", path.display());
            path
        })
        .collect()
}

/// How to run cargo for the wasm target.
enum Toolchain {
    /// The host's rustc has the wasm std: plain cargo.
    Installed { cargo: PathBuf, rustc: PathBuf },
    /// Debian's rustc-web: std built from source.
    Debian,
}

impl Toolchain {
    /// The toolchain `scripts/wasm-toolchain.sh --which` names.
    fn find(root: &Path) -> Toolchain {
        let cargo = PathBuf::from(env::var_os("CARGO").expect("cargo sets CARGO"));
        let rustc = PathBuf::from(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
        let probe = Command::new("bash")
            .arg(root.join("scripts/wasm-toolchain.sh"))
            .arg("--which")
            .env("RUSTC", &rustc)
            .output()
            .expect("run scripts/wasm-toolchain.sh");
        match String::from_utf8_lossy(&probe.stdout).trim() {
            "installed" if probe.status.success() => Toolchain::Installed { cargo, rustc },
            "debian" if probe.status.success() => Toolchain::Debian,
            _ => panic!("\n\n{}\n", String::from_utf8_lossy(&probe.stderr).trim()),
        }
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

/// Wrap a core module (with wit-bindgen's type section) into a component.
fn componentize(core: &Path) -> Vec<u8> {
    let module = std::fs::read(core).unwrap_or_else(|e| panic!("read {}: {e}", core.display()));
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("turn {} into a component: {e:?}", core.display()))
}
