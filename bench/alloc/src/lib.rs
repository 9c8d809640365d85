//! A global allocator for benchmark processes that is either the system allocator or mimalloc,
//! as `KUBEFORGE_BENCH_ALLOCATOR` says (`mimalloc`, anything else or unset: the system's).
//!
//! A benchmark that compares allocators starts its child processes with the variable set, so
//! one binary measures both; the choice is read once, at the process's first allocation (with
//! `getenv`, which does not allocate), and never changes, so every block is freed by the
//! allocator that made it.
//!
//! It also counts the bytes allocated and not yet freed ([`live_bytes`]): RSS above that is the
//! allocator's own keeping (fragmentation, retained free memory), not the program's data.
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: kubeforge_bench_alloc::Chosen = kubeforge_bench_alloc::Chosen;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use mimalloc::MiMalloc;

/// The environment variable naming the allocator.
pub const VARIABLE: &str = "KUBEFORGE_BENCH_ALLOCATOR";

const UNDECIDED: u8 = 0;
const SYSTEM: u8 = 1;
const MIMALLOC: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Bytes allocated and not yet freed, as the program asked for them (not counting the
/// allocator's rounding and bookkeeping).
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn allocated(ptr: *mut u8, size: usize) -> *mut u8 {
    if !ptr.is_null() {
        LIVE.fetch_add(size, Ordering::Relaxed);
    }
    ptr
}

/// The allocator [`VARIABLE`] chose for this process.
#[derive(Debug, Clone, Copy)]
pub struct Chosen;

fn uses_mimalloc() -> bool {
    match CHOICE.load(Ordering::Relaxed) {
        SYSTEM => false,
        MIMALLOC => true,
        _ => {
            // SAFETY: `getenv` reads the environment without allocating; the pointer it returns
            // is read at once, before anything could change the environment.
            let value = unsafe { libc::getenv(c"KUBEFORGE_BENCH_ALLOCATOR".as_ptr()) };
            let mimalloc = !value.is_null()
                // SAFETY: a non-null `getenv` result is a NUL-terminated string.
                && unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes() == b"mimalloc";
            // Racing first allocations read the same environment and store the same choice.
            CHOICE.store(if mimalloc { MIMALLOC } else { SYSTEM }, Ordering::Relaxed);
            mimalloc
        }
    }
}

/// The name of the allocator in use: `mimalloc` or `system`.
pub fn name() -> &'static str {
    if uses_mimalloc() {
        "mimalloc"
    } else {
        "system"
    }
}

// SAFETY: every method forwards to one allocator, the same for the whole process (see
// `uses_mimalloc`), so each block is freed or resized by the allocator that returned it.
unsafe impl GlobalAlloc for Chosen {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe {
            if uses_mimalloc() {
                MiMalloc.alloc(layout)
            } else {
                System.alloc(layout)
            }
        };
        allocated(ptr, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe {
            if uses_mimalloc() {
                MiMalloc.alloc_zeroed(layout)
            } else {
                System.alloc_zeroed(layout)
            }
        };
        allocated(ptr, layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees, to the allocator that made `ptr`.
        unsafe {
            if uses_mimalloc() {
                MiMalloc.dealloc(ptr, layout)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees, to the allocator that made `ptr`.
        let moved = unsafe {
            if uses_mimalloc() {
                MiMalloc.realloc(ptr, layout, new_size)
            } else {
                System.realloc(ptr, layout, new_size)
            }
        };
        if !moved.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        moved
    }
}
