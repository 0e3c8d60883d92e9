//! Fuzz the `/proc/<pid>/stat` and `/proc/<pid>/status` parsers: they never
//! panic, and a command name of any bytes (spaces, parentheses, newlines)
//! never shifts the fields after it.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../host/src/process/stat.rs"]
mod stat;

fuzz_target!(|data: &[u8]| {
    // Arbitrary bytes: no panic, whatever they are.
    let _ = stat::Stat::parse(data);
    let _ = stat::Status::parse(&String::from_utf8_lossy(data));

    // A well-formed line around an arbitrary command name parses back exactly.
    let command = String::from_utf8_lossy(data);
    let line =
        format!("4242 ({command}) S 7 8 9 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 123456 1000 100");
    let parsed = stat::Stat::parse(line.as_bytes()).expect("a well-formed line parses");
    assert_eq!(parsed.pid, 4242);
    assert_eq!(parsed.command, command);
    assert_eq!(
        (parsed.state, parsed.ppid, parsed.pgid, parsed.sid),
        ('S', 7, 8, 9)
    );
    assert_eq!(parsed.start_time, 123456);
});
