//! The Ethereum JSON-RPC API over the chain: method dispatch, parameter parsing and the
//! mapping from the crate's errors to the codes and messages clients expect.

pub(crate) mod convert;
pub(crate) mod filters;
pub(crate) mod wire;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use alloy::{
    consensus::{
        SignableTransaction, TxEip1559, TxEip2930, TxEip7702, TxEnvelope, TxLegacy,
        transaction::Recovered,
    },
    eips::{BlockId, BlockNumberOrTag, Decodable2718},
    primitives::{Address, B256, Bytes, TxKind, U256, keccak256},
    rpc::types::{Filter, TransactionRequest},
    signers::SignerSync,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{
    DevAccount, Error, Result,
    chain::{Chain, MinedBlock, SUGGESTED_PRIORITY_FEE},
};
use filters::Filters;
use wire::{Call, RpcError};

/// What a WebSocket connection subscribed to.
#[derive(Debug, Clone)]
pub(crate) enum Subscription {
    NewHeads,
    Logs(Box<Filter>),
}

/// Per-connection state of a WebSocket client.
#[derive(Debug, Default)]
pub(crate) struct Session {
    pub(crate) subscriptions: HashMap<String, Subscription>,
}

impl Session {
    /// The notifications `block` produces for this session's subscriptions.
    pub(crate) fn notifications(&self, block: &MinedBlock) -> Vec<Value> {
        let mut out = Vec::new();
        for (id, subscription) in &self.subscriptions {
            match subscription {
                Subscription::NewHeads => {
                    out.push(notification(id, json!(convert::header(block))));
                }
                Subscription::Logs(filter) => {
                    if !filter.matches_bloom(block.header.logs_bloom) {
                        continue;
                    }
                    let mut logs = Vec::new();
                    crate::chain::block_logs(
                        block,
                        // As geth: a log subscription matches address and topics; its block
                        // range is ignored since it only sees new blocks.
                        |log| filter.matches(&log.inner),
                        &mut logs,
                    );
                    for log in logs {
                        out.push(notification(id, json!(log)));
                    }
                }
            }
        }
        out
    }
}

fn notification(id: &str, result: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": "eth_subscription",
        "params": { "subscription": id, "result": result },
    })
}

/// The API: shared by every HTTP request and WebSocket connection of one node.
#[derive(Debug)]
pub(crate) struct Api {
    chain: Arc<Mutex<Chain>>,
    accounts: Vec<DevAccount>,
    filters: Mutex<Filters>,
    next_subscription: std::sync::atomic::AtomicU64,
}

/// Maps a chain error to the JSON-RPC error clients expect.
pub(crate) fn to_rpc_error(err: Error) -> RpcError {
    match err {
        Error::Reverted { ref data, .. } => RpcError {
            code: wire::EXECUTION_ERROR,
            data: Some(Value::String(data.to_string())),
            message: err.to_string(),
        },
        Error::InvalidParams(msg) => RpcError::invalid_params(msg),
        Error::Evm(_) | Error::Store(_) | Error::Io(_) | Error::Config(_) => {
            RpcError::new(wire::INTERNAL_ERROR, err.to_string())
        }
        other => RpcError::new(wire::SERVER_ERROR, other.to_string()),
    }
}

fn param<T: DeserializeOwned>(params: &[Value], index: usize, name: &str) -> Result<T, RpcError> {
    let value = params.get(index).cloned().unwrap_or(Value::Null);
    serde_json::from_value(value.clone()).map_err(|e| {
        if value.is_null() {
            RpcError::invalid_params(format!(
                "missing value for required argument {index} ({name})"
            ))
        } else {
            RpcError::invalid_params(format!("invalid argument {index} ({name}): {e}"))
        }
    })
}

/// A quantity given as a JSON number, a hex string or a decimal string.
fn quantity(params: &[Value], index: usize, name: &str) -> Result<u64, RpcError> {
    let value = params.get(index).cloned().unwrap_or(Value::Null);
    let parsed = match &value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        },
        _ => None,
    };
    parsed.ok_or_else(|| {
        RpcError::invalid_params(format!(
            "invalid argument {index} ({name}): expected a non-negative integer, got {value}"
        ))
    })
}

fn to_json<T: serde::Serialize>(value: T) -> Result<Value, RpcError> {
    serde_json::to_value(value)
        .map_err(|e| RpcError::new(wire::INTERNAL_ERROR, format!("cannot encode result: {e}")))
}

fn hex_u64(n: u64) -> Value {
    Value::String(format!("{n:#x}"))
}

impl Api {
    pub(crate) fn new(chain: Arc<Mutex<Chain>>, accounts: Vec<DevAccount>) -> Self {
        Self {
            chain,
            accounts,
            filters: Mutex::new(Filters::default()),
            next_subscription: std::sync::atomic::AtomicU64::new(1),
        }
    }

    pub(crate) fn chain(&self) -> MutexGuard<'_, Chain> {
        // A panic while holding the lock cannot leave the chain half-updated: every mutation
        // happens after all fallible steps, so the poisoned data is still consistent.
        self.chain.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn filters(&self) -> MutexGuard<'_, Filters> {
        self.filters.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Answers one parsed call. Notifications (no id) are executed but get no answer.
    pub(crate) fn respond(&self, call: Call, session: Option<&mut Session>) -> Option<Value> {
        let result = self.dispatch(&call.method, call.params, session);
        let id = call.id?;
        Some(match result {
            Ok(value) => wire::success(id, value),
            Err(error) => wire::failure(id, error),
        })
    }

    /// Answers a whole payload (one call or a batch). `None` when nothing needs an answer.
    pub(crate) fn respond_payload(
        &self,
        body: &[u8],
        mut session: Option<&mut Session>,
    ) -> Option<Value> {
        let value: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(err) => {
                return Some(wire::failure(
                    Value::Null,
                    RpcError::new(wire::PARSE_ERROR, format!("parse error: {err}")),
                ));
            }
        };
        match value {
            Value::Array(calls) if calls.is_empty() => Some(wire::failure(
                Value::Null,
                RpcError::new(wire::INVALID_REQUEST, "invalid request: empty batch"),
            )),
            Value::Array(calls) => {
                let responses: Vec<Value> = calls
                    .into_iter()
                    .filter_map(|call| match wire::parse_call(call) {
                        Ok(call) => self.respond(call, session.as_deref_mut()),
                        Err(error_response) => Some(error_response),
                    })
                    .collect();
                (!responses.is_empty()).then_some(Value::Array(responses))
            }
            single => match wire::parse_call(single) {
                Ok(call) => self.respond(call, session),
                Err(error_response) => Some(error_response),
            },
        }
    }

    fn dispatch(
        &self,
        method: &str,
        params: Value,
        session: Option<&mut Session>,
    ) -> Result<Value, RpcError> {
        let params = match params {
            Value::Array(params) => params,
            Value::Null => Vec::new(),
            other => vec![other],
        };
        let p = params.as_slice();
        tracing::trace!(method, "rpc call");
        let result = match method {
            "web3_clientVersion" => json!(concat!("aik-devnet/v", env!("CARGO_PKG_VERSION"))),
            "web3_sha3" => {
                let data: Bytes = param(p, 0, "data")?;
                json!(keccak256(&data))
            }
            "net_version" => json!(self.chain().chain_id().to_string()),
            "net_listening" => json!(true),
            "net_peerCount" => hex_u64(0),
            "eth_chainId" => hex_u64(self.chain().chain_id()),
            "eth_syncing" => json!(false),
            "eth_mining" => json!(true),
            "eth_hashrate" => hex_u64(0),
            "eth_coinbase" => json!(Address::ZERO),
            "eth_protocolVersion" => hex_u64(0x41),
            "eth_accounts" => to_json(self.accounts.iter().map(|a| a.address).collect::<Vec<_>>())?,
            "eth_blockNumber" => hex_u64(self.chain().latest().number()),
            "eth_getBalance" => {
                let address: Address = param(p, 0, "address")?;
                let block: Option<BlockId> = param(p, 1, "block")?;
                to_json(self.chain().balance(address, block).map_err(to_rpc_error)?)?
            }
            "eth_getTransactionCount" => {
                let address: Address = param(p, 0, "address")?;
                let block: Option<BlockId> = param(p, 1, "block")?;
                hex_u64(self.chain().nonce(address, block).map_err(to_rpc_error)?)
            }
            "eth_getCode" => {
                let address: Address = param(p, 0, "address")?;
                let block: Option<BlockId> = param(p, 1, "block")?;
                to_json(self.chain().code(address, block).map_err(to_rpc_error)?)?
            }
            "eth_getStorageAt" => {
                let address: Address = param(p, 0, "address")?;
                let slot: U256 = param(p, 1, "slot")?;
                let block: Option<BlockId> = param(p, 2, "block")?;
                to_json(self.chain().storage_at(address, slot, block).map_err(to_rpc_error)?)?
            }
            "eth_call" => {
                let request: TransactionRequest = param(p, 0, "transaction")?;
                let block: Option<BlockId> = param(p, 1, "block")?;
                reject_overrides(p, 2)?;
                to_json(self.chain().call(&request, block).map_err(to_rpc_error)?)?
            }
            "eth_estimateGas" => {
                let request: TransactionRequest = param(p, 0, "transaction")?;
                let block: Option<BlockId> = param(p, 1, "block")?;
                reject_overrides(p, 2)?;
                hex_u64(self.chain().estimate_gas(&request, block).map_err(to_rpc_error)?)
            }
            "eth_gasPrice" => to_json(U256::from(self.chain().gas_price()))?,
            "eth_maxPriorityFeePerGas" => to_json(U256::from(SUGGESTED_PRIORITY_FEE))?,
            "eth_blobBaseFee" => hex_u64(1),
            "eth_feeHistory" => {
                let count = quantity(p, 0, "blockCount")?;
                let newest: BlockNumberOrTag = param(p, 1, "newestBlock")?;
                let percentiles: Option<Vec<f64>> = param(p, 2, "rewardPercentiles")?;
                let percentiles = percentiles.unwrap_or_default();
                if percentiles.iter().any(|x| !(0.0..=100.0).contains(x))
                    || percentiles.windows(2).any(|w| w[0] > w[1])
                {
                    return Err(RpcError::invalid_params(format!(
                        "reward percentiles must be ascending values in [0, 100], got {percentiles:?}"
                    )));
                }
                to_json(
                    self.chain().fee_history(count, newest, &percentiles).map_err(to_rpc_error)?,
                )?
            }
            "eth_sendRawTransaction" => {
                let raw: Bytes = param(p, 0, "data")?;
                let tx = decode_raw(&raw).map_err(to_rpc_error)?;
                to_json(self.chain().submit(tx).map_err(to_rpc_error)?)?
            }
            "eth_sendTransaction" => {
                let request: TransactionRequest = param(p, 0, "transaction")?;
                to_json(self.send_transaction(request).map_err(to_rpc_error)?)?
            }
            "eth_getTransactionByHash" => {
                let hash: B256 = param(p, 0, "hash")?;
                let chain = self.chain();
                match chain.tx_location(&hash) {
                    Some((block, index)) => to_json(convert::transaction(block, index))?,
                    None => match chain.pending_tx(&hash) {
                        Some(tx) => to_json(convert::pending_transaction(tx))?,
                        None => Value::Null,
                    },
                }
            }
            "eth_getTransactionReceipt" => {
                let hash: B256 = param(p, 0, "hash")?;
                let chain = self.chain();
                match chain.tx_location(&hash) {
                    Some((block, index)) => to_json(convert::receipt(block, index))?,
                    None => Value::Null,
                }
            }
            "eth_getBlockByNumber" => {
                let tag: BlockNumberOrTag = param(p, 0, "block")?;
                let full: Option<bool> = param(p, 1, "fullTransactions")?;
                let chain = self.chain();
                match chain.resolve_number(tag).ok().and_then(|n| chain.block(n)) {
                    Some(block) => to_json(convert::block(block, full.unwrap_or(false)))?,
                    None => Value::Null,
                }
            }
            "eth_getBlockByHash" => {
                let hash: B256 = param(p, 0, "hash")?;
                let full: Option<bool> = param(p, 1, "fullTransactions")?;
                match self.chain().block_by_hash(&hash) {
                    Some(block) => to_json(convert::block(block, full.unwrap_or(false)))?,
                    None => Value::Null,
                }
            }
            "eth_getBlockTransactionCountByNumber" | "eth_getBlockTransactionCountByHash" => {
                let id: BlockId = param(p, 0, "block")?;
                match self.chain().resolve_block(id) {
                    Ok(block) => hex_u64(block.txs.len() as u64),
                    Err(_) => Value::Null,
                }
            }
            "eth_getTransactionByBlockNumberAndIndex" | "eth_getTransactionByBlockHashAndIndex" => {
                let id: BlockId = param(p, 0, "block")?;
                let index = quantity(p, 1, "index")? as usize;
                match self.chain().resolve_block(id) {
                    Ok(block) if index < block.txs.len() => {
                        to_json(convert::transaction(block, index))?
                    }
                    _ => Value::Null,
                }
            }
            "eth_getBlockReceipts" => {
                let id: BlockId = param(p, 0, "block")?;
                match self.chain().resolve_block(id) {
                    Ok(block) => to_json(
                        (0..block.txs.len())
                            .map(|i| convert::receipt(block, i))
                            .collect::<Vec<_>>(),
                    )?,
                    Err(_) => Value::Null,
                }
            }
            "eth_getLogs" => {
                let filter: Filter = param(p, 0, "filter")?;
                to_json(self.chain().logs(&filter).map_err(to_rpc_error)?)?
            }
            "eth_newFilter" => {
                let filter: Filter = param(p, 0, "filter")?;
                let chain = self.chain();
                to_json(self.filters().new_log_filter(filter, &chain))?
            }
            "eth_newBlockFilter" => {
                let chain = self.chain();
                to_json(self.filters().new_block_filter(&chain))?
            }
            "eth_newPendingTransactionFilter" => {
                let chain = self.chain();
                to_json(self.filters().new_pending_transaction_filter(&chain))?
            }
            "eth_getFilterChanges" => {
                let id: U256 = param(p, 0, "filterId")?;
                let chain = self.chain();
                self.filters().changes(id, &chain).map_err(to_rpc_error)?
            }
            "eth_getFilterLogs" => {
                let id: U256 = param(p, 0, "filterId")?;
                let chain = self.chain();
                self.filters().logs(id, &chain).map_err(to_rpc_error)?
            }
            "eth_uninstallFilter" => {
                let id: U256 = param(p, 0, "filterId")?;
                json!(self.filters().uninstall(id))
            }
            "eth_subscribe" => {
                let Some(session) = session else {
                    return Err(RpcError::new(
                        wire::SERVER_ERROR,
                        "notifications not supported: eth_subscribe needs a WebSocket connection",
                    ));
                };
                let kind: String = param(p, 0, "subscriptionName")?;
                let subscription = match kind.as_str() {
                    "newHeads" => Subscription::NewHeads,
                    "logs" => {
                        let filter: Option<Filter> = param(p, 1, "filter")?;
                        Subscription::Logs(Box::new(filter.unwrap_or_default()))
                    }
                    other => {
                        return Err(RpcError::invalid_params(format!(
                            "unsupported subscription {other:?}; supported: newHeads, logs"
                        )));
                    }
                };
                let n = self.next_subscription.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let id = format!("{:#034x}", u128::from(n) | (1u128 << 120));
                session.subscriptions.insert(id.clone(), subscription);
                json!(id)
            }
            "eth_unsubscribe" => {
                let id: String = param(p, 0, "subscriptionId")?;
                match session {
                    Some(session) => json!(session.subscriptions.remove(&id).is_some()),
                    None => json!(false),
                }
            }
            "anvil_mine" | "hardhat_mine" => {
                // (blocks = 1, interval = 1 second between their timestamps), as Hardhat.
                let blocks =
                    if p.is_empty() || p[0].is_null() { 1 } else { quantity(p, 0, "blocks")? };
                let interval =
                    if p.len() < 2 || p[1].is_null() { 1 } else { quantity(p, 1, "interval")? };
                if blocks > 10_000 {
                    return Err(RpcError::invalid_params(format!(
                        "blocks must be at most 10000, got {blocks}"
                    )));
                }
                let mut chain = self.chain();
                for i in 0..blocks {
                    if i > 0 {
                        let next = chain.latest().header.timestamp.saturating_add(interval);
                        chain.set_next_timestamp(next).map_err(to_rpc_error)?;
                    }
                    chain.mine_pool(None).map_err(to_rpc_error)?;
                }
                Value::Null
            }
            "evm_mine" => {
                // evm_mine takes an optional timestamp (number or {timestamp}).
                let timestamp = match p.first() {
                    None | Some(Value::Null) => None,
                    Some(Value::Object(o)) => o
                        .get("timestamp")
                        .map(|_| quantity(&[o["timestamp"].clone()], 0, "timestamp"))
                        .transpose()?,
                    Some(_) => Some(quantity(p, 0, "timestamp")?),
                };
                let mut chain = self.chain();
                if let Some(ts) = timestamp {
                    chain.set_next_timestamp(ts).map_err(to_rpc_error)?;
                }
                chain.mine_pool(None).map_err(to_rpc_error)?;
                json!("0x0")
            }
            "evm_increaseTime" => {
                let seconds = quantity(p, 0, "seconds")?;
                let offset = self.chain().increase_time(seconds);
                json!(offset)
            }
            "evm_setNextBlockTimestamp" => {
                let timestamp = quantity(p, 0, "timestamp")?;
                self.chain().set_next_timestamp(timestamp).map_err(to_rpc_error)?;
                Value::Null
            }
            "evm_snapshot" => hex_u64(self.chain().snapshot()),
            "evm_revert" => {
                let id = quantity(p, 0, "snapshotId")?;
                json!(self.chain().revert(id).map_err(to_rpc_error)?)
            }
            other => {
                return Err(RpcError::new(
                    wire::METHOD_NOT_FOUND,
                    format!("the method {other} does not exist/is not available"),
                ));
            }
        };
        Ok(result)
    }

    /// Signs `request` with the dev account it names and submits it.
    fn send_transaction(&self, request: TransactionRequest) -> Result<B256> {
        let from = request.from.ok_or_else(|| {
            Error::InvalidParams("eth_sendTransaction needs a from address".into())
        })?;
        let account =
            self.accounts.iter().find(|a| a.address == from).ok_or(Error::UnknownAccount(from))?;
        let (chain_id, nonce, base_fee) = {
            let chain = self.chain();
            (
                chain.chain_id(),
                request.nonce.unwrap_or_else(|| chain.pending_nonce(from)),
                chain.next_base_fee(),
            )
        };
        let gas_limit = match request.gas {
            Some(gas) => gas,
            None => self.chain().estimate_gas(&request, Some(BlockId::pending()))?,
        };
        let to = request.to.unwrap_or(TxKind::Create);
        let value = request.value.unwrap_or_default();
        let input = request.input.input().cloned().unwrap_or_default();
        let access_list = request.access_list.clone().unwrap_or_default();
        let london = self.chain().hardfork().is_active(crate::Hardfork::London);
        let legacy_price =
            request.gas_price.or_else(|| (!london).then(|| self.chain().gas_price()));
        let envelope: TxEnvelope = if let Some(auths) = request.authorization_list.clone() {
            let TxKind::Call(to) = to else {
                return Err(Error::InvalidParams(
                    "an EIP-7702 transaction needs a to address".into(),
                ));
            };
            let max_priority = request.max_priority_fee_per_gas.unwrap_or(SUGGESTED_PRIORITY_FEE);
            let tx = TxEip7702 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas: request
                    .max_fee_per_gas
                    .unwrap_or_else(|| 2 * u128::from(base_fee) + max_priority),
                max_priority_fee_per_gas: max_priority,
                to,
                value,
                access_list,
                authorization_list: auths,
                input,
            };
            sign(tx, account)?
        } else if let Some(gas_price) = legacy_price {
            if request.access_list.is_some() {
                sign(
                    TxEip2930 {
                        chain_id,
                        nonce,
                        gas_price,
                        gas_limit,
                        to,
                        value,
                        access_list,
                        input,
                    },
                    account,
                )?
            } else {
                sign(
                    TxLegacy {
                        chain_id: Some(chain_id),
                        nonce,
                        gas_price,
                        gas_limit,
                        to,
                        value,
                        input,
                    },
                    account,
                )?
            }
        } else {
            let max_priority = request.max_priority_fee_per_gas.unwrap_or(SUGGESTED_PRIORITY_FEE);
            let tx = TxEip1559 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas: request
                    .max_fee_per_gas
                    .unwrap_or_else(|| 2 * u128::from(base_fee) + max_priority),
                max_priority_fee_per_gas: max_priority,
                to,
                value,
                access_list,
                input,
            };
            sign(tx, account)?
        };
        self.chain().submit(Recovered::new_unchecked(envelope, from))
    }
}

fn sign<T>(tx: T, account: &DevAccount) -> Result<TxEnvelope>
where
    T: SignableTransaction<alloy::primitives::Signature>,
    alloy::consensus::Signed<T>: Into<TxEnvelope>,
{
    let signature = account
        .signer
        .sign_hash_sync(&tx.signature_hash())
        .map_err(|e| Error::TxSignature(e.to_string()))?;
    Ok(tx.into_signed(signature).into())
}

fn decode_raw(raw: &[u8]) -> Result<Recovered<TxEnvelope>> {
    let mut slice = raw;
    let envelope =
        TxEnvelope::decode_2718(&mut slice).map_err(|e| Error::TxDecode(e.to_string()))?;
    if !slice.is_empty() {
        return Err(Error::TxDecode(format!(
            "{} trailing bytes after the transaction",
            slice.len()
        )));
    }
    if matches!(envelope, TxEnvelope::Eip4844(_)) {
        return Err(Error::InvalidTransaction(
            "blob transactions are not supported by this dev chain".into(),
        ));
    }
    let sender = recover_sender(&envelope)?;
    Ok(Recovered::new_unchecked(envelope, sender))
}

/// The sender of a signed transaction, recovered with libsecp256k1 (through revm's ecrecover):
/// recovery is most of the work of accepting a transaction, and the C library is several times
/// faster than the pure-Rust path alloy uses by default.
fn recover_sender(envelope: &TxEnvelope) -> Result<Address> {
    let signature = envelope.signature();
    // EIP-2: transaction signatures must use the low s value.
    if signature.normalize_s().is_some() {
        return Err(Error::TxSignature("signature s value is above secp256k1n/2 (EIP-2)".into()));
    }
    let bytes = signature.as_bytes();
    let compact = alloy::primitives::B512::from_slice(&bytes[..64]);
    let hashed_key = revm::precompile::secp256k1::ecrecover(
        &compact,
        u8::from(signature.v()),
        &envelope.signature_hash(),
    )
    .map_err(|e| Error::TxSignature(e.to_string()))?;
    Ok(Address::from_slice(&hashed_key[12..]))
}

fn reject_overrides(params: &[Value], index: usize) -> Result<(), RpcError> {
    match params.get(index) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(o)) if o.is_empty() => Ok(()),
        Some(_) => Err(RpcError::invalid_params(format!(
            "argument {index}: state overrides are not supported by this dev chain"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DEV_MNEMONIC, derive_dev_accounts};
    use alloy::{consensus::transaction::SignerRecoverable, eips::Encodable2718};

    fn signed_transfer() -> (TxEnvelope, Address) {
        let account = derive_dev_accounts(DEV_MNEMONIC, 1).unwrap().remove(0);
        let tx = TxEip1559 {
            chain_id: 31337,
            nonce: 3,
            gas_limit: 21_000,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1,
            to: TxKind::Call(Address::repeat_byte(1)),
            value: U256::from(5),
            ..Default::default()
        };
        (sign(tx, &account).unwrap(), account.address)
    }

    #[test]
    fn recovers_the_same_sender_as_alloy() {
        let (envelope, address) = signed_transfer();
        assert_eq!(recover_sender(&envelope).unwrap(), address);
        assert_eq!(envelope.recover_signer().unwrap(), address);
        let decoded = decode_raw(&envelope.encoded_2718()).unwrap();
        assert_eq!(decoded.signer(), address);
        assert_eq!(decoded.tx_hash(), envelope.tx_hash());
    }

    #[test]
    fn rejects_high_s_and_trailing_bytes() {
        let (envelope, _) = signed_transfer();
        let TxEnvelope::Eip1559(signed) = envelope.clone() else { unreachable!() };
        let sig = *signed.signature();
        let order = alloy::primitives::U256::from_be_bytes(alloy::primitives::hex!(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
        ));
        let high = alloy::primitives::Signature::new(sig.r(), order - sig.s(), !sig.v());
        let malleated: TxEnvelope = signed.tx().clone().into_signed(high).into();
        let err = recover_sender(&malleated).unwrap_err();
        assert!(err.to_string().contains("EIP-2"), "{err}");

        let mut raw = envelope.encoded_2718();
        raw.push(0);
        let err = decode_raw(&raw).unwrap_err();
        assert!(err.to_string().contains("1 trailing bytes"), "{err}");
    }
}
