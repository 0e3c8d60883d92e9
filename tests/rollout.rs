//! Rolling out a policy: decision records of real traffic, replayed
//! against a candidate (`sigd policy replay`), a shadow policy beside the
//! active one, what `/healthz` says of reloads, and the fail mode.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

/// `sigd policy replay LOG --policy POLICY --json`: its report and whether it exited 0.
fn replay(log: &str, policy: &str) -> (Value, bool) {
    let dir = scratch("rollout-replay");
    let records = dir.join("sigd.log");
    std::fs::write(&records, log).unwrap();
    let output = Command::new(SIGD)
        .args(["policy", "replay", "--json", "--no-cache", "--policy", policy])
        .arg(&records)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "replay printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (report, output.status.success())
}

/// The decision id a reply names in its `sigd-decision-id` header.
fn decision_id(reply: &Reply) -> String {
    reply
        .header("sigd-decision-id")
        .unwrap_or_else(|| panic!("no decision id in {reply:?}"))
        .to_string()
}

/// Traffic recorded through sigd with the default policy replays against
/// the default itself with every decision agreeing (exit 0), and against
/// the strict example with exactly the decisions its rules change differing
/// (SIGUSR1, a group scope, a 6 s wait), named by their decision ids and
/// with what changed (exit 1).
#[test]
#[ignore = "signals real processes: run in a private PID namespace (make test does)"]
fn recorded_traffic_replays_against_the_default_and_the_strict_example() {
    require_private_pid_namespace();
    let sigd = Sigd::start(&["--no-cache", "--log-format", "json"]);
    let post = |pid: &str, body: &str| sigd.post(&format!("/api/v1/processes/{pid}/signal"), body, &[]);
    let mut same = Vec::new();
    let mut changed = Vec::new();
    // Both policies deliver these, or refuse them alike.
    let mut terminated = target();
    let reply = post(&terminated.id().to_string(), r#"{"signal": 15}"#);
    reply.assert(200, "");
    assert_killed_by(&mut terminated, 15);
    same.push(decision_id(&reply));
    let mut killed = target();
    let reply = post(&killed.id().to_string(), r#"{"signal": "KILL", "wait_ms": 2000}"#);
    reply.assert(200, "");
    assert_killed_by(&mut killed, 9);
    same.push(decision_id(&reply));
    for (pid, body, status, code) in [
        ("1", r#"{"signal": 15}"#, 403, "PROTECTED_PROCESS"),
        ("abc", r#"{"signal": 15}"#, 400, "INVALID_PID"),
        ("42", r#"{"signal": 15, "signal": 9}"#, 400, "INVALID_REQUEST"),
    ] {
        let reply = post(pid, body);
        reply.assert(status, code);
        same.push(decision_id(&reply));
    }
    let gone = free_pid().to_string();
    let reply = post(&gone, r#"{"signal": 15}"#);
    reply.assert(404, "PROCESS_NOT_FOUND");
    same.push(decision_id(&reply));
    // The strict example refuses these; the default delivers them.
    let mut usr1 = target();
    let reply = post(&usr1.id().to_string(), r#"{"signal": "USR1"}"#);
    reply.assert(200, "");
    assert_killed_by(&mut usr1, 10);
    changed.push(decision_id(&reply));
    let mut group = shell("exec sleep 600");
    let reply = post(&group.id().to_string(), r#"{"signal": 15, "scope": "group"}"#);
    reply.assert(200, "");
    assert_killed_by(&mut group, 15);
    changed.push(decision_id(&reply));
    let mut waited = target();
    let reply = post(&waited.id().to_string(), r#"{"signal": 15, "wait_ms": 6000}"#);
    reply.assert(200, "");
    assert_killed_by(&mut waited, 15);
    changed.push(decision_id(&reply));
    // Refused before any policy saw it: an id, but no record to replay.
    let reply = sigd.raw(b"POST /api/v1/processes/42/signal HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
    reply.assert(415, "UNSUPPORTED_MEDIA_TYPE");
    assert!(reply.header("sigd-decision-id").is_some());
    let recorded = same.len() + changed.len();
    sigd.expect_log(&changed[2]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let log = sigd.log();

    let (report, agreed) = replay(&log, DEFAULT_POLICY_FILE);
    assert!(agreed, "{report:#}");
    assert_eq!(report["records"], recorded, "{report:#}");
    assert_eq!(report["agree"], recorded, "{report:#}");

    let (report, agreed) = replay(&log, STRICT_POLICY);
    assert!(!agreed, "{report:#}");
    assert_eq!(report["records"], recorded, "{report:#}");
    assert_eq!(report["agree"], same.len(), "{report:#}");
    assert_eq!(report["unanswered"], 0, "{report:#}");
    let differing: BTreeSet<&str> = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["decision_id"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = changed.iter().map(String::as_str).collect();
    assert_eq!(differing, expected, "{report:#}");
    let decisions = report["decisions"].as_array().unwrap();
    let by_id = |id: &str| decisions.iter().find(|d| d["decision_id"] == id).unwrap();
    let usr1 = by_id(&changed[0]);
    assert_eq!(usr1["outcome"], "differs");
    assert_eq!(usr1["recorded"]["status"], 200);
    assert_eq!(usr1["recorded"]["signal"], 10);
    assert_eq!(usr1["replayed"]["status"], 403);
    assert_eq!(usr1["replayed"]["code"], "SIGNAL_NOT_ALLOWED");
    assert_eq!(usr1["replayed"]["targets"], Value::Null);
    assert_eq!(by_id(&changed[1])["replayed"]["code"], "SCOPE_NOT_ALLOWED");
    assert_eq!(by_id(&changed[2])["replayed"]["status"], 400);
}
