//! A stricter sigd policy, and a template for writing your own in Rust.
//!
//! It keeps every check of the default policy (`sigd-policy`), callers
//! without a token held to kill(2) included, and changes its rules in code:
//! only SIGINT, SIGKILL and SIGTERM may be sent (any other deliverable
//! signal is answered 403 `SIGNAL_NOT_ALLOWED`), only to the process itself
//! (403 `SCOPE_NOT_ALLOWED` for a group or tree), and a request may wait at
//! most 5 s. It takes no settings: everything it allows is written here. To
//! write your own, copy this crate, change [`RULES`] (or call your own logic
//! from `handle_signal`), and build it as the README shows.

use sigd_policy::component::{Guest, WitRequest, WitResponse, handle};
use sigd_policy::{Rules, Scope};

/// SIGINT (2), SIGKILL (9) and SIGTERM (15) only, to one process at a time.
pub const RULES: Rules = Rules {
    allowed_signals: Some(&[2, 9, 15]),
    allowed_scopes: &[Scope::Process],
    max_wait_ms: 5_000,
    ..Rules::DEFAULT
};

/// The policy's export.
pub struct Strict;

impl Guest for Strict {
    fn configure(settings: Option<String>) -> Result<(), String> {
        match settings {
            None => Ok(()),
            Some(_) => {
                Err("the strict example takes no settings: its rules are in its code".into())
            }
        }
    }

    fn handle_signal(request: WitRequest) -> WitResponse {
        handle(&RULES, request)
    }
}

// Component exports exist only in the wasm build (their names are not valid
// native symbols); natively this crate just type-checks.
#[cfg(target_arch = "wasm32")]
sigd_policy::component::export_policy!(Strict);
