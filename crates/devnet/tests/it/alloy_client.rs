//! The alloy provider against the chain: deploy, every tx type, receipts, logs, calls, `evm_*`.

use alloy::{
    eips::BlockNumberOrTag,
    network::{ReceiptResponse, TransactionBuilder},
    primitives::{Address, U64, U256, address},
    providers::Provider,
    rpc::types::{AccessList, AccessListItem, Filter, TransactionRequest},
    sol_types::SolEvent,
};
use serde_json::json;

use crate::util::{Counter, devnet, plain_provider, rpc, wallet_provider};

const ETHER: u128 = 1_000_000_000_000_000_000;

#[tokio::test]
async fn dev_accounts_are_prefunded_and_listed() {
    let devnet = devnet().await;
    let provider = plain_provider(&devnet);
    assert_eq!(provider.get_chain_id().await.unwrap(), 31337);
    let accounts = provider.get_accounts().await.unwrap();
    assert_eq!(accounts.len(), 10);
    assert_eq!(accounts[0], address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"));
    assert_eq!(accounts[1], address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"));
    for account in &accounts {
        assert_eq!(provider.get_balance(*account).await.unwrap(), U256::from(10_000 * ETHER));
    }
    assert_eq!(provider.get_block_number().await.unwrap(), 0);
    let version: String = provider.raw_request("web3_clientVersion".into(), ()).await.unwrap();
    assert!(version.starts_with("aik-devnet/v"), "{version}");
    let net_version: String = provider.raw_request("net_version".into(), ()).await.unwrap();
    assert_eq!(net_version, "31337");
}

#[tokio::test]
async fn deploys_a_contract_and_reads_events_and_state() {
    let devnet = devnet().await;
    let provider = wallet_provider(&devnet, 0);
    let counter = Counter::deploy(&provider, U256::from(5)).await.unwrap();
    assert_eq!(
        *counter.address(),
        devnet.accounts()[0].address.create(0),
        "CREATE address from sender and nonce"
    );
    assert!(!provider.get_code_at(*counter.address()).await.unwrap().is_empty());
    assert_eq!(counter.count().call().await.unwrap(), U256::from(5));
    assert_eq!(counter.owner().call().await.unwrap(), devnet.accounts()[0].address);

    let receipt = counter.increment().send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.block_number, Some(2), "one block per transaction");
    assert_eq!(receipt.from, devnet.accounts()[0].address);
    assert_eq!(receipt.to, Some(*counter.address()));
    assert!(receipt.gas_used > 21_000);
    assert_eq!(receipt.cumulative_gas_used(), receipt.gas_used);
    assert!(receipt.effective_gas_price > 0);
    let logs = receipt.inner.logs();
    assert_eq!(logs.len(), 1);
    let event = Counter::Incremented::decode_log(&logs[0].inner).unwrap();
    assert_eq!(event.by, devnet.accounts()[0].address);
    assert_eq!(event.newCount, U256::from(6));
    assert_eq!(logs[0].log_index, Some(0));
    assert_eq!(logs[0].transaction_hash, Some(receipt.transaction_hash));
    assert!(
        receipt
            .inner
            .logs_bloom()
            .contains_input(alloy::primitives::BloomInput::Raw(counter.address().as_slice()))
    );
    assert_eq!(counter.count().call().await.unwrap(), U256::from(6));
    assert_eq!(
        provider.get_storage_at(*counter.address(), U256::ZERO).await.unwrap(),
        U256::from(6)
    );

    // The same event through eth_getLogs, filtered by address, topic and range.
    counter.add(U256::from(10)).send().await.unwrap().get_receipt().await.unwrap();
    let filter = Filter::new()
        .address(*counter.address())
        .event_signature(Counter::Incremented::SIGNATURE_HASH)
        .from_block(0);
    let logs = provider.get_logs(&filter).await.unwrap();
    let counts: Vec<U256> = logs
        .iter()
        .map(|log| Counter::Incremented::decode_log(&log.inner).unwrap().newCount)
        .collect();
    assert_eq!(counts, vec![U256::from(6), U256::from(16)]);
    assert_eq!(logs[1].block_number, Some(3));
    let only_last = provider.get_logs(&filter.clone().from_block(3).to_block(3)).await.unwrap();
    assert_eq!(only_last.len(), 1);
    let other_address = provider.get_logs(&filter.address(Address::ZERO)).await.unwrap();
    assert!(other_address.is_empty());

    // Blocks by number (hashes and full) and by hash agree with the receipt.
    let block =
        provider.get_block_by_number(BlockNumberOrTag::Number(2)).full().await.unwrap().unwrap();
    assert_eq!(block.header.number, 2);
    assert_eq!(block.transactions.len(), 1);
    assert_eq!(block.transactions.hashes().next(), Some(receipt.transaction_hash));
    assert_eq!(block.header.hash, block.header.inner.hash_slow(), "header hash is real");
    let by_hash = provider.get_block_by_hash(block.header.hash).await.unwrap().unwrap();
    assert_eq!(by_hash.header.number, 2);
    let parent = provider.get_block_by_number(1.into()).await.unwrap().unwrap();
    assert_eq!(block.header.parent_hash, parent.header.hash);
    assert!(block.header.base_fee_per_gas.is_some());
    let tx = provider.get_transaction_by_hash(receipt.transaction_hash).await.unwrap().unwrap();
    assert_eq!(tx.block_number, Some(2));
    assert_eq!(tx.inner.signer(), devnet.accounts()[0].address);
    assert!(provider.get_block_by_number(99.into()).await.unwrap().is_none());
    let missing = provider.get_transaction_receipt(alloy::primitives::B256::ZERO).await.unwrap();
    assert!(missing.is_none());
}

#[tokio::test]
async fn mines_legacy_2930_and_1559_transactions() {
    let devnet = devnet().await;
    let provider = wallet_provider(&devnet, 0);
    let to = devnet.accounts()[5].address;
    let base = TransactionRequest::default().with_to(to).with_value(U256::from(1_000));

    let legacy = base.clone().with_gas_price(2_000_000_000);
    let access_list = AccessList(vec![AccessListItem { address: to, storage_keys: vec![] }]);
    let eip2930 = base.clone().with_gas_price(2_000_000_000).with_access_list(access_list);
    let eip1559 = base.clone();
    let mut types = Vec::new();
    for request in [legacy, eip2930, eip1559] {
        let receipt =
            provider.send_transaction(request).await.unwrap().get_receipt().await.unwrap();
        assert!(receipt.status());
        types.push(receipt.transaction_type() as u8);
        let tx = provider.get_transaction_by_hash(receipt.transaction_hash).await.unwrap().unwrap();
        assert_eq!(alloy::consensus::Typed2718::ty(&tx), receipt.transaction_type() as u8);
    }
    assert_eq!(types, vec![0, 1, 2]);
    assert_eq!(provider.get_balance(to).await.unwrap(), U256::from(10_000 * ETHER + 3_000));
    assert_eq!(provider.get_transaction_count(devnet.accounts()[0].address).await.unwrap(), 3);
    assert_eq!(provider.get_block_number().await.unwrap(), 3);
}

#[tokio::test]
async fn eth_send_transaction_signs_for_unlocked_accounts() {
    let devnet = devnet().await;
    let provider = plain_provider(&devnet);
    let from = devnet.accounts()[2].address;
    let to = devnet.accounts()[3].address;
    let request =
        TransactionRequest::default().with_from(from).with_to(to).with_value(U256::from(ETHER));
    let receipt = provider.send_transaction(request).await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.from, from);
    assert_eq!(provider.get_balance(to).await.unwrap(), U256::from(10_001 * ETHER));
    let fee = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    assert_eq!(provider.get_balance(from).await.unwrap(), U256::from(9_999 * ETHER) - fee);

    // Deploying through eth_sendTransaction too.
    let deploy = TransactionRequest::default().with_from(from).with_deploy_code(
        [Counter::BYTECODE.to_vec(), U256::from(7).to_be_bytes::<32>().to_vec()].concat(),
    );
    let receipt = provider.send_transaction(deploy).await.unwrap().get_receipt().await.unwrap();
    let address = receipt.contract_address.expect("deploy receipt has the address");
    let counter = Counter::new(address, &provider);
    assert_eq!(counter.count().call().await.unwrap(), U256::from(7));

    let stranger = Address::repeat_byte(0x42);
    let err = provider
        .send_transaction(TransactionRequest::default().with_from(stranger).with_to(to))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown account"), "{err}");
}

#[tokio::test]
async fn estimates_gas_that_is_enough_and_tight() {
    let devnet = devnet().await;
    let provider = wallet_provider(&devnet, 0);
    let counter = Counter::deploy(&provider, U256::ZERO).await.unwrap();
    let estimate = counter.increment().estimate_gas().await.unwrap();
    let receipt =
        counter.increment().gas(estimate).send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status(), "the estimate is enough");
    // The first increment writes a fresh slot (22100 gas), the estimate must cover it but not
    // be wildly above what was used.
    assert!(estimate >= receipt.gas_used, "{estimate} < {}", receipt.gas_used);
    assert!(estimate < receipt.gas_used * 11 / 10, "{estimate} vs {}", receipt.gas_used);
    let transfer =
        TransactionRequest::default().with_to(Address::repeat_byte(1)).with_value(U256::from(1));
    assert_eq!(provider.estimate_gas(transfer).await.unwrap(), 21_000);
}

#[tokio::test]
async fn evm_time_helpers_and_snapshots() {
    let devnet = devnet().await;
    let provider = wallet_provider(&devnet, 0);
    let counter = Counter::deploy(&provider, U256::ZERO).await.unwrap();
    let before = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();

    let offset: i64 = provider.raw_request("evm_increaseTime".into(), (3_600,)).await.unwrap();
    assert_eq!(offset, 3_600);
    let _: String = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    let mined = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();
    assert_eq!(mined.header.number, before.header.number + 1);
    assert!(mined.header.timestamp >= before.header.timestamp + 3_600);

    let target = mined.header.timestamp + 1_000;
    let _: serde_json::Value =
        provider.raw_request("evm_setNextBlockTimestamp".into(), (target,)).await.unwrap();
    counter.increment().send().await.unwrap().get_receipt().await.unwrap();
    let latest = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();
    assert_eq!(latest.header.timestamp, target);
    // Views see the latest block's time.
    assert_eq!(counter.timestamp().call().await.unwrap(), U256::from(target));

    let snapshot: U64 = provider.raw_request("evm_snapshot".into(), ()).await.unwrap();
    let number = provider.get_block_number().await.unwrap();
    counter.increment().send().await.unwrap().get_receipt().await.unwrap();
    counter.increment().send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(counter.count().call().await.unwrap(), U256::from(3));
    let reverted: bool = provider.raw_request("evm_revert".into(), (snapshot,)).await.unwrap();
    assert!(reverted);
    assert_eq!(provider.get_block_number().await.unwrap(), number);
    assert_eq!(counter.count().call().await.unwrap(), U256::from(1));
    // A snapshot is used up by reverting to it.
    let again: bool = provider.raw_request("evm_revert".into(), (snapshot,)).await.unwrap();
    assert!(!again);
    // The chain goes on after a revert; the nonce went back too, so a client that caches
    // nonces (alloy's wallet filler does) needs a fresh provider, as with Anvil and Hardhat.
    let provider = wallet_provider(&devnet, 0);
    let counter = Counter::new(*counter.address(), &provider);
    counter.increment().send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(provider.get_block_number().await.unwrap(), number + 1);
    // hardhat_mine: several blocks one interval apart.
    let start = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();
    let _: serde_json::Value =
        provider.raw_request("hardhat_mine".into(), ("0x3", "0xa")).await.unwrap();
    let end = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();
    assert_eq!(end.header.number, start.header.number + 3);
    assert!(end.header.timestamp >= start.header.timestamp + 20);
    // BLOCKHASH sees mined blocks.
    let parent = provider.get_block_by_number(number.into()).await.unwrap().unwrap();
    assert_eq!(counter.blockHashOf(U256::from(number)).call().await.unwrap(), parent.header.hash);
}

#[tokio::test]
async fn fee_history_and_gas_price_follow_the_base_fee() {
    let devnet = devnet().await;
    let provider = wallet_provider(&devnet, 0);
    for _ in 0..3 {
        let tx = TransactionRequest::default()
            .with_to(Address::repeat_byte(9))
            .with_value(U256::from(1));
        provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
    }
    let history = provider.get_fee_history(4, BlockNumberOrTag::Latest, &[50.0]).await.unwrap();
    assert_eq!(history.oldest_block, 0);
    assert_eq!(history.base_fee_per_gas.len(), 5);
    assert_eq!(history.base_fee_per_gas[0], 1_000_000_000);
    // Blocks far below the gas target: the base fee falls by 1/8 each block.
    assert_eq!(history.base_fee_per_gas[1], 875_000_000);
    let rewards = history.reward.unwrap();
    assert_eq!(rewards.len(), 4);
    assert_eq!(rewards[0], vec![0], "empty genesis block");
    assert!(rewards[1][0] > 0);
    let latest = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();
    let next_base_fee = *history.base_fee_per_gas.last().unwrap();
    assert!(next_base_fee < u128::from(latest.header.base_fee_per_gas.unwrap()));
    let gas_price = provider.get_gas_price().await.unwrap();
    assert_eq!(gas_price, next_base_fee + 1_000_000_000);
}

#[tokio::test]
async fn filters_report_changes_since_the_last_poll() {
    let devnet = devnet().await;
    let provider = wallet_provider(&devnet, 0);
    let counter = Counter::deploy(&provider, U256::ZERO).await.unwrap();
    let log_filter = provider
        .new_filter(
            &Filter::new()
                .address(*counter.address())
                .event_signature(Counter::Incremented::SIGNATURE_HASH),
        )
        .await
        .unwrap();
    let block_filter = provider.new_block_filter().await.unwrap();
    counter.increment().send().await.unwrap().get_receipt().await.unwrap();
    counter.increment().send().await.unwrap().get_receipt().await.unwrap();

    let logs: Vec<alloy::rpc::types::Log> = provider.get_filter_changes(log_filter).await.unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(Counter::Incremented::decode_log(&logs[1].inner).unwrap().newCount, U256::from(2));
    let hashes: Vec<alloy::primitives::B256> =
        provider.get_filter_changes(block_filter).await.unwrap();
    assert_eq!(hashes.len(), 2);
    let latest = provider.get_block_by_number(BlockNumberOrTag::Latest).await.unwrap().unwrap();
    assert_eq!(hashes[1], latest.header.hash);
    // Nothing new since the last poll.
    let logs: Vec<alloy::rpc::types::Log> = provider.get_filter_changes(log_filter).await.unwrap();
    assert!(logs.is_empty());
    assert!(provider.uninstall_filter(log_filter).await.unwrap());
    assert!(!provider.uninstall_filter(log_filter).await.unwrap());
    let err = provider.get_filter_changes::<alloy::rpc::types::Log>(log_filter).await.unwrap_err();
    assert!(err.to_string().contains("filter not found"), "{err}");
}

#[tokio::test]
async fn batch_requests_are_answered_in_order() {
    let devnet = devnet().await;
    let body = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": "two", "method": "eth_blockNumber"},
        {"jsonrpc": "2.0", "id": 3, "method": "no_such_method", "params": []},
        {"jsonrpc": "2.0", "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_getBalance", "params": ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"]},
    ]);
    let (status, response) = crate::util::post(&devnet, body.to_string()).await;
    assert_eq!(status, 200);
    let responses = response.as_array().unwrap();
    assert_eq!(responses.len(), 4, "the notification gets no answer: {response}");
    assert_eq!(responses[0], json!({"jsonrpc": "2.0", "id": 1, "result": "0x7a69"}));
    assert_eq!(responses[1]["id"], json!("two"));
    assert_eq!(responses[1]["result"], json!("0x0"));
    assert_eq!(responses[2]["error"]["code"], json!(-32601));
    assert_eq!(responses[3]["result"], json!("0x21e19e0c9bab2400000"));

    // alloy's own batch client.
    let client = alloy::rpc::client::RpcClient::new_http(devnet.http_url().parse().unwrap());
    let mut batch = client.new_batch();
    let chain_id = batch.add_call::<_, U64>("eth_chainId", &()).unwrap();
    let number = batch.add_call::<_, U64>("eth_blockNumber", &()).unwrap();
    batch.send().await.unwrap();
    assert_eq!(chain_id.await.unwrap(), U64::from(31337));
    assert_eq!(number.await.unwrap(), U64::ZERO);
    let pending_nonce = rpc(
        &devnet,
        "eth_getTransactionCount",
        json!(["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "pending"]),
    )
    .await;
    assert_eq!(pending_nonce["result"], json!("0x0"));
}
