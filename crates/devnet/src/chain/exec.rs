//! Running transactions and calls through revm.
//!
//! The chain keeps its state in a [`CacheDB`]; this module builds the revm environment for one
//! block (hardfork, chain id, base fee, timestamp) and translates between alloy transaction types
//! and revm's [`TxEnv`], and between revm's results and the crate's [`Error`].

use alloy::{
    consensus::{Transaction as _, TxEnvelope},
    eips::Typed2718,
    primitives::{Address, B256, Bytes, TxKind, U256},
    rpc::types::TransactionRequest,
    sol_types::{SolError, decode_revert_reason},
};
use revm::{
    Context, Database, ExecuteEvm, MainBuilder, MainContext,
    context::{
        BlockEnv, CfgEnv, TxEnv,
        result::{EVMError, ExecutionResult, HaltReason, InvalidTransaction, ResultAndState},
    },
    context_interface::either::Either,
    primitives::eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE,
};

use crate::{Error, Hardfork, Result};

/// What revm needs to know about the block a transaction runs in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockContext {
    pub(crate) number: u64,
    pub(crate) timestamp: u64,
    pub(crate) base_fee: u64,
    pub(crate) gas_limit: u64,
    pub(crate) prevrandao: B256,
    pub(crate) beneficiary: Address,
}

/// The EVM rules of this chain.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EvmRules {
    pub(crate) chain_id: u64,
    pub(crate) hardfork: Hardfork,
}

/// How strictly to validate: transactions are validated like a real node does; calls and gas
/// estimates follow geth's `eth_call`, which skips the nonce, base fee and balance checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Transact,
    Call,
}

fn block_env(ctx: &BlockContext, rules: EvmRules) -> BlockEnv {
    let mut block = BlockEnv {
        number: U256::from(ctx.number),
        beneficiary: ctx.beneficiary,
        timestamp: U256::from(ctx.timestamp),
        gas_limit: ctx.gas_limit,
        basefee: if rules.hardfork.is_active(Hardfork::London) { ctx.base_fee } else { 0 },
        difficulty: U256::ZERO,
        prevrandao: Some(ctx.prevrandao),
        ..Default::default()
    };
    if rules.hardfork.is_active(Hardfork::Cancun) {
        // No blobs are ever included, so the excess stays zero and the blob fee at its minimum.
        block.set_blob_excess_gas_and_price(0, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE);
    }
    block
}

fn cfg_env(rules: EvmRules, mode: Mode) -> CfgEnv {
    let mut cfg = CfgEnv::new_with_spec(rules.hardfork.spec_id()).with_chain_id(rules.chain_id);
    if mode == Mode::Call {
        cfg.disable_nonce_check = true;
        cfg.disable_base_fee = true;
        cfg.disable_balance_check = true;
        cfg.disable_block_gas_limit = true;
        // A call may come from a contract (simulating what it would do), as geth and hardhat
        // allow: EIP-3607 rejects only transactions from such senders.
        cfg.disable_eip3607 = true;
    }
    cfg
}

/// Executes `tx` on `db` without committing; the caller commits `state` if it keeps the result.
pub(crate) fn execute<DB>(
    db: DB,
    rules: EvmRules,
    block: &BlockContext,
    tx: TxEnv,
    mode: Mode,
) -> Result<ResultAndState>
where
    DB: Database,
    DB::Error: std::fmt::Display,
{
    let mut evm = Context::mainnet()
        .with_cfg(cfg_env(rules, mode))
        .with_block(block_env(block, rules))
        .with_db(db)
        .build_mainnet();
    evm.transact(tx).map_err(map_evm_error)
}

fn map_evm_error<E: std::fmt::Display>(err: EVMError<E, InvalidTransaction>) -> Error {
    match err {
        EVMError::Transaction(invalid) => map_invalid(invalid),
        EVMError::Header(header) => Error::Evm(format!("invalid block header: {header}")),
        EVMError::Database(db) => Error::Evm(format!("state database: {db}")),
        EVMError::Custom(msg) => Error::Evm(msg),
        other => Error::Evm(other.to_string()),
    }
}

fn map_invalid(invalid: InvalidTransaction) -> Error {
    match invalid {
        InvalidTransaction::NonceTooLow { tx, state } => Error::NonceTooLow { tx, state },
        InvalidTransaction::NonceTooHigh { tx, state } => Error::NonceTooHigh { tx, state },
        InvalidTransaction::CallGasCostMoreThanGasLimit { initial_gas, gas_limit } => {
            Error::IntrinsicGasTooLow { gas_limit, intrinsic: initial_gas }
        }
        InvalidTransaction::GasFloorMoreThanGasLimit { gas_floor, gas_limit } => {
            Error::IntrinsicGasTooLow { gas_limit, intrinsic: gas_floor }
        }
        InvalidTransaction::LackOfFundForMaxFee { fee, balance } => {
            // The address is filled in by the caller, which knows the sender.
            Error::InsufficientFunds { address: Address::ZERO, balance: *balance, cost: *fee }
        }
        other => Error::InvalidTransaction(other.to_string()),
    }
}

/// Converts a signed transaction into revm's form.
pub(crate) fn tx_env_from_envelope(tx: &TxEnvelope, sender: Address) -> TxEnv {
    let mut env = TxEnv {
        tx_type: tx.ty(),
        caller: sender,
        gas_limit: tx.gas_limit(),
        gas_price: tx.max_fee_per_gas(),
        kind: tx.kind(),
        value: tx.value(),
        data: tx.input().clone(),
        nonce: tx.nonce(),
        chain_id: tx.chain_id(),
        access_list: tx.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: tx.max_priority_fee_per_gas(),
        blob_hashes: tx.blob_versioned_hashes().map(<[B256]>::to_vec).unwrap_or_default(),
        max_fee_per_blob_gas: tx.max_fee_per_blob_gas().unwrap_or_default(),
        ..Default::default()
    };
    if let Some(auths) = tx.authorization_list() {
        env.authorization_list = auths.iter().cloned().map(Either::Left).collect();
    }
    env
}

/// Converts an `eth_call`/`eth_estimateGas` request into revm's form. Missing fields take
/// geth's defaults: sender zero, gas the block limit, gas price zero.
pub(crate) fn tx_env_from_request(
    req: &TransactionRequest,
    gas_limit: u64,
    chain_id: u64,
    nonce: u64,
) -> TxEnv {
    let kind = req.to.unwrap_or(TxKind::Create);
    let gas_price = req.gas_price.or(req.max_fee_per_gas).unwrap_or_default();
    let mut env = TxEnv {
        tx_type: 0,
        caller: req.from.unwrap_or_default(),
        gas_limit: req.gas.unwrap_or(gas_limit),
        gas_price,
        kind,
        value: req.value.unwrap_or_default(),
        data: req.input.input().cloned().unwrap_or_default(),
        nonce,
        chain_id: Some(chain_id),
        access_list: req.access_list.clone().unwrap_or_default(),
        gas_priority_fee: req.max_priority_fee_per_gas,
        ..Default::default()
    };
    if req.max_fee_per_gas.is_some() || req.max_priority_fee_per_gas.is_some() {
        env.tx_type = 2;
        env.gas_priority_fee = Some(req.max_priority_fee_per_gas.unwrap_or_default());
    } else if req.access_list.is_some() {
        env.tx_type = 1;
    }
    if let Some(auths) = &req.authorization_list {
        env.tx_type = 4;
        env.authorization_list = auths.iter().cloned().map(Either::Left).collect();
    }
    env
}

/// Turns a call's result into its output, or the revert/halt error clients expect.
pub(crate) fn call_output(result: ExecutionResult) -> Result<Bytes> {
    match result {
        ExecutionResult::Success { output, .. } => Ok(output.into_data()),
        ExecutionResult::Revert { output, .. } => Err(revert_error(output)),
        ExecutionResult::Halt { reason, .. } => Err(halt_error(reason)),
    }
}

/// A revert with its reason decoded when the data is `Error(string)` or `Panic(uint256)`.
pub(crate) fn revert_error(data: Bytes) -> Error {
    // geth puts the `Error(string)` reason after "execution reverted: "; a `Panic(uint256)` is
    // described by its panic kind; custom errors leave only the data.
    let reason = if data.starts_with(&alloy::sol_types::Revert::SELECTOR) {
        alloy::sol_types::Revert::abi_decode(&data).ok().map(|revert| revert.reason)
    } else if data.starts_with(&alloy::sol_types::Panic::SELECTOR) {
        decode_revert_reason(&data)
    } else {
        None
    };
    Error::Reverted { reason, data }
}

pub(crate) fn halt_error(reason: HaltReason) -> Error {
    let message = match reason {
        HaltReason::OutOfGas(_) => "out of gas".to_string(),
        HaltReason::OpcodeNotFound | HaltReason::InvalidFEOpcode => "invalid opcode".to_string(),
        HaltReason::StackOverflow => "stack limit reached 1024".to_string(),
        HaltReason::StackUnderflow => "stack underflow".to_string(),
        other => format!("execution halted: {other:?}"),
    };
    Error::Halted(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::Revert;

    #[test]
    fn revert_reason_is_decoded_from_error_string() {
        let data: Bytes = Revert::from("not owner").abi_encode().into();
        let err = revert_error(data.clone());
        assert_eq!(err.to_string(), "execution reverted: not owner");
        assert!(matches!(err, Error::Reverted { data: d, .. } if d == data));
    }

    #[test]
    fn custom_error_keeps_raw_data_without_reason() {
        let data = Bytes::from(vec![0xde, 0xad, 0xbe, 0xef, 0, 1]);
        let err = revert_error(data.clone());
        assert_eq!(err.to_string(), "execution reverted");
        assert!(matches!(err, Error::Reverted { reason: None, data: d } if d == data));
    }
}
