//! Policies compiled ahead of time (`sigd policy compile`): what the slim
//! build (no compiler) runs, and what either build loads without compiling.
//!
//! A file is [`MAGIC`], one line of JSON (a [`Header`]: the component it was
//! compiled from, by which sigd, for which machine, and its payload's
//! sha256), then the payload: wasmtime's serialized component.
//!
//! Its machine code runs as sigd itself, outside the wasm sandbox, so sigd
//! runs it only from a file named `.cwasm` that root or sigd's user owns
//! and no one else may write ([`read_file`]), whose payload matches its
//! checksum, and that
//! wasmtime finds compiled for this engine: its version, its configuration
//! and this machine's CPU ([`Precompiled::load`]). Each refusal is one
//! sentence saying which, and what to do.

use super::sha256_hex;
use crate::trusted_file::{self, Kind};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use wasmtime::Engine;
use wasmtime::component::Component;

/// What a precompiled policy file starts with.
pub const MAGIC: &[u8] = b"sigd-precompiled-policy-v1\n";

/// How a precompiled policy file's name ends (after a dot).
pub const EXTENSION: &str = "cwasm";

/// The target triple sigd was built for (`host/build.rs` says).
pub const TARGET: &str = env!("SIGD_TARGET");

/// The line after [`MAGIC`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The sha256 of the component it was compiled from: the policy's name
    /// (in `/healthz`, metrics, decision records), as for the component.
    pub sha256: String,
    /// The version of the sigd that compiled it.
    pub sigd: String,
    /// The target triple it was compiled for.
    pub target: String,
    /// Which CPUs of that target it runs on.
    pub cpu: Cpu,
    /// The sha256 of the payload.
    pub payload_sha256: String,
}

/// Which CPUs machine code is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Cpu {
    /// Any CPU of the target's architecture: its baseline features only.
    Portable,
    /// The compiling machine's CPU, with every feature it has.
    Native,
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cpu::Portable => "any CPU of it",
            Cpu::Native => "the compiling machine's CPU",
        })
    }
}

/// Why a precompiled policy is not run.
#[derive(Debug, thiserror::Error)]
pub enum PrecompiledError {
    #[error("is a precompiled policy whose header is unreadable ({0}): the file is damaged")]
    Malformed(String),
    #[error(
        "is a precompiled policy whose machine code does not match its checksum: the file is damaged"
    )]
    Damaged,
    /// Wasmtime refused it: compiled for another engine.
    #[error(
        "was precompiled by sigd {sigd} for {target} ({cpu}), and this sigd {ours} cannot run \
         it: it was compiled for {mismatch} ({detail}); compile it again with this sigd's \
         `sigd policy compile` (on a full build of sigd {ours}){hint}",
        sigd = .header.sigd, target = .header.target, cpu = .header.cpu,
        ours = env!("CARGO_PKG_VERSION"), hint = .mismatch.hint()
    )]
    Engine {
        header: Box<Header>,
        mismatch: Mismatch,
        /// What wasmtime said.
        detail: String,
    },
}

/// How machine code does not suit this engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// Another version of wasmtime, sigd's engine, compiled it.
    Version,
    /// Another architecture or operating system.
    Machine,
    /// CPU features this machine lacks.
    CpuFeatures,
    /// Another engine configuration (limits, traps, wasm features).
    Configuration,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mismatch::Version => "another version of sigd's engine",
            Mismatch::Machine => "another architecture or operating system",
            Mismatch::CpuFeatures => "CPU features this machine lacks",
            Mismatch::Configuration => "another engine configuration",
        })
    }
}

impl Mismatch {
    /// What to do besides compiling it again.
    fn hint(&self) -> &'static str {
        match self {
            Mismatch::CpuFeatures => {
                ", without `--cpu native`: portable code runs on any CPU of this architecture"
            }
            _ => "",
        }
    }

    /// Which mismatch wasmtime's refusal to deserialize names.
    fn of(detail: &str) -> Mismatch {
        if detail.contains("incompatible version") {
            Mismatch::Version
        } else if detail.contains("compiled for architecture")
            || detail.contains("compiled for operating system")
        {
            Mismatch::Machine
        } else if detail.contains("not available on the host")
            || detail.contains("target-specific flag")
        {
            Mismatch::CpuFeatures
        } else {
            Mismatch::Configuration
        }
    }
}

/// A precompiled policy, read from its bytes.
pub struct Precompiled<'a> {
    pub header: Header,
    payload: &'a [u8],
}

impl<'a> Precompiled<'a> {
    /// `bytes` as a precompiled policy: `None` if they are not one (they do
    /// not start with [`MAGIC`]).
    pub fn parse(bytes: &'a [u8]) -> Option<Result<Precompiled<'a>, PrecompiledError>> {
        let rest = bytes.strip_prefix(MAGIC)?;
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            return Some(Err(PrecompiledError::Malformed("no header line".into())));
        };
        let (line, payload) = (&rest[..end], &rest[end + 1..]);
        Some(
            serde_json::from_slice(line)
                .map(|header| Precompiled { header, payload })
                .map_err(|error| PrecompiledError::Malformed(error.to_string())),
        )
    }

    /// The file's bytes for the component with sha256 `sha256`, compiled
    /// into `payload` by this sigd for `cpu`.
    pub fn encode(sha256: &str, cpu: Cpu, payload: &[u8]) -> Vec<u8> {
        let header = Header {
            sha256: sha256.to_string(),
            sigd: env!("CARGO_PKG_VERSION").to_string(),
            target: TARGET.to_string(),
            cpu,
            payload_sha256: sha256_hex(payload),
        };
        let mut bytes = MAGIC.to_vec();
        // Serializing this plain struct cannot fail.
        bytes.extend(serde_json::to_vec(&header).unwrap_or_default());
        bytes.push(b'\n');
        bytes.extend_from_slice(payload);
        bytes
    }

    /// Its machine code, for `engine`, once it proves sound and suited to it.
    pub fn load(&self, engine: &Engine) -> Result<Component, PrecompiledError> {
        if sha256_hex(self.payload) != self.header.payload_sha256 {
            return Err(PrecompiledError::Damaged);
        }
        // SAFETY: the payload is what `Engine::precompile_component` wrote
        // (`sigd policy compile`, its checksum verified), read from a file
        // only root or sigd's user can write (`read_file`); wasmtime checks
        // that it suits this engine and CPU before any of it runs.
        unsafe { Component::deserialize(engine, self.payload) }.map_err(|error| {
            let detail = format!("{error:#}");
            PrecompiledError::Engine {
                header: Box::new(self.header.clone()),
                mismatch: Mismatch::of(&detail),
                detail,
            }
        })
    }
}

/// The bytes of the policy file at `path`, which decides what sigd does with
/// its authority: read only as [`trusted_file::read`] reads (root or sigd's
/// user owns it, and no one else may write it). A precompiled policy is
/// machine code that runs as sigd itself, outside the sandbox: sigd runs it
/// only from a file named for it (`.cwasm`), never from one that passes
/// for a component, which anyone may hand an operator to vet
/// (`sigd policy check`) or run in the sandbox.
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let bytes = trusted_file::read(path, Kind::Decisive)?;
    if bytes.starts_with(MAGIC) && path.extension().is_none_or(|e| e != EXTENSION) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "it holds precompiled machine code, which sigd would run as itself, outside \
                 the sandbox, but its name does not end in .{EXTENSION}: sigd runs machine \
                 code only from a file named for it"
            ),
        ));
    }
    Ok(bytes)
}

/// The bytes of a policy file someone vets (`sigd policy check`, `eval`,
/// `test`, `replay`): a component whoever owns it, which runs in the
/// sandbox; machine code only as [`read_file`] reads it.
pub fn read_to_vet(path: &Path) -> std::io::Result<Vec<u8>> {
    let bytes = trusted_file::read(path, Kind::Anyones)?;
    match bytes.starts_with(MAGIC) {
        true => read_file(path),
        false => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file reads back as written; a flipped payload byte, a damaged
    /// header and bytes without the magic are told apart.
    #[test]
    fn encoded_files_parse_and_damage_is_found() {
        let bytes = Precompiled::encode("abc", Cpu::Portable, b"payload");
        let parsed = Precompiled::parse(&bytes).unwrap().unwrap();
        assert_eq!(parsed.header.sha256, "abc");
        assert_eq!(parsed.header.cpu, Cpu::Portable);
        assert_eq!(parsed.payload, b"payload");

        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let engine = Engine::default();
        let parsed = Precompiled::parse(&flipped).unwrap().unwrap();
        assert!(matches!(
            parsed.load(&engine),
            Err(PrecompiledError::Damaged)
        ));

        let mut header = MAGIC.to_vec();
        header.extend_from_slice(b"{not json\npayload");
        assert!(matches!(
            Precompiled::parse(&header),
            Some(Err(PrecompiledError::Malformed(_)))
        ));
        assert!(Precompiled::parse(b"\0asm\x0d\0\x01\0").is_none());
    }

    /// Each of wasmtime's refusals is named for what differs.
    #[test]
    fn mismatches_are_named() {
        let of = Mismatch::of;
        assert_eq!(
            of("Module was compiled with incompatible version '47.0.0'"),
            Mismatch::Version
        );
        assert_eq!(
            of("Module was compiled for architecture 'aarch64'"),
            Mismatch::Machine
        );
        assert_eq!(
            of(
                "compilation settings of module incompatible with native host: \
                compilation setting \"has_avx512f\" is enabled, but not available on the host"
            ),
            Mismatch::CpuFeatures
        );
        assert_eq!(
            of("Module was compiled without epoch interruption but it is enabled for the host"),
            Mismatch::Configuration
        );
    }
}
