//! The crate's error type.

/// Everything that can go wrong while loading a model or running inference.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the model file failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
