//! The memory limiter every policy store runs under: it caps what all of a
//! store's linear memories and tables hold together (growing past the cap
//! traps the call), bounds how many of each a policy may make, and tells
//! the pool when an instance has grown too full to reuse.

use wasmtime::ResourceLimiter;

/// The most core instances, memories and tables one policy's store may
/// make: far more than a component holds (its modules, an adapter, their
/// shims), and each memory reserves address space, whatever it holds.
const MAX_INSTANCES: usize = 64;
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 64;

/// What a table entry counts for: a pointer or two.
const TABLE_ENTRY_BYTES: usize = 16;

/// Caps what a store's memories and tables hold together; growing past the
/// cap traps the call.
pub(super) struct MemoryLimiter {
    memory_bytes: usize,
    hit: bool,
    /// What the store's memories and tables hold now, together.
    held: usize,
    /// The most `held` has been.
    largest: usize,
    /// `largest` after the instance's first call: its working size.
    settled: Option<usize>,
}

impl MemoryLimiter {
    pub(super) fn new(memory_bytes: usize) -> MemoryLimiter {
        MemoryLimiter {
            memory_bytes,
            hit: false,
            held: 0,
            largest: 0,
            settled: None,
        }
    }

    /// Whether a memory or table asked to grow past the cap.
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

    /// Let one memory or table go from `current` to `desired` bytes if
    /// the store then holds no more than the cap, all together.
    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let held = (self.held - current.min(self.held)).saturating_add(desired);
        if held > self.memory_bytes {
            self.hit = true;
            wasmtime::bail!(
                "memory limit of {} bytes reached (memories and tables together)",
                self.memory_bytes
            );
        }
        self.held = held;
        self.largest = self.largest.max(held);
        Ok(true)
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(
            current.saturating_mul(TABLE_ENTRY_BYTES),
            desired.saturating_mul(TABLE_ENTRY_BYTES),
        )
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cap holds for a store's memories together, not each alone: a
    /// policy with many memories, each under the cap, is stopped once they
    /// would hold more between them, though each could still grow; tables
    /// count against the same cap.
    #[test]
    fn the_cap_is_for_all_memories_together() {
        let mib = 1 << 20;
        let mut limiter = MemoryLimiter::new(4 * mib);
        for _ in 0..3 {
            assert!(limiter.memory_growing(0, mib, None).unwrap());
        }
        assert!(limiter.memory_growing(mib, mib + mib / 2, None).unwrap());
        assert!(!limiter.hit());
        assert!(limiter.memory_growing(0, mib, None).is_err());
        assert!(limiter.hit());
        let entries = mib / TABLE_ENTRY_BYTES;
        assert!(limiter.table_growing(0, entries, None).is_err());
        assert!(limiter.table_growing(0, entries / 4, None).unwrap());
    }
}
