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

mod writer;

pub use writer::GgufWriter;

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

/// Tensor element types this engine implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16: the top 16 bits of an IEEE binary32.
    BF16,
    /// 32-element blocks: f16 scale `d`, 16 bytes of nibbles; value = (q − 8)·d.
    Q4_0,
    /// 32-element blocks: f16 scale `d`, f16 minimum `m`, 16 bytes of nibbles; value = q·d + m.
    Q4_1,
    /// 32-element blocks: f16 scale `d`, 32 fifth bits (u32 LE), 16 bytes of nibbles; value =
    /// (q − 16)·d.
    Q5_0,
    /// 32-element blocks: f16 scale `d`, f16 minimum `m`, 32 fifth bits (u32 LE), 16 bytes of
    /// nibbles; value = q·d + m.
    Q5_1,
    /// 32-element blocks: f16 scale `d`, 32 signed bytes; value = q·d.
    Q8_0,
    /// 256-element super-blocks: 16 bytes of 4-bit scales and mins (one each per 16 elements),
    /// 64 bytes of 2-bit quants, f16 `d`, f16 `dmin`; value = d·sc·q − dmin·m.
    #[allow(non_camel_case_types)] // ggml's name
    Q2_K,
    /// 256-element super-blocks: 32 bytes of high bits, 64 bytes of 2-bit pairs, 12 bytes of
    /// 6-bit scales (one per 16 elements, offset by 32), f16 `d`; value = d·(sc − 32)·q with q in
    /// −4..=3.
    #[allow(non_camel_case_types)] // ggml's name
    Q3_K,
    /// 256-element super-blocks: f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and mins for 8
    /// sub-blocks of 32, 128 bytes of nibbles; value = d·sc·q − dmin·m.
    #[allow(non_camel_case_types)] // ggml's name
    Q4_K,
    /// 256-element super-blocks: f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and mins for 8
    /// sub-blocks of 32, 32 bytes of fifth bits, 128 bytes of nibbles; value = d·sc·q − dmin·m.
    #[allow(non_camel_case_types)] // ggml's name
    Q5_K,
    /// 256-element super-blocks: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16
    /// signed 8-bit scales (one per 16 elements), f16 `d`; value = d·sc·(q − 32).
    #[allow(non_camel_case_types)] // ggml's name
    Q6_K,
}

impl GgmlType {
    /// The ggml type id as stored in GGUF.
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q2_K => 10,
            Self::Q3_K => 11,
            Self::Q4_K => 12,
            Self::Q5_K => 13,
            Self::Q6_K => 14,
            Self::BF16 => 30,
        }
    }

    /// The supported type with ggml id `id`, if any.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            10 => Self::Q2_K,
            11 => Self::Q3_K,
            12 => Self::Q4_K,
            13 => Self::Q5_K,
            14 => Self::Q6_K,
            30 => Self::BF16,
            _ => return None,
        })
    }

    /// Elements per block (1 for plain floats).
    pub fn block_elements(self) -> u64 {
        match self {
            Self::F32 | Self::F16 | Self::BF16 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
            Self::Q2_K | Self::Q3_K | Self::Q4_K | Self::Q5_K | Self::Q6_K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> u64 {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q2_K => 84,
            Self::Q3_K => 110,
            Self::Q4_K => 144,
            Self::Q5_K => 176,
            Self::Q6_K => 210,
        }
    }

    /// The conventional name of this type.
    pub fn name(self) -> &'static str {
        ggml_type_name(self.id())
    }
}

/// The conventional name of any ggml type id, for error messages.
pub fn ggml_type_name(id: u32) -> &'static str {
    match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16..=23 => "IQ",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        _ => "unknown",
    }
}

/// The type tag of a metadata value (GGUF `gguf_metadata_value_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `uint8` (0).
    U8,
    /// `int8` (1).
    I8,
    /// `uint16` (2).
    U16,
    /// `int16` (3).
    I16,
    /// `uint32` (4).
    U32,
    /// `int32` (5).
    I32,
    /// `float32` (6).
    F32,
    /// `bool` (7), one byte that must be 0 or 1.
    Bool,
    /// `string` (8).
    String,
    /// `array` (9).
    Array,
    /// `uint64` (10).
    U64,
    /// `int64` (11).
    I64,
    /// `float64` (12).
    F64,
}

impl ValueType {
    /// The type with GGUF tag `tag`, if defined.
    pub fn from_tag(tag: u32) -> Option<Self> {
        Some(match tag {
            0 => Self::U8,
            1 => Self::I8,
            2 => Self::U16,
            3 => Self::I16,
            4 => Self::U32,
            5 => Self::I32,
            6 => Self::F32,
            7 => Self::Bool,
            8 => Self::String,
            9 => Self::Array,
            10 => Self::U64,
            11 => Self::I64,
            12 => Self::F64,
            _ => return None,
        })
    }

    /// The GGUF tag of this type.
    pub fn tag(self) -> u32 {
        match self {
            Self::U8 => 0,
            Self::I8 => 1,
            Self::U16 => 2,
            Self::I16 => 3,
            Self::U32 => 4,
            Self::I32 => 5,
            Self::F32 => 6,
            Self::Bool => 7,
            Self::String => 8,
            Self::Array => 9,
            Self::U64 => 10,
            Self::I64 => 11,
            Self::F64 => 12,
        }
    }

    /// The smallest number of bytes a value of this type occupies; used to reject counts that
    /// cannot fit in the bytes left before allocating for them.
    fn min_size(self) -> u64 {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            Self::Array => 12,
        }
    }

    /// The GGUF spec's name for the type, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::U16 => "uint16",
            Self::I16 => "int16",
            Self::U32 => "uint32",
            Self::I32 => "int32",
            Self::F32 => "float32",
            Self::Bool => "bool",
            Self::String => "string",
            Self::Array => "array",
            Self::U64 => "uint64",
            Self::I64 => "int64",
            Self::F64 => "float64",
        }
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float32`.
    F32(f32),
    /// `float64`.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// `string`.
    String(String),
    /// `array` of values that all have `elem_type`.
    Array(MetadataArray),
}

/// A typed metadata array, stored as one vector of its element type.
///
/// Why typed vectors and not a `Vec<MetadataValue>`: a [`MetadataValue`] is tens of bytes, so a
/// file holding a 100,000-element `uint8` array would make the reader allocate some 40 times the
/// file's size. Here every element takes in memory exactly the bytes it takes on disk (a string
/// element: its bytes, plus one `usize` end offset in place of the `u64` length prefix), so the
/// arrays of a parsed file never hold more bytes than the file. Nested arrays (`array` of
/// `array`) are rejected by the reader, as llama.cpp's `gguf.cpp` rejects them, so they have no
/// variant.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataArray {
    /// `uint8` elements.
    U8(Vec<u8>),
    /// `int8` elements.
    I8(Vec<i8>),
    /// `uint16` elements.
    U16(Vec<u16>),
    /// `int16` elements.
    I16(Vec<i16>),
    /// `uint32` elements.
    U32(Vec<u32>),
    /// `int32` elements.
    I32(Vec<i32>),
    /// `uint64` elements.
    U64(Vec<u64>),
    /// `int64` elements.
    I64(Vec<i64>),
    /// `float32` elements.
    F32(Vec<f32>),
    /// `float64` elements.
    F64(Vec<f64>),
    /// `bool` elements.
    Bool(Vec<bool>),
    /// `string` elements, packed into one buffer.
    String(StringArray),
}

impl MetadataArray {
    /// An array of strings.
    pub fn strings<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Self {
        Self::String(values.into_iter().collect())
    }

    /// An array of `int32`.
    pub fn i32s(values: impl IntoIterator<Item = i32>) -> Self {
        Self::I32(values.into_iter().collect())
    }

    /// The element type.
    pub fn elem_type(&self) -> ValueType {
        match self {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F32(_) => ValueType::F32,
            Self::F64(_) => ValueType::F64,
            Self::Bool(_) => ValueType::Bool,
            Self::String(_) => ValueType::String,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::String(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as strings, if this is a string array.
    pub fn as_strs(&self) -> Option<Vec<&str>> {
        match self {
            Self::String(v) => Some(v.iter().collect()),
            _ => None,
        }
    }

    /// The elements as `i64`, if this is an array of integers of any width whose every element
    /// fits (a `uint64` above `i64::MAX` does not).
    pub fn as_i64s(&self) -> Option<Vec<i64>> {
        fn widen<T: Copy + Into<i64>>(v: &[T]) -> Option<Vec<i64>> {
            Some(v.iter().map(|&x| x.into()).collect())
        }
        match self {
            Self::U8(v) => widen(v),
            Self::I8(v) => widen(v),
            Self::U16(v) => widen(v),
            Self::I16(v) => widen(v),
            Self::U32(v) => widen(v),
            Self::I32(v) => widen(v),
            Self::I64(v) => Some(v.clone()),
            Self::U64(v) => v.iter().map(|&x| i64::try_from(x).ok()).collect(),
            Self::F32(_) | Self::F64(_) | Self::Bool(_) | Self::String(_) => None,
        }
    }

    /// The elements as `f32`, if this is a `float32` array (no silent narrowing of `float64`).
    pub fn as_f32s(&self) -> Option<&[f32]> {
        match self {
            Self::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Bytes this array holds on the heap: what the reader's memory bound is about. Never more
    /// than the array's bytes in the file it was read from.
    pub fn heap_bytes(&self) -> usize {
        fn bytes<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        match self {
            Self::U8(v) => bytes(v),
            Self::I8(v) => bytes(v),
            Self::U16(v) => bytes(v),
            Self::I16(v) => bytes(v),
            Self::U32(v) => bytes(v),
            Self::I32(v) => bytes(v),
            Self::U64(v) => bytes(v),
            Self::I64(v) => bytes(v),
            Self::F32(v) => bytes(v),
            Self::F64(v) => bytes(v),
            Self::Bool(v) => bytes(v),
            Self::String(v) => v.heap_bytes(),
        }
    }
}

/// An array of strings packed into one buffer: the concatenated text and where each element
/// ends. One allocation for the text instead of one per element (a vocabulary has 50,000 and
/// more), and no per-element `String` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringArray {
    /// All elements, concatenated.
    text: String,
    /// `ends[i]` is the end of element `i` in `text`; element `i` starts where `i - 1` ends.
    ends: Vec<usize>,
}

impl StringArray {
    /// An empty array with room for `elements` strings of `text_bytes` bytes in all.
    pub fn with_capacity(elements: usize, text_bytes: usize) -> Self {
        Self { text: String::with_capacity(text_bytes), ends: Vec::with_capacity(elements) }
    }

    /// Appends an element.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Element `i`, if in range.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        // Every end was recorded after a whole `&str` was appended: a char boundary.
        self.text.get(start..end)
    }

    /// The elements in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let element = &self.text[start..end];
            start = end;
            element
        })
    }

    /// Bytes held on the heap: the text plus one `usize` per element.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
    }
}

impl<S: AsRef<str>> FromIterator<S> for StringArray {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut out = Self::default();
        for s in iter {
            out.push(s.as_ref());
        }
        out
    }
}

impl MetadataValue {
    /// The value's type tag.
    pub fn value_type(&self) -> ValueType {
        match self {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F32(_) => ValueType::F32,
            Self::F64(_) => ValueType::F64,
            Self::Bool(_) => ValueType::Bool,
            Self::String(_) => ValueType::String,
            Self::Array(_) => ValueType::Array,
        }
    }

    /// The value for an error message, short whatever its size: scalars as they are, strings
    /// and arrays by type and length (an error must not grow with the file).
    pub(crate) fn brief(&self) -> String {
        match self {
            Self::String(s) => format!("a string of {} bytes", s.len()),
            Self::Array(a) => format!("an {} of {} elements", self.type_description(), a.len()),
            other => format!("{other:?}"),
        }
    }

    /// Bytes this value holds on the heap (string bytes, array elements); never more than the
    /// value's bytes in the file it was read from.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Self::String(s) => s.capacity(),
            Self::Array(a) => a.heap_bytes(),
            _ => 0,
        }
    }

    /// A short description of the type for messages, e.g. `array[string]`.
    pub fn type_description(&self) -> String {
        match self {
            Self::Array(a) => format!("array[{}]", a.elem_type().name()),
            other => other.value_type().name().to_string(),
        }
    }

    /// The value as an unsigned integer, accepting any integer width (llama.cpp writes `u32`
    /// where the spec says `u64`) and non-negative signed values.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer, accepting any integer width that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::I8(v) => Some(v.into()),
            Self::I16(v) => Some(v.into()),
            Self::I32(v) => Some(v.into()),
            Self::I64(v) => Some(v),
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as `f32`, only if it is stored as `float32` (no silent narrowing).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Self::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a string slice.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&MetadataArray> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }
}

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

/// The parsed header, before it is tied to where the bytes live.
struct Header {
    version: u32,
    metadata: Vec<(String, MetadataValue)>,
    /// Positions in `metadata`, sorted by key.
    metadata_index: Vec<usize>,
    tensors: Vec<TensorInfo>,
    /// Positions in `tensors`, sorted by name.
    tensor_index: Vec<usize>,
    alignment: u64,
    data_offset: u64,
}

/// Why a header parse over a prefix of the file failed.
enum ParseFailure {
    /// The prefix ended but the file goes on: read more and retry.
    PrefixTooShort,
    /// The file is invalid.
    Invalid(Error),
}

impl From<Error> for ParseFailure {
    fn from(e: Error) -> Self {
        Self::Invalid(e)
    }
}

/// A bounds-checked little-endian cursor over a prefix of a file of `file_len` bytes.
#[derive(Clone)]
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    file_len: u64,
}

impl<'a> Cursor<'a> {
    fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes left in the file (not just in the prefix) after the cursor.
    fn remaining_in_file(&self) -> u64 {
        self.file_len.saturating_sub(self.pos as u64)
    }

    fn take(&mut self, n: u64, field: &dyn Fn() -> String) -> Result<&'a [u8], ParseFailure> {
        if n > self.remaining_in_file() {
            return Err(ParseFailure::Invalid(Error::gguf(
                field(),
                self.offset(),
                format!(
                    "needs {n} bytes but the file ends after {} more (file truncated?)",
                    self.remaining_in_file()
                ),
            )));
        }
        let n = n as usize;
        if self.pos + n > self.bytes.len() {
            return Err(ParseFailure::PrefixTooShort);
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(
        &mut self,
        field: &dyn Fn() -> String,
    ) -> Result<[u8; N], ParseFailure> {
        let s = self.take(N as u64, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn u32(&mut self, field: &dyn Fn() -> String) -> Result<u32, ParseFailure> {
        self.array(field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, field: &dyn Fn() -> String) -> Result<u64, ParseFailure> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// A count of items each at least `min_item` bytes long; rejected before any allocation if
    /// that many items cannot fit in what is left of the file.
    fn count(&mut self, min_item: u64, field: &dyn Fn() -> String) -> Result<u64, ParseFailure> {
        let at = self.offset();
        let n = self.u64(field)?;
        let fits = n.checked_mul(min_item).is_some_and(|need| need <= self.remaining_in_file());
        if !fits {
            return Err(Error::gguf(
                field(),
                at,
                format!(
                    "count {n} cannot fit in the {} bytes left in the file",
                    self.remaining_in_file()
                ),
            )
            .into());
        }
        Ok(n)
    }

    fn string(&mut self, field: &dyn Fn() -> String) -> Result<String, ParseFailure> {
        let at = self.offset();
        let len = self.count(1, field)?;
        let bytes = self.take(len, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            Error::gguf(field(), at, format!("string of {len} bytes is not valid UTF-8: {e}"))
                .into()
        })
    }

    fn value(
        &mut self,
        ty: ValueType,
        field: &dyn Fn() -> String,
    ) -> Result<MetadataValue, ParseFailure> {
        Ok(match ty {
            ValueType::U8 => MetadataValue::U8(self.array::<1>(field)?[0]),
            ValueType::I8 => MetadataValue::I8(i8::from_le_bytes(self.array(field)?)),
            ValueType::U16 => MetadataValue::U16(u16::from_le_bytes(self.array(field)?)),
            ValueType::I16 => MetadataValue::I16(i16::from_le_bytes(self.array(field)?)),
            ValueType::U32 => MetadataValue::U32(self.u32(field)?),
            ValueType::I32 => MetadataValue::I32(i32::from_le_bytes(self.array(field)?)),
            ValueType::F32 => MetadataValue::F32(f32::from_le_bytes(self.array(field)?)),
            ValueType::U64 => MetadataValue::U64(self.u64(field)?),
            ValueType::I64 => MetadataValue::I64(i64::from_le_bytes(self.array(field)?)),
            ValueType::F64 => MetadataValue::F64(f64::from_le_bytes(self.array(field)?)),
            ValueType::Bool => {
                let at = self.offset();
                MetadataValue::Bool(bool_byte(self.array::<1>(field)?[0], at, field)?)
            }
            ValueType::String => MetadataValue::String(self.string(field)?),
            ValueType::Array => MetadataValue::Array(self.metadata_array(field)?),
        })
    }

    /// An array value: element type tag, `u64` count, elements. The count is checked against
    /// the bytes left before anything is allocated, and each element takes in memory no more
    /// than it takes on disk, so the result never holds more bytes than the file.
    fn metadata_array(
        &mut self,
        field: &dyn Fn() -> String,
    ) -> Result<MetadataArray, ParseFailure> {
        let at = self.offset();
        let tag = self.u32(field)?;
        let elem_type = ValueType::from_tag(tag)
            .ok_or_else(|| Error::gguf(field(), at, format!("unknown array element type {tag}")))?;
        // llama.cpp's gguf.cpp rejects arrays of arrays too; accepting them would make this
        // reader accept files the reference implementation refuses.
        let nested = || Error::gguf(field(), at, "arrays of arrays are not supported");
        if elem_type == ValueType::Array {
            return Err(nested().into());
        }
        let n = self.count(elem_type.min_size(), field)?;
        // `count` proved n * min_size <= bytes left in the file, so n fits in usize whenever
        // those bytes are in memory; `take` below fails cleanly when they are not.
        let n_usize = usize::try_from(n).unwrap_or(usize::MAX);
        let fixed = |c: &mut Self, size: u64| c.take(n * size, field);
        Ok(match elem_type {
            ValueType::U8 => MetadataArray::U8(fixed(self, 1)?.to_vec()),
            ValueType::I8 => MetadataArray::I8(decode(fixed(self, 1)?, i8::from_le_bytes)),
            ValueType::U16 => MetadataArray::U16(decode(fixed(self, 2)?, u16::from_le_bytes)),
            ValueType::I16 => MetadataArray::I16(decode(fixed(self, 2)?, i16::from_le_bytes)),
            ValueType::U32 => MetadataArray::U32(decode(fixed(self, 4)?, u32::from_le_bytes)),
            ValueType::I32 => MetadataArray::I32(decode(fixed(self, 4)?, i32::from_le_bytes)),
            ValueType::F32 => MetadataArray::F32(decode(fixed(self, 4)?, f32::from_le_bytes)),
            ValueType::U64 => MetadataArray::U64(decode(fixed(self, 8)?, u64::from_le_bytes)),
            ValueType::I64 => MetadataArray::I64(decode(fixed(self, 8)?, i64::from_le_bytes)),
            ValueType::F64 => MetadataArray::F64(decode(fixed(self, 8)?, f64::from_le_bytes)),
            ValueType::Bool => {
                let start = self.offset();
                let bytes = fixed(self, 1)?;
                let mut out = Vec::with_capacity(n_usize);
                for (i, &b) in bytes.iter().enumerate() {
                    let elem_field = || format!("{}[{i}]", field());
                    out.push(bool_byte(b, start + i as u64, &elem_field)?);
                }
                MetadataArray::Bool(out)
            }
            ValueType::String => {
                // First pass: walk the length prefixes to size the text buffer exactly, so it
                // holds the strings' bytes and nothing more.
                let mut probe = self.clone();
                let mut text_len = 0usize;
                for i in 0..n {
                    let elem_field = || format!("{}[{i}]", field());
                    let len = probe.count(1, &elem_field)?;
                    text_len += probe.take(len, &elem_field)?.len();
                }
                let mut out = StringArray::with_capacity(n_usize, text_len);
                for i in 0..n {
                    let elem_field = || format!("{}[{i}]", field());
                    out.push(&self.string(&elem_field)?);
                }
                MetadataArray::String(out)
            }
            ValueType::Array => return Err(nested().into()),
        })
    }
}

/// Decodes a run of little-endian `N`-byte values; `bytes.len()` is a multiple of `N` by
/// construction (it was taken as count × N).
fn decode<const N: usize, T>(bytes: &[u8], from_le: fn([u8; N]) -> T) -> Vec<T> {
    let (chunks, _rest) = bytes.as_chunks::<N>();
    chunks.iter().map(|&c| from_le(c)).collect()
}

/// A GGUF bool: one byte that must be 0 or 1.
fn bool_byte(b: u8, at: u64, field: &dyn Fn() -> String) -> Result<bool, ParseFailure> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(Error::gguf(field(), at, format!("bool byte is {b}, not 0 or 1")).into()),
    }
}

/// Longest key or tensor name quoted whole in an error message.
const SHOWN_NAME_BYTES: usize = 128;

/// `name` as quoted in an error message: whole if short, else its start and its length. Keys
/// and names may be as long as the file, and an error message must not cost more memory than
/// the file it describes (formatting can reserve twice what it writes).
fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() <= SHOWN_NAME_BYTES {
        return name.into();
    }
    let start = &name[..name.floor_char_boundary(SHOWN_NAME_BYTES)];
    format!("{start}… ({} bytes)", name.len()).into()
}

/// How many of the `count` metadata entries that should follow `c` are there in full: a walk
/// over their lengths and type tags that allocates nothing (the cursor's errors are only built
/// on failure). UTF-8, bool bytes and repeated keys are left to the parse, which fails no later
/// than the walk.
fn skip_metadata(c: &mut Cursor<'_>, count: u64) -> usize {
    fn skip_value(c: &mut Cursor<'_>, ty: ValueType) -> Option<()> {
        let none = &String::new;
        match ty {
            ValueType::String => {
                let len = c.count(1, none).ok()?;
                c.take(len, none).ok()?;
            }
            ValueType::Array => {
                let elem = ValueType::from_tag(c.u32(none).ok()?)?;
                let n = c.count(elem.min_size(), none).ok()?;
                match elem {
                    ValueType::Array => return None,
                    ValueType::String => (0..n).try_for_each(|_| skip_value(c, elem))?,
                    fixed => {
                        c.take(n * fixed.min_size(), none).ok()?;
                    }
                }
            }
            // Every other type's smallest size is its size.
            fixed => {
                c.take(fixed.min_size(), none).ok()?;
            }
        }
        Some(())
    }
    let none = &String::new;
    let entry_ok = |c: &mut Cursor<'_>| {
        let mut entry = || {
            let key_len = c.count(1, none).ok()?;
            c.take(key_len, none).ok()?;
            let ty = ValueType::from_tag(c.u32(none).ok()?)?;
            skip_value(c, ty)
        };
        entry().is_some()
    };
    (0..count).take_while(|_| entry_ok(c)).count()
}

/// How many of the `count` tensor infos that should follow `c` are there in full (name, 1 to 4
/// dims, type, offset); a walk that allocates nothing, like [`skip_metadata`].
fn skip_tensor_infos(c: &mut Cursor<'_>, count: u64) -> usize {
    let none = &String::new;
    let info_ok = |c: &mut Cursor<'_>| {
        let mut info = || {
            let name_len = c.count(1, none).ok()?;
            c.take(name_len, none).ok()?;
            let n_dims = c.u32(none).ok()?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return None;
            }
            c.take(8 * u64::from(n_dims) + 4 + 8, none).ok()
        };
        info().is_some()
    };
    (0..count).take_while(|_| info_ok(c)).count()
}

/// Positions `0..items.len()` sorted by `key` (ties by position): a lookup index that stores
/// no key twice.
fn sorted_index<T>(items: &[T], key: impl Fn(&T) -> &String) -> Vec<usize> {
    let mut index: Vec<usize> = (0..items.len()).collect();
    index.sort_unstable_by(|&a, &b| key(&items[a]).cmp(key(&items[b])).then(a.cmp(&b)));
    index
}

/// The position of the first item, in file order, whose key repeats an earlier one's.
fn first_repeat<'a>(index: &[usize], key: impl Fn(usize) -> &'a String) -> Option<usize> {
    index.windows(2).filter(|p| key(p[0]) == key(p[1])).map(|p| p[1]).min()
}

/// Parses the header from `bytes`, a prefix of a file of `file_len` bytes.
fn parse_header(bytes: &[u8], file_len: u64) -> Result<Header, ParseFailure> {
    let mut c = Cursor { bytes, pos: 0, file_len };
    let magic = c.array::<4>(&|| "header.magic".into())?;
    if magic != GGUF_MAGIC {
        return Err(Error::gguf(
            "header.magic",
            0,
            format!("expected \"GGUF\" (47 47 55 46), found {:02x?}", magic),
        )
        .into());
    }
    let version = c.u32(&|| "header.version".into())?;
    if version != 2 && version != 3 {
        let hint = if version.swap_bytes() <= 3 { " (a big-endian file?)" } else { "" };
        return Err(Error::gguf(
            "header.version",
            4,
            format!("version {version} is not supported; supported: 2, 3{hint}"),
        )
        .into());
    }
    // Minimum on-disk sizes: a tensor info has a name length, n_dims, one dim, type and offset;
    // a metadata entry has a key length, a type tag and at least one value byte.
    let tensor_count = c.count(8 + 4 + 8 + 4 + 8, &|| "header.tensor_count".into())?;
    let kv_count = c.count(8 + 4 + 1, &|| "header.metadata_kv_count".into())?;

    // Reserve exactly one record per entry that is really there, counted by a walk that
    // allocates nothing: the parse below stops at the first entry the walk could not complete.
    // A record is larger than an entry's smallest size on disk, so a claimed count must not
    // size the vector, and a growing vector's slack and copies would cost more than the
    // records themselves.
    let metadata_start = c.offset();
    let present = skip_metadata(&mut c.clone(), kv_count);
    let mut metadata: Vec<(String, MetadataValue)> = Vec::with_capacity(present);
    for i in 0..kv_count {
        let key_at = c.offset();
        let key = c.string(&|| format!("metadata[{i}].key"))?;
        if key.is_empty() {
            return Err(Error::gguf(format!("metadata[{i}].key"), key_at, "key is empty").into());
        }
        let field = || format!("metadata '{}'", shown(&key));
        let tag_at = c.offset();
        let tag = c.u32(&field)?;
        let ty = ValueType::from_tag(tag)
            .ok_or_else(|| Error::gguf(field(), tag_at, format!("unknown value type {tag}")))?;
        let value = c.value(ty, &field)?;
        metadata.push((key, value));
    }
    // The lookup index: entry positions sorted by key, so each key is stored once. Sorting
    // also finds repeated keys, reported at the later entry.
    let metadata_index = sorted_index(&metadata, |(k, _)| k);
    if let Some(i) = first_repeat(&metadata_index, |i| &metadata[i].0) {
        let mut walk = Cursor { bytes, pos: metadata_start as usize, file_len };
        skip_metadata(&mut walk, i as u64);
        return Err(Error::gguf(
            format!("metadata[{i}].key"),
            walk.offset(),
            format!("duplicate key '{}'", shown(&metadata[i].0)),
        )
        .into());
    }

    let mut alignment = DEFAULT_ALIGNMENT;
    if let Some((_, v)) = metadata.iter().find(|(k, _)| k == "general.alignment") {
        match v {
            MetadataValue::U32(a) if *a != 0 && a.is_power_of_two() => alignment = u64::from(*a),
            other => {
                return Err(Error::gguf(
                    "metadata 'general.alignment'",
                    0,
                    format!("must be a non-zero power of two uint32, found {}", other.brief()),
                )
                .into());
            }
        }
    }

    // Reserved like the metadata records, for the same reasons.
    let tensors_start = c.offset();
    let present = skip_tensor_infos(&mut c.clone(), tensor_count);
    let mut tensors = Vec::with_capacity(present);
    for _ in 0..tensor_count {
        let name = c.string(&|| format!("tensor[{}].name", tensors.len()))?;
        let field = |part: &str| format!("tensor '{}'.{part}", shown(&name));
        let nd_at = c.offset();
        let n_dims = c.u32(&|| field("n_dims"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(Error::gguf(
                field("n_dims"),
                nd_at,
                format!("{n_dims} dimensions; must be 1 to {MAX_DIMS}"),
            )
            .into());
        }
        let dims_at = c.offset();
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.u64(&|| field("dims"))?);
        }
        let elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let elements = match elements {
            Some(e) if dims.iter().all(|&d| d > 0) => e,
            _ => {
                return Err(Error::gguf(
                    field("dims"),
                    dims_at,
                    format!("dims {dims:?} are zero or their product overflows"),
                )
                .into());
            }
        };
        let type_at = c.offset();
        let type_id = c.u32(&|| field("type"))?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| {
            let mut e = Error::UnsupportedTensorType {
                name: name.clone(),
                type_id,
                type_name: ggml_type_name(type_id),
            };
            if ggml_type_name(type_id) == "unknown" {
                e = Error::gguf(
                    field("type"),
                    type_at,
                    format!("unknown ggml type {type_id}; supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K"),
                );
            }
            e
        })?;
        if !dims[0].is_multiple_of(ggml_type.block_elements()) {
            return Err(Error::gguf(
                field("dims"),
                dims_at,
                format!(
                    "row length {} is not a multiple of the {} block size {}",
                    dims[0],
                    ggml_type.name(),
                    ggml_type.block_elements()
                ),
            )
            .into());
        }
        let size = (elements / ggml_type.block_elements())
            .checked_mul(ggml_type.block_bytes())
            .ok_or_else(|| Error::gguf(field("dims"), dims_at, "byte size overflows"))?;
        let off_at = c.offset();
        let offset = c.u64(&|| field("offset"))?;
        if !offset.is_multiple_of(alignment) {
            return Err(Error::gguf(
                field("offset"),
                off_at,
                format!("offset {offset} is not a multiple of the alignment {alignment}"),
            )
            .into());
        }
        tensors.push(TensorInfo { name, dims, ggml_type, offset, size });
    }
    let tensor_index = sorted_index(&tensors, |t| &t.name);
    if let Some(i) = first_repeat(&tensor_index, |i| &tensors[i].name) {
        let mut walk = Cursor { bytes, pos: tensors_start as usize, file_len };
        skip_tensor_infos(&mut walk, i as u64);
        return Err(Error::gguf(
            format!("tensor[{i}].name"),
            walk.offset(),
            format!("duplicate tensor name '{}'", shown(&tensors[i].name)),
        )
        .into());
    }

    let header_end = c.offset();
    let data_offset = header_end.div_ceil(alignment) * alignment;
    let data_len = if tensors.is_empty() { 0 } else { file_len.saturating_sub(data_offset) };
    if !tensors.is_empty() && data_offset > file_len {
        return Err(Error::gguf(
            "data section",
            header_end,
            format!("starts at {data_offset}, beyond the end of the {file_len}-byte file"),
        )
        .into());
    }
    // Every tensor must lie inside the data section, and no two may overlap.
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().collect();
    by_offset.sort_by_key(|t| (t.offset, t.size));
    let mut prev_end = 0u64;
    let mut prev_name = "";
    for t in by_offset {
        let end = t.offset.checked_add(t.size).filter(|&e| e <= data_len).ok_or_else(|| {
            Error::gguf(
                format!("tensor '{}'.offset", shown(&t.name)),
                data_offset + t.offset.min(data_len),
                format!(
                    "{} bytes at data offset {} run past the data section of {data_len} bytes",
                    t.size, t.offset
                ),
            )
        })?;
        if t.offset < prev_end {
            return Err(Error::gguf(
                format!("tensor '{}'.offset", shown(&t.name)),
                data_offset + t.offset,
                format!(
                    "overlaps tensor '{}', which ends at data offset {prev_end}",
                    shown(prev_name)
                ),
            )
            .into());
        }
        prev_end = end;
        prev_name = &t.name;
    }
    Ok(Header { version, metadata, metadata_index, tensors, tensor_index, alignment, data_offset })
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
