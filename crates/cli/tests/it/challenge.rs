//! `aik verify --challenge`, end to end: two tampering workers outvote an honest one, `aik
//! verify` re-runs the prompt, finds the mismatch and challenges it, and seven honest workers
//! (real nodes running the model) overturn the answer onchain.

use std::sync::Arc;

use aik_infer::{ExecOptions, LlamaGgufDriver, fixture::Tampering};
use aik_kernel::{ChallengeStatus, KernelClient, PromptStatus, WorkerStatus, output_hash};
use aik_node::Engine;
use alloy::{primitives::U256, providers::ProviderBuilder};

use crate::support::{Network, serve_workers, stdout_of, stop_all, tiny_model};

/// A network where two tampering nodes outvoted an honest one on a prompt (returned with the
/// committee's serving handle), and an honest engine for the workers that join.
struct Colluded {
    net: Network,
    honest: Engine,
    store_dir: std::path::PathBuf,
    first: crate::support::Serving,
    prompt_id: U256,
    lie: String,
}

async fn colluded() -> Colluded {
    // The owner (requester and challenger) and ten workers.
    let net = Network::with_accounts(12).await;
    let (model, _) = tiny_model(net.dir.path(), 42);
    let store_dir = net.home().join("store");
    aik_store::LocalStore::open(&store_dir).await.unwrap().put_file(&model).await.unwrap();
    let driver = Arc::new(LlamaGgufDriver::load(&model, ExecOptions::default()).unwrap());
    let honest = Engine::new(driver.clone());
    let liar = honest.with_driver(Arc::new(Tampering(driver)));
    let accounts = net.devnet.accounts().to_vec();

    // Only three workers at first, so they are the committee: two liars and one honest node.
    let first = vec![
        (accounts[1].clone(), liar.clone()),
        (accounts[2].clone(), liar),
        (accounts[3].clone(), honest.clone()),
    ];
    let first = serve_workers(&net, &first, &store_dir, |_| {}).await;
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
    let prompt_id = asked["prompt_id"].as_str().unwrap().parse().unwrap();
    Colluded { net, honest, store_dir, first, prompt_id, lie }
}

impl Colluded {
    /// Seven honest nodes join (the only workers a challenge committee may have), configured by
    /// `tweak`.
    async fn honest_join(&self, tweak: fn(&mut aik_node::WorkerConfig)) -> crate::support::Serving {
        let accounts = self.net.devnet.accounts().to_vec();
        let more: Vec<_> =
            accounts[4..=10].iter().map(|a| (a.clone(), self.honest.clone())).collect();
        serve_workers(&self.net, &more, &self.store_dir, tweak).await
    }

    /// Checks the overturn onchain: a new answer, colluders at half stake and jailed, the
    /// minority whole and active; returns the challenger.
    async fn assert_overturned(&self) -> alloy::primitives::Address {
        let accounts = self.net.devnet.accounts().to_vec();
        let provider =
            ProviderBuilder::new().connect_http(self.net.deployment.rpc_url.parse().unwrap());
        let kernel =
            KernelClient::new(provider, accounts[0].address, self.net.deployment.addresses());
        let id = self.prompt_id;
        let started = std::time::Instant::now();
        while kernel.challenge_of(id).await.unwrap().1 != ChallengeStatus::Overturned {
            assert!(started.elapsed() < std::time::Duration::from_secs(120), "no overturn");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let (status, hash, _) = kernel.result(id).await.unwrap();
        assert_eq!(status, PromptStatus::Finalized);
        assert_ne!(hash, output_hash(self.lie.as_bytes()));
        let stake = aik_kernel::DeployParams::dev(accounts[0].address).min_stake.to::<u128>();
        for colluder in &accounts[1..=2] {
            let info = kernel.worker(colluder.address).await.unwrap();
            assert_eq!((info.stake, info.status), (stake / 2, WorkerStatus::Jailed), "colluder");
        }
        let minority = kernel.worker(accounts[3].address).await.unwrap();
        assert_eq!((minority.stake, minority.status), (stake, WorkerStatus::Active), "made whole");
        kernel.challenge_of(id).await.unwrap().0
    }

    async fn stop(self, more: crate::support::Serving) {
        stop_all(more.0, more.1).await;
        stop_all(self.first.0, self.first.1).await;
        self.net.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_challenge_overturns_a_colluding_majority() {
    let colluded = colluded().await;
    let more = colluded.honest_join(|_| {}).await;
    let id = colluded.prompt_id.to_string();
    let verified =
        colluded.net.aik(&["verify", "--challenge", "--json", "--timeout", "300", &id]).await;
    let report: serde_json::Value = serde_json::from_str(&stdout_of(&verified)).unwrap();
    assert_eq!(report["verified"], false, "{report}");
    assert_eq!(report["challenge"], "Overturned", "{report}");
    assert_eq!(report["result_sha256"], report["actual_sha256"], "what the verifier computed");
    let challenger = colluded.assert_overturned().await;
    assert_eq!(challenger, colluded.net.devnet.accounts()[0].address, "the verifier's key");
    colluded.stop(more).await;
}

/// Honest nodes that police the network challenge the colluders' answer on their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policing_workers_challenge_a_wrong_answer_on_their_own() {
    let colluded = colluded().await;
    let more = colluded.honest_join(|config| config.challenge = true).await;
    let challenger = colluded.assert_overturned().await;
    let joined: Vec<_> = colluded.net.devnet.accounts()[4..=10].iter().map(|a| a.address).collect();
    assert!(joined.contains(&challenger), "a policing node challenged: {challenger}");
    colluded.stop(more).await;
}

alloy::sol!(
    #[sol(rpc)]
    TestConsumer,
    "../../contracts/out/TestConsumer.json"
);

/// An Optimistic callback waits for the challenge window, then the committee's own nodes deliver
/// it (paid its gas), once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_deliver_an_optimistic_callback_once_its_window_passed() {
    use alloy::{providers::Provider, sol_types::SolValue};

    let net = Network::start().await;
    let (model, _) = tiny_model(net.dir.path(), 42);
    let store_dir = net.home().join("store");
    let driver = Arc::new(LlamaGgufDriver::load(&model, ExecOptions::default()).unwrap());
    let honest = Engine::new(driver);
    let accounts = net.devnet.accounts().to_vec();
    let workers: Vec<_> = accounts[1..=3].iter().map(|a| (a.clone(), honest.clone())).collect();
    let (stop, tasks) = serve_workers(&net, &workers, &store_dir, |_| {}).await;

    let asker = &accounts[4];
    let provider =
        aik_kernel::wallet_provider(&net.deployment.rpc_url, asker.signer.clone()).unwrap();
    let consumer = TestConsumer::deploy(provider.clone(), net.deployment.kernel).await.unwrap();
    let client = KernelClient::new(provider.clone(), asker.address, net.deployment.addresses());
    let mut request = aik_kernel::PromptRequest::text(
        net.deployment.model_id,
        "optimistic",
        b"What is two plus two?".to_vec(),
    );
    (request.max_tokens, request.callback_gas_limit) = (6, 200_000);
    request.finality = aik_kernel::Finality::Optimistic;
    let fee = client.estimate_fee(request.model_id, 6, 200_000).await.unwrap();
    let sol = TestConsumer::InferenceRequest::abi_decode(&request.to_sol().abi_encode()).unwrap();
    consumer.ask(sol).value(fee).send().await.unwrap().get_receipt().await.unwrap();
    let id = client.kernel().counts().call().await.unwrap().submitted;

    let started = std::time::Instant::now();
    while client.result(id).await.unwrap().0 != PromptStatus::Finalized {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the committee finalizes");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(consumer.callbacks().call().await.unwrap(), U256::ZERO, "not before the window");
    let opens = client.delivery_opens_at(id).await.unwrap().expect("a delivery waits");

    // Past the window (the dev chain's clock moves on request).
    let head = provider.get_block_by_number(Default::default()).await.unwrap().unwrap();
    let ahead = opens.saturating_sub(head.header.timestamp) + 1;
    let _: serde_json::Value =
        provider.raw_request("evm_increaseTime".into(), (ahead,)).await.unwrap();
    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    let started = std::time::Instant::now();
    while consumer.callbacks().call().await.unwrap() == U256::ZERO {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the nodes deliver");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let output = aik_kernel::winning_output(&provider, net.deployment.kernel, id).await.unwrap();
    assert_eq!(consumer.lastOutput().call().await.unwrap().to_vec(), output);
    assert_eq!(client.delivery_opens_at(id).await.unwrap(), None);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(consumer.callbacks().call().await.unwrap(), U256::from(1), "delivered once");
    let mut paid = U256::ZERO;
    for worker in &accounts[1..=3] {
        paid += client.claimable(worker.address).await.unwrap();
    }
    assert!(paid > U256::ZERO, "the delivering node was paid the callback's gas");

    stop_all(stop, tasks).await;
    net.stop().await;
}
