//! Fuzz the request body parser and signal names: no panic on any input, and
//! whatever parses names a signal Linux delivers, whose name parses back to it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sigd_policy::request::{Scope, SignalRequest};
use sigd_policy::signals;

const REALTIME: std::ops::RangeInclusive<i32> = 34..=64;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = SignalRequest::parse(data, Scope::Process, &REALTIME) {
        assert!(signals::is_deliverable(request.signal.into(), &REALTIME));
        if let Some(escalation) = request.escalate {
            assert!(signals::is_deliverable(escalation.signal.into(), &REALTIME));
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Some(signal) = signals::number(&text, &REALTIME) {
        assert!(
            signals::is_deliverable(signal.into(), &REALTIME),
            "{text:?} -> {signal}"
        );
        let name = signals::name(signal, &REALTIME).expect("a deliverable signal has a name");
        assert_eq!(signals::number(&name, &REALTIME), Some(signal));
    }
});
