//! Workers registered with a capacity of 2 hold two prompts at once: both are assigned the
//! moment they are submitted (none waits in the queue), each worker serves both, and both
//! finalize with outputs that verify.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use aik_devnet::{Devnet, DevnetConfig};
use aik_infer::{
    ExecOptions, LlamaGgufDriver, ModelDriver,
    fixture::{TinyLlamaSpec, tiny_llama_gguf},
};
use aik_kernel::{
    DeployParams, KernelClient, PromptRequest, PromptStatus, load_context, wallet_provider,
};
use aik_node::{
    Engine, NodeDb, Worker, WorkerConfig,
    network::{deploy, fund_workers, model_spec},
};
use alloy::primitives::U256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_with_capacity_two_serve_two_prompts_at_once() {
    let devnet = Devnet::spawn(DevnetConfig::test()).await.unwrap();
    let accounts = devnet.accounts().to_vec();
    let owner = accounts[0].signer.clone();
    let dir = tempfile::tempdir().unwrap();
    let model_file = dir.path().join("tiny.gguf");
    std::fs::write(&model_file, tiny_llama_gguf(&TinyLlamaSpec::default()).unwrap()).unwrap();
    let spec =
        model_spec(&model_file, "tiny", vec!["https://example.com/tiny.gguf".into()], 3).unwrap();
    let params = DeployParams::dev(owner.address());
    let deployment =
        deploy(&devnet.http_url(), Some(devnet.ws_url()), &owner, &params, &spec).await.unwrap();
    let workers: Vec<_> = accounts[1..4].iter().map(|a| a.address).collect();
    fund_workers(&deployment, &owner, &workers, params.min_stake).await.unwrap();
    let engine = Engine::llama(Arc::new(
        LlamaGgufDriver::load(&model_file, ExecOptions::default()).unwrap(),
    ));

    // Registered with capacity 2, but not serving yet: both prompts must be taken by the same
    // three workers while neither has been answered.
    let mut serving = Vec::new();
    for account in &accounts[1..4] {
        let mut config = WorkerConfig::new(
            deployment.rpc_url.clone(),
            account.signer.clone(),
            deployment.addresses(),
        );
        config.ws_url = deployment.ws_url.clone();
        config.models = vec![U256::from(deployment.model_id)];
        config.start_block = deployment.deploy_block;
        config.capacity = 2;
        let db = NodeDb::open(&dir.path().join(format!("{}.redb", account.address))).unwrap();
        let worker = Arc::new(Worker::new(config, engine.clone(), db).unwrap());
        worker.ensure_registered().await.unwrap();
        serving.push(worker);
    }
    let provider = wallet_provider(&devnet.http_url(), accounts[5].signer.clone()).unwrap();
    let requester =
        KernelClient::new(provider.clone(), accounts[5].address, deployment.addresses());
    let mut ids = Vec::new();
    for (topic, input) in [("a", "First question?"), ("b", "Second question?")] {
        let mut request = PromptRequest::text(deployment.model_id, topic, input);
        request.max_tokens = 8;
        let submitted = requester.submit(&request).await.unwrap();
        assert!(submitted.assigned, "prompt {} waits in the queue", submitted.prompt_id);
        ids.push(submitted.prompt_id);
    }
    for worker in &workers {
        let info = requester.worker(*worker).await.unwrap();
        assert_eq!((info.capacity, info.busy), (2, 2), "worker {worker}");
    }

    let started = Instant::now();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = serving
        .into_iter()
        .map(|worker| {
            let stopped = stopped.clone();
            tokio::spawn(async move { worker.run(stopped).await })
        })
        .collect();
    for &id in &ids {
        loop {
            let (status, hash, _) = requester.result(id).await.unwrap();
            if status == PromptStatus::Finalized {
                let context = load_context(&provider, &deployment.addresses(), id).await.unwrap();
                let (_, output) = engine.run_blocking(context).await.unwrap();
                assert_eq!(aik_kernel::output_hash(&output.bytes), hash, "prompt {id} verifies");
                break;
            }
            assert_ne!(status, PromptStatus::Refunded, "prompt {id} was refunded");
            assert!(started.elapsed() < Duration::from_secs(60), "prompt {id} still {status:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    eprintln!("both prompts finalized in {:.2} s", started.elapsed().as_secs_f64());
    for worker in &workers {
        assert_eq!(requester.worker(*worker).await.unwrap().busy, 0, "worker {worker} is free");
    }

    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    devnet.shutdown().await.unwrap();
}
