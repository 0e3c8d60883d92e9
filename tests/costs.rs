//! What one signal request costs the machine, counted with strace on the
//! real `sigd` binary: the `/proc` files it reads and the syscalls it makes
//! on the request path. Run inside a private PID namespace (`make test`,
//! which also installs strace).

mod common;

use common::*;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Requests counted per measurement.
const REQUESTS: usize = 200;

/// Syscalls that wait (for work, a lock, a timer) rather than do a
/// request's work.
const WAITS: &[&str] = &[
    "epoll_wait",
    "epoll_pwait",
    "futex",
    "clock_nanosleep",
    "nanosleep",
    "sched_yield",
];

/// Threads off the request path: the policy deadline's ticker and the log
/// writer.
const OFF_THE_PATH: &[&str] = &["sigd-epoch", "sigd-log"];

/// A process-scope signal (the default policy, the audit event at `info`)
/// reads no `/proc` file at all: the target's pidfd says whether it has
/// exited (one `poll`), no rule asked for uids, and the guard needs a
/// start time only for a pid an ancestor of sigd has. It sends one signal
/// (no probe of the target's liveness besides) and makes at most 20
/// syscalls on the request path, waits aside.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn a_process_signal_reads_no_proc_file() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache"]);
    let mut target = stubborn();
    let body = r#"{"signal": 15}"#;
    let counted = count_syscalls(&sigd, target.id(), body);
    let per_request = |n: usize| n as f64 / REQUESTS as f64;
    let proc_files: usize = (counted.opened.iter())
        .filter(|(path, _)| path.starts_with("/proc/"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(proc_files, 0, "/proc files opened: {:?}", counted.opened);
    let polled: usize = ["poll", "ppoll"]
        .map(|call| counted.calls.get(call).copied().unwrap_or(0))
        .iter()
        .sum();
    assert_eq!(per_request(polled), 1.0, "polls (of the pidfd) per request");
    let sent = counted.calls.get("pidfd_send_signal").copied().unwrap_or(0);
    assert_eq!(per_request(sent), 1.0, "pidfd_send_signal per request");
    let work: usize = (counted.calls.iter())
        .filter(|(call, _)| !WAITS.contains(&call.as_str()))
        .map(|(_, n)| n)
        .sum();
    assert!(
        per_request(work) <= 20.0,
        "{} syscalls per request, waits aside: {:?}",
        per_request(work),
        counted.calls
    );
    assert_alive_then_kill(&mut target);
}

/// A group-scope signal with sigd's authority (no rule asks for anyone's
/// uids) finds the group's members without reading their files: the target
/// leads a group of three, and of all the processes `/proc` lists, sigd
/// opens only the target's `stat`, and no `status` at all; the answer names
/// the three.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn a_group_signal_reads_no_members_files() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache"]);
    let mut target = shell("trap '' USR1; sleep 600 & sleep 600 & wait");
    let mut group: Vec<i32> = wait_for_children(target.id(), 2).into_iter().collect();
    group.push(target.id() as i32);
    group.sort();
    let body = r#"{"signal": 10, "scope": "group"}"#;
    let reply = sigd.signal(target.id(), body);
    assert_eq!(
        reply.json()["delivered_to"],
        serde_json::json!(group),
        "{}",
        reply.body
    );
    let counted = count_syscalls(&sigd, target.id(), body);
    let own = format!("/proc/{}/stat", target.id());
    let others: Vec<_> = (counted.opened.iter())
        .filter(|(path, _)| path.starts_with("/proc/") && **path != own)
        .filter(|(path, _)| path.ends_with("/stat") || path.ends_with("/status"))
        .collect();
    assert!(
        others.is_empty(),
        "other processes' files opened: {others:?}"
    );
    assert_alive_then_kill(&mut target);
}

/// A policy call shorter than the deadline's tick (1 ms) reads no thread's
/// CPU clock, which is a syscall (no vDSO answers it): its deadline counts
/// wall time until a tick. sigd runs under strace stopping only at
/// `clock_gettime` (seccomp lets every other syscall, and the vDSO's clock
/// reads, go at full speed), so calls keep their usual length; the few that
/// a tick falls into may read it.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn a_short_policy_call_reads_no_cpu_clock() {
    require_private_pid_namespace();
    let trace = scratch("costs-clock").join("strace.txt");
    let mut command = Command::new("strace");
    command
        .args([
            "-f",
            "-qq",
            "--seccomp-bpf",
            "-e",
            "trace=clock_gettime",
            "-o",
        ])
        .arg(&trace)
        .arg(SIGD)
        .args(["serve", "--listen", "127.0.0.1:0", "--no-cache"])
        .env_remove("SIGD_TOKEN")
        .env("RUST_LOG", "info");
    let sigd = Sigd::start_command(command);
    let mut target = stubborn();
    let mut connection = KeepAlive::open(&sigd, target.id(), r#"{"signal": 15}"#);
    let cpu_clock_reads = || {
        std::fs::read_to_string(&trace)
            .unwrap_or_default()
            .matches("CLOCK_THREAD_CPUTIME_ID")
            .count()
    };
    for _ in 0..50 {
        connection.one();
    }
    let before = cpu_clock_reads();
    for _ in 0..REQUESTS {
        connection.one();
    }
    let read = cpu_clock_reads() - before;
    // Before: two per request (the clock stopped and started around the
    // signal), and more.
    assert!(
        read < REQUESTS / 2,
        "{read} CPU-clock reads in {REQUESTS} requests"
    );
    assert_alive_then_kill(&mut target);
}

/// One keep-alive connection sending the same signal request again and again.
struct KeepAlive {
    connection: TcpStream,
    answers: BufReader<TcpStream>,
    request: String,
}

impl KeepAlive {
    /// A connection to `sigd` for requests sending `body` to `pid`.
    fn open(sigd: &Sigd, pid: u32, body: &str) -> KeepAlive {
        let connection = TcpStream::connect(sigd.addr).unwrap();
        connection.set_nodelay(true).unwrap();
        let answers = BufReader::new(connection.try_clone().unwrap());
        let request = format!(
            "POST /api/v1/processes/{pid}/signal HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        KeepAlive {
            connection,
            answers,
            request,
        }
    }

    /// One request, answered 200.
    fn one(&mut self) {
        self.connection.write_all(self.request.as_bytes()).unwrap();
        let mut status = String::new();
        self.answers.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.answers.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut answer = vec![0; length];
        self.answers.read_exact(&mut answer).unwrap();
    }
}

/// What strace saw of sigd's request path while `REQUESTS` requests went
/// over one keep-alive connection.
struct Counted {
    /// Each syscall's name, and how often it was made.
    calls: BTreeMap<String, usize>,
    /// The files opened, and how often each was.
    opened: BTreeMap<String, usize>,
}

/// Send `body` to `pid` over one keep-alive connection, 50 times to warm
/// up, then `REQUESTS` times with strace attached to sigd; what it counted
/// on the threads of the request path.
fn count_syscalls(sigd: &Sigd, pid: u32, body: &str) -> Counted {
    let mut connection = KeepAlive::open(sigd, pid, body);
    for _ in 0..50 {
        connection.one();
    }
    // A directory per sigd: tests run side by side.
    let trace = scratch(&format!("costs-{}", sigd.pid())).join("strace.txt");
    let mut strace = Command::new("strace")
        // -y: a descriptor's path beside it (sigd opens a process's files
        // relative to the /proc it holds open).
        .args(["-f", "-qq", "-y", "-o"])
        .arg(&trace)
        .args(["-p", &sigd.pid().to_string()])
        .stderr(Stdio::null())
        .spawn()
        .expect("strace (make test installs it)");
    wait_until_traced(sigd.pid());
    for _ in 0..REQUESTS {
        connection.one();
    }
    std::thread::sleep(Duration::from_millis(100));
    let threads = thread_names(sigd.pid());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(strace.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    strace.wait().unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    let mut counted = Counted {
        calls: BTreeMap::new(),
        opened: BTreeMap::new(),
    };
    for line in text.lines() {
        // "TID call(args" (a call's start; "<... call resumed>" ends one).
        let Some((tid, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let thread = tid.parse().ok().and_then(|tid: i32| threads.get(&tid));
        if thread.is_some_and(|name| OFF_THE_PATH.contains(&name.as_str())) {
            continue;
        }
        let rest = rest.trim_start();
        let Some((call, args)) = rest.split_once('(') else {
            continue;
        };
        if call.starts_with('<') || !call.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        *counted.calls.entry(call.to_string()).or_default() += 1;
        if call == "openat" {
            // `3</proc>, "42/stat", O_RDONLY|O_CLOEXEC) = 9</proc/42/stat>`
            // or `AT_FDCWD, "/proc/42/stat", ...`: the path, made whole.
            let (dir, rest) = args.split_once(',').unwrap_or(("", args));
            let path = rest.split('"').nth(1).unwrap_or(rest);
            let dir = dir
                .split_once('<')
                .and_then(|(_, dir)| dir.strip_suffix('>'));
            let path = match dir {
                Some(dir) if !path.starts_with('/') => format!("{dir}/{path}"),
                _ => path.to_string(),
            };
            *counted.opened.entry(path).or_default() += 1;
        }
    }
    counted
}

/// Wait until strace traces every thread of `pid` (each one's `TracerPid`).
fn wait_until_traced(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        let traced = tasks.filter_map(Result::ok).all(|task| {
            std::fs::read_to_string(task.path().join("status"))
                .unwrap_or_default()
                .lines()
                .any(|line| line.starts_with("TracerPid:") && line.trim_end() != "TracerPid:\t0")
        });
        if traced {
            return;
        }
        assert!(Instant::now() < deadline, "strace did not attach");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The name of each thread of `pid`, by thread id.
fn thread_names(pid: i32) -> HashMap<i32, String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|task| {
            let tid = task.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
            Some((tid, name.trim().to_string()))
        })
        .collect()
}
