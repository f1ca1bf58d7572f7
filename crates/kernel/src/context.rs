//! Reading a prompt's context from the chain: everything the context-assembly rule
//! ([`aik_protocol::PromptContext`], DESIGN §5.2) needs.
//!
//! [`load_context`] reads everything the rule needs from the chain: the prompt's `PromptData`
//! event (request, snapshot, window, system prompt revision), the topic's turn ids from the
//! ContextManager, each turn's `PromptData` and the revealed bytes of its answer as the prompt
//! sees it: the answer the turn was finalized with, or the one a challenge replaced it with if
//! that correction is among the topic's first `corrections` (the prompt's snapshot).
//! Input or extra context that a request references by sha256 (held in storage, not onchain)
//! comes from a [`PromptStore`] through [`load_context_with`]: a local content store, then IPFS
//! by the data's content id; either way the bytes must hash to what the kernel recorded.

use aik_store::{ContentId, Expected, Fetcher, LocalStore, NoProgress, Uri};
use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::{Filter, Log},
    sol_types::SolEvent,
};
use sha2::{Digest, Sha256};

use crate::{
    Error, KernelAddresses, KernelClient, OutputFormat, PromptContext, Result, SamplingSpec, Turn,
    bindings::{ContextManager, DecentralizedInference as DI},
};

/// The decoded `PromptData` event of a prompt.
async fn prompt_data<P: Provider>(
    provider: &P,
    kernel: Address,
    prompt_id: U256,
) -> Result<DI::PromptData> {
    let filter = Filter::new()
        .address(kernel)
        .event_signature(DI::PromptData::SIGNATURE_HASH)
        .topic1(B256::from(prompt_id))
        .from_block(0);
    let logs = provider.get_logs(&filter).await?;
    let log = logs.first().ok_or_else(|| Error::UnexpectedValue {
        what: "PromptData event",
        value: format!("none for prompt {prompt_id}"),
    })?;
    decode::<DI::PromptData>(log)
}

fn decode<E: SolEvent>(log: &Log) -> Result<E> {
    E::decode_log_data(log.data()).map_err(|e| Error::UnexpectedValue {
        what: E::SIGNATURE,
        value: format!("undecodable log in transaction {:?}: {e}", log.transaction_hash),
    })
}

/// Where a worker or verifier finds prompt data that a request holds in storage: its local
/// content store first, then (with a fetcher) IPFS, by the CIDv1 raw that names the data's
/// sha256 (what `ipfs add --cid-version 1 --raw-leaves` gives data of up to one block). Fetched
/// bytes are verified and kept in the store.
#[derive(Clone, Debug)]
pub struct PromptStore {
    store: LocalStore,
    fetcher: Option<Fetcher>,
}

impl PromptStore {
    /// Reads from `store`, and downloads what it lacks through `fetcher` when there is one.
    pub const fn new(store: LocalStore, fetcher: Option<Fetcher>) -> Self {
        Self { store, fetcher }
    }

    /// The content with this sha256 and length.
    async fn bytes(&self, digest: B256, length: u64) -> Result<Vec<u8>> {
        let id = ContentId::from_digest(digest.0);
        if !self.store.has(&id)
            && let Some(fetcher) = &self.fetcher
        {
            let uri = Uri::Ipfs { cid: id.to_string(), path: String::new() };
            fetcher
                .fetch_into(&self.store, &uri, &Expected::id(id).with_size(length), &NoProgress)
                .await?;
        }
        Ok(self.store.get(&id).await?)
    }
}

/// The bytes of an input or extra context, checked against the hash the kernel recorded.
async fn data_bytes(
    data: &DI::DataRef,
    expected: B256,
    what: &'static str,
    prompt_id: U256,
    storage: Option<&PromptStore>,
) -> Result<Vec<u8>> {
    let bytes = match (data.kind, storage) {
        (0, _) => data.data.to_vec(),
        (1, Some(storage)) => {
            storage.bytes(data.digest, data.length).await.map_err(|e| Error::DataUnavailable {
                what,
                prompt_id,
                digest: data.digest,
                length: data.length,
                reason: e.to_string(),
            })?
        }
        (1, None) => {
            return Err(Error::InvalidArgument {
                name: "prompt data",
                reason: format!(
                    "the {what} of prompt {prompt_id} is held in storage (sha256 {}); no store to read it from was given",
                    data.digest
                ),
            });
        }
        (kind, _) => {
            return Err(Error::UnexpectedValue {
                what: "prompt data kind",
                value: format!("{kind} for the {what} of prompt {prompt_id}"),
            });
        }
    };
    if data.kind == 1 && bytes.len() as u64 != data.length {
        return Err(Error::UnexpectedValue {
            what: "prompt data length",
            value: format!(
                "{what} of prompt {prompt_id} is {} bytes, the request says {}",
                bytes.len(),
                data.length
            ),
        });
    }
    let actual = B256::from(<[u8; 32]>::from(Sha256::digest(&bytes)));
    if actual != expected {
        return Err(Error::UnexpectedValue {
            what: "prompt data hash",
            value: format!(
                "{what} of prompt {prompt_id} hashes to {actual}, the kernel recorded {expected}"
            ),
        });
    }
    Ok(bytes)
}

/// The revealed bytes of a finalized prompt's winning output (the onchain reveal whose bytes hash
/// to the result's output hash; after an overturning challenge, the corrected one).
pub async fn winning_output<P: Provider + Clone>(
    provider: &P,
    kernel: Address,
    prompt_id: U256,
) -> Result<Vec<u8>> {
    let result = DI::new(kernel, provider.clone())
        .getResult(prompt_id)
        .call()
        .await
        .map_err(|e| Error::contract("getResult", e))?;
    revealed_output(provider, kernel, prompt_id, result.outputHash).await
}

/// The bytes of a prompt's onchain reveal that hash to `output_hash`.
async fn revealed_output<P: Provider>(
    provider: &P,
    kernel: Address,
    prompt_id: U256,
    output_hash: B256,
) -> Result<Vec<u8>> {
    let filter = Filter::new()
        .address(kernel)
        .event_signature(DI::OutputRevealed::SIGNATURE_HASH)
        .topic1(B256::from(prompt_id))
        .from_block(0);
    for log in provider.get_logs(&filter).await? {
        let revealed = decode::<DI::OutputRevealed>(&log)?;
        if revealed.outputHash == output_hash && crate::output_hash(&revealed.output) == output_hash
        {
            return Ok(revealed.output.to_vec());
        }
    }
    Err(Error::UnexpectedValue {
        what: "winning output",
        value: format!(
            "no onchain reveal of prompt {prompt_id} carries the winning hash {output_hash}"
        ),
    })
}

/// The output hash of turn `turn` as a prompt whose snapshot applies the topic's first
/// `corrections` corrections sees it: the corrected answer if a challenge overturned the turn in
/// one of those corrections, else the answer it was finalized with (a prompt can be corrected
/// once, so there is at most one correction to look for).
async fn turn_output_hash<P: Provider + Clone>(
    provider: &P,
    addresses: &KernelAddresses,
    topic_id: B256,
    turn: U256,
    corrections: u32,
) -> Result<B256> {
    let kernel = DI::new(addresses.kernel, provider.clone());
    let result =
        kernel.getResult(turn).call().await.map_err(|e| Error::contract("getResult", e))?;
    let challenge =
        kernel.getChallenge(turn).call().await.map_err(|e| Error::contract("getChallenge", e))?;
    if challenge.status != crate::ChallengeStatus::Overturned as u8 {
        return Ok(result.outputHash);
    }
    let filter = Filter::new()
        .address(addresses.context)
        .event_signature(ContextManager::TurnCorrected::SIGNATURE_HASH)
        .topic1(topic_id)
        .topic2(B256::from(turn))
        .from_block(0);
    for log in provider.get_logs(&filter).await? {
        let corrected = decode::<ContextManager::TurnCorrected>(&log)?;
        if corrected.index < U256::from(corrections) {
            return Ok(corrected.outputHash);
        }
    }
    // Corrected after the prompt was submitted: it sees the answer the turn was finalized with.
    let filter = Filter::new()
        .address(addresses.kernel)
        .event_signature(DI::ChallengeOpened::SIGNATURE_HASH)
        .topic1(B256::from(turn))
        .from_block(0);
    let logs = provider.get_logs(&filter).await?;
    let opened = logs.first().ok_or_else(|| Error::UnexpectedValue {
        what: "ChallengeOpened event",
        value: format!("none for the overturned prompt {turn}"),
    })?;
    Ok(decode::<DI::ChallengeOpened>(opened)?.originalHash)
}

/// Reads a prompt's context from the chain (see the module docs); prompt data held in storage
/// is an error here (see [`load_context_with`]).
pub async fn load_context<P: Provider + Clone>(
    provider: &P,
    addresses: &KernelAddresses,
    prompt_id: U256,
) -> Result<PromptContext> {
    load(provider, addresses, prompt_id, None).await
}

/// [`load_context`], reading input and extra context held in storage from `storage`.
pub async fn load_context_with<P: Provider + Clone>(
    provider: &P,
    addresses: &KernelAddresses,
    prompt_id: U256,
    storage: &PromptStore,
) -> Result<PromptContext> {
    load(provider, addresses, prompt_id, Some(storage)).await
}

async fn load<P: Provider + Clone>(
    provider: &P,
    addresses: &KernelAddresses,
    prompt_id: U256,
    storage: Option<&PromptStore>,
) -> Result<PromptContext> {
    let data = prompt_data(provider, addresses.kernel, prompt_id).await?;
    let request = &data.request;
    let input = data_bytes(&request.input, data.inputHash, "input", prompt_id, storage).await?;
    let extra =
        data_bytes(&request.extra, data.extraHash, "extra context", prompt_id, storage).await?;
    let format = OutputFormat::from_parts(request.format.kind, &request.format.options)?;
    let sampling = match request.sampling.mode {
        0 => SamplingSpec::Greedy,
        _ => SamplingSpec::Sample {
            temperature_milli: request.sampling.temperatureMilli,
            top_p_milli: request.sampling.topPMilli,
            seed: request.sampling.seed,
        },
    };
    // The topic id is derived rather than read from the prompt record: the record keeps it only while
    // the prompt is open, and verifying a finalized prompt needs it too.
    let record = DI::new(addresses.kernel, provider.clone())
        .getPrompt(prompt_id)
        .call()
        .await
        .map_err(|e| Error::contract("getPrompt", e))?;
    let topic_id = KernelClient::<P>::topic_id(record.requester, &request.topic);
    let context = ContextManager::new(addresses.context, provider.clone());
    let system_prompt = if data.systemPromptRevision == 0 {
        None
    } else {
        Some(
            context
                .systemPromptAt(topic_id, data.systemPromptRevision)
                .call()
                .await
                .map_err(|e| Error::contract("systemPromptAt", e))?,
        )
    };
    let count = u64::from(data.window).min(data.turnSnapshot);
    let start = data.turnSnapshot - count;
    let ids = context
        .turnRange(topic_id, U256::from(start), U256::from(count))
        .call()
        .await
        .map_err(|e| Error::contract("turnRange", e))?;
    let mut history = Vec::with_capacity(ids.len());
    for id in ids {
        let turn = prompt_data(provider, addresses.kernel, id).await?;
        let output_hash =
            turn_output_hash(provider, addresses, topic_id, id, data.corrections).await?;
        history.push(Turn {
            prompt_id: id,
            input: data_bytes(&turn.request.input, turn.inputHash, "input", id, storage).await?,
            extra: data_bytes(&turn.request.extra, turn.extraHash, "extra context", id, storage)
                .await?,
            format: OutputFormat::from_parts(
                turn.request.format.kind,
                &turn.request.format.options,
            )?,
            output: revealed_output(provider, addresses.kernel, id, output_hash).await?,
        });
    }
    Ok(PromptContext {
        prompt_id,
        requester: record.requester,
        model_id: request.modelId,
        topic: request.topic.clone(),
        system_prompt,
        history,
        input,
        extra,
        format,
        max_tokens: request.maxTokens,
        sampling,
    })
}
