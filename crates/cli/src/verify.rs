//! `aik verify`: rebuild a finalized prompt's context from the chain, run the model locally and
//! compare the output hash with the one the committee agreed on; with `--challenge`, dispute a
//! mismatch onchain (paying the kernel's bond) and follow the challenge to its end.

use std::time::{Duration, Instant};

use aik_kernel::{
    ChallengeStatus, KernelClient, PromptStatus, PromptStore, load_context_with, output_hash,
    wallet_provider,
};
use aik_node::{Answer, Deployment, Engine};
use alloy::{
    primitives::{Address, B256, U256},
    providers::ProviderBuilder,
};
use clap::Args;
use eyre::{WrapErr, bail};

use crate::chain::{DEV_KEY_0, NetworkArgs, init_logging, load_engine, parse_key, runtime};

/// `aik verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Show the assembled context.
    #[arg(long)]
    show_context: bool,
    /// On a mismatch, challenge the answer onchain (paying the kernel's challenge bond from
    /// `--key`) and wait for the challenge committee's verdict; exit 0 only if it overturns the
    /// answer.
    #[arg(long)]
    challenge: bool,
    /// The challenger's private key (default: dev account 0).
    #[arg(long, env = "AIK_KEY", default_value = DEV_KEY_0, hide_default_value = true)]
    key: String,
    /// Seconds to wait for the challenge's end.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// The prompt to verify.
    prompt_id: U256,
}

pub(crate) fn run(args: VerifyArgs) -> eyre::Result<()> {
    init_logging();
    let verified = runtime()?.block_on(verify(args))?;
    if !verified {
        std::process::exit(1);
    }
    Ok(())
}

/// A finalized prompt re-run on this machine.
pub(crate) struct Rerun {
    /// The engine that ran it (the prompt's own model).
    pub(crate) engine: Engine,
    /// What it computed: the output, or the canonical failure answer.
    pub(crate) answer: Answer,
    /// The output hash the committee agreed on.
    pub(crate) expected: B256,
    /// The output hash of `answer`.
    pub(crate) actual: B256,
    /// Seconds the run took.
    pub(crate) seconds: f64,
}

/// Rebuilds finalized prompt `prompt_id`'s context from the chain and runs it with its model
/// (fetched through the store if missing), by the same rule a worker answers by.
pub(crate) async fn rerun(deployment: &Deployment, prompt_id: U256) -> eyre::Result<Rerun> {
    let provider = ProviderBuilder::new()
        .connect_http(deployment.rpc_url.parse().wrap_err("invalid rpc url")?);
    let client = KernelClient::new(provider.clone(), Address::ZERO, deployment.addresses());
    let (status, expected, _) = client.result(prompt_id).await?;
    match status {
        PromptStatus::Finalized => {}
        PromptStatus::None => bail!("prompt {prompt_id} does not exist on this kernel"),
        _ => bail!("prompt {prompt_id} is {status:?}, not finalized: nothing to verify"),
    }
    // Input held in storage (`aik prompt --offchain`) comes from the content store or IPFS.
    let (store, fetcher) = crate::chain::store().await?;
    let storage = PromptStore::new(store, Some(fetcher));
    let context =
        load_context_with(&provider, &deployment.addresses(), prompt_id, &storage).await?;
    // The prompt's own model, which need not be the deployment's default.
    let (engine, _) = load_engine(deployment, context.model_id).await?;
    let started = Instant::now();
    let answer = engine.answer_blocking(context).await?;
    let seconds = started.elapsed().as_secs_f64();
    let actual = output_hash(&answer.bytes);
    Ok(Rerun { engine, answer, expected, actual, seconds })
}

async fn verify(args: VerifyArgs) -> eyre::Result<bool> {
    let deployment = args.network.deployment().await?;
    let Rerun { engine, answer, expected, actual, seconds } =
        rerun(&deployment, args.prompt_id).await?;
    let (messages, tokens, text) = match (&answer.run, &answer.failure) {
        (Some((messages, output)), _) => (messages.len(), output.tokens.len(), output.text.clone()),
        (None, Some((failure, reason))) => (0, 0, format!("({failure}: {reason})")),
        (None, None) => (0, 0, String::new()),
    };
    let verified = actual == expected;
    let expected_hex = alloy::hex::encode(expected);
    let actual_hex = alloy::hex::encode(actual);
    if args.json {
        let json = serde_json::json!({
            "prompt_id": args.prompt_id.to_string(),
            "verified": verified,
            "expected_sha256": expected_hex,
            "actual_sha256": actual_hex,
            "output": text,
            "failure": answer.failure.as_ref().map(|(failure, _)| failure.code()),
            "driver": engine.version(),
            "context_messages": messages,
            "seconds": seconds,
        });
        if verified || !args.challenge {
            println!("{}", serde_json::to_string_pretty(&json)?);
        } else {
            // One object: the challenge adds its outcome.
            return challenge(&args, &deployment, Some(json), actual).await;
        }
    } else {
        if args.show_context {
            for m in answer.run.iter().flat_map(|(messages, _)| messages) {
                println!("[{}] {}", m.role.as_str(), m.content);
            }
            println!();
        }
        if let Some((failure, reason)) = &answer.failure {
            println!("the prompt cannot run ({failure}): {reason}");
        }
        println!("{} prompt {}", if verified { "VERIFIED" } else { "MISMATCH" }, args.prompt_id);
        println!("  expected sha256 {expected_hex}");
        println!("  actual   sha256 {actual_hex}");
        println!(
            "  {messages} context messages, {tokens} output tokens, {seconds:.2} s ({})",
            engine.version()
        );
    }
    if verified || !args.challenge {
        return Ok(verified);
    }
    challenge(&args, &deployment, None, actual).await
}

/// Challenges the prompt and follows the challenge until it ends; true when it overturned the
/// answer (to the one this run computed). With `--json`, `report` (the verification) is printed
/// with the challenge's outcome added.
async fn challenge(
    args: &VerifyArgs,
    deployment: &Deployment,
    report: Option<serde_json::Value>,
    computed: B256,
) -> eyre::Result<bool> {
    let signer = parse_key(&args.key)?;
    let challenger = signer.address();
    let provider = wallet_provider(&deployment.rpc_url, signer)?;
    let client = KernelClient::new(provider, challenger, deployment.addresses());
    let Some(deadline) = client.challenge_deadline(args.prompt_id).await? else {
        bail!(
            "prompt {} can no longer be challenged (its challenge window has passed, it was challenged already, or challenges are off)",
            args.prompt_id
        );
    };
    let bond = U256::from(client.params().await?.challengeBond);
    client.challenge(args.prompt_id, bond).await.wrap_err("challenge")?;
    let say = |line: String| {
        if !args.json {
            println!("{line}");
        }
    };
    say(format!(
        "challenged prompt {} (bond {bond} wei, window until block time {deadline}); a committee of 2k + 1 other workers recomputes it",
        args.prompt_id
    ));
    let outcome =
        follow_challenge(&client, args.prompt_id, Duration::from_secs(args.timeout)).await?;
    let (_, now_hash, miner) = client.result(args.prompt_id).await?;
    let overturned = outcome == ChallengeStatus::Overturned && now_hash == computed;
    if let Some(mut json) = report {
        json["challenge"] = format!("{outcome:?}").into();
        json["result_sha256"] = alloy::hex::encode(now_hash).into();
        json["miner"] = miner.to_string().into();
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!(
            "challenge {outcome:?}: the result is now sha256 {}",
            alloy::hex::encode(now_hash)
        );
    }
    Ok(overturned)
}

/// Waits until the challenge of `prompt_id` is no longer pending and returns its outcome.
pub(crate) async fn follow_challenge<P: alloy::providers::Provider + Clone>(
    client: &KernelClient<P>,
    prompt_id: U256,
    timeout: Duration,
) -> eyre::Result<ChallengeStatus> {
    let started = Instant::now();
    loop {
        let (_, status, _) = client.challenge_of(prompt_id).await?;
        if status != ChallengeStatus::Pending {
            return Ok(status);
        }
        if started.elapsed() > timeout {
            bail!("challenge of prompt {prompt_id} still pending after {} s", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
