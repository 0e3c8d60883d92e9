//! What a policy writes to stdout or stderr goes to sigd's log, capped: each
//! call keeps at most [`Limits::output_bytes`](super::Limits) per stream (the
//! write past that traps), at most [`LINE_BYTES`] of it reach the log, and at
//! most [`BURST`] calls a second may log; the rest are counted and the count
//! is logged with the next one let through.

use std::sync::{LazyLock, Mutex};
use std::time::Instant;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Bytes of one stream of one call that reach the log.
pub const LINE_BYTES: usize = 1024;
/// Calls whose output may be logged in a burst, and per second after it.
pub const BURST: f64 = 20.0;

/// A token bucket over log events, shared by all calls.
struct Budget {
    tokens: f64,
    refilled: Instant,
    suppressed: u64,
}

static BUDGET: LazyLock<Mutex<Budget>> = LazyLock::new(|| {
    Mutex::new(Budget {
        tokens: BURST,
        refilled: Instant::now(),
        suppressed: 0,
    })
});

/// Log the policy's stdout and stderr from one call, if it wrote any.
pub fn log(policy_sha256: &str, stdout: &MemoryOutputPipe, stderr: &MemoryOutputPipe) {
    let (out, err) = (stdout.contents(), stderr.contents());
    if out.is_empty() && err.is_empty() {
        return;
    }
    let Some(suppressed) = take() else {
        return;
    };
    let policy = &policy_sha256[..12];
    for (stream, bytes) in [("stdout", &out), ("stderr", &err)] {
        if !bytes.is_empty() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(LINE_BYTES)]);
            tracing::info!(
                policy,
                stream,
                bytes = bytes.len(),
                suppressed,
                "policy output: {}",
                text.trim_end()
            );
        }
    }
}

/// Take a token: `Some(outputs suppressed since the last one)`, or `None`.
fn take() -> Option<u64> {
    let mut budget = BUDGET
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let now = Instant::now();
    let elapsed = now.duration_since(budget.refilled).as_secs_f64();
    budget.tokens = (budget.tokens + elapsed * BURST).min(BURST);
    budget.refilled = now;
    if budget.tokens < 1.0 {
        budget.suppressed += 1;
        return None;
    }
    budget.tokens -= 1.0;
    Some(std::mem::take(&mut budget.suppressed))
}
