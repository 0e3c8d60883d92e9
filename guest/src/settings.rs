//! The operator's settings: who may send what, with whose authority, and
//! which targets no one may signal. A JSON document, given to the policy
//! once per instance (`configure`) and checked then, so a mistake is a
//! sentence at start-up, never a surprise on a request:
//!
//! ```json
//! {
//!   "rules": [
//!     {"principal": "platform"},
//!     {"principal": "ci", "signals": ["TERM", "INT"], "scopes": ["process"],
//!      "target_uids": [1000], "max_wait_ms": 5000},
//!     {"uid": 1000, "target_commands": ["worker"]},
//!     {"uid": 1001, "signals": []}
//!   ],
//!   "protect": {"commands": ["sshd"], "uids": [0]}
//! }
//! ```
//!
//! A request takes the first rule whose `principal` (a token's name, or
//! `"*"` for any token) and `uid` (the caller's, as the kernel tells it)
//! both match, where given; a rule with neither matches every caller. A
//! rule narrows what the caller may do: `signals`, `scopes`,
//! `target_uids`, `target_commands` (each absent: any), `max_wait_ms`,
//! `max_escalate_ms`; and says whose authority the signal uses:
//! `"authority": "caller"` (kill(2)'s rule for the caller's uid) or
//! `"sigd"`. Without a matching rule, and by default in a rule, a caller
//! with a token has sigd's authority and one without is held to kill(2).
//! `protect` refuses targets by command name or real uid, whoever asks.

use crate::request::{self, SignalRequest};
use crate::{Caller, Rejection, Scope, Target};
use serde::Deserialize;
use serde_json::Value;
use std::ops::RangeInclusive;

/// Whose authority a signal is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// The caller's: kill(2)'s rule for its uid, applied by the host.
    Caller,
    /// sigd's own.
    Sigd,
}

/// The settings, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    rules: Vec<Rule>,
    protect: Protect,
}

/// One rule, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// `None`: any caller; `Some(None)`: any caller with a token.
    principal: Option<Option<String>>,
    uid: Option<u32>,
    authority: Option<Authority>,
    signals: Option<Vec<i32>>,
    scopes: Option<Vec<Scope>>,
    target_uids: Option<Vec<u32>>,
    target_commands: Option<Vec<String>>,
    max_wait_ms: Option<u32>,
    max_escalate_ms: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Protect {
    commands: Vec<String>,
    uids: Vec<u32>,
}

/// The settings as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    #[serde(default)]
    rules: Vec<WrittenRule>,
    #[serde(default)]
    protect: WrittenProtect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenRule {
    principal: Option<String>,
    uid: Option<u32>,
    authority: Option<String>,
    signals: Option<Vec<Value>>,
    scopes: Option<Vec<String>>,
    target_uids: Option<Vec<u32>>,
    target_commands: Option<Vec<String>>,
    max_wait_ms: Option<u32>,
    max_escalate_ms: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WrittenProtect {
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    uids: Vec<u32>,
}

/// What applies to one caller: a rule of the settings, or the default.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    /// Whose authority its signals use.
    pub authority: Authority,
    /// The rule (and its place, from 1), `None` for the default.
    rule: Option<(usize, &'a Rule)>,
}

impl Settings {
    /// Check the settings (`None`: there are none). The error is one
    /// sentence saying where they are wrong and how.
    pub fn parse(text: Option<&str>, realtime: &RangeInclusive<i32>) -> Result<Settings, String> {
        let Some(text) = text else {
            return Ok(Settings::default());
        };
        // (serde would also read the fields from an array of their values.)
        if !text.trim_start().starts_with('{') {
            return Err("the settings must be a JSON object, such as {\"rules\": []}".into());
        }
        let written: Written = serde_json::from_str(text)
            .map_err(|error| format!("the settings are not valid: {error}"))?;
        let rules = written
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| {
                Rule::check(rule, realtime).map_err(|why| format!("rules[{i}]: {why}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Settings {
            rules,
            protect: Protect {
                commands: written.protect.commands,
                uids: written.protect.uids,
            },
        })
    }

    /// What applies to `caller`: the first rule that matches it, or the default.
    pub fn grant(&self, caller: &Caller) -> Grant<'_> {
        let rule = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, rule)| rule.matches(caller))
            .map(|(i, rule)| (i + 1, rule));
        let default = match caller.principal {
            Some(_) => Authority::Sigd,
            None => Authority::Caller,
        };
        Grant {
            authority: rule.and_then(|(_, rule)| rule.authority).unwrap_or(default),
            rule,
        }
    }

    /// Whether deciding for `grant` needs the target's facts.
    pub fn asks_about_targets(&self, grant: &Grant) -> bool {
        let protects = !self.protect.commands.is_empty() || !self.protect.uids.is_empty();
        let limits = grant
            .rule
            .is_some_and(|(_, rule)| rule.target_uids.is_some() || rule.target_commands.is_some());
        protects || limits
    }

    /// Refuse a group or tree scope where the settings judge targets: they
    /// can judge only the process the request names, not the others a
    /// group or tree reaches.
    pub fn check_scope(&self, grant: &Grant, scope: Scope) -> Result<(), Rejection> {
        match scope != Scope::Process && self.asks_about_targets(grant) {
            true => Err(Rejection::ScopeNotAllowed {
                scope,
                by: "sigd's settings, which judge the process a request names and no other,".into(),
            }),
            false => Ok(()),
        }
    }

    /// Refuse `target` (the process `pid`) if the settings protect it or
    /// `grant`'s rule does not allow it.
    pub fn check_target(&self, grant: &Grant, pid: i32, target: Target) -> Result<(), Rejection> {
        if self.protect.commands.contains(&target.command) {
            let why = format!("no one may signal the command \"{}\"", target.command);
            return Err(Rejection::ProtectedBySettings { pid, why });
        }
        if self.protect.uids.contains(&target.uid) {
            let why = format!("no one may signal processes of uid {}", target.uid);
            return Err(Rejection::ProtectedBySettings { pid, why });
        }
        let Some((_, rule)) = grant.rule else {
            return Ok(());
        };
        let uid_ok = rule
            .target_uids
            .as_ref()
            .is_none_or(|uids| uids.contains(&target.uid));
        let command_ok = (rule.target_commands.as_ref())
            .is_none_or(|commands| commands.contains(&target.command));
        match uid_ok && command_ok {
            true => Ok(()),
            false => Err(Rejection::TargetNotAllowed {
                pid,
                by: grant.name(),
            }),
        }
    }
}

impl Grant<'_> {
    /// Hold `asked` to the rule's signals, scopes and longest waits.
    pub fn check(&self, asked: &SignalRequest) -> Result<(), Rejection> {
        let Some((_, rule)) = self.rule else {
            return Ok(());
        };
        let by = || self.name();
        let signals = [Some(asked.signal), asked.escalate.map(|e| e.signal)];
        if let Some(allowed) = &rule.signals
            && let Some(signal) = signals.into_iter().flatten().find(|s| !allowed.contains(s))
        {
            return Err(Rejection::SignalNotAllowed { signal, by: by() });
        }
        if rule
            .scopes
            .as_ref()
            .is_some_and(|scopes| !scopes.contains(&asked.scope))
        {
            let scope = asked.scope;
            return Err(Rejection::ScopeNotAllowed { scope, by: by() });
        }
        let over = |asked: Option<u32>, max: Option<u32>| asked.zip(max).filter(|(a, m)| a > m);
        if let Some((_, max)) = over(asked.wait_ms, rule.max_wait_ms) {
            let field = "wait_ms";
            return Err(Rejection::WaitNotAllowed {
                field,
                max,
                by: by(),
            });
        }
        if let Some((_, max)) = over(asked.escalate.map(|e| e.after_ms), rule.max_escalate_ms) {
            let field = "escalate.after_ms";
            return Err(Rejection::WaitNotAllowed {
                field,
                max,
                by: by(),
            });
        }
        Ok(())
    }

    /// The rule, as refusals name it: `settings rule 2 (principal "ci")`.
    fn name(&self) -> String {
        let Some((place, rule)) = self.rule else {
            return "the default".into();
        };
        let mut matched = Vec::new();
        match &rule.principal {
            Some(Some(name)) => matched.push(format!("principal \"{name}\"")),
            Some(None) => matched.push("any principal".into()),
            None => {}
        }
        if let Some(uid) = rule.uid {
            matched.push(format!("uid {uid}"));
        }
        if matched.is_empty() {
            matched.push("every caller".into());
        }
        format!("settings rule {place} ({})", matched.join(", "))
    }
}

impl Rule {
    fn check(written: WrittenRule, realtime: &RangeInclusive<i32>) -> Result<Rule, String> {
        let authority = match written.authority.as_deref() {
            None => None,
            Some("caller") => Some(Authority::Caller),
            Some("sigd") => Some(Authority::Sigd),
            Some(other) => {
                return Err(format!(
                    "\"authority\" is \"caller\" or \"sigd\", not {other:?}"
                ));
            }
        };
        let signals = written
            .signals
            .map(|signals| {
                signals
                    .iter()
                    .map(|value| {
                        request::signal(value, "signals", realtime).map_err(|_| {
                            format!("\"signals\": {value} is not a signal Linux delivers")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let scopes = written
            .scopes
            .map(|scopes| {
                scopes
                    .iter()
                    .map(|name| {
                        name.parse::<Scope>().map_err(|()| {
                            format!(
                                "\"scopes\": {name:?} is not \"process\", \"group\" or \"tree\""
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Rule {
            principal: written.principal.map(|name| (name != "*").then_some(name)),
            uid: written.uid,
            authority,
            signals,
            scopes,
            target_uids: written.target_uids,
            target_commands: written.target_commands,
            max_wait_ms: written.max_wait_ms,
            max_escalate_ms: written.max_escalate_ms,
        })
    }

    fn matches(&self, caller: &Caller) -> bool {
        let principal = match &self.principal {
            None => true,
            Some(None) => caller.principal.is_some(),
            Some(Some(name)) => caller.principal.as_ref() == Some(name),
        };
        let uid = self.uid.is_none_or(|uid| caller.uid == Some(uid));
        principal && uid
    }
}
