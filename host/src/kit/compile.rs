//! `sigd policy compile PATH`: a policy component compiled ahead of time,
//! into a file (see [`crate::policy::precompiled`]) that any build of this
//! version of sigd runs without compiling: the slim build, which has no
//! compiler, and a full build that should not spend start-up compiling.
//! Only a build with the compiler has this command.

use super::{load_bytes, millis};
use crate::policy::precompiled::{Cpu, Precompiled, TARGET};
use crate::policy::{CallLimits, Isolation, Runtime, config, sha256_hex};
use anyhow::{Context, bail};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Compile a policy component ahead of time.
#[derive(Debug, clap::Args)]
pub struct Compile {
    /// The policy component (.wasm).
    path: PathBuf,
    /// Where to write it [default: PATH with the extension .cwasm].
    #[arg(long, short, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Which CPUs the code is for: `portable`, any CPU of this architecture
    /// (its baseline features only: it runs on every machine of a fleet),
    /// or `native`, this machine's CPU with every feature it has (faster;
    /// refused, saying so, by a machine that lacks one).
    #[arg(long, value_enum, default_value_t = Cpu::Portable)]
    cpu: Cpu,
}

impl Compile {
    /// Compile, prove the result links as a policy, and write it; `Ok(false)`
    /// if it cannot be compiled or is no policy sigd can run.
    pub fn run(self) -> anyhow::Result<bool> {
        let component = load_bytes(&self.path)?;
        if Precompiled::parse(&component).is_some() {
            bail!("{} is compiled already", self.path.display());
        }
        let started = Instant::now();
        let encoded = match compile(&component, self.cpu) {
            Ok(encoded) => encoded,
            Err(why) => {
                println!("verdict   NO: {why}");
                return Ok(false);
            }
        };
        let took = started.elapsed();
        let output = self.output.unwrap_or_else(|| {
            self.path
                .with_extension(crate::policy::precompiled::EXTENSION)
        });
        write(&output, &encoded)?;
        println!("policy    {}", self.path.display());
        println!("sha256    {}", sha256_hex(&component));
        println!(
            "compiled  for {TARGET}, {} ({}, {} KiB)",
            self.cpu,
            millis(took),
            encoded.len() >> 10
        );
        println!("wrote     {}", output.display());
        Ok(true)
    }
}

/// `component` compiled for `cpu` of this target, as a precompiled policy
/// file, once it links as a policy; else the sentence that says why not.
fn compile(component: &[u8], cpu: Cpu) -> Result<Vec<u8>, String> {
    let config = match cpu {
        Cpu::Portable => config::portable_config(TARGET).map_err(|e| format!("{e:#}"))?,
        Cpu::Native => config::compile_config(),
    };
    let engine = wasmtime::Engine::new(&config).map_err(|e| format!("{e:#}"))?;
    let payload = engine
        .precompile_component(component)
        .map_err(|e| format!("wasmtime cannot compile it: {e:#}"))?;
    let encoded = Precompiled::encode(&sha256_hex(component), cpu, &payload);
    // What sigd serve would do with the file: load it, link it.
    let runtime = Runtime::new(CallLimits::default(), Isolation::ReuseSound, None)
        .map_err(|e| e.to_string())?;
    runtime
        .load(&encoded)
        .map_err(|error| format!("it {error} (`sigd policy check` on the component says more)"))?;
    Ok(encoded)
}

/// Write `bytes` to `path` whole or not at all (a file beside it, renamed
/// over it), readable by all, writable by its owner only: sigd runs it only
/// from such a file.
fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}
