//! `aik node run`: one worker against any RPC, configured by flags, environment variables
//! (`AIK_*`) and a TOML file, in that order of precedence. `aik node pause|resume|update`:
//! leave and rejoin the draw pools, and change the declared hardware, capacity and models,
//! without unbonding.

use std::{path::PathBuf, sync::Arc, time::Duration};

use aik_node::{NodeDb, NodeFileConfig, Worker, WorkerConfig};
use aik_store::{Fetcher, LocalStore};
use alloy::primitives::U256;
use clap::{Args, Subcommand};
use eyre::{WrapErr, eyre};

use crate::chain::{
    SourceArgs, init_logging, load_deployment, load_engine_from, parse_key, runtime,
};

/// `aik node …`.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    #[command(subcommand)]
    command: NodeCommand,
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Run a worker: register and stake if needed, then serve assignments until Ctrl-C.
    Run(Box<RunArgs>),
    /// Leave the draw pools without penalty (prompts already assigned still need answers).
    Pause(AccountArgs),
    /// Rejoin the draw pools after `pause`.
    Resume(AccountArgs),
    /// Change the declared hardware, capacity or models: pauses, updates, resumes (a worker
    /// must have no prompt assigned; run it again once they are answered).
    Update(UpdateArgs),
}

/// The worker account and its network.
#[derive(Debug, Args)]
struct AccountArgs {
    #[command(flatten)]
    network: crate::chain::NetworkArgs,
    /// The worker's private key.
    #[arg(long, env = "AIK_KEY")]
    key: String,
}

/// What a worker declares about its machine and load.
#[derive(Debug, Args)]
struct MachineArgs {
    /// Declared machine (default: detected, `cpu: <model> (<cores> cores, <simd>)` plus any
    /// NVIDIA GPU).
    #[arg(long)]
    gpu_model: Option<String>,
    /// Memory available to models, MiB (default: the machine's total).
    #[arg(long)]
    memory_mb: Option<u64>,
    /// Prompts run at once; each needs the minimum stake (default: 1 when registering,
    /// unchanged when updating).
    #[arg(long)]
    capacity: Option<u16>,
}

#[derive(Debug, Args)]
struct UpdateArgs {
    #[command(flatten)]
    account: AccountArgs,
    #[command(flatten)]
    machine: MachineArgs,
    /// Models to serve (repeat; default: unchanged).
    #[arg(long = "model", value_name = "ID")]
    models: Vec<u64>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// TOML configuration file (see aik-node's NodeFileConfig).
    #[arg(long, env = "AIK_NODE_CONFIG")]
    config: Option<PathBuf>,
    /// HTTP JSON-RPC endpoint.
    #[arg(long, env = "AIK_RPC")]
    rpc: Option<String>,
    /// WebSocket JSON-RPC endpoint (polling only without one).
    #[arg(long, env = "AIK_WS")]
    ws: Option<String>,
    /// The worker's private key.
    #[arg(long, env = "AIK_KEY")]
    key: Option<String>,
    /// State directory holding the deployment file.
    #[arg(long, default_value = ".aik")]
    dir: PathBuf,
    /// Where the worker keeps its database (default: <dir>/node).
    #[arg(long, env = "AIK_NODE_DATA")]
    data_dir: Option<PathBuf>,
    /// Stake to register with, in whole EAI.
    #[arg(long)]
    stake: Option<u64>,
    /// Poll interval in milliseconds.
    #[arg(long)]
    poll_ms: Option<u64>,
    /// A registered model to serve (repeat for several; default: the deployment's model).
    /// Each is fetched through the content store and verified before the worker registers.
    #[arg(long = "model", value_name = "ID")]
    models: Vec<u64>,
    /// Content store directory (model files, prompt data; default: $AIK_HOME/store).
    #[arg(long, env = "AIK_STORE_DIR")]
    store_dir: Option<PathBuf>,
    #[command(flatten)]
    sources: SourceArgs,
    /// Another worker's store gateway to fetch model files from when a model's own URIs fail,
    /// before those published onchain (repeat, or comma-separate, for several; env
    /// AIK_STORE_PEERS).
    #[arg(long = "store-peer", value_name = "URL", value_delimiter = ',')]
    store_peers: Vec<aik_store::Url>,
    #[command(flatten)]
    machine: MachineArgs,
    /// Serve the content store read-only as an IPFS trustless gateway on ADDR (e.g.
    /// 0.0.0.0:8081), so other workers fetch model files from this one.
    #[arg(long, env = "AIK_SERVE_STORE", value_name = "ADDR")]
    serve_store: Option<std::net::SocketAddr>,
    /// Publish URL onchain (in this worker's registry entry) as the gateway other workers reach
    /// this store at, e.g. http://203.0.113.7:8081 for --serve-store 0.0.0.0:8081 ("" withdraws
    /// it).
    #[arg(long, env = "AIK_ANNOUNCE_STORE", value_name = "URL")]
    announce_store: Option<String>,
    /// Which store gateways other workers published onchain to fetch model files from, after
    /// the model's own URIs: public (default: not on loopback, private or link-local
    /// addresses), any (a network on one machine or LAN), off.
    #[arg(long, env = "AIK_PEER_GATEWAYS", value_name = "MODE")]
    peer_gateways: Option<PeerGateways>,
    /// Serve the network's dashboard (prompts, topics, workers, emission, live) on ADDR (e.g.
    /// 127.0.0.1:8550).
    #[arg(long, env = "AIK_DASHBOARD", value_name = "ADDR")]
    dashboard: Option<std::net::SocketAddr>,
    /// Police the network: re-run every finalized prompt of a served model this worker did not
    /// sit on while it can be challenged, and challenge an answer this worker's run disagrees
    /// with (the kernel's bond comes back when the challenge overturns it). Off by default.
    #[arg(long)]
    challenge: bool,
    /// With --challenge: the least expected reward, in whole EAI, worth a challenge.
    #[arg(long, value_name = "EAI")]
    challenge_min_reward: Option<u64>,
}

/// Which store gateways published onchain a node fetches from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PeerGateways {
    /// Only those at public addresses.
    Public,
    /// All of them.
    Any,
    /// None.
    Off,
}

impl std::str::FromStr for PeerGateways {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(text, true)
            .map_err(|_| format!("peer_gateways is public, any or off, not {text:?}"))
    }
}

/// The store gateways other workers published onchain that `mode` admits, in the order they
/// were first published, leaving out `me`'s own.
async fn peer_gateways(
    deployment: &aik_node::Deployment,
    signer: alloy::signers::local::PrivateKeySigner,
    mode: PeerGateways,
) -> eyre::Result<Vec<aik_store::Url>> {
    if mode == PeerGateways::Off {
        return Ok(Vec::new());
    }
    let me = signer.address();
    let provider = aik_kernel::wallet_provider(&deployment.rpc_url, signer)?;
    let client = aik_kernel::KernelClient::new(provider, me, deployment.addresses());
    let mut peers = Vec::new();
    for (worker, url) in client.store_gateways(deployment.deploy_block).await? {
        let Ok(parsed) = url.parse::<aik_store::Url>() else {
            tracing::warn!(%worker, %url, "a published store gateway is not a URL, skipped");
            continue;
        };
        if worker == me {
            continue;
        }
        if mode == PeerGateways::Public && !aik_store::is_public_host(&parsed) {
            tracing::info!(%worker, %url, "a store gateway on a non-public address, skipped (--peer-gateways any uses it)");
            continue;
        }
        peers.push(parsed);
    }
    Ok(peers)
}

/// Stops a background task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) fn run(args: NodeArgs) -> eyre::Result<()> {
    init_logging();
    let args = match args.command {
        NodeCommand::Run(args) => args,
        NodeCommand::Pause(account) => return runtime()?.block_on(pause_or_resume(account, true)),
        NodeCommand::Resume(account) => {
            return runtime()?.block_on(pause_or_resume(account, false));
        }
        NodeCommand::Update(update_args) => return runtime()?.block_on(update(update_args)),
    };
    runtime()?.block_on(async move {
        let file = match &args.config {
            Some(path) => NodeFileConfig::load(path)?,
            None => NodeFileConfig::default(),
        };
        let dir = file
            .deployment
            .as_ref()
            .and_then(|p| p.parent().map(PathBuf::from))
            .unwrap_or_else(|| args.dir.clone());
        let rpc = args.rpc.clone().or_else(|| file.rpc_url.clone());
        let mut deployment = match rpc.as_deref() {
            // No deployment file: the chain's kernel directory names the network.
            Some(rpc) if !crate::chain::deployment_path(&dir).is_file() => {
                aik_node::Deployment::from_chain(rpc, None).await?
            }
            _ => load_deployment(&dir, rpc.as_deref())?,
        };
        if let Some(ws) = args.ws.clone().or_else(|| file.ws_url.clone()) {
            deployment.ws_url = Some(ws);
        }
        let key = args.key.clone().or_else(|| file.private_key.clone()).ok_or_else(|| {
            eyre!("no worker key: pass --key, set AIK_KEY or private_key in the config")
        })?;
        let signer = parse_key(&key)?;
        let mut config =
            WorkerConfig::new(deployment.rpc_url.clone(), signer.clone(), deployment.addresses());
        config.ws_url = deployment.ws_url.clone();
        config.start_block = deployment.deploy_block;
        if let Some(stake) = args.stake.or(file.stake_eai) {
            config.stake = U256::from(stake) * U256::from(10u64).pow(U256::from(18));
        }
        if let Some(capacity) = args.machine.capacity.or(file.capacity) {
            config.capacity = capacity;
        }
        if let Some(gpu_model) = args.machine.gpu_model.clone().or_else(|| file.gpu_model.clone()) {
            config.hardware.gpu_model = gpu_model;
        }
        if let Some(memory_mb) = args.machine.memory_mb.or(file.memory_mb) {
            config.hardware.memory_mb = memory_mb;
        }
        if let Some(ms) = args.poll_ms.or(file.poll_interval_ms) {
            config.poll_interval = Duration::from_millis(ms.max(10));
        }
        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| dir.join("node"));
        let db = NodeDb::open(&data_dir.join(format!("{}.redb", signer.address())))?;
        config.challenge = args.challenge || file.challenge.unwrap_or(false);
        if let Some(eai) = args.challenge_min_reward.or(file.challenge_min_reward_eai) {
            config.challenge_min_reward = U256::from(eai) * U256::from(10u64).pow(U256::from(18));
        }
        let mut models = args.models.clone();
        if models.is_empty() {
            models = file.models.clone().unwrap_or_else(|| vec![deployment.model_id]);
        }
        models.sort_unstable();
        models.dedup();
        // Where content lives and comes from: flags and environment over the file.
        let mut fetch = args.sources.clone().config(&file)?;
        let mode = match args.peer_gateways {
            Some(mode) => mode,
            None => match &file.peer_gateways {
                Some(text) => text.parse().map_err(|e: String| eyre::eyre!(e))?,
                None => PeerGateways::Public,
            },
        };
        let mut listed = args.store_peers.clone();
        if listed.is_empty() {
            listed = crate::chain::env_urls("AIK_STORE_PEERS")?;
        }
        let listed: Vec<aik_store::Url> = if listed.is_empty() {
            file.store_peers
                .iter()
                .flatten()
                .map(|u| u.parse().wrap_err_with(|| format!("store_peers: {u} is not a URL")))
                .collect::<eyre::Result<_>>()?
        } else {
            listed
        };
        let published = peer_gateways(&deployment, signer.clone(), mode)
            .await
            .wrap_err("cannot read the store gateways workers published")?;
        fetch.peer_gateways = listed;
        for url in published {
            if !fetch.peer_gateways.contains(&url) {
                fetch.peer_gateways.push(url);
            }
        }
        let store_dir = args
            .store_dir
            .clone()
            .or_else(|| file.store_dir.clone())
            .unwrap_or_else(LocalStore::default_dir);
        let store = LocalStore::open(&store_dir).await?;
        let fetcher = Fetcher::new(&fetch)?;
        config.store_dir = Some(store_dir);
        config.fetch = Some(fetch);
        let mut engines = Vec::new();
        for model in &models {
            let id = U256::from(*model);
            let (engine, _) = load_engine_from(&deployment, id, &store, &fetcher)
                .await
                .wrap_err_with(|| format!("cannot load model #{model}"))?;
            engines.push((id, engine));
        }
        let _gateway = match args.serve_store.or(file.serve_store) {
            Some(address) => {
                let (bound, task) = aik_store::gateway::serve(store.clone(), address)
                    .await
                    .wrap_err_with(|| format!("cannot serve the content store on {address}"))?;
                println!("content store served at http://{bound}/ipfs/");
                Some(AbortOnDrop(task))
            }
            None => None,
        };
        let _dashboard = match args.dashboard {
            Some(address) => {
                let (bound, task) =
                    aik_node::dashboard::serve(deployment.clone(), address)
                        .await
                        .wrap_err_with(|| format!("cannot serve the dashboard on {address}"))?;
                println!("Dashboard  http://{bound}/");
                Some(AbortOnDrop(task))
            }
            None => None,
        };
        let worker = Arc::new(Worker::with_engines(config, engines, db)?);
        worker.ensure_registered().await.wrap_err("cannot register the worker")?;
        if let Some(url) = args.announce_store.clone().or_else(|| file.announce_store.clone()) {
            announce_store(&deployment, signer.clone(), &url).await?;
        }
        let served: Vec<_> = models.iter().map(|m| format!("#{m}")).collect();
        println!(
            "worker {} serving model {} on {}",
            worker.address(),
            served.join(", "),
            deployment.rpc_url
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn({
            let worker = Arc::clone(&worker);
            async move { worker.run(stopped).await }
        });
        tokio::signal::ctrl_c().await?;
        let _ = stop.send(true);
        task.await??;
        println!("stopped");
        Ok(())
    })
}

/// Publishes `url` as this worker's store gateway, unless the chain already says so.
async fn announce_store(
    deployment: &aik_node::Deployment,
    signer: alloy::signers::local::PrivateKeySigner,
    url: &str,
) -> eyre::Result<()> {
    let from = signer.address();
    let provider = aik_kernel::wallet_provider(&deployment.rpc_url, signer)?;
    let client = aik_kernel::KernelClient::new(provider, from, deployment.addresses());
    if client.store_gateway(from).await? != url {
        client
            .set_store_gateway(url)
            .await
            .wrap_err_with(|| format!("cannot publish {url:?} as this worker's store gateway"))?;
    }
    if url.is_empty() {
        println!("store gateway withdrawn onchain");
    } else {
        println!("store gateway published onchain: {url}");
    }
    Ok(())
}

/// The worker's client on the network `account` names.
async fn worker_client(
    account: &AccountArgs,
) -> eyre::Result<aik_kernel::KernelClient<alloy::providers::DynProvider>> {
    let deployment = account.network.deployment().await?;
    let signer = parse_key(&account.key)?;
    let from = signer.address();
    let provider = aik_kernel::wallet_provider(&deployment.rpc_url, signer)?;
    Ok(aik_kernel::KernelClient::new(provider, from, deployment.addresses()))
}

async fn pause_or_resume(account: AccountArgs, pause: bool) -> eyre::Result<()> {
    let client = worker_client(&account).await?;
    if pause {
        client.pause().await?;
    } else {
        client.resume().await?;
    }
    let info = client.worker(client.from()).await?;
    println!("worker {} is {}", client.from(), format!("{:?}", info.status).to_lowercase());
    Ok(())
}

async fn update(args: UpdateArgs) -> eyre::Result<()> {
    use aik_kernel::WorkerStatus;
    let client = worker_client(&args.account).await?;
    let info = client.worker(client.from()).await?;
    let detected = aik_node::hardware::detect(&info.hardware.engine);
    let hardware = aik_kernel::Hardware {
        gpu_model: args.machine.gpu_model.unwrap_or(detected.gpu_model),
        memory_mb: args.machine.memory_mb.unwrap_or(detected.memory_mb),
        engine: info.hardware.engine.clone(),
    };
    let models = if args.models.is_empty() {
        info.models.clone()
    } else {
        args.models.iter().map(|m| U256::from(*m)).collect()
    };
    let capacity = args.machine.capacity.unwrap_or(info.capacity);
    let was_active = info.status == WorkerStatus::Active;
    if was_active {
        client.pause().await.wrap_err("cannot pause before the update")?;
    }
    if let Err(error) = client.update_worker(&hardware, &models, capacity).await {
        return Err(eyre!(error)).wrap_err(format!(
            "worker {} is paused but not updated; run `aik node update` again (with prompts assigned, once they are answered) or `aik node resume`",
            client.from()
        ));
    }
    if was_active {
        client.resume().await.wrap_err("updated, but cannot resume")?;
    }
    let info = client.worker(client.from()).await?;
    let served: Vec<String> = info.models.iter().map(|m| format!("#{m}")).collect();
    println!(
        "worker {} is {}: {}, {} MiB, capacity {}, models {}",
        client.from(),
        format!("{:?}", info.status).to_lowercase(),
        info.hardware.gpu_model,
        info.hardware.memory_mb,
        info.capacity,
        served.join(", ")
    );
    Ok(())
}
