//! Deterministic LLM inference: the model space of AI Kernel.
//!
//! Turns a GGUF model file, a chat context, an output format and sampling parameters into output
//! bytes that are bit-identical on every CPU, thread count and code path (scalar or SIMD), so
//! that any node can verify another's answer by re-running it. Knows nothing of chains.

mod error;
pub use error::{Error, Result};
