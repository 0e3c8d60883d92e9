//! Bounded under abuse, honest to the end, through the real binary: a slow
//! body is cut off, a process whose main thread has exited is still a
//! process, and a SIGHUP right after exec never ends sigd.

mod common;

use common::*;
use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The tests that load the machine most (floods of clients, trees forking
/// without end), run one at a time: the one that times a freeze would
/// otherwise time the others' load (2.96 s once in `make test`, 0.50 s
/// alone).
fn one_heavy_test_at_a_time() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Connections that send their headers (`Content-Length: 100`) and then 5
/// bytes of body, and wait, each get 408 `REQUEST_TIMEOUT` with the JSON
/// body once `--body-timeout` has passed, and their connection is closed:
/// they hold no slot for longer. With every slot of `--max-connections`
/// taken by such clients, `/healthz` is answered as soon as they are cut off.
#[test]
fn slow_bodies_are_cut_off_with_408() {
    let slots = 50;
    let sigd = Sigd::start(&[
        "--no-cache",
        "--body-timeout",
        "1",
        "--max-connections",
        &slots.to_string(),
    ]);
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..slots)
        .map(|_| {
            let mut stream = TcpStream::connect(sigd.addr).unwrap();
            stream
                .write_all(
                    b"POST /api/v1/processes/42/signal HTTP/1.1\r\nHost: x\r\n\
                      Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sig",
                )
                .unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream
        })
        .collect();
    for stream in &mut slow {
        let mut reply = Vec::new();
        // read_to_end returns once sigd closes the connection.
        stream.read_to_end(&mut reply).unwrap();
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        assert!(reply.contains(r#""code":"REQUEST_TIMEOUT""#), "{reply}");
    }
    let cut_off = started.elapsed();
    let health = Instant::now();
    assert_eq!(sigd.get("/healthz").status, 200);
    let answered = health.elapsed();
    println!("{slots} slow bodies cut off after {cut_off:?}; /healthz then in {answered:?}");
    assert!(cut_off < Duration::from_secs(4), "{cut_off:?}");
    assert!(answered < Duration::from_secs(1), "{answered:?}");
}

/// A process whose main thread has called `pthread_exit` while another
/// thread runs shows a zombie leader in `/proc`, yet it runs and `kill`
/// reaches it: sigd signals it (200) instead of answering 400
/// `PROCESS_NOT_RUNNING`.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn a_process_whose_main_thread_exited_is_signalled() {
    require_private_pid_namespace();
    let binary = built_c(
        &scratch("main_thread_exited"),
        "leaderless",
        "#include <pthread.h>\n#include <unistd.h>\n\
         static void *sleeper(void *arg) { (void)arg; sleep(600); return 0; }\n\
         int main(void) { pthread_t t; pthread_create(&t, 0, sleeper, 0); pthread_exit(0); }\n",
    );
    let mut child = spawn_with_default_signals(Command::new(&binary));
    wait_for_status(child.id(), "the main thread to exit", |s| {
        s.contains("State:\tZ") && s.contains("Threads:\t2")
    });
    let sigd = Sigd::start(&["--no-cache"]);
    sigd.signal(child.id(), r#"{"signal": 15}"#).assert(200, "");
    assert_killed_by(&mut child, 15);
}

/// A SIGHUP sent at any moment of sigd's start, from the moment its async
/// runtime's threads exist to 20 ms later (while it loads the policy and
/// binds), never ends it (its default action would): sigd comes up and
/// serves. (Before its `main` runs nothing of sigd's can catch a signal.)
#[test]
fn sighup_right_after_exec_does_not_end_sigd() {
    for delay_ms in 0..=20 {
        let mut child = sigd_command(&["--no-cache"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Its main has run once it has more than one thread.
        wait_for_status(child.id(), "sigd's runtime threads", |s| {
            s.contains("Threads:") && !s.contains("Threads:\t1\n")
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, Signal::SIGHUP).unwrap();
        let stderr = child.stderr.take().unwrap();
        let listening = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("listening on"));
        let alive = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            listening && alive,
            "SIGHUP {delay_ms} ms into start-up ended sigd"
        );
    }
}

/// Escalations are capped: with `--max-escalations 5`, five requests with
/// an escalation are scheduled; the sixth still has its signal delivered
/// (200) and answers `"scheduled": false` for the escalation, which is
/// logged and counted. Before there was no cap: each escalation held two
/// descriptors until sigd had none left.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn escalations_past_the_cap_are_refused_not_failed() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache", "--max-escalations", "5"]);
    let mut stubborn = stubborn();
    let body = r#"{"signal": 15, "escalate": {"after_ms": 600000, "signal": 15}}"#;
    for _ in 0..5 {
        let reply = sigd.signal(stubborn.id(), body);
        reply.assert(200, "");
        assert_eq!(reply.json()["escalation"].get("scheduled"), None);
    }
    let refused = sigd.signal(stubborn.id(), body);
    refused.assert(200, "");
    assert_eq!(refused.json()["escalation"]["scheduled"], false);
    assert_eq!(refused.json()["delivered_to"][0], stubborn.id());
    sigd.expect_log("escalation refused");
    let metrics = sigd.get("/metrics").body;
    assert!(
        metrics.contains("sigd_escalations_refused_total 1"),
        "{metrics}"
    );
    assert_alive_then_kill(&mut stubborn);
}

/// Out of file descriptors is never "no such process", never a signal
/// half sent, and never turns pidfds off. With `nofile` at 64 and 8
/// connections, sigd lowers `--max-escalations` to what fits (and says so):
/// escalations fill their share and are then refused (200, not scheduled;
/// before, they took every descriptor and the next request for a live
/// process was answered 404 `PROCESS_NOT_FOUND`, and sigd logged it had no
/// pidfds). A tree of 60 processes then needs more descriptors than are
/// left: it is answered 503 `BUSY` with `Retry-After`, counted, and not one
/// of the tree is signalled or left stopped.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn out_of_descriptors_is_busy_not_missing() {
    use std::os::unix::process::CommandExt;
    require_private_pid_namespace();
    let mut command = sigd_command(&["--no-cache", "--max-connections", "8"]);
    // SAFETY: setrlimit(2) is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            let limit = nix::libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            nix::libc::setrlimit(nix::libc::RLIMIT_NOFILE, &limit);
            Ok(())
        });
    }
    let sigd = Sigd::start_command(command);
    sigd.expect_log("--max-escalations lowered");
    let mut stubborn = stubborn();
    let body = r#"{"signal": 15, "escalate": {"after_ms": 600000, "signal": 15}}"#;
    let mut scheduled = 0;
    loop {
        let reply = sigd.signal(stubborn.id(), body);
        reply.assert(200, "");
        if reply.json()["escalation"].get("scheduled").is_some() {
            break;
        }
        scheduled += 1;
        assert!(scheduled < 32, "32 escalations held in 64 descriptors?");
    }

    let mut tree = shell("for i in $(seq 60); do sleep 600 & done; wait");
    let children = wait_for_children(tree.id(), 60);
    let refusal = sigd.signal(tree.id(), r#"{"signal": 15, "scope": "tree"}"#);
    println!(
        "{scheduled} escalations scheduled, then refused; a tree of 61: {} {}",
        refusal.status,
        refusal.code()
    );
    refusal.assert(503, "BUSY");
    assert_eq!(refusal.header("retry-after"), Some("1"));
    assert!(!sigd.log().contains("no pidfds"), "{}", sigd.log());
    for pid in children.iter().copied().chain([tree.id() as i32]) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        // Alive and not stopped: asleep, or (the last ones forked) still
        // on their way to `sleep`.
        let running = ["State:\tS", "State:\tR"]
            .iter()
            .any(|s| status.contains(s));
        assert!(running, "{pid} signalled or stopped: {status}");
    }
    assert_alive_then_kill(&mut stubborn);
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(tree.id() as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    tree.wait().unwrap();
    let metrics = sigd.get("/metrics").body;
    assert!(
        metrics.contains(r#"sigd_requests_total{status="503",code="BUSY"} 1"#),
        "{metrics}"
    );
}

/// At shutdown, escalations still pending are cancelled, each logged and
/// audited with its pid, signal and due time (they were dropped without a
/// word), and the target is not signalled.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn pending_escalations_are_cancelled_each_audited() {
    require_private_pid_namespace();
    let mut sigd = Sigd::start(&["--no-cache", "--log-format", "json", "--drain", "1"]);
    let mut stubborn = stubborn();
    let body = r#"{"signal": 15, "escalate": {"after_ms": 600000}}"#;
    sigd.signal(stubborn.id(), body).assert(200, "");
    sigd.send(Signal::SIGTERM);
    assert!(sigd.wait().success());
    let cancelled: Vec<serde_json::Value> = sigd
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["decision"] == "escalation-cancelled")
        .collect();
    assert_eq!(cancelled.len(), 1, "{}", sigd.log());
    let event = &cancelled[0];
    assert_eq!(event["target"], "sigd::audit");
    assert_eq!(event["pid"], stubborn.id());
    assert_eq!(event["signal"], 9);
    let due = event["due_unix_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(due > now + 590_000, "due {due}, now {now}");
    assert_alive_then_kill(&mut stubborn);
}

/// `tree` is atomic: a shell forking `sleep`s in a loop as fast as it can is
/// SIGKILLed with its tree, 20 times, and afterwards not one process it
/// forked is alive (before, 1-2 children forked while the tree was being
/// signalled survived in most runs). The shell's children, orphaned when it
/// dies, would live for hours: any survivor is one that escaped.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn a_tree_forking_while_signalled_is_killed_whole() {
    require_private_pid_namespace();
    let _alone = one_heavy_test_at_a_time();
    let sigd = Sigd::start(&["--no-cache"]);
    let runs = 20;
    let (mut escaped, mut killed) = (0, 0);
    let mut took = Duration::ZERO;
    for run in 0..runs {
        // A number no other test sleeps for: this run's marker.
        let marker = format!("{}", 70_000 + run);
        let mut shell = shell(&format!("while :; do sleep {marker} & done"));
        wait_for_children(shell.id(), 20);
        let asked = Instant::now();
        let reply = sigd.signal(shell.id(), r#"{"signal": 9, "scope": "tree"}"#);
        took += asked.elapsed();
        reply.assert(200, "");
        let answer = reply.json();
        killed += answer["delivered_count"]
            .as_u64()
            .or_else(|| Some(answer["delivered_to"].as_array()?.len() as u64))
            .unwrap();
        assert_killed_by(&mut shell, 9);
        // SIGKILL takes effect at once; give the dying a moment to go.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut alive = sleeping(&marker);
        while !alive.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            alive = sleeping(&marker);
        }
        escaped += alive.len();
        for pid in alive {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    println!(
        "{runs} forking trees: {killed} processes killed, {escaped} escaped; \
         {:?} per tree signal on average",
        took / runs
    );
    assert_eq!(escaped, 0, "descendants escaped a tree SIGKILL");
}

/// The live (not zombie) processes running `sleep <marker>`.
fn sleeping(marker: &str) -> Vec<i32> {
    let wanted = format!("sleep\0{marker}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted.as_bytes())
        })
        .collect()
}

/// Requests still waiting for an exit when the drain ends are answered
/// before their connections close: 100 requests with `wait_ms: 30000` are
/// in flight at SIGTERM (`--drain 2`); each gets 200, its signal delivered,
/// with `"exit": {"exited": false, "cut_short": true, "waited_ms": N}`, N
/// how long it really waited. Before, all 100 connections were closed with
/// no answer at all.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn waits_at_the_end_of_the_drain_are_answered_cut_short() {
    require_private_pid_namespace();
    let mut sigd = Sigd::start(&["--no-cache", "--drain", "2"]);
    let mut stubborn = stubborn();
    let waiting = 100;
    let body = r#"{"signal": 15, "wait_ms": 30000}"#;
    let replies: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..waiting)
            .map(|_| scope.spawn(|| sigd.signal(stubborn.id(), body)))
            .collect();
        // Counting the request that asks.
        wait_for_metric(&sigd, "sigd_requests_in_flight", waiting as f64 + 1.0);
        let stopping = Instant::now();
        sigd.send(Signal::SIGTERM);
        let replies: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        println!(
            "{waiting} waits answered {:?} after SIGTERM",
            stopping.elapsed()
        );
        replies
    });
    for reply in &replies {
        reply.assert(200, "");
        let exit = &reply.json()["exit"];
        assert_eq!(exit["exited"], false, "{}", reply.body);
        assert_eq!(exit["cut_short"], true, "{}", reply.body);
        let waited = exit["waited_ms"].as_u64().unwrap();
        assert!((1000..2500).contains(&waited), "{}", reply.body);
    }
    assert!(sigd.wait().success());
    assert_alive_then_kill(&mut stubborn);
}

/// Waits are bounded in number: with `--max-waits 2`, two requests wait
/// for an exit while a third, its signal delivered, is answered at once
/// with its wait cut short; the two then see the exit when it comes.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn waits_past_their_budget_end_at_once() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache", "--max-waits", "2"]);
    let mut stubborn = stubborn();
    let body = r#"{"signal": 15, "wait_ms": 30000}"#;
    let pid = stubborn.id();
    std::thread::scope(|scope| {
        let waiters: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| sigd.signal(pid, body)))
            .collect();
        wait_for_metric(&sigd, "sigd_requests_in_flight", 3.0);
        std::thread::sleep(Duration::from_millis(100)); // both in their waits
        let asked = Instant::now();
        let third = sigd.signal(pid, body);
        let took = asked.elapsed();
        println!(
            "the third wait, past the budget, answered in {took:?}: {}",
            third.body
        );
        third.assert(200, "");
        assert_eq!(third.json()["exit"]["cut_short"], true, "{}", third.body);
        assert!(took < Duration::from_secs(1), "{took:?}");
        stubborn.kill().unwrap();
        for waiter in waiters {
            let reply = waiter.join().unwrap();
            reply.assert(200, "");
            assert_eq!(reply.json()["exit"]["signal"], 9, "{}", reply.body);
        }
    });
    let _ = stubborn.wait();
}

/// With every connection slot taken by a mix of slow headers, unfinished
/// bodies, idle keep-alives and requests waiting for an exit, a new
/// `/healthz` and a well-behaved signal request are each answered within
/// 1 s: newcomers take the slots of the clients idle longest (slow headers
/// and idle keep-alives first, then unfinished bodies), while the waiting
/// requests keep theirs and are answered when their target exits. Before,
/// newcomers queued in the kernel's backlog until a slot timed out
/// (`/healthz` took 27 s behind waits, and 45 s behind slow bodies).
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn a_full_house_still_answers_health_and_signals() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&[
        "--no-cache",
        "--max-connections",
        "40",
        "--header-timeout",
        "60",
        "--body-timeout",
        "60",
    ]);
    let mut stubborn = stubborn();
    let pid = stubborn.id();
    let wait = r#"{"signal": 15, "wait_ms": 30000}"#;
    std::thread::scope(|scope| {
        let waiters: Vec<_> = (0..10)
            .map(|_| scope.spawn(|| sigd.signal(pid, wait)))
            .collect();
        wait_for_metric(&sigd, "sigd_requests_in_flight", 11.0);
        let open = |first: &[u8]| {
            let mut stream = TcpStream::connect(sigd.addr).unwrap();
            stream.write_all(first).unwrap();
            stream
        };
        let mut held: Vec<TcpStream> = (0..10).map(|_| open(b"POST /api/v1/proc")).collect();
        held.extend((0..10).map(|_| {
            open(
                b"POST /api/v1/processes/42/signal HTTP/1.1\r\nHost: x\r\n\
                  Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sig",
            )
        }));
        held.extend((0..10).map(|_| {
            let mut idle = open(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut reply = [0; 4096];
            assert!(idle.read(&mut reply).unwrap() > 0);
            idle
        }));
        std::thread::sleep(Duration::from_millis(200)); // all 40 slots taken

        let asked = Instant::now();
        assert_eq!(sigd.get("/healthz").status, 200);
        let health = asked.elapsed();
        let mut target = target();
        let asked = Instant::now();
        sigd.signal(target.id(), r#"{"signal": 15}"#)
            .assert(200, "");
        let signal = asked.elapsed();
        assert_killed_by(&mut target, 15);
        println!("with 40 of 40 slots taken: /healthz in {health:?}, a signal in {signal:?}");
        assert!(health < Duration::from_secs(1), "{health:?}");
        assert!(signal < Duration::from_secs(1), "{signal:?}");

        stubborn.kill().unwrap();
        for waiter in waiters {
            let reply = waiter.join().unwrap();
            reply.assert(200, "");
            assert_eq!(reply.json()["exit"]["signal"], 9, "{}", reply.body);
        }
        drop(held);
    });
    let _ = stubborn.wait();
    let metrics = sigd.get("/metrics").body;
    let evicted = metrics
        .lines()
        .filter(|line| line.starts_with("sigd_connections_evicted_total"))
        .collect::<Vec<_>>();
    println!("{evicted:?}");
    assert!(!evicted.is_empty(), "{metrics}");
}

/// A tree that cannot be stopped holds up no one else. A process waiting
/// in vfork (state D: SIGSTOP cannot stop it) makes every tree signal to it
/// wait out the freeze's limit, 100 ms a walk. While 16 clients keep
/// sending such signals, `/healthz` is still answered within a few
/// milliseconds. Before, the freeze's wait blocked a worker of the async
/// runtime (2 here), and `/healthz` waited hundreds of milliseconds to
/// seconds behind them.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn an_unstoppable_tree_holds_up_no_one() {
    require_private_pid_namespace();
    let _alone = one_heavy_test_at_a_time();
    let sigd = Sigd::start(&["--no-cache"]);
    // The child of vfork pauses in the parent's memory; the parent waits in D.
    let vforks = "import ctypes, os\nlibc = ctypes.CDLL(None)\n\
                  print(os.getpid(), flush=True)\nif libc.syscall(58) == 0:\n    libc.syscall(34)\n";
    let mut stuck = Command::new("/usr/bin/python3");
    stuck.args(["-c", vforks]).stdout(Stdio::piped());
    let mut stuck = spawn_with_default_signals(stuck);
    wait_for_status(stuck.id(), "a parent waiting in vfork", |s| {
        s.contains("State:\tD")
    });
    let pid = stuck.id();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let latencies = std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let reply = sigd.signal(pid, r#"{"signal": "WINCH", "scope": "tree"}"#);
                    assert_eq!(reply.status, 200, "{}", reply.body);
                }
            });
        }
        std::thread::sleep(Duration::from_millis(500));
        let mut latencies: Vec<Duration> = (0..20)
            .map(|_| {
                let started = Instant::now();
                assert_eq!(sigd.get("/healthz").status, 200);
                let took = started.elapsed();
                std::thread::sleep(Duration::from_millis(20));
                took
            })
            .collect();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        latencies.sort();
        latencies
    });
    println!("/healthz under unstoppable tree signals: {latencies:?}");
    let _ = Command::new("pkill")
        .args(["-9", "-P", &pid.to_string()])
        .status();
    stuck.kill().unwrap();
    let _ = stuck.wait();
    let median = latencies[latencies.len() / 2];
    assert!(median < Duration::from_millis(50), "median {median:?}");
}

/// What the host notes of a policy's calls is bounded, and a signal the
/// policy sent is audited whatever it does after. A hostile policy signals
/// a child, then asks 4 times for a header whose name is 6 MB long. It is
/// stopped at the first such call (answered 200, delivered, `incomplete`),
/// the audit event says the signal was delivered, and sigd's peak memory
/// grows by the string's passing copies (11.8 MB when measured), not by
/// what it kept. Before: each name was kept whole for the record (a
/// review's probe, 8 reads of 13 MB, grew sigd's peak from 15 to 122 MB a
/// request), and the audit event, larger than the whole log queue, was
/// dropped: a signal sent and never audited (this test failed then at the
/// audit line; without the bound, the name noted once, it fails at
/// `incomplete`).
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn a_policys_host_calls_are_noted_within_bounds() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache", "--policy", HOSTILE_POLICY]);
    let peak = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", sigd.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = peak();
    let mut target = target();
    let pid = target.id();
    let body = format!(r#"{{"kill": [[{pid}, 10, "process"]], "read": [6000000, 4]}}"#);
    let reply = sigd.signal(pid, &body);
    println!("{} {}", reply.status, reply.body);
    reply.assert(200, "");
    assert_eq!(reply.json()["delivered_to"], serde_json::json!([pid]));
    assert!(reply.json()["incomplete"].is_string(), "{}", reply.body);
    assert_killed_by(&mut target, 10);
    sigd.expect_log(&format!(r#"decision="delivered" delivered_to="[{pid}]""#));
    let grown = peak() - before;
    println!("peak RSS grew by {grown} KiB");
    assert!(grown < 64 * 1024, "peak RSS grew by {grown} KiB");
}

/// A delivered signal is never answered as a failure, even when the policy
/// fails after delivering it: a policy that signals and then traps gets
/// 200 from the host, with the pids reached and `incomplete` saying that
/// nothing else the request asked for was done. Before: 500 `INTERNAL`
/// while the audit said "delivered".
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn a_policy_failing_after_delivery_is_answered_delivered() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache", "--policy", HOSTILE_POLICY]);
    let mut target = target();
    let pid = target.id();
    let body = format!(r#"{{"kill": [[{pid}, 15, "process"]], "then": "trap"}}"#);
    let reply = sigd.signal(pid, &body);
    println!("{} {}", reply.status, reply.body);
    reply.assert(200, "");
    let answer = reply.json();
    assert_eq!(answer["delivered_to"], serde_json::json!([pid]));
    assert_eq!(answer["signal"], 15);
    assert!(
        answer["incomplete"]
            .as_str()
            .is_some_and(|why| why.len() > 20)
    );
    assert_killed_by(&mut target, 15);
    sigd.expect_log("policy failed");
    assert!(
        sigd.get("/metrics")
            .body
            .contains("sigd_policy_traps_total 1"),
        "the trap is counted"
    );
}

/// A policy's words cannot start a log line of their own: settings whose
/// key holds a newline and a forged audit event (with a record) are
/// rejected by the default policy in a sentence quoting that key, and that
/// sentence stays on its line, escaped, both on a reload (the log) and at
/// start (stderr). Before, the forged event stood on a line of its own
/// (and `sigd policy replay` read the record such a line held). In JSON, a
/// sentence of 20,000 bytes is cut and every line stays JSON.
#[test]
fn a_policys_words_start_no_line_of_their_own() {
    let dir = scratch("a_policys_words_start_no_line_of_their_own");
    let settings = dir.join("settings.json");
    std::fs::write(&settings, r#"{"rules": []}"#).unwrap();
    let args = [
        "--no-cache",
        "--policy-settings",
        settings.to_str().unwrap(),
    ];
    let sigd = Sigd::start(&args);
    let forged = "FORGED sigd::audit: signal request decision=\\\"delivered\\\"";
    let rejected = format!(r#"{{"rules": [{{"x\n{forged}": 1}}]}}"#);
    std::fs::write(&settings, &rejected).unwrap();
    sigd.send(Signal::SIGHUP);
    sigd.expect_log("rejected the settings");
    let log = sigd.log();
    assert!(
        log.contains(r#"unknown field `x\nFORGED sigd::audit"#),
        "{log}"
    );
    assert!(!log.lines().any(|line| line.starts_with("FORGED")), "{log}");
    drop(sigd);

    let output = sigd_command(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(r#"unknown field `x\nFORGED"#), "{stderr}");
    assert!(
        !stderr.lines().any(|line| line.starts_with("FORGED")),
        "{stderr}"
    );

    // In JSON, a sentence of any length leaves every line whole JSON: the
    // sentence is cut, not the line.
    std::fs::write(&settings, r#"{"rules": []}"#).unwrap();
    let sigd = Sigd::start(&[&args[..], &["--log-format", "json"]].concat());
    let long = format!(r#"{{"rules": [{{"{}": 1}}]}}"#, "y".repeat(20_000));
    std::fs::write(&settings, long).unwrap();
    sigd.send(Signal::SIGHUP);
    sigd.expect_log("rejected the settings");
    let log = sigd.log();
    for line in log.lines() {
        let parsed = serde_json::from_str::<serde_json::Value>(line);
        assert!(parsed.is_ok(), "not JSON: {line}");
    }
    assert!(
        log.contains("bytes more)"),
        "the sentence was not cut: {log}"
    );
}

/// C: a tree a tree signal can never finish stopping. Its root T is traced
/// by its parent (outside the tree), which cancels every SIGSTOP sent to T,
/// so T keeps running and, every 20 ms, makes a child that waits in vfork
/// (state D: SIGSTOP cannot stop it) for a grandchild that pauses. Every
/// walk of the freeze finds a new process that will not stop. Prints T's
/// pid; runs until killed.
const NEVER_STOPS: &str = r#"
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t t = fork();
    if (t == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        usleep(100000);
        for (;;) {
            if (fork() == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (vfork() == 0) for (;;) syscall(SYS_pause);
                _exit(0);
            }
            while (waitpid(-1, 0, WNOHANG) > 0) {}
            usleep(20000);
        }
    }
    if (ptrace(PTRACE_SEIZE, t, 0, 0) != 0) { perror("seize"); return 1; }
    printf("%d\n", t);
    fflush(stdout);
    for (;;) {
        int status;
        if (waitpid(t, &status, __WALL) < 0 || WIFEXITED(status) || WIFSIGNALED(status)) return 0;
        int sig = WSTOPSIG(status);
        if (status >> 16 == PTRACE_EVENT_STOP || sig == SIGSTOP) sig = 0;
        ptrace(PTRACE_CONT, t, 0, (void *)(long)sig);
    }
}
"#;

/// [`NEVER_STOPS`] built in `dir` and run as `uid`: the tracer, and T's pid.
fn never_stopping_tree(dir: &std::path::Path, uid: u32) -> (std::process::Child, u32) {
    let binary = built_c(dir, "never-stops", NEVER_STOPS);
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(&binary)
        .stdout(Stdio::piped());
    let mut tracer = spawn_with_default_signals(command);
    let mut line = String::new();
    BufReader::new(tracer.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let t: u32 = line.trim().parse().expect("T's pid");
    wait_for_children(t, 2);
    (tracer, t)
}

/// The C program `source` built in `dir` as `name` (with `cc`, which
/// Rust's linking needs anyway), and its path.
fn built_c(dir: &std::path::Path, name: &str, source: &str) -> std::path::PathBuf {
    let (file, binary) = (dir.join(format!("{name}.c")), dir.join(name));
    std::fs::write(&file, source).unwrap();
    let built = Command::new("cc")
        .args(["-pthread", "-o"])
        .arg(&binary)
        .arg(&file)
        .status()
        .unwrap();
    assert!(built.success(), "cc {}", file.display());
    binary
}

/// Kill `tracer` and the tree under it.
fn end_tree(mut tracer: std::process::Child, t: u32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(t as i32), Signal::SIGKILL);
    let _ = (tracer.kill(), tracer.wait());
}

/// A tree that never stops growing processes sigd cannot stop is signalled
/// within the freeze's budget (half a second of walks and waits), as far
/// as it was found. Before, each walk waited up to 100 ms for the new
/// process, and the freeze walked 64 times: one request took 6.6 s on an
/// idle machine, 46 s under load, holding its connection and a thread.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn a_tree_that_never_stops_growing_is_signalled_within_the_freezes_budget() {
    require_private_pid_namespace();
    let _alone = one_heavy_test_at_a_time();
    let dir = scratch("abuse-never-stops");
    let (tracer, t) = never_stopping_tree(&dir, 0);
    let sigd = Sigd::start(&["--no-cache"]);
    let started = Instant::now();
    let reply = sigd.signal(t, r#"{"signal": "WINCH", "scope": "tree"}"#);
    let took = started.elapsed();
    end_tree(tracer, t);
    reply.assert(200, "");
    println!("a tree signal to a tree that never stops: {took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

/// One caller's slow requests hold at most its share of the connections
/// (an eighth of `--max-connections` being answered at once, all callers
/// held to shares half); past it they are answered 503 `BUSY` at once. So
/// with nobody's 40 clients sending tree signals to a tree that never
/// stops, on a sigd of 16 connections, root's `/healthz` and signals all
/// get in. Before, nobody's requests held every slot, root's newcomer was
/// the only connection that could be ended to make room, and nobody's next
/// connection ended it: most of root's requests were reset. Those
/// refusals are counted (`sigd_requests_over_share_total`).
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn one_callers_slow_requests_hold_only_its_share_of_connections() {
    require_private_pid_namespace();
    let _alone = one_heavy_test_at_a_time();
    let dir = scratch("abuse-slow-share");
    let (tracer, t) = never_stopping_tree(&dir, 65534);
    let sigd = Sigd::start(&["--no-cache", "--max-connections", "16", "--max-waits", "4"]);
    let flood = r#"
import socket, sys, threading, time
port, pid, until = int(sys.argv[1]), sys.argv[2].encode(), time.time() + float(sys.argv[3])
body = b'{"signal": "WINCH", "scope": "tree"}'
request = (b"POST /api/v1/processes/" + pid + b"/signal HTTP/1.1\r\nHost: x\r\n"
           b"Content-Type: application/json\r\nConnection: close\r\n"
           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
seen = {}
def client():
    while time.time() < until:
        try:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request)
            status = s.recv(4096)[9:12]
            s.close()
        except OSError as error:
            status = error.strerror
        seen[status] = seen.get(status, 0) + 1
threads = [threading.Thread(target=client) for _ in range(40)]
for thread in threads: thread.start()
for thread in threads: thread.join()
print("nobody's requests:", seen)
"#;
    let port = sigd.addr.port().to_string();
    let mut flooding = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["/usr/bin/python3", "-c", flood, &port, &t.to_string(), "4"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let mut answered = Vec::new();
    for round in 0..10 {
        let started = Instant::now();
        let health = reply_to(
            &sigd,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let mut child = target();
        let body = r#"{"signal": 15}"#;
        let request = format!(
            "POST /api/v1/processes/{}/signal HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            child.id(),
            body.len()
        );
        let signal = reply_to(&sigd, request.as_bytes());
        let took = started.elapsed();
        let _ = (child.kill(), child.wait());
        answered.push((round, took, health, signal));
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = flooding.wait();
    end_tree(tracer, t);
    // The operator can tell those refusals from running out of room.
    let over_share = metric(&sigd, "sigd_requests_over_share_total");
    assert!(over_share > 0.0, "no request counted over its share");
    let failed: Vec<_> = (answered.iter())
        .filter(|(_, took, health, signal)| {
            !(health.starts_with("HTTP/1.1 200") && signal.starts_with("HTTP/1.1 200"))
                || *took > Duration::from_secs(2)
        })
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}

/// `request` on a fresh connection to `sigd`: the whole reply, or what
/// went wrong (a reset connection, say).
fn reply_to(sigd: &Sigd, request: &[u8]) -> String {
    let exchange = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect(sigd.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(request)?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    };
    exchange().unwrap_or_else(|error| format!("failed: {error}"))
}
