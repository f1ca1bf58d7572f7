//! The dashboard: a page that shows what a network is doing, served next to a node or by
//! `aik up` on its own port (the dev chain stays a leaf that knows nothing of AI).
//!
//! `GET /` is one self-contained page (HTML, CSS and script built into the binary: no CDN, so it
//! works offline, and laid out for a phone screen as well as a desk). `GET /api/state` is the
//! network as JSON, read from the chain on each request: recent prompts with their committee,
//! timeline, answer and challenge, topics as conversations, workers with stake, hardware, jail
//! and rewards, and EAI emission. The page subscribes to the chain's new blocks over its
//! WebSocket (`ws_url` in the state) and reloads the state on each, polling every few seconds
//! when the chain has no WebSocket.

use std::{collections::BTreeMap, net::SocketAddr};

use aik_kernel::{
    KernelClient, PromptStatus,
    bindings::{DecentralizedInference as DI, GPUManagement},
    format_eai, output_hash,
};
use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{Filter, Log},
    sol_types::SolEvent,
};
use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

use crate::{Deployment, Error, Result};

/// The page.
const INDEX_HTML: &str = include_str!("dashboard/index.html");
/// Prompts the state lists, newest first.
const RECENT_PROMPTS: usize = 50;

/// The dashboard's routes for `deployment`.
pub fn router(deployment: Deployment) -> Result<Router> {
    let url = deployment
        .rpc_url
        .parse()
        .map_err(|e| Error::Config(format!("rpc url {:?}: {e}", deployment.rpc_url)))?;
    let provider = ProviderBuilder::new().connect_http(url).erased();
    Ok(Router::new()
        .route("/", get(index))
        .route("/api/state", get(state))
        .with_state(std::sync::Arc::new((deployment, provider))))
}

/// Serves the dashboard of `deployment` on `address` until the task is aborted; returns the
/// bound address (port 0 picks a free one) and the server task.
pub async fn serve(
    deployment: Deployment,
    address: SocketAddr,
) -> Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let router = router(deployment)?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {address} for the dashboard: {e}")))?;
    let bound =
        listener.local_addr().map_err(|e| Error::Config(format!("dashboard listener: {e}")))?;
    let task = tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((bound, task))
}

type Shared = std::sync::Arc<(Deployment, DynProvider)>;

async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML).into_response()
}

async fn state(State(shared): State<Shared>) -> Response {
    let (deployment, provider) = &*shared;
    match snapshot(deployment, provider).await {
        Ok(state) => Json(state).into_response(),
        Err(error) => {
            (StatusCode::BAD_GATEWAY, format!("cannot read the chain: {error}")).into_response()
        }
    }
}

/// Every log of event `E` the contract at `address` emitted since the deployment.
async fn events<E: SolEvent>(
    provider: &DynProvider,
    address: Address,
    from_block: u64,
) -> Result<Vec<(E, Log)>> {
    let filter =
        Filter::new().address(address).event_signature(E::SIGNATURE_HASH).from_block(from_block);
    Ok(provider
        .get_logs(&filter)
        .await?
        .into_iter()
        .filter_map(|log| E::decode_log_data(log.data()).ok().map(|event| (event, log)))
        .collect())
}

/// The network as the page shows it.
pub async fn snapshot(deployment: &Deployment, provider: &DynProvider) -> Result<Value> {
    let client = KernelClient::new(provider.clone(), Address::ZERO, deployment.addresses());
    let from = deployment.deploy_block;
    let kernel = deployment.kernel;
    let block = provider.get_block_number().await?;

    let submitted = events::<DI::PromptSubmitted>(provider, kernel, from).await?;
    let data = events::<DI::PromptData>(provider, kernel, from).await?;
    let assigned = events::<DI::CommitteeAssigned>(provider, kernel, from).await?;
    let committed = events::<DI::OutputCommitted>(provider, kernel, from).await?;
    let revealed = events::<DI::OutputRevealed>(provider, kernel, from).await?;
    let finalized = events::<DI::PromptFinalized>(provider, kernel, from).await?;

    // The request as submitted: its topic's name and (onchain) input.
    let request_of: BTreeMap<U256, (String, String)> = data
        .iter()
        .map(|(e, _)| {
            let input = String::from_utf8_lossy(&e.request.input.data).into_owned();
            (e.promptId, (e.request.topic.clone(), input))
        })
        .collect();
    let mut prompts = Vec::new();
    let mut topics: BTreeMap<B256, (Address, String, Vec<Value>)> = BTreeMap::new();
    for (event, log) in submitted.iter().rev().take(RECENT_PROMPTS) {
        let id = event.promptId;
        let record = client.prompt(id).await?;
        let (status, hash, miner) = client.result(id).await?;
        // The committee the record stands on: the latest one of the record's size (a retry
        // replaces the first; a challenge's 2k + 1 replaces it only if it overturned the answer,
        // else the record is the first's again). Its commits and reveals are its members' since
        // it was assigned (the record's masks are cleared once its lane closes).
        let size = usize::from(record.committee_size);
        let latest = assigned.iter().rfind(|(e, _)| e.promptId == id && e.committee.len() == size);
        let members: &[Address] = latest.map_or(&[], |(e, _)| &e.committee);
        let committee: Vec<String> = members.iter().map(ToString::to_string).collect();
        let assigned_at = latest.and_then(|(_, log)| log.block_number);
        let counts = |logs: &[(Address, &Log)]| {
            logs.iter()
                .filter(|(worker, log)| members.contains(worker) && log.block_number >= assigned_at)
                .count()
        };
        let commits: Vec<_> = committed
            .iter()
            .filter(|(e, _)| e.promptId == id)
            .map(|(e, l)| (e.worker, l))
            .collect();
        let reveals: Vec<_> =
            revealed.iter().filter(|(e, _)| e.promptId == id).map(|(e, l)| (e.worker, l)).collect();
        let finalized_at =
            finalized.iter().find(|(e, _)| e.promptId == id).and_then(|(_, log)| log.block_number);
        let output = (status == PromptStatus::Finalized)
            .then(|| {
                revealed
                    .iter()
                    .find(|(e, _)| e.promptId == id && output_hash(&e.output) == hash)
                    .map(|(e, _)| String::from_utf8_lossy(&e.output).into_owned())
            })
            .flatten();
        let (challenger, challenge, _) = client.challenge_of(id).await?;
        let (topic, input) = request_of.get(&id).cloned().unwrap_or_default();
        let prompt = json!({
            "id": id.to_string(),
            "requester": event.requester.to_string(),
            "topic": topic.clone(),
            "topic_id": event.topicId.to_string(),
            "model_id": event.modelId.to_string(),
            "status": format!("{status:?}").to_lowercase(),
            "attempt": record.attempt,
            "committee": committee,
            "committed": counts(&commits),
            "revealed": counts(&reveals),
            "committee_size": record.committee_size,
            "timeline": {
                "submitted": log.block_number,
                "assigned": assigned_at,
                "finalized": finalized_at,
            },
            "input": input,
            "output": output,
            "output_sha256": (status == PromptStatus::Finalized).then(|| alloy::hex::encode(hash)),
            "miner": (miner != Address::ZERO).then(|| miner.to_string()),
            "challenge": format!("{challenge:?}").to_lowercase(),
            "challenger": (challenger != Address::ZERO).then(|| challenger.to_string()),
            "fee_wei": event.fee.to_string(),
        });
        let entry =
            topics.entry(event.topicId).or_insert_with(|| (event.requester, topic, Vec::new()));
        entry.2.push(json!({
            "prompt_id": id.to_string(),
            "input": prompt["input"],
            "output": prompt["output"],
            "status": prompt["status"],
        }));
        prompts.push(prompt);
    }
    let topics: Vec<Value> = topics
        .into_iter()
        .map(|(id, (requester, name, mut turns))| {
            turns.reverse();
            json!({
                "topic_id": id.to_string(),
                "topic": name,
                "requester": requester.to_string(),
                "turns": turns,
            })
        })
        .collect();

    let workers = rows_of_workers(deployment, provider, &finalized).await?;
    let supply = client.eai_supply().await?;
    let reward = client.current_block_reward().await?;
    let emitted: U256 = finalized.iter().map(|(e, _)| e.blockReward).sum();
    Ok(json!({
        "chain_id": deployment.chain_id,
        "block": block,
        "rpc_url": deployment.rpc_url,
        "ws_url": deployment.ws_url,
        "kernel": deployment.kernel.to_string(),
        "model_id": deployment.model_id,
        "emission": {
            "total_supply_eai": format_eai(supply),
            "block_reward_eai": format_eai(reward),
            "emitted_eai": format_eai(emitted),
            "prompts_finalized": finalized.len(),
        },
        "prompts": prompts,
        "topics": topics,
        "workers": workers,
    }))
}

/// Every worker that ever registered, as the dashboard and `aik status --json` show it: status,
/// jail or unbonding end, stake, capacity, load, hardware, prompts mined and their block rewards,
/// EAI balance and claimable coin.
pub async fn worker_rows(deployment: &Deployment, provider: &DynProvider) -> Result<Vec<Value>> {
    let from = deployment.deploy_block;
    let finalized = events::<DI::PromptFinalized>(provider, deployment.kernel, from).await?;
    rows_of_workers(deployment, provider, &finalized).await
}

async fn rows_of_workers(
    deployment: &Deployment,
    provider: &DynProvider,
    finalized: &[(DI::PromptFinalized, Log)],
) -> Result<Vec<Value>> {
    let client = KernelClient::new(provider.clone(), Address::ZERO, deployment.addresses());
    let registered = events::<GPUManagement::WorkerRegistered>(
        provider,
        deployment.gpu,
        deployment.deploy_block,
    )
    .await?;
    let mut addresses: Vec<Address> = registered.iter().map(|(e, _)| e.worker).collect();
    addresses.dedup();
    let mut rows = Vec::new();
    for worker in addresses {
        let info = client.worker(worker).await?;
        let mined: Vec<_> = finalized.iter().filter(|(e, _)| e.miner == worker).collect();
        let rewards: U256 = mined.iter().map(|(e, _)| e.blockReward).sum();
        rows.push(json!({
            "address": worker.to_string(),
            "status": format!("{:?}", info.status).to_lowercase(),
            "until": info.until,
            "stake_eai": format_eai(U256::from(info.stake)),
            "capacity": info.capacity,
            "busy": info.busy,
            "hardware": {
                "gpu_model": info.hardware.gpu_model,
                "memory_mb": info.hardware.memory_mb,
                "engine": info.hardware.engine,
            },
            "prompts_mined": mined.len(),
            "block_rewards_eai": format_eai(rewards),
            "eai_balance": format_eai(client.eai_balance(worker).await?),
            "claimable_wei": client.claimable(worker).await?.to_string(),
        }));
    }
    Ok(rows)
}
