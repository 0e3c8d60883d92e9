//! Reading the files that decide who may signal what: the token file, the
//! policy, its settings and the config file. Whoever can change one of
//! them can change what sigd does with its authority, so sigd reads such a
//! file only if root or sigd's own user owns it and no one else may write
//! to it (the token file, a secret, no one else may read either), as ssh
//! treats private keys. It must be a regular file: a FIFO put in its
//! place would hold up start-up or a reload, a device (`/dev/zero`) would
//! never end; and it is read only up to a bound.
//!
//! A policy someone vets (`sigd policy check`) decides nothing there, and
//! may be anyone's: it is only held to be regular and bounded.
//!
//! The checks are made on the file opened, not on whatever the path names
//! before or after, and once before opening too: sigd keeps no capability
//! to open other users' files, and the fix for one is the same sentence.

use std::io::{Error, ErrorKind, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Who else may look at such a file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// No one but its owner may read it either (a token file).
    Secret,
    /// Anyone may read it; no one but its owner may write it (a policy,
    /// its settings).
    Decisive,
    /// Anyone's: a policy someone vets (`sigd policy check`), which decides
    /// nothing there; only regular and bounded.
    Anyones,
}

/// The most bytes sigd reads of such a file: far more than a component in
/// any language (Python's runtime is about 40 MB).
pub const MAX_BYTES: u64 = 256 << 20;

/// The bytes of the file at `path`, if it is a regular file of at most
/// [`MAX_BYTES`] that only root or sigd's user may change (for a
/// [`Kind::Secret`], read). Refusals are `PermissionDenied` or
/// `InvalidInput`, with a sentence about "it" saying what to do.
pub fn read(path: &Path, kind: Kind) -> std::io::Result<Vec<u8>> {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.is_file()
    {
        trusted(path, kind, &meta)?;
    }
    // Non-blocking, so a FIFO put in its place cannot hold sigd up.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    trusted(path, kind, &meta)?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("it is larger than {} MiB", MAX_BYTES >> 20),
        ));
    }
    Ok(bytes)
}

/// [`read`], as text (UTF-8, or `InvalidData`).
pub fn read_text(path: &Path, kind: Kind) -> std::io::Result<String> {
    String::from_utf8(read(path, kind)?)
        .map_err(|_| Error::new(ErrorKind::InvalidData, "it is not text (UTF-8)"))
}

/// `Ok` if root or sigd's user owns the file `meta` describes and no one
/// else may change it (for a [`Kind::Secret`], read it).
fn trusted(path: &Path, kind: Kind, meta: &std::fs::Metadata) -> std::io::Result<()> {
    let (others, could, fix) = match kind {
        Kind::Secret => (0o077, "read or change it", "chmod 600"),
        Kind::Decisive => (0o022, "change it, and so who may signal", "chmod go-w"),
        Kind::Anyones => return Ok(()),
    };
    let shown = path.display();
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "it belongs to uid {}, not to sigd's user ({me}) or root: whoever owns it can \
                 change who may signal; fix: chown {me} {shown}",
                meta.uid()
            ),
        ));
    }
    if meta.mode() & others != 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "it is open to other users (mode {:03o}): they could {could}; fix: {fix} {shown}",
                meta.mode() & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A file only its owner may change is read whole; one others may
    /// write is refused (a secret, one others may read too); a FIFO is
    /// refused at once, not waited on; the sentences say what to do.
    #[test]
    fn only_files_no_one_else_may_change_are_read() {
        let dir = std::env::temp_dir().join(format!("sigd-trusted-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("policy.wasm");
        std::fs::write(&file, b"bytes").unwrap();
        let mode = |mode: u32| {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        mode(0o644);
        assert_eq!(read(&file, Kind::Decisive).unwrap(), b"bytes");
        let refused = read(&file, Kind::Secret).unwrap_err();
        assert!(refused.to_string().contains("fix: chmod 600"), "{refused}");
        mode(0o664);
        let refused = read(&file, Kind::Decisive).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::PermissionDenied);
        assert!(
            refused
                .to_string()
                .contains("open to other users (mode 664)"),
            "{refused}"
        );
        assert!(refused.to_string().contains("fix: chmod go-w"), "{refused}");

        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let refused = read(&fifo, Kind::Decisive).unwrap_err();
        assert!(
            refused.to_string().contains("is not a regular file"),
            "{refused}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
