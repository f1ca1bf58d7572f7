//! Integration tests of `aik-infer`: one binary, one module per area.

mod chat;
mod common;
mod conformance;
mod driver;
mod forward;
mod gemma3;
mod gguf;
mod gguf_alloc;
mod gguf_fuzz;
mod llamacpp;
mod perplexity;
mod quant_types;
mod tokenizer;
