//! The crate's one error type.

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong running a worker node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kernel call, transaction or protocol rule failed.
    #[error(transparent)]
    Kernel(#[from] aik_kernel::Error),
    /// A protocol rule refused the prompt (its context does not fit, say).
    #[error(transparent)]
    Protocol(#[from] aik_protocol::Error),
    /// The model driver failed on a prompt or a model file.
    #[error(transparent)]
    Infer(#[from] aik_infer::Error),
    /// Fetching or verifying a model file failed.
    #[error(transparent)]
    Store(#[from] aik_store::Error),
    /// An RPC request failed (the node retries these with backoff).
    #[error(transparent)]
    Transport(#[from] alloy::transports::TransportError),
    /// The node's database failed.
    #[error("node database {path}: {reason}")]
    Database {
        /// The database file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The configuration is incomplete or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A model registered on chain cannot be served by this node.
    #[error("model {model_id}: {reason}")]
    Model {
        /// The model's id.
        model_id: u64,
        /// Why.
        reason: String,
    },
    /// A prompt this worker was assigned cannot be completed.
    #[error("prompt {prompt_id}: {reason}")]
    Prompt {
        /// The prompt.
        prompt_id: String,
        /// Why.
        reason: String,
    },
    /// A blocking task panicked or was cancelled.
    #[error("inference task for prompt {prompt_id} did not complete: {reason}")]
    Task {
        /// The prompt.
        prompt_id: String,
        /// The join error.
        reason: String,
    },
}

impl Error {
    /// Whether retrying later may succeed: transport failures and RPC errors, as opposed to a
    /// prompt the model cannot run or a model that cannot be loaded.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Transport(_)
                | Self::Kernel(
                    aik_kernel::Error::Transport(_)
                        | aik_kernel::Error::ReceiptTimeout { .. }
                        | aik_kernel::Error::Rejected { revert_data: None, .. }
                )
        )
    }
}
