//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model or running inference.
///
/// Messages name what was wrong and with which value, so that a node operator can tell a bad
/// model file from a bad request without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the model file failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// Reading a named file failed.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file that could not be read.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The GGUF file is malformed: `field` at byte `offset` is wrong for the given reason.
    #[error("GGUF {field} at offset {offset}: {reason}")]
    Gguf {
        /// Which part of the file (e.g. `header.version`, `metadata[3].key`, `tensor 'x'.dims`).
        field: String,
        /// Byte offset of that field in the file.
        offset: u64,
        /// What is wrong with it, including the offending value.
        reason: String,
    },

    /// A tensor uses a type this engine does not implement.
    #[error(
        "tensor '{name}' has ggml type {type_id} ({type_name}); supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K"
    )]
    UnsupportedTensorType {
        /// Tensor name.
        name: String,
        /// The numeric ggml type id found in the file.
        type_id: u32,
        /// Its conventional name, or `unknown`.
        type_name: &'static str,
    },

    /// A metadata key the model needs is absent.
    #[error("GGUF metadata key '{key}' is missing")]
    MissingMetadata {
        /// The key that was looked up.
        key: String,
    },

    /// A metadata key has a type other than the one needed.
    #[error("GGUF metadata key '{key}' has type {found}, expected {expected}")]
    MetadataType {
        /// The key that was looked up.
        key: String,
        /// What the caller needed.
        expected: &'static str,
        /// What the file holds.
        found: String,
    },

    /// The model's tensors or hyperparameters are inconsistent or unsupported.
    #[error("invalid model: {0}")]
    InvalidModel(String),

    /// The tokenizer data is unusable or a text cannot be tokenized.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// The chat template cannot be rendered.
    #[error("chat template: {0}")]
    ChatTemplate(String),

    /// A request (messages, format, sampling, limits) is invalid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// A forward pass produced NaN or infinity; the run is aborted because such values have no
    /// canonical bytes and would make the logits hash platform dependent.
    #[error("non-finite logit {value} at position {position}, index {index}")]
    NonFinite {
        /// Token position in the context.
        position: usize,
        /// Vocabulary index of the bad logit.
        index: usize,
        /// The value (NaN or ±inf), as printed.
        value: f32,
    },

    /// The context would exceed the model's (or the configured) context length.
    #[error("context length exceeded: need {needed} positions, limit is {limit}")]
    ContextFull {
        /// Positions the request needs.
        needed: usize,
        /// The limit.
        limit: usize,
    },

    /// Constrained decoding reached a state where no token can continue a valid output.
    #[error("constrained output '{format}' cannot be completed: {reason}")]
    Constraint {
        /// The format, as written.
        format: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Shorthand for a [`Error::Gguf`] at `offset`.
    pub(crate) fn gguf(field: impl Into<String>, offset: u64, reason: impl Into<String>) -> Self {
        Self::Gguf { field: field.into(), offset, reason: reason.into() }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
