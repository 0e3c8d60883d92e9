//! The policy runtime against hostile and broken policies, through the real
//! binary: limits on every call, the host's own refusals, a WASI guest that
//! gets nothing, hot swaps under load, and the compiled-policy cache.

mod common;

use common::*;
use nix::sys::signal::Signal;
use serde_json::json;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The policy deadline these tests run sigd with (its default).
const DEADLINE: Duration = Duration::from_millis(50);

fn write_policy(dir: &Path, name: &str, component: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, component).unwrap();
    path.to_str().unwrap().to_string()
}

/// A policy that loops forever, grows memory without bound, or recurses
/// without bound gets a 500 INTERNAL; the log names the limit, and the next
/// request is answered normally. The deadline counts the guest's own CPU
/// time: each looping call is cut off after 50-60 ms of it (as logged), and
/// answered well within a second even while other tests load the machine.
#[test]
fn limits_end_runaway_calls() {
    let dir = scratch("limits_end_runaway_calls");
    let cases = [
        ("deadline", "(loop $forever (br $forever)) (i32.const 0)"),
        (
            "memory",
            "(loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) \
             (i32.const 0)",
        ),
        ("stack", "(call $recurse)"),
    ];
    for (limit, instructions) in cases {
        let policy = write_policy(
            &dir,
            &format!("{limit}.wasm"),
            &misbehaving_policy(instructions),
        );
        let sigd = Sigd::start(&["--no-cache", "--policy", &policy]);
        let mut took = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            sigd.signal(TRIGGER_PID, r#"{"signal": 15}"#)
                .assert(500, "INTERNAL");
            took.push(started.elapsed());
            let reply = sigd.signal(42, r#"{"signal": 15}"#);
            assert_eq!(reply.status, 418, "the next call is answered");
        }
        took.sort();
        let (p50, p99) = (took[took.len() / 2], took[took.len() - 1]);
        println!("{limit}: 500 after p50 {p50:?}, max {p99:?}");
        assert!(p99 < Duration::from_secs(1), "{limit}: {p99:?}");
        sigd.expect_log(&format!("policy hit its {limit} limit"));
        if limit == "deadline" {
            let log = sigd.expect_log_count("ran_us=", 20);
            let ran: Vec<Duration> = log
                .split("ran_us=")
                .skip(1)
                .map(|rest| {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    Duration::from_micros(digits.parse().unwrap())
                })
                .collect();
            assert_eq!(ran.len(), 20, "{log}");
            // The deadline is checked at epoch ticks (1 ms); on a loaded
            // machine (the other tests of this binary beside it, on two
            // cores) the ticker thread may be scheduled late, and the
            // guest runs on until it is.
            let slack = Duration::from_millis(40);
            assert!(
                ran.iter()
                    .all(|&ran| ran >= DEADLINE && ran < DEADLINE + slack),
                "{ran:?}"
            );
        } else {
            assert!(p50 < DEADLINE, "{limit}: {p50:?}");
        }
    }
}

/// A request still being decided when the drain ends is cut off, and says
/// so: its audit event is never lost silently. A policy loops (its
/// deadline 30 s) on one request in flight at SIGTERM, under `--drain 1`:
/// the connection closes unanswered, sigd exits soon after the drain limit,
/// and its log counts that one request cut off without an answer or an
/// audit event. Before, the drain's warning said nothing of it.
#[test]
fn requests_cut_off_at_the_drain_limit_are_counted() {
    let dir = scratch("requests_cut_off_at_the_drain_limit_are_counted");
    let looping = "(loop $forever (br $forever)) (i32.const 0)";
    let policy = write_policy(&dir, "loop.wasm", &misbehaving_policy(looping));
    let args = [
        "--no-cache",
        "--policy",
        &policy,
        "--policy-deadline-ms",
        "30000",
        "--drain",
        "1",
    ];
    let mut sigd = Sigd::start(&args);
    let mut stream = std::net::TcpStream::connect(sigd.addr).unwrap();
    let body = r#"{"signal": 15}"#;
    let request = format!(
        "POST /api/v1/processes/{TRIGGER_PID}/signal HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    // Counting the request that asks.
    wait_for_metric(&sigd, "sigd_requests_in_flight", 2.0);
    let stopping = Instant::now();
    sigd.send(Signal::SIGTERM);
    assert!(sigd.wait().success());
    let exited = stopping.elapsed();
    println!("exited {exited:?} after SIGTERM");
    assert!(exited < Duration::from_secs(5), "{exited:?}");
    let mut reply = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.read_to_end(&mut reply);
    assert!(reply.is_empty(), "{}", String::from_utf8_lossy(&reply));
    let log = sigd.log();
    let warning = log
        .lines()
        .find(|line| line.contains("drain limit reached"))
        .unwrap_or_else(|| panic!("no drain warning:\n{log}"));
    assert!(warning.contains("cut_off=1"), "{warning}");
    assert!(!log.contains(" sigd::audit: "), "{log}");
}

/// A guest stack larger than wasmtime's default fiber (2 MiB) is taken
/// (sigd refused to start: "max_wasm_stack size cannot exceed the
/// async_stack_size"): a runaway recursion ends at the limit, and the next
/// call is answered. (That host functions called at the bottom of a deep
/// guest stack keep their room is not exercised here.)
#[test]
fn guest_stacks_above_the_default_fiber_are_taken() {
    let dir = scratch("guest_stacks_above_the_default_fiber_are_taken");
    let policy = write_policy(&dir, "stack.wasm", &misbehaving_policy("(call $recurse)"));
    let args = [
        "--no-cache",
        "--policy",
        &policy,
        "--policy-stack-kib",
        "4096",
    ];
    let sigd = Sigd::start(&args);
    sigd.signal(TRIGGER_PID, r#"{"signal": 15}"#)
        .assert(500, "INTERNAL");
    assert_eq!(sigd.signal(42, r#"{"signal": 15}"#).status, 418);
    sigd.expect_log("policy hit its stack limit");
}

/// A looping call holds up nobody else: while calls run into the deadline on
/// other connections, ordinary requests are answered correctly, and (but for
/// the odd one the other tests of this binary, running beside it on two
/// cores, hold up) none waits anywhere near a runaway call's deadline (long
/// calls yield at every epoch tick).
#[test]
fn runaway_calls_do_not_stall_others() {
    let dir = scratch("runaway_calls_do_not_stall_others");
    let policy = write_policy(
        &dir,
        "loop.wasm",
        &misbehaving_policy("(loop $forever (br $forever)) (i32.const 0)"),
    );
    let sigd = Sigd::start(&["--no-cache", "--policy", &policy]);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    sigd.signal(TRIGGER_PID, "{}").assert(500, "INTERNAL");
                }
            });
        }
        let mut took: Vec<Duration> = (0..100)
            .map(|_| {
                let started = Instant::now();
                assert_eq!(sigd.signal(42, "{}").status, 418);
                started.elapsed()
            })
            .collect();
        stop.store(true, Ordering::Relaxed);
        took.sort();
        let (p98, slowest) = (took[97], took[99]);
        println!("ordinary requests beside runaway calls: p98 {p98:?}, slowest {slowest:?}");
        assert!(p98 < DEADLINE, "{took:?}");
    });
}

/// Whatever a policy orders, the host never signals pid -1, 0 or a
/// negative pid (they cannot even be opened), pid 1, sigd, or a group or
/// tree holding either: each is refused, and every process in the namespace
/// lives. The same policy's signal to an ordinary child goes through (the
/// control). The policy reads a header as sent, UTF-8 beyond ASCII
/// included, and never `authorization`.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn host_refuses_what_no_policy_may_do() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache", "--policy", HOSTILE_POLICY]);
    let mut child = target();
    let targets = json!([
        [-1, 9],
        [0, 9],
        [i32::MIN, 9],
        [-(child.id() as i32), 9],
        [1, 9],
        [1, 9, "tree"],
        [sigd.pid(), 9],
        [sigd.pid(), 9, "group"],
        [sigd.pid(), 9, "tree"],
        // The child shares this test's process group, which holds pid 1.
        [child.id(), 9, "group"],
    ]);
    let reply = sigd.post(
        "/api/v1/processes/1/signal",
        &json!({ "kill": targets }).to_string(),
        &[
            "X-Probe: 42 café",
            "Authorization: Bearer never-for-policies",
        ],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["headers"],
        json!({"x-probe": "42 café", "authorization": null})
    );
    let mut expected = vec!["cannot-open"; 4];
    expected.extend(["protected"; 6]);
    assert_eq!(reply.json()["results"], json!(expected));
    let undeliverable = json!({ "kill": [[child.id(), 0], [child.id(), 32], [child.id(), 65]] });
    let reply = sigd.post(
        "/api/v1/processes/1/signal",
        &undeliverable.to_string(),
        &[],
    );
    assert_eq!(reply.json()["results"], json!(vec!["invalid-signal"; 3]));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the child was signalled"
    );

    let control = json!({ "kill": [[child.id(), 9]] });
    let reply = sigd.post("/api/v1/processes/1/signal", &control.to_string(), &[]);
    assert_eq!(reply.json()["results"], json!(["ok"]));
    assert_killed_by(&mut child, 9);
}

/// A guest that imports WASI gets no environment, no arguments, no
/// directories and no network, and what it prints lands in sigd's log; one
/// that floods its output has it cut at the cap (64 KiB kept, the rest
/// dropped and counted, the call still answered) and sigd's log gets only
/// the first KiB of it.
#[test]
fn wasi_guests_get_nothing() {
    let mut sigd = sigd_command(&["--no-cache", "--policy", WASI_PROBE_POLICY]);
    sigd.env("SECRET_IN_SIGD_ENV", "must-not-leak");
    let sigd = Sigd::start_command(sigd);
    let reply = sigd.signal(42, "{}");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seen = reply.json();
    assert_eq!(
        (&seen["env"], &seen["args"], &seen["preopens"]),
        (&json!(0), &json!(0), &json!(0))
    );
    assert_eq!(seen["tcp"], "access-denied", "{seen}");
    assert_eq!(seen["dns"], "permanent-resolver-failure", "{seen}");
    sigd.expect_log("probe: hello on stdout");
    sigd.expect_log("probe: hello on stderr");

    assert_eq!(sigd.signal(42, r#"{"flood": 200000}"#).status, 200);
    sigd.expect_log("bytes=65536");
    // The rest of the 200,000 bytes (and the probe's own lines) dropped, counted.
    let log = sigd.log();
    let dropped: u64 = log
        .split("bytes=65536 dropped=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no dropped count in the log:\n{log}"));
    assert!(dropped >= 200_000 - 65_536, "dropped={dropped}");
    let longest_line = sigd.log().lines().map(str::len).max().unwrap();
    assert!(longest_line < 1500, "a log line of {longest_line} bytes");
}

/// 1,000 trapping calls leave sigd's resident memory where it was: a trap
/// takes its instance down and nothing else.
#[test]
fn traps_do_not_leak() {
    let dir = scratch("traps_do_not_leak");
    let policy = write_policy(&dir, "trap.wasm", &misbehaving_policy("(unreachable)"));
    let sigd = Sigd::start(&["--no-cache", "--policy", &policy]);
    for _ in 0..200 {
        sigd.signal(TRIGGER_PID, "{}").assert(500, "INTERNAL");
    }
    let before = sigd.rss_kib();
    for _ in 0..1000 {
        sigd.signal(TRIGGER_PID, "{}").assert(500, "INTERNAL");
    }
    let after = sigd.rss_kib();
    println!("RSS before 1000 traps: {before} KiB, after: {after} KiB");
    assert!(
        after <= before + 1024,
        "RSS grew from {before} to {after} KiB"
    );
}

/// Writes `bytes` to `path` the way deploy tools do: a new file renamed over it.
fn replace_file(path: &Path, bytes: &[u8]) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// Wait (at most 10 s) until sigd serves with the policy whose sha256 is `sha256`.
#[track_caller]
fn expect_policy(sigd: &Sigd, sha256: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sigd.policy_sha256() != sha256 {
        assert!(
            Instant::now() < deadline,
            "policy {sha256} never became active:\n{}",
            sigd.log()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// 100 swaps between the default and the strict policy on SIGHUP, under
/// concurrent load: every request is answered by one policy or the other,
/// none fails, and both answers are seen.
#[test]
fn hot_swap_under_load_loses_nothing() {
    let dir = scratch("hot_swap_under_load");
    let path = dir.join("policy.wasm");
    let default = std::fs::read(DEFAULT_POLICY_FILE).unwrap();
    let strict = std::fs::read(STRICT_POLICY).unwrap();
    let sha = |bytes: &[u8]| sigd::policy::sha256_hex(bytes);
    replace_file(&path, &default);
    let sigd = Sigd::start(&["--no-cache", "--policy", path.to_str().unwrap()]);
    // SIGUSR1 to a pid nobody has: the default says 404, the strict 403.
    let missing = free_pid();
    let (stop, answered, by_default, by_strict) = (
        AtomicBool::new(false),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let reply = sigd.signal(missing, r#"{"signal": 10}"#);
                    match (reply.status, reply.code().as_str()) {
                        (404, "PROCESS_NOT_FOUND") => by_default.fetch_add(1, Ordering::Relaxed),
                        (403, "SIGNAL_NOT_ALLOWED") => by_strict.fetch_add(1, Ordering::Relaxed),
                        _ => panic!(
                            "mis-answered during a swap: {} {}",
                            reply.status, reply.body
                        ),
                    };
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for swap in 0..100 {
            let next = if swap % 2 == 0 { &strict } else { &default };
            replace_file(&path, next);
            sigd.send(Signal::SIGHUP);
            expect_policy(&sigd, &sha(next));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let (d, s) = (by_default.into_inner(), by_strict.into_inner());
    println!(
        "{} requests across 100 swaps: {d} by the default, {s} by the strict policy",
        answered.into_inner()
    );
    assert!(d > 0 && s > 0);
}

/// A bad new file (garbage, the wrong world, a policy that traps in the smoke
/// call) is refused and logged, and the old policy keeps serving.
#[test]
fn bad_swaps_keep_the_old_policy() {
    let dir = scratch("bad_swaps");
    let path = dir.join("policy.wasm");
    let strict = std::fs::read(STRICT_POLICY).unwrap();
    replace_file(&path, &strict);
    let sigd = Sigd::start(&["--no-cache", "--policy", path.to_str().unwrap(), "--watch"]);
    let active = sigd.policy_sha256();
    let bad: [(&str, Vec<u8>); 4] = [
        ("garbage", b"\0asm but not really".to_vec()),
        ("wrong world", wat::parse_str("(component)").unwrap()),
        ("empty", Vec::new()),
        ("smoke trap", always_misbehaving_policy("(unreachable)")),
    ];
    for (i, (what, bytes)) in bad.iter().enumerate() {
        replace_file(&path, bytes);
        sigd.send(Signal::SIGHUP);
        let refusals = i + 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        while sigd.log().matches("policy not swapped").count() < refusals {
            assert!(
                Instant::now() < deadline,
                "{what} was not refused:\n{}",
                sigd.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sigd.policy_sha256(), active, "{what}");
        sigd.signal(42, r#"{"signal": 10}"#)
            .assert(403, "SIGNAL_NOT_ALLOWED");
    }
    // --watch picks up a good file without a signal.
    let default = std::fs::read(DEFAULT_POLICY_FILE).unwrap();
    replace_file(&path, &default);
    expect_policy(&sigd, &sigd::policy::sha256_hex(&default));
}

/// `--policy-memory-mib` caps what a policy's memories hold together, not
/// each alone: a policy with eight more memories of 1 MiB beside its own
/// is refused at start under a cap of 4 MiB (each memory alone is under it)
/// and serves under 16. Before, only each memory was held to the cap, and
/// a reviewer's policy of 64 such memories grew sigd by 246 MB in 16 calls
/// under a cap of 4 MiB (wasmtime lets a store make 10,000 memories).
#[test]
fn the_memory_cap_is_for_all_of_a_policys_memories() {
    let dir = scratch("the_memory_cap_is_for_all_of_a_policys_memories");
    let path = dir.join("memories.wasm");
    std::fs::write(&path, many_memories_policy(8)).unwrap();
    let policy = path.to_str().unwrap();
    let args = ["--no-cache", "--policy", policy, "--policy-memory-mib", "4"];
    let (code, stderr) = exit_and_stderr(sigd_command(&args));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("hit its memory limit"), "{stderr}");
    let sigd = Sigd::start(&[
        "--no-cache",
        "--policy",
        policy,
        "--policy-memory-mib",
        "16",
    ]);
    assert_eq!(sigd.signal(42, r#"{"signal": 15}"#).status, 418);
}

/// Run `command` with `fcntl(F_ADD_SEALS)` refused (EBUSY), as the kernel
/// refuses to seal a memfd while something holds one of its pages.
#[cfg(target_arch = "x86_64")]
fn refuse_memfd_seals(command: &mut std::process::Command) {
    use nix::libc::{self, sock_filter, sock_fprog};
    use std::os::unix::process::CommandExt;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let op = |code: u32, k: u32, jt: u8, jf: u8| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let equals = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let answer = libc::BPF_RET | libc::BPF_K;
    // Offsets in `struct seccomp_data`: nr 0, arch 4, args[1] 24 (its
    // low half); a failed comparison jumps to the last line, "allow".
    let filter = [
        op(load, 4, 0, 0),
        op(equals, AUDIT_ARCH_X86_64, 0, 5),
        op(load, 0, 0, 0),
        op(equals, libc::SYS_fcntl as u32, 0, 3),
        op(load, 24, 0, 0),
        op(equals, libc::F_ADD_SEALS as u32, 0, 1),
        op(answer, libc::SECCOMP_RET_ERRNO | libc::EBUSY as u32, 0, 0),
        op(answer, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
    // SAFETY: between fork and exec this makes two prctl(2) calls on memory
    // the closure owns, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let program = sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            let (one, none): (libc::c_ulong, libc::c_ulong) = (1, 0);
            let installed = libc::prctl(libc::PR_SET_NO_NEW_PRIVS, one, none, none, none) == 0
                && libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::c_ulong::from(libc::SECCOMP_MODE_FILTER),
                    &program as *const sock_fprog,
                ) == 0;
            match installed {
                true => Ok(()),
                false => Err(std::io::Error::last_os_error()),
            }
        });
    }
}

/// A policy's initial memory is set up at load, and tried again when the
/// kernel refuses to seal its memfd (EBUSY: something held a page; once in
/// CI this failed a 12 MB policy's smoke call as "policy trapped"). Refused
/// every time, sigd does not start, and says why in one sentence.
#[test]
#[cfg(target_arch = "x86_64")]
fn memory_images_are_made_at_load_and_tried_again() {
    let mut command = sigd_command(&["--no-cache"]);
    refuse_memfd_seals(&mut command);
    let mut sigd = (command.stdout(Stdio::null()).stderr(Stdio::piped()))
        .spawn()
        .expect("spawn sigd");
    // Had the filter no effect, sigd would serve: waited for 10 s at most.
    let status = wait_exit(&mut sigd);
    let mut stderr = String::new();
    (sigd.stderr.take().unwrap().read_to_string(&mut stderr)).unwrap();
    println!("{}", stderr.lines().last().unwrap_or_default());
    assert_eq!(status.code(), Some(1), "{stderr}");
    let busy = "cannot add seals to the memfd: Device or resource busy (os error 16)";
    let retries = stderr.lines().filter(|line| line.contains("trying again"));
    assert_eq!(
        retries.filter(|line| line.contains(busy)).count(),
        3,
        "{stderr}"
    );
    let refused =
        format!("sigd: the built-in default policy cannot have its initial memory set up: {busy}");
    assert!(stderr.contains(&refused), "{stderr}");
    assert!(!stderr.contains("trapped"), "{stderr}");

    // `sigd policy check` names the same cause, not a failure to link.
    let cache = scratch("memory_images_check");
    let mut check = std::process::Command::new(SIGD);
    check.args(["policy", "check", DEFAULT_POLICY_FILE, "--cache-dir"]);
    refuse_memfd_seals(check.arg(&cache));
    let output = check.output().expect("run sigd policy check");
    let said = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains(&format!("cannot have its initial memory set up: {busy}")),
        "{said}"
    );
    assert!(!said.contains("does not link"), "{said}");
}

/// Compiled policies are cached: the second start loads from the cache, a
/// corrupt entry is detected and rebuilt, and the built-in policy needs no
/// compile at all. Prints the time from exec to the first 200 each way.
#[test]
fn compiled_policy_cache() {
    let dir = scratch("compiled_policy_cache");
    let cache = dir.join("cache");
    let cache_arg = cache.to_str().unwrap();
    let first_200 = |args: &[&str], expect: &str| {
        let best = (0..5)
            .map(|_| {
                let started = Instant::now();
                let sigd = Sigd::start(args);
                sigd.signal("abc", "{}").assert(400, "INVALID_PID");
                sigd.expect_log(expect);
                started.elapsed()
            })
            .min()
            .unwrap();
        println!("exec to first answer, {expect}: {best:?} (best of 5)");
        best
    };

    let cold = first_200(
        &["--policy", STRICT_POLICY, "--no-cache"],
        "compiled=OnLoad",
    );
    first_200(
        &["--policy", STRICT_POLICY, "--cache-dir", cache_arg],
        "compiled=",
    );
    let warm = first_200(
        &["--policy", STRICT_POLICY, "--cache-dir", cache_arg],
        "compiled=FromCache",
    );
    let builtin = first_200(&["--no-cache"], "compiled=AtBuild");
    assert!(warm < cold, "cache {warm:?} vs compile {cold:?}");
    assert!(builtin < cold, "built-in {builtin:?} vs compile {cold:?}");

    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entries[0], &bytes).unwrap();
    let sigd = Sigd::start(&["--policy", STRICT_POLICY, "--cache-dir", cache_arg]);
    sigd.expect_log("corrupt compiled-policy cache entry");
    sigd.expect_log("compiled=OnLoad");
    sigd.signal(42, r#"{"signal": 10}"#)
        .assert(403, "SIGNAL_NOT_ALLOWED");
    drop(sigd);
    Sigd::start(&["--policy", STRICT_POLICY, "--cache-dir", cache_arg])
        .expect_log("compiled=FromCache");

    // A FIFO in an entry's place holds nothing up: it is not read, and the
    // policy is compiled and cached anew. Before, reading it hung the start.
    std::fs::remove_file(&entries[0]).unwrap();
    nix::unistd::mkfifo(&entries[0], nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let sigd = Sigd::start(&["--policy", STRICT_POLICY, "--cache-dir", cache_arg]);
    sigd.expect_log("unusable compiled-policy cache entry");
    sigd.expect_log("compiled=OnLoad");
    assert!(std::fs::metadata(&entries[0]).unwrap().is_file());
    drop(sigd);

    // Whatever sigd's umask, the entry it writes is one it reads again.
    std::fs::remove_file(&entries[0]).unwrap();
    let mut command = sigd_command(&["--policy", STRICT_POLICY, "--cache-dir", cache_arg]);
    // SAFETY: umask(2) is async-signal-safe and allocates nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            nix::libc::umask(0);
            Ok(())
        });
    }
    Sigd::start_command(command).expect_log("compiled=OnLoad");
    Sigd::start(&["--policy", STRICT_POLICY, "--cache-dir", cache_arg])
        .expect_log("compiled=FromCache");
}

/// A cache directory others may write to is not trusted with compiled code.
#[test]
fn unsafe_cache_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("unsafe_cache_directory");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let sigd = Sigd::start(&[
        "--policy",
        STRICT_POLICY,
        "--cache-dir",
        dir.to_str().unwrap(),
    ]);
    sigd.expect_log("compiled policies will not be cached");
    sigd.expect_log("compiled=OnLoad");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}
