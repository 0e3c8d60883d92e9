//! `sigd policy check PATH`: whether sigd can run a component (or a policy
//! precompiled by `sigd policy compile`), and why not in one sentence an
//! author can act on. It reads the component's type (its
//! imports and exports), links it as `sigd serve` would, and makes the same
//! smoke call a reload makes.

use super::{describe_compiled, load_bytes, millis};
use crate::options::RuntimeOptions;
use crate::policy::precompiled::MAGIC;
use crate::policy::{CallError, LoadError, WIT_PACKAGE, WIT_VERSION};
use crate::reload;
use std::path::Path;
use std::time::Instant;

/// The first bytes of a component, and of a core module (the wasm preamble).
const COMPONENT_PREAMBLE: [u8; 8] = *b"\0asm\x0d\0\x01\0";
const MODULE_PREAMBLE: [u8; 8] = *b"\0asm\x01\0\0\0";

/// Check the component at `path` and print the report; `Ok(false)` if sigd
/// cannot run it.
pub async fn run(
    path: &Path,
    settings: Option<&Path>,
    options: &RuntimeOptions,
) -> anyhow::Result<bool> {
    let bytes = load_bytes(path)?;
    let settings = settings.map(super::read_settings).transpose()?;
    println!("policy    {}", path.display());
    println!("size      {}", size(bytes.len()));
    let verdict = check(&bytes, settings, options).await;
    match &verdict {
        Ok(()) => println!(
            "verdict   OK: sigd {} can run this policy",
            env!("CARGO_PKG_VERSION")
        ),
        Err(why) => println!("verdict   NO: {why}"),
    }
    Ok(verdict.is_ok())
}

/// Print what the component is, then `Err` with the one sentence that says
/// why sigd cannot run it.
async fn check(
    bytes: &[u8],
    settings: Option<String>,
    options: &RuntimeOptions,
) -> Result<(), String> {
    match bytes.get(..8) {
        _ if bytes.starts_with(MAGIC) => {}
        Some(preamble) if preamble == COMPONENT_PREAMBLE => {}
        Some(preamble) if preamble == MODULE_PREAMBLE => {
            return Err(
                "this is a core wasm module, not a component: turn it into one with \
                 `wasm-tools component new` (or the wit-component crate), with the world \
                 sigd:policy/policy embedded by wit-bindgen"
                    .into(),
            );
        }
        _ => return Err("this is not a WebAssembly binary".into()),
    }
    let runtime = options.runtime().map_err(|e| format!("{e:#}"))?;
    let started = Instant::now();
    let unlinked = runtime.compile(bytes).map_err(|error| match error {
        LoadError::NotAComponent(_) => format!("wasmtime cannot compile it: {error}"),
        _ => format!("it {error}"),
    })?;
    println!(
        "machine   {}",
        describe_compiled(unlinked.compiled(), started.elapsed())
    );
    let ty = unlinked.component().component_type();
    let engine = runtime.engine();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let wanted = format!("{WIT_PACKAGE}/handler@{WIT_VERSION}");
    let handler = exports
        .iter()
        .find(|name| name.starts_with(&format!("{WIT_PACKAGE}/handler")));
    let targets = match handler.and_then(|name| name.split_once('@')) {
        Some((_, version)) => format!("{WIT_PACKAGE}@{version}"),
        None => "no sigd:policy version".into(),
    };
    println!("targets   {targets} (this sigd speaks {WIT_PACKAGE}@{WIT_VERSION})");
    for (i, name) in exports.iter().enumerate() {
        println!("{}{name}", if i == 0 { "exports   " } else { "          " });
    }
    let mut wasi = false;
    let mut unknown = Vec::new();
    for (i, name) in imports.iter().enumerate() {
        let note = if name.starts_with("wasi:") {
            wasi = true;
            "   (WASI)"
        } else if name.starts_with(&format!("{WIT_PACKAGE}/")) {
            ""
        } else {
            unknown.push(name.clone());
            "   (sigd does not provide this)"
        };
        println!(
            "{}{name}{note}",
            if i == 0 { "imports   " } else { "          " }
        );
    }
    if imports.is_empty() {
        println!("imports   none");
    }
    if wasi {
        println!(
            "note      it uses WASI: sigd links WASI 0.2 but gives it no files, no network, no \
             environment and no arguments; stdout and stderr go to sigd's log, capped"
        );
    }
    let Some(handler) = handler else {
        return Err(format!(
            "it exports no `{WIT_PACKAGE}/handler`: build it for the world \
             `{WIT_PACKAGE}/policy@{WIT_VERSION}` (`sigd policy wit` prints it)"
        ));
    };
    if let Some((_, version)) = handler.split_once('@')
        && !compatible(version)
    {
        return Err(format!(
            "it targets {WIT_PACKAGE}@{version}, but this sigd speaks {WIT_PACKAGE}@{WIT_VERSION}, \
             a different contract: rebuild it against this sigd's WIT (`sigd policy wit`)"
        ));
    }
    if let Some(name) = unknown.first() {
        return Err(format!(
            "it imports `{name}`, which sigd does not provide: a policy may import only \
             `{WIT_PACKAGE}/host` and WASI 0.2"
        ));
    }
    let policy = runtime.link(unlinked).map_err(|e| match e {
        LoadError::Incompatible(_) => {
            format!("it does not link against this sigd ({e}); expected the export `{wanted}`")
        }
        _ => format!("it {e}"),
    })?;
    let policy = policy.with_settings(settings);
    let decision = reload::smoke(&policy).await;
    match decision.answer {
        Ok(answer) => {
            println!(
                "smoke     pid 1, signal 15, no processes: answered {} in {}: {}",
                answer.status.as_u16(),
                millis(decision.took),
                answer.body
            );
            Ok(())
        }
        Err(CallError::Settings(sentence)) => Err(format!("it rejects these settings: {sentence}")),
        Err(error) => Err(format!(
            "its first call failed ({error}): sigd would refuse to load it"
        )),
    }
}

/// Whether a policy built for `version` of the WIT package runs on this
/// sigd's: the same version, or (from 1.0) the same major; while 0.x, the
/// same minor.
fn compatible(version: &str) -> bool {
    let parts = |v: &str| -> Vec<String> { v.split('.').map(str::to_string).collect() };
    let (theirs, ours) = (parts(version), parts(WIT_VERSION));
    match ours.first().map(String::as_str) {
        Some("0") => theirs.get(..2) == ours.get(..2),
        _ => theirs.first() == ours.first(),
    }
}

/// A size in bytes, for people.
fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB ({bytes} bytes)", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB ({bytes} bytes)", bytes as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compatible_within_a_0_x_minor() {
        assert!(compatible(WIT_VERSION));
        assert!(compatible("0.3.7"));
        assert!(!compatible("0.2.0"));
        assert!(!compatible("0.4.0"));
        assert!(!compatible("1.3.0"));
    }
}
