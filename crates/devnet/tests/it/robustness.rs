//! Bad input and load get errors or answers, never a crash.

use alloy::providers::Provider;
use serde_json::{Value, json};

use crate::util::{devnet, plain_provider, post, rpc};

#[tokio::test]
async fn malformed_requests_get_json_rpc_errors() {
    let devnet = devnet().await;
    let (status, response) = post(&devnet, "{not json").await;
    assert_eq!(status, 200);
    assert_eq!(response["error"]["code"], json!(-32700));
    assert_eq!(response["id"], Value::Null);

    let (_, response) = post(&devnet, "[]").await;
    assert_eq!(response["error"]["code"], json!(-32600));
    let (_, response) = post(&devnet, "17").await;
    assert_eq!(response["error"]["code"], json!(-32600));
    let (_, response) = post(&devnet, r#"{"id":1,"method":5}"#).await;
    assert_eq!(response["error"]["code"], json!(-32600));

    let response = rpc(&devnet, "eth_fooBar", json!([])).await;
    assert_eq!(response["error"]["code"], json!(-32601));
    assert!(response["error"]["message"].as_str().unwrap().contains("eth_fooBar"));

    // Wrong params: each names the argument and what was wrong.
    let response = rpc(&devnet, "eth_getBalance", json!(["0x1234"])).await;
    assert_eq!(response["error"]["code"], json!(-32602));
    assert!(response["error"]["message"].as_str().unwrap().contains("address"), "{response}");
    let response = rpc(&devnet, "eth_getBalance", json!([])).await;
    assert_eq!(response["error"]["code"], json!(-32602));
    assert!(response["error"]["message"].as_str().unwrap().contains("missing"), "{response}");
    let response = rpc(&devnet, "eth_getBlockByNumber", json!(["yesterday", false])).await;
    assert_eq!(response["error"]["code"], json!(-32602));
    let response = rpc(&devnet, "eth_feeHistory", json!(["-3", "latest", []])).await;
    assert_eq!(response["error"]["code"], json!(-32602));
    let response = rpc(&devnet, "eth_sendRawTransaction", json!(["0xzz"])).await;
    assert_eq!(response["error"]["code"], json!(-32602));
    let response = rpc(&devnet, "eth_subscribe", json!(["newHeads"])).await;
    assert_eq!(response["error"]["code"], json!(-32000), "no subscriptions over HTTP");
    let response = rpc(
        &devnet,
        "eth_getBalance",
        json!(["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x5"]),
    )
    .await;
    assert_eq!(response["error"]["code"], json!(-32000));
    assert!(response["error"]["message"].as_str().unwrap().contains("block 5"), "{response}");

    // Still serving.
    assert_eq!(plain_provider(&devnet).get_chain_id().await.unwrap(), 31337);
}

#[tokio::test]
async fn browsers_may_call_from_other_origins() {
    let devnet = devnet().await;
    let client = alloy::transports::http::reqwest::Client::new();
    let preflight = client
        .request(alloy::transports::http::reqwest::Method::OPTIONS, devnet.http_url())
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let (status, response) =
        post(&devnet, r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(response["result"], json!("0x7a69"));
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let devnet = devnet().await;
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{{"data":"0x{}"}}]}}"#,
        "ab".repeat(10 * 1024 * 1024)
    );
    let (status, response) = post(&devnet, huge).await;
    assert_eq!(status, 413);
    assert_eq!(response["error"]["code"], json!(-32600));
    assert_eq!(plain_provider(&devnet).get_chain_id().await.unwrap(), 31337);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_requests_is_answered() {
    let devnet = devnet().await;
    let url = devnet.http_url();
    let client = alloy::transports::http::reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1_000u64 {
        let client = client.clone();
        let url = url.clone();
        tasks.spawn(async move {
            let body = if i % 10 == 0 {
                "{broken".to_string()
            } else {
                json!({"jsonrpc": "2.0", "id": i, "method": "eth_blockNumber"}).to_string()
            };
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("answered");
            let value: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            (i, value)
        });
    }
    let mut answered = 0;
    while let Some(result) = tasks.join_next().await {
        let (i, value) = result.unwrap();
        if i % 10 == 0 {
            assert_eq!(value["error"]["code"], json!(-32700));
        } else {
            assert_eq!(value["result"], json!("0x0"), "{value}");
            assert_eq!(value["id"], json!(i));
        }
        answered += 1;
    }
    assert_eq!(answered, 1_000);
    assert_eq!(plain_provider(&devnet).get_chain_id().await.unwrap(), 31337);
}
