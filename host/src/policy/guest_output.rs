//! What a policy writes to stdout or stderr goes to sigd's log, capped: a
//! stream keeps at most [`Limits::output_bytes`](super::Limits) per call
//! (writes past that are dropped and counted, never trap), at most
//! [`LINE_BYTES`] of it reach the log, and at most [`BURST`] calls a second
//! may log; the rest are counted and the count is logged with the next one
//! let through.

use bytes::{Bytes, BytesMut};
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of one stream of one call that reach the log.
pub const LINE_BYTES: usize = 1024;
/// Calls whose output may be logged in a burst, and per second after it.
pub const BURST: f64 = 20.0;

/// One of a policy instance's output streams: a capped buffer emptied after
/// every call. Clones share it.
#[derive(Clone)]
pub struct GuestOutput(Arc<Mutex<Buffer>>);

struct Buffer {
    bytes: BytesMut,
    capacity: usize,
    /// Bytes written past the capacity since the last drain.
    dropped: usize,
}

impl GuestOutput {
    /// A stream that keeps at most `capacity` bytes per call.
    pub fn new(capacity: usize) -> GuestOutput {
        GuestOutput(Arc::new(Mutex::new(Buffer {
            bytes: BytesMut::new(),
            capacity,
            dropped: 0,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self, bytes: &[u8]) {
        let mut buffer = self.lock();
        let room = buffer.capacity.saturating_sub(buffer.bytes.len());
        let kept = bytes.len().min(room);
        buffer.bytes.extend_from_slice(&bytes[..kept]);
        buffer.dropped += bytes.len() - kept;
    }

    /// What was written since the last drain (and how much was dropped), emptied.
    fn drain(&self) -> (Bytes, usize) {
        let mut buffer = self.lock();
        let dropped = std::mem::take(&mut buffer.dropped);
        (buffer.bytes.split().freeze(), dropped)
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        GuestOutput::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always writable: what does not fit is dropped, not waited for.
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        GuestOutput::write(&self, bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

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

/// Log (and empty) what the policy wrote to stdout and stderr in one call.
pub fn log(policy_sha256: &str, stdout: &GuestOutput, stderr: &GuestOutput) {
    let (out, err) = (stdout.drain(), stderr.drain());
    if out.0.is_empty() && err.0.is_empty() {
        return;
    }
    let Some(suppressed) = take() else {
        return;
    };
    let policy = &policy_sha256[..12];
    for (stream, (bytes, dropped)) in [("stdout", out), ("stderr", err)] {
        if !bytes.is_empty() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(LINE_BYTES)]);
            tracing::info!(
                policy,
                stream,
                bytes = bytes.len(),
                dropped,
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
