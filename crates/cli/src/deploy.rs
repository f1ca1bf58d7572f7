//! `aik deploy`: deploy the kernel and register a known model (the default, or `--model`) on any
//! chain, and write the deployment file the other commands read.

use std::path::PathBuf;

use aik_kernel::DeployParams;
use clap::Args;
use eyre::{WrapErr, ensure};

use crate::chain::{deploy_known, deployment_path, parse_key, runtime};

/// `aik deploy`.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// HTTP JSON-RPC endpoint of the chain.
    #[arg(long, env = "AIK_RPC", default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// WebSocket endpoint workers subscribe to (optional).
    #[arg(long, env = "AIK_WS")]
    ws: Option<String>,
    /// Owner's private key: deploys, owns every contract and receives the initial EAI.
    #[arg(long, env = "AIK_KEY")]
    key: String,
    /// Directory to write deployment.json into.
    #[arg(long, default_value = ".aik")]
    dir: PathBuf,
    /// The model to register and serve: smollm2 (SmolLM2-135M-Instruct Q4_1, the default) or
    /// gemma3-270m (Gemma 3 270M Q4_K_M, a base model prompted as plain text).
    #[arg(long, default_value = "smollm2")]
    model: String,
    /// Committee size of the model.
    #[arg(long, default_value_t = 3)]
    committee: u8,
    /// Seconds every owner action (parameters, models) waits in the kernel's timelock before it
    /// can run; the timelock owns every contract and --key proposes and executes. 0 keeps the
    /// timelock with no wait.
    #[arg(long, default_value_t = 2 * 24 * 3600)]
    timelock_delay: u64,
}

pub(crate) fn run(args: DeployArgs) -> eyre::Result<()> {
    ensure!(
        (1..=16).contains(&args.committee),
        "--committee must be 1..=16, got {}",
        args.committee
    );
    let known = crate::model::known_model(&args.model)?;
    runtime()?.block_on(async move {
        let owner = parse_key(&args.key)?;
        let params = DeployParams {
            timelock_delay: Some(args.timelock_delay),
            ..DeployParams::dev(owner.address())
        };
        let deployment =
            deploy_known(known, &args.rpc, args.ws.clone(), &owner, &params, args.committee)
                .await?;
        std::fs::create_dir_all(&args.dir)
            .wrap_err_with(|| format!("cannot create {}", args.dir.display()))?;
        let path = deployment_path(&args.dir);
        deployment.save(&path)?;
        println!("kernel   {}", deployment.kernel);
        println!("token    {}", deployment.token);
        println!("model    #{} {}", deployment.model_id, known.label);
        if let Some(timelock) = deployment.timelock {
            println!("timelock {timelock} ({} s delay, owns every contract)", args.timelock_delay);
        }
        println!("written  {}", path.display());
        Ok(())
    })
}
