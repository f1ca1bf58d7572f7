//! Writes a seed corpus for the `cargo fuzz` target `gguf` (crates/infer/fuzz): small valid
//! GGUF files built with [`GgufWriter`] and the tiny-model fixture, so the fuzzer starts from
//! inputs that reach deep into the reader and the model loader.
//!
//! Usage, from the repository root:
//! `cargo run -p aik-infer --example gguf_fuzz_seeds -- crates/infer/fuzz/corpus/gguf`
//! (the corpus directory is git-ignored; the seeds are regenerated, never committed).

use aik_infer::fixture::{TinyLlamaSpec, tiny_llama_gguf};
use aik_infer::{GgmlType, GgufWriter, MetadataArray, MetadataValue};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: gguf_fuzz_seeds DIR")?);
    std::fs::create_dir_all(&dir)?;
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();

    // Tiny models the driver loads: every matrix type, tied and separate heads. Kept small (one
    // layer, width 32) so the fuzzer's inputs stay a few kilobytes.
    let small = TinyLlamaSpec {
        layers: 1,
        dim: 32,
        heads: 2,
        kv_heads: 1,
        ffn_dim: 32,
        context_length: 64,
        ..TinyLlamaSpec::default()
    };
    for (name, matrix_type, embedding_type, tied) in [
        ("model-q4_1-tied", GgmlType::Q4_1, GgmlType::Q8_0, true),
        ("model-q4_0-separate", GgmlType::Q4_0, GgmlType::Q8_0, false),
        ("model-q8_0-q4_1", GgmlType::Q8_0, GgmlType::Q4_1, true),
        ("model-f16-f32", GgmlType::F16, GgmlType::F32, false),
    ] {
        let spec = TinyLlamaSpec { matrix_type, embedding_type, tied, ..small.clone() };
        seeds.push((name.into(), tiny_llama_gguf(&spec)?));
    }

    // Every metadata value type, scalar and array, in a v2 and a v3 file with one tensor of
    // each supported type at a non-default alignment.
    for version in [2, 3] {
        let mut w = GgufWriter::new();
        w.version(version).alignment(64);
        w.metadata("u8", MetadataValue::U8(200))
            .metadata("i8", MetadataValue::I8(-3))
            .metadata("u16", MetadataValue::U16(60_000))
            .metadata("i16", MetadataValue::I16(-30_000))
            .metadata("u32", MetadataValue::U32(4_000_000_000))
            .metadata("i32", MetadataValue::I32(-2_000_000_000))
            .metadata("u64", MetadataValue::U64(u64::MAX))
            .metadata("i64", MetadataValue::I64(i64::MIN))
            .metadata("f32", MetadataValue::F32(1.5))
            .metadata("f64", MetadataValue::F64(-2.25))
            .metadata("bool", MetadataValue::Bool(true))
            .metadata("string", MetadataValue::String("héllo 😀".into()))
            .metadata("a.u8", MetadataValue::Array(MetadataArray::U8(vec![1, 2, 3])))
            .metadata("a.i8", MetadataValue::Array(MetadataArray::I8(vec![-1, 2])))
            .metadata("a.u16", MetadataValue::Array(MetadataArray::U16(vec![7, 8])))
            .metadata("a.i16", MetadataValue::Array(MetadataArray::I16(vec![-7])))
            .metadata("a.u32", MetadataValue::Array(MetadataArray::U32(vec![9, 10])))
            .metadata("a.i32", MetadataValue::Array(MetadataArray::i32s([1, 3, 6])))
            .metadata("a.u64", MetadataValue::Array(MetadataArray::U64(vec![u64::MAX])))
            .metadata("a.i64", MetadataValue::Array(MetadataArray::I64(vec![-5, 5])))
            .metadata("a.f32", MetadataValue::Array(MetadataArray::F32(vec![0.5, -0.0])))
            .metadata("a.f64", MetadataValue::Array(MetadataArray::F64(vec![1e300])))
            .metadata("a.bool", MetadataValue::Array(MetadataArray::Bool(vec![true, false])))
            .metadata("a.str", MetadataValue::Array(MetadataArray::strings(["a", "", "ü"])));
        w.tensor("f32", &[4], GgmlType::F32, vec![0; 16])?
            .tensor("f16", &[2, 2], GgmlType::F16, vec![0; 8])?
            .tensor("q4_0", &[32], GgmlType::Q4_0, vec![0; 18])?
            .tensor("q4_1", &[32], GgmlType::Q4_1, vec![0; 20])?
            .tensor("q8_0", &[32, 2], GgmlType::Q8_0, vec![0; 68])?;
        seeds.push((format!("all-types-v{version}"), w.to_bytes()?));
    }
    seeds.push(("empty-v3".into(), GgufWriter::new().to_bytes()?));

    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("{name}.gguf")), bytes)?;
    }
    Ok(())
}
