//! Sending transactions and waiting for their receipts.

use std::time::{Duration, Instant};

use alloy::{
    contract::{CallBuilder, CallDecoder},
    network::Ethereum,
    providers::Provider,
    rpc::types::TransactionReceipt,
};

use crate::{Error, Result};

/// How long to wait for a receipt before giving up.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between receipt polls. Dev chains mine on arrival, so the first poll usually succeeds;
/// alloy's own watcher would wait for its block-poll interval instead.
const RECEIPT_POLL: Duration = Duration::from_millis(20);

/// Sends a contract call as a transaction, waits for its receipt and fails if it reverted.
pub(crate) async fn send<P, D>(
    call: CallBuilder<P, D, Ethereum>,
    action: &'static str,
) -> Result<TransactionReceipt>
where
    P: Provider,
    D: CallDecoder,
{
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
