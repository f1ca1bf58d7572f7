//! Error shapes clients rely on: geth-style reverts and transaction rejections.

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, Bytes, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolError},
};
use serde_json::json;

use crate::util::{Counter, devnet, rpc, wallet_provider};

#[tokio::test]
async fn reverts_carry_code_3_and_the_revert_data() {
    let devnet = devnet().await;
    let provider = wallet_provider(&devnet, 0);
    let counter = Counter::deploy(&provider, U256::from(999)).await.unwrap();

    // Custom error: decodable from the error data through alloy's contract error.
    let err = counter.add(U256::from(5)).call().await.unwrap_err();
    let decoded = err
        .as_decoded_interface_error::<Counter::CounterErrors>()
        .expect("revert data decodes as a Counter error");
    let Counter::CounterErrors::CounterTooHigh(too_high) = decoded;
    assert_eq!(too_high.have, U256::from(1004));
    assert_eq!(too_high.max, U256::from(1000));

    // The raw JSON-RPC shape: code 3, "execution reverted", data = revert bytes.
    let calldata = Bytes::from(Counter::addCall { amount: U256::from(5) }.abi_encode());
    let response =
        rpc(&devnet, "eth_call", json!([{"to": counter.address(), "data": calldata}, "latest"]))
            .await;
    let expected = Counter::CounterTooHigh { have: U256::from(1004), max: U256::from(1000) };
    assert_eq!(response["error"]["code"], json!(3));
    assert_eq!(response["error"]["message"], json!("execution reverted"));
    assert_eq!(response["error"]["data"], json!(Bytes::from(expected.abi_encode())));

    // Error(string): the reason is in the message too.
    let calldata = Bytes::from(Counter::failWithReasonCall {}.abi_encode());
    let response =
        rpc(&devnet, "eth_call", json!([{"to": counter.address(), "data": calldata}])).await;
    assert_eq!(response["error"]["code"], json!(3));
    assert_eq!(response["error"]["message"], json!("execution reverted: counter says no"));
    let data = response["error"]["data"].as_str().unwrap();
    assert!(data.starts_with("0x08c379a0"), "{data}");

    // eth_estimateGas of a reverting call reports the revert the same way.
    let response = rpc(
        &devnet,
        "eth_estimateGas",
        json!([{"from": devnet.accounts()[0].address, "to": counter.address(), "data": calldata}]),
    )
    .await;
    assert_eq!(response["error"]["code"], json!(3));
    assert_eq!(response["error"]["message"], json!("execution reverted: counter says no"));

    // A reverted transaction is mined with status 0.
    let receipt =
        counter.add(U256::from(5)).gas(100_000).send().await.unwrap().get_receipt().await.unwrap();
    assert!(!receipt.status());
    assert!(receipt.inner.logs().is_empty());
    assert_eq!(counter.count().call().await.unwrap(), U256::from(999));
}

fn rpc_error_message(err: impl std::fmt::Display) -> String {
    err.to_string()
}

#[tokio::test]
async fn invalid_transactions_get_the_messages_clients_expect() {
    let devnet = devnet().await;
    let provider = wallet_provider(&devnet, 0);
    let to = Address::repeat_byte(7);
    let transfer = || TransactionRequest::default().with_to(to).with_value(U256::from(1));

    // Nonce too low: a second transaction with a used nonce.
    provider.send_transaction(transfer().with_nonce(0)).await.unwrap().get_receipt().await.unwrap();
    let err = provider.send_transaction(transfer().with_nonce(0)).await.unwrap_err();
    assert!(rpc_error_message(&err).contains("nonce too low"), "{err}");

    // Nonce too high is refused too (no gaps with one block per transaction).
    let err = provider.send_transaction(transfer().with_nonce(5)).await.unwrap_err();
    assert!(rpc_error_message(&err).contains("nonce too high"), "{err}");

    // Intrinsic gas too low.
    let err = provider.send_transaction(transfer().with_gas_limit(20_000)).await.unwrap_err();
    assert!(rpc_error_message(&err).contains("intrinsic gas too low"), "{err}");

    // Gas limit above the block gas limit.
    let err = provider.send_transaction(transfer().with_gas_limit(40_000_000)).await.unwrap_err();
    let message = rpc_error_message(&err);
    assert!(message.contains("gas limit") || message.contains("block gas limit"), "{message}");

    // Insufficient funds: a fresh key with no balance.
    let broke = PrivateKeySigner::random();
    let broke_address = broke.address();
    let broke_provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(broke))
        .connect_http(devnet.http_url().parse().unwrap());
    let err = broke_provider
        .send_transaction(
            transfer()
                .with_gas_limit(21_000)
                .with_max_fee_per_gas(2_000_000_000)
                .with_max_priority_fee_per_gas(1),
        )
        .await
        .unwrap_err();
    let message = rpc_error_message(&err);
    assert!(message.contains("insufficient funds"), "{message}");
    assert!(message.to_lowercase().contains(&format!("{broke_address:#x}")[2..]), "{message}");

    // Wrong chain id.
    let err = provider.send_transaction(transfer().with_chain_id(1)).await.unwrap_err();
    assert!(rpc_error_message(&err).contains("chain id"), "{err}");

    // None of these left a block behind.
    assert_eq!(provider.get_block_number().await.unwrap(), 1);

    // Undecodable raw transactions.
    let response = rpc(&devnet, "eth_sendRawTransaction", json!(["0x02c0ffee"])).await;
    assert_eq!(response["error"]["code"], json!(-32000));
    assert!(response["error"]["message"].as_str().unwrap().contains("decode"), "{response}");
}
