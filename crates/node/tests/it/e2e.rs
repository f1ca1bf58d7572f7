//! An `aik up` equivalent in process: dev chain, kernel, SmolLM2 and three staked workers.

use std::{
    path::Path,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use aik_devnet::{Devnet, DevnetConfig};
use aik_infer::{ExecOptions, LlamaGgufDriver, fixture::Tampering};
use aik_kernel::{
    DataSource, DeployParams, KernelClient, OutputFormat, OutputValue, PromptRequest, PromptStatus,
    WorkerStatus, bindings::DecentralizedInference as DI, load_context, output_hash,
    wallet_provider,
};
use aik_node::{
    Deployment, Engine, NodeDb, Worker, WorkerConfig,
    network::{DEFAULT_MODEL_URI, deploy, fund_workers, model_spec},
};
use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use tokio::{sync::watch, task::JoinHandle};

/// The real model, loaded once for every test of the binary.
pub(crate) fn llama() -> Arc<LlamaGgufDriver> {
    static DRIVER: OnceLock<Arc<LlamaGgufDriver>> = OnceLock::new();
    DRIVER
        .get_or_init(|| {
            let path = aik_infer::default_model_path().expect("a home directory");
            assert!(path.is_file(), "run `aik model pull` first: {} is missing", path.display());
            Arc::new(LlamaGgufDriver::load(&path, ExecOptions::default()).unwrap())
        })
        .clone()
}

pub(crate) struct Network {
    devnet: Devnet,
    pub(crate) deployment: Deployment,
    pub(crate) requester: KernelClient<DynProvider>,
    pub(crate) provider: DynProvider,
    pub(crate) workers: Vec<Address>,
    worker_setup: Vec<(WorkerConfig, Engine, std::path::PathBuf)>,
    stop: watch::Sender<bool>,
    stopped: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<aik_node::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Network {
    /// Three workers; the first `liars` of them run the tampering driver.
    async fn start(liars: usize) -> Self {
        Self::start_tweaked(liars, |_| {}).await
    }

    /// As [`Network::start`], with deployment parameters changed by `tweak`.
    async fn start_tweaked(liars: usize, tweak: fn(&mut DeployParams)) -> Self {
        let honest = Engine::new(llama());
        let engines = (0..3)
            .map(|i| {
                if i < liars {
                    honest.with_driver(Arc::new(Tampering(llama())))
                } else {
                    honest.clone()
                }
            })
            .collect();
        Self::start_configured(engines, |url| url, tweak).await
    }

    /// One worker per engine; workers reach the chain at `worker_url(http url)`.
    pub(crate) async fn start_with(
        engines: Vec<Engine>,
        worker_url: impl Fn(String) -> String,
    ) -> Self {
        Self::start_configured(engines, worker_url, |_| {}).await
    }

    async fn start_configured(
        engines: Vec<Engine>,
        worker_url: impl Fn(String) -> String,
        tweak: fn(&mut DeployParams),
    ) -> Self {
        // `RUST_LOG=aik_node=debug cargo test …` shows what the workers do.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let devnet = Devnet::spawn(DevnetConfig::test()).await.unwrap();
        let accounts = devnet.accounts().to_vec();
        let owner = accounts[0].signer.clone();
        let path = aik_infer::default_model_path().unwrap();
        let spec = model_spec(&path, "SmolLM2", vec![DEFAULT_MODEL_URI.into()], 3).unwrap();
        let mut params = DeployParams::dev(owner.address());
        tweak(&mut params);
        let deployment = deploy(&devnet.http_url(), Some(devnet.ws_url()), &owner, &params, &spec)
            .await
            .unwrap();
        let worker_accounts = &accounts[1..=engines.len()];
        let workers: Vec<Address> = worker_accounts.iter().map(|a| a.address).collect();
        fund_workers(&deployment, &owner, &workers, params.min_stake).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (stop, stopped) = watch::channel(false);
        let mut net_workers = Vec::new();
        for (i, (account, engine)) in worker_accounts.iter().zip(engines).enumerate() {
            let mut config = WorkerConfig::new(
                worker_url(deployment.rpc_url.clone()),
                account.signer.clone(),
                deployment.addresses(),
            );
            config.ws_url = deployment.ws_url.clone().map(&worker_url);
            config.models = vec![U256::from(deployment.model_id)];
            config.start_block = deployment.deploy_block;
            let db_path = dir.path().join(format!("{i}.redb"));
            net_workers.push((config, engine, db_path));
        }
        let mut tasks = Vec::new();
        for (config, engine, db_path) in &net_workers {
            tasks
                .push(spawn_worker(config.clone(), engine.clone(), db_path, stopped.clone()).await);
        }
        let requester_signer = accounts[5].signer.clone();
        let provider = wallet_provider(&devnet.http_url(), requester_signer.clone()).unwrap();
        let requester =
            KernelClient::new(provider.clone(), requester_signer.address(), deployment.addresses());
        Self {
            devnet,
            deployment,
            requester,
            provider,
            workers,
            worker_setup: net_workers,
            stop,
            stopped,
            tasks,
            _dir: dir,
        }
    }

    /// Submits and waits until the prompt is finalized; returns its id and output bytes.
    pub(crate) async fn ask(&self, request: PromptRequest) -> (U256, Vec<u8>) {
        let id = self.requester.submit(&request).await.unwrap().prompt_id;
        let started = Instant::now();
        loop {
            let (status, hash, _) = self.requester.result(id).await.unwrap();
            match status {
                PromptStatus::Finalized => {
                    eprintln!("prompt {id} finalized in {:.2} s", started.elapsed().as_secs_f64());
                    return (id, self.output(id, hash).await);
                }
                PromptStatus::Refunded => panic!("prompt {id} was refunded"),
                _ => {}
            }
            assert!(started.elapsed() < Duration::from_secs(600), "prompt {id} not finalized");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn output(&self, id: U256, hash: B256) -> Vec<u8> {
        self.logs::<DI::OutputRevealed>(id)
            .await
            .into_iter()
            .find(|e| output_hash(&e.output) == hash)
            .expect("a reveal with the winning hash")
            .output
            .to_vec()
    }

    /// Everything the kernel ever credited to `account`.
    pub(crate) async fn credited(&self, account: Address) -> U256 {
        self.logs_about::<DI::Credited>(account.into_word()).await.iter().map(|c| c.amount).sum()
    }

    /// The kernel's events `E` about prompt `id` (their first indexed topic).
    pub(crate) async fn logs<E: SolEvent>(&self, id: U256) -> Vec<E> {
        self.logs_about(B256::from(id)).await
    }

    /// The kernel's events `E` whose first indexed topic is `topic`, oldest first.
    async fn logs_about<E: SolEvent>(&self, topic: B256) -> Vec<E> {
        let filter = Filter::new()
            .address(self.deployment.kernel)
            .event_signature(E::SIGNATURE_HASH)
            .topic1(topic)
            .from_block(0);
        self.provider
            .get_logs(&filter)
            .await
            .unwrap()
            .iter()
            .map(|l| E::decode_log_data(l.data()).unwrap())
            .collect()
    }

    /// Re-runs a prompt as `aik verify` does and returns whether the hash matches the chain's.
    pub(crate) async fn verifies(&self, id: U256) -> bool {
        let context = load_context(&self.provider, &self.deployment.addresses(), id).await.unwrap();
        let answer = Engine::new(llama()).answer_blocking(context).await.unwrap();
        let (_, expected, _) = self.requester.result(id).await.unwrap();
        output_hash(&answer.bytes) == expected
    }

    /// Kills worker `i` without any shutdown (its task is aborted mid-flight, as a SIGKILL
    /// would), then starts a fresh worker over the same database.
    pub(crate) async fn kill_and_restart(&mut self, i: usize, down_for: Duration) {
        self.tasks[i].abort();
        let _ = (&mut self.tasks[i]).await;
        tokio::time::sleep(down_for).await;
        let (config, engine, db_path) = &self.worker_setup[i];
        self.tasks[i] =
            spawn_worker(config.clone(), engine.clone(), db_path, self.stopped.clone()).await;
    }

    pub(crate) async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            task.await.unwrap().unwrap();
        }
        self.devnet.shutdown().await.unwrap();
    }
}

async fn spawn_worker(
    config: WorkerConfig,
    engine: Engine,
    db_path: &Path,
    stopped: watch::Receiver<bool>,
) -> JoinHandle<aik_node::Result<()>> {
    let db = NodeDb::open(db_path).unwrap();
    let worker = Arc::new(Worker::new(config, engine, db).unwrap());
    worker.ensure_registered().await.unwrap();
    tokio::spawn(async move { worker.run(stopped).await })
}

pub(crate) fn request(
    model: u64,
    topic: &str,
    input: &str,
    format: OutputFormat,
    max_tokens: u32,
) -> PromptRequest {
    PromptRequest { format, max_tokens, ..PromptRequest::text(model, topic, input) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_finalize_verify_and_carry_their_topic() {
    let net = Network::start(0).await;
    let model = net.deployment.model_id;

    let (first, answer) = net
        .ask(request(model, "geo", "What is the capital of France?", OutputFormat::Text, 8))
        .await;
    assert!(!answer.is_empty());
    assert!(net.verifies(first).await, "prompt {first} does not verify");

    // The second prompt on the topic sees the first turn, with extra context laid out first.
    let mut second = request(model, "geo", "And of Italy?", OutputFormat::Text, 8);
    second.extra = Some(DataSource::Onchain(b"Answer in one word.".to_vec()));
    let (second, _) = net.ask(second).await;
    let context = load_context(&net.provider, &net.deployment.addresses(), second).await.unwrap();
    assert_eq!(context.history.len(), 1);
    assert_eq!(context.history[0].prompt_id, first);
    assert_eq!(context.history[0].input, b"What is the capital of France?");
    assert_eq!(context.history[0].output, answer);
    let messages = Engine::new(llama()).messages(&context).unwrap();
    let contents: Vec<(&str, &str)> =
        messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
    let answer_text = String::from_utf8(answer.clone()).unwrap();
    assert_eq!(
        contents,
        vec![
            ("user", "What is the capital of France?"),
            ("assistant", answer_text.as_str()),
            ("user", "Answer in one word.\n\nAnd of Italy?"),
        ]
    );
    assert!(net.verifies(second).await, "prompt {second} does not verify");

    // Constrained formats come back as canonical ABI words.
    let (_, yes_no) = net.ask(request(model, "quiz", "Is water wet?", OutputFormat::Bool, 4)).await;
    assert_eq!(yes_no.len(), 32);
    assert!(matches!(OutputValue::decode(&OutputFormat::Bool, &yes_no), Ok(OutputValue::Bool(_))));
    assert_eq!(yes_no, OutputValue::decode(&OutputFormat::Bool, &yes_no).unwrap().encode());
    let colors = OutputFormat::Choice(vec!["red".into(), "green".into(), "blue".into()]);
    let (choice_id, pick) =
        net.ask(request(model, "quiz2", "What color is the sky?", colors.clone(), 4)).await;
    let OutputValue::Choice(index) = OutputValue::decode(&colors, &pick).unwrap() else {
        panic!("not a choice")
    };
    assert!(index < 3);
    assert_eq!(pick, U256::from(index).to_be_bytes::<32>().to_vec());
    assert!(net.verifies(choice_id).await);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_a_wrong_driver_is_slashed_and_the_honest_are_paid() {
    let net = Network::start(1).await;
    let liar = net.workers[0];
    let stake_before = net.requester.worker(liar).await.unwrap().stake;
    let (id, output) =
        net.ask(request(net.deployment.model_id, "t", "Say hi.", OutputFormat::Text, 6)).await;
    assert!(!output.ends_with(b" (tampered)"));

    let penalized = net.logs::<DI::WorkerPenalized>(id).await;
    assert_eq!(penalized.len(), 1, "{penalized:?}");
    assert_eq!(penalized[0].worker, liar);
    assert_eq!(penalized[0].reason, aik_kernel::Penalty::Wrong as u8);
    let info = net.requester.worker(liar).await.unwrap();
    assert_eq!(info.status, WorkerStatus::Jailed);
    assert_eq!(info.stake, stake_before - stake_before / 10, "10% of the stake is slashed");

    let finalized = net.logs::<DI::PromptFinalized>(id).await;
    assert_eq!(finalized.len(), 1);
    let miner = finalized[0].miner;
    assert!(miner == net.workers[1] || miner == net.workers[2], "miner {miner}");
    assert!(finalized[0].minerPay > U256::ZERO && finalized[0].verifierPay > U256::ZERO);
    assert!(finalized[0].blockReward > U256::ZERO);
    // Whoever finalized (the first worker to see it open) is also paid the finalization's gas.
    let finalized_log = net
        .provider
        .get_logs(
            &Filter::new()
                .address(net.deployment.kernel)
                .event_signature(DI::PromptFinalized::SIGNATURE_HASH)
                .topic1(B256::from(id))
                .from_block(0),
        )
        .await
        .unwrap();
    let finalize_tx = finalized_log[0].transaction_hash.unwrap();
    let finalizer = net.provider.get_transaction_receipt(finalize_tx).await.unwrap().unwrap().from;
    let gas_pay = net.requester.gas_fee(0).await.unwrap();
    assert!(gas_pay > U256::ZERO, "aik up pays the finalization");
    for honest in &net.workers[1..] {
        let paid = net.credited(*honest).await;
        let share = if *honest == miner { finalized[0].minerPay } else { finalized[0].verifierPay };
        let expected = share + if *honest == finalizer { gas_pay } else { U256::ZERO };
        assert_eq!(paid, expected, "worker {honest}");
    }
    let liar_paid = net.credited(liar).await;
    let liar_expected = if liar == finalizer { gas_pay } else { U256::ZERO };
    assert_eq!(liar_paid, liar_expected, "the liar earns nothing but a finalization it sent");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topic_window_and_system_prompt_shape_the_context() {
    let net = Network::start(0).await;
    let model = net.deployment.model_id;
    net.requester.set_system_prompt("w", "Answer in French.").await.unwrap();
    net.requester.set_window("w", 1).await.unwrap();
    let (_, _) = net.ask(request(model, "w", "One?", OutputFormat::Text, 3)).await;
    let (second, second_answer) = net.ask(request(model, "w", "Two?", OutputFormat::Text, 3)).await;
    let (third, _) = net.ask(request(model, "w", "Three?", OutputFormat::Text, 3)).await;

    let context = load_context(&net.provider, &net.deployment.addresses(), third).await.unwrap();
    assert_eq!(context.system_prompt.as_deref(), Some("Answer in French."));
    assert_eq!(context.history.iter().map(|t| t.prompt_id).collect::<Vec<_>>(), vec![second]);
    let messages = Engine::new(llama()).messages(&context).unwrap();
    let contents: Vec<(&str, &str)> =
        messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
    let second_text = String::from_utf8(second_answer).unwrap();
    assert_eq!(
        contents,
        vec![
            ("system", "Answer in French."),
            ("user", "Two?"),
            ("assistant", second_text.as_str()),
            ("user", "Three?"),
        ]
    );
    assert!(net.verifies(third).await);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpublished_input_closes_unavailable_and_the_network_keeps_serving() {
    // A short commit window, so that the stall is bounded to seconds.
    let net = Network::start_tweaked(0, |p| p.kernel.commitWindow = 5).await;
    let model = net.deployment.model_id;
    let mut stall = request(model, "stall", "unused", OutputFormat::Text, 4);
    stall.input = DataSource::Storage { digest: B256::repeat_byte(0xab), length: 10 };
    let submitted = net.requester.submit(&stall).await.unwrap();
    assert!(submitted.anchored, "the whole network sits on it");
    let id = submitted.prompt_id;
    let started = Instant::now();
    loop {
        let status = net.requester.result(id).await.unwrap().0;
        if status == PromptStatus::Unavailable {
            break;
        }
        // Queued until a worker draws its committee (from the next block on), then Committing.
        assert!(
            matches!(status, PromptStatus::Queued | PromptStatus::Committing),
            "prompt {id}: {status:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "prompt {id} was never closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("unpublished-input prompt closed in {:.2} s", started.elapsed().as_secs_f64());
    assert!(net.logs::<DI::WorkerPenalized>(id).await.is_empty(), "nobody is penalized");
    let closed = net.logs::<DI::PromptUnavailable>(id).await;
    assert_eq!((closed.len(), closed[0].committed), (1, 0));
    for worker in &net.workers {
        let info = net.requester.worker(*worker).await.unwrap();
        assert_eq!((info.status, info.busy), (WorkerStatus::Active, 0), "{worker}");
        assert_eq!(U256::from(info.stake), DeployParams::dev(Address::ZERO).min_stake);
    }
    // The network keeps serving.
    let (next, answer) = net.ask(request(model, "after", "Say hi.", OutputFormat::Text, 4)).await;
    assert!(!answer.is_empty());
    assert!(net.verifies(next).await);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_too_long_for_the_model_ends_with_the_failure_answer() {
    let net = Network::start(0).await;
    let model = net.deployment.model_id;
    // Sixteen thousand digits are sixteen thousand tokens: twice SmolLM2's context.
    let digits = "7".repeat(16_000);
    let (id, output) = net.ask(request(model, "long", &digits, OutputFormat::Bool, 4)).await;
    assert_eq!(output, aik_kernel::Failure::ContextTooLong.encode());
    assert!(net.logs::<DI::WorkerPenalized>(id).await.is_empty(), "the committee agreed");
    let finalized = net.logs::<DI::PromptFinalized>(id).await;
    assert!(finalized[0].minerPay > U256::ZERO, "the committee is paid for the work");
    assert!(net.verifies(id).await, "a verifier computes the same failure answer");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_of_another_protocol_is_refused_with_a_way_out() {
    let devnet = Devnet::spawn(DevnetConfig::test()).await.unwrap();
    let owner = devnet.accounts()[0].signer.clone();
    let path = aik_infer::default_model_path().unwrap();
    let spec = model_spec(&path, "SmolLM2", vec![DEFAULT_MODEL_URI.into()], 3).unwrap();
    let params = DeployParams::dev(owner.address());
    let current = deploy(&devnet.http_url(), None, &owner, &params, &spec).await.unwrap();
    aik_node::network::ensure_current(&current).await.unwrap();
    // A kernel without this protocol's views (here: another contract in its place, as a state
    // directory made by an older aik has) is refused, naming what to do.
    let older = Deployment { kernel: current.token, ..current.clone() };
    let error = aik_node::network::ensure_current(&older).await.unwrap_err().to_string();
    assert!(error.contains("deployed by an older version of aik"), "{error}");
    assert!(error.contains("remove the state directory"), "{error}");
    // A scheduler that draws no committees (the one before the draw) is refused too.
    let undrawn = Deployment { scheduler: current.token, ..current.clone() };
    let error = aik_node::network::ensure_current(&undrawn).await.unwrap_err().to_string();
    assert!(error.contains("deployed by an older version of aik"), "{error}");
    devnet.shutdown().await.unwrap();
}
