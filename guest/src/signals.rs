//! Signal numbers and names: which numbers Linux delivers, and the names
//! callers may use instead (`"SIGTERM"`, `"TERM"`, `"term"`, `"RTMIN+2"`).

use std::borrow::Cow;
use std::ops::RangeInclusive;

/// The standard signals of Linux on x86-64 and arm64, by number, named
/// as answers name them.
const STANDARD: [(&str, i32); 31] = [
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
];

/// Other names Linux accepts for the same numbers.
const ALIASES: [(&str, i32); 4] = [("IOT", 6), ("CLD", 17), ("POLL", 29), ("UNUSED", 31)];

/// The forms a signal may take, for error messages.
pub const ACCEPTED_FORMS: &str = "a number (1-31 or SIGRTMIN-SIGRTMAX) or a name such as \
    \"SIGTERM\", \"TERM\" or \"term\", \"RTMIN\", \"RTMIN+2\", \"RTMAX-1\"";

/// Whether Linux delivers `signal` here: 1-31, or a realtime signal in
/// `realtime` (32 and 33 are kept by the C library for its threads).
pub fn is_deliverable(signal: i64, realtime: &RangeInclusive<i32>) -> bool {
    (1..=31).contains(&signal)
        || (i64::from(*realtime.start())..=i64::from(*realtime.end())).contains(&signal)
}

/// The number a signal name stands for: `SIG` prefix optional, any case,
/// `RTMIN+n` / `RTMAX-n` within `realtime`. `None` for anything else.
pub fn number(name: &str, realtime: &RangeInclusive<i32>) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let standard = STANDARD
        .iter()
        .find(|(n, _)| n.strip_prefix("SIG") == Some(bare));
    if let Some(&(_, number)) = standard.or_else(|| ALIASES.iter().find(|(n, _)| *n == bare)) {
        return Some(number);
    }
    let (min, max) = (*realtime.start(), *realtime.end());
    let offset = |digits: &str| -> Option<i32> {
        // Plain decimal digits only: no sign, no spaces, at most three.
        (!digits.is_empty() && digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    };
    let number = match bare {
        "RTMIN" => min,
        "RTMAX" => max,
        _ => {
            if let Some(n) = bare.strip_prefix("RTMIN+") {
                min.checked_add(offset(n)?)?
            } else if let Some(n) = bare.strip_prefix("RTMAX-") {
                max.checked_sub(offset(n)?)?
            } else {
                return None;
            }
        }
    };
    realtime.contains(&number).then_some(number)
}

/// The name of a deliverable signal (`SIGTERM`, `SIGRTMIN+2`), for answers:
/// written out only for a realtime signal between SIGRTMIN and SIGRTMAX.
pub fn name(signal: i32, realtime: &RangeInclusive<i32>) -> Option<Cow<'static, str>> {
    if let Some((name, _)) = STANDARD.iter().find(|(_, n)| *n == signal) {
        return Some(Cow::Borrowed(name));
    }
    let (min, max) = (*realtime.start(), *realtime.end());
    match signal {
        n if n == min => Some(Cow::Borrowed("SIGRTMIN")),
        n if n == max => Some(Cow::Borrowed("SIGRTMAX")),
        n if realtime.contains(&n) => Some(Cow::Owned(format!("SIGRTMIN+{}", n - min))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RT: RangeInclusive<i32> = 34..=64;

    /// Names, with or without SIG, in any case, give the standard numbers.
    #[test]
    fn standard_names() {
        for name in ["SIGTERM", "TERM", "term", "SigTerm", " sigterm "] {
            assert_eq!(number(name, &RT), Some(15), "{name}");
        }
        assert_eq!(number("KILL", &RT), Some(9));
        assert_eq!(number("SIGHUP", &RT), Some(1));
        assert_eq!(number("SIGSYS", &RT), Some(31));
        assert_eq!(number("IOT", &RT), Some(6));
        assert_eq!(number("SIGCLD", &RT), Some(17));
    }

    /// Realtime names resolve against the range the host reports, and stay in it.
    #[test]
    fn realtime_names() {
        assert_eq!(number("RTMIN", &RT), Some(34));
        assert_eq!(number("SIGRTMIN+2", &RT), Some(36));
        assert_eq!(number("rtmax-1", &RT), Some(63));
        assert_eq!(number("RTMAX", &RT), Some(64));
        assert_eq!(number("RTMIN+30", &RT), Some(64));
        assert_eq!(number("RTMIN", &(35..=64)), Some(35));
        for bad in [
            "RTMIN+31",
            "RTMAX-31",
            "RTMIN+",
            "RTMIN+-1",
            "RTMIN++1",
            "RTMIN+ 1",
            "RTMIN+9999999999",
        ] {
            assert_eq!(number(bad, &RT), None, "{bad}");
        }
    }

    /// Unknown names, numbers written as strings and empty strings are not signals.
    #[test]
    fn unknown_names() {
        for bad in [
            "",
            "SIG",
            "TERMINATE",
            "15",
            "SIG15",
            "SIGRT",
            "ZERO",
            "SIGTERM\0",
        ] {
            assert_eq!(number(bad, &RT), None, "{bad:?}");
        }
    }

    /// Every deliverable number has a name that parses back to it.
    #[test]
    fn names_round_trip() {
        for signal in (1..=31).chain(RT) {
            let name = name(signal, &RT).unwrap();
            assert_eq!(number(&name, &RT), Some(signal), "{name}");
        }
        assert_eq!(name(32, &RT), None);
    }
}
