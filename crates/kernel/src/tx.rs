//! Sending transactions and waiting for their receipts.

use std::time::{Duration, Instant};

use alloy::{
    contract::{CallBuilder, CallDecoder},
    network::{Ethereum, TransactionBuilder},
    providers::Provider,
    rpc::types::TransactionReceipt,
};

use crate::{Error, Result};

/// How long to wait for a receipt before giving up.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between receipt polls. Dev chains mine on arrival, so the first poll usually succeeds;
/// alloy's own watcher would wait for its block-poll interval instead.
const RECEIPT_POLL: Duration = Duration::from_millis(20);

/// Gas added to the estimate of every transaction whose call does not set its own limit.
///
/// An estimate is the least gas that succeeds in the pending block, but the transaction runs in
/// the block it is mined in, whose timestamp may be a second later. The kernel writes block times
/// into packed storage (a closed lane's cool-down), and a write that leaves a slot as it was costs
/// 2,800 gas less than one that changes it: estimated in the very second of a deadline, closing a
/// lane rewrites the same value; mined a second later, it does not, and an unpadded limit runs
/// out of gas. A cold slot written from zero (22,100 gas) is the largest such difference. Unused
/// gas is not paid for.
pub const TX_GAS_HEADROOM: u64 = 25_000;

/// Sends a contract call as a transaction, waits for its receipt and fails if it reverted. A
/// call without a gas limit gets its estimate plus [`TX_GAS_HEADROOM`].
pub(crate) async fn send<P, D>(
    call: CallBuilder<P, D, Ethereum>,
    action: &'static str,
) -> Result<TransactionReceipt>
where
    P: Provider,
    D: CallDecoder,
{
    let call = match call.as_ref().gas_limit() {
        Some(_) => call,
        None => {
            // In the pending block, as the transaction will run: a call builder estimates in
            // the latest by default, where a draw whose anchor is that block draws nothing.
            // (The block is only for estimates and calls: sending ignores it.)
            let call = call.block(alloy::eips::BlockId::pending());
            let estimate = call.estimate_gas().await.map_err(|e| Error::contract(action, e))?;
            call.gas(estimate + TX_GAS_HEADROOM)
        }
    };
    let pending = call.send().await.map_err(|e| Error::contract(action, e))?;
    let tx = *pending.tx_hash();
    receipt(pending.provider(), tx, action).await
}

/// Waits for the receipt of transaction `tx` (sent for `action`) and fails if it reverted.
pub(crate) async fn receipt<P: Provider>(
    provider: &P,
    tx: alloy::primitives::B256,
    action: &'static str,
) -> Result<TransactionReceipt> {
    let started = Instant::now();
    loop {
        if let Some(receipt) = provider.get_transaction_receipt(tx).await? {
            if !receipt.status() {
                return Err(Error::Reverted { action, tx });
            }
            tracing::debug!(action, %tx, gas = receipt.gas_used, "transaction mined");
            return Ok(receipt);
        }
        if started.elapsed() > RECEIPT_TIMEOUT {
            return Err(Error::ReceiptTimeout { action, tx, seconds: RECEIPT_TIMEOUT.as_secs() });
        }
        tokio::time::sleep(RECEIPT_POLL).await;
    }
}
