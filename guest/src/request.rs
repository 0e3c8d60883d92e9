//! The request body: `{"signal": 15}` as the spec has it, plus sigd's
//! optional fields `scope`, `escalate` and `wait_ms`. A body gives each key
//! once, in every object, however deep.

use crate::{Rejection, Rules, signals};
use serde_json::error::Category;
use serde_json::{Map, Value};
use std::ops::RangeInclusive;

/// The fields sigd reads from a body; any others are ignored.
#[derive(Default)]
struct Fields {
    signal: Option<Value>,
    scope: Option<Value>,
    escalate: Option<Value>,
    wait_ms: Option<Value>,
}

/// [`Fields`] from a JSON object only (not from an array of the four
/// values in order, as serde's own would), read in the one pass that also
/// refuses a key given twice at any depth: the fields' values are read as
/// [`Checked`], the others walked as [`UniqueKeys`]. Every object is checked
/// for a repeated key when the key is read, before its value: of two faults
/// in a body, the one that comes first is the one answered.
struct Object(Fields);

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Object, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Object;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Object, A::Error> {
                let mut fields = Fields::default();
                let mut keys = std::collections::BTreeSet::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if !keys.insert(key.clone()) {
                        return Err(twice());
                    }
                    let field = match &*key {
                        "signal" => Some(&mut fields.signal),
                        "scope" => Some(&mut fields.scope),
                        "escalate" => Some(&mut fields.escalate),
                        "wait_ms" => Some(&mut fields.wait_ms),
                        _ => None,
                    };
                    match field {
                        Some(field) => *field = Some(map.next_value::<Checked>()?.0),
                        None => {
                            map.next_value::<UniqueKeys>()?;
                        }
                    }
                }
                Ok(Object(fields))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// The error for an object that gives a key twice.
fn twice<E: serde::de::Error>() -> E {
    E::custom("a key given twice")
}

/// A JSON value, as serde_json's own, but refusing an object that gives a
/// key twice, at any depth.
struct Checked(Value);

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_any(CheckedVisitor).map(Checked)
    }
}

/// What reads a [`Checked`] value.
struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON whose objects give each key once")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(twice());
            }
            let Checked(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(Checked(value)) = seq.next_element()? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, text: &str) -> Result<Value, E> {
        Ok(Value::String(text.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// Any JSON value, walked only to refuse an object that gives a key twice,
/// at any depth: a body means one thing to sigd and to whatever else reads
/// it (a proxy, an audit tool), whichever of two keys each would keep.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<UniqueKeys, D::Error> {
        deserializer.deserialize_any(UniqueKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON whose objects give each key once")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut keys = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !keys.insert(key) {
                return Err(twice());
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
}

/// Which processes a signal reaches (mirrors WIT `host.scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The process alone (the spec's behaviour).
    Process,
    /// Its whole process group.
    Group,
    /// It and all its descendants.
    Tree,
}

impl Scope {
    /// The name callers use in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Process => "process",
            Scope::Group => "group",
            Scope::Tree => "tree",
        }
    }

    fn parse(name: &str) -> Option<Scope> {
        [Scope::Process, Scope::Group, Scope::Tree]
            .into_iter()
            .find(|scope| scope.as_str() == name)
    }
}

impl std::str::FromStr for Scope {
    type Err = ();

    /// A scope by the name callers use.
    fn from_str(name: &str) -> Result<Scope, ()> {
        Scope::parse(name).ok_or(())
    }
}

/// A second signal, sent if the process still runs after a delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Escalation {
    pub after_ms: u32,
    pub signal: i32,
}

/// What a valid body asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalRequest {
    pub signal: i32,
    pub scope: Scope,
    pub escalate: Option<Escalation>,
    pub wait_ms: Option<u32>,
}

impl SignalRequest {
    /// Parse a body. Unknown fields are ignored, for callers that send more.
    pub fn parse(
        body: &[u8],
        default_scope: Scope,
        realtime: &RangeInclusive<i32>,
    ) -> Result<SignalRequest, Rejection> {
        let invalid = |why: &str| Rejection::InvalidRequest(why.to_string());
        let refusal = |error: serde_json::Error| match error.classify() {
            // A JSON value of another type, or a key given twice.
            Category::Data => invalid("the body is not a JSON object with each field once"),
            _ => invalid("the body is not valid JSON"),
        };
        let Object(fields) = serde_json::from_slice(body).map_err(refusal)?;
        let signal = signal(
            fields
                .signal
                .as_ref()
                .filter(|value| !value.is_null())
                .ok_or_else(|| invalid("the field \"signal\" is missing"))?,
            "signal",
            realtime,
        )?;
        let scope = match &fields.scope {
            None | Some(Value::Null) => default_scope,
            Some(Value::String(name)) => Scope::parse(name)
                .ok_or_else(|| invalid("\"scope\" must be \"process\", \"group\" or \"tree\""))?,
            Some(_) => return Err(invalid("\"scope\" must be a string")),
        };
        let escalate = match &fields.escalate {
            None | Some(Value::Null) => None,
            Some(Value::Object(escalate)) => Some(escalation(escalate, realtime)?),
            Some(_) => {
                return Err(invalid(
                    "\"escalate\" must be an object like {\"after_ms\": 5000, \"signal\": \"SIGKILL\"}",
                ));
            }
        };
        let wait_ms = match &fields.wait_ms {
            None | Some(Value::Null) => None,
            Some(value) => Some(milliseconds(value, "wait_ms")?),
        };
        Ok(SignalRequest {
            signal,
            scope,
            escalate,
            wait_ms,
        })
    }

    /// Hold the request to `rules`.
    pub fn check(&self, rules: &Rules) -> Result<(), Rejection> {
        let signals = [Some(self.signal), self.escalate.map(|e| e.signal)];
        let by = || "this policy".to_string();
        if let Some(allowed) = rules.allowed_signals
            && let Some(signal) = signals.into_iter().flatten().find(|s| !allowed.contains(s))
        {
            return Err(Rejection::SignalNotAllowed { signal, by: by() });
        }
        if !rules.allowed_scopes.contains(&self.scope) {
            return Err(Rejection::ScopeNotAllowed {
                scope: self.scope,
                by: by(),
            });
        }
        let too_long = |field: &str, max: u32| {
            Rejection::InvalidRequest(format!("\"{field}\" may be at most {max} for this policy"))
        };
        if self.wait_ms.is_some_and(|ms| ms > rules.max_wait_ms) {
            return Err(too_long("wait_ms", rules.max_wait_ms));
        }
        if self
            .escalate
            .is_some_and(|e| e.after_ms > rules.max_escalate_ms)
        {
            return Err(too_long("escalate.after_ms", rules.max_escalate_ms));
        }
        Ok(())
    }
}

/// `{"after_ms": N, "signal": S}`; the signal defaults to SIGKILL.
fn escalation(
    object: &Map<String, Value>,
    realtime: &RangeInclusive<i32>,
) -> Result<Escalation, Rejection> {
    let after_ms = object
        .get("after_ms")
        .ok_or_else(|| Rejection::InvalidRequest("\"escalate\" needs \"after_ms\"".to_string()))?;
    Ok(Escalation {
        after_ms: milliseconds(after_ms, "escalate.after_ms")?,
        signal: match object.get("signal") {
            None | Some(Value::Null) => 9,
            Some(value) => signal(value, "escalate.signal", realtime)?,
        },
    })
}

/// A signal given as an integer or a name.
pub(crate) fn signal(
    value: &Value,
    field: &str,
    realtime: &RangeInclusive<i32>,
) -> Result<i32, Rejection> {
    let invalid = || Rejection::InvalidSignal(value.to_string());
    match value {
        Value::String(name) => signals::number(name, realtime).ok_or_else(invalid),
        Value::Number(n) => match integer(n) {
            Some(i) if signals::is_deliverable(i, realtime) => Ok(i as i32),
            Some(_) => Err(invalid()),
            None => Err(not_integer_or_name(field)),
        },
        _ => Err(not_integer_or_name(field)),
    }
}

/// The integer a JSON number stands for: as JSON Schema has it, `15.0` is
/// the integer 15. Integers beyond i64 saturate (they are no signal or
/// duration either); `None` for a number with a fraction.
fn integer(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    if n.is_u64() || (f.fract() == 0.0 && f >= 9.2e18) {
        Some(i64::MAX)
    } else if f.fract() == 0.0 && f <= -9.2e18 {
        Some(i64::MIN)
    } else if f.fract() == 0.0 {
        Some(f as i64)
    } else {
        None
    }
}

fn not_integer_or_name(field: &str) -> Rejection {
    Rejection::InvalidRequest(format!(
        "\"{field}\" must be an integer or a signal name such as \"SIGTERM\""
    ))
}

/// A non-negative integer number of milliseconds that fits in 32 bits.
fn milliseconds(value: &Value, field: &str) -> Result<u32, Rejection> {
    value
        .as_number()
        .and_then(integer)
        .and_then(|ms| u32::try_from(ms).ok())
        .ok_or_else(|| {
            Rejection::InvalidRequest(format!(
                "\"{field}\" must be a whole number of milliseconds"
            ))
        })
}
