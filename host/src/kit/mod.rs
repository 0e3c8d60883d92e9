//! The policy authoring kit: `sigd policy check|compile|eval|test|replay|wit`. An author
//! writes, tries and verifies a policy with these, without a VM and without
//! sending a real signal: `eval` and `test` run the policy against a
//! [`Simulated`] process table, never the machine's.
//!
//! - [`check`]: can sigd run this component, and what does it import?
//! - [`compile`]: compile it ahead of time, for the slim build (full builds only).
//! - [`eval`]: one request, with every host call the policy made.
//! - [`suite`]: the conformance suite, `sigd policy test`.
//! - [`replay`]: recorded decisions decided again, `sigd policy replay`.
//! - [`simulated`]: the simulated process table they run against.

pub mod check;
#[cfg(feature = "compiler")]
pub mod compile;
pub mod eval;
pub mod replay;
pub mod simulated;
pub mod suite;

use crate::caller::Caller;
use crate::guard::{Authority, GuardedTable};
use crate::host_calls::Action;
use crate::options::RuntimeOptions;
use crate::policy::{Compiled, Policy};
use anyhow::Context;
use simulated::Simulated;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The pid sigd pretends to run as in simulated tables (see [`suite::TABLE`]):
/// a process with it is sigd, protected like the real one.
pub const SIMULATED_SIGD_PID: i32 = 4242;

/// `sigd policy ...`: write, try and verify policies.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Whether sigd can run a policy component: the WIT package it targets,
    /// its imports (flagging WASI), its size, and a verdict (exit 0 or 1).
    Check {
        /// The policy component (.wasm).
        path: PathBuf,
        /// Settings (a JSON file) to configure it with, as `sigd serve
        /// --policy-settings` would: the verdict is NO if it rejects them.
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
        #[command(flatten)]
        runtime: RuntimeOptions,
    },
    /// Compile a policy component ahead of time into a file any build of
    /// this version of sigd runs without compiling, the slim build (which
    /// has no compiler) included.
    #[cfg(feature = "compiler")]
    Compile(compile::Compile),
    /// Run one request through a policy against a simulated process table,
    /// and print the host calls it made and its HTTP answer. No real signal
    /// is ever sent.
    Eval(eval::Eval),
    /// Run the conformance suite: every behaviour of the endpoint, as cases
    /// against a simulated process table. Exit 1 if any case fails.
    Test(suite::Test),
    /// Decide recorded requests again with a candidate policy, answered
    /// from their decision records (never the live system), and report how
    /// many decisions agree and what changed in each that does not. Exit 1
    /// if any differs or cannot be answered from its record.
    Replay(replay::Replay),
    /// Print the WIT package policies are built against (`wit/policy.wit`).
    Wit,
}

impl PolicyCommand {
    /// Run the command; `Ok(false)` when the policy failed it (exit 1).
    pub async fn run(self) -> anyhow::Result<bool> {
        match self {
            PolicyCommand::Check {
                path,
                settings,
                runtime,
            } => check::run(&path, settings.as_deref(), &runtime).await,
            #[cfg(feature = "compiler")]
            PolicyCommand::Compile(compile) => compile.run(),
            PolicyCommand::Eval(eval) => eval.run().await,
            PolicyCommand::Test(test) => test.run().await,
            PolicyCommand::Replay(replay) => replay.run().await,
            PolicyCommand::Wit => {
                print!("{}", crate::policy::WIT);
                Ok(true)
            }
        }
    }
}

/// A policy loaded from a file for the kit, and how long loading it took.
pub struct Loaded {
    pub policy: Policy,
    pub took: Duration,
}

/// Compile (or find compiled) and link the policy at `path` under
/// `options`, configured with the settings file `settings`, if given.
pub fn load(
    path: &Path,
    settings: Option<&Path>,
    options: &RuntimeOptions,
) -> anyhow::Result<Loaded> {
    let bytes = load_bytes(path)?;
    let settings = settings.map(read_settings).transpose()?;
    let runtime = options.runtime()?;
    let started = Instant::now();
    let policy = runtime.load(&bytes).with_context(|| {
        format!(
            "cannot load {} (`sigd policy check` says why)",
            path.display()
        )
    })?;
    Ok(Loaded {
        policy: policy.with_settings(settings),
        took: started.elapsed(),
    })
}

/// The text of a settings file.
pub fn read_settings(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the settings {}", path.display()))
}

/// Who a simulated request comes from (`sigd policy eval`).
#[derive(Debug, Clone, clap::Args)]
pub struct CallerArgs {
    /// The caller's uid, as the kernel would tell it (0: root).
    #[arg(long, value_name = "UID", default_value_t = 0)]
    as_uid: u32,
    /// The caller presented this principal's token (without: no token).
    #[arg(long, value_name = "NAME")]
    principal: Option<String>,
    /// The caller is one the kernel cannot tell (a TCP peer on another
    /// machine); `--as-uid` is then ignored.
    #[arg(long)]
    unknown_peer: bool,
}

impl CallerArgs {
    /// The caller, as sigd would hand it to the policy.
    pub fn caller(&self) -> Caller {
        let uid = (!self.unknown_peer).then_some(self.as_uid);
        Caller::local(uid, self.principal.clone())
    }
}

/// The bytes of the policy file at `path`, someone else's as well as one's
/// own (precompiled machine code only from a `.cwasm` no one but root or
/// sigd's user can write).
pub fn load_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    crate::policy::precompiled::read_to_vet(path)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// `table` guarded as the real one is, with sigd as [`SIMULATED_SIGD_PID`].
pub fn guarded(table: &Simulated) -> GuardedTable {
    GuardedTable::for_pid(table.clone(), SIMULATED_SIGD_PID)
}

/// How compiling went, for people.
pub fn describe_compiled(compiled: Compiled, took: Duration) -> String {
    match compiled {
        Compiled::AtBuild => format!("precompiled into sigd ({})", millis(took)),
        Compiled::Ahead => format!(
            "precompiled by `sigd policy compile` (loaded in {})",
            millis(took)
        ),
        Compiled::FromCache => format!("from the compiled-policy cache ({})", millis(took)),
        Compiled::OnLoad => format!("compiled in {}", millis(took)),
    }
}

/// A duration in milliseconds, or microseconds under one.
pub fn millis(took: Duration) -> String {
    if took < Duration::from_millis(1) {
        format!("{} µs", took.as_micros())
    } else {
        format!("{:.1} ms", took.as_secs_f64() * 1000.0)
    }
}

/// One host call a policy made, as a line for people.
pub fn describe_action(action: &Action) -> String {
    let outcome = |result: Result<String, String>| match result {
        Ok(ok) => ok,
        Err(error) => format!("refused: {error}"),
    };
    match action {
        Action::ReadHeader { name, value } => match value {
            Some(value) => format!("request-header({name:?}) -> {value:?}"),
            None => format!("request-header({name:?}) -> absent"),
        },
        Action::NoProcess { pid } => format!("process.open({pid}) -> none"),
        Action::NoRoom { pid, error } => format!("process.open({pid}) -> none ({error})"),
        Action::Opened { pid, start_time } => match start_time {
            Some(tick) => format!("process.open({pid}) -> process {pid} (started at tick {tick})"),
            None => format!("process.open({pid}) -> process {pid}"),
        },
        Action::Probed { pid, alive } => match alive {
            true => format!("process {pid}: alive -> yes"),
            false => format!("process {pid}: alive -> no, exited"),
        },
        Action::Inspected { pid, state } => match state {
            Some(state) => format!("process {pid}: state -> {state:?}"),
            None => format!("process {pid}: state -> gone"),
        },
        Action::Described { pid, info } => match info {
            Some(info) => format!("process {pid}: info -> {info}, uid {}", info.uids.real),
            None => format!("process {pid}: info -> gone"),
        },
        Action::Signalled {
            pid,
            signal,
            scope,
            authority,
            outcome: result,
            unlisted,
        } => format!(
            "process {pid}: signal({signal}, {scope:?}{}) -> {}",
            on_behalf(authority),
            outcome(
                result
                    .as_ref()
                    .map(|pids| match unlisted {
                        0 => format!("delivered to {pids:?}"),
                        more => format!("delivered to {pids:?} and {more} more"),
                    })
                    .map_err(ToString::to_string)
            )
        ),
        Action::Escalated {
            pid,
            after_ms,
            signal,
            scope,
            authority,
            outcome: result,
        } => format!(
            "process {pid}: escalate({after_ms} ms, {signal}, {scope:?}{}) -> {}",
            on_behalf(authority),
            outcome(
                result
                    .map(|()| "scheduled".to_string())
                    .map_err(|e| e.to_string())
            )
        ),
        Action::Unanswered { asked } => format!("{asked} -> the record cannot answer this"),
        Action::Waited { pid, waited, .. } => match waited.exit {
            Some(exit) => format!("process {pid}: wait-exit -> ended: {exit:?}"),
            None if waited.cut_short => format!("process {pid}: wait-exit -> cut short"),
            None => format!("process {pid}: wait-exit -> still running"),
        },
    }
}

/// A caller, for people: "uid 1000, no token" or "principal ci (uid 0)".
pub fn describe_caller(caller: &Caller) -> String {
    let uid = match caller.peer.credentials {
        Some(credentials) => format!("uid {}", credentials.uid),
        None => "a peer the kernel cannot tell".into(),
    };
    match &caller.principal {
        Some(name) => format!("principal {name} ({uid})"),
        None => format!("{uid}, no token"),
    }
}

/// How a host call names whose authority a signal used ("" for sigd's).
fn on_behalf(authority: &Authority) -> String {
    match authority {
        Authority::Sigd => String::new(),
        Authority::OnBehalfOf(uid) => format!(", on behalf of uid {uid}"),
    }
}
