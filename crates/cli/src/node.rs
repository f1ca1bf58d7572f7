//! `aik node run`: one worker against any RPC, configured by flags, environment variables
//! (`AIK_*`) and a TOML file, in that order of precedence.

use std::{path::PathBuf, sync::Arc, time::Duration};

use aik_node::{NodeDb, NodeFileConfig, Worker, WorkerConfig};
use aik_store::{Fetcher, LocalStore};
use alloy::primitives::U256;
use clap::{Args, Subcommand};
use eyre::{WrapErr, eyre};

use crate::chain::{
    fetch_config, init_logging, load_deployment, load_engine_from, parse_key, runtime,
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
    Run(RunArgs),
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
    /// Serve the content store read-only as an IPFS trustless gateway on ADDR (e.g.
    /// 0.0.0.0:8081), so other workers fetch model files from this one.
    #[arg(long, env = "AIK_SERVE_STORE", value_name = "ADDR")]
    serve_store: Option<std::net::SocketAddr>,
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
    let NodeCommand::Run(args) = args.command;
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
        let mut deployment = load_deployment(&dir, rpc.as_deref())?;
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
        if let Some(capacity) = file.capacity {
            config.capacity = capacity;
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
        let mut models = args.models.clone();
        if models.is_empty() {
            models = file.models.clone().unwrap_or_else(|| vec![deployment.model_id]);
        }
        models.sort_unstable();
        models.dedup();
        // Where content lives and comes from: flags and environment over the file.
        let mut fetch = fetch_config()?;
        if std::env::var_os("AIK_IPFS_GATEWAY").is_none()
            && let Some(gateway) = &file.ipfs_gateway
        {
            fetch.ipfs_gateway =
                gateway.parse().wrap_err_with(|| format!("ipfs_gateway {gateway} is not a URL"))?;
        }
        if fetch.ipfs_rpc.is_none()
            && let Some(api) = &file.ipfs_api
        {
            fetch.ipfs_rpc =
                Some(api.parse().wrap_err_with(|| format!("ipfs_api {api} is not a URL"))?);
        }
        if fetch.filecoin_retrieval.is_empty()
            && let Some(endpoints) = &file.filecoin_retrieval
        {
            fetch.filecoin_retrieval = endpoints
                .iter()
                .map(|u| u.parse().wrap_err_with(|| format!("filecoin_retrieval {u} is not a URL")))
                .collect::<eyre::Result<_>>()?;
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
        let worker = Arc::new(Worker::with_engines(config, engines, db)?);
        worker.ensure_registered().await.wrap_err("cannot register the worker")?;
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
