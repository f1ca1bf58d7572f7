//! Writes the tiny generated Llama models checked against llama.cpp to a directory, for
//! `scripts/reference/llamacpp_tiny.py`, which runs them through llama.cpp (the test
//! `tests/it/quant_types.rs` rebuilds the same bytes and checks their sha256 against its JSON):
//!
//!     cargo run -p aik-infer --example tiny_models -- DIR

use aik_infer::fixture::{reference_models, tiny_llama_gguf};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: tiny_models DIR");
    std::fs::create_dir_all(&dir).expect("create the directory");
    for (name, spec) in reference_models() {
        let bytes = tiny_llama_gguf(&spec).expect("a tiny model");
        let path = std::path::Path::new(&dir).join(format!("tiny-{name}.gguf"));
        std::fs::write(&path, bytes).expect("write the model");
        println!("{}", path.display());
    }
}
