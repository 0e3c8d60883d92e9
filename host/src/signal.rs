//! Which signal numbers this system delivers: 1-31 and SIGRTMIN..=SIGRTMAX.

use std::ops::RangeInclusive;

/// SIGRTMIN..=SIGRTMAX as the running C library reports them (glibc keeps
/// 32 and 33 for its threads, so 34..=64).
pub fn realtime() -> RangeInclusive<i32> {
    nix::libc::SIGRTMIN()..=nix::libc::SIGRTMAX()
}

/// Whether `signal` is one Linux delivers and the C library leaves to programs.
pub fn is_deliverable(signal: i32) -> bool {
    (1..=31).contains(&signal) || realtime().contains(&signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard and realtime ranges are in, 0 and the libc-reserved ones are out.
    #[test]
    fn deliverable_set() {
        for signal in [1, 9, 15, 31, *realtime().start(), *realtime().end()] {
            assert!(is_deliverable(signal), "{signal}");
        }
        for signal in [0, -1, 32, 33, *realtime().end() + 1, i32::MIN, i32::MAX] {
            assert!(!is_deliverable(signal), "{signal}");
        }
    }
}
