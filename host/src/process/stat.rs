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
    /// The wait status of an exited process (field 52, Linux 3.5+).
    pub exit_code: Option<i32>,
}

impl Stat {
    /// Parse a stat line. The command name sits in parentheses and may itself
    /// hold spaces and `)`, so the fields after it are found from the *last*
    /// `)`; `None` for anything truncated or malformed.
    pub fn parse(stat: &[u8]) -> Option<Stat> {
        let open = stat.iter().position(|&b| b == b'(')?;
        let close = stat.iter().rposition(|&b| b == b')')?;
        let pid = std::str::from_utf8(stat.get(..open)?)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let command = String::from_utf8_lossy(stat.get(open + 1..close)?).into_owned();
        let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
        // Fields from 3 (state) on, taken in order as they go by (a signal
        // request parses one of these: no list of all 50 is built).
        let mut fields = rest.split_ascii_whitespace();
        let mut at = 3;
        let mut field = |n: usize| {
            let value = fields.nth(n.checked_sub(at)?);
            at = n + 1;
            value
        };
        let mut state = field(3)?.chars();
        let (letter, None) = (state.next()?, state.next()) else {
            return None;
        };
        Some(Stat {
            pid,
            command,
            state: letter,
            ppid: field(4)?.parse().ok()?,
            pgid: field(5)?.parse().ok()?,
            sid: field(6)?.parse().ok()?,
            threads: field(20)?.parse().ok()?,
            start_time: field(22)?.parse().ok()?,
            exit_code: field(52).and_then(|code| code.parse().ok()),
        })
    }
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
    /// Parse a status file; `None` without `Tgid:`, `Uid:` and `Gid:`.
    pub fn parse(status: &str) -> Option<Status> {
        let values = |key: &str| status_values(status, key);
        let ids = |key: &str| -> Option<[u32; 3]> {
            let mut ids = values(key)?.map(|id| id.parse().ok());
            Some([ids.next()??, ids.next()??, ids.next()??])
        };
        Some(Status {
            tgid: values("Tgid:")?.next()?.parse().ok()?,
            uids: ids("Uid:")?,
            gids: ids("Gid:")?,
        })
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
        assert_eq!(Status::parse("Tgid:\t42\n"), None);
        assert_eq!(
            Status::parse("Tgid:\t42\nUid:\t1\t2\nGid:\t1\t2\t3\n"),
            None
        );
    }
}
