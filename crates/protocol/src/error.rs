//! Errors of the protocol rules.

use crate::Failure;

/// What went wrong applying a protocol rule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Output bytes or text are not a value the format allows.
    #[error("invalid {format} output: {reason}")]
    InvalidOutput {
        /// The format the output was read as.
        format: &'static str,
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// Format options do not fit the format kind, or cannot be answered.
    #[error("invalid format options: {reason}")]
    InvalidFormat {
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// A format tag outside the contracts' `FormatKind` enum.
    #[error("unknown format kind {0}")]
    UnknownFormatKind(u8),
    /// A format spec (`choice(a|b)`, `uint(0,9)`, …) that does not parse.
    #[error("output format '{spec}': {reason}")]
    InvalidSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A chat role name other than `system`, `user` or `assistant`.
    #[error("unknown role '{0}' (expected system, user or assistant)")]
    UnknownRole(String),
    /// The prompt cannot run on any honest worker; the committee answers with `failure`.
    #[error("prompt {prompt_id} cannot run ({failure}): {reason}")]
    PromptFailure {
        /// The prompt.
        prompt_id: String,
        /// The canonical failure answer.
        failure: Failure,
        /// The details.
        reason: String,
    },
}

/// Result of the protocol rules.
pub type Result<T> = std::result::Result<T, Error>;
