//! A worker running as its own OS process (`aik node run`) is killed with SIGKILL right after
//! its commitment is mined, restarted over the same database, and must still reveal in time:
//! no slash, no jail, the prompt finalizes.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crate::support::AikProcess;
use aik_devnet::{Devnet, DevnetConfig};
use aik_infer::{ExecOptions, LlamaGgufDriver};
use aik_kernel::{
    DeployParams, KernelClient, OutputFormat, PromptRequest, PromptStatus, WorkerStatus,
    bindings::DecentralizedInference as DI, wallet_provider,
};
use aik_node::{
    Deployment, Engine, NodeDb, Worker, WorkerConfig,
    network::{DEFAULT_MODEL_URI, deploy, fund_workers, model_spec},
};
use alloy::{
    primitives::{B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    sol_types::SolEvent,
};

/// Logs of event `E` for prompt `id` (every kernel event indexes the prompt id first).
async fn logs<E: SolEvent>(provider: &DynProvider, deployment: &Deployment, id: U256) -> Vec<E> {
    let filter = Filter::new()
        .address(deployment.kernel)
        .event_signature(E::SIGNATURE_HASH)
        .topic1(B256::from(id))
        .from_block(0);
    provider
        .get_logs(&filter)
        .await
        .unwrap()
        .iter()
        .map(|l| E::decode_log_data(l.data()).unwrap())
        .collect()
}

/// Polls `done` every 50 ms until it returns `Some`, failing after `limit`.
async fn wait_for<T, F: Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = done().await {
            eprintln!("{what} after {:.2} s", started.elapsed().as_secs_f64());
            return value;
        }
        assert!(started.elapsed() < limit, "no {what} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_process_killed_after_committing_reveals_after_restart() {
    let model_path = aik_infer::default_model_path().expect("a home directory");
    assert!(
        model_path.is_file(),
        "run `aik model pull` first: {} is missing",
        model_path.display()
    );
    let devnet = Devnet::spawn(DevnetConfig::test()).await.unwrap();
    let accounts = devnet.accounts().to_vec();
    let owner = accounts[0].signer.clone();
    let params = DeployParams::dev(owner.address());
    let spec = model_spec(&model_path, "SmolLM2", vec![DEFAULT_MODEL_URI.into()], 3).unwrap();
    let deployment =
        deploy(&devnet.http_url(), Some(devnet.ws_url()), &owner, &params, &spec).await.unwrap();
    let (process_account, in_process) = (&accounts[1], &accounts[2..4]);
    let workers: Vec<_> = accounts[1..4].iter().map(|a| a.address).collect();
    fund_workers(&deployment, &owner, &workers, params.min_stake).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    deployment.save(&dir.path().join("deployment.json")).unwrap();

    let provider = wallet_provider(&devnet.http_url(), accounts[5].signer.clone()).unwrap();
    let requester =
        KernelClient::new(provider.clone(), accounts[5].address, deployment.addresses());

    // The two in-process workers register now (so the committee of 3 is all three workers) but
    // only start serving after the kill: the process's commitment is then the only one on chain
    // and its reveal has to wait for theirs, so the kill always lands between commit and reveal.
    let driver = tokio::task::spawn_blocking(move || {
        LlamaGgufDriver::load(&model_path, ExecOptions::default()).unwrap()
    })
    .await
    .unwrap();
    let engine = Engine::new(Arc::new(driver));
    let mut local = Vec::new();
    for account in in_process {
        let mut config = WorkerConfig::new(
            deployment.rpc_url.clone(),
            account.signer.clone(),
            deployment.addresses(),
        );
        config.ws_url = deployment.ws_url.clone();
        config.models = vec![U256::from(deployment.model_id)];
        config.start_block = deployment.deploy_block;
        let db = NodeDb::open(&dir.path().join(format!("{}.redb", account.address))).unwrap();
        let worker = Arc::new(Worker::new(config, engine.clone(), db).unwrap());
        worker.ensure_registered().await.unwrap();
        local.push(worker);
    }

    let started = Instant::now();
    let mut node = AikProcess::node(dir.path(), process_account, 1, &[], None);
    let target = process_account.address;
    let stake_before = wait_for("the node process registered", Duration::from_secs(120), || {
        node.assert_running();
        let requester = &requester;
        async move {
            let info = requester.worker(target).await.unwrap();
            (info.status == WorkerStatus::Active).then_some(info.stake)
        }
    })
    .await;
    eprintln!("node process up in {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(stake_before, params.min_stake.to::<u128>());

    let mut request = PromptRequest::text(deployment.model_id, "kill", "Hello!");
    request.format = OutputFormat::Text;
    request.max_tokens = 4;
    let submitted = requester.submit(&request).await.unwrap();
    assert!(submitted.anchored, "three free workers take the prompt at once");
    let id = submitted.prompt_id;

    wait_for("the node process's commitment", Duration::from_secs(120), || {
        node.assert_running();
        let (provider, deployment) = (&provider, &deployment);
        async move {
            let committed = logs::<DI::OutputCommitted>(provider, deployment, id).await;
            committed.iter().any(|c| c.worker == target).then_some(())
        }
    })
    .await;
    node.kill();
    assert!(
        logs::<DI::OutputRevealed>(&provider, &deployment, id).await.is_empty(),
        "nothing can be revealed before every member committed"
    );
    assert_eq!(requester.prompt(id).await.unwrap().status, PromptStatus::Committing);

    // Restarted over the same database; then the other two members start serving.
    let mut node = AikProcess::node(dir.path(), process_account, 2, &[], None);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = local
        .iter()
        .map(|worker| {
            let (worker, stopped) = (Arc::clone(worker), stopped.clone());
            tokio::spawn(async move { worker.run(stopped).await })
        })
        .collect();

    let record = requester.prompt(id).await.unwrap();
    let status = wait_for("finalization", Duration::from_secs(300), || {
        node.assert_running();
        let requester = &requester;
        async move {
            let (status, _, _) = requester.result(id).await.unwrap();
            matches!(status, PromptStatus::Finalized | PromptStatus::Refunded).then_some(status)
        }
    })
    .await;
    assert_eq!(status, PromptStatus::Finalized);

    let commits = logs::<DI::OutputCommitted>(&provider, &deployment, id).await;
    assert_eq!(commits.iter().filter(|c| c.worker == target).count(), 1, "committed once");
    let reveals = logs::<DI::OutputRevealed>(&provider, &deployment, id).await;
    assert_eq!(reveals.len(), 3, "every member revealed: {reveals:?}");
    let reveal = reveals.iter().find(|r| r.worker == target).expect("the restarted node revealed");
    // The reveal was mined (the kernel rejects late ones) and agrees with the other members.
    assert!(reveals.iter().all(|r| r.outputHash == reveal.outputHash), "{reveals:?}");
    let reveal_filter = Filter::new()
        .address(deployment.kernel)
        .event_signature(DI::OutputRevealed::SIGNATURE_HASH)
        .topic1(B256::from(id))
        .topic2(target.into_word())
        .from_block(0);
    let reveal_block = provider.get_logs(&reveal_filter).await.unwrap()[0].block_number.unwrap();
    let reveal_time = provider.get_block_by_number(reveal_block.into()).await.unwrap().unwrap();
    assert!(
        reveal_time.header.timestamp <= record.reveal_deadline,
        "revealed at {} after the deadline {}",
        reveal_time.header.timestamp,
        record.reveal_deadline
    );
    assert!(logs::<DI::WorkerPenalized>(&provider, &deployment, id).await.is_empty());
    let info = requester.worker(target).await.unwrap();
    assert_eq!(info.status, WorkerStatus::Active);
    assert_eq!(info.stake, stake_before, "the restarted node kept its whole stake");

    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    drop(node);
    devnet.shutdown().await.unwrap();
}
