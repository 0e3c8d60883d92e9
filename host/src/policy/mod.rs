//! The policy runtime: compile a policy component once, then answer each
//! request from a fresh instance of it.
//!
//! [`Policy::load`] compiles and type-checks the component against the WIT
//! world (`wit/policy.wit`) and links its imports, leaving a pre-instantiated
//! component; [`Policy::call`] then costs one `Store`, one instantiation and
//! one call, so no state survives from one request to the next.

mod bindings;

use crate::guard::Guard;
use crate::process::ProcessTable;
use bindings::{BindingsPre, State, WitRequest, WitResponse};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::WasiCtx;

/// The default policy (`guest/`), built into the binary.
pub const DEFAULT_POLICY: &[u8] = include_bytes!(env!("SIGD_POLICY_DEFAULT"));

/// One request as the policy receives it (WIT `handler.request`).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The `{pid}` path segment, as it arrived.
    pub pid: String,
    /// The body, as it arrived.
    pub body: Vec<u8>,
    /// Lower-case header names and UTF-8 values, without `authorization`.
    pub headers: Vec<(String, String)>,
}

/// The policy's answer, checked: a status in 200..=599 and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("is not a WebAssembly component: {0:#}")]
    NotAComponent(wasmtime::Error),
    #[error("does not fit sigd's policy world (sigd:policy/policy@0.1.0): {0:#}")]
    Incompatible(wasmtime::Error),
}

/// Why a policy call gave no usable answer. Each becomes a 500 `INTERNAL`.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("policy could not be instantiated: {0:#}")]
    Instantiate(wasmtime::Error),
    #[error("policy trapped: {0:#}")]
    Trap(wasmtime::Error),
    #[error("policy answered status {0}, outside 200..=599")]
    BadStatus(u16),
    #[error("policy answered a body that is not JSON: {0}")]
    BadBody(serde_json::Error),
}

/// A compiled, linked policy, ready to answer requests from many threads.
pub struct Policy {
    pre: BindingsPre<State>,
    processes: Arc<dyn ProcessTable>,
    sha256: String,
}

impl Policy {
    /// Compile `component` and link it to `processes`, which the [`Guard`]
    /// holds to sigd's invariants whatever the policy asks.
    pub fn load<T: ProcessTable>(
        component: &[u8],
        processes: Guard<T>,
    ) -> Result<Policy, LoadError> {
        let sha256 = hex(&Sha256::digest(component));
        let engine = Engine::new(&Config::new()).map_err(LoadError::NotAComponent)?;
        let component =
            Component::from_binary(&engine, component).map_err(LoadError::NotAComponent)?;
        let mut linker = Linker::new(&engine);
        bindings::add_to_linker(&mut linker).map_err(LoadError::Incompatible)?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(BindingsPre::new)
            .map_err(LoadError::Incompatible)?;
        Ok(Policy {
            pre,
            processes: Arc::new(processes),
            sha256,
        })
    }

    /// The sha256 of the component's bytes, in hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Answer one request from a fresh instance.
    pub fn call(&self, request: Request) -> Result<Response, CallError> {
        let state = State {
            processes: self.processes.clone(),
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        let policy = self
            .pre
            .instantiate(&mut store)
            .map_err(CallError::Instantiate)?;
        let request = WitRequest {
            pid: request.pid,
            body: request.body,
            headers: request.headers,
        };
        let WitResponse { status, body } = policy
            .sigd_policy_handler()
            .call_handle_signal(&mut store, &request)
            .map_err(CallError::Trap)?;
        if !(200..=599).contains(&status) {
            return Err(CallError::BadStatus(status));
        }
        serde_json::from_str::<serde::de::IgnoredAny>(&body).map_err(CallError::BadBody)?;
        Ok(Response { status, body })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
