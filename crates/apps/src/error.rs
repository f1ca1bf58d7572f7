//! The crate's error type.

use alloy::primitives::U256;

/// What can go wrong running a demo.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No demo has this name.
    #[error("unknown demo {name:?}; the demos are: {known}")]
    UnknownDemo {
        /// The name asked for.
        name: String,
        /// The names there are, comma-separated.
        known: String,
    },
    /// A kernel call failed (RPC, revert, decoding).
    #[error(transparent)]
    Kernel(#[from] aik_kernel::Error),
    /// A transaction to an example contract was rejected or reverted.
    #[error("{action} failed: {reason}")]
    Rejected {
        /// What the demo was doing.
        action: String,
        /// The node's or the contract's reason.
        reason: String,
    },
    /// A JSON-RPC request failed.
    #[error("rpc: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    /// A prompt did not end within the demo's timeout.
    #[error("prompt {prompt_id} did not finish within {seconds} s (are workers running?)")]
    Timeout {
        /// The prompt.
        prompt_id: U256,
        /// How long the demo waited.
        seconds: u64,
    },
    /// The contract's state after the answer is not what the answer called for.
    #[error("{demo}: the answer called for {expected}, but the chain shows {found}")]
    EffectMismatch {
        /// The demo.
        demo: &'static str,
        /// What the answer called for.
        expected: String,
        /// What the chain shows.
        found: String,
    },
    /// A log or value the demo needs is missing or malformed.
    #[error("unexpected {what}: {detail}")]
    Unexpected {
        /// What was read.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
