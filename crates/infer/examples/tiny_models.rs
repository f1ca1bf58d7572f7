//! Writes the tiny generated Llama models of every weight type the engine loads to a directory,
//! for `scripts/reference/llamacpp_tiny.py`, which runs them through llama.cpp (the test
//! `tests/it/quant_types.rs` rebuilds the same bytes and checks their sha256 against its JSON):
//!
//!     cargo run -p aik-infer --example tiny_models -- DIR

use aik_infer::{
    GgmlType,
    fixture::{TinyLlamaSpec, tiny_llama_gguf},
};

/// The weight types exercised end to end, by name; the spec is the default tiny model with every
/// matrix and the (tied) embedding of that type.
pub const TYPES: [GgmlType; 7] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q8_0,
];

fn main() {
    let dir = std::env::args().nth(1).expect("usage: tiny_models DIR");
    std::fs::create_dir_all(&dir).expect("create the directory");
    for ty in TYPES {
        let spec =
            TinyLlamaSpec { matrix_type: ty, embedding_type: ty, ..TinyLlamaSpec::default() };
        let bytes = tiny_llama_gguf(&spec).expect("a tiny model");
        let path = std::path::Path::new(&dir).join(format!("tiny-{}.gguf", ty.name()));
        std::fs::write(&path, bytes).expect("write the model");
        println!("{}", path.display());
    }
}
