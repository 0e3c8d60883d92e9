//! The Send Signal endpoint end to end: the real `sigd` binary over real HTTP,
//! signalling real processes this test started. Run inside a private PID
//! namespace (`make test`), where this test binary is pid 1 and nothing
//! outside the test can be hit.

mod common;

use common::*;
use std::process::Command;

/// SIGTERM, SIGKILL and a realtime signal (SIGRTMIN as libc reports it)
/// really end the target, as its wait status shows, and the answer is 200.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn delivers_signals() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache"]);
    for signal in [15, 9, nix::libc::SIGRTMIN()] {
        let mut child = target();
        sigd.signal(child.id(), &format!(r#"{{"signal": {signal}}}"#))
            .assert(200, "");
        assert_killed_by(&mut child, signal);
    }
}

/// Every malformed pid, body and signal is a 400 with its code, and the
/// target is left alone.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn rejects_invalid_requests() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache"]);
    let mut child = target();
    let pid = child.id().to_string();
    for bad_pid in ["abc", "0", "-5", "99999999999", "%34%32", "4.2"] {
        sigd.signal(bad_pid, r#"{"signal": 15}"#)
            .assert(400, "INVALID_PID");
    }
    for body in [
        "",
        "nope",
        "[15]",
        "{}",
        r#"{"signal": [15]}"#,
        r#"{"signal": 1.5}"#,
    ] {
        sigd.signal(&pid, body).assert(400, "INVALID_REQUEST");
    }
    for signal in [
        "0",
        "32",
        "33",
        "65",
        "-15",
        "99999999999",
        r#""15""#,
        r#""SIGNOPE""#,
    ] {
        sigd.signal(&pid, &format!(r#"{{"signal": {signal}}}"#))
            .assert(400, "INVALID_SIGNAL");
    }
    assert_alive_then_kill(&mut child);
}

/// A zombie is 400 PROCESS_NOT_RUNNING; a pid nobody has is 404 PROCESS_NOT_FOUND.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn zombie_and_missing_processes() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache"]);
    let mut zombie = zombie();
    sigd.signal(zombie.id(), r#"{"signal": 9}"#)
        .assert(400, "PROCESS_NOT_RUNNING");
    zombie.wait().unwrap();
    sigd.signal(free_pid(), r#"{"signal": 9}"#)
        .assert(404, "PROCESS_NOT_FOUND");
}

/// pid 1 (this test, the namespace's init) and sigd's own pid are 403
/// PROTECTED_PROCESS, and sigd keeps serving.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn protects_init_and_itself() {
    require_private_pid_namespace();
    let mut sigd = Sigd::start(&["--no-cache"]);
    sigd.signal(1, r#"{"signal": 9}"#)
        .assert(403, "PROTECTED_PROCESS");
    sigd.signal(sigd.pid(), r#"{"signal": 9}"#)
        .assert(403, "PROTECTED_PROCESS");
    assert!(sigd.is_running());
    let mut child = target();
    sigd.signal(child.id(), r#"{"signal": 15}"#).assert(200, "");
    assert_killed_by(&mut child, 15);
}

/// Protection follows sigd's ancestors when sigd is reparented under load.
/// sigd runs as subreaper -> shell -> shell -> sigd; once its parent is
/// killed, the kernel hands sigd to the subreaper. Requests are answered
/// throughout; the subreaper (an ancestor before, the parent after) is 403
/// PROTECTED_PROCESS; the middle shell, no longer an ancestor, may be
/// signalled again; and ordinary targets still are.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn protection_follows_reparenting() {
    use std::os::unix::process::CommandExt;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    require_private_pid_namespace();
    // Each shell starts the next in the background and stays (as `sleep`,
    // which reaps nothing); the parent waits for sigd.
    let mut command = Command::new("sh");
    command
        .args(["-c", r#"sh -c "$MIDDLE" & exec sleep 600"#])
        .env("MIDDLE", r#"sh -c "$PARENT" & exec sleep 600"#)
        .env(
            "PARENT",
            r#""$SIGD" serve --listen 127.0.0.1:0 --no-cache & wait"#,
        )
        .env("SIGD", SIGD)
        .env("RUST_LOG", "info")
        .env_remove("SIGD_TOKEN")
        .process_group(0);
    // SAFETY: prctl(2) only, between fork and exec; the attribute survives exec.
    unsafe {
        command.pre_exec(
            || match nix::libc::prctl(nix::libc::PR_SET_CHILD_SUBREAPER, 1) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            },
        );
    }
    let sigd = Sigd::start_command(command);
    let _everyone = KillGroupOnDrop(sigd.pid());
    // subreaper, the shells between, sigd's parent, sigd.
    let mut chain = vec![sigd.pid()];
    while comm(*chain.last().unwrap()) != "sigd" {
        let children = wait_for_children(*chain.last().unwrap() as u32, 1);
        chain.push(*children.first().unwrap());
    }
    let (subreaper, sigd_pid) = (chain[0], chain[chain.len() - 1]);
    let parent = chain[chain.len() - 2];
    let middle = &chain[1..chain.len() - 2];
    assert!(!middle.is_empty(), "{chain:?}");
    for ancestor in &chain {
        sigd.signal(ancestor, r#"{"signal": "CONT"}"#)
            .assert(403, "PROTECTED_PROCESS");
    }

    let stubborn = stubborn();
    let answered = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    std::thread::scope(|load| {
        for _ in 0..2 {
            load.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    sigd.signal(stubborn.id(), r#"{"signal": 15}"#)
                        .assert(200, "");
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        wait_until(|| answered.load(Ordering::Relaxed) >= 20, "load before");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(parent),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        wait_until(
            || ppid(sigd_pid) == subreaper,
            "sigd handed to the subreaper",
        );
        let before = answered.load(Ordering::Relaxed);
        for pid in [subreaper, sigd_pid] {
            sigd.signal(pid, r#"{"signal": "CONT"}"#)
                .assert(403, "PROTECTED_PROCESS");
        }
        for pid in middle {
            sigd.signal(pid, r#"{"signal": "CONT"}"#).assert(200, "");
        }
        let mut child = target();
        sigd.signal(child.id(), r#"{"signal": 15}"#).assert(200, "");
        assert_killed_by(&mut child, 15);
        wait_until(
            || answered.load(Ordering::Relaxed) >= before + 100,
            "load after",
        );
        done.store(true, Ordering::Relaxed);
    });
    let mut stubborn = stubborn;
    assert_alive_then_kill(&mut stubborn);
}

/// `/proc/<pid>/comm`, without its newline.
fn comm(pid: i32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    comm.trim_end().to_string()
}

/// The parent of `pid` now, as `/proc/<pid>/stat` says (0 if it cannot be read).
fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields = stat.rsplit(')').next().unwrap_or_default();
    fields
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// Wait (at most 10 s) until `ready`; panics saying it was waiting for `what`.
#[track_caller]
fn wait_until(ready: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited in vain for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// SIGKILL to the process group `.0` when dropped: the processes a test
/// started beneath a shell it does not wait for.
struct KillGroupOnDrop(i32);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.0);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
}

/// When the kernel says EPERM (sigd runs as nobody, the target as root), the
/// answer is 403 PERMISSION_DENIED and the target lives.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn permission_denied() {
    require_private_pid_namespace();
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", SIGD])
        .args(["serve", "--listen", "127.0.0.1:0", "--no-cache"])
        .env_remove("SIGD_TOKEN");
    let sigd = Sigd::start_command(command);
    let mut child = target();
    sigd.signal(child.id(), r#"{"signal": 15}"#)
        .assert(403, "PERMISSION_DENIED");
    assert_alive_then_kill(&mut child);
}

/// Unknown routes are 404 NOT_FOUND; other methods on the route are 405 with `Allow: POST`.
#[test]
fn routes_and_methods() {
    let sigd = Sigd::start(&["--no-cache"]);
    for path in ["/", "/api/v1/processes/42", "/api/v1/processes/42/signal/x"] {
        sigd.post(path, r#"{"signal": 15}"#, &[])
            .assert(404, "NOT_FOUND");
    }
    for method in ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"] {
        let reply = sigd.raw(
            format!("{method} /api/v1/processes/42/signal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("POST"), "{method}");
        if method != "HEAD" {
            reply.assert(405, "METHOD_NOT_ALLOWED");
        }
    }
}

/// Bodies over the cap are 413 PAYLOAD_TOO_LARGE, announced or chunked;
/// `--max-body-bytes` moves the cap.
#[test]
fn caps_the_body() {
    let sigd = Sigd::start(&["--no-cache"]);
    let big = format!(r#"{{"signal": 15, "pad": "{}"}}"#, "x".repeat(64 * 1024));
    sigd.signal(42, &big).assert(413, "PAYLOAD_TOO_LARGE");
    let chunk = "x".repeat(8192);
    let mut chunked = String::from(
        "POST /api/v1/processes/42/signal HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
         Content-Type: application/json\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..16 {
        chunked.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    chunked.push_str("0\r\n\r\n");
    sigd.raw(chunked.as_bytes())
        .assert(413, "PAYLOAD_TOO_LARGE");

    let small = Sigd::start(&["--no-cache", "--max-body-bytes", "16"]);
    small
        .signal(42, r#"{"signal": 15, "x": 1}"#)
        .assert(413, "PAYLOAD_TOO_LARGE");
    small
        .signal("abc", r#"{"signal": 15}"#)
        .assert(400, "INVALID_PID");
}

/// With a token (from a file or SIGD_TOKEN), a missing or wrong bearer is 401
/// with `WWW-Authenticate: Bearer`, the right one is served; unauthenticated
/// callers learn nothing, not even which routes exist.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn bearer_auth() {
    require_private_pid_namespace();
    let dir = scratch("bearer_auth");
    let token_file = dir.join("token");
    write_private(&token_file, "s3cret-token\n");
    let from_file = Sigd::start(&["--no-cache", "--token-file", token_file.to_str().unwrap()]);
    let mut from_env = sigd_command(&["--no-cache"]);
    from_env.env("SIGD_TOKEN", "s3cret-token");
    let from_env = Sigd::start_command(from_env);

    for sigd in [&from_file, &from_env] {
        let mut child = target();
        let path = format!("/api/v1/processes/{}/signal", child.id());
        for headers in [
            &[][..],
            &["Authorization: Bearer wrong"],
            &["Authorization: Basic czNjcmV0LXRva2Vu"],
            &["Authorization: s3cret-token"],
        ] {
            let reply = sigd.post(&path, r#"{"signal": 15}"#, headers);
            reply.assert(401, "UNAUTHORIZED");
            assert!(
                reply
                    .header("www-authenticate")
                    .unwrap()
                    .starts_with("Bearer")
            );
        }
        sigd.post("/nope", "", &[]).assert(401, "UNAUTHORIZED");
        assert_alive_then_kill(&mut child);

        let mut child = target();
        let path = format!("/api/v1/processes/{}/signal", child.id());
        sigd.post(
            &path,
            r#"{"signal": 15}"#,
            &["Authorization: Bearer s3cret-token"],
        )
        .assert(200, "");
        assert_killed_by(&mut child, 15);
    }
}

/// Without a token sigd refuses a non-loopback address (and says why); with one it serves there.
#[test]
fn no_token_means_loopback_only() {
    let output = Command::new(SIGD)
        .args(["serve", "--listen", "0.0.0.0:0", "--no-cache"])
        .env_remove("SIGD_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without a token"), "{stderr}");

    let mut command = Command::new(SIGD);
    command
        .args(["serve", "--listen", "0.0.0.0:0", "--no-cache"])
        .env("SIGD_TOKEN", "t0ken");
    let sigd = Sigd::start_command(command);
    assert!(sigd.addr.ip().is_unspecified());
    sigd.expect_log("loaded the built-in default policy");
}

/// A missing, garbage or wrong-world policy file stops start-up with a
/// non-zero exit and a message naming the file and the fault.
#[test]
fn bad_policy_files_stop_startup() {
    let dir = scratch("bad_policy_files");
    let garbage = dir.join("garbage.wasm");
    std::fs::write(&garbage, b"definitely not wasm").unwrap();
    let core_module = dir.join("core.wasm");
    std::fs::write(&core_module, wat::parse_str("(module)").unwrap()).unwrap();
    let empty_component = dir.join("empty.wasm");
    std::fs::write(&empty_component, wat::parse_str("(component)").unwrap()).unwrap();
    let unreadable = dir.join("missing.wasm");
    let cases = [
        (&unreadable, "cannot read policy file"),
        (&garbage, "is not a WebAssembly component"),
        (&core_module, "is not a WebAssembly component"),
        (&empty_component, "does not fit sigd's policy world"),
    ];
    for (path, expected) in cases {
        let output = sigd_command(&["--no-cache", "--policy", path.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    }
}

/// The stricter example policy, loaded from a file by the same binary,
/// changes the answers: SIGUSR1 (10) is refused where the default delivers it.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn policy_from_file_changes_answers() {
    require_private_pid_namespace();
    let default = Sigd::start(&["--no-cache"]);
    let strict = Sigd::start(&["--no-cache", "--policy", STRICT_POLICY]);
    strict.expect_log(STRICT_POLICY);

    let mut child = target();
    strict
        .signal(child.id(), r#"{"signal": 10}"#)
        .assert(403, "SIGNAL_NOT_ALLOWED");
    default
        .signal(child.id(), r#"{"signal": 10}"#)
        .assert(200, "");
    assert_killed_by(&mut child, 10);

    let mut child = target();
    strict
        .signal(child.id(), r#"{"signal": 2}"#)
        .assert(200, "");
    assert_killed_by(&mut child, 2);
    // It keeps the default's validation.
    strict
        .signal("abc", r#"{"signal": 15}"#)
        .assert(400, "INVALID_PID");
}

/// A policy that traps, or answers a bad status or a non-JSON body, gets a
/// 500 INTERNAL with no details; the details are logged, and sigd goes on
/// answering other requests from the same policy.
#[test]
fn misbehaving_policies_are_500() {
    let dir = scratch("misbehaving_policies");
    let cases = [
        ("trap", misbehaving_policy("(unreachable)")),
        ("status", answering_policy(700, "{}")),
        ("status-low", answering_policy(100, "{}")),
        ("not-json", answering_policy(200, "not json")),
    ];
    for (name, component) in cases {
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, component).unwrap();
        let mut sigd = Sigd::start(&["--no-cache", "--policy", path.to_str().unwrap()]);
        for _ in 0..3 {
            let reply = sigd.signal(TRIGGER_PID, r#"{"signal": 15}"#);
            reply.assert(500, "INTERNAL");
            assert!(!reply.body.contains("wasm"), "{}", reply.body);
            // The control: the same policy's well-formed answer passes through.
            let reply = sigd.signal(42, r#"{"signal": 15}"#);
            assert_eq!((reply.status, reply.body.as_str()), (418, "{}"));
        }
        assert!(sigd.is_running());
        sigd.expect_log("policy failed");
    }
}

/// Exactly what Tensorlake's SDK sends (content type, bearer token,
/// `traceparent`, `Host: <sandbox-id>.local`) is served.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn tensorlake_sdk_request_shape() {
    require_private_pid_namespace();
    let mut sigd = sigd_command(&["--no-cache"]);
    sigd.env("SIGD_TOKEN", "tl_apikey_123");
    let sigd = Sigd::start_command(sigd);
    let mut child = target();
    let body = r#"{"signal":15}"#;
    let request = format!(
        "POST /api/v1/processes/{}/signal HTTP/1.1\r\nHost: sbx-01jq8zxy.local\r\n\
         Content-Type: application/json\r\nAuthorization: Bearer tl_apikey_123\r\n\
         traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\
         User-Agent: tensorlake-python/0.5.161\r\nAccept: */*\r\n\
         Content-Length: {}\r\n\r\n{body}",
        child.id(),
        body.len()
    );
    sigd.raw(request.as_bytes()).assert(200, "");
    assert_killed_by(&mut child, 15);
}

/// Tensorlake's own Python SDK (`Sandbox.send_signal`) drives sigd unchanged:
/// a real SIGTERM, then its error type for a missing pid.
#[test]
#[ignore = "needs the Tensorlake SDK; `make test` installs it and runs this"]
fn tensorlake_python_sdk() {
    require_private_pid_namespace();
    let python = std::env::var("SIGD_TEST_PYTHON")
        .expect("SIGD_TEST_PYTHON names a Python with `tensorlake` installed");
    let mut sigd = sigd_command(&["--no-cache"]);
    sigd.env("SIGD_TOKEN", "tl_apikey_123");
    let sigd = Sigd::start_command(sigd);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/sdk/send_signal.py");
    let url = format!("http://{}", sigd.addr);
    let run = |pid: String| {
        let output = Command::new(&python)
            .args([script, &url, "tl_apikey_123", &pid, "15"])
            .output()
            .expect("run python");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let mut child = target();
    assert_eq!(run(child.id().to_string()).trim(), "success=True");
    assert_killed_by(&mut child, 15);
    let missing = run(free_pid().to_string());
    assert!(
        missing.contains("404") && missing.contains("PROCESS_NOT_FOUND"),
        "{missing}"
    );
}

/// An unreadable token file stops start-up, naming the file.
#[test]
fn unreadable_token_file_stops_startup() {
    let output = sigd_command(&["--no-cache", "--token-file", "/nonexistent/token"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read token file /nonexistent/token"),
        "{stderr}"
    );
}
