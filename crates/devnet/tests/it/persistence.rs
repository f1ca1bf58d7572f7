//! `state_dir`: the chain survives a restart and a kill -9.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use aik_devnet::{Devnet, DevnetConfig};
use alloy::{
    eips::BlockNumberOrTag,
    network::TransactionBuilder,
    primitives::{Address, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
};

use crate::util::{Counter, wallet_provider};

fn config(dir: &std::path::Path) -> DevnetConfig {
    DevnetConfig { state_dir: Some(dir.to_path_buf()), ..DevnetConfig::test() }
}

#[tokio::test]
async fn restart_keeps_blocks_receipts_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::spawn(config(dir.path())).await.unwrap();
    let provider = wallet_provider(&devnet, 0);
    let counter = Counter::deploy(&provider, U256::from(40)).await.unwrap();
    let receipt = counter.increment().send().await.unwrap().get_receipt().await.unwrap();
    let latest = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();
    let address = *counter.address();
    devnet.shutdown().await.unwrap();

    let devnet = Devnet::spawn(config(dir.path())).await.unwrap();
    let provider = wallet_provider(&devnet, 0);
    let counter = Counter::new(address, &provider);
    assert_eq!(provider.get_block_number().await.unwrap(), 2);
    let reloaded = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();
    assert_eq!(reloaded.header.hash, latest.header.hash);
    let reloaded_receipt =
        provider.get_transaction_receipt(receipt.transaction_hash).await.unwrap().unwrap();
    assert_eq!(reloaded_receipt.inner.logs().len(), 1);
    assert_eq!(counter.count().call().await.unwrap(), U256::from(41));
    // The chain continues: nonces, state and parent hashes carry on.
    let next = counter.increment().send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(next.block_number, Some(3));
    assert_eq!(counter.count().call().await.unwrap(), U256::from(42));
    let block = provider.get_block_by_number(3.into()).await.unwrap().unwrap();
    assert_eq!(block.header.parent_hash, latest.header.hash);
    assert_eq!(block.header.state_root, {
        // Same state root from a fresh replay of the committed data: restart once more.
        devnet.shutdown().await.unwrap();
        let devnet = Devnet::spawn(config(dir.path())).await.unwrap();
        let provider = wallet_provider(&devnet, 0);
        provider.get_block_by_number(3.into()).await.unwrap().unwrap().header.state_root
    });
}

/// Not a test by itself: the child process of `survives_kill_9`. It serves a chain from the
/// directory in `AIK_DEVNET_CHILD_DIR`, prints its port, and runs until killed.
#[tokio::test]
#[ignore = "child process of survives_kill_9"]
async fn child_node_process() {
    let Ok(dir) = std::env::var("AIK_DEVNET_CHILD_DIR") else { return };
    let devnet = Devnet::spawn(config(std::path::Path::new(&dir))).await.unwrap();
    println!("PORT {}", devnet.local_addr().port());
    std::future::pending::<()>().await;
}

fn spawn_child(dir: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["persistence::child_node_process", "--exact", "--ignored", "--nocapture"])
        .env("AIK_DEVNET_CHILD_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        let line = lines.next().expect("child prints its port").unwrap();
        if let Some(port) = line.strip_prefix("PORT ") {
            break port.to_string();
        }
    };
    (child, format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let signer = aik_devnet::derive_dev_accounts(aik_devnet::DEV_MNEMONIC, 1).unwrap().remove(0);
    let to = Address::repeat_byte(0x77);
    let (mut child, url) = spawn_child(dir.path());
    let provider = alloy::providers::ProviderBuilder::new()
        .wallet(alloy::network::EthereumWallet::from(signer.signer.clone()))
        .connect_http(url.parse().unwrap());
    let mut hashes = Vec::new();
    for _ in 0..5 {
        let tx = TransactionRequest::default().with_to(to).with_value(U256::from(1_000));
        let receipt = provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
        hashes.push(receipt.transaction_hash);
    }
    let latest = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();
    // SIGKILL: no destructor, no flush, no goodbye.
    child.kill().unwrap();
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let (mut child, url) = spawn_child(dir.path());
    let provider = alloy::providers::ProviderBuilder::new()
        .wallet(alloy::network::EthereumWallet::from(signer.signer))
        .connect_http(url.parse().unwrap());
    assert_eq!(provider.get_block_number().await.unwrap(), 5);
    let reloaded = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();
    assert_eq!(reloaded.header.hash, latest.header.hash);
    for hash in &hashes {
        assert!(provider.get_transaction_receipt(*hash).await.unwrap().is_some());
    }
    assert_eq!(provider.get_balance(to).await.unwrap(), U256::from(5_000));
    let tx = TransactionRequest::default().with_to(to).with_value(U256::from(1_000));
    let receipt = provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
    assert_eq!(receipt.block_number, Some(6));
    child.kill().unwrap();
    child.wait().unwrap();
}
