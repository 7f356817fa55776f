//! A per-call bump arena for the batch that `samples` returns.
//!
//! The canonical ABI (<https://github.com/WebAssembly/component-model/blob/main/design/mvp/CanonicalABI.md>)
//! copies a returned batch out of the sandbox and then, in the post-return step, frees it
//! piece by piece: an id, a pixel buffer and a label list per sample. Allocating those pieces
//! from a bump region makes both the allocations and the frees nearly free. The region is
//! reused from its start at the next batch, which is safe because the host always runs
//! post-return (freeing the whole previous batch) before it calls into the instance again.
//! Outside a batch, and for whatever does not fit, the system allocator serves as usual.
//!
//! The decompressed image arrays are *lent*: a sample's pixels are returned as a `Vec` over its
//! bytes inside the array, without a copy, and the post-return free of that `Vec` is ignored
//! because it points into a lent region. Such a `Vec` is only ever read by the canonical ABI's
//! lowering, which forgets it; nothing grows, writes or keeps it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

// The arena's bookkeeping is not synchronised: it relies on wasm32-wasip2 running one thread.
#[cfg(target_feature = "atomics")]
compile_error!("the call arena assumes a single-threaded target");

/// Largest region the arena keeps (a batch beyond it spills to the system allocator).
const MAX_REGION: usize = 256 << 20;

/// How many arrays can be lent at once (three splits per open dataset); past it, copies.
const MAX_LENT: usize = 48;

/// The global allocator: a bump region while a batch is built, the system allocator otherwise.
pub struct CallArena {
    base: Cell<*mut u8>,
    cap: Cell<usize>,
    used: Cell<usize>,
    active: Cell<bool>,
    /// Bytes the current batch needed: the next region is sized from it.
    wanted: Cell<usize>,
    /// `[start, end)` of the lent arrays; the first `lent_count` slots are in use.
    lent: [Cell<(usize, usize)>; MAX_LENT],
    lent_count: Cell<usize>,
}

// SAFETY: the plugin runs on a single thread (checked above), so the cells are never shared
// between threads.
unsafe impl Sync for CallArena {}

impl CallArena {
    pub const fn new() -> Self {
        CallArena {
            base: Cell::new(std::ptr::null_mut()),
            cap: Cell::new(0),
            used: Cell::new(0),
            active: Cell::new(false),
            wanted: Cell::new(0),
            lent: [const { Cell::new((0, 0)) }; MAX_LENT],
            lent_count: Cell::new(0),
        }
    }

    /// Lends `array` (a live allocation that stays put until the returned guard drops): samples
    /// can then return slices of it through [`Self::alias`]. `None` when too many arrays are lent.
    pub fn lend(&'static self, array: &[u8]) -> Option<Lent> {
        let n = self.lent_count.get();
        if n == MAX_LENT || array.is_empty() {
            return None;
        }
        let start = array.as_ptr() as usize;
        self.lent[n].set((start, start + array.len()));
        self.lent_count.set(n + 1);
        Some(Lent { arena: self, start })
    }

    fn is_lent(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        self.lent[..self.lent_count.get()].iter().any(|c| {
            let (start, end) = c.get();
            (start..end).contains(&p)
        })
    }

    /// A `Vec` over `bytes` for returning through the canonical ABI without a copy.
    ///
    /// # Safety
    /// `bytes` must lie in an array lent with [`Self::lend`] whose guard is alive, and the `Vec`
    /// must only be handed to the canonical ABI (or dropped): never grown or written.
    pub unsafe fn alias(&self, bytes: &[u8]) -> Vec<u8> {
        debug_assert!(bytes.is_empty() || self.is_lent(bytes.as_ptr().cast_mut()));
        // SAFETY: the memory is a live part of a global-allocator block; the allocator ignores
        // frees inside lent arrays, so this `Vec` never releases it (see the caller's contract).
        unsafe { Vec::from_raw_parts(bytes.as_ptr().cast_mut(), bytes.len(), bytes.len()) }
    }

    /// Starts building a batch; the returned guard ends it. Everything a previous batch put in
    /// the region has been freed by the host's post-return by now, so the region is reused.
    pub fn batch(&'static self) -> BatchScope {
        let wanted = self.wanted.get().min(MAX_REGION);
        if wanted > self.cap.get() {
            let cap = wanted.next_power_of_two().min(MAX_REGION);
            if !self.base.get().is_null() {
                // SAFETY: the region was allocated below with this layout and nothing lives in it.
                unsafe { System.dealloc(self.base.get(), Self::region(self.cap.get())) };
            }
            // SAFETY: a non-zero size with a valid alignment.
            let base = unsafe { System.alloc(Self::region(cap)) };
            self.base.set(base);
            self.cap.set(if base.is_null() { 0 } else { cap });
        }
        self.used.set(0);
        self.wanted.set(0);
        self.active.set(true);
        BatchScope(self)
    }

    fn region(cap: usize) -> Layout {
        Layout::from_size_align(cap, 16).expect("region layout")
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        let base = self.base.get() as usize;
        (base..base + self.cap.get()).contains(&(ptr as usize))
    }

    fn bump(&self, layout: Layout) -> *mut u8 {
        self.wanted.set(self.wanted.get() + layout.size() + layout.align());
        let base = self.base.get() as usize;
        let start = (base + self.used.get()).next_multiple_of(layout.align());
        let end = start + layout.size();
        if base == 0 || end > base + self.cap.get() {
            return std::ptr::null_mut();
        }
        self.used.set(end - base);
        start as *mut u8
    }
}

impl Default for CallArena {
    fn default() -> Self {
        Self::new()
    }
}

/// Keeps an array lent; dropping it (before the array is freed) ends the loan.
pub struct Lent {
    arena: &'static CallArena,
    start: usize,
}

impl Drop for Lent {
    fn drop(&mut self) {
        let a = self.arena;
        let n = a.lent_count.get();
        if let Some(i) = a.lent[..n].iter().position(|c| c.get().0 == self.start) {
            a.lent[i].set(a.lent[n - 1].get());
            a.lent_count.set(n - 1);
        }
    }
}

/// Ends a batch when dropped: later allocations go to the system allocator again.
pub struct BatchScope(&'static CallArena);

impl Drop for BatchScope {
    fn drop(&mut self) {
        self.0.active.set(false);
    }
}

// SAFETY: arena blocks are handed out once each, suitably aligned and within the region;
// they are never passed to the system allocator, and the region is only reused when every
// block of the previous batch has been freed (see the module documentation). Frees inside lent
// arrays are ignored: those bytes belong to the array, which is freed (after its loan ends)
// through the system allocator with its own layout.
unsafe impl GlobalAlloc for CallArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.active.get() {
            let p = self.bump(layout);
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.owns(ptr) && !self.is_lent(ptr) {
            // SAFETY: `ptr` came from the system allocator with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) && !self.is_lent(ptr) {
            // SAFETY: `ptr` came from the system allocator with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `new_layout` is valid; the old block holds `layout.size()` bytes.
        unsafe {
            let p = self.alloc(new_layout);
            if !p.is_null() {
                std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
            }
            p
        }
    }
}
