//! Context assembly (DESIGN §5.2): the one rule by which a worker and a verifier turn a prompt and
//! its topic's history into the chat messages the model runs on.
//!
//! # The rule
//!
//! 1. The topic's system prompt at the revision the prompt recorded, if it has one; nothing
//!    otherwise (the model's chat template may add its own default, which is part of the model).
//! 2. The last `window` finalized turns of the topic before the prompt's snapshot, oldest first,
//!    each as a user message (laid out as in 3) followed by an assistant message holding the
//!    winning output as text ([`output_text`]). A turn answered with a
//!    [failure answer](crate::Failure) is left out (it still counts towards the window).
//! 3. The new user message: with no extra context it is the input alone; with extra context it
//!    is the extra context, one blank line (`"\n\n"`), then the input. Bytes that are not UTF-8
//!    become U+FFFD.
//! 4. While the rendered conversation has more tokens than the model's context length minus the
//!    prompt's max output tokens, the oldest remaining turn (its user and assistant message
//!    together) is dropped. If nothing but the system prompt and the new message is left and it
//!    still does not fit, the prompt cannot be run: [`Failure::ContextTooLong`], the same on
//!    every node, which the committee answers with that failure answer.
//!
//! Token counting depends on the model, so [`PromptContext::assemble`] takes it as a closure and
//! this crate stays free of the inference engine.
//!
//! [`load_context`] reads everything the rule needs from the chain: the prompt's `PromptData`
//! event (request, snapshot, window, system prompt revision), the topic's turn ids from the
//! ContextManager, each turn's `PromptData` and the revealed bytes of its winning output.
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
    Error, Failure, KernelAddresses, KernelClient, OutputFormat, OutputValue, Result, SamplingSpec,
    bindings::{ContextManager, DecentralizedInference as DI},
};

/// Who wrote a message of an assembled context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChatRole {
    /// The topic's system prompt.
    System,
    /// A requester's message.
    User,
    /// A finalized answer.
    Assistant,
}

/// One message of an assembled context, ready for a chat template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: ChatRole,
    /// Its text.
    pub content: String,
}

impl ChatMessage {
    /// A message from `role`.
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }
}

/// A finalized turn of a topic: what was asked and the answer the committee agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    /// The turn's prompt id.
    pub prompt_id: U256,
    /// Input bytes.
    pub input: Vec<u8>,
    /// Extra context bytes (empty: none).
    pub extra: Vec<u8>,
    /// The turn's output format, needed to show a canonical answer as text.
    pub format: OutputFormat,
    /// Canonical bytes of the winning output.
    pub output: Vec<u8>,
}

/// Everything context assembly and the driver need about one prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptContext {
    /// The prompt.
    pub prompt_id: U256,
    /// Who asked (and owns the topic).
    pub requester: Address,
    /// The model.
    pub model_id: U256,
    /// The topic name.
    pub topic: String,
    /// The topic's system prompt in force at submission.
    pub system_prompt: Option<String>,
    /// The last `window` turns before the prompt's snapshot, oldest first.
    pub history: Vec<Turn>,
    /// The new input.
    pub input: Vec<u8>,
    /// The new extra context (empty: none).
    pub extra: Vec<u8>,
    /// The answer's shape.
    pub format: OutputFormat,
    /// Most output tokens.
    pub max_tokens: u32,
    /// Decoding rule.
    pub sampling: SamplingSpec,
}

/// A user message's text under rule 3: the extra context, a blank line, then the input; the
/// input alone when there is no extra context.
pub fn user_message(input: &[u8], extra: &[u8]) -> String {
    let input = String::from_utf8_lossy(input);
    if extra.is_empty() {
        input.into_owned()
    } else {
        format!("{}\n\n{input}", String::from_utf8_lossy(extra))
    }
}

/// An output as the assistant message of a later turn: text as is, `true`/`false`, the chosen
/// option's text, or the integer in decimal (a failure answer, which never becomes a turn's
/// message, shows as `[failure N: …]`). Bytes that do not decode under the format (which a
/// finalized prompt never has) are shown as `0x`-hex so the rule stays total.
pub fn output_text(format: &OutputFormat, output: &[u8]) -> String {
    if let Some(failure) = Failure::decode(output) {
        return format!("[{failure}]");
    }
    match OutputValue::decode(format, output) {
        Ok(OutputValue::Text(text)) => text,
        Ok(OutputValue::Bool(value)) => value.to_string(),
        Ok(OutputValue::Choice(index)) => match format {
            OutputFormat::Choice(options) => options[index as usize].clone(),
            _ => index.to_string(),
        },
        Ok(OutputValue::Uint(value)) => value.to_string(),
        Ok(OutputValue::Int(value)) => value.to_string(),
        Err(_) => format!("0x{}", alloy::hex::encode(output)),
    }
}

impl PromptContext {
    /// The full conversation before truncation (rules 1–3).
    pub fn messages(&self) -> Vec<ChatMessage> {
        Self::messages_from(self, &self.history)
    }

    fn messages_from(&self, history: &[Turn]) -> Vec<ChatMessage> {
        let mut messages = Vec::with_capacity(2 * history.len() + 2);
        if let Some(system) = &self.system_prompt {
            messages.push(ChatMessage::new(ChatRole::System, system.clone()));
        }
        for turn in history.iter().filter(|turn| Failure::decode(&turn.output).is_none()) {
            messages.push(ChatMessage::new(ChatRole::User, user_message(&turn.input, &turn.extra)));
            messages.push(ChatMessage::new(
                ChatRole::Assistant,
                output_text(&turn.format, &turn.output),
            ));
        }
        messages.push(ChatMessage::new(ChatRole::User, user_message(&self.input, &self.extra)));
        messages
    }

    /// The conversation the model runs on (rules 1–4): turns are dropped oldest first until
    /// `count_tokens(messages)` (the rendered prompt's token count, generation prompt included)
    /// plus max tokens fits `context_length`.
    pub fn assemble<E: std::fmt::Display>(
        &self,
        context_length: usize,
        mut count_tokens: impl FnMut(&[ChatMessage]) -> std::result::Result<usize, E>,
    ) -> Result<Vec<ChatMessage>> {
        let max_tokens = self.max_tokens as usize;
        let failed = |failure, reason| Error::PromptFailure {
            prompt_id: self.prompt_id.to_string(),
            failure,
            reason,
        };
        let budget = context_length.checked_sub(max_tokens).filter(|b| *b > 0).ok_or_else(|| {
            failed(
                Failure::ContextTooLong,
                format!(
                    "it asks for {max_tokens} output tokens but the model's context holds {context_length}"
                ),
            )
        })?;
        for dropped in 0..=self.history.len() {
            let messages = self.messages_from(&self.history[dropped..]);
            let tokens = count_tokens(&messages).map_err(|e| {
                failed(Failure::Unprocessable, format!("its context cannot be tokenized: {e}"))
            })?;
            if tokens <= budget {
                if dropped > 0 {
                    tracing::debug!(prompt = %self.prompt_id, dropped, tokens, budget, "dropped oldest turns to fit the context");
                }
                return Ok(messages);
            }
            if dropped == self.history.len() {
                return Err(failed(
                    Failure::ContextTooLong,
                    format!(
                        "it needs {tokens} prompt tokens without any history, but only {budget} fit (context {context_length} minus {max_tokens} output tokens)"
                    ),
                ));
            }
        }
        unreachable!("the loop returns on its last iteration")
    }
}

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
/// to the result's output hash).
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
    let filter = Filter::new()
        .address(kernel)
        .event_signature(DI::OutputRevealed::SIGNATURE_HASH)
        .topic1(B256::from(prompt_id))
        .from_block(0);
    for log in provider.get_logs(&filter).await? {
        let revealed = decode::<DI::OutputRevealed>(&log)?;
        if revealed.outputHash == result.outputHash
            && crate::output_hash(&revealed.output) == result.outputHash
        {
            return Ok(revealed.output.to_vec());
        }
    }
    Err(Error::UnexpectedValue {
        what: "winning output",
        value: format!(
            "no onchain reveal of prompt {prompt_id} carries the winning hash {}",
            result.outputHash
        ),
    })
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
        history.push(Turn {
            prompt_id: id,
            input: data_bytes(&turn.request.input, turn.inputHash, "input", id, storage).await?,
            extra: data_bytes(&turn.request.extra, turn.extraHash, "extra context", id, storage)
                .await?,
            format: OutputFormat::from_parts(
                turn.request.format.kind,
                &turn.request.format.options,
            )?,
            output: winning_output(provider, addresses.kernel, id).await?,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(id: u64, input: &str, extra: &str, output: &str) -> Turn {
        Turn {
            prompt_id: U256::from(id),
            input: input.into(),
            extra: extra.into(),
            format: OutputFormat::Text,
            output: output.into(),
        }
    }

    fn context(
        system: Option<&str>,
        history: Vec<Turn>,
        input: &str,
        extra: &str,
    ) -> PromptContext {
        PromptContext {
            prompt_id: U256::from(9),
            requester: Address::repeat_byte(1),
            model_id: U256::from(1),
            topic: "chat".into(),
            system_prompt: system.map(str::to_owned),
            history,
            input: input.into(),
            extra: extra.into(),
            format: OutputFormat::Text,
            max_tokens: 10,
            sampling: SamplingSpec::Greedy,
        }
    }

    fn m(role: ChatRole, content: &str) -> ChatMessage {
        ChatMessage::new(role, content)
    }

    /// One token per whitespace-separated word plus four per message, like a template's framing.
    fn words(messages: &[ChatMessage]) -> Result<usize, String> {
        Ok(messages.iter().map(|m| 4 + m.content.split_whitespace().count()).sum())
    }

    #[test]
    fn multi_turn_topic_with_system_prompt_and_extra() {
        let ctx = context(
            Some("Be brief."),
            vec![turn(1, "Hi", "", "Hello!"), turn(2, "Capital of France?", "geo quiz", "Paris")],
            "And of Italy?",
            "still geography",
        );
        assert_eq!(
            ctx.assemble(1000, words).unwrap(),
            vec![
                m(ChatRole::System, "Be brief."),
                m(ChatRole::User, "Hi"),
                m(ChatRole::Assistant, "Hello!"),
                m(ChatRole::User, "geo quiz\n\nCapital of France?"),
                m(ChatRole::Assistant, "Paris"),
                m(ChatRole::User, "still geography\n\nAnd of Italy?"),
            ]
        );
    }

    #[test]
    fn no_system_prompt_and_no_history_is_one_user_message() {
        let ctx = context(None, Vec::new(), "Hi", "");
        assert_eq!(ctx.assemble(100, words).unwrap(), vec![m(ChatRole::User, "Hi")]);
        // Invalid UTF-8 becomes U+FFFD rather than failing.
        let ctx = PromptContext { input: vec![b'a', 0xff], ..ctx };
        assert_eq!(ctx.messages(), vec![m(ChatRole::User, "a\u{fffd}")]);
    }

    #[test]
    fn truncation_drops_oldest_turns_first() {
        let ctx = context(
            Some("sys"),
            vec![
                turn(1, "one two three", "", "four five"),
                turn(2, "six", "", "seven"),
                turn(3, "eight", "", "nine"),
            ],
            "ten",
            "",
        );
        // Full: sys 5 + (7 + 6) + (5 + 5) + (5 + 5) + ten 5 = 43 tokens; 10 output tokens.
        assert_eq!(words(&ctx.messages()).unwrap(), 43);
        assert_eq!(ctx.assemble(53, words).unwrap().len(), 8);
        // One token short: the first turn (13 tokens) goes, the two later ones stay.
        let assembled = ctx.assemble(52, words).unwrap();
        assert_eq!(
            assembled,
            vec![
                m(ChatRole::System, "sys"),
                m(ChatRole::User, "six"),
                m(ChatRole::Assistant, "seven"),
                m(ChatRole::User, "eight"),
                m(ChatRole::Assistant, "nine"),
                m(ChatRole::User, "ten"),
            ]
        );
        // Room for the system prompt and the new message only.
        assert_eq!(
            ctx.assemble(20, words).unwrap(),
            vec![m(ChatRole::System, "sys"), m(ChatRole::User, "ten")]
        );
        let err = ctx.assemble(19, words).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prompt 9 cannot run (failure 1: the prompt does not fit the model's context): it needs 10 prompt tokens without any history, but only 9 fit (context 19 minus 10 output tokens)"
        );
        assert!(matches!(err, Error::PromptFailure { failure: Failure::ContextTooLong, .. }));
        let err = ctx.assemble(10, words).unwrap_err();
        assert!(err.to_string().contains("asks for 10 output tokens"), "{err}");
        assert!(matches!(err, Error::PromptFailure { failure: Failure::ContextTooLong, .. }));
    }

    #[test]
    fn tokenizer_errors_name_the_prompt() {
        let ctx = context(None, Vec::new(), "Hi", "");
        let err = ctx.assemble(100, |_| Err::<usize, _>("bad template")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prompt 9 cannot run (failure 5: the input cannot be processed by the model): its context cannot be tokenized: bad template"
        );
    }

    #[test]
    fn turns_answered_with_a_failure_are_left_out() {
        let turn = |id: u64, input: &str, output: Vec<u8>| Turn {
            prompt_id: U256::from(id),
            input: input.as_bytes().to_vec(),
            extra: Vec::new(),
            format: OutputFormat::Text,
            output,
        };
        let ctx = context(
            None,
            vec![
                turn(1, "one", b"uno".to_vec()),
                turn(2, "two", Failure::ContextTooLong.encode().to_vec()),
                turn(3, "three", b"tres".to_vec()),
            ],
            "four",
            "",
        );
        assert_eq!(
            ctx.messages(),
            vec![
                m(ChatRole::User, "one"),
                m(ChatRole::Assistant, "uno"),
                m(ChatRole::User, "three"),
                m(ChatRole::Assistant, "tres"),
                m(ChatRole::User, "four"),
            ]
        );
    }

    #[test]
    fn earlier_answers_show_as_text_in_their_format() {
        let choice = OutputFormat::Choice(vec!["red".into(), "blue".into()]);
        assert_eq!(output_text(&choice, &OutputValue::Choice(1).encode()), "blue");
        assert_eq!(output_text(&OutputFormat::Bool, &OutputValue::Bool(false).encode()), "false");
        let uint = OutputFormat::Uint { min: U256::ZERO, max: U256::from(100) };
        assert_eq!(output_text(&uint, &OutputValue::Uint(U256::from(42)).encode()), "42");
        assert_eq!(output_text(&OutputFormat::Bool, &[7]), "0x07");
        let ctx = context(
            None,
            vec![Turn {
                prompt_id: U256::from(1),
                input: b"Is the sky blue?".to_vec(),
                extra: Vec::new(),
                format: OutputFormat::Bool,
                output: OutputValue::Bool(true).encode(),
            }],
            "Why?",
            "",
        );
        assert_eq!(
            ctx.messages(),
            vec![
                m(ChatRole::User, "Is the sky blue?"),
                m(ChatRole::Assistant, "true"),
                m(ChatRole::User, "Why?"),
            ]
        );
    }
}
