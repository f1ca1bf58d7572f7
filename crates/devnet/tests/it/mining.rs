//! Interval mining and older hardforks.

use std::time::Duration;

use aik_devnet::{Devnet, DevnetConfig, Hardfork};
use alloy::{
    eips::BlockNumberOrTag,
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
};

use crate::util::{plain_provider, wallet_provider};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_mining_batches_transactions_into_blocks() {
    let config =
        DevnetConfig { block_time: Some(Duration::from_millis(300)), ..DevnetConfig::test() };
    let devnet = Devnet::spawn(config).await.unwrap();
    let provider = wallet_provider(&devnet, 0);
    let from = devnet.accounts()[0].address;
    let to = Address::repeat_byte(0x33);
    let mut pending = Vec::new();
    for _ in 0..3 {
        let tx = TransactionRequest::default().with_to(to).with_value(U256::from(1));
        pending.push(provider.send_transaction(tx).await.unwrap());
    }
    // Queued, not mined: the pending nonce counts them, the latest does not.
    let pending_nonce = provider.get_transaction_count(from).pending().await.unwrap();
    let latest_nonce = provider.get_transaction_count(from).latest().await.unwrap();
    let mined_already = provider.get_transaction_receipt(*pending[2].tx_hash()).await.unwrap();
    if mined_already.is_none() {
        assert_eq!(pending_nonce, 3);
        assert!(latest_nonce < 3);
        let tx = provider.get_transaction_by_hash(*pending[2].tx_hash()).await.unwrap().unwrap();
        assert_eq!(tx.block_number, None, "a queued transaction has no block yet");
    }
    let mut blocks = Vec::new();
    for tx in pending {
        let receipt = tx.get_receipt().await.unwrap();
        assert!(receipt.status());
        blocks.push(receipt.block_number.unwrap());
    }
    assert!(blocks.windows(2).all(|w| w[0] <= w[1]), "{blocks:?}");
    let block =
        provider.get_block_by_number(BlockNumberOrTag::Number(blocks[2])).await.unwrap().unwrap();
    assert!(!block.transactions.is_empty());
    assert_eq!(provider.get_balance(to).await.unwrap(), U256::from(3));
    // Empty blocks keep coming on the interval.
    let before = provider.get_block_number().await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(provider.get_block_number().await.unwrap() > before);
}

#[tokio::test]
async fn berlin_has_no_base_fee_and_refuses_1559_transactions() {
    let config = DevnetConfig { hardfork: Hardfork::Berlin, ..DevnetConfig::test() };
    let devnet = Devnet::spawn(config).await.unwrap();
    let provider = plain_provider(&devnet);
    let genesis = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();
    assert_eq!(genesis.header.base_fee_per_gas, None);
    assert_eq!(genesis.header.withdrawals_root, None);

    // Node-side signing picks a legacy transaction before London.
    let from = devnet.accounts()[0].address;
    let to = Address::repeat_byte(0x44);
    let tx = TransactionRequest::default().with_from(from).with_to(to).with_value(U256::from(9));
    let receipt = provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.transaction_type() as u8, 0);

    let wallet = ProviderBuilder::new()
        .wallet(EthereumWallet::from(devnet.accounts()[1].signer.clone()))
        .connect_http(devnet.http_url().parse().unwrap());
    let eip1559 = TransactionRequest::default()
        .with_to(to)
        .with_gas_limit(21_000)
        .with_max_fee_per_gas(1_000_000_000)
        .with_max_priority_fee_per_gas(1);
    let err = wallet.send_transaction(eip1559).await.unwrap_err();
    assert!(err.to_string().to_lowercase().contains("1559"), "{err}");
}

#[tokio::test]
async fn shanghai_headers_have_withdrawals_but_no_blob_fields() {
    let config = DevnetConfig { hardfork: Hardfork::Shanghai, ..DevnetConfig::test() };
    let devnet = Devnet::spawn(config).await.unwrap();
    let provider = wallet_provider(&devnet, 0);
    let tx =
        TransactionRequest::default().with_to(Address::repeat_byte(5)).with_value(U256::from(1));
    provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
    let block = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();
    assert!(block.header.withdrawals_root.is_some());
    assert!(block.header.base_fee_per_gas.is_some());
    assert_eq!(block.header.blob_gas_used, None);
    assert_eq!(block.header.requests_hash, None);
    assert_eq!(block.header.hash, block.header.inner.hash_slow());
}
