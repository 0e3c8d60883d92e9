//! A hostile test policy: it asks the host to signal whatever the request
//! body lists, `{"kill": [[pid, signal, "process" | "group" | "tree"], ...]}`,
//! and answers 200 with what the host said to each, `{"results":
//! ["protected", "ok", "cannot-open", ...], "headers": {...}}`. The tests
//! use it to prove the host refuses pid -1, 0, 1, sigd itself and its groups
//! and trees, no matter what a policy orders, and never hands a policy the
//! `authorization` header. A fourth element, a uid, sends the signal on
//! behalf of that uid, whatever the caller: the host must still apply
//! kill(2)'s rule for it. With `"then": "trap"` it traps once it has
//! signalled, instead of answering. With `"read": [bytes, times]` it asks,
//! once it has signalled, `times` times for a header whose name is `bytes`
//! long: what the host notes of a call must stay bounded, and the signals
//! audited.

use serde_json::{Value, json};
use sigd_policy::component::bindings::sigd::policy::host::{
    KillError, Process, Scope, request_header,
};
use sigd_policy::component::{Guest, WitRequest, WitResponse};

/// The policy's export.
pub struct Hostile;

impl Guest for Hostile {
    fn configure(_settings: Option<String>) -> Result<(), String> {
        Ok(())
    }

    fn handle_signal(request: WitRequest) -> WitResponse {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let results: Vec<&str> = body["kill"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|target| {
                let pid = target[0].as_i64().unwrap_or_default() as i32;
                let signal = target[1].as_i64().unwrap_or_default() as i32;
                let scope = match target[2].as_str() {
                    Some("group") => Scope::Group,
                    Some("tree") => Scope::Tree,
                    _ => Scope::Process,
                };
                let on_behalf_of = target[3].as_u64().map(|uid| uid as u32);
                let Some(process) = Process::open(pid) else {
                    return "cannot-open";
                };
                match process.signal(signal, scope, on_behalf_of) {
                    Ok(_) => "ok",
                    Err(KillError::NotFound) => "not-found",
                    Err(KillError::InvalidSignal) => "invalid-signal",
                    Err(KillError::Protected) => "protected",
                    Err(KillError::PermissionDenied) => "permission-denied",
                    Err(KillError::NotPermitted) => "not-permitted",
                    Err(KillError::Failed) => "failed",
                }
            })
            .collect();
        if let [bytes, times] = body["read"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let name = "x".repeat(bytes.as_u64().unwrap_or_default() as usize);
            for _ in 0..times.as_u64().unwrap_or_default() {
                request_header(&name);
            }
        }
        if body["then"] == "trap" {
            panic!("trapping after the signals, as asked");
        }
        // It also asks for headers, the token's among them.
        let headers = json!({
            "x-probe": request_header("X-Probe"),
            "authorization": request_header("authorization"),
        });
        WitResponse {
            status: 200,
            body: json!({ "results": results, "headers": headers }).to_string(),
        }
    }
}

#[cfg(target_arch = "wasm32")]
sigd_policy::component::export_policy!(Hostile);
