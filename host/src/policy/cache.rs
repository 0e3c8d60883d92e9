//! The on-disk cache of compiled policies, so a restart skips compilation.
//!
//! An entry is named by the sha256 of the component, the engine's
//! compatibility hash and sigd's version, and holds a checksum of its payload:
//! a truncated or flipped entry is detected, removed and rebuilt, never loaded.
//! Loading compiled code trusts the directory, so sigd refuses a directory
//! that another user owns or that others may write to.
//!
//! Only a build with the compiler (the `compiler` feature) fills or reads
//! it: the slim build compiles nothing.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
#[cfg(feature = "compiler")]
use {
    sha2::{Digest, Sha256},
    std::hash::{Hash, Hasher},
    std::io::Write,
    wasmtime::Engine,
    wasmtime::component::Component,
};

/// What each entry starts with, before the payload's sha256 and the payload.
#[cfg(feature = "compiler")]
const MAGIC: &[u8] = b"sigd-compiled-policy-v1\n";

/// A directory of compiled policies.
#[derive(Debug, Clone)]
pub struct Cache {
    #[cfg_attr(
        not(feature = "compiler"),
        expect(dead_code, reason = "the slim build compiles nothing to cache")
    )]
    dir: PathBuf,
}

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot create cache directory {0}: {1}")]
    Create(PathBuf, std::io::Error),
    #[error("cache directory {0} is not owned by sigd's user, or others may write to it")]
    Unsafe(PathBuf),
}

impl Cache {
    /// Use `dir`, creating it (mode 0700) if needed.
    pub fn open(dir: &Path) -> Result<Cache, CacheError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CacheError::Create(dir.to_path_buf(), e))?;
        let meta = fs::metadata(dir).map_err(|e| CacheError::Create(dir.to_path_buf(), e))?;
        if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
            return Err(CacheError::Unsafe(dir.to_path_buf()));
        }
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }
}

#[cfg(feature = "compiler")]
impl Cache {
    /// The entry's file for a component (by its sha256) under `engine`.
    fn entry(&self, engine: &Engine, component_sha256: &str) -> PathBuf {
        let mut key = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut key);
        key.0.update(component_sha256.as_bytes());
        key.0.update(env!("CARGO_PKG_VERSION").as_bytes());
        self.dir
            .join(format!("{}.cwasm", super::hex(&key.0.finalize())))
    }

    /// The cached compilation of a component, if a sound one is there.
    pub fn load(&self, engine: &Engine, component_sha256: &str) -> Option<Component> {
        let path = self.entry(engine, component_sha256);
        // Held as a policy file is: a FIFO in its place holds nothing up.
        let bytes = match crate::trusted_file::read(&path, crate::trusted_file::Kind::Decisive) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "unusable compiled-policy cache entry; rebuilding it");
                let _ = fs::remove_file(&path);
                return None;
            }
        };
        let payload = bytes
            .strip_prefix(MAGIC)
            .and_then(|rest| rest.split_at_checked(32))
            .filter(|(sum, payload)| Sha256::digest(payload).as_slice() == *sum)
            .map(|(_, payload)| payload);
        // SAFETY: the payload is what `store` wrote from `Component::serialize`
        // (checksum verified) in a directory only sigd's user can write.
        let component = payload.and_then(|p| unsafe { Component::deserialize(engine, p) }.ok());
        if component.is_none() {
            tracing::warn!(path = %path.display(), "corrupt compiled-policy cache entry; rebuilding it");
            let _ = fs::remove_file(&path);
        }
        component
    }

    /// Remember `component`'s compilation; failures are logged, not fatal.
    pub fn store(&self, engine: &Engine, component_sha256: &str, component: &Component) {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.entry(engine, component_sha256);
        let result = component
            .serialize()
            .map_err(std::io::Error::other)
            .and_then(|payload| {
                let temporary = path.with_extension(format!("tmp{}", std::process::id()));
                let written = (|| {
                    // Its reader holds it to what a policy file is held to,
                    // whatever sigd's umask: no one else may write it.
                    let mut file = fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(&temporary)?;
                    file.write_all(MAGIC)?;
                    file.write_all(&Sha256::digest(&payload))?;
                    file.write_all(&payload)?;
                    file.sync_all()?;
                    fs::rename(&temporary, &path)
                })();
                // A disk that filled up keeps no part of an entry.
                if written.is_err() {
                    let _ = fs::remove_file(&temporary);
                }
                written
            });
        match result {
            Ok(()) => tracing::debug!(path = %path.display(), "cached the compiled policy"),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot cache the compiled policy")
            }
        }
    }
}

/// Feeds a `Hash` into sha256, for a key that is stable across runs.
#[cfg(feature = "compiler")]
struct Sha256Hasher(Sha256);

#[cfg(feature = "compiler")]
impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0 // only the sha256 is read
    }
}
