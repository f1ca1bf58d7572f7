//! The crate's one error type.

use alloy::{
    primitives::{Address, B256, Bytes, TxHash, U256},
    sol_types::SolInterface,
};

use crate::bindings::{
    ContextManager, DecentralizedInference, EAI, GPUManagement, KernelTimelock, ModelFileSystem,
    PromptScheduler,
};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to the kernel or applying its protocol rules.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call or transaction was rejected by the node before it was mined: most often a revert
    /// during gas estimation, whose decoded custom error is in `reason`.
    #[error("{action} failed: {reason}")]
    Rejected {
        /// What the SDK was doing (e.g. `infer`, `commit`).
        action: &'static str,
        /// The decoded custom error (`DecentralizedInferenceFeeTooLow { paid: 1, fee: 2 }`), or
        /// the transport error when there is no revert data.
        reason: String,
        /// The raw revert data, when the node returned some.
        revert_data: Option<Bytes>,
    },
    /// A transaction was mined but reverted.
    #[error("{action} reverted in transaction {tx}")]
    Reverted {
        /// What the SDK was doing.
        action: &'static str,
        /// The transaction.
        tx: TxHash,
    },
    /// No receipt appeared in time.
    #[error("no receipt for {action} transaction {tx} after {seconds} s")]
    ReceiptTimeout {
        /// What the SDK was doing.
        action: &'static str,
        /// The transaction.
        tx: TxHash,
        /// How long it waited.
        seconds: u64,
    },
    /// The receipt lacks an event the contract always emits on success.
    #[error("{action}: transaction {tx} has no {event} event")]
    MissingEvent {
        /// What the SDK was doing.
        action: &'static str,
        /// The event that should be there.
        event: &'static str,
        /// The transaction.
        tx: TxHash,
    },
    /// An RPC request failed.
    #[error(transparent)]
    Transport(#[from] alloy::transports::TransportError),
    /// Prompt data held in storage could not be read or fetched.
    #[error(transparent)]
    Store(#[from] aik_store::Error),
    /// A prompt's input or extra context is held in storage and could not be read: not in the
    /// store, not fetchable, or other bytes under its name. It may become readable later (a
    /// worker retries until its commit deadline).
    #[error(
        "the {what} of prompt {prompt_id} is held in storage (sha256 {digest}, {length} bytes) and cannot be read: {reason}"
    )]
    DataUnavailable {
        /// Input or extra context.
        what: &'static str,
        /// The prompt.
        prompt_id: U256,
        /// sha256 of the data.
        digest: B256,
        /// Its length in bytes.
        length: u64,
        /// Why it could not be read.
        reason: String,
    },
    /// A protocol value (format options, output bytes) does not decode.
    #[error(transparent)]
    Protocol(#[from] aik_protocol::Error),
    /// An argument is out of the range the contracts accept.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// An owner action went into the deployment's timelock and waits for its delay: the same
    /// call made again once `ready_at` has passed executes it.
    #[error(
        "{action} is scheduled in the timelock {timelock} as operation {operation}; it can run from unix time {ready_at}: make the same call again then to execute it"
    )]
    Timelocked {
        /// The owner action.
        action: &'static str,
        /// The timelock that owns the kernel.
        timelock: Address,
        /// The operation id (`hashOperation`).
        operation: B256,
        /// When it becomes executable (seconds).
        ready_at: u64,
    },
    /// A value read from the chain does not fit the type the SDK expects (e.g. an unknown enum
    /// tag): the contracts and the SDK disagree.
    #[error("unexpected {what} from the chain: {value}")]
    UnexpectedValue {
        /// What was read.
        what: &'static str,
        /// The value.
        value: String,
    },
}

impl Error {
    /// Wraps an alloy contract error, decoding the kernel's custom errors from its revert data.
    pub(crate) fn contract(action: &'static str, err: alloy::contract::Error) -> Self {
        let revert_data = err.as_revert_data();
        let reason = revert_data
            .as_ref()
            .and_then(|data| decode_revert(data))
            .unwrap_or_else(|| err.to_string());
        Self::Rejected { action, reason, revert_data }
    }

    /// The raw revert data of a rejected call, if the node returned any.
    pub fn revert_data(&self) -> Option<&Bytes> {
        match self {
            Self::Rejected { revert_data, .. } => revert_data.as_ref(),
            _ => None,
        }
    }

    /// The revert decoded as one of `E`'s errors (e.g.
    /// `DecentralizedInference::DecentralizedInferenceErrors`), for matching on exact values.
    pub fn decode_revert<E: SolInterface>(&self) -> Option<E> {
        self.revert_data().and_then(|data| E::abi_decode(data).ok())
    }
}

/// Names a revert of any kernel contract: the custom error with its values, or `Error(string)`.
pub fn decode_revert(data: &[u8]) -> Option<String> {
    fn try_decode<E: SolInterface + std::fmt::Debug>(data: &[u8]) -> Option<String> {
        E::abi_decode(data).ok().map(|e| format!("{e:?}"))
    }
    try_decode::<DecentralizedInference::DecentralizedInferenceErrors>(data)
        .or_else(|| try_decode::<GPUManagement::GPUManagementErrors>(data))
        .or_else(|| try_decode::<ModelFileSystem::ModelFileSystemErrors>(data))
        .or_else(|| try_decode::<ContextManager::ContextManagerErrors>(data))
        .or_else(|| try_decode::<PromptScheduler::PromptSchedulerErrors>(data))
        .or_else(|| try_decode::<EAI::EAIErrors>(data))
        .or_else(|| try_decode::<KernelTimelock::KernelTimelockErrors>(data))
        .or_else(|| {
            <alloy::sol_types::Revert as alloy::sol_types::SolError>::abi_decode(data)
                .ok()
                .map(|r| format!("Error({:?})", r.reason))
        })
}
