//! Integration tests of `aik-infer`: one binary, one module per area.

mod common;
mod forward;
mod gguf;
