//! The WIT boundary: generated bindings for `sigd:policy/policy`, the imports
//! wrapped as a [`Host`], and the exports: [`configure`] checks and keeps the
//! settings, [`handle`] hands each request to [`decide`].
//!
//! Another Rust policy reuses all of this and changes only its [`Rules`]:
//! `examples/policies/strict` is the whole of such a policy, in 30 lines.

use crate::decide;
use crate::{Caller, Exit, Host, KillError, Process, Request, Rules, Scope, Settings, Target};
use std::ops::RangeInclusive;
use std::sync::OnceLock;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "export_policy",
        default_bindings_module: "sigd_policy::component::bindings",
    });
}

pub use bindings::export_policy;
pub use bindings::exports::sigd::policy::handler::{
    Guest, Request as WitRequest, Response as WitResponse,
};
use bindings::sigd::policy::host::{self as wit, RunState};

/// The host's imports, as the plain-Rust [`Host`] the decision logic uses.
pub struct Imports;

impl Host for Imports {
    type Process = wit::Process;

    fn realtime_signals(&self) -> RangeInclusive<i32> {
        // Asked once per instance: the host's libc does not change.
        static REALTIME: OnceLock<RangeInclusive<i32>> = OnceLock::new();
        REALTIME
            .get_or_init(|| {
                let range = wit::realtime_signals();
                range.min..=range.max
            })
            .clone()
    }

    fn open_alive(&self, pid: i32) -> Option<(wit::Process, bool)> {
        wit::Process::open_alive(pid)
    }

    fn open_with_info(&self, pid: i32) -> Option<(wit::Process, Target)> {
        wit::Process::open_with_info(pid).map(|(process, info)| {
            let target = Target {
                running: is_running(info.state),
                uid: info.uids.real,
                command: info.command,
            };
            (process, target)
        })
    }
}

/// Whether a process in `state` can still take a signal: the one place this
/// rule is written on the guest's side.
fn is_running(state: RunState) -> bool {
    !matches!(state, RunState::Zombie | RunState::Dead)
}

impl Process for wit::Process {
    fn signal(
        &self,
        signal: i32,
        scope: Scope,
        on_behalf_of: Option<u32>,
    ) -> Result<Vec<i32>, KillError> {
        wit::Process::signal(self, signal, scope.into(), on_behalf_of).map_err(KillError::from)
    }

    fn escalate(
        &self,
        after_ms: u32,
        signal: i32,
        scope: Scope,
        on_behalf_of: Option<u32>,
    ) -> Result<(), KillError> {
        wit::Process::escalate(self, after_ms, signal, scope.into(), on_behalf_of)
            .map_err(KillError::from)
    }

    fn wait_exit(&self, timeout_ms: u32) -> Option<Exit> {
        wit::Process::wait_exit(self, timeout_ms).map(|status| match status {
            wit::ExitStatus::Code(code) => Exit::Code(code),
            wit::ExitStatus::Signal(signal) => Exit::Signal(signal),
            wit::ExitStatus::Unknown => Exit::Unknown,
        })
    }
}

impl From<Scope> for wit::Scope {
    fn from(scope: Scope) -> wit::Scope {
        match scope {
            Scope::Process => wit::Scope::Process,
            Scope::Group => wit::Scope::Group,
            Scope::Tree => wit::Scope::Tree,
        }
    }
}

impl From<wit::KillError> for KillError {
    fn from(error: wit::KillError) -> KillError {
        match error {
            wit::KillError::NotFound => KillError::NotFound,
            wit::KillError::InvalidSignal => KillError::InvalidSignal,
            wit::KillError::Protected => KillError::Protected,
            wit::KillError::PermissionDenied => KillError::PermissionDenied,
            wit::KillError::NotPermitted => KillError::NotPermitted,
            wit::KillError::Failed => KillError::Failed,
        }
    }
}

/// The settings this instance was configured with.
static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Check the operator's settings and keep them for [`handle`]: what a
/// policy's `configure` export does.
pub fn configure(settings: Option<String>) -> Result<(), String> {
    let settings = Settings::parse(settings.as_deref(), &Imports.realtime_signals())?;
    SETTINGS
        .set(settings)
        .map_err(|_| "this instance is configured already".to_string())
}

/// Decide one WIT request under `rules` and the configured settings,
/// against the real imports.
pub fn handle(rules: &Rules, request: WitRequest) -> WitResponse {
    let caller = Caller {
        principal: request.caller.principal,
        uid: request.caller.peer.map(|peer| peer.uid),
    };
    let settings = SETTINGS.get_or_init(Settings::default);
    let response = decide(
        rules,
        settings,
        &Imports,
        &Request {
            pid: &request.pid,
            body: &request.body,
            caller: &caller,
        },
    );
    WitResponse {
        status: response.status,
        body: response.body,
    }
}

/// The default policy, exported when this crate is built as a component itself
/// (wasm only: the export names are not valid native symbol versions).
#[cfg(all(feature = "export-default", target_arch = "wasm32"))]
struct DefaultPolicy;

#[cfg(all(feature = "export-default", target_arch = "wasm32"))]
impl Guest for DefaultPolicy {
    fn configure(settings: Option<String>) -> Result<(), String> {
        configure(settings)
    }

    fn handle_signal(request: WitRequest) -> WitResponse {
        handle(&Rules::DEFAULT, request)
    }
}

#[cfg(all(feature = "export-default", target_arch = "wasm32"))]
export_policy!(DefaultPolicy with_types_in bindings);
