//! The policy authoring kit as authors run it: `sigd policy check`, `eval`
//! and `test` on real components, from the real binary.

mod common;

use common::{SIGD, STRICT_POLICY, scratch};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `sigd policy <args>` with a private compiled-policy cache: whether it
/// exited 0, and what it printed (stdout, then stderr).
fn policy(cache: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(SIGD)
        .arg("policy")
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .output()
        .expect("run sigd policy");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// `bytes` written to `name` in `dir`.
fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `check` passes the default policy and names the package version it
/// targets and its imports; a policy built for 0.3.0 passes (0.3.1 and
/// 0.3.2 only add); a policy importing WASI passes with WASI flagged.
#[test]
fn check_reports_world_imports_and_verdict() {
    let dir = scratch("kit_check_ok");
    let (ok, out) = policy(&dir, &["check", common::DEFAULT_POLICY_FILE]);
    assert!(ok, "{out}");
    assert!(out.contains("targets   sigd:policy@0.3.2"), "{out}");
    assert!(out.contains("exports   sigd:policy/handler@0.3.2"), "{out}");
    assert!(out.contains("imports   sigd:policy/host@0.3.2"), "{out}");
    assert!(out.contains("verdict   OK"), "{out}");
    assert!(!out.contains("(WASI)"), "{out}");

    // 0.3.1 and 0.3.2 only add to 0.3.0: a policy built for 0.3.0 runs unchanged.
    let older = file(&dir, "older.wasm", &common::policy_for_version("0.3.0"));
    let (ok, out) = policy(&dir, &["check", older.to_str().unwrap()]);
    assert!(ok && out.contains("targets   sigd:policy@0.3.0"), "{out}");

    let (ok, out) = policy(&dir, &["check", common::WASI_PROBE_POLICY]);
    assert!(ok, "{out}");
    assert!(
        out.contains("wasi:cli/environment@0.2") && out.contains("(WASI)"),
        "{out}"
    );
    assert!(out.contains("it uses WASI"), "{out}");
}

/// `check` vets someone else's policy: a component that another user owns
/// and others may write (mode 664), which `serve` would refuse, runs in the
/// sandbox here and passes. Before, `check` held it to `serve`'s rule.
#[test]
fn check_vets_anyones_component() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("kit_check_anyones");
    let theirs = dir.join("theirs.wasm");
    std::fs::copy(common::DEFAULT_POLICY_FILE, &theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o664)).unwrap();
    nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(1000)), None).unwrap();
    let (ok, out) = policy(&dir, &["check", theirs.to_str().unwrap()]);
    assert!(ok && out.contains("verdict   OK"), "{out}");
}

/// `check` refuses what sigd cannot run, exit 1, with one sentence that says
/// what to do: a core module, a file that is not wasm, a component without
/// the handler export, one built for another version of the WIT package.
#[test]
fn check_explains_what_is_wrong() {
    let dir = scratch("kit_check_wrong");
    let cases = [
        (
            "core.wasm",
            wat::parse_str("(module)").unwrap(),
            "a core wasm module, not a component",
        ),
        ("text.wasm", b"hello".to_vec(), "not a WebAssembly binary"),
        (
            "empty.wasm",
            wat::parse_str("(component)").unwrap(),
            "it exports no `sigd:policy/handler`",
        ),
        (
            "old.wasm",
            common::policy_for_version("0.2.0"),
            "it targets sigd:policy@0.2.0, but this sigd speaks sigd:policy@0.3.2",
        ),
    ];
    for (name, bytes, why) in cases {
        let path = file(&dir, name, &bytes);
        let (ok, out) = policy(&dir, &["check", path.to_str().unwrap()]);
        assert!(!ok, "{name}: {out}");
        let verdict = out
            .lines()
            .find(|l| l.starts_with("verdict"))
            .unwrap_or_default();
        assert!(
            verdict.starts_with("verdict   NO: ") && verdict.contains(why),
            "{name}: {out}"
        );
    }
}

/// `eval --header` hands a policy a header as a caller would send it, a
/// value in UTF-8 beyond ASCII included, and never `authorization`, as
/// `sigd serve` does.
#[test]
fn eval_passes_headers_as_serve_does() {
    let dir = scratch("kit_eval_headers");
    let (ok, out) = policy(
        &dir,
        &[
            "eval",
            common::HOSTILE_POLICY,
            "--pid",
            "1",
            "--body",
            r#"{"kill": []}"#,
            "--header",
            "X-Probe: 42 café",
            "--header",
            "Authorization: Bearer s3cr3t",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(r#"request-header("X-Probe") -> "42 café""#),
        "{out}"
    );
    assert!(
        out.contains(r#"request-header("authorization") -> absent"#),
        "{out}"
    );
    assert!(!out.contains("s3cr3t"), "{out}");
}

/// `eval` prints every host call the policy made and the answer sigd would
/// send, against a simulated table: a real process with the same pid is
/// never signalled. A table from a file is used as given, and a policy that
/// fails gives the host's 500 and exit 1.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn eval_shows_host_calls_and_answer_without_signalling() {
    common::require_private_pid_namespace();
    let dir = scratch("kit_eval");
    let mut real = common::target();
    let pid = real.id().to_string();
    let table = file(
        &dir,
        "table.json",
        format!(r#"[{{"pid": {pid}, "command": "real"}}]"#).as_bytes(),
    );
    let (ok, out) = policy(
        &dir,
        &[
            "eval",
            common::DEFAULT_POLICY_FILE,
            "--pid",
            &pid,
            "--body",
            r#"{"signal": "KILL"}"#,
            "--processes",
            table.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("process.open({pid}) -> process {pid}")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "signal(9, Process, on behalf of uid 0) -> delivered to [{pid}]"
        )),
        "{out}"
    );
    assert!(out.contains("response  200 OK"), "{out}");
    assert!(
        out.contains(&format!("simulated signal 9 sent to {pid}")),
        "{out}"
    );
    common::assert_alive_then_kill(&mut real);

    let (ok, out) = policy(&dir, &["eval", common::DEFAULT_POLICY_FILE, "--pid", "43"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("response  400 Bad Request") && out.contains("PROCESS_NOT_RUNNING"),
        "{out}"
    );
    assert!(out.contains("simulated no signal sent"), "{out}");

    let trapping = file(
        &dir,
        "trap.wasm",
        &common::always_misbehaving_policy("(unreachable)"),
    );
    let (ok, out) = policy(&dir, &["eval", trapping.to_str().unwrap(), "--pid", "42"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("failure   policy trapped") && out.contains("response  500"),
        "{out}"
    );
}

/// `test` passes the default policy on every case; the strict example passes
/// with its declared deviations and fails without them; and a deviation the
/// policy does not actually make fails, so declarations cannot go stale.
#[test]
fn conformance_suite_and_declared_deviations() {
    let dir = scratch("kit_test");
    let deviations = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/policies/strict/deviations.json"
    );
    let (ok, out) = policy(&dir, &["test", common::DEFAULT_POLICY_FILE]);
    assert!(
        ok && out.contains(" 0 changed as declared, 0 failed") && !out.contains("FAIL"),
        "{out}"
    );

    let (ok, out) = policy(&dir, &["test", STRICT_POLICY, "--deviations", deviations]);
    assert!(
        ok && out.contains("12 changed as declared, 0 failed"),
        "{out}"
    );
    assert!(out.contains("changed  signal-usr1"), "{out}");

    let (ok, out) = policy(&dir, &["test", STRICT_POLICY]);
    assert!(
        !ok && out.contains("FAIL     signal-usr1") && out.contains("12 failed"),
        "{out}"
    );

    let (ok, out) = policy(
        &dir,
        &[
            "test",
            common::DEFAULT_POLICY_FILE,
            "--deviations",
            deviations,
        ],
    );
    assert!(
        !ok && out.contains("decided as the default policy does"),
        "{out}"
    );
}

/// The example policies, each built from source by its own toolchain (Rust
/// by `tests/guests/build.rs`, Python and JavaScript by `scripts/example-policies.sh`),
/// pass `sigd policy check` and `sigd policy test` (the Rust one with its
/// declared deviations), and each answers a real request through
/// `sigd serve --policy`: the target dies of the signal. Prints each one's
/// size and policy-call latency (`sigd policy eval --repeat`).
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn example_policies_in_three_languages() {
    common::require_private_pid_namespace();
    let dir = scratch("kit_examples");
    let built = match std::env::var_os("SIGD_EXAMPLE_POLICIES") {
        Some(built) => PathBuf::from(built),
        None => {
            // Outside `make test`: build them here.
            let script = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../scripts/example-policies.sh"
            );
            let status = Command::new(script)
                .arg(&dir)
                .status()
                .expect("run the build script");
            assert!(status.success(), "scripts/example-policies.sh failed");
            dir.clone()
        }
    };
    let deviations = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/policies/strict/deviations.json"
    );
    let examples = [
        ("rust", PathBuf::from(STRICT_POLICY), Some(deviations)),
        ("python", built.join("python.wasm"), None),
        ("javascript", built.join("javascript.wasm"), None),
    ];
    for (language, path, deviations) in examples {
        let path = path.to_str().unwrap();
        let (ok, out) = policy(&dir, &["check", path]);
        assert!(ok && out.contains("verdict   OK"), "{language}: {out}");
        let compiled = line(&out, "machine");

        let mut test = vec!["test", path];
        test.extend(deviations.iter().flat_map(|file| ["--deviations", file]));
        let (ok, out) = policy(&dir, &test);
        assert!(ok && out.contains(" 0 failed"), "{language}: {out}");

        let (ok, out) = policy(&dir, &["eval", path, "--pid", "44", "--repeat", "300"]);
        assert!(ok && out.contains("response  200 OK"), "{language}: {out}");
        let reused = line(&out, "latency");
        let fresh = [
            "eval",
            path,
            "--pid",
            "44",
            "--repeat",
            "30",
            "--fresh-instances",
        ];
        let (ok, out) = policy(&dir, &fresh);
        assert!(ok && out.contains("response  200 OK"), "{language}: {out}");
        let fresh = line(&out, "latency");
        let size = std::fs::metadata(path).unwrap().len();
        println!("{language}: {size} bytes; {compiled}\n  {reused}\n  {fresh}");

        let sigd = common::Sigd::start(&["--policy", path, "--cache-dir", dir.to_str().unwrap()]);
        let mut target = common::target();
        sigd.signal(target.id(), r#"{"signal": 15}"#)
            .assert(200, "");
        common::assert_killed_by(&mut target, 15);
    }
}

/// The line of `sigd policy` output that starts with `label`.
fn line<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_default()
}
