//! The bearer token: where it comes from (a file, read again on SIGHUP, or
//! SIGD_TOKEN, which [`take_env_token`] scrubs from the environment), and
//! the constant-time check of the `Authorization` header against it.

use crate::trusted_file::{self, Kind};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;
use subtle::ConstantTimeEq;

/// The principal of a token given alone (a token file of one token, or
/// SIGD_TOKEN).
pub const SINGLE_TOKEN_PRINCIPAL: &str = "default";

/// The tokens callers may present as `Authorization: Bearer <token>`, each
/// with the name of its principal.
///
/// Only their sha256 is kept, so a comparison takes the same time whatever
/// the presented token's length or content, and no copy of a secret lingers.
pub struct Tokens {
    named: Vec<Named>,
}

struct Named {
    principal: String,
    digest: [u8; 32],
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.named.iter().map(|n| n.principal.as_str()).collect();
        write!(f, "Tokens({names:?})")
    }
}

/// Why tokens could not be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("there is no token")]
    Empty,
    #[error("line {0}: expected `NAME TOKEN`, or a single token alone")]
    Line(usize),
    #[error("line {0}: a token holds control characters")]
    Malformed(usize),
    #[error("line {0}: a name is 1 to 64 letters, digits, `.`, `_` or `-`")]
    BadName(usize),
    #[error("line {0}: the name {1:?} is given twice")]
    DuplicateName(usize, String),
    #[error("line {0}: this token is given twice")]
    DuplicateToken(usize),
    /// `default` names only a token given alone, whose holder is the
    /// operator ([`crate::shares`]): a named token that took it would be
    /// trusted as that one.
    #[error("line {0}: the name \"default\" is a lone token's; give this token another")]
    ReservedName(usize),
}

impl Tokens {
    /// The tokens of a token file: a single token alone (its principal is
    /// [`SINGLE_TOKEN_PRINCIPAL`]), or one `NAME TOKEN` a line. Blank lines
    /// and lines starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<Tokens, TokenError> {
        let lines: Vec<(usize, Vec<&str>)> = text
            .lines()
            .enumerate()
            .map(|(i, line)| (i + 1, line.split_ascii_whitespace().collect::<Vec<_>>()))
            .filter(|(_, fields)| fields.first().is_some_and(|f| !f.starts_with('#')))
            .collect();
        let pairs: Vec<(usize, &str, &str)> = match lines.as_slice() {
            [] => return Err(TokenError::Empty),
            [(line, fields)] if fields.len() == 1 => {
                vec![(*line, SINGLE_TOKEN_PRINCIPAL, fields[0])]
            }
            _ => lines
                .iter()
                .map(|(line, fields)| match fields.as_slice() {
                    [name, token] => Ok((*line, *name, *token)),
                    _ => Err(TokenError::Line(*line)),
                })
                .collect::<Result<_, _>>()?,
        };
        let mut named: Vec<Named> = Vec::new();
        for (line, principal, token) in pairs {
            let valid_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if principal.len() > 64 || !principal.chars().all(valid_name) {
                return Err(TokenError::BadName(line));
            }
            if principal == SINGLE_TOKEN_PRINCIPAL && lines.len() > 1 {
                return Err(TokenError::ReservedName(line));
            }
            if token.chars().any(char::is_control) {
                return Err(TokenError::Malformed(line));
            }
            let digest: [u8; 32] = Sha256::digest(token).into();
            if named.iter().any(|n| n.principal == principal) {
                return Err(TokenError::DuplicateName(line, principal.to_string()));
            }
            if named.iter().any(|n| n.digest == digest) {
                return Err(TokenError::DuplicateToken(line));
            }
            named.push(Named {
                principal: principal.to_string(),
                digest,
            });
        }
        Ok(Tokens { named })
    }

    /// The principal whose token an `Authorization` header value presents.
    /// Every token is compared, in constant time, whichever matches.
    pub fn principal(&self, authorization: Option<&[u8]>) -> Option<&str> {
        let presented = authorization.and_then(bearer)?;
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = None;
        for named in &self.named {
            if bool::from(digest.ct_eq(&named.digest)) {
                found = Some(named.principal.as_str());
            }
        }
        found
    }
}

/// The tokens sigd serves with. A token file's are read again on SIGHUP,
/// so a token taken out of the file (a leaked one) stops working on
/// `systemctl reload sigd`; a file that cannot be used then leaves the
/// tokens read before in force, and is kept for `/healthz` and the
/// service manager's status. SIGD_TOKEN's stay as they were given.
pub struct HeldTokens {
    file: Option<PathBuf>,
    tokens: RwLock<Arc<Tokens>>,
    last_reload: Mutex<Option<TokenReload>>,
}

/// One reading of the token file again: when, and why it could not be
/// used, if it could not (the tokens read before then hold).
#[derive(Debug, Clone)]
pub struct TokenReload {
    pub at: SystemTime,
    pub error: Option<String>,
}

/// Why a token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read token file {path}: {error}", path = .0.display(), error = .1)]
    Read(PathBuf, std::io::Error),
    #[error("unusable token in {path}: {error}", path = .0.display(), error = .1)]
    Unusable(PathBuf, TokenError),
}

impl HeldTokens {
    /// The tokens of the file at `path`, read as [`trusted_file::read`]
    /// reads a secret: no one but sigd's user (or root) may read or change it.
    pub fn from_file(path: &Path) -> Result<HeldTokens, TokenFileError> {
        Ok(HeldTokens {
            tokens: RwLock::new(Arc::new(read_token_file(path)?)),
            file: Some(path.to_path_buf()),
            last_reload: Mutex::new(None),
        })
    }

    /// `tokens` as given (SIGD_TOKEN), never read again.
    pub fn given(tokens: Tokens) -> HeldTokens {
        HeldTokens {
            file: None,
            tokens: RwLock::new(Arc::new(tokens)),
            last_reload: Mutex::new(None),
        }
    }

    /// The tokens in force now.
    pub fn current(&self) -> Arc<Tokens> {
        (self.tokens.read())
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Whether the tokens come from a file (and so are read again).
    pub fn from_a_file(&self) -> bool {
        self.file.is_some()
    }

    /// The last time the token file was read again, if it was.
    pub fn last_reload(&self) -> Option<TokenReload> {
        (self.last_reload.lock())
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Read the token file again and put its tokens in force: how many
    /// there are now. `Ok(None)` without a file; on an error the tokens in
    /// force stay. The attempt is kept ([`last_reload`](Self::last_reload)).
    pub fn reload(&self) -> Result<Option<usize>, TokenFileError> {
        let Some(path) = &self.file else {
            return Ok(None);
        };
        let read = read_token_file(path);
        *self
            .last_reload
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(TokenReload {
            at: SystemTime::now(),
            error: read.as_ref().err().map(ToString::to_string),
        });
        let tokens = read?;
        let count = tokens.named.len();
        *self
            .tokens
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(tokens);
        Ok(Some(count))
    }
}

/// The tokens of the token file at `path`.
fn read_token_file(path: &Path) -> Result<Tokens, TokenFileError> {
    let text = trusted_file::read_text(path, Kind::Secret)
        .map_err(|error| TokenFileError::Read(path.to_path_buf(), error))?;
    Tokens::parse(&text).map_err(|error| TokenFileError::Unusable(path.to_path_buf(), error))
}

/// The credentials of a `Bearer` authorization (scheme matched in any case).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let credentials = rest.trim_ascii_start();
    (credentials.len() < rest.len() && !credentials.is_empty())
        .then_some(credentials.trim_ascii_end())
}

/// The environment variable that may hold the bearer token.
pub const TOKEN_ENV: &str = "SIGD_TOKEN";

/// Take the token out of the environment: read SIGD_TOKEN, overwrite its
/// value in the process's original environment block (what
/// `/proc/<pid>/environ` shows) and unset it, so it lingers nowhere.
///
/// # Safety
///
/// Call it before any other thread starts: it writes the environment.
pub unsafe fn take_env_token() -> Option<String> {
    let token = std::env::var(TOKEN_ENV).ok()?;
    let prefix = format!("{TOKEN_ENV}=");
    // SAFETY: `environ` is a null-terminated array of NUL-terminated strings
    // that no other thread touches yet (the caller's promise); we only
    // overwrite bytes within the value of our own variable.
    unsafe {
        let mut entry = nix::libc::environ;
        while !entry.is_null() && !(*entry).is_null() {
            let text = std::ffi::CStr::from_ptr(*entry).to_bytes();
            if text.starts_with(prefix.as_bytes()) {
                let value = (*entry).add(prefix.len());
                std::ptr::write_bytes(value, b'*', text.len() - prefix.len());
            }
            entry = entry.add(1);
        }
        std::env::remove_var(TOKEN_ENV);
    }
    Some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only `Bearer <the token>` passes; scheme case does not matter.
    #[test]
    fn checks_bearer_header() {
        let tokens = Tokens::parse("s3cret\n").unwrap();
        let accepts = |value: &[u8]| tokens.principal(Some(value)) == Some(SINGLE_TOKEN_PRINCIPAL);
        assert!(accepts(b"Bearer s3cret"));
        assert!(accepts(b"bearer s3cret"));
        assert!(accepts(b"BEARER   s3cret "));
        for bad in [
            &b""[..],
            b"s3cret",
            b"Bearer",
            b"Bearer ",
            b"Bearers3cret",
            b"Basic s3cret",
            b"Bearer s3cre",
            b"Bearer s3cret2",
            b"Bearer S3CRET",
        ] {
            assert!(!accepts(bad), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(tokens.principal(None), None);
    }

    /// Empty token files, malformed lines, bad names and repeated names or
    /// tokens are refused at start-up.
    #[test]
    fn refuses_bad_tokens() {
        assert_eq!(Tokens::parse("").unwrap_err(), TokenError::Empty);
        assert_eq!(Tokens::parse("\n").unwrap_err(), TokenError::Empty);
        assert_eq!(Tokens::parse("# only\n").unwrap_err(), TokenError::Empty);
        assert_eq!(Tokens::parse("a b c").unwrap_err(), TokenError::Line(1));
        assert_eq!(Tokens::parse("a\nb").unwrap_err(), TokenError::Line(1));
        assert_eq!(
            Tokens::parse("a\u{7}b").unwrap_err(),
            TokenError::Malformed(1)
        );
        assert_eq!(Tokens::parse("n/a t").unwrap_err(), TokenError::BadName(1));
        assert_eq!(
            Tokens::parse("a t1\na t2").unwrap_err(),
            TokenError::DuplicateName(2, "a".into())
        );
        assert_eq!(
            Tokens::parse("a t\nb t").unwrap_err(),
            TokenError::DuplicateToken(2)
        );
        assert!(Tokens::parse("abc\r\n").is_ok());
        assert_eq!(
            Tokens::parse("ci t1\ndefault t2").unwrap_err(),
            TokenError::ReservedName(2)
        );
    }

    /// A file of `NAME TOKEN` lines names each request's principal.
    #[test]
    fn named_tokens_name_their_principal() {
        let tokens = Tokens::parse("# who may ask\nplatform p-secret\n\nci   c-secret\n").unwrap();
        assert_eq!(tokens.principal(Some(b"Bearer p-secret")), Some("platform"));
        assert_eq!(tokens.principal(Some(b"Bearer c-secret")), Some("ci"));
        assert_eq!(tokens.principal(Some(b"Bearer other")), None);
    }
}
