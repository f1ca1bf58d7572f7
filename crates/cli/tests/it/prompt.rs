//! `aik prompt --offchain`: input and extra context held in the content store, not onchain.

use std::sync::Arc;

use aik_infer::{ExecOptions, LlamaGgufDriver};
use aik_kernel::{ContentId, PromptStore, load_context, load_context_with};
use aik_node::Engine;
use alloy::{primitives::U256, providers::ProviderBuilder};

use crate::support::{Network, Serving, serve_workers, stdout_of, stop_all, tiny_model};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offchain_prompt_finalizes_with_the_onchain_output_and_verifies() {
    let net = Network::start().await;
    // The deployment's model, where `aik verify` (same home) finds it without a download.
    let (model, _) = tiny_model(net.dir.path(), 42);
    let store_dir = net.home().join("store");
    let store = aik_store::LocalStore::open(&store_dir).await.unwrap();
    store.put_file(&model).await.unwrap();

    // Three workers reading prompt data from the same store as the `aik` commands, no IPFS.
    let engine =
        Engine::new(Arc::new(LlamaGgufDriver::load(&model, ExecOptions::default()).unwrap()));
    let (stop, tasks) = serve(&net, &engine, &store_dir).await;

    let ask = |topic: &'static str, offchain: bool| {
        let mut args =
            vec!["prompt", "--json", "--timeout", "60", "--max-tokens", "6", "--topic", topic];
        if offchain {
            args.push("--offchain");
        }
        args.extend(["--extra", "Answer in one word.", "What is two plus two?"]);
        let net = &net;
        async move {
            let json = stdout_of(&net.aik(&args).await);
            serde_json::from_str::<serde_json::Value>(&json).unwrap()
        }
    };
    let onchain = ask("on", false).await;
    let offchain = ask("off", true).await;
    assert_eq!(onchain["status"], "finalized");
    assert_eq!(offchain["status"], "finalized");
    // The deterministic engine gives the same bytes, wherever the prompt's data lives.
    assert_eq!(offchain["output_sha256"], onchain["output_sha256"]);
    assert_eq!(offchain["output"], onchain["output"]);
    // `value` is typed JSON: a text answer is the string itself, never a debug rendering.
    assert_eq!(onchain["value"], onchain["output"]);
    assert!(onchain["value"].is_string(), "{onchain}");

    // The chain holds only references: without a store the context cannot be rebuilt.
    let id: U256 = offchain["prompt_id"].as_str().unwrap().parse().unwrap();
    let provider = ProviderBuilder::new().connect_http(net.deployment.rpc_url.parse().unwrap());
    let error = load_context(&provider, &net.deployment.addresses(), id).await.unwrap_err();
    assert!(error.to_string().contains("held in storage"), "{error}");
    // A store without the data, or with other bytes under its name, is refused with the digest.
    let empty = aik_store::LocalStore::open(net.dir.path().join("empty")).await.unwrap();
    let storage = PromptStore::new(empty.clone(), None);
    let error = load_context_with(&provider, &net.deployment.addresses(), id, &storage)
        .await
        .unwrap_err()
        .to_string();
    let digest = ContentId::of(b"What is two plus two?");
    assert!(
        error.contains(&format!(
            "the input of prompt {id} is held in storage (sha256 0x{}, 21 bytes) and cannot be read",
            digest.to_hex()
        )),
        "{error}"
    );
    std::fs::write(empty.root().join(digest.to_string()), b"What is two plus six?").unwrap();
    let error = load_context_with(&provider, &net.deployment.addresses(), id, &storage)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&format!("input of prompt {id} hashes to 0x")), "{error}");
    // A verifier with the same store rebuilds it and gets the committee's hash.
    let id = id.to_string();
    let verified = net.aik(&["verify", "--json", id.as_str()]).await;
    let verified: serde_json::Value = serde_json::from_str(&stdout_of(&verified)).unwrap();
    assert_eq!(verified["verified"], true, "{verified}");

    stop_all(stop, tasks).await;
    net.stop().await;
}

/// Three staked workers running `engine`, reading prompt data from `store_dir` only (no IPFS).
async fn serve(net: &Network, engine: &Engine, store_dir: &std::path::Path) -> Serving {
    let accounts = net.devnet.accounts().to_vec();
    let workers: Vec<_> = accounts[1..=3].iter().map(|a| (a.clone(), engine.clone())).collect();
    serve_workers(net, &workers, store_dir, |_| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_wait_for_offchain_data_that_reaches_them_late() {
    let net = Network::start().await;
    let (model, _) = tiny_model(net.dir.path(), 42);
    // The requester's store (the `aik` commands' home) gets the data; the workers' does not, yet.
    let workers_store = net.dir.path().join("workers-store");
    let engine =
        Engine::new(Arc::new(LlamaGgufDriver::load(&model, ExecOptions::default()).unwrap()));
    let (stop, tasks) = serve(&net, &engine, &workers_store).await;
    let question = b"What is two plus two?";
    let provider = ProviderBuilder::new().connect_http(net.deployment.rpc_url.parse().unwrap());
    let kernel = aik_kernel::KernelClient::new(
        provider,
        alloy::primitives::Address::ZERO,
        net.deployment.addresses(),
    );
    let args = [
        "prompt",
        "--json",
        "--timeout",
        "90",
        "--max-tokens",
        "6",
        "--offchain",
        "What is two plus two?",
    ];
    let (output, ()) = tokio::join!(net.aik(&args), async {
        let id = U256::from(1);
        while kernel.result(id).await.unwrap().0 != aik_kernel::PromptStatus::Committing {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // The workers cannot read the input: nobody commits while it is missing...
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let (_, commitments) = kernel.committee(id).await.unwrap();
        assert!(
            commitments.iter().all(|c| c.is_zero()),
            "committed without the input: {commitments:?}"
        );
        // ...and once it reaches their store, they answer.
        let store = aik_store::LocalStore::open(&workers_store).await.unwrap();
        assert_eq!(store.put(question).await.unwrap(), ContentId::of(question));
    });
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    assert_eq!(json["status"], "finalized", "{json}");
    assert_eq!(json["prompt_id"], "1");
    stop_all(stop, tasks).await;
    net.stop().await;
}
