//! Integration tests of `aik-infer`: one binary, one module per area.

mod chat;
mod common;
mod forward;
mod gguf;
mod llamacpp;
mod tokenizer;
