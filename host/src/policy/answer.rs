//! The answer check: what a policy answers becomes an [`Answer`] only if
//! sigd may pass it on (a status in 200..=599, a JSON body within the size
//! limit). The body is parsed once, here, and its error `code` kept, so
//! nothing downstream (HTTP, metrics, audit) parses it again.

use super::CallError;
use http::StatusCode;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A policy's answer, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// In 200..=599.
    pub status: StatusCode,
    /// A JSON document.
    pub body: String,
    /// The body's top-level `code` string ("" if it has none, as successes).
    pub code: String,
}

impl Answer {
    /// `status` and `body` as an answer, if sigd may pass them on.
    pub fn check(status: u16, body: String, max_bytes: usize) -> Result<Answer, CallError> {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| (200..=599).contains(&s.as_u16()))
            .ok_or(CallError::BadStatus(status))?;
        if body.len() > max_bytes {
            return Err(CallError::TooLarge(body.len()));
        }
        let Code(code) = serde_json::from_str(&body).map_err(CallError::BadBody)?;
        Ok(Answer {
            status,
            body,
            code: code.unwrap_or_default(),
        })
    }
}

/// Any JSON document, read for its top-level `code` string only.
struct Code(Option<String>);

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Code, D::Error> {
        deserializer.deserialize_any(CodeVisitor)
    }
}

struct CodeVisitor;

impl<'de> Visitor<'de> for CodeVisitor {
    type Value = Code;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON document")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Code, E> {
        Ok(Code(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Code, E> {
        Ok(Code(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Code, E> {
        Ok(Code(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Code, E> {
        Ok(Code(None))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Code, E> {
        Ok(Code(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Code, E> {
        Ok(Code(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Code, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Code(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Code, A::Error> {
        let mut code = None;
        while let Some(IsCode(is_code)) = map.next_key()? {
            if is_code && code.is_none() {
                code = map
                    .next_value::<serde_json::Value>()?
                    .as_str()
                    .map(str::to_string);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Code(code))
    }
}

/// An object's key, read for whether it is `code` and not kept: the keys
/// of every answer pass through here, and a `String` each would be an
/// allocation each.
struct IsCode(bool);

impl<'de> Deserialize<'de> for IsCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<IsCode, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = IsCode;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }

            // serde_json hands keys over borrowed, or unescaped into its
            // scratch buffer: either way a `&str` here.
            fn visit_str<E: de::Error>(self, key: &str) -> Result<IsCode, E> {
                Ok(IsCode(key == "code"))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str) -> Result<Answer, CallError> {
        Answer::check(status, body.to_string(), 64)
    }

    /// Any JSON document passes; its top-level string `code` is kept.
    #[test]
    fn keeps_the_code_of_any_json() {
        let code = |body: &str| check(400, body).unwrap().code;
        assert_eq!(
            code(r#"{"error": "no", "code": "INVALID_PID"}"#),
            "INVALID_PID"
        );
        assert_eq!(code(r#"{"success": true}"#), "");
        assert_eq!(code(r#"{"code": 7}"#), "");
        assert_eq!(code(r#"{"inner": {"code": "X"}}"#), "");
        // A key spelled with escapes is the same key; only the first counts.
        assert_eq!(code(r#"{"c\u006fde": "ESCAPED", "code": "X"}"#), "ESCAPED");
        assert_eq!(code(r#"{"codex": "X", "cod": "Y"}"#), "");
        for other in ["[1, {\"code\": \"X\"}]", "\"text\"", "15", "null", "true"] {
            assert_eq!(code(other), "", "{other}");
        }
    }

    /// Bad statuses, bodies over the limit and text that is not JSON are refused.
    #[test]
    fn refuses_what_sigd_may_not_pass_on() {
        assert!(matches!(check(199, "{}"), Err(CallError::BadStatus(199))));
        assert!(matches!(check(600, "{}"), Err(CallError::BadStatus(600))));
        assert!(matches!(
            check(200, &"1".repeat(65)),
            Err(CallError::TooLarge(65))
        ));
        for bad in ["{", "", "{} {}", "{\"a\": }"] {
            assert!(
                matches!(check(200, bad), Err(CallError::BadBody(_))),
                "{bad:?}"
            );
        }
        assert_eq!(check(599, "{}").unwrap().status, 599);
    }
}
