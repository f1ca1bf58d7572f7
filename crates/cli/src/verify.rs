//! `aik verify`: rebuild a finalized prompt's context from the chain, run the model locally and
//! compare the output hash with the one the committee agreed on.

use std::time::Instant;

use aik_kernel::{KernelClient, PromptStatus, PromptStore, load_context_with, output_hash};
use alloy::{
    primitives::{Address, U256},
    providers::ProviderBuilder,
};
use clap::Args;
use eyre::{WrapErr, bail};

use crate::chain::{NetworkArgs, init_logging, load_engine, runtime};

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

async fn verify(args: VerifyArgs) -> eyre::Result<bool> {
    let deployment = args.network.deployment().await?;
    let provider = ProviderBuilder::new()
        .connect_http(deployment.rpc_url.parse().wrap_err("invalid rpc url")?);
    let client = KernelClient::new(provider.clone(), Address::ZERO, deployment.addresses());
    let (status, expected, _) = client.result(args.prompt_id).await?;
    match status {
        PromptStatus::Finalized => {}
        PromptStatus::None => bail!("prompt {} does not exist on this kernel", args.prompt_id),
        _ => bail!("prompt {} is {status:?}, not finalized: nothing to verify", args.prompt_id),
    }
    // Input held in storage (`aik prompt --offchain`) comes from the content store or IPFS.
    let (store, fetcher) = crate::chain::store().await?;
    let storage = PromptStore::new(store, Some(fetcher));
    let context =
        load_context_with(&provider, &deployment.addresses(), args.prompt_id, &storage).await?;
    // The prompt's own model, which need not be the deployment's default.
    let (engine, _) = load_engine(&deployment, context.model_id).await?;
    let started = Instant::now();
    // The same rule a worker answers by: the output, or the canonical failure answer.
    let answer = engine.answer_blocking(context).await?;
    let seconds = started.elapsed().as_secs_f64();
    let actual = output_hash(&answer.bytes);
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
        println!("{}", serde_json::to_string_pretty(&json)?);
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
    Ok(verified)
}
