//! The bearer token: where it comes from (a file, or SIGD_TOKEN, which
//! [`take_env_token`] scrubs from the environment), and the constant-time
//! check of the `Authorization` header against it.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The token callers must present as `Authorization: Bearer <token>`.
///
/// Only its sha256 is kept, so the comparison takes the same time whatever
/// the presented token's length or content, and no copy of the secret lingers.
pub struct Token {
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Why a token could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is empty")]
    Empty,
    #[error("the token holds whitespace or control characters")]
    Malformed,
}

impl Token {
    /// A token from its text; one trailing newline (as files end) is dropped.
    pub fn new(text: &str) -> Result<Token, TokenError> {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TokenError::Malformed);
        }
        Ok(Token {
            digest: Sha256::digest(text).into(),
        })
    }

    /// Whether an `Authorization` header value presents this token.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(presented) = authorization.and_then(bearer) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.ct_eq(&self.digest).into()
    }
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
        let token = Token::new("s3cret\n").unwrap();
        assert!(token.accepts(Some(b"Bearer s3cret")));
        assert!(token.accepts(Some(b"bearer s3cret")));
        assert!(token.accepts(Some(b"BEARER   s3cret ")));
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
            assert!(
                !token.accepts(Some(bad)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(!token.accepts(None));
    }

    /// Empty tokens and tokens with inner whitespace are refused at start-up.
    #[test]
    fn refuses_bad_tokens() {
        assert!(matches!(Token::new(""), Err(TokenError::Empty)));
        assert!(matches!(Token::new("\n"), Err(TokenError::Empty)));
        assert!(matches!(Token::new("a b"), Err(TokenError::Malformed)));
        assert!(Token::new("abc\r\n").is_ok());
    }
}
