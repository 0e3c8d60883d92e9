//! Parsers for `/proc/<pid>/stat` and `/proc/<pid>/status`. Self-contained
//! (std only) so the fuzz targets in `fuzz/` can include this file as is.

/// The fields sigd reads from `/proc/<pid>/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// `comm`, decoded lossily as UTF-8.
    pub command: String,
    /// The state letter (field 3).
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// How many threads the thread group has (field 20).
    pub threads: u32,
    /// Clock ticks after boot (field 22).
    pub start_time: u64,
    /// The wait status of an exited process (field 52, Linux 3.5+): read
    /// only for the states of one (`Z`, `X`, `x`), `None` for any other.
    pub exit_code: Option<i32>,
}

impl Stat {
    /// Parse a stat line. The command name sits in parentheses and may itself
    /// hold spaces and `)`, so the fields after it are found from the *last*
    /// `)`; `None` for anything truncated or malformed.
    ///
    /// Every signal request parses one of these, so the fields are walked
    /// as bytes, once, and only as far as needed: to field 22 (the start
    /// time), and on to field 52 only for a process that has exited, the
    /// one kind whose exit code means anything.
    pub fn parse(stat: &[u8]) -> Option<Stat> {
        let open = stat.iter().position(|&b| b == b'(')?;
        let close = stat.iter().rposition(|&b| b == b')')?;
        let pid = number(stat.get(..open)?.trim_ascii())?;
        let command = String::from_utf8_lossy(stat.get(open + 1..close)?).into_owned();
        // Fields from 3 (state) on, taken in order as they go by.
        let mut fields = fields(stat.get(close + 1..)?);
        let mut at = 3;
        let mut field = |n: usize| {
            let value = fields.nth(n.checked_sub(at)?);
            at = n + 1;
            value
        };
        let state = match field(3)? {
            &[letter] if letter.is_ascii_alphabetic() => char::from(letter),
            _ => return None,
        };
        let ppid = number(field(4)?)?;
        let pgid = number(field(5)?)?;
        let sid = number(field(6)?)?;
        let threads = number(field(20)?)?;
        let start_time = number(field(22)?)?;
        let exited = matches!(state, 'Z' | 'X' | 'x');
        let exit_code = exited.then(|| field(52).and_then(number)).flatten();
        Some(Stat {
            pid,
            command,
            state,
            ppid,
            pgid,
            sid,
            threads,
            start_time,
            exit_code,
        })
    }
}

/// The fields of a line, separated by ASCII whitespace (as
/// `str::split_ascii_whitespace` has them, bytes with no decoding).
fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(u8::is_ascii_whitespace)
        .filter(|field| !field.is_empty())
}

/// A decimal number, as `str::parse` reads it.
fn number<T: std::str::FromStr>(digits: &[u8]) -> Option<T> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The values of the line of a `status` file that starts with `key` (its
/// colon included: `Tgid:`).
pub fn status_values<'a>(status: &'a str, key: &str) -> Option<std::str::SplitAsciiWhitespace<'a>> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .map(str::split_ascii_whitespace)
}

/// The fields sigd reads from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The thread-group id: equal to the pid only for a process.
    pub tgid: i32,
    /// The real, effective and saved user ids (`Uid:`, the first three).
    pub uids: [u32; 3],
    /// The real, effective and saved group ids (`Gid:`).
    pub gids: [u32; 3],
}

impl Status {
    /// Parse a status file; `None` without `Tgid:`, `Uid:` and `Gid:`. Each
    /// key's first line counts; the lines are read once, up to the last of
    /// the three (`Gid:`, the tenth).
    pub fn parse(status: &str) -> Option<Status> {
        let ids = |values: &str| -> Option<[u32; 3]> {
            let mut ids = values.split_ascii_whitespace().map(|id| id.parse().ok());
            Some([ids.next()??, ids.next()??, ids.next()??])
        };
        let (mut tgid, mut uids, mut gids) = (None, None, None);
        for line in status.lines() {
            // A key seen already is passed over, however its line reads.
            if let Some(values) = line.strip_prefix("Tgid:")
                && tgid.is_none()
            {
                tgid = Some(values.split_ascii_whitespace().next()?.parse().ok()?);
            } else if let Some(values) = line.strip_prefix("Uid:")
                && uids.is_none()
            {
                uids = Some(ids(values)?);
            } else if let Some(values) = line.strip_prefix("Gid:")
                && gids.is_none()
            {
                gids = Some(ids(values)?);
            }
            if let (Some(tgid), Some(uids), Some(gids)) = (tgid, uids, gids) {
                return Some(Status { tgid, uids, gids });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command name with spaces and `)` does not shift the fields after it.
    #[test]
    fn tricky_command_name() {
        let stat = b"4242 (my ) (odd) name) S 1 4242 4200 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615";
        let stat = Stat::parse(stat).unwrap();
        assert_eq!(stat.pid, 4242);
        assert_eq!(stat.command, "my ) (odd) name");
        assert_eq!(stat.state, 'S');
        assert_eq!((stat.ppid, stat.pgid, stat.sid), (1, 4242, 4200));
        assert_eq!((stat.start_time, stat.exit_code), (987654, None));
        assert_eq!(stat.threads, 1);
    }

    /// A real stat line of this process, and a zombie's exit code.
    #[test]
    fn real_lines() {
        let own = std::fs::read("/proc/self/stat").unwrap();
        assert_eq!(Stat::parse(&own).unwrap().pid, std::process::id() as i32);
        let fields: Vec<String> = (4..=52)
            .map(|n| if n == 52 { "9".into() } else { n.to_string() })
            .collect();
        let zombie = format!("7 (z) Z {}", fields.join(" "));
        assert_eq!(Stat::parse(zombie.as_bytes()).unwrap().exit_code, Some(9));
        // A live process's field 52 is no exit code.
        let sleeping = format!("7 (z) S {}", fields.join(" "));
        assert_eq!(Stat::parse(sleeping.as_bytes()).unwrap().exit_code, None);
    }

    /// Fields are split on runs of any ASCII whitespace, as
    /// `split_ascii_whitespace` splits them, and the line may end in one.
    #[test]
    fn any_whitespace_separates_fields() {
        let fields: Vec<String> = (4..=52).map(|n| n.to_string()).collect();
        let line = format!("  7 (a b)\tX  {}\n", fields.join(" \t\r\x0c"));
        let stat = Stat::parse(line.as_bytes()).unwrap();
        assert_eq!(
            (stat.pid, stat.command.as_str(), stat.state),
            (7, "a b", 'X')
        );
        assert_eq!((stat.ppid, stat.pgid, stat.sid), (4, 5, 6));
        assert_eq!(
            (stat.threads, stat.start_time, stat.exit_code),
            (20, 22, Some(52))
        );
        let words: Vec<&[u8]> = super::fields(b" a\t\tbc \n d").collect();
        assert_eq!(words, [&b"a"[..], b"bc", b"d"]);
        assert_eq!(super::fields(b" \n ").next(), None);
    }

    /// Truncated or garbled stat lines are rejected, not misread.
    #[test]
    fn garbage() {
        for stat in [
            &b""[..],
            b"12",
            b"12 (x",
            b")12 (x",
            b"12 (x) S 1 2",
            b"12 (x) SS 1 2 3",
            b"12 (x) \xc3\xa9 1 2 3",
        ] {
            assert_eq!(
                Stat::parse(stat),
                None,
                "{:?}",
                String::from_utf8_lossy(stat)
            );
        }
    }

    /// The status fields, and nothing without them.
    #[test]
    fn status() {
        let status = "Name:\tsleep\nTgid:\t42\nPid:\t43\nUid:\t1000\t0\t1001\t0\n\
                      Gid:\t100\t100\t101\t100\nThreads:\t3\n";
        assert_eq!(
            Status::parse(status),
            Some(Status {
                tgid: 42,
                uids: [1000, 0, 1001],
                gids: [100, 100, 101],
            })
        );
        // The first line of each key counts; a later one is not read.
        let twice = format!("{status}Uid:\tx\nTgid:\t7\n");
        assert_eq!(
            Status::parse(&twice).map(|s| (s.tgid, s.uids[0])),
            Some((42, 1000))
        );
        assert_eq!(Status::parse("Tgid:\t42\n"), None);
        assert_eq!(
            Status::parse("Tgid:\t42\nUid:\t1\t2\nGid:\t1\t2\t3\n"),
            None
        );
    }
}
