//! Process semantics with real processes in a private PID namespace: pid
//! reuse cannot misdirect a signal, group and tree scopes reach exactly
//! their members, names equal numbers, escalation and waiting work.

mod common;

use common::*;
use serde_json::json;
use sigd::guard::{Authority, GuardedTable, Scope};
use sigd::process::{KillError, Look, Process, ProcessTable, System};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether `pid` is alive (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    System.lookup(pid).is_some_and(|p| !p.state.has_exited())
}

/// Give the next process created in this namespace the pid `pid`, through
/// /proc/sys/kernel/ns_last_pid (pid 1 of a namespace may write it). Other
/// tests fork meanwhile and may take it first: try again. `None` if it
/// stays taken (another test's process holds it): start over with another.
fn recycle(pid: i32) -> Option<Child> {
    for _ in 0..1000 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let child = target();
        if child.id() as i32 == pid {
            return Some(child);
        }
        let mut stray = child;
        stray.kill().unwrap();
        stray.wait().unwrap();
    }
    None
}

/// A process opened through `processes` as `look` says, its start time,
/// then killed and reaped, and its pid given to a new process: the handle,
/// the start time and the new process.
fn reused(processes: &GuardedTable, look: Look) -> (Arc<dyn Process>, Option<u64>, Child) {
    for _ in 0..20 {
        let mut first = target();
        let pid = first.id() as i32;
        let handle = processes
            .open(pid, look)
            .expect("room to open it")
            .expect("open the process")
            .process;
        let started = start_time(pid);
        first.kill().unwrap();
        first.wait().unwrap();
        if let Some(second) = recycle(pid) {
            return (handle, started, second);
        }
    }
    panic!("no pid could be given again in 20 tries");
}

/// The start time of the process that has `pid` now.
fn start_time(pid: i32) -> Option<u64> {
    System.lookup(pid).map(|info| info.start_time)
}

/// A process opened (checked), then gone, its pid handed to a new process:
/// sending through the old handle reaches nothing, and the new process
/// lives. A signal by pid would have killed it. So for a handle opened as a
/// request opens one (`Look::Alive`: a pidfd, no start time read) and for
/// one whose look read its `stat` too.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn pid_reuse_signals_nothing() {
    require_private_pid_namespace();
    let processes = GuardedTable::new(System);
    for look in [Look::Alive, Look::State] {
        let (handle, _, mut second) = reused(&processes, look);
        assert_eq!(handle.send(9), Err(KillError::NotFound), "{look:?}");
        assert_eq!(
            processes.signal(&handle, 9, Scope::Process, Authority::Sigd),
            Err(KillError::NotFound),
            "{look:?}"
        );
        assert_eq!(
            processes.signal(&handle, 9, Scope::Tree, Authority::Sigd),
            Err(KillError::NotFound),
            "{look:?}"
        );
        assert!(
            handle.info().is_none(),
            "{look:?}: the handle's facts are not the new process's"
        );
        assert_alive_then_kill(&mut second);
    }
}

/// A successor with the old pid that started within the same clock tick
/// (so the same start time in `/proc/<pid>/stat`) is still not taken for
/// the process a handle holds: its facts and state are not the handle's,
/// whether the look that opened it read a start time or not (`Look::Alive`,
/// a request's). Tries until a successor lands in the same tick, as one did
/// in CI.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn pid_reuse_within_one_tick_is_still_told_apart() {
    require_private_pid_namespace();
    let processes = GuardedTable::new(System);
    'looks: for look in [Look::Alive, Look::State] {
        for _ in 0..200 {
            let (handle, started, mut second) = reused(&processes, look);
            if start_time(second.id() as i32) != started {
                assert_alive_then_kill(&mut second);
                continue; // a later tick: not the case under test
            }
            assert!(
                handle.info().is_none(),
                "{look:?}: the successor's facts were taken"
            );
            assert!(
                handle.state().is_none(),
                "{look:?}: the successor's state was taken"
            );
            assert_alive_then_kill(&mut second);
            continue 'looks;
        }
        panic!("{look:?}: no successor started within its predecessor's clock tick in 200 tries");
    }
}

/// An escalation pending on a process that ends and whose pid is reused
/// meanwhile does not reach the new process.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn escalation_survives_pid_reuse() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache"]);
    let body = r#"{"signal": "TERM", "escalate": {"after_ms": 400, "signal": "KILL"}}"#;
    for _ in 0..20 {
        let mut first = stubborn();
        let pid = first.id() as i32;
        sigd.signal(pid, body).assert(200, "");
        first.kill().unwrap();
        first.wait().unwrap();
        let Some(mut second) = recycle(pid) else {
            continue; // another test's process took the pid: again
        };
        std::thread::sleep(Duration::from_millis(700));
        sigd.expect_log("exited in time; no escalation");
        assert_alive_then_kill(&mut second);
        return;
    }
    panic!("no pid could be given again in 20 tries");
}

/// `group` reaches every process of the target's group, and nothing else.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn group_scope() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache"]);
    let mut leader = shell("sleep 600 & sleep 600 & wait");
    let members = wait_for_children(leader.id(), 2);
    let mut outsider = shell("sleep 600");
    let member = *members.first().unwrap();
    let reply = sigd.signal(member, r#"{"signal": 15, "scope": "group"}"#);
    reply.assert(200, "");
    let mut expected: Vec<i32> = members.iter().copied().collect();
    expected.push(leader.id() as i32);
    expected.sort();
    assert_eq!(reply.json()["delivered_to"], json!(expected));
    assert_eq!(reply.json()["scope"], "group");
    assert_killed_by(&mut leader, 15);
    for member in members {
        wait_until_gone(member);
    }
    assert_alive_then_kill(&mut outsider);
}

/// `group` refuses a group that holds an ancestor of sigd, though sigd
/// itself is in a group of its own and the ancestor does not lead the
/// group: a `sleep` leads it, and a shell in it starts sigd (in a session of
/// its own) and another `sleep`. Asked to signal that sleep's group, sigd
/// answers 403 PROTECTED_PROCESS and signals no one.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn group_scope_spares_a_group_holding_an_ancestor() {
    use std::os::unix::process::CommandExt;
    require_private_pid_namespace();
    let mut leader = spawn_with_default_signals({
        let mut command = std::process::Command::new("sleep");
        command.arg("600").process_group(0);
        command
    });
    let script = r#"setsid "$0" "$@" & sleep 600 & wait"#;
    let mut command = sigd_command_in(&["sh", "-c", script], &["--no-cache"]);
    command.process_group(leader.id() as i32);
    let sigd = Sigd::start_command(command);
    let shell = sigd.pid(); // sigd's parent, in the leader's group
    let children = wait_for_children(shell as u32, 2);
    let is_sleep = |pid: &&i32| System.lookup(**pid).is_some_and(|p| p.command == "sleep");
    let sleep = **children.iter().find(is_sleep).as_ref().expect("the sleep");
    let group = |pid: i32| System.lookup(pid).map(|p| p.pgid);
    assert_eq!(
        (group(shell), group(sleep)),
        (Some(leader.id() as i32), Some(leader.id() as i32))
    );
    let reply = sigd.signal(sleep, r#"{"signal": 15, "scope": "group"}"#);
    reply.assert(403, "PROTECTED_PROCESS");
    // The process scope still reaches the sleep, which is no ancestor.
    sigd.signal(sleep, r#"{"signal": 15}"#).assert(200, "");
    assert_alive_then_kill(&mut leader);
    for pid in children {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
}

/// A group signal goes to the target's group as checked, whatever the
/// target does meanwhile. A process in the session of sigd's parent (a
/// shell leading a group of its own) is in a group with another shell that
/// stays in it, and moves between that group and the parent's as fast as
/// it can: once leading that group (`group_checked_while_the_target_moves(true)`),
/// once a member of the other shell's (`false`). Asked to signal its group
/// again and again, sigd answers 403 when it finds it in the parent's
/// group, and else 200, having sent SIGUSR1 to the group it checked, never
/// to the parent's (or 503 when the target was never where sigd looked):
/// the parent, which notes each SIGUSR1 in a file, gets none, and the shell
/// in the checked group gets some. (sigd used to read the target's group
/// again to send, and sent about a fifth of the signals to the parent.)
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn a_group_signal_reaches_the_group_checked() {
    require_private_pid_namespace();
    group_checked_while_the_target_moves(true);
    group_checked_while_the_target_moves(false);
}

/// See [`a_group_signal_reaches_the_group_checked`]; `leads`: whether the
/// moving target leads the group it moves back to.
fn group_checked_while_the_target_moves(leads: bool) {
    use nix::libc;
    use nix::unistd::{ForkResult, Pid, fork};
    use std::ffi::CString;
    use std::os::unix::process::CommandExt;
    let dir = scratch(&format!("group-checked-{leads}"));
    let (parent_hits, member_hits) = (dir.join("parent"), dir.join("member"));
    let script =
        r#"trap 'echo hit >> "$HITS"' USR1; setsid "$0" "$@" & while :; do sleep 0.05; done"#;
    let mut command = sigd_command_in(&["sh", "-c", script], &["--no-cache"]);
    command.env("HITS", &parent_hits).process_group(0);
    let sigd = Sigd::start_command(command);
    let parent = sigd.pid();
    // The other shell's arguments, made before forking: between fork and
    // exec the children call only async-signal-safe functions.
    let ready = dir.join("ready");
    let member_script = format!(
        "trap 'echo hit >> {}' USR1; : > {}; while :; do sleep 0.05; done",
        member_hits.display(),
        ready.display()
    );
    let args = ["/bin/sh", "-c", &member_script].map(|a| CString::new(a).unwrap());
    let argv = [
        args[0].as_ptr(),
        args[1].as_ptr(),
        args[2].as_ptr(),
        std::ptr::null(),
    ];
    // SAFETY: the children make only raw syscalls (signal, setpgid, fork,
    // execv, _exit) until they exec or are killed.
    let mover = match unsafe { fork() }.unwrap() {
        ForkResult::Child => unsafe {
            libc::signal(libc::SIGUSR1, libc::SIG_IGN);
            if leads {
                libc::setpgid(0, 0);
            }
            let member = libc::fork();
            if member == 0 {
                if !leads {
                    libc::setpgid(0, 0);
                }
                // A shell cannot trap a signal it was started ignoring.
                libc::signal(libc::SIGUSR1, libc::SIG_DFL);
                libc::execv(argv[0], argv.as_ptr());
                libc::_exit(127);
            }
            let group = if leads { 0 } else { member };
            loop {
                libc::setpgid(0, parent);
                libc::setpgid(0, group);
            }
        },
        ForkResult::Parent { child } => child,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the other shell never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..2000 {
        let reply = sigd.signal(mover, r#"{"signal": 10, "scope": "group"}"#);
        *answers.entry(reply.status).or_insert(0) += 1;
    }
    std::thread::sleep(Duration::from_millis(200)); // the traps run between sleeps
    for member in wait_for_children(mover.as_raw() as u32, 1) {
        let _ = nix::sys::signal::kill(Pid::from_raw(member), nix::sys::signal::SIGKILL);
    }
    let _ = nix::sys::signal::kill(mover, nix::sys::signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(mover, None);
    let hits = |file| {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let what = format!("leads: {leads}, answers: {answers:?}");
    assert!(
        answers.contains_key(&200) && answers.contains_key(&403),
        "{what}"
    );
    assert!(
        answers
            .keys()
            .all(|status| [200, 403, 503].contains(status)),
        "{what}"
    );
    assert_eq!(hits(&parent_hits), 0, "the parent got SIGUSR1; {what}");
    assert!(
        hits(&member_hits) > 0,
        "the checked group got nothing; {what}"
    );
}

/// `tree` reaches the target and all its descendants, a grandchild that
/// called `setsid` included; `group` does not reach that grandchild.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn tree_scope_reaches_setsid_grandchild() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache"]);
    let mut root = shell("sh -c 'setsid sleep 600 & sleep 600 & wait' & wait");
    let middle = *wait_for_children(root.id(), 1).first().unwrap();
    let grandchildren = wait_for_children(middle as u32, 2);
    let setsid_child = *grandchildren
        .iter()
        .find(|pid| System.lookup(**pid).is_some_and(|p| p.sid == **pid))
        .or_else(|| {
            // setsid may not have run yet: wait for it.
            std::thread::sleep(Duration::from_millis(200));
            grandchildren
                .iter()
                .find(|pid| System.lookup(**pid).is_some_and(|p| p.sid == **pid))
        })
        .expect("a grandchild in a session of its own");

    let group = sigd.signal(root.id(), r#"{"signal": "CONT", "scope": "group"}"#);
    assert!(
        !group.json()["delivered_to"]
            .as_array()
            .unwrap()
            .contains(&json!(setsid_child))
    );

    let reply = sigd.signal(root.id(), r#"{"signal": "TERM", "scope": "tree"}"#);
    reply.assert(200, "");
    let mut expected = vec![root.id() as i32, middle];
    expected.extend(grandchildren.iter().copied());
    expected.sort();
    assert_eq!(reply.json()["delivered_to"], json!(expected));
    assert_killed_by(&mut root, 15);
    for pid in grandchildren {
        wait_until_gone(pid);
    }
}

/// Wait (at most 10 s) until `pid` is gone or a zombie.
fn wait_until_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "{pid} still runs");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A name and a number give the same result: the same signal, the same answer.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn names_and_numbers_agree() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache"]);
    let rtmin = nix::libc::SIGRTMIN();
    let cases = [
        ("15", 15),
        (r#""SIGTERM""#, 15),
        (r#""TERM""#, 15),
        (r#""term""#, 15),
        (r#""SIGUSR1""#, 10),
        (r#""RTMIN+2""#, rtmin + 2),
    ];
    for (signal, number) in cases {
        let mut child = target();
        let reply = sigd.signal(child.id(), &format!(r#"{{"signal": {signal}}}"#));
        reply.assert(200, "");
        assert_eq!(reply.json()["signal"], json!(number), "{signal}");
        assert_killed_by(&mut child, number);
    }
}

/// A process that ignores SIGTERM gets SIGKILL after the delay (within
/// 50 ms of it); one that ends in time gets nothing more.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn escalation_after_delay() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache"]);
    let mut stubborn = stubborn();
    let body = r#"{"signal": "TERM", "escalate": {"after_ms": 300, "signal": "KILL"}}"#;
    let sent = Instant::now();
    let reply = sigd.signal(stubborn.id(), body);
    reply.assert(200, "");
    assert_eq!(
        reply.json()["escalation"],
        json!({"after_ms": 300, "signal": 9})
    );
    assert_killed_by(&mut stubborn, 9);
    let took = sent.elapsed();
    println!("escalated after {took:?} (asked for 300 ms)");
    assert!(
        took >= Duration::from_millis(300) && took <= Duration::from_millis(350),
        "{took:?}"
    );

    let mut prompt = target();
    sigd.signal(prompt.id(), body).assert(200, "");
    assert_killed_by(&mut prompt, 15);
    std::thread::sleep(Duration::from_millis(400));
    sigd.expect_log("exited in time; no escalation");
    assert_eq!(
        sigd.log().matches("sigd::guard: escalated").count(),
        1,
        "{}",
        sigd.log()
    );
}

/// `wait_ms` makes the answer wait for the exit and say how it ended; for a
/// process that outlives it, it says so after about `wait_ms`.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn wait_reports_how_it_ended() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache"]);
    let mut child = target();
    let reply = sigd.signal(child.id(), r#"{"signal": "TERM", "wait_ms": 5000}"#);
    reply.assert(200, "");
    assert_eq!(reply.json()["exit"], json!({"exited": true, "signal": 15}));
    assert_killed_by(&mut child, 15);

    // Reaped by its parent (this test) at once: the pidfd still knows.
    let mut reaped = target();
    let pid = reaped.id();
    let reaper = std::thread::spawn(move || wait_exit(&mut reaped));
    let reply = sigd.signal(pid, r#"{"signal": "KILL", "wait_ms": 5000}"#);
    assert_eq!(
        reply.json()["exit"],
        json!({"exited": true, "signal": 9}),
        "{}",
        reply.body
    );
    reaper.join().unwrap();

    let mut stubborn = stubborn();
    let started = Instant::now();
    let reply = sigd.signal(stubborn.id(), r#"{"signal": "TERM", "wait_ms": 300}"#);
    assert_eq!(
        reply.json()["exit"],
        json!({"exited": false, "waited_ms": 300})
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_alive_then_kill(&mut stubborn);
}

/// A thread id that is not a process is PROCESS_NOT_FOUND, not a way to
/// signal the process it belongs to.
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn thread_ids_are_not_processes() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache"]);
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        tx.send(nix::unistd::gettid().as_raw()).unwrap();
        std::thread::park();
    });
    let tid = rx.recv().unwrap();
    sigd.signal(tid, r#"{"signal": "CONT"}"#)
        .assert(404, "PROCESS_NOT_FOUND");
    thread.thread().unpark();
    thread.join().unwrap();
}
