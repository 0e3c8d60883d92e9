//! The wasm boundary alone, for the `policy_cost` bench: a policy that makes
//! the host calls the default policy makes for one process-scope signal
//! (`open-alive` on the path's pid, `signal` on behalf of the caller's uid,
//! the handle's drop) for a caller without a token, and answers as it does
//! (`200` and the same body), with none of its logic: no body parsed,
//! nothing checked, no JSON library. What a call to it costs over the same
//! host calls made natively is what the component boundary costs (wasmtime's
//! lowering, lifting and crossings, and sigd's runtime around them),
//! whatever a policy decides.
//!
//! A body of `answer` or `open` makes it stop short (see [`Reach`]), so the
//! bench can tell what each host call adds.

use sigd_policy::component::bindings::sigd::policy::host::{Process, Scope};
use sigd_policy::component::{Guest, WitRequest, WitResponse};

/// The policy's export.
pub struct Floor;

impl Guest for Floor {
    fn configure(_settings: Option<String>) -> Result<(), String> {
        Ok(())
    }

    fn handle_signal(request: WitRequest) -> WitResponse {
        // On behalf of the caller's uid, as the default policy signals for
        // a caller without a token.
        let on_behalf_of = request.caller.peer.map(|peer| peer.uid);
        answer(&request.pid, |pid| match Reach::of(&request.body) {
            Reach::Answer => Some((true, vec![pid])),
            Reach::Open => Some((Process::open_alive(pid)?.1, vec![pid])),
            Reach::Signal => {
                let (process, alive) = Process::open_alive(pid)?;
                let sent = process.signal(15, Scope::Process, on_behalf_of);
                Some((alive, sent.ok()?))
            }
        })
    }
}

/// How far a call goes, as its body says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// `answer`: no host call; it answers as if it had signalled.
    Answer,
    /// `open`: it opens the process and drops the handle, no signal.
    Open,
    /// Any other body (the bench's `{"signal": 15}`): open, signal, drop.
    Signal,
}

impl Reach {
    /// How far a call with this body goes.
    pub fn of(body: &[u8]) -> Reach {
        match body {
            b"answer" => Reach::Answer,
            b"open" => Reach::Open,
            _ => Reach::Signal,
        }
    }
}

/// The answer for the `{pid}` segment `pid`, given what signalling it did:
/// whether it was alive and the pids reached (`None`: it was not found or
/// not signalled).
pub fn answer(pid: &str, signal: impl FnOnce(i32) -> Option<(bool, Vec<i32>)>) -> WitResponse {
    let pid = pid.parse().unwrap_or(0);
    match signal(pid) {
        Some((true, delivered)) => {
            // As JSON writes it: `[1,2]`, no spaces.
            let delivered: Vec<String> = delivered.iter().map(i32::to_string).collect();
            let delivered = delivered.join(",");
            WitResponse {
                status: 200,
                body: format!(
                    r#"{{"success":true,"pid":{pid},"signal":15,"signal_name":"SIGTERM","scope":"process","delivered_to":[{delivered}]}}"#
                ),
            }
        }
        _ => WitResponse {
            status: 404,
            body: r#"{"error":"not signalled","code":"PROCESS_NOT_FOUND"}"#.into(),
        },
    }
}

#[cfg(target_arch = "wasm32")]
sigd_policy::component::export_policy!(Floor);
