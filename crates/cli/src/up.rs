//! `aik up`: the whole network in one process — dev chain, kernel, a model (the default, or
//! `--model`), N workers.

use std::{net::IpAddr, path::PathBuf, time::Instant};

use aik_devnet::{Devnet, DevnetConfig};
use aik_kernel::{DeployParams, PromptLayout};
use aik_node::network::{LocalWorkers, ensure_current, is_live};
use clap::Args;
use eyre::{WrapErr, ensure};

use crate::chain::{deploy_known, deployment_path, init_logging, load_engine, runtime};

/// `aik up`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// The whole network's state: the dev chain's blocks and accounts (in DIR/chain), the
    /// deployment file client commands read (DIR/deployment.json) and the workers' databases
    /// (DIR/workers); `aik up` again on the same DIR resumes. Model files live in the content
    /// store ($AIK_HOME/store), not here.
    #[arg(long, default_value = ".aik")]
    dir: PathBuf,
    /// Address the JSON-RPC server listens on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// JSON-RPC port (HTTP and WebSocket).
    #[arg(long, default_value_t = 8545)]
    port: u16,
    /// Port of the dashboard (a page showing prompts, topics, workers and emission, updated
    /// live), on the same host as the JSON-RPC server.
    #[arg(long, default_value_t = 8550)]
    dashboard_port: u16,
    /// Worker nodes to run in this process (committee size is min(3, N)).
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// The model the network serves: smollm2 (SmolLM2-135M-Instruct Q4_1, the default; the
    /// demos are written for it) or gemma3-270m (Gemma 3 270M Q4_K_M, a base model: prompts are
    /// text it continues, laid out as plain text). Fixed for a --dir once it is deployed.
    #[arg(long, default_value = "smollm2")]
    model: String,
}

pub(crate) fn run(args: UpArgs) -> eyre::Result<()> {
    init_logging();
    ensure!((1..=16).contains(&args.workers), "--workers must be 1..=16, got {}", args.workers);
    let known = crate::model::known_model(&args.model)?;
    runtime()?.block_on(up(args, known))
}

async fn up(args: UpArgs, known: &crate::model::KnownModel) -> eyre::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.dir)
        .wrap_err_with(|| format!("cannot create {}", args.dir.display()))?;
    let devnet = Devnet::spawn(DevnetConfig {
        host: args.host,
        port: args.port,
        state_dir: Some(args.dir.join("chain")),
        accounts: (args.workers + 2).max(10),
        ..DevnetConfig::default()
    })
    .await
    .wrap_err("cannot start the dev chain")?;
    let accounts = devnet.accounts().to_vec();
    let owner = accounts[0].signer.clone();
    let worker_accounts = &accounts[1..=args.workers];
    let path = deployment_path(&args.dir);

    let existing = match aik_node::Deployment::load(&path) {
        Ok(mut d) => {
            d.rpc_url = devnet.http_url();
            d.ws_url = Some(devnet.ws_url());
            if is_live(&d).await? { Some(d) } else { None }
        }
        Err(_) => None,
    };
    let deployment = match existing {
        Some(d) => {
            ensure_current(&d).await?;
            eprintln!("Resuming the network in {} (kernel {})", args.dir.display(), d.kernel);
            d
        }
        None => {
            let committee = args.workers.min(3) as u8;
            let d = deploy_known(
                known,
                &devnet.http_url(),
                Some(devnet.ws_url()),
                &owner,
                // A timelock owns the kernel as in any deployment, with no wait on a dev chain.
                &DeployParams { timelock_delay: Some(0), ..DeployParams::dev(owner.address()) },
                committee,
            )
            .await?;
            d.save(&path)?;
            d
        }
    };
    let engine_layout = serving(&deployment, known, &args.dir).await?;
    let (engine, model_path) =
        load_engine(&deployment, alloy::primitives::U256::from(deployment.model_id)).await?;
    let params = DeployParams::dev(owner.address());
    let signers: Vec<_> = worker_accounts.iter().map(|a| a.signer.clone()).collect();
    let workers = LocalWorkers::start(
        &deployment,
        &owner,
        &signers,
        &vec![engine; signers.len()],
        params.min_stake,
        &args.dir.join("workers"),
    )
    .await
    .wrap_err("cannot start the workers")?;

    let (dashboard, dashboard_task) = aik_node::dashboard::serve(
        deployment.clone(),
        std::net::SocketAddr::new(args.host, args.dashboard_port),
    )
    .await
    .wrap_err("cannot start the dashboard (another port: --dashboard-port)")?;

    println!("AI Kernel is up ({:.1} s)", started.elapsed().as_secs_f64());
    println!();
    println!("RPC           {} (WebSocket {})", devnet.http_url(), devnet.ws_url());
    println!("Dashboard     http://{dashboard}/");
    println!("Chain id      {}", deployment.chain_id);
    println!("Kernel        {}", deployment.kernel);
    println!("EAI token     {}", deployment.token);
    println!("Models        {}", deployment.models);
    println!("GPUs          {}", deployment.gpu);
    println!("Context       {}", deployment.context);
    println!("Scheduler     {}", deployment.scheduler);
    println!(
        "Model         #{} {} ({}; prompts laid out as {})",
        deployment.model_id,
        known.label,
        model_path.display(),
        engine_layout
    );
    println!("Deployment    {}", path.display());
    println!();
    println!("Owner / requester (dev account 0)");
    println!("  {}  key {}", accounts[0].address, accounts[0].private_key_hex());
    println!("Workers ({} staked, committee of {})", args.workers, args.workers.min(3));
    for account in worker_accounts {
        println!("  {}  key {}", account.address, account.private_key_hex());
    }
    println!();
    println!("Try:");
    match engine_layout {
        PromptLayout::Chat => {
            println!("  aik prompt --topic demo \"Explain what a blockchain is in two sentences.\"")
        }
        PromptLayout::PlainText => {
            println!("  aik prompt --topic demo --max-tokens 24 \"The three largest planets are\"")
        }
    }
    println!("  aik verify 1");
    println!(
        "  aik demo --list   (the whitepaper's example dapps: aik demo fantasy, aik demo wallet, …)"
    );
    println!();
    println!("Ctrl-C stops the network; `aik up` again resumes it.");

    tokio::signal::ctrl_c().await.wrap_err("cannot wait for Ctrl-C")?;
    dashboard_task.abort();
    eprintln!("Stopping workers");
    if let Err(error) = workers.stop().await {
        eprintln!("a worker stopped with an error: {error}");
    }
    devnet.shutdown().await?;
    eprintln!("Stopped; state kept in {}", args.dir.display());
    Ok(())
}

/// The layout the deployment's model is registered with; an error when the network in `dir`
/// (resumed) serves another model than `--model` asks for.
async fn serving(
    deployment: &aik_node::Deployment,
    known: &crate::model::KnownModel,
    dir: &std::path::Path,
) -> eyre::Result<PromptLayout> {
    let provider =
        alloy::providers::ProviderBuilder::new().connect_http(deployment.rpc_url.parse()?);
    let id = alloy::primitives::U256::from(deployment.model_id);
    let model = aik_node::registered_model(&provider, deployment.models, id).await?;
    let serves = alloy::primitives::hex::encode(model.fileSha256);
    ensure!(
        serves == known.sha256,
        "the network in {} serves model #{id} {:?}, not {} (--model {}): use another --dir",
        dir.display(),
        model.name,
        known.label,
        known.name
    );
    Ok(aik_node::prompt_layout(id, &model)?)
}
