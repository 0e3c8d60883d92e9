//! The memory limiter every policy store runs under: it caps each linear
//! memory (growing past the cap traps the call), holds tables to the same
//! cap, and tells the pool when an instance has grown too full to reuse.

use wasmtime::ResourceLimiter;

/// Caps each linear memory; growing past the cap traps the call.
pub(super) struct MemoryLimiter {
    memory_bytes: usize,
    hit: bool,
    /// The largest size any memory has grown to.
    largest: usize,
    /// `largest` after the instance's first call: its working size.
    settled: Option<usize>,
}

impl MemoryLimiter {
    pub(super) fn new(memory_bytes: usize) -> MemoryLimiter {
        MemoryLimiter {
            memory_bytes,
            hit: false,
            largest: 0,
            settled: None,
        }
    }

    /// Whether a memory asked to grow past the cap.
    pub(super) fn hit(&self) -> bool {
        self.hit
    }

    /// Whether the memories have grown, since the first call, through three
    /// quarters of the room they had left under the cap (called after each
    /// sound call). An instance this full is not reused, so garbage that a
    /// guest's runtime (a JavaScript or Python heap) leaves behind never
    /// grows into the cap and fails a sound request.
    pub(super) fn nearly_full(&mut self) -> bool {
        let settled = *self.settled.get_or_insert(self.largest);
        let room = self.memory_bytes.saturating_sub(settled);
        self.largest > settled + room / 4 * 3
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = true;
            wasmtime::bail!("memory limit of {} bytes reached", self.memory_bytes);
        }
        self.largest = self.largest.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table entry is a pointer or two: hold tables to the memory cap too.
        Ok(desired.saturating_mul(16) <= self.memory_bytes)
    }
}
