//! `aik verify --challenge`, end to end: two tampering workers outvote an honest one, `aik
//! verify` re-runs the prompt, finds the mismatch and challenges it, and seven honest workers
//! (real nodes running the model) overturn the answer onchain.

use std::sync::Arc;

use aik_infer::{ExecOptions, LlamaGgufDriver, ModelDriver, fixture::Tampering};
use aik_kernel::{ChallengeStatus, KernelClient, PromptStatus, WorkerStatus, output_hash};
use aik_node::Engine;
use alloy::{primitives::U256, providers::ProviderBuilder};

use crate::support::{Network, serve_workers, stdout_of, stop_all, tiny_model};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_challenge_overturns_a_colluding_majority() {
    // The owner (requester and challenger) and ten workers.
    let net = Network::with_accounts(12).await;
    let (model, _) = tiny_model(net.dir.path(), 42);
    let store_dir = net.home().join("store");
    aik_store::LocalStore::open(&store_dir).await.unwrap().put_file(&model).await.unwrap();
    let driver = Arc::new(LlamaGgufDriver::load(&model, ExecOptions::default()).unwrap());
    let honest = Engine::llama(Arc::clone(&driver));
    let liar = honest.with_driver(Arc::new(Tampering(driver)));
    let accounts = net.devnet.accounts().to_vec();

    // Only three workers at first, so they are the committee: two liars and one honest node.
    let first = vec![
        (accounts[1].clone(), liar.clone()),
        (accounts[2].clone(), liar),
        (accounts[3].clone(), honest.clone()),
    ];
    let (stop_first, first_tasks) = serve_workers(&net, &first, &store_dir).await;
    let asked = stdout_of(
        &net.aik(&[
            "prompt",
            "--json",
            "--timeout",
            "120",
            "--max-tokens",
            "6",
            "What is six times seven?",
        ])
        .await,
    );
    let asked: serde_json::Value = serde_json::from_str(&asked).unwrap();
    assert_eq!(asked["status"], "finalized", "{asked}");
    let lie = asked["output"].as_str().unwrap().to_string();
    assert!(lie.ends_with(" (tampered)"), "the colluders won: {asked}");
    let id = asked["prompt_id"].as_str().unwrap().to_string();

    // Seven honest nodes join: the only workers a challenge committee may have.
    let more: Vec<_> = accounts[4..=10].iter().map(|a| (a.clone(), honest.clone())).collect();
    let (stop_more, more_tasks) = serve_workers(&net, &more, &store_dir).await;

    let verified = net.aik(&["verify", "--challenge", "--json", "--timeout", "300", &id]).await;
    let report: serde_json::Value = serde_json::from_str(&stdout_of(&verified)).unwrap();
    assert_eq!(report["verified"], false, "{report}");
    assert_eq!(report["challenge"], "Overturned", "{report}");
    assert_eq!(report["result_sha256"], report["actual_sha256"], "what the verifier computed");

    let provider = ProviderBuilder::new().connect_http(net.deployment.rpc_url.parse().unwrap());
    let kernel = KernelClient::new(provider, accounts[0].address, net.deployment.addresses());
    let id: U256 = id.parse().unwrap();
    let (status, hash, _) = kernel.result(id).await.unwrap();
    assert_eq!(status, PromptStatus::Finalized);
    assert_ne!(hash, output_hash(lie.as_bytes()));
    assert_eq!(kernel.challenge_of(id).await.unwrap().1, ChallengeStatus::Overturned);
    let stake = aik_kernel::DeployParams::dev(accounts[0].address).min_stake.to::<u128>();
    for colluder in &accounts[1..=2] {
        let info = kernel.worker(colluder.address).await.unwrap();
        assert_eq!((info.stake, info.status), (stake / 2, WorkerStatus::Jailed), "colluder");
    }
    let minority = kernel.worker(accounts[3].address).await.unwrap();
    assert_eq!((minority.stake, minority.status), (stake, WorkerStatus::Active), "made whole");

    stop_all(stop_more, more_tasks).await;
    stop_all(stop_first, first_tasks).await;
    net.stop().await;
}
