//! The crate's error type.

use alloy::primitives::{Address, Bytes, U256};

/// Everything that can go wrong in the dev chain, from a bad config to a rejected transaction.
///
/// The JSON-RPC layer maps each variant to the code and message Ethereum clients expect (see
/// `rpc::api::to_rpc_error`), so the messages follow geth's wording where clients match on it
/// ("nonce too low", "insufficient funds", "intrinsic gas too low", "execution reverted").
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot describe a chain (zero accounts, unknown hardfork, …).
    #[error("invalid devnet config: {0}")]
    Config(String),
    /// Binding or serving the JSON-RPC socket failed.
    #[error("server I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The embedded database under `--state-dir` failed or holds data this version cannot read.
    #[error("state database error: {0}")]
    Store(String),
    /// The raw transaction bytes do not decode as an EIP-2718 envelope.
    #[error("failed to decode transaction: {0}")]
    TxDecode(String),
    /// The transaction's signature does not recover to an address.
    #[error("invalid transaction signature: {0}")]
    TxSignature(String),
    /// The transaction names another chain.
    #[error("invalid chain id: transaction has {got}, chain is {expected}")]
    ChainId {
        /// Chain id in the transaction.
        got: u64,
        /// This chain's id.
        expected: u64,
    },
    /// The transaction nonce is below the sender's next nonce.
    #[error("nonce too low: next nonce {state}, tx nonce {tx}")]
    NonceTooLow {
        /// Nonce in the transaction.
        tx: u64,
        /// The account's next nonce.
        state: u64,
    },
    /// The transaction nonce skips ahead of the sender's next nonce (auto-mining only).
    #[error("nonce too high: next nonce {state}, tx nonce {tx}")]
    NonceTooHigh {
        /// Nonce in the transaction.
        tx: u64,
        /// The account's next nonce.
        state: u64,
    },
    /// The sender cannot pay `gas * price + value`.
    #[error(
        "insufficient funds for gas * price + value: address {address} have {balance} want {cost}"
    )]
    InsufficientFunds {
        /// The sender.
        address: Address,
        /// Its balance.
        balance: U256,
        /// What the transaction may cost at most.
        cost: U256,
    },
    /// The gas limit does not cover the intrinsic cost (21000 + calldata + …).
    #[error("intrinsic gas too low: have {gas_limit}, want {intrinsic}")]
    IntrinsicGasTooLow {
        /// Gas limit of the transaction.
        gas_limit: u64,
        /// Gas the transaction needs before executing any code.
        intrinsic: u64,
    },
    /// The gas limit is above the block gas limit.
    #[error("exceeds block gas limit: tx gas {gas_limit}, block gas limit {block_gas_limit}")]
    GasLimitTooHigh {
        /// Gas limit of the transaction.
        gas_limit: u64,
        /// The block gas limit.
        block_gas_limit: u64,
    },
    /// The fee cap is below the block's base fee.
    #[error("max fee per gas less than block base fee: maxFeePerGas {max_fee}, baseFee {base_fee}")]
    FeeCapTooLow {
        /// The transaction's fee cap.
        max_fee: u128,
        /// The base fee of the block it would go into.
        base_fee: u64,
    },
    /// Any other validity rule revm enforces (tx type not active in this hardfork, …).
    #[error("invalid transaction: {0}")]
    InvalidTransaction(String),
    /// The call reverted; `data` holds the revert bytes (ABI-encoded error).
    #[error("execution reverted{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Reverted {
        /// Decoded `Error(string)` reason, if the data is one.
        reason: Option<String>,
        /// Raw revert data.
        data: Bytes,
    },
    /// The call halted (out of gas, invalid opcode, …).
    #[error("{0}")]
    Halted(String),
    /// `eth_sendTransaction` from an address whose key this node does not hold.
    #[error("unknown account {0}: eth_sendTransaction only signs for the dev accounts")]
    UnknownAccount(Address),
    /// A block number, hash or tag that names no block of this chain.
    #[error("unknown block: {0}")]
    UnknownBlock(String),
    /// A query for state at a block older than the latest one.
    #[error(
        "historical state is not kept: state queries accept the latest block only, got block {requested} (latest {latest})"
    )]
    HistoricalState {
        /// The block asked for.
        requested: u64,
        /// The latest block.
        latest: u64,
    },
    /// A request parameter that is well-formed JSON but not a valid value.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// Unknown `evm_revert` snapshot id or filter id.
    #[error("{0}")]
    NotFound(String),
    /// The EVM failed for a reason that is not the transaction's fault.
    #[error("EVM error: {0}")]
    Evm(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<redb::Error> for Error {
    fn from(err: redb::Error) -> Self {
        Self::Store(err.to_string())
    }
}

macro_rules! store_errors {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Error {
            fn from(err: $ty) -> Self {
                Self::Store(err.to_string())
            }
        }
    )*};
}
store_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
