//! Shared helpers: a chain per test, providers, raw JSON-RPC over HTTP.

use aik_devnet::{Devnet, DevnetConfig};
use alloy::{
    network::EthereumWallet,
    providers::{DynProvider, Provider, ProviderBuilder},
    sol,
    transports::http::reqwest,
};
use serde_json::Value;

sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    Counter,
    "tests/fixtures/Counter.json"
);

pub(crate) async fn devnet() -> Devnet {
    Devnet::spawn(DevnetConfig::test()).await.expect("devnet starts")
}

/// A provider that signs locally with dev account `index`.
pub(crate) fn wallet_provider(devnet: &Devnet, index: usize) -> DynProvider {
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(devnet.accounts()[index].signer.clone()))
        .connect_http(devnet.http_url().parse().unwrap())
        .erased()
}

/// A provider without a wallet: sends go through `eth_sendTransaction`.
pub(crate) fn plain_provider(devnet: &Devnet) -> DynProvider {
    ProviderBuilder::new().connect_http(devnet.http_url().parse().unwrap()).erased()
}

/// Posts `body` and returns (HTTP status, parsed JSON or Null for an empty body).
pub(crate) async fn post(devnet: &Devnet, body: impl Into<String>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(devnet.http_url())
        .header("content-type", "application/json")
        .body(body.into())
        .send()
        .await
        .expect("request is answered");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
    (status, value)
}

/// One JSON-RPC call over HTTP; returns the whole response object.
pub(crate) async fn rpc(devnet: &Devnet, method: &str, params: Value) -> Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    post(devnet, body.to_string()).await.1
}
