//! A per-call bump arena for the batch that `samples` returns.
//!
//! The canonical ABI (<https://github.com/WebAssembly/component-model/blob/main/design/mvp/CanonicalABI.md>)
//! copies a returned batch out of the sandbox and then, in the post-return step, frees it
//! piece by piece: an id, a pixel buffer and a label list per sample. Allocating those pieces
//! from a bump region makes both the allocations and the frees nearly free.
//!
//! The arena is an ordinary allocator: every block it hands out is fresh memory that nobody
//! else owns, and it owns nothing it did not hand out. It counts the blocks of its region that
//! are still live and starts the region over only when that count is zero; the host runs
//! post-return (freeing the whole previous batch) before it calls into the instance again, so
//! in practice each batch starts at the region's start, but nothing relies on it: a block that
//! outlives its batch only keeps the region from being reused until it is freed. Outside a
//! batch, and for whatever does not fit, the system allocator serves as usual.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Largest region the arena keeps (a batch beyond it spills to the system allocator).
const MAX_REGION: usize = 256 << 20;

/// Alignment of the region; larger alignments are served from inside it by rounding up.
const REGION_ALIGN: usize = 16;

/// A bump region for the blocks of one batch, in front of the system allocator.
///
/// Not thread-safe (plain cells); [`SingleThreaded`] makes it a global allocator.
#[derive(Debug)]
pub struct CallArena {
    base: Cell<*mut u8>,
    cap: Cell<usize>,
    /// Bytes of the region handed out since it was last started over.
    used: Cell<usize>,
    /// Region blocks handed out and not yet freed.
    live: Cell<usize>,
    active: Cell<bool>,
    /// Bytes the current batch asked for: the next region is sized from it.
    wanted: Cell<usize>,
}

impl CallArena {
    pub const fn new() -> Self {
        CallArena {
            base: Cell::new(std::ptr::null_mut()),
            cap: Cell::new(0),
            used: Cell::new(0),
            live: Cell::new(0),
            active: Cell::new(false),
            wanted: Cell::new(0),
        }
    }

    /// Starts building a batch; the returned guard ends it. When no block of the region is
    /// live, the region is started over (and resized to what the previous batch wanted);
    /// otherwise the batch bumps on after the live blocks.
    pub fn batch(&self) -> BatchScope<'_> {
        if self.live.get() == 0 {
            self.resize(self.wanted.get().min(MAX_REGION));
            self.used.set(0);
        }
        self.wanted.set(0);
        self.active.set(true);
        BatchScope(self)
    }

    /// Replaces the region by one of at least `wanted` bytes. Only called with no live block.
    fn resize(&self, wanted: usize) {
        debug_assert_eq!(self.live.get(), 0);
        if wanted <= self.cap.get() {
            return;
        }
        let cap = wanted.next_power_of_two().min(MAX_REGION);
        if let Some(old) = Self::region(self.cap.get()) {
            // SAFETY: the region was allocated below with this layout, and no block in it is live.
            unsafe { System.dealloc(self.base.get(), old) };
        }
        let base = match Self::region(cap) {
            // SAFETY: `region` gives non-zero sizes only, with a valid alignment.
            Some(layout) => unsafe { System.alloc(layout) },
            None => std::ptr::null_mut(),
        };
        self.base.set(base);
        self.cap.set(if base.is_null() { 0 } else { cap });
        self.used.set(0);
    }

    /// The region's layout for `cap` bytes; `None` for an empty region.
    fn region(cap: usize) -> Option<Layout> {
        if cap == 0 {
            return None;
        }
        Layout::from_size_align(cap, REGION_ALIGN).ok()
    }

    /// Whether `ptr` was handed out from the region.
    fn owns(&self, ptr: *mut u8) -> bool {
        let base = self.base.get() as usize;
        base != 0 && (base..base + self.cap.get()).contains(&(ptr as usize))
    }

    /// A fresh block of the region for `layout`, or null when it does not fit.
    fn bump(&self, layout: Layout) -> *mut u8 {
        self.wanted.set(self.wanted.get().saturating_add(layout.size() + layout.align()));
        let base = self.base.get();
        if base.is_null() {
            return std::ptr::null_mut();
        }
        let used = self.used.get();
        // Offsets from `base`, which is REGION_ALIGN-aligned; larger alignments are rounded up
        // on the address itself.
        let pad = base.wrapping_add(used).align_offset(layout.align());
        let Some(end) = used.checked_add(pad).and_then(|start| start.checked_add(layout.size())) else {
            return std::ptr::null_mut();
        };
        if end > self.cap.get() {
            return std::ptr::null_mut();
        }
        self.used.set(end);
        self.live.set(self.live.get() + 1);
        // SAFETY: `used + pad <= end <= cap`, so the offset stays inside the region's allocation.
        unsafe { base.add(used + pad) }
    }
}

impl Default for CallArena {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CallArena {
    /// Frees the region, unless a block in it is still live (then it is leaked, not freed).
    fn drop(&mut self) {
        if self.live.get() == 0
            && let Some(layout) = Self::region(self.cap.get())
        {
            // SAFETY: the region was allocated in `resize` with this layout; nothing in it is live.
            unsafe { System.dealloc(self.base.get(), layout) };
        }
    }
}

/// Ends a batch when dropped: later allocations go to the system allocator again.
#[derive(Debug)]
pub struct BatchScope<'a>(&'a CallArena);

impl Drop for BatchScope<'_> {
    fn drop(&mut self) {
        self.0.active.set(false);
    }
}

// SAFETY (the `GlobalAlloc` contract):
// - A region block is `[base + used + pad, base + end)` with `end` the new `used`: inside the
//   region, aligned as asked, and disjoint from every block handed out since the region was
//   last started over, because `used` only grows in between.
// - The region is started over (`used = 0`) or replaced only when `live` is zero, that is when
//   every block handed out from it has been freed, so no live block is ever handed out again.
// - `owns` tells region blocks from system blocks by address (the region is one live system
//   allocation, so no system block lies inside it): region blocks are never passed to
//   `System`, and system blocks are always returned to it with the caller's layout.
unsafe impl GlobalAlloc for CallArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.active.get() {
            let p = self.bump(layout);
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: forwarded with the caller's layout (non-zero size, by the caller's contract).
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.owns(ptr) {
            self.live.set(self.live.get() - 1);
        } else {
            // SAFETY: `ptr` came from the system allocator with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) {
            // SAFETY: `ptr` came from the system allocator with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `new_layout` is valid with a non-zero size (the caller's contract); the old
        // block holds `layout.size()` bytes and is live until the `dealloc` below, and the new
        // one is a distinct block.
        unsafe {
            let p = self.alloc(new_layout);
            if !p.is_null() {
                std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            p
        }
    }
}

/// A [`CallArena`] that can be a `static`, and so the global allocator, in a program that
/// runs one thread.
#[derive(Debug)]
pub struct SingleThreaded(CallArena);

#[cfg_attr(not(target_family = "wasm"), allow(dead_code))] // on the host, for tests/global.rs
impl SingleThreaded {
    /// # Safety
    /// The program must run on one thread only (as on wasm32 without the atomics feature):
    /// the arena's bookkeeping is plain cells, not synchronised.
    pub const unsafe fn new() -> Self {
        SingleThreaded(CallArena::new())
    }

    /// See [`CallArena::batch`].
    pub fn batch(&self) -> BatchScope<'_> {
        self.0.batch()
    }
}

// SAFETY: `new`'s contract: the program has one thread, so the cells are never reached from two.
unsafe impl Sync for SingleThreaded {}

// SAFETY: forwards to the arena, which upholds the contract (see above).
unsafe impl GlobalAlloc for SingleThreaded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    //! Run under Miri (`cargo +nightly miri test -p mvb-plugin-medmnist` in `plugins/`)
    //! to check the arena against Rust's aliasing and allocation rules.

    use super::*;

    /// A block from `arena`, filled with `fill` and checked on drop.
    struct Block<'a> {
        arena: &'a CallArena,
        ptr: *mut u8,
        layout: Layout,
        fill: u8,
    }

    impl<'a> Block<'a> {
        fn new(arena: &'a CallArena, size: usize, align: usize, fill: u8) -> Self {
            let layout = Layout::from_size_align(size, align).expect("layout");
            // SAFETY: non-zero sizes only (the tests' choice).
            let ptr = unsafe { arena.alloc(layout) };
            assert!(!ptr.is_null());
            assert_eq!(ptr as usize % align, 0);
            // SAFETY: the block is `size` writable bytes.
            unsafe { ptr.write_bytes(fill, size) };
            Block { arena, ptr, layout, fill }
        }

        fn check(&self) {
            // SAFETY: the block is live and was filled in `new`.
            let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.layout.size()) };
            assert!(bytes.iter().all(|&b| b == self.fill), "a block was overwritten");
        }
    }

    impl Drop for Block<'_> {
        fn drop(&mut self) {
            self.check();
            // SAFETY: allocated from this arena with this layout, freed once.
            unsafe { self.arena.dealloc(self.ptr, self.layout) };
        }
    }

    #[test]
    fn batches_reuse_the_region_once_everything_is_freed() {
        let arena = CallArena::new();
        for round in 0..4u8 {
            let batch = arena.batch();
            let blocks: Vec<_> = (0..8).map(|i| Block::new(&arena, 100 + i, 1 << (i % 5), round ^ i as u8)).collect();
            drop(batch);
            blocks.iter().for_each(Block::check);
            if round > 0 {
                assert!(blocks.iter().all(|b| arena.owns(b.ptr)), "round {round} spilled");
            }
        }
        assert_eq!(arena.live.get(), 0);
    }

    #[test]
    fn a_block_that_outlives_its_batch_is_never_handed_out_again() {
        let arena = CallArena::new();
        {
            let _sizing = arena.batch();
            drop(Block::new(&arena, 4096, 8, 0));
        }
        let kept = {
            let _batch = arena.batch();
            Block::new(&arena, 64, 8, 0xAA)
        };
        assert!(arena.owns(kept.ptr));
        for round in 0..3u8 {
            let _batch = arena.batch();
            let fresh: Vec<_> = (0..16).map(|i| Block::new(&arena, 64, 8, round.wrapping_add(i))).collect();
            kept.check();
            drop(fresh);
        }
        drop(kept);
        assert_eq!(arena.live.get(), 0);
        let _batch = arena.batch();
        assert_eq!(arena.used.get(), 0, "the region starts over once nothing in it is live");
    }

    #[test]
    fn vectors_grow_and_shrink_across_the_region_and_the_system_allocator() {
        let arena = CallArena::new();
        for round in 0..3 {
            let batch = arena.batch();
            let mut grown = Block::new(&arena, 16, 4, 7);
            for size in [32, 1 << 12, 1 << 16, 24] {
                // SAFETY: `grown` is live with this layout; the size is non-zero.
                let p = unsafe { arena.realloc(grown.ptr, grown.layout, size) };
                assert!(!p.is_null());
                let keep = grown.layout.size().min(size);
                // SAFETY: `p` holds `size` bytes, the first `keep` copied from the old block.
                unsafe {
                    assert!(std::slice::from_raw_parts(p, keep).iter().all(|&b| b == 7));
                    p.add(keep).write_bytes(7, size - keep);
                }
                grown.ptr = p;
                grown.layout = Layout::from_size_align(size, 4).expect("layout");
            }
            drop(batch);
            let system = Block::new(&arena, 32, 16, 9);
            assert!(!arena.owns(system.ptr), "round {round}: an allocation outside a batch hit the region");
        }
        assert_eq!(arena.live.get(), 0);
    }
}
