//! `eth_subscribe` over WebSocket with alloy's pubsub provider.

use std::time::Duration;

use alloy::{
    network::EthereumWallet,
    primitives::U256,
    providers::{Provider, ProviderBuilder},
    rpc::types::Filter,
    sol_types::SolEvent,
    transports::ws::WsConnect,
};
use futures_util::StreamExt;

use crate::util::{Counter, devnet};

#[tokio::test]
async fn subscribes_to_new_heads_and_logs() {
    let devnet = devnet().await;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(devnet.accounts()[0].signer.clone()))
        .connect_ws(WsConnect::new(devnet.ws_url()))
        .await
        .unwrap();
    let counter = Counter::deploy(&provider, U256::ZERO).await.unwrap();
    let mut heads = provider.subscribe_blocks().await.unwrap().into_stream();
    let filter = Filter::new()
        .address(*counter.address())
        .event_signature(Counter::Incremented::SIGNATURE_HASH);
    let mut logs = provider.subscribe_logs(&filter).await.unwrap().into_stream();

    let receipt = counter.increment().send().await.unwrap().get_receipt().await.unwrap();
    counter.add(U256::from(4)).send().await.unwrap().get_receipt().await.unwrap();

    let timeout = Duration::from_secs(10);
    let head = tokio::time::timeout(timeout, heads.next()).await.unwrap().unwrap();
    assert_eq!(head.number, receipt.block_number.unwrap());
    assert_eq!(Some(head.hash), receipt.block_hash);
    let head = tokio::time::timeout(timeout, heads.next()).await.unwrap().unwrap();
    assert_eq!(head.number, receipt.block_number.unwrap() + 1);

    let first = tokio::time::timeout(timeout, logs.next()).await.unwrap().unwrap();
    let second = tokio::time::timeout(timeout, logs.next()).await.unwrap().unwrap();
    let counts: Vec<U256> = [first, second]
        .iter()
        .map(|log| Counter::Incremented::decode_log(&log.inner).unwrap().newCount)
        .collect();
    assert_eq!(counts, vec![U256::from(1), U256::from(5)]);
}

#[tokio::test]
async fn raw_websocket_subscription_messages_have_the_standard_shape() {
    use futures_util::SinkExt;
    use serde_json::{Value, json};
    use tokio_tungstenite::tungstenite::Message;

    let devnet = devnet().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(devnet.ws_url()).await.unwrap();
    let request =
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]});
    socket.send(Message::Text(request.to_string().into())).await.unwrap();
    let next_json =
        |message: Message| -> Value { serde_json::from_str(message.to_text().unwrap()).unwrap() };
    let response = next_json(socket.next().await.unwrap().unwrap());
    let id = response["result"].as_str().expect("subscription id").to_string();

    let mine = json!({"jsonrpc": "2.0", "id": 2, "method": "evm_mine", "params": []});
    socket.send(Message::Text(mine.to_string().into())).await.unwrap();
    let mut seen_response = false;
    let mut head = None;
    while head.is_none() || !seen_response {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let value = next_json(message);
        if value["id"] == json!(2) {
            seen_response = true;
        } else {
            assert_eq!(value["method"], json!("eth_subscription"));
            assert_eq!(value["params"]["subscription"], json!(id));
            head = Some(value["params"]["result"].clone());
        }
    }
    let head = head.unwrap();
    assert_eq!(head["number"], json!("0x1"));
    assert!(head["hash"].as_str().unwrap().starts_with("0x"));

    let unsubscribe =
        json!({"jsonrpc": "2.0", "id": 3, "method": "eth_unsubscribe", "params": [id]});
    socket.send(Message::Text(unsubscribe.to_string().into())).await.unwrap();
    let response = next_json(socket.next().await.unwrap().unwrap());
    assert_eq!(response["result"], json!(true));
}
