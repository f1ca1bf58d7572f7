//! `aik-devnet`: an embedded Ethereum dev chain (revm) with a JSON-RPC server that real clients
//! (alloy, ethers.js, viem) accept. Everything in AI Kernel runs on it by default: contract
//! tests, worker nodes, `aik up`. It knows nothing of AI; production uses any EVM chain through
//! the same JSON-RPC, so nothing may depend on the chain being this one.
//!
//! What it is: chain id 31337, the `test … junk` mnemonic with 10 prefunded accounts (10,000
//! ETH each, the Hardhat/Anvil addresses), Prague rules, one block per transaction (or a block
//! interval), geth-shaped errors (reverts as code 3 with the revert data), `eth_subscribe`,
//! filters, batches, `evm_*` test helpers, and optional persistence in a redb database.
//! What it is not: a full node. No peers, no blobs, state only at the latest block.
//!
//! # Start a chain in-process
//!
//! [`Devnet::spawn`] with [`DevnetConfig::test`] (a free port, in memory) gives a handle with
//! the URLs and the dev accounts' signers; dropping the handle (or [`Devnet::shutdown`]) stops it.
//!
//! ```
//! use aik_devnet::{Devnet, DevnetConfig};
//! use alloy::{
//!     network::{EthereumWallet, TransactionBuilder},
//!     primitives::U256,
//!     providers::{Provider, ProviderBuilder},
//!     rpc::types::TransactionRequest,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let devnet = Devnet::spawn(DevnetConfig::test()).await?;
//! let alice = devnet.accounts()[0].clone();
//! let bob = devnet.accounts()[1].address;
//! let provider = ProviderBuilder::new()
//!     .wallet(EthereumWallet::from(alice.signer))
//!     .connect_http(devnet.http_url().parse()?);
//!
//! let tx = TransactionRequest::default().with_to(bob).with_value(U256::from(1_000));
//! let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
//! assert!(receipt.status());
//! assert_eq!(provider.get_block_number().await?, 1); // one block per transaction
//! devnet.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Contract tests deploy with `sol!`-generated bindings through the same provider; a reverting
//! call surfaces as an alloy `RpcError::ErrorResp` with code 3 whose `as_revert_data()` holds
//! the ABI-encoded error (`as_decoded_interface_error::<MyContract::MyContractErrors>()` on a
//! contract error). `evm_increaseTime`, `evm_mine`, `evm_setNextBlockTimestamp`, `hardhat_mine`,
//! `evm_snapshot` and `evm_revert` are available through `provider.raw_request(...)`.
//!
//! Things clients cache: after `evm_revert` nonces go back, so build a fresh alloy provider
//! (its wallet filler caches nonces); ethers v6 answers identical calls from a 250 ms cache, so
//! give `JsonRpcProvider` `cacheTimeout: -1` when sending faster than that.
//!
//! # Layout
//!
//! - `chain`: the backend: revm execution (`exec`), blocks, receipts, mining, snapshots, and
//!   the redb persistence (`store`). No JSON, no sockets.
//! - `rpc`: JSON-RPC 2.0 wire types (`wire`), method dispatch and error mapping, conversion to
//!   the alloy RPC types (`convert`), polling filters (`filters`).
//! - `server`: axum HTTP + WebSocket transport; `node`: the [`Devnet`] handle tying them up.

mod accounts;
mod chain;
mod config;
mod error;
mod node;
mod rpc;
mod server;

pub use accounts::{DevAccount, derive_dev_accounts};
pub use config::{
    DEFAULT_CHAIN_ID, DEFAULT_GAS_LIMIT, DEV_MNEMONIC, DevnetConfig, Hardfork, INITIAL_BASE_FEE,
};
pub use error::{Error, Result};
pub use node::Devnet;
