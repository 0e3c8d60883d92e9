//! Helpers shared by the integration tests: start the real `sigd` binary,
//! talk raw HTTP/1.1 to it, start and inspect target processes, and build
//! small WAT policy components.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test file uses a different part"
)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `sigd` binary cargo built for these tests.
pub const SIGD: &str = env!("CARGO_BIN_EXE_sigd");

/// The default policy as a file (guest/), built by host/build.rs.
pub const DEFAULT_POLICY_FILE: &str = env!("SIGD_POLICY_DEFAULT");
/// The strict example and the test guests, built for the tests only.
pub use sigd_test_guests::{FLOOR_POLICY, HOSTILE_POLICY, STRICT_POLICY, WASI_PROBE_POLICY};

/// `io`, again for as long as it fails with `EINTR`. A blocking read with a
/// timeout (`SO_RCVTIMEO`) fails so when the test process is stopped and
/// continued (a debugger, a cgroup freezer, a CI runner pausing the machine),
/// with no signal handler installed; std retries `read_to_end` and
/// `read_line`, not a single `read` or `recv`.
pub fn retrying<T>(mut io: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    loop {
        match io() {
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            done => return done,
        }
    }
}

/// Panics unless this test runs as pid 1 of a private PID namespace, where the
/// only processes sigd could ever signal are this test's own. Tests that call
/// it are `#[ignore]`d with that reason, so a plain `cargo test` skips them;
/// `make test` runs them there (`--include-ignored`).
pub fn require_private_pid_namespace() {
    assert_eq!(
        std::process::id(),
        1,
        "this test signals real processes: run it in a private PID namespace \
         (`make test` runs the tests under `unshare --pid --fork --mount-proc`)"
    );
}

/// A running `sigd serve`, killed when dropped.
pub struct Sigd {
    child: Child,
    pub addr: SocketAddr,
    stderr: Captured,
}

/// A child's stderr, read line by line into a log on a thread of its own;
/// bytes that are not UTF-8 are kept as U+FFFD, so no line ends the reading
/// early.
pub struct Captured {
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Captured {
    /// Read `stderr`, handing `each` line to `seen` as it comes.
    pub fn start(stderr: ChildStderr, mut seen: impl FnMut(&str) + Send + 'static) -> Captured {
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            let mut stderr = BufReader::new(stderr);
            let mut bytes = Vec::new();
            while matches!(stderr.read_until(b'\n', &mut bytes), Ok(1..)) {
                let text = String::from_utf8_lossy(&bytes);
                let line = text.strip_suffix('\n').unwrap_or(&text);
                seen(line);
                let mut log = sink.lock().unwrap();
                log.push_str(line);
                log.push('\n');
                bytes.clear();
            }
        });
        Captured {
            log,
            reader: Some(reader),
        }
    }

    /// What was read so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait (at most 10 s) until the pipe is read to its end: once the
    /// child has exited, the log holds all it wrote.
    pub fn wait_for_the_end(&mut self) {
        let Some(reader) = self.reader.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !reader.is_finished() {
            assert!(
                Instant::now() < deadline,
                "a stderr is still open 10 s after its process exited"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        reader.join().expect("the stderr reader panicked");
    }
}

impl Sigd {
    /// `sigd serve --listen 127.0.0.1:0 <args>`, once it listens.
    pub fn start(args: &[&str]) -> Sigd {
        Sigd::start_command(sigd_command(args))
    }

    /// Start a prepared `sigd serve` command (see [`sigd_command`]) and wait
    /// until it logs its address.
    pub fn start_command(mut command: Command) -> Sigd {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sigd");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = Captured::start(child.stderr.take().expect("piped stderr"), move |line| {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                // The address ends where the log line (text or JSON) goes on.
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
                    .collect();
                let _ = tx.send(addr);
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => Sigd {
                child,
                addr: addr.parse().expect("sigd logs a socket address"),
                stderr,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("sigd did not start:\n{}", stderr.log());
            }
        }
    }

    /// sigd's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What sigd has logged so far.
    pub fn log(&self) -> String {
        self.stderr.log()
    }

    /// Wait (at most 10 s) until sigd's log holds `needle`; panics with the log if not.
    #[track_caller]
    pub fn expect_log(&self, needle: &str) {
        expect_in_log(|| self.log(), needle);
    }

    /// Wait (at most 10 s) until sigd's log holds `needle` `count` times;
    /// the log then. Panics with the log if not.
    #[track_caller]
    pub fn expect_log_count(&self, needle: &str, count: usize) -> String {
        expect_in_log_times(|| self.log(), needle, count)
    }

    /// Wait (at most 10 s) for sigd to exit, and then (at most 10 s more)
    /// until its log holds all it wrote; its exit status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let status = wait_exit(&mut self.child);
        self.stderr.wait_for_the_end();
        status
    }

    /// Whether sigd is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait sigd").is_none()
    }

    /// `POST /api/v1/processes/{pid}/signal` with `body` and extra header lines.
    pub fn signal(&self, pid: impl std::fmt::Display, body: &str) -> Reply {
        self.post(&format!("/api/v1/processes/{pid}/signal"), body, &[])
    }

    /// A POST with a JSON body and extra `Name: value` header lines.
    pub fn post(&self, path: &str, body: &str, headers: &[&str]) -> Reply {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: sbx-test.local\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for header in headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        self.raw(format!("{head}\r\n{body}").as_bytes())
    }

    /// A GET of `path`.
    pub fn get(&self, path: &str) -> Reply {
        self.raw(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
    }

    /// The sha256 of the policy sigd serves with, from `/healthz`.
    pub fn policy_sha256(&self) -> String {
        let health = self.get("/healthz");
        assert_eq!(health.status, 200, "{}", health.body);
        health.json()["policy"]["sha256"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Send sigd a signal (SIGHUP reloads its policy).
    pub fn send(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// sigd's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// Send raw bytes on a fresh connection and read the whole reply.
    pub fn raw(&self, request: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(self.addr).expect("connect to sigd");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        // The server may answer (413) and close before reading all of a large
        // request; a failed write is then expected, the reply is what counts.
        let _ = stream.write_all(request);
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        Reply::parse(&reply).unwrap_or_else(|| {
            panic!(
                "unparsable reply {:?}\nsigd log:\n{}",
                String::from_utf8_lossy(&reply),
                self.log()
            )
        })
    }
}

impl Drop for Sigd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait (at most 10 s) until `log()` holds `needle` (sigd writes its log
/// from a thread of its own, a little after the fact); panics with the log if not.
#[track_caller]
pub fn expect_in_log(log: impl Fn() -> String, needle: &str) {
    expect_in_log_times(log, needle, 1);
}

/// [`expect_in_log`] for `count` times `needle`; the log then.
#[track_caller]
pub fn expect_in_log_times(log: impl Fn() -> String, needle: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = log();
        let found = text.matches(needle).count();
        if found >= count {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{found} of {count} {needle:?} in sigd's log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `sigd serve --listen 127.0.0.1:0 <args>`, with no token in its
/// environment and `RUST_LOG=info`. Tests pass `--no-cache` (or a
/// `--cache-dir` of their own): the default cache, /var/cache/sigd as root,
/// is the machine's.
pub fn sigd_command(args: &[&str]) -> Command {
    sigd_command_in(&[], args)
}

/// [`sigd_command`] run by `wrapper` (`unshare --pid --fork`, say: the
/// wrapper and its arguments, then sigd's); none runs sigd itself.
pub fn sigd_command_in(wrapper: &[&str], args: &[&str]) -> Command {
    let mut command = match wrapper.split_first() {
        Some((program, its_args)) => {
            let mut command = Command::new(program);
            command.args(its_args).arg(SIGD);
            command
        }
        None => Command::new(SIGD),
    };
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("SIGD_TOKEN")
        .env("RUST_LOG", "info");
    command
}

/// One HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    fn parse(raw: &[u8]) -> Option<Reply> {
        let text = std::str::from_utf8(raw).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        Some(Reply {
            status,
            headers,
            body: body.to_string(),
        })
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.body))
    }

    /// The `code` of an error body ("" for a success body).
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }

    /// A header's value (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts `status` and error `code`, and that an error body carries a sentence.
    #[track_caller]
    pub fn assert(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "reply: {}",
            self.body
        );
        if status == 200 {
            assert_eq!(self.json()["success"], serde_json::json!(true));
            assert!(self.body.starts_with(r#"{"success":true"#), "{}", self.body);
        } else {
            let error = self.json()["error"].as_str().map(str::to_string);
            assert!(
                error.is_some_and(|e| e.len() > 10),
                "no sentence: {}",
                self.body
            );
        }
    }
}

/// Wait (at most 10 s) until `pid` has at least `count` children (as
/// `/proc/<pid>/task/<pid>/children` lists them); their pids.
#[track_caller]
pub fn wait_for_children(pid: u32, count: usize) -> std::collections::BTreeSet<i32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let children: std::collections::BTreeSet<i32> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect();
        if children.len() >= count {
            return children;
        }
        assert!(Instant::now() < deadline, "{pid} has children {children:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One number from `/metrics` (the first line starting with `series`).
pub fn metric(sigd: &Sigd, series: &str) -> f64 {
    let text = sigd.get("/metrics").body;
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

/// Wait (at most 10 s) until the number `series` in `/metrics` is at
/// least `at_least`.
#[track_caller]
pub fn wait_for_metric(sigd: &Sigd, series: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(sigd, series) < at_least {
        assert!(Instant::now() < deadline, "{series} stays below {at_least}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process for sigd to signal: `sleep 600`, in this test's namespace.
pub fn target() -> Child {
    let mut command = Command::new("sleep");
    command.arg("600");
    spawn_with_default_signals(command)
}

/// Spawn `command` with every signal at its default action: a shell that
/// started the tests in the background may have left SIGINT and SIGQUIT
/// ignored, and children inherit that.
pub fn spawn_with_default_signals(mut command: Command) -> Child {
    // SAFETY: between fork and exec this only calls signal(2), sigemptyset(3)
    // and sigprocmask(2), all async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            for signal in 1..=nix::libc::SIGRTMAX() {
                nix::libc::signal(signal, nix::libc::SIG_DFL);
            }
            let mut none = std::mem::zeroed();
            nix::libc::sigemptyset(&mut none);
            nix::libc::sigprocmask(nix::libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    command.spawn().expect("spawn a target process")
}

/// `sh -c script` in a process group of its own, signals at their defaults.
pub fn shell(script: &str) -> Child {
    let mut command = Command::new("sh");
    command.args(["-c", script]).process_group(0);
    spawn_with_default_signals(command)
}

/// Wait (at most 10 s, looking every 0.1 ms) until `/proc/<pid>/status`
/// satisfies `ready`; panics saying it was waiting for `what`.
#[track_caller]
pub fn wait_for_status(pid: u32, what: &str, ready: impl Fn(&str) -> bool) {
    let status = format!("/proc/{pid}/status");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&status).unwrap_or_default();
        if ready(&text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited in vain for {what}: {text}"
        );
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// A `sleep` that ignores SIGTERM, once it does (a signal sent earlier would
/// reach the shell before its `trap`).
pub fn stubborn() -> Child {
    let child = shell("trap '' TERM; exec sleep 600");
    let ignores_term = |text: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix("SigIgn:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (15 - 1)) != 0)
    };
    wait_for_status(child.id(), "a stubborn sleep", |text| {
        ignores_term(text) && text.starts_with("Name:\tsleep")
    });
    child
}

/// Run `command` (sigd refusing to start, say) to its exit, at most 10 s:
/// its exit code and stderr.
pub fn exit_and_stderr(mut command: Command) -> (Option<i32>, String) {
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
    let status = wait_exit(&mut child);
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().unwrap();
    pipe.read_to_string(&mut stderr).unwrap();
    (status.code(), stderr)
}

/// Wait (at most 10 s) for `child` to end and return its status.
pub fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process {} did not exit; its /proc status:\n{}",
            child.id(),
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Asserts `child` died of `signal`.
#[track_caller]
pub fn assert_killed_by(child: &mut Child, signal: i32) {
    let status = wait_exit(child);
    assert_eq!(status.signal(), Some(signal), "{status:?}");
}

/// Asserts `child` is still running, then ends it.
#[track_caller]
pub fn assert_alive_then_kill(child: &mut Child) {
    assert!(
        child.try_wait().unwrap().is_none(),
        "process {} died",
        child.id()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A child that has exited but is not yet reaped: a zombie.
pub fn zombie() -> Child {
    let child = Command::new("true").spawn().expect("spawn true");
    let stat = format!("/proc/{}/stat", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&stat).is_ok_and(|s| s.contains(") Z ")) {
        assert!(Instant::now() < deadline, "no zombie");
        std::thread::sleep(Duration::from_millis(2));
    }
    child
}

/// A pid that no process has: a child's, after it was reaped.
pub fn free_pid() -> i32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    child.wait().unwrap();
    child.id() as i32
}

/// Write `text` to a new file at `path` that only its owner may read or
/// write (as sigd requires of a token file).
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// A scratch directory for this test, removed and made anew.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `{pid}` segment that makes the WAT policies below misbehave. Every
/// other segment (the smoke call's "1" included) gets 418 `{}`.
pub const TRIGGER_PID: &str = "666";

/// A policy component in WAT that imports nothing. For the `{pid}` segment
/// [`TRIGGER_PID`] it runs `misbehave`: core wasm instructions leaving an
/// i32, the address of the response record to return (`(call $recurse)`
/// recurses forever; address 32 holds the record of `data_at_32`, if any).
/// For any other pid it answers 418 `{}`.
pub fn misbehaving_policy(misbehave: &str) -> Vec<u8> {
    policy_wat(PID_IS_TRIGGER, misbehave, "")
}

/// Like [`misbehaving_policy`], but it misbehaves on every call, the smoke
/// call sigd makes before it takes a policy on included.
pub fn always_misbehaving_policy(misbehave: &str) -> Vec<u8> {
    policy_wat("(i32.const 1)", misbehave, "")
}

/// Like [`misbehaving_policy`], but it misbehaves on every call but the
/// smoke call sigd makes before it takes a policy on (`{pid}` "1"): a
/// shadow policy that fails on every request.
pub fn misbehaving_after_smoke_policy(misbehave: &str) -> Vec<u8> {
    policy_wat(PID_IS_NOT_ONE, misbehave, "")
}

/// The `{pid}` segment is anything but exactly "1".
const PID_IS_NOT_ONE: &str = "(i32.eqz (i32.and
        (i32.eq (local.get 1) (i32.const 1))
        (i32.eq (i32.load8_u (local.get 0)) (i32.const 0x31))))";

/// The condition for misbehaving: the `{pid}` segment (address and length
/// are the first two parameters) is exactly [`TRIGGER_PID`], "666".
const PID_IS_TRIGGER: &str = "(if (result i32) (i32.eq (local.get 1) (i32.const 3))
        (then (i32.and
          (i32.eq (i32.load16_u (local.get 0)) (i32.const 0x3636))
          (i32.eq (i32.load8_u offset=2 (local.get 0)) (i32.const 0x36))))
        (else (i32.const 0)))";

/// A policy that answers `status` with `body` (at most 200 bytes, no `"` or
/// `\\`) for [`TRIGGER_PID`], and 418 `{}` to anything else.
pub fn answering_policy(status: u16, body: &str) -> Vec<u8> {
    policy_wat(
        PID_IS_TRIGGER,
        "(i32.const 32)",
        &response_record(32, status, body),
    )
}

/// A policy that, for [`TRIGGER_PID`], grows its memory by one page and
/// answers `{}` with status 400 + its memory's size in pages: what it
/// answers shows whether its instance was reused (the size goes on growing)
/// or is fresh (it starts again from 2).
pub fn memory_reporting_policy() -> Vec<u8> {
    policy_wat(
        PID_IS_TRIGGER,
        "(drop (memory.grow (i32.const 1)))
         (i32.store16 (i32.const 32) (i32.add (i32.const 400) (memory.size)))
         (i32.const 32)",
        &response_record(32, 400, "{}"),
    )
}

/// A WAT string literal (escaped bytes) holding a response record at `at`:
/// status (u16), padding, then the body's (pointer, length), then the body.
fn response_record(at: u32, status: u16, body: &str) -> String {
    assert!(body.len() <= 200 && !body.contains(['"', '\\']));
    let escape = |bytes: &[u8]| {
        bytes
            .iter()
            .map(|b| format!("\\{b:02x}"))
            .collect::<String>()
    };
    format!(
        "{}\\00\\00{}{}{body}",
        escape(&status.to_le_bytes()),
        escape(&(at + 12).to_le_bytes()),
        escape(&(body.len() as u32).to_le_bytes()),
    )
}

/// A policy exporting the handler of another version of the WIT package
/// (it answers 418 `{}` to everything).
pub fn policy_for_version(version: &str) -> Vec<u8> {
    policy_wat_for("(i32.const 0)", "(i32.const 0)", "", version, 0)
}

/// A policy that answers 418 `{}` to everything, holding `memories` more
/// linear memories of 1 MiB each beside its own.
pub fn many_memories_policy(memories: usize) -> Vec<u8> {
    policy_wat_for("(i32.const 0)", "(i32.const 0)", "", "0.3.0", memories)
}

fn policy_wat(when: &str, misbehave: &str, data_at_32: &str) -> Vec<u8> {
    policy_wat_for(when, misbehave, data_at_32, "0.3.0", 0)
}

/// The component: a core module whose `handle` takes the flattened request
/// (pid, body, then the caller: 16 values in all) and whose `configure`
/// accepts any settings (its result, at address 512, is zeroes: `ok`),
/// with `memories` more memories of 1 MiB (16 pages) each.
fn policy_wat_for(
    when: &str,
    misbehave: &str,
    data_at_32: &str,
    version: &str,
    memories: usize,
) -> Vec<u8> {
    let good = response_record(0, 418, "{}");
    let memories = "(memory 16)".repeat(memories);
    let wat = format!(
        r#"(component
  (core module $m
    (memory (export "memory") 1)
    {memories}
    (global $next (mut i32) (i32.const 1024))
    (data (i32.const 0) "{good}")
    (data (i32.const 32) "{data_at_32}")
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      (local.set $at (i32.and (i32.add (global.get $next) (i32.sub (local.get 2) (i32.const 1)))
                              (i32.sub (i32.const 0) (local.get 2))))
      (global.set $next (i32.add (local.get $at) (local.get 3)))
      (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
        (then (drop (memory.grow (i32.add (i32.shr_u (local.get 3) (i32.const 16)) (i32.const 1))))))
      (local.get $at))
    (func $recurse (result i32) (i32.add (call $recurse) (i32.const 1)))
    (func (export "configure") (param i32 i32 i32) (result i32) (i32.const 512))
    (func (export "handle")
      (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (if (result i32) {when}
        (then {misbehave})
        (else (i32.const 0)))))
  (core instance $i (instantiate $m))
  (type $credentials (record (field "pid" (option s32)) (field "uid" u32) (field "gid" (option u32))))
  (type $transport (variant (case "tcp" string) (case "unix")))
  (type $caller (record (field "principal" (option string)) (field "peer" (option $credentials))
    (field "transport" $transport)))
  (type $request (record (field "pid" string) (field "body" (list u8)) (field "caller" $caller)))
  (type $response (record (field "status" u16) (field "body" string)))
  (func $handle (param "request" $request) (result $response)
    (canon lift (core func $i "handle") (memory (core memory $i "memory"))
      (realloc (core func $i "realloc"))))
  (func $configure (param "settings" (option string)) (result (result (error string)))
    (canon lift (core func $i "configure") (memory (core memory $i "memory"))
      (realloc (core func $i "realloc"))))
  (instance $handler
    (export "credentials" (type $credentials))
    (export "transport" (type $transport))
    (export "caller" (type $caller))
    (export "request" (type $request))
    (export "response" (type $response))
    (export "configure" (func $configure))
    (export "handle-signal" (func $handle)))
  (export "sigd:policy/handler@{version}" (instance $handler)))"#
    );
    wat::parse_str(&wat).unwrap_or_else(|e| panic!("bad WAT: {e}\n{wat}"))
}
