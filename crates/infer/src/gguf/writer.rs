//! A GGUF writer, so tests can build model files in code instead of shipping blobs.

use super::{DEFAULT_ALIGNMENT, GGUF_MAGIC, GgmlType, MetadataArray, MetadataValue};
use crate::{Error, Result};

/// Builds a GGUF file in memory: metadata in insertion order, tensors in insertion order, each
/// tensor aligned to the file's alignment.
#[derive(Debug)]
pub struct GgufWriter {
    version: u32,
    alignment: u64,
    metadata: Vec<(String, MetadataValue)>,
    tensors: Vec<PendingTensor>,
}

#[derive(Debug)]
struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    data: Vec<u8>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// An empty version-3 file with the default alignment of 32.
    pub fn new() -> Self {
        Self { version: 3, alignment: DEFAULT_ALIGNMENT, metadata: Vec::new(), tensors: Vec::new() }
    }

    /// Sets the format version written in the header (the reader accepts 2 and 3).
    pub fn version(&mut self, version: u32) -> &mut Self {
        self.version = version;
        self
    }

    /// Sets the alignment and records it as `general.alignment` (must be a power of two).
    pub fn alignment(&mut self, alignment: u32) -> &mut Self {
        self.alignment = u64::from(alignment.max(1));
        self.metadata.retain(|(k, _)| k != "general.alignment");
        self.metadata.push(("general.alignment".into(), MetadataValue::U32(alignment)));
        self
    }

    /// Adds (or replaces) a metadata entry.
    pub fn metadata(&mut self, key: impl Into<String>, value: MetadataValue) -> &mut Self {
        let key = key.into();
        if let Some(slot) = self.metadata.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.metadata.push((key, value));
        }
        self
    }

    /// Adds a tensor of a supported type; `data` must be exactly the size its dims imply.
    pub fn tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ggml_type: GgmlType,
        data: Vec<u8>,
    ) -> Result<&mut Self> {
        let name = name.into();
        let elements: u64 = dims.iter().product();
        let bad = || Error::InvalidModel(format!("writer: tensor '{name}' dims {dims:?}"));
        if dims.is_empty() || !dims[0].is_multiple_of(ggml_type.block_elements()) {
            return Err(bad());
        }
        let size = elements / ggml_type.block_elements() * ggml_type.block_bytes();
        if size != data.len() as u64 {
            return Err(Error::InvalidModel(format!(
                "writer: tensor '{name}' of type {} and dims {dims:?} needs {size} bytes, got {}",
                ggml_type.name(),
                data.len()
            )));
        }
        self.tensor_raw(name, dims, ggml_type.id(), data)
    }

    /// Adds a tensor with any type id and unchecked data, to build files the reader must reject.
    pub fn tensor_raw(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        type_id: u32,
        data: Vec<u8>,
    ) -> Result<&mut Self> {
        self.tensors.push(PendingTensor { name: name.into(), dims: dims.to_vec(), type_id, data });
        Ok(self)
    }

    /// Serializes the file.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(&GGUF_MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            write_string(&mut out, key);
            out.extend_from_slice(&value.value_type().tag().to_le_bytes());
            write_value(&mut out, value);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            write_string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.type_id.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + t.data.len() as u64).div_ceil(self.alignment) * self.alignment;
        }
        if !self.tensors.is_empty() {
            pad_to(&mut out, self.alignment);
            let data_start = out.len() as u64;
            for (t, off) in self.tensors.iter().zip(offsets) {
                out.resize((data_start + off) as usize, 0);
                out.extend_from_slice(&t.data);
            }
        }
        Ok(out)
    }
}

fn pad_to(out: &mut Vec<u8>, alignment: u64) {
    let len = (out.len() as u64).div_ceil(alignment) * alignment;
    out.resize(len as usize, 0);
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, value: &MetadataValue) {
    match value {
        MetadataValue::U8(v) => out.push(*v),
        MetadataValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::Bool(v) => out.push(u8::from(*v)),
        MetadataValue::String(s) => write_string(out, s),
        MetadataValue::Array(a) => write_array(out, a),
    }
}

fn write_array(out: &mut Vec<u8>, array: &MetadataArray) {
    fn each<T: Copy, const N: usize>(out: &mut Vec<u8>, v: &[T], to_le: fn(T) -> [u8; N]) {
        for &x in v {
            out.extend_from_slice(&to_le(x));
        }
    }
    out.extend_from_slice(&array.elem_type().tag().to_le_bytes());
    out.extend_from_slice(&(array.len() as u64).to_le_bytes());
    match array {
        MetadataArray::U8(v) => out.extend_from_slice(v),
        MetadataArray::I8(v) => each(out, v, i8::to_le_bytes),
        MetadataArray::U16(v) => each(out, v, u16::to_le_bytes),
        MetadataArray::I16(v) => each(out, v, i16::to_le_bytes),
        MetadataArray::U32(v) => each(out, v, u32::to_le_bytes),
        MetadataArray::I32(v) => each(out, v, i32::to_le_bytes),
        MetadataArray::U64(v) => each(out, v, u64::to_le_bytes),
        MetadataArray::I64(v) => each(out, v, i64::to_le_bytes),
        MetadataArray::F32(v) => each(out, v, f32::to_le_bytes),
        MetadataArray::F64(v) => each(out, v, f64::to_le_bytes),
        MetadataArray::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        MetadataArray::String(v) => v.iter().for_each(|s| write_string(out, s)),
    }
}
