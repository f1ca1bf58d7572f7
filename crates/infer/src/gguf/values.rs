//! Metadata values as the file holds them: typed scalars, strings and arrays that take in memory
//! what they take on disk.

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
    pub(super) fn min_size(self) -> u64 {
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
