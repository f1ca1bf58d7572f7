//! What the GGUF reader allocates, measured by a counting global allocator: arrays and strings
//! cost their size in the file, claimed counts reserve no more than the file, and the one part
//! that is not 1:1, the fixed record per metadata entry and tensor, stays a bounded multiple.

use aik_infer::{Gguf, GgufWriter, MetadataArray, MetadataValue};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the calling thread's heap use; every other thread's allocations pass straight through
/// to the system allocator uncounted, so tests running in parallel do not disturb each other.
struct CountingAllocator;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping only touches
// const-initialized thread-locals, which never allocate (`try_with` skips them while the thread
// is being torn down).
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|live| {
            let now = live.get() + layout.size();
            live.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
            let _ = LARGEST.try_with(|l| l.set(l.get().max(layout.size())));
        });
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(layout.size())));
        // SAFETY: `ptr` came from `alloc` above, which forwarded to `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Heap use of `f` on this thread: the peak above what was live before, and the largest single
/// allocation.
pub(crate) struct Usage {
    pub(crate) peak: usize,
    pub(crate) largest: usize,
}

pub(crate) fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    LARGEST.with(|l| l.set(0));
    let out = f();
    let usage = Usage { peak: PEAK.with(Cell::get) - before, largest: LARGEST.with(Cell::get) };
    (out, usage)
}

/// Slack for fixed-size bookkeeping that does not grow with the file: a few map nodes, the
/// entry record, an error message.
pub(crate) const FIXED: usize = 4096;

/// The most bytes a file of `file_len` bytes may make the reader hold at its peak, and in one
/// allocation. Everything whose size the file chooses (arrays, strings, keys, names) costs at
/// most its bytes in the file; what is not 1:1 is the vector of fixed-size records, exactly one
/// per entry present (`RECORD` bytes in memory, at least `MIN_ENTRY` on disk; a tensor info is
/// no larger and at least 32 bytes on disk), plus one `usize` per entry in the lookup index.
fn allowed(file_len: usize) -> (usize, usize) {
    const RECORD: usize = size_of::<(String, MetadataValue)>();
    const MIN_ENTRY: usize = 14;
    let records = RECORD * file_len / MIN_ENTRY;
    let largest = file_len.max(records);
    let peak = records + size_of::<usize>() * file_len / MIN_ENTRY + file_len;
    (peak + FIXED, largest + FIXED)
}

/// Parses `bytes`, asserting the memory bound of [`allowed`].
pub(crate) fn read_within_bound(bytes: Vec<u8>) -> aik_infer::Result<Gguf> {
    let file_len = bytes.len();
    let (result, usage) = measure(|| Gguf::read(bytes));
    let (peak, largest) = allowed(file_len);
    assert!(
        usage.largest <= largest && usage.peak <= peak,
        "the reader held {} bytes (largest allocation {}) for a {file_len}-byte file",
        usage.peak,
        usage.largest
    );
    result
}

#[test]
fn files_of_tiny_entries_cost_a_bounded_multiple_of_their_size() {
    // The worst cases for the per-entry records: 20,000 metadata entries of 14 to 18 bytes, and
    // 20,000 one-element tensors. Measured: 1.7 MB held at the peak for the 336 kB file of
    // entries (5x), 2.2 MB for the 796 kB file of tensors (2.7x).
    let mut entries = GgufWriter::new();
    for i in 0..20_000u32 {
        entries.metadata(format!("{i:x}"), MetadataValue::U8(1));
    }
    let mut tensors = GgufWriter::new();
    tensors.alignment(1);
    for i in 0..20_000u32 {
        tensors.tensor(format!("{i:x}"), &[1], aik_infer::GgmlType::F32, vec![0; 4]).unwrap();
    }
    for (what, writer) in [("entries", entries), ("tensors", tensors)] {
        let bytes = writer.to_bytes().unwrap();
        let file_len = bytes.len();
        let (g, usage) = measure(|| Gguf::read(bytes).unwrap());
        assert!(g.metadata_entries().len().max(g.tensors().len()) == 20_000, "{what}");
        let (peak, largest) = allowed(file_len);
        assert!(
            usage.peak <= peak && usage.largest <= largest,
            "{what}: peak {} largest {} for {file_len} bytes",
            usage.peak,
            usage.largest
        );
    }
}

#[test]
fn a_large_uint8_array_costs_its_own_size() {
    // The array a 40-byte-per-element representation would have blown up forty-fold.
    let n = 1 << 20;
    let mut w = GgufWriter::new();
    w.metadata("blob", MetadataValue::Array(MetadataArray::U8(vec![7; n])));
    let bytes = w.to_bytes().unwrap();
    let file_len = bytes.len();
    let (g, usage) = measure(|| Gguf::read(bytes).unwrap());
    assert_eq!(g.metadata("blob").and_then(|v| v.as_array()).map(MetadataArray::len), Some(n));
    assert!(usage.peak <= file_len + FIXED, "peak {} for a {file_len}-byte file", usage.peak);
    assert!(usage.largest <= file_len, "largest {} > {file_len}", usage.largest);
}

#[test]
fn a_large_string_array_costs_its_own_size() {
    let n = 200_000;
    let mut w = GgufWriter::new();
    let words = (0..n).map(|i| if i % 4 == 0 { String::new() } else { format!("tok{i}") });
    w.metadata("tokenizer.ggml.tokens", MetadataValue::Array(MetadataArray::strings(words)));
    let bytes = w.to_bytes().unwrap();
    let file_len = bytes.len();
    let (g, usage) = measure(|| Gguf::read(bytes).unwrap());
    assert_eq!(g.get_str_array("tokenizer.ggml.tokens").unwrap()[5], "tok5");
    assert!(usage.peak <= file_len + FIXED, "peak {} for a {file_len}-byte file", usage.peak);
}

/// A header claiming `tensor_count` tensors and `kv_count` entries, then `body`.
fn header(tensor_count: u64, kv_count: u64, body: &[u8]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&tensor_count.to_le_bytes());
    b.extend_from_slice(&kv_count.to_le_bytes());
    b.extend_from_slice(body);
    b
}

#[test]
fn claimed_counts_that_fit_the_file_reserve_no_more_than_the_file() {
    // Counts just small enough to pass the "fits in what is left" check, over 1 MiB of bytes
    // that then fail to parse: nothing may be reserved for them beyond the file's size.
    let body_len = 1 << 20;
    let mut key = 1u64.to_le_bytes().to_vec();
    key.push(b'k');
    key.extend_from_slice(&[0xEE; 4]); // an unknown value type: the first entry fails
    key.resize(body_len, 0);
    let cases = [
        ("metadata", header(0, body_len as u64 / 13, &key)),
        ("tensors", header(body_len as u64 / 32, 0, &vec![0; body_len])),
        ("array", {
            let mut entry = 5u64.to_le_bytes().to_vec();
            entry.extend_from_slice(b"array");
            entry.extend_from_slice(&9u32.to_le_bytes());
            entry.extend_from_slice(&8u32.to_le_bytes()); // array of strings
            entry.extend_from_slice(&(body_len as u64 / 8 - 8).to_le_bytes());
            entry.resize(body_len, 0xFF); // the first length is absurd
            header(0, 1, &entry)
        }),
    ];
    for (what, bytes) in cases {
        let file_len = bytes.len();
        let (result, usage) = measure(|| Gguf::read(bytes));
        let e = result.unwrap_err().to_string();
        assert!(usage.largest <= file_len, "{what}: largest {} > {file_len}: {e}", usage.largest);
        assert!(usage.peak <= file_len + FIXED, "{what}: peak {} > {file_len}: {e}", usage.peak);
    }
}

#[test]
fn errors_about_long_keys_and_names_cost_no_more_than_the_file() {
    // Found by `cargo fuzz`: a 5,376-byte key swallowed the next entry, and the error message
    // quoting it reserved 10,772 bytes for a 9,933-byte file (formatting doubles its buffer).
    let long = "k".repeat(6000);
    let mut entry = (long.len() as u64).to_le_bytes().to_vec();
    entry.extend_from_slice(long.as_bytes());
    entry.extend_from_slice(&77u32.to_le_bytes()); // no such value type
    let bad_key = header(0, 1, &entry);
    let mut tensor = (long.len() as u64).to_le_bytes().to_vec();
    tensor.extend_from_slice(long.as_bytes());
    tensor.extend_from_slice(&9u32.to_le_bytes()); // n_dims out of range
    let bad_tensor = header(1, 0, &tensor);
    for (bytes, want) in [(bad_key, "GGUF metadata 'kkkk"), (bad_tensor, "GGUF tensor 'kkkk")] {
        let file_len = bytes.len();
        let (result, usage) = measure(|| Gguf::read(bytes));
        let e = result.unwrap_err().to_string();
        assert!(e.starts_with(want) && e.contains("… (6000 bytes)"), "{e}");
        assert!(e.len() < 400, "{} bytes of error", e.len());
        assert!(usage.largest <= file_len, "largest {} > {file_len}", usage.largest);
    }
}
