//! `aik demo`: runs one of the whitepaper's example dapps against a running network, or the
//! challenge demo (`aik demo challenge`), where colluding workers' wrong answer is overturned.

mod challenge;

use std::time::Duration;

use aik_apps::{DEMOS, DemoEnv};
use aik_kernel::wallet_provider;
use alloy::primitives::U256;
use clap::Args;
use eyre::{WrapErr, bail};

use crate::chain::{DEV_KEY_0, NetworkArgs, parse_key, runtime};

/// The challenge demo's name.
const CHALLENGE: &str = "challenge";
/// What `aik demo --list` says of it.
const CHALLENGE_SUMMARY: &str = "colluding workers get a wrong answer finalized; a challenge overturns it, slashes them and pays the challenger (brings its own workers)";

/// `aik demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Private key that deploys the example and pays its prompts (default: dev account 0).
    #[arg(long, env = "AIK_KEY", default_value = DEV_KEY_0, hide_default_value = true)]
    key: String,
    /// List the examples and exit.
    #[arg(long)]
    list: bool,
    /// Give up on a prompt after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// The example to run (see --list).
    #[arg(required_unless_present = "list")]
    name: Option<String>,
}

pub(crate) fn run(args: DemoArgs) -> eyre::Result<()> {
    let listed = DEMOS.iter().map(|d| (d.name, d.summary)).chain([(CHALLENGE, CHALLENGE_SUMMARY)]);
    if args.list {
        let width = listed.clone().map(|(name, _)| name.len()).max().unwrap_or(0);
        for (name, summary) in listed {
            println!("{name:width$}  {summary}");
        }
        return Ok(());
    }
    let Some(name) = args.name.as_deref() else { bail!("name an example (see `aik demo --list`)") };
    if !listed.clone().any(|(known, _)| known == name) {
        let known: Vec<_> = listed.map(|(name, _)| name).collect();
        bail!("unknown example {name:?}; the examples are: {}", known.join(", "));
    }
    let deployment = crate::chain::runtime()?.block_on(args.network.deployment())?;
    let signer = parse_key(&args.key)?;
    if name == CHALLENGE {
        println!("Running the challenge demo on {} as {}", deployment.rpc_url, signer.address());
        return runtime()?.block_on(challenge::run(
            deployment,
            signer,
            Duration::from_secs(args.timeout),
        ));
    }
    let account = signer.address();
    let provider = wallet_provider(&deployment.rpc_url, signer)?;
    let env =
        DemoEnv::new(provider, account, deployment.addresses(), U256::from(deployment.model_id))
            .with_timeout(Duration::from_secs(args.timeout))
            .with_log(|line| println!("{line}"));
    println!("Running the {name} example on {} as {account}", deployment.rpc_url);
    let outcome = runtime()?
        .block_on(aik_apps::run_demo(name, &env))
        .wrap_err_with(|| format!("the {name} example failed"))?;
    println!();
    println!("Contract  {}", outcome.contract);
    let prompts: Vec<_> = outcome.prompts.iter().map(ToString::to_string).collect();
    println!("Prompts   {}", prompts.join(", "));
    println!("Answer    {}", outcome.answer);
    println!("Effect    {} (checked onchain)", outcome.effect);
    Ok(())
}
