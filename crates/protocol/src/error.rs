//! Errors of the protocol rules.

/// What went wrong decoding protocol values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Output bytes are not the canonical encoding of a value the format allows.
    #[error("invalid {format} output: {reason}")]
    InvalidOutput {
        /// The format the bytes were read as.
        format: &'static str,
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// Format options do not fit the format kind.
    #[error("invalid format options: {reason}")]
    InvalidFormat {
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// A format tag outside the contracts' `FormatKind` enum.
    #[error("unknown format kind {0}")]
    UnknownFormatKind(u8),
}

/// Result of the protocol rules.
pub type Result<T> = std::result::Result<T, Error>;
