//! Chain records → the alloy RPC types clients parse (blocks, transactions, receipts).

use alloy::{
    consensus::{ReceiptEnvelope, TxEnvelope, transaction::Recovered},
    primitives::U256,
    rpc::types::{
        Block, BlockTransactions, Header, Log, Transaction, TransactionReceipt, Withdrawals,
    },
};

use crate::chain::MinedBlock;

pub(crate) fn header(block: &MinedBlock) -> Header {
    Header {
        hash: block.hash,
        inner: block.header.clone(),
        total_difficulty: Some(U256::ZERO),
        size: None,
    }
}

pub(crate) fn transaction(block: &MinedBlock, index: usize) -> Transaction {
    let tx = &block.txs[index];
    Transaction {
        inner: Recovered::new_unchecked(tx.envelope.clone(), tx.sender),
        block_hash: Some(block.hash),
        block_number: Some(block.number()),
        transaction_index: Some(index as u64),
        effective_gas_price: Some(tx.effective_gas_price),
        block_timestamp: Some(block.header.timestamp),
    }
}

pub(crate) fn pending_transaction(tx: &Recovered<TxEnvelope>) -> Transaction {
    Transaction {
        inner: tx.clone(),
        block_hash: None,
        block_number: None,
        transaction_index: None,
        effective_gas_price: None,
        block_timestamp: None,
    }
}

pub(crate) fn receipt(block: &MinedBlock, index: usize) -> TransactionReceipt {
    let tx = &block.txs[index];
    let first_log_index: usize = block.txs[..index].iter().map(|t| t.receipt.logs().len()).sum();
    let mut log_index = first_log_index as u64;
    let inner: ReceiptEnvelope<Log> = tx.receipt.clone().map_logs(|log| {
        let rpc_log = Log {
            inner: log,
            block_hash: Some(block.hash),
            block_number: Some(block.number()),
            block_timestamp: Some(block.header.timestamp),
            transaction_hash: Some(tx.hash()),
            transaction_index: Some(index as u64),
            log_index: Some(log_index),
            removed: false,
        };
        log_index += 1;
        rpc_log
    });
    TransactionReceipt {
        inner,
        transaction_hash: tx.hash(),
        transaction_index: Some(index as u64),
        block_hash: Some(block.hash),
        block_number: Some(block.number()),
        gas_used: tx.gas_used,
        effective_gas_price: tx.effective_gas_price,
        blob_gas_used: None,
        blob_gas_price: None,
        from: tx.sender,
        to: alloy::consensus::Transaction::to(&tx.envelope),
        contract_address: tx.contract_address,
    }
}

pub(crate) fn block(block: &MinedBlock, full: bool) -> Block {
    let transactions = if full {
        BlockTransactions::Full((0..block.txs.len()).map(|i| transaction(block, i)).collect())
    } else {
        BlockTransactions::Hashes(block.txs.iter().map(|tx| tx.hash()).collect())
    };
    Block {
        header: header(block),
        uncles: Vec::new(),
        transactions,
        withdrawals: block.header.withdrawals_root.map(|_| Withdrawals::default()),
    }
}
