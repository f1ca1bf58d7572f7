//! A strict GGUF (v2, v3) reader and a writer for test fixtures.
//!
//! Layout (ggml `docs/gguf.md`, all little-endian): magic `GGUF`, `u32` version, `u64` tensor
//! count, `u64` metadata count; metadata entries (`string` key, `u32` value type, value); tensor
//! infos (`string` name, `u32` n_dims, `u64` dims with ne0 first, `u32` ggml type, `u64` offset
//! relative to the data section); padding to `general.alignment` (default 32); tensor data.
//! A string is a `u64` byte length followed by UTF-8 bytes.
//!
//! Strictness is a consensus matter: two nodes must accept and reject the same files. So every
//! length is checked against the bytes that remain before anything is allocated, every offset
//! and size against the data section, tensors may not overlap, keys and names may not repeat,
//! and every error names the field and its byte offset.
//!
//! Memory is bounded by the file, whatever it claims: a count is accepted only if that many
//! items fit in the bytes left, records are reserved for the entries a non-allocating walk finds
//! present (never for a claimed count), and metadata arrays are typed vectors
//! ([`MetadataArray`]) whose elements take in memory what they take on disk. Nested arrays are
//! rejected, as llama.cpp rejects them. What is not 1:1 is the fixed record kept per metadata
//! entry and per tensor (72 bytes and an 8-byte index slot, against at least 14 and 32 bytes on
//! disk): a file of nothing but tiny entries holds about 5 times its size at the peak (measured
//! by `tests/it/gguf_alloc.rs`). A real model's metadata is almost all arrays (vocabulary,
//! merges), held at their size in the file.

mod parse;
mod types;
mod values;
mod writer;

pub use types::{GgmlType, ggml_type_name};
pub use values::{MetadataArray, MetadataValue, StringArray, ValueType};
pub use writer::GgufWriter;

use parse::{Header, ParseFailure, parse_header};

use crate::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The four magic bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// Alignment of the data section and of every tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Most dimensions a ggml tensor can have.
const MAX_DIMS: u32 = 4;

/// Where a tensor's bytes are and how to interpret them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, `ne0` (the contiguous, row-length dimension) first.
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Offset of the first byte, relative to the start of the data section.
    pub offset: u64,
    /// Size in bytes, derived from dims and type.
    pub size: u64,
}

impl TensorInfo {
    /// Total number of elements.
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Number of rows: the product of all dims after `ne0`.
    pub fn rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }

    /// Length of one row (`ne0`).
    pub fn row_len(&self) -> u64 {
        self.dims[0]
    }
}

/// Where tensor bytes are read from.
#[derive(Debug)]
enum Backing {
    Memory(Vec<u8>),
    File { path: PathBuf, file: Mutex<File> },
}

/// A parsed GGUF file: metadata, tensor directory and access to tensor data.
///
/// `Gguf::open` reads only the header into memory; tensor data is read on demand with
/// [`Gguf::tensor_data`], so loading a model needs the model's size in memory, not twice that.
#[derive(Debug)]
pub struct Gguf {
    version: u32,
    metadata: Vec<(String, MetadataValue)>,
    /// Positions in `metadata`, sorted by key.
    metadata_index: Vec<usize>,
    tensors: Vec<TensorInfo>,
    /// Positions in `tensors`, sorted by name.
    tensor_index: Vec<usize>,
    alignment: u64,
    data_offset: u64,
    file_len: u64,
    backing: Backing,
}

impl Gguf {
    /// Parses a complete GGUF file held in memory.
    pub fn read(bytes: Vec<u8>) -> Result<Self> {
        let header = match parse_header(&bytes, bytes.len() as u64) {
            Ok(h) => h,
            Err(ParseFailure::Invalid(e)) => return Err(e),
            // The whole file is in memory, so running out is already reported as invalid.
            Err(ParseFailure::PrefixTooShort) => {
                return Err(Error::gguf(
                    "header",
                    bytes.len() as u64,
                    "file ends inside the header",
                ));
            }
        };
        Ok(Self::from_header(header, bytes.len() as u64, Backing::Memory(bytes)))
    }

    /// Opens a GGUF file, parsing its header and leaving tensor data on disk until asked for.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io_err = |source| Error::File { path: path.to_path_buf(), source };
        let mut file = File::open(path).map_err(io_err)?;
        let file_len = file.metadata().map_err(io_err)?.len();
        // The header's size is unknown until parsed: read a prefix, and grow it while parsing
        // fails only because the prefix ended early.
        let mut prefix_len = file_len.min(4 << 20);
        loop {
            let mut prefix = vec![0u8; usize::try_from(prefix_len).unwrap_or(usize::MAX)];
            file.seek(SeekFrom::Start(0)).map_err(io_err)?;
            file.read_exact(&mut prefix).map_err(io_err)?;
            match parse_header(&prefix, file_len) {
                Ok(header) => {
                    let backing =
                        Backing::File { path: path.to_path_buf(), file: Mutex::new(file) };
                    return Ok(Self::from_header(header, file_len, backing));
                }
                Err(ParseFailure::PrefixTooShort) if prefix_len < file_len => {
                    prefix_len = file_len.min(prefix_len.saturating_mul(4));
                }
                Err(ParseFailure::PrefixTooShort) => {
                    // Cannot happen: with the whole file read, running out is reported as an
                    // invalid-file error. Kept as an error rather than a panic all the same.
                    return Err(Error::gguf("header", prefix_len, "file ends inside the header"));
                }
                Err(ParseFailure::Invalid(e)) => return Err(e),
            }
        }
    }

    fn from_header(header: Header, file_len: u64, backing: Backing) -> Self {
        Self {
            version: header.version,
            metadata: header.metadata,
            metadata_index: header.metadata_index,
            tensors: header.tensors,
            tensor_index: header.tensor_index,
            alignment: header.alignment,
            data_offset: header.data_offset,
            file_len,
            backing,
        }
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of the data section and of every tensor offset.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute file offset where tensor data starts.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Length of the whole file in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// All metadata entries in file order.
    pub fn metadata_entries(&self) -> &[(String, MetadataValue)] {
        &self.metadata
    }

    /// The value stored under `key`, if any.
    pub fn metadata(&self, key: &str) -> Option<&MetadataValue> {
        let i =
            self.metadata_index.binary_search_by(|&i| self.metadata[i].0.as_str().cmp(key)).ok()?;
        Some(&self.metadata[self.metadata_index[i]].1)
    }

    fn required(&self, key: &str) -> Result<&MetadataValue> {
        self.metadata(key).ok_or_else(|| Error::MissingMetadata { key: key.to_string() })
    }

    fn type_error(key: &str, expected: &'static str, found: &MetadataValue) -> Error {
        Error::MetadataType { key: key.to_string(), expected, found: found.type_description() }
    }

    /// The string under `key`; an error if absent or not a string.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        let v = self.required(key)?;
        v.as_str().ok_or_else(|| Self::type_error(key, "string", v))
    }

    /// The unsigned integer under `key`, of any integer width.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.required(key)?;
        v.as_u64().ok_or_else(|| Self::type_error(key, "non-negative integer", v))
    }

    /// Like [`Gguf::get_u64`], but `None` when the key is absent (a wrong type is still an error).
    pub fn get_u64_opt(&self, key: &str) -> Result<Option<u64>> {
        if self.metadata(key).is_none() {
            return Ok(None);
        }
        self.get_u64(key).map(Some)
    }

    /// The `float32` under `key`.
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        let v = self.required(key)?;
        v.as_f32().ok_or_else(|| Self::type_error(key, "float32", v))
    }

    /// The bool under `key`.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        let v = self.required(key)?;
        v.as_bool().ok_or_else(|| Self::type_error(key, "bool", v))
    }

    /// The string array under `key`.
    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>> {
        let v = self.required(key)?;
        v.as_array()
            .and_then(MetadataArray::as_strs)
            .ok_or_else(|| Self::type_error(key, "array[string]", v))
    }

    /// The integer array under `key`, of any integer element width.
    pub fn get_i64_array(&self, key: &str) -> Result<Vec<i64>> {
        let v = self.required(key)?;
        v.as_array()
            .and_then(MetadataArray::as_i64s)
            .ok_or_else(|| Self::type_error(key, "array[integer]", v))
    }

    /// All tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        let i = self
            .tensor_index
            .binary_search_by(|&i| self.tensors[i].name.as_str().cmp(name))
            .ok()?;
        Some(&self.tensors[self.tensor_index[i]])
    }

    /// Reads the raw bytes of `tensor` (exactly `tensor.size` bytes, in the file's layout).
    pub fn tensor_data(&self, tensor: &TensorInfo) -> Result<Vec<u8>> {
        let start = self.data_offset + tensor.offset;
        let len = usize::try_from(tensor.size).map_err(|_| {
            Error::gguf(format!("tensor '{}'.size", tensor.name), start, "does not fit in memory")
        })?;
        match &self.backing {
            Backing::Memory(bytes) => {
                // Offsets and sizes were validated against the file length at parse time.
                let start = start as usize;
                Ok(bytes[start..start + len].to_vec())
            }
            Backing::File { path, file } => {
                let io_err = |source| Error::File { path: path.clone(), source };
                let mut buf = vec![0u8; len];
                let mut file = file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                file.seek(SeekFrom::Start(start)).map_err(io_err)?;
                file.read_exact(&mut buf).map_err(io_err)?;
                Ok(buf)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = GgufWriter::new();
        w.metadata("general.architecture", MetadataValue::String("llama".into()));
        w.metadata("llama.block_count", MetadataValue::U32(2));
        w.metadata(
            "tokenizer.ggml.tokens",
            MetadataValue::Array(MetadataArray::strings(["a", "b"])),
        );
        w.metadata("tokenizer.ggml.token_type", MetadataValue::Array(MetadataArray::i32s([1, 3])));
        w.tensor("t0", &[4], GgmlType::F32, 1f32.to_le_bytes().repeat(4)).unwrap();
        w.tensor("t1", &[32, 2], GgmlType::Q8_0, vec![0; 68]).unwrap();
        w.to_bytes().unwrap()
    }

    #[test]
    fn writer_output_reads_back() {
        let g = Gguf::read(sample()).unwrap();
        assert_eq!(g.version(), 3);
        assert_eq!(g.get_str("general.architecture").unwrap(), "llama");
        assert_eq!(g.get_u64("llama.block_count").unwrap(), 2);
        assert_eq!(g.get_str_array("tokenizer.ggml.tokens").unwrap(), vec!["a", "b"]);
        assert_eq!(g.get_i64_array("tokenizer.ggml.token_type").unwrap(), vec![1, 3]);
        let t1 = g.tensor("t1").unwrap();
        assert_eq!((t1.rows(), t1.row_len(), t1.size), (2, 32, 68));
        assert_eq!(t1.offset % 32, 0);
        assert_eq!(g.tensor_data(g.tensor("t0").unwrap()).unwrap(), 1f32.to_le_bytes().repeat(4));
    }

    #[test]
    fn typed_accessors_name_the_key_and_types() {
        let g = Gguf::read(sample()).unwrap();
        let e = g.get_str("llama.block_count").unwrap_err().to_string();
        assert!(e.contains("llama.block_count") && e.contains("uint32"), "{e}");
        let e = g.get_u64("missing.key").unwrap_err().to_string();
        assert!(e.contains("missing.key"), "{e}");
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        for len in 0..bytes.len() {
            let err = Gguf::read(bytes[..len].to_vec());
            assert!(err.is_err(), "prefix of {len} bytes parsed");
        }
    }

    #[test]
    fn huge_counts_are_rejected_before_allocating() {
        let mut bytes = sample();
        bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = Gguf::read(bytes).unwrap_err().to_string();
        assert!(e.contains("header.tensor_count") && e.contains("offset 8"), "{e}");
    }

    /// A file with no tensors and one metadata entry `key` of type `array` whose array header
    /// says `elem_tag` and `count`, followed by `payload`. Returns the file and the offset of
    /// the array's element-type tag.
    fn raw_array_file(key: &str, elem_tag: u32, count: u64, payload: &[u8]) -> (Vec<u8>, u64) {
        let mut b = Vec::new();
        b.extend_from_slice(b"GGUF");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&(key.len() as u64).to_le_bytes());
        b.extend_from_slice(key.as_bytes());
        b.extend_from_slice(&ValueType::Array.tag().to_le_bytes());
        let tag_at = b.len() as u64;
        b.extend_from_slice(&elem_tag.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(payload);
        (b, tag_at)
    }

    /// Heap bytes held by everything parsed from the metadata section: keys (in the entry list
    /// and in the lookup index) and values.
    fn metadata_heap_bytes(g: &Gguf) -> usize {
        g.metadata_entries().iter().map(|(k, v)| 2 * k.capacity() + v.heap_bytes()).sum()
    }

    #[test]
    fn huge_array_count_is_rejected_naming_the_key_and_offset() {
        for (ty, count) in [(ValueType::U8, 1u64 << 40), (ValueType::String, u64::MAX / 2)] {
            let (bytes, tag_at) = raw_array_file("vocab.huge", ty.tag(), count, &[0; 64]);
            let e = Gguf::read(bytes).unwrap_err().to_string();
            let want =
                format!("GGUF metadata 'vocab.huge' at offset {}: count {count}", tag_at + 4);
            assert!(e.starts_with(&want), "{e}");
        }
    }

    #[test]
    fn arrays_of_arrays_are_rejected() {
        let (bytes, tag_at) = raw_array_file("nested", ValueType::Array.tag(), 1, &[0; 12]);
        let e = Gguf::read(bytes).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "GGUF metadata 'nested' at offset {tag_at}: arrays of arrays are not supported"
            )
        );
    }

    #[test]
    fn bad_array_elements_are_named_by_index() {
        let (bytes, tag_at) = raw_array_file("flags", ValueType::Bool.tag(), 3, &[1, 0, 2]);
        let e = Gguf::read(bytes).unwrap_err().to_string();
        let at = tag_at + 12 + 2;
        assert_eq!(
            e,
            format!("GGUF metadata 'flags'[2] at offset {at}: bool byte is 2, not 0 or 1")
        );

        let mut payload = Vec::new();
        for s in [&b"ok"[..], &[0xff, 0xfe]] {
            payload.extend_from_slice(&(s.len() as u64).to_le_bytes());
            payload.extend_from_slice(s);
        }
        let (bytes, tag_at) = raw_array_file("words", ValueType::String.tag(), 2, &payload);
        let e = Gguf::read(bytes).unwrap_err().to_string();
        let at = tag_at + 12 + 10;
        assert!(
            e.starts_with(&format!(
                "GGUF metadata 'words'[1] at offset {at}: string of 2 bytes is not valid UTF-8"
            )),
            "{e}"
        );
    }

    #[test]
    fn a_100k_element_array_holds_no_more_than_its_bytes_in_the_file() {
        let n = 100_000;
        let arrays = [
            MetadataArray::U8((0..n).map(|i| i as u8).collect()),
            MetadataArray::Bool((0..n).map(|i| i % 3 == 0).collect()),
            MetadataArray::I16((0..n).map(|i| i as i16).collect()),
            MetadataArray::F32((0..n).map(|i| i as f32 * 0.5).collect()),
            MetadataArray::U64((0..n).map(|i| (i as u64) << 33).collect()),
            MetadataArray::strings(
                (0..n).map(|i| if i % 2 == 0 { String::new() } else { format!("w{i}") }),
            ),
        ];
        for array in arrays {
            let mut w = GgufWriter::new();
            w.metadata("big", MetadataValue::Array(array.clone()));
            let bytes = w.to_bytes().unwrap();
            let file_len = bytes.len();
            let g = Gguf::read(bytes).unwrap();
            let parsed = g.metadata("big").unwrap();
            assert_eq!(
                parsed,
                &MetadataValue::Array(array.clone()),
                "{}",
                array.elem_type().name()
            );
            // The array's bytes on disk: type tag, count, elements.
            let on_disk = file_len - (4 + 4 + 8 + 8 + 8 + 3 + 4);
            assert!(
                parsed.heap_bytes() <= on_disk,
                "{}: {} > {on_disk}",
                array.elem_type().name(),
                parsed.heap_bytes()
            );
            assert!(metadata_heap_bytes(&g) <= file_len);
        }
    }

    /// Any metadata value the writer can express, arrays up to 300 elements.
    fn any_value() -> impl proptest::strategy::Strategy<Value = MetadataValue> {
        use proptest::prelude::*;
        let text = "[a-z\u{e9}\u{1F600} ]{0,12}";
        prop_oneof![
            any::<u8>().prop_map(MetadataValue::U8),
            any::<i8>().prop_map(MetadataValue::I8),
            any::<u16>().prop_map(MetadataValue::U16),
            any::<i32>().prop_map(MetadataValue::I32),
            any::<u64>().prop_map(MetadataValue::U64),
            any::<f64>().prop_map(MetadataValue::F64),
            any::<bool>().prop_map(MetadataValue::Bool),
            text.prop_map(MetadataValue::String),
            prop::collection::vec(any::<u8>(), 0..300)
                .prop_map(|v| MetadataValue::Array(MetadataArray::U8(v))),
            prop::collection::vec(any::<i64>(), 0..300)
                .prop_map(|v| MetadataValue::Array(MetadataArray::I64(v))),
            prop::collection::vec(any::<f32>().prop_filter("NaN != NaN", |x| !x.is_nan()), 0..300)
                .prop_map(|v| MetadataValue::Array(MetadataArray::F32(v))),
            prop::collection::vec(any::<bool>(), 0..300)
                .prop_map(|v| MetadataValue::Array(MetadataArray::Bool(v))),
            prop::collection::vec(text, 0..300)
                .prop_map(|v| MetadataValue::Array(MetadataArray::strings(v))),
        ]
    }

    #[test]
    fn metadata_round_trips_and_its_heap_bytes_stay_within_the_file() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        let config = Config { cases: 256, failure_persistence: None, ..Config::default() };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[5; 32]));
        let entries = prop::collection::btree_map("[a-z._]{1,24}", any_value(), 0..12);
        runner
            .run(&entries, |entries| {
                let mut w = GgufWriter::new();
                for (k, v) in &entries {
                    w.metadata(k.as_str(), v.clone());
                }
                let bytes = w.to_bytes().unwrap();
                let file_len = bytes.len();
                let g = Gguf::read(bytes).unwrap();
                prop_assert_eq!(g.metadata_entries().len(), entries.len());
                for (k, v) in &entries {
                    prop_assert_eq!(g.metadata(k), Some(v));
                }
                prop_assert!(metadata_heap_bytes(&g) <= file_len);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_repeated_key_is_named_at_its_second_entry() {
        let mut w = GgufWriter::new();
        for key in ["k1", "k2", "k3"] {
            w.metadata(key, MetadataValue::U8(1));
        }
        let mut bytes = w.to_bytes().unwrap();
        // Entries are 15 bytes (8 length, 2 key, 4 tag, 1 value) from offset 24.
        assert_eq!(&bytes[62..64], b"k3");
        bytes[63] = b'1';
        let e = Gguf::read(bytes).unwrap_err().to_string();
        assert_eq!(e, "GGUF metadata[2].key at offset 54: duplicate key 'k1'");
    }

    #[test]
    fn a_repeated_tensor_name_is_named_at_its_second_info() {
        let mut w = GgufWriter::new();
        w.tensor("t0", &[8], GgmlType::F32, vec![0; 32]).unwrap();
        w.tensor("t1", &[8], GgmlType::F32, vec![0; 32]).unwrap();
        let mut bytes = w.to_bytes().unwrap();
        // Infos are 34 bytes (8 length, 2 name, 4 n_dims, 8 dim, 4 type, 8 offset) from 24.
        assert_eq!(&bytes[66..68], b"t1");
        bytes[67] = b'0';
        let e = Gguf::read(bytes).unwrap_err().to_string();
        assert_eq!(e, "GGUF tensor[1].name at offset 58: duplicate tensor name 't0'");
    }

    #[test]
    fn bad_magic_and_version_are_named() {
        let mut bytes = sample();
        bytes[0] = b'X';
        assert!(Gguf::read(bytes).unwrap_err().to_string().contains("header.magic"));
        let mut bytes = sample();
        bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
        let e = Gguf::read(bytes).unwrap_err().to_string();
        assert!(e.contains("version 1"), "{e}");
    }

    #[test]
    fn unsupported_tensor_type_lists_supported_ones() {
        let mut w = GgufWriter::new();
        w.tensor_raw("k", &[256], 16, vec![0; 66]).unwrap();
        let e = Gguf::read(w.to_bytes().unwrap()).unwrap_err().to_string();
        assert!(
            e.contains("IQ")
                && e.contains("supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K"),
            "{e}"
        );
    }
}
