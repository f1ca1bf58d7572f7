//! Any byte string: the GGUF reader and the model loader return errors, never panic, and the
//! reader's largest allocation stays within the bound `tests/it/gguf_alloc.rs` states: the
//! input's size for everything whose size the file chooses (arrays, strings, claimed counts),
//! a fixed multiple for the vector of per-entry records, and a small floor for map nodes and
//! error messages.
#![no_main]

use aik_infer::{ExecOptions, Gguf, LlamaGgufDriver, MetadataValue};
use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Records the largest allocation made while `TRACKING` is set; libFuzzer runs the target on
/// one thread, so plain atomics suffice.
struct LargestAllocation;

static TRACKING: AtomicBool = AtomicBool::new(false);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping is two atomics.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACKING.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations up to this size are always allowed: fixed-size bookkeeping.
const FLOOR: usize = 4096;

/// The largest allocation a `len`-byte file may cause: the file's size, or the vector of
/// records, one `(String, MetadataValue)` per entry present, each at least 14 bytes on disk
/// (a tensor info is no larger and at least 32), whichever is larger.
fn allowed_largest(len: usize) -> usize {
    let record = size_of::<(String, MetadataValue)>();
    len.max(record * len / 14) + FLOOR
}

fuzz_target!(|data: &[u8]| {
    let bytes = data.to_vec();
    LARGEST.store(0, Ordering::Relaxed);
    TRACKING.store(true, Ordering::Relaxed);
    let parsed = Gguf::read(bytes);
    TRACKING.store(false, Ordering::Relaxed);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= allowed_largest(data.len()),
        "the reader allocated {largest} bytes at once for a {}-byte file",
        data.len()
    );
    if let Ok(gguf) = parsed {
        let _ = LlamaGgufDriver::from_gguf(&gguf, ExecOptions { threads: 1, ..Default::default() });
    }
});
