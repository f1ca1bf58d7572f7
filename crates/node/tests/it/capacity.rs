//! Workers registered with a capacity of 2 hold two prompts at once: both are assigned the
//! moment they are submitted (none waits in the queue), each worker serves both, both finalize
//! with outputs that verify, and one prompt's model run never holds up the other's protocol.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use aik_devnet::{Devnet, DevnetConfig};
use aik_infer::{
    ExecOptions, LlamaGgufDriver, Message, ModelDriver, Output, Request,
    fixture::{TinyLlamaSpec, tiny_llama_gguf},
};
use aik_kernel::{
    DeployParams, KernelClient, PromptRequest, PromptStatus, load_context, wallet_provider,
};
use aik_node::{
    Deployment, Engine, NodeDb, Worker, WorkerConfig,
    network::{deploy, fund_workers, model_spec},
};
use alloy::{
    primitives::{Address, U256},
    providers::DynProvider,
};
use tokio::{sync::watch, task::JoinHandle};

/// A dev chain with the tiny model registered and three workers of capacity 2, registered
/// but not yet serving.
struct Setup {
    devnet: Devnet,
    deployment: Deployment,
    provider: DynProvider,
    requester: KernelClient<DynProvider>,
    workers: Vec<Address>,
    serving: Vec<Arc<Worker>>,
    model_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    /// `engine_for(i, model file)` is worker `i`'s engine.
    async fn new(engine_for: impl Fn(usize, &Path) -> Engine) -> Self {
        let devnet = Devnet::spawn(DevnetConfig::test()).await.unwrap();
        let accounts = devnet.accounts().to_vec();
        let owner = accounts[0].signer.clone();
        let dir = tempfile::tempdir().unwrap();
        let model_file = dir.path().join("tiny.gguf");
        std::fs::write(&model_file, tiny_llama_gguf(&TinyLlamaSpec::default()).unwrap()).unwrap();
        let spec = model_spec(&model_file, "tiny", vec!["https://example.com/tiny.gguf".into()], 3)
            .unwrap();
        let params = DeployParams::dev(owner.address());
        let deployment = deploy(&devnet.http_url(), Some(devnet.ws_url()), &owner, &params, &spec)
            .await
            .unwrap();
        let workers: Vec<_> = accounts[1..4].iter().map(|a| a.address).collect();
        // Capacity is bought with stake: two units need twice the minimum.
        let stake = params.min_stake * U256::from(2);
        fund_workers(&deployment, &owner, &workers, stake).await.unwrap();
        let mut serving = Vec::new();
        for (i, account) in accounts[1..4].iter().enumerate() {
            let mut config = WorkerConfig::new(
                deployment.rpc_url.clone(),
                account.signer.clone(),
                deployment.addresses(),
            );
            config.ws_url = deployment.ws_url.clone();
            config.models = vec![U256::from(deployment.model_id)];
            config.start_block = deployment.deploy_block;
            config.capacity = 2;
            config.stake = stake;
            let db = NodeDb::open(&dir.path().join(format!("{}.redb", account.address))).unwrap();
            let engine = engine_for(i, &model_file);
            let worker = Arc::new(Worker::new(config, engine, db).unwrap());
            worker.ensure_registered().await.unwrap();
            serving.push(worker);
        }
        let provider = wallet_provider(&devnet.http_url(), accounts[5].signer.clone()).unwrap();
        let requester =
            KernelClient::new(provider.clone(), accounts[5].address, deployment.addresses());
        Self { devnet, deployment, provider, requester, workers, serving, model_file, _dir: dir }
    }

    async fn submit(&self, topic: &str, input: &str) -> U256 {
        let mut request = PromptRequest::text(self.deployment.model_id, topic, input);
        request.max_tokens = 8;
        let submitted = self.requester.submit(&request).await.unwrap();
        assert!(submitted.anchored, "prompt {} waits in the queue", submitted.prompt_id);
        submitted.prompt_id
    }

    fn serve(&self) -> (watch::Sender<bool>, Vec<JoinHandle<aik_node::Result<()>>>) {
        let (stop, stopped) = watch::channel(false);
        let tasks = self
            .serving
            .iter()
            .map(|worker| {
                let (worker, stopped) = (Arc::clone(worker), stopped.clone());
                tokio::spawn(async move { worker.run(stopped).await })
            })
            .collect();
        (stop, tasks)
    }

    /// Waits for `id` to be finalized; returns its output hash.
    async fn finalized(&self, id: U256) -> alloy::primitives::B256 {
        let started = Instant::now();
        loop {
            let (status, hash, _) = self.requester.result(id).await.unwrap();
            if status == PromptStatus::Finalized {
                return hash;
            }
            assert_ne!(status, PromptStatus::Refunded, "prompt {id} was refunded");
            assert!(started.elapsed() < Duration::from_secs(90), "prompt {id} still {status:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self, stop: watch::Sender<bool>, tasks: Vec<JoinHandle<aik_node::Result<()>>>) {
        stop.send(true).unwrap();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        for worker in &self.workers {
            assert_eq!(self.requester.worker(*worker).await.unwrap().busy, 0, "{worker} is free");
        }
        self.devnet.shutdown().await.unwrap();
    }
}

fn tiny_engine(model_file: &Path) -> Engine {
    Engine::new(Arc::new(LlamaGgufDriver::load(model_file, ExecOptions::default()).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_with_capacity_two_serve_two_prompts_at_once() {
    let setup = Setup::new(|_, file| tiny_engine(file)).await;
    // Both prompts must be taken by the same three workers while neither has been answered.
    let ids = [setup.submit("a", "First question?").await, setup.submit("b", "Second?").await];
    // Anyone may draw; both committees come out of one draw, in a later block.
    setup.requester.draw(16).await.unwrap();
    for worker in &setup.workers {
        let info = setup.requester.worker(*worker).await.unwrap();
        assert_eq!((info.capacity, info.busy), (2, 2), "worker {worker}");
    }
    let started = Instant::now();
    let (stop, tasks) = setup.serve();
    let engine = tiny_engine(&setup.model_file);
    for id in ids {
        let hash = setup.finalized(id).await;
        let context =
            load_context(&setup.provider, &setup.deployment.addresses(), id).await.unwrap();
        let (_, output) = engine.run_blocking(context).await.unwrap();
        assert_eq!(aik_kernel::output_hash(&output.bytes), hash, "prompt {id} verifies");
    }
    eprintln!("both prompts finalized in {:.2} s", started.elapsed().as_secs_f64());
    setup.stop(stop, tasks).await;
}

/// The tiny model, but a run for the second prompt ("Second?") does not return until the
/// first prompt is finalized (or a 20 s fallback passes), and a run for the first prompt can be
/// made slow.
struct Held {
    inner: LlamaGgufDriver,
    first_done: Arc<AtomicBool>,
    released_by_first: Arc<AtomicUsize>,
    slow_first: bool,
}

impl ModelDriver for Held {
    fn version(&self) -> &'static str {
        LlamaGgufDriver::VERSION
    }

    fn prompt_token_count(&self, messages: &[Message]) -> aik_infer::Result<usize> {
        self.inner.prompt_token_count(messages)
    }

    fn context_length(&self) -> usize {
        self.inner.context_length()
    }

    fn run(&self, request: &Request) -> aik_infer::Result<Output> {
        let text = &request.messages.last().expect("a user message").content;
        if text.contains("Second?") {
            let started = Instant::now();
            while !self.first_done.load(Ordering::SeqCst) {
                if started.elapsed() > Duration::from_secs(20) {
                    return self.inner.run(request);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            self.released_by_first.fetch_add(1, Ordering::SeqCst);
        } else if self.slow_first {
            std::thread::sleep(Duration::from_secs(3));
        }
        self.inner.run(request)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_model_run_does_not_hold_up_the_other_prompts_protocol() {
    let first_done = Arc::new(AtomicBool::new(false));
    let released_by_first = Arc::new(AtomicUsize::new(0));
    // Workers 0 and 1 answer the first prompt at once; worker 2 takes 3 s, so the first prompt
    // is still waiting for its commit when the second arrives. The second prompt's run on every
    // worker then lasts until the first prompt is finalized, which needs workers 0 and 1 to
    // reveal and finalize *while* their model is busy with the second prompt.
    let setup = Setup::new(|i, file| {
        let driver = Held {
            inner: LlamaGgufDriver::load(file, ExecOptions::default()).unwrap(),
            first_done: Arc::clone(&first_done),
            released_by_first: Arc::clone(&released_by_first),
            slow_first: i == 2,
        };
        tiny_engine(file).with_driver(Arc::new(driver))
    })
    .await;
    let (stop, tasks) = setup.serve();
    let first = setup.submit("a", "First question?").await;
    // Wait for the two fast commits, then send the second prompt.
    let kernel = setup.requester.clone();
    loop {
        let (_, commitments) = kernel.committee(first).await.unwrap();
        if commitments.iter().filter(|c| !c.is_zero()).count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = setup.submit("b", "Second?").await;
    setup.finalized(first).await;
    first_done.store(true, Ordering::SeqCst);
    setup.finalized(second).await;
    // Every worker's run of the second prompt was released by the first prompt's finalization,
    // not by the fallback: the first prompt progressed while the model was busy.
    assert_eq!(released_by_first.load(Ordering::SeqCst), 3);
    setup.stop(stop, tasks).await;
}
