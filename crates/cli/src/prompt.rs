//! `aik prompt`: submit a prompt and follow it through assignment, commits, reveals and
//! finalization.

use std::time::{Duration, Instant};

use aik_kernel::{
    DataSource, Failure, Finality, KernelClient, OutputValue, PromptRequest, PromptStatus,
    SamplingSpec, bindings::DecentralizedInference as DI, output_hash, output_text,
    wallet_provider,
};
use alloy::{
    primitives::{B256, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use clap::Args;
use eyre::{WrapErr, bail, ensure};

use crate::chain::{DEV_KEY_0, NetworkArgs, parse_format, parse_key, runtime};

/// `aik prompt`.
#[derive(Debug, Args)]
pub(crate) struct PromptArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Requester's private key (default: dev account 0).
    #[arg(long, env = "AIK_KEY", default_value = DEV_KEY_0, hide_default_value = true)]
    key: String,
    /// Conversation (topic) the prompt belongs to; later prompts see earlier turns.
    #[arg(long, default_value = "default")]
    topic: String,
    /// Extra context: text, or @FILE to read it from a file.
    #[arg(long)]
    extra: Option<String>,
    /// Output format: text, bool, choice(a|b|c), uint(min,max), int(min,max).
    #[arg(long, default_value = "text")]
    format: String,
    /// Registered model to ask (default: the deployment's model; see `aik model list`).
    #[arg(long, value_name = "ID")]
    model: Option<u64>,
    /// Most output tokens.
    #[arg(long, default_value_t = 64)]
    max_tokens: u32,
    /// Keep the input and extra context off chain: put them in the content store and submit
    /// only their sha256 and length (workers read them from the store, or from IPFS by CID).
    #[arg(long)]
    offchain: bool,
    /// With --offchain, also add the data to IPFS through this Kubo RPC API
    /// (e.g. http://127.0.0.1:5001), so workers on other machines can fetch it.
    #[arg(long, env = "AIK_IPFS_API", requires = "offchain")]
    ipfs_api: Option<String>,
    /// Print one JSON object instead of the phases.
    #[arg(long)]
    json: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// The user message.
    input: String,
}

pub(crate) fn run(args: PromptArgs) -> eyre::Result<()> {
    runtime()?.block_on(prompt(args))
}

async fn prompt(args: PromptArgs) -> eyre::Result<()> {
    ensure!(!args.input.is_empty(), "the input is empty");
    let deployment = args.network.deployment().await?;
    let signer = parse_key(&args.key)?;
    let requester = signer.address();
    let provider = wallet_provider(&deployment.rpc_url, signer)?;
    let client = KernelClient::new(provider.clone(), requester, deployment.addresses());
    let format = parse_format(&args.format)?;
    let extra = match &args.extra {
        Some(path) if path.starts_with('@') => Some(
            std::fs::read(&path[1..])
                .wrap_err_with(|| format!("cannot read --extra file {}", &path[1..]))?,
        ),
        Some(text) => Some(text.clone().into_bytes()),
        None => None,
    };
    let input = args.input.clone().into_bytes();
    let (input, extra) = if args.offchain {
        let publish = args.ipfs_api.as_deref().map(kubo).transpose()?;
        let input = offchain(&input, publish.as_ref()).await.wrap_err("storing the input")?;
        let extra = match extra {
            Some(extra) => {
                Some(offchain(&extra, publish.as_ref()).await.wrap_err("storing --extra")?)
            }
            None => None,
        };
        (input, extra)
    } else {
        (DataSource::Onchain(input), extra.map(DataSource::Onchain))
    };
    let request = PromptRequest {
        model_id: U256::from(args.model.unwrap_or(deployment.model_id)),
        topic: args.topic.clone(),
        input,
        extra,
        format: format.clone(),
        max_tokens: args.max_tokens,
        fee_per_token: 0,
        sampling: SamplingSpec::Greedy,
        callback_gas_limit: 0,
        finality: Finality::Immediate,
    };
    let started = Instant::now();
    let say = |what: String| {
        if !args.json {
            println!("[{:>6.2} s] {what}", started.elapsed().as_secs_f64());
        }
    };
    let submitted = client.submit(&request).await?;
    let id = submitted.prompt_id;
    let mut gas = submitted.receipt.gas_used;
    say(format!(
        "submitted prompt {id} (fee {} wei, gas {gas}, tx {})",
        submitted.fee, submitted.receipt.transaction_hash
    ));
    let (mut assigned, mut queued, mut committed, mut revealed) = (false, false, 0u32, 0u32);
    // Anchored in the submit's block: a worker draws the committee from the next block on.
    let mut anchored = submitted.anchored.then_some(submitted.receipt.block_number).flatten();
    if let Some(block) = anchored {
        say(format!("waiting for the draw: committee from the hash of block {block}"));
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let (status, hash, miner) = loop {
        let record = client.prompt(id).await?;
        if record.status == PromptStatus::Queued {
            let anchor = client.anchor_of(id).await?;
            if anchor.is_some() && anchor != anchored {
                anchored = anchor;
                say(format!(
                    "waiting for the draw: committee from the hash of block {}",
                    anchor.unwrap_or_default()
                ));
            } else if anchor.is_none() && anchored.is_none() && !queued {
                queued = true;
                say("queued: waiting for free workers".into());
            }
        }
        if !assigned && record.status == PromptStatus::Committing {
            let (members, _) = client.committee(id).await?;
            if !members.is_empty() {
                assigned = true;
                let members: Vec<String> = members.iter().map(ToString::to_string).collect();
                say(format!("assigned to {}", members.join(", ")));
            }
        }
        let c = record.committed_mask.count_ones();
        if c > committed {
            committed = c;
            say(format!("committed {c}/{}", record.committee_size));
        }
        let r = record.revealed_mask.count_ones();
        if r > revealed {
            revealed = r;
            say(format!("revealed {r}/{}", record.committee_size));
        }
        if matches!(
            record.status,
            PromptStatus::Finalized | PromptStatus::Refunded | PromptStatus::Unavailable
        ) {
            break client.result(id).await?;
        }
        if Instant::now() > deadline {
            bail!("prompt {id} is still {:?} after {} s", record.status, args.timeout);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let output = if status == PromptStatus::Finalized {
        Some(revealed_output(&provider, deployment.kernel, id, hash).await?)
    } else {
        None
    };
    // Gas of the whole life: every kernel transaction about this prompt.
    gas += prompt_gas(&provider, deployment.kernel, id).await?;
    let text = output.as_ref().map(|o| output_text(&format, o));
    if args.json {
        let value = output.as_ref().and_then(|o| OutputValue::decode(&format, o).ok());
        let json = serde_json::json!({
            "prompt_id": id.to_string(),
            "requester": requester.to_string(),
            "topic": args.topic,
            "format": format.name(),
            "output": text,
            "output_hex": output.as_ref().map(|o| format!("0x{}", alloy::hex::encode(o))),
            "output_sha256": format!("{}", hash).trim_start_matches("0x"),
            "value": value.as_ref().map(json_value),
            "failure": output.as_ref().and_then(|o| Failure::decode(o)).map(Failure::code),
            "miner": miner.to_string(),
            "status": format!("{status:?}").to_lowercase(),
            "fee_wei": submitted.fee.to_string(),
            "gas_used": gas,
            "seconds": seconds,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        match &text {
            Some(text) => {
                say(format!("finalized: miner {miner}, output sha256 {}", hex_of(hash)));
                println!();
                println!("{text}");
                println!();
                println!(
                    "prompt {id}: fee {} wei, gas {gas} in all, {seconds:.2} s",
                    submitted.fee
                );
            }
            None if status == PromptStatus::Unavailable => say(format!(
                "unavailable: fewer than a quorum of the committee could answer (was the input published?); {} wei of the fee credited back",
                client.refund_of(id).await?
            )),
            None => say(format!("{status:?}: no committee agreed; the fee was credited back")),
        }
    }
    Ok(())
}

/// An answer as typed JSON: text a string, bool `true`/`false`, a choice its index, integers
/// decimal strings (256-bit values do not fit a JSON number exactly).
fn json_value(value: &OutputValue) -> serde_json::Value {
    match value {
        OutputValue::Text(text) => text.clone().into(),
        OutputValue::Bool(value) => (*value).into(),
        OutputValue::Choice(index) => (*index).into(),
        OutputValue::Uint(value) => value.to_string().into(),
        OutputValue::Int(value) => value.to_string().into(),
    }
}

fn kubo(api: &str) -> eyre::Result<aik_store::KuboRpc> {
    let url = api.parse().map_err(|e| eyre::eyre!("--ipfs-api {api:?} is not a URL: {e}"))?;
    Ok(aik_store::KuboRpc::new(url))
}

/// Puts `bytes` in the content store (and on IPFS through `publish`) and returns the reference
/// a request carries instead of the bytes. At most one IPFS block ([`MAX_STORAGE_BYTES`]), so
/// the data's content id is also the id IPFS gives it.
async fn offchain(bytes: &[u8], publish: Option<&aik_store::KuboRpc>) -> eyre::Result<DataSource> {
    eyre::ensure!(
        bytes.len() as u64 <= aik_kernel::MAX_STORAGE_BYTES,
        "--offchain data is {} bytes; the kernel takes at most {} (one IPFS block) by reference",
        bytes.len(),
        aik_kernel::MAX_STORAGE_BYTES
    );
    let (store, _) = crate::chain::store().await?;
    let id = store.put(bytes).await?;
    if let Some(ipfs) = publish {
        let cid = ipfs.add_bytes(bytes.to_vec()).await?;
        eyre::ensure!(cid == id.to_string(), "IPFS named the data {cid}, not its raw id {id}");
    }
    Ok(DataSource::Storage { digest: B256::from(*id.digest()), length: bytes.len() as u64 })
}

fn hex_of(hash: B256) -> String {
    alloy::hex::encode(hash)
}

/// The winning output's bytes, from the reveal that carries them.
pub(crate) async fn revealed_output<P: Provider>(
    provider: &P,
    kernel: alloy::primitives::Address,
    id: U256,
    hash: B256,
) -> eyre::Result<Vec<u8>> {
    let filter = Filter::new()
        .address(kernel)
        .event_signature(DI::OutputRevealed::SIGNATURE_HASH)
        .topic1(B256::from(id))
        .from_block(0);
    for log in provider.get_logs(&filter).await? {
        if let Ok(event) = DI::OutputRevealed::decode_log_data(log.data())
            && output_hash(&event.output) == hash
        {
            return Ok(event.output.to_vec());
        }
    }
    bail!("no reveal of prompt {id} carries the winning hash {hash}")
}

/// Gas of the commits, reveals and finalize of a prompt.
async fn prompt_gas<P: Provider>(
    provider: &P,
    kernel: alloy::primitives::Address,
    id: U256,
) -> eyre::Result<u64> {
    let filter = Filter::new()
        .address(kernel)
        .event_signature(vec![
            DI::OutputCommitted::SIGNATURE_HASH,
            DI::OutputRevealed::SIGNATURE_HASH,
            DI::PromptFinalized::SIGNATURE_HASH,
        ])
        .topic1(B256::from(id))
        .from_block(0);
    let mut txs: Vec<B256> =
        provider.get_logs(&filter).await?.iter().filter_map(|l| l.transaction_hash).collect();
    txs.sort();
    txs.dedup();
    let mut gas = 0;
    for tx in txs {
        if let Some(receipt) = provider.get_transaction_receipt(tx).await? {
            gas += receipt.gas_used;
        }
    }
    Ok(gas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{I256, U256};

    #[test]
    fn answers_are_typed_json() {
        use serde_json::json;
        assert_eq!(json_value(&OutputValue::Bool(true)), json!(true));
        assert_eq!(json_value(&OutputValue::Text("hi".into())), json!("hi"));
        assert_eq!(json_value(&OutputValue::Choice(2)), json!(2));
        assert_eq!(json_value(&OutputValue::Uint(U256::MAX)), json!(U256::MAX.to_string()));
        assert_eq!(json_value(&OutputValue::Int(I256::MINUS_ONE)), json!("-1"));
    }
}
