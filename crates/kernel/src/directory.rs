//! The kernel directory: finding a deployment from a chain's RPC URL alone.
//!
//! `KernelDirectory` has no constructor arguments and is deployed through the standard
//! deterministic CREATE2 deployer with salt zero, so [`directory_address`] is the same on every
//! chain. [`ensure_directory`] deploys it where the deployer exists and it does not yet;
//! [`register_deployment`] records a kernel (its owner calls); [`find_deployment`] reads the
//! newest entry, or a named kernel's.

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::Provider,
    rpc::types::TransactionRequest,
};

use crate::{
    Error, Result,
    bindings::{KernelDirectory, KernelDirectory::Entry},
    tx::send,
};

/// The deterministic deployment proxy every public chain (and anvil, and our dev chain) has:
/// called with `salt ‖ initcode` it CREATE2s the contract.
pub const DETERMINISTIC_DEPLOYER: Address =
    alloy::primitives::address!("4e59b44847b379578588920ca78fbf26c0b4956c");

/// Where `KernelDirectory` lives on every chain: CREATE2 by [`DETERMINISTIC_DEPLOYER`] with
/// salt zero over its creation code.
pub fn directory_address() -> Address {
    DETERMINISTIC_DEPLOYER.create2(B256::ZERO, keccak256(&KernelDirectory::BYTECODE))
}

/// Deploys the directory if the chain has the deterministic deployer and not yet the directory;
/// `None` on a chain without the deployer.
pub async fn ensure_directory<P: Provider>(provider: &P, from: Address) -> Result<Option<Address>> {
    let address = directory_address();
    if !provider.get_code_at(address).await?.is_empty() {
        return Ok(Some(address));
    }
    if provider.get_code_at(DETERMINISTIC_DEPLOYER).await?.is_empty() {
        return Ok(None);
    }
    let mut data = B256::ZERO.to_vec();
    data.extend_from_slice(&KernelDirectory::BYTECODE);
    let request =
        TransactionRequest::default().from(from).to(DETERMINISTIC_DEPLOYER).input(data.into());
    let pending = provider.send_transaction(request).await.map_err(|e| Error::Rejected {
        action: "deploy the kernel directory",
        reason: e.to_string(),
        revert_data: None,
    })?;
    let receipt = pending.get_receipt().await.map_err(|e| Error::Rejected {
        action: "deploy the kernel directory",
        reason: e.to_string(),
        revert_data: None,
    })?;
    if !receipt.status() || provider.get_code_at(address).await?.is_empty() {
        return Err(Error::UnexpectedValue {
            what: "kernel directory",
            value: format!("no code at {address} after deploying it"),
        });
    }
    Ok(Some(address))
}

/// Registers `kernel` (owned by `from`) in the directory as the newest deployment.
pub async fn register_deployment<P: Provider>(
    provider: &P,
    from: Address,
    kernel: Address,
    default_model: u64,
    deploy_block: u64,
    version: &str,
) -> Result<()> {
    let directory = KernelDirectory::new(directory_address(), provider);
    send(
        directory.register(kernel, default_model, deploy_block, version.to_owned()).from(from),
        "register in the kernel directory",
    )
    .await?;
    Ok(())
}

/// The newest registered deployment, or `kernel`'s newest entry when given; `None` when the
/// chain has no directory or no such entry.
pub async fn find_deployment<P: Provider>(
    provider: &P,
    kernel: Option<Address>,
) -> Result<Option<Entry>> {
    let address = directory_address();
    if provider.get_code_at(address).await?.is_empty() {
        return Ok(None);
    }
    let directory = KernelDirectory::new(address, provider);
    let count = directory.count().call().await.map_err(|e| Error::contract("count", e))?;
    if count == U256::ZERO {
        return Ok(None);
    }
    let found = match kernel {
        Some(kernel) => directory.latestOf(kernel).call().await,
        None => directory.latest().call().await,
    };
    Ok(found.ok())
}
