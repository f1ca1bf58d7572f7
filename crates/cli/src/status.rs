//! `aik status` (the network: workers, stakes, jail, queue, rewards) and `aik topic` (a
//! conversation so far).

use aik_kernel::{
    KernelClient, PromptStatus, bindings::DecentralizedInference as DI, output_text, user_message,
};
use alloy::{
    primitives::{Address, B256, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use clap::Args;
use eyre::WrapErr;

use crate::{
    chain::{NetworkArgs, runtime},
    prompt::revealed_output,
};

/// `aik status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// `aik topic`.
#[derive(Debug, Args)]
pub(crate) struct TopicArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// The topic's owner (the requester).
    account: Address,
    /// The topic's name.
    topic: String,
}

pub(crate) fn run_status(args: StatusArgs) -> eyre::Result<()> {
    runtime()?.block_on(async move {
        let deployment = args.network.deployment().await?;
        let provider = ProviderBuilder::new()
            .connect_http(deployment.rpc_url.parse().wrap_err("invalid rpc url")?);
        let client = KernelClient::new(provider.clone(), Address::ZERO, deployment.addresses());
        let model = U256::from(deployment.model_id);
        let queued = client
            .scheduler()
            .queueLength(model)
            .call()
            .await
            .map_err(|e| eyre::eyre!("queueLength: {e}"))?;
        let (awaiting_draw, _) = client.pending_draws().await?;
        let finalized = Filter::new()
            .address(deployment.kernel)
            .event_signature(DI::PromptFinalized::SIGNATURE_HASH)
            .from_block(deployment.deploy_block);
        let finalized: Vec<DI::PromptFinalized> = provider
            .get_logs(&finalized)
            .await?
            .iter()
            .filter_map(|l| DI::PromptFinalized::decode_log_data(l.data()).ok())
            .collect();
        let rows = aik_node::dashboard::worker_rows(&deployment, &provider.clone().erased()).await?;
        if args.json {
            let json = serde_json::json!({
                "rpc_url": deployment.rpc_url,
                "kernel": deployment.kernel.to_string(),
                "model_id": deployment.model_id,
                "block": provider.get_block_number().await?,
                "queued": queued.to_string(),
                "waiting_for_draw": awaiting_draw,
                "finalized": finalized.len(),
                "workers": rows,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
            return Ok(());
        }
        println!(
            "kernel {} on {} (block {})",
            deployment.kernel,
            deployment.rpc_url,
            provider.get_block_number().await?
        );
        println!(
            "model #{}: {queued} queued, {awaiting_draw} waiting for the draw, {} prompts finalized",
            deployment.model_id,
            finalized.len()
        );
        println!();
        println!(
            "{:<42} {:<9} {:>12} {:>5} {:>6} {:>12}",
            "worker", "status", "stake EAI", "busy", "mined", "rewards EAI"
        );
        for row in &rows {
            println!(
                "{:<42} {:<9} {:>12} {:>5} {:>6} {:>12}",
                row["address"].as_str().unwrap_or_default(),
                row["status"].as_str().unwrap_or_default(),
                row["stake_eai"].as_str().unwrap_or_default(),
                row["busy"].as_u64().unwrap_or_default(),
                row["prompts_mined"].as_u64().unwrap_or_default(),
                row["block_rewards_eai"].as_str().unwrap_or_default(),
            );
        }
        println!();
        for row in &rows {
            let hardware = &row["hardware"];
            println!(
                "{}  {}, {} MiB, {}, capacity {}",
                row["address"].as_str().unwrap_or_default(),
                hardware["gpu_model"].as_str().unwrap_or_default(),
                hardware["memory_mb"],
                hardware["engine"].as_str().unwrap_or_default(),
                row["capacity"],
            );
        }
        Ok(())
    })
}

pub(crate) fn run_topic(args: TopicArgs) -> eyre::Result<()> {
    runtime()?.block_on(async move {
        let deployment = args.network.deployment().await?;
        let provider = ProviderBuilder::new()
            .connect_http(deployment.rpc_url.parse().wrap_err("invalid rpc url")?);
        let client = KernelClient::new(provider.clone(), Address::ZERO, deployment.addresses());
        let topic_id: B256 =
            KernelClient::<alloy::providers::RootProvider>::topic_id(args.account, &args.topic);
        let topic = client
            .context()
            .getTopic(topic_id)
            .call()
            .await
            .map_err(|e| eyre::eyre!("getTopic: {e}"))?;
        let ids = client
            .context()
            .turnRange(topic_id, U256::ZERO, topic.turnCount)
            .call()
            .await
            .map_err(|e| eyre::eyre!("turnRange: {e}"))?;
        let system = if topic.systemPromptRevision > 0 {
            Some(
                client
                    .context()
                    .systemPromptAt(topic_id, topic.systemPromptRevision)
                    .call()
                    .await
                    .map_err(|e| eyre::eyre!("systemPromptAt: {e}"))?,
            )
        } else {
            None
        };
        // Turns sent with `aik prompt --offchain` are read from the content store or IPFS.
        let (store, fetcher) = crate::chain::store().await?;
        let storage = aik_kernel::PromptStore::new(store, Some(fetcher));
        let mut turns = Vec::new();
        for id in ids {
            let context =
                aik_kernel::load_context_with(&provider, &deployment.addresses(), id, &storage)
                    .await?;
            let (status, hash, miner) = client.result(id).await?;
            let output = if status == PromptStatus::Finalized {
                revealed_output(&provider, deployment.kernel, id, hash).await?
            } else {
                Vec::new()
            };
            turns.push(serde_json::json!({
                "prompt_id": id.to_string(),
                "user": user_message(&context.input, &context.extra),
                "assistant": output_text(&context.format, &output),
                "output_sha256": alloy::hex::encode(hash),
                "miner": miner.to_string(),
            }));
        }
        if args.json {
            let json = serde_json::json!({
                "topic_id": topic_id.to_string(),
                "owner": topic.owner.to_string(),
                "window": topic.window,
                "system_prompt": system,
                "head": topic.head.to_string(),
                "turns": turns,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
            return Ok(());
        }
        println!(
            "topic {:?} of {} ({} turns, window {}, head {})",
            args.topic,
            args.account,
            turns.len(),
            topic.window,
            topic.head
        );
        if let Some(system) = system {
            println!("[system] {system}");
        }
        for turn in &turns {
            println!(
                "#{} [user] {}",
                turn["prompt_id"].as_str().unwrap_or_default(),
                turn["user"].as_str().unwrap_or_default()
            );
            println!(
                "#{} [assistant] {}",
                turn["prompt_id"].as_str().unwrap_or_default(),
                turn["assistant"].as_str().unwrap_or_default()
            );
        }
        Ok(())
    })
}
