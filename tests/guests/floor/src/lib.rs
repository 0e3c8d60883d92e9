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

use sigd_policy::component::bindings::sigd::policy::host::{self as wit, Scope};
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
        let mut imports = Imports {
            on_behalf_of: request.caller.peer.map(|peer| peer.uid),
        };
        handle(&request.pid, &request.body, &mut imports)
    }
}

/// The two host calls the floor makes: the component's imports, or (in the
/// bench) sigd's host calls linked natively.
pub trait Host {
    /// An opened process.
    type Process;
    /// `open-alive`: the process `pid` and whether it is alive.
    fn open_alive(&mut self, pid: i32) -> Option<(Self::Process, bool)>;
    /// `signal` SIGTERM to `process` alone: the pids reached.
    fn signal(&mut self, process: &Self::Process) -> Option<Vec<i32>>;
}

/// The component's imports, signalling on behalf of `on_behalf_of`.
struct Imports {
    on_behalf_of: Option<u32>,
}

impl Host for Imports {
    type Process = wit::Process;

    fn open_alive(&mut self, pid: i32) -> Option<(wit::Process, bool)> {
        wit::Process::open_alive(pid)
    }

    fn signal(&mut self, process: &wit::Process) -> Option<Vec<i32>> {
        process.signal(15, Scope::Process, self.on_behalf_of).ok()
    }
}

/// The floor's whole call: the request's `{pid}` segment and body, and the
/// host calls as far as the body says (see [`Reach`]).
pub fn handle<H: Host>(pid: &str, body: &[u8], host: &mut H) -> WitResponse {
    answer(pid, |pid| match Reach::of(body) {
        Reach::Answer => Some((true, vec![pid])),
        Reach::Open => Some((host.open_alive(pid)?.1, vec![pid])),
        Reach::Signal => {
            let (process, alive) = host.open_alive(pid)?;
            Some((alive, host.signal(&process)?))
        }
    })
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
fn answer(pid: &str, signal: impl FnOnce(i32) -> Option<(bool, Vec<i32>)>) -> WitResponse {
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
