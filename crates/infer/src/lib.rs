//! Deterministic LLM inference: the model space of AI Kernel.
//!
//! Turns a GGUF model file, a chat context, an output format and sampling parameters into output
//! bytes that are bit-identical on every CPU, thread count and code path (scalar or SIMD), so
//! that any node can verify another's answer by re-running it. Knows nothing of chains.
//!
//! # Reading model files
//!
//! [`Gguf`] is a strict GGUF v2/v3 reader: [`Gguf::open`] (header only; tensor bytes on demand
//! through [`Gguf::tensor_data`]) or [`Gguf::read`] (a file in memory). Metadata is reached with
//! [`Gguf::metadata`] (raw [`MetadataValue`]) or the typed accessors [`Gguf::get_str`],
//! [`Gguf::get_u64`], [`Gguf::get_f32`], [`Gguf::get_bool`], [`Gguf::get_str_array`] and
//! [`Gguf::get_i64_array`], which name the key in their errors. [`GgufWriter`] builds files for
//! tests.
//!
//! # Text in, text out
//!
//! [`Tokenizer`] is the model's GPT-2 byte-level BPE, built from GGUF metadata
//! ([`Tokenizer::from_gguf`]); [`ChatTemplate`] renders the model's own chat template over
//! [`Message`]s. [`ChatTemplate::encode`] turns a conversation into model input: the template's
//! special-token text becomes control tokens, message contents never do.
//!
//! # Running a model
//!
//! [`ModelDriver`] is the interface nodes and verifiers use (a conversation's token count and
//! the context length for context assembly, and running a request); [`LlamaGgufDriver`]
//! implements `gguf/1`: [`LlamaGgufDriver::load`] a file, [`ModelDriver::run`] a [`Request`] (messages,
//! [`OutputFormat`], [`Sampling`], max tokens) into an [`Output`]: the canonical answer bytes
//! (DESIGN §5.3), token ids, and the sha256 of every step's logits. Below it, [`LlamaModel`]
//! holds repacked weights and a [`Session`] runs forward passes over a KV cache with
//! [`ExecOptions`] (threads, [`Backend`]) that never change a result bit.
//!
//! # The numerics (`gguf/1`, formerly `llama-gguf/1`)
//!
//! Activations are quantized per 32-block to 8 bits (round ties to even); each output row sums
//! exact integer block dot products scaled in one fixed order with plain mul then add; SIMD and
//! threads work across rows (weights are repacked so 8 rows interleave), never along a float sum
//! (F32/F16 matrices: one ascending float sum per block, on the scalar kernel everywhere);
//! RMSNorm and softmax use one fixed 8-stripe sum shape; `exp`, `sin` and `cos` are built from
//! basic IEEE operations ([`math`]); RoPE rotates adjacent pairs. The scalar [`Backend::Scalar`]
//! is the reference and is selected with `AIK_INFER_SCALAR=1`; the AVX2 kernels are proven
//! byte-equal to it by the tests. NaN or infinity in logits is an error.

mod chat;
mod driver;
mod error;
mod eval;
pub mod fixture;
pub mod gguf;
mod kernels;
pub mod math;
mod model;
mod paths;
mod pool;
pub mod quant;
mod sampling;
mod tokenizer;

/// Chat messages, output formats and the decoding rule are protocol types (`aik-protocol`), so
/// what a worker runs is what the kernel recorded, with no conversion between twins.
pub use aik_protocol::{
    Message, OutputFormat, OutputValue, PromptLayout, Role, SamplingSpec, plain_text,
};
pub use chat::{ChatTemplate, RenderedPrompt};
pub use driver::{LlamaGgufDriver, ModelDriver, Output, Request, StopReason};
pub use error::{Error, Result};
pub use eval::{Perplexity, perplexity};
pub use gguf::{
    GgmlType, Gguf, GgufWriter, MetadataArray, MetadataValue, StringArray, TensorInfo, ValueType,
};
pub use kernels::Backend;
pub use model::{Arch, ExecOptions, LlamaConfig, LlamaModel, Logits, Session};
pub use paths::{
    DEFAULT_MODEL_FILE, DEFAULT_MODEL_LEN, DEFAULT_MODEL_SHA256, GEMMA3_270M_FILE, GEMMA3_270M_LEN,
    GEMMA3_270M_SHA256, aik_home, default_model_path, model_path,
};
pub use sampling::Sampling;
pub use tokenizer::{PreTokenizerKind, TokenType, Tokenizer, TokenizerModel, TokenizerParts};
