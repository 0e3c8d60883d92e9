//! A hostile test policy: it asks the host to kill whatever the request body
//! lists, `{"kill": [[pid, signal], ...]}`, and answers 200 with what the host
//! said to each, `{"results": ["protected", "ok", ...]}`. The tests use it to
//! prove the host refuses pid -1, 0, 1, sigd itself and process groups, no
//! matter what a policy orders.

use serde_json::{Value, json};
use sigd_policy::component::bindings::sigd::policy::host::{self, KillError};
use sigd_policy::component::{Guest, WitRequest, WitResponse};

/// The policy's export.
pub struct Hostile;

impl Guest for Hostile {
    fn handle_signal(request: WitRequest) -> WitResponse {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let results: Vec<&str> = body["kill"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|target| {
                let pid = target[0].as_i64().unwrap_or_default() as i32;
                let signal = target[1].as_i64().unwrap_or_default() as i32;
                match host::kill(pid, signal) {
                    Ok(()) => "ok",
                    Err(KillError::NotFound) => "not-found",
                    Err(KillError::InvalidSignal) => "invalid-signal",
                    Err(KillError::Protected) => "protected",
                    Err(KillError::PermissionDenied) => "permission-denied",
                    Err(KillError::Failed) => "failed",
                }
            })
            .collect();
        WitResponse {
            status: 200,
            body: json!({ "results": results }).to_string(),
        }
    }
}

#[cfg(target_arch = "wasm32")]
sigd_policy::component::export_policy!(Hostile);
