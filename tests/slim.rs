//! The slim build (`make build-slim`: no compiler), the binary for VM
//! images: it serves the built-in policy and policies precompiled by `sigd
//! policy compile` on a full build, swaps them while it serves, and refuses
//! with one sentence saying why what it cannot run: a component it would
//! have to compile, and machine code compiled for another engine (version,
//! configuration, CPU features), damaged, or in a file others may write.
//! `make test` builds it and names it in `SIGD_SLIM`.

mod common;

use common::*;
use nix::sys::signal::Signal;
use sigd::policy::precompiled::{Cpu, Precompiled, TARGET};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The slim binary, stripped as it ships.
fn slim() -> PathBuf {
    let path = std::env::var_os("SIGD_SLIM").expect(
        "SIGD_SLIM names the slim binary: `make build-slim` builds it (`make test` does both)",
    );
    PathBuf::from(path)
}

/// `sigd serve` of `binary` on a free loopback port, `RUST_LOG=info`.
fn serve(binary: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--no-cache"])
        .args(args)
        .env_remove("SIGD_TOKEN")
        .env("RUST_LOG", "info");
    command
}

/// `component` precompiled by the full build's `sigd policy compile` into
/// `dir`, as `name`.
fn compiled(dir: &Path, component: &str, name: &str) -> PathBuf {
    let output = dir.join(name);
    let out = Command::new(SIGD)
        .args(["policy", "compile", component, "-o"])
        .arg(&output)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    output
}

/// The sha256 of the file at `path`, in hex.
fn sha256_of(path: &str) -> String {
    sigd::policy::sha256_hex(&std::fs::read(path).unwrap())
}

/// The slim binary is at most 10 MiB, says it is slim, serves the built-in
/// policy (a real SIGTERM ends a real process), and names it by the same
/// sha256 as the full build.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn serves_the_built_in_policy() {
    require_private_pid_namespace();
    let size = std::fs::metadata(slim()).unwrap().len();
    assert!(size <= 10 << 20, "the slim binary is {size} bytes");
    let version = Command::new(slim()).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(version.contains("slim"), "{version}");

    let sigd = Sigd::start_command(serve(&slim(), &[]));
    let mut child = target();
    sigd.signal(child.id(), r#"{"signal": 15}"#).assert(200, "");
    assert_killed_by(&mut child, 15);
    let health = sigd.get("/healthz").json();
    assert_eq!(health["policy"]["sha256"], sha256_of(DEFAULT_POLICY_FILE));
    sigd.expect_log("compiled=AtBuild");
}

/// The slim build idles in at most 7 MiB of resident memory once it has
/// answered a signal request, with two worker threads (a small VM's; each
/// more adds about 15 KiB). The code it runs is laid out together
/// (`scripts/hot-functions.sh`): the kernel maps a binary's cached pages a
/// window (`fault_around_bytes`, 64 KiB) or a large folio at a time, and
/// the same code spread over the whole binary kept nearly all of it
/// resident (8.6 MiB).
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn idles_in_at_most_7_mib() {
    require_private_pid_namespace();
    let mut command = serve(&slim(), &[]);
    command.env("TOKIO_WORKER_THREADS", "2");
    let sigd = Sigd::start_command(command);
    let mut child = target();
    sigd.signal(child.id(), r#"{"signal": 15}"#).assert(200, "");
    assert_killed_by(&mut child, 15);
    let rss = sigd.rss_kib();
    let status = std::fs::read_to_string(format!("/proc/{}/status", sigd.pid())).unwrap();
    let parts: Vec<&str> = status.lines().filter(|l| l.starts_with("Rss")).collect();
    assert!(
        rss <= 7 << 10,
        "the idle slim build holds {rss} KiB: {parts:?}"
    );
}

/// A policy precompiled on a full build serves in the slim one under its
/// component's sha256, and another swaps in on SIGHUP while it serves: the
/// strict example refuses SIGUSR1, then the default policy delivers it.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn serves_and_swaps_precompiled_policies() {
    require_private_pid_namespace();
    let dir = scratch("slim_swap");
    let strict = compiled(&dir, STRICT_POLICY, "strict.cwasm");
    let default = compiled(&dir, DEFAULT_POLICY_FILE, "default.cwasm");
    let active = dir.join("policy.cwasm");
    std::fs::copy(&strict, &active).unwrap();

    let sigd = Sigd::start_command(serve(&slim(), &["--policy", active.to_str().unwrap()]));
    let health = sigd.get("/healthz").json();
    assert_eq!(health["policy"]["sha256"], sha256_of(STRICT_POLICY));
    let mut child = target();
    sigd.signal(child.id(), r#"{"signal": 10}"#)
        .assert(403, "SIGNAL_NOT_ALLOWED");

    std::fs::rename(&default, &active).unwrap();
    sigd.send(Signal::SIGHUP);
    sigd.expect_log("policy swapped");
    let health = sigd.get("/healthz").json();
    assert_eq!(health["policy"]["sha256"], sha256_of(DEFAULT_POLICY_FILE));
    assert_eq!(health["last_reload"]["outcome"], "swapped");
    sigd.signal(child.id(), r#"{"signal": 10}"#).assert(200, "");
    assert_killed_by(&mut child, 10);
}

/// What the slim build cannot run stops it at start-up, with a sentence
/// that says why and what to do: a component (it cannot compile), machine
/// code compiled by another version of its engine, under another engine
/// configuration, for CPU features this machine lacks, damaged, in a file
/// others may write, or in a file not named `.cwasm` (passing for a
/// component). The full build refuses such machine code alike, and `sigd
/// policy check` will not vet (and so run) a disguised one.
#[test]
#[ignore = "needs the slim build: make test builds it (SIGD_SLIM)"]
fn refuses_what_it_cannot_run() {
    let dir = scratch("slim_refuse");
    let strict_wasm = std::fs::read(STRICT_POLICY).unwrap();
    // The strict example compiled as `config` says, in sigd's file format.
    let precompiled = |name: &str, config: wasmtime::Config| {
        let engine = wasmtime::Engine::new(&config).unwrap();
        let payload = engine.precompile_component(&strict_wasm).unwrap();
        let bytes = Precompiled::encode(&sha256_of(STRICT_POLICY), Cpu::Portable, &payload);
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let portable = || sigd::policy::config::portable_config(TARGET).unwrap();

    let mut cases = vec![(
        PathBuf::from(STRICT_POLICY),
        "is a WebAssembly component, and this sigd is the slim build",
    )];
    let mut other_version = portable();
    other_version
        .module_version(wasmtime::ModuleVersionStrategy::Custom("40.0.0".into()))
        .unwrap();
    cases.push((
        precompiled("version.cwasm", other_version),
        "compiled for another version of sigd's engine",
    ));
    let mut other_configuration = portable();
    other_configuration.epoch_interruption(false);
    cases.push((
        precompiled("configuration.cwasm", other_configuration),
        "compiled for another engine configuration",
    ));
    if let Some(feature) = lacking_cpu_feature() {
        let mut other_cpu = portable();
        // SAFETY: the code is only compiled here, never run: sigd must refuse it.
        unsafe { other_cpu.cranelift_flag_enable(feature) };
        cases.push((
            precompiled("cpu.cwasm", other_cpu),
            "compiled for CPU features this machine lacks",
        ));
    }
    let damaged = precompiled("damaged.cwasm", portable());
    let mut bytes = std::fs::read(&damaged).unwrap();
    let last = bytes.len() - 100;
    bytes[last] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    cases.push((damaged, "the file is damaged"));
    let writable = precompiled("writable.cwasm", portable());
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o666)).unwrap();
    cases.push((writable, "open to other users (mode 666)"));
    // Machine code passing for a component: what anyone may hand an
    // operator to vet or to run in the sandbox.
    let disguised = precompiled("disguised.wasm", portable());
    cases.push((disguised, "its name does not end in .cwasm"));

    for (path, why) in &cases {
        let full_refuses = *path != Path::new(STRICT_POLICY);
        let binaries = [Some(slim()), full_refuses.then(|| PathBuf::from(SIGD))];
        for binary in binaries.iter().flatten() {
            let out = serve(binary, &["--policy", path.to_str().unwrap()])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && stderr.contains(why),
                "{} with {}: {stderr}",
                binary.display(),
                path.display()
            );
        }
    }
    let disguised = dir.join("disguised.wasm");
    let check = Command::new(SIGD)
        .args(["policy", "check"])
        .arg(&disguised)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success(), "{stderr}");
    assert!(
        stderr.contains("its name does not end in .cwasm"),
        "{stderr}"
    );
}

/// A CPU feature cranelift can compile for that this machine lacks, if
/// there is one.
fn lacking_cpu_feature() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        let lacking = [
            ("has_avx512f", std::is_x86_feature_detected!("avx512f")),
            (
                "has_avx512vbmi",
                std::is_x86_feature_detected!("avx512vbmi"),
            ),
            (
                "has_avx512bitalg",
                std::is_x86_feature_detected!("avx512bitalg"),
            ),
        ];
        let feature = lacking.iter().find(|(_, present)| !present);
        if feature.is_none() {
            eprintln!("this CPU has every feature the test would compile for; not tested");
        }
        feature.map(|(name, _)| *name)
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}
