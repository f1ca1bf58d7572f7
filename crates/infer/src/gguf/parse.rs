//! Parsing a header: the bounds-checked cursor, the non-allocating walks that size what is kept,
//! and every check that makes two nodes accept and reject the same files.

use super::{
    DEFAULT_ALIGNMENT, GGUF_MAGIC, GgmlType, MAX_DIMS, MetadataArray, MetadataValue, StringArray,
    TensorInfo, ValueType, ggml_type_name,
};
use crate::{Error, Result};

/// The parsed header, before it is tied to where the bytes live.
pub(super) struct Header {
    pub(super) version: u32,
    pub(super) metadata: Vec<(String, MetadataValue)>,
    /// Positions in `metadata`, sorted by key.
    pub(super) metadata_index: Vec<usize>,
    pub(super) tensors: Vec<TensorInfo>,
    /// Positions in `tensors`, sorted by name.
    pub(super) tensor_index: Vec<usize>,
    pub(super) alignment: u64,
    pub(super) data_offset: u64,
}

/// Why a header parse over a prefix of the file failed.
pub(super) enum ParseFailure {
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
pub(super) fn parse_header(bytes: &[u8], file_len: u64) -> Result<Header, ParseFailure> {
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
