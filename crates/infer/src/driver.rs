//! The `ModelDriver` interface and its implementation for GGUF files, `gguf/1`.

use crate::model::{ExecOptions, LlamaModel, Logits, Session};
use crate::sampling::{Sampler, Sampling};
use crate::{
    ChatTemplate, Error, Gguf, Message, OutputFormat, OutputValue, PromptLayout, Result, Tokenizer,
};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, Instant};

/// What to run: the chat so far, the answer's shape, how to pick tokens, and a length limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The conversation, rendered with the model's chat template plus the generation prompt.
    pub messages: Vec<Message>,
    /// Shape of the answer.
    pub format: OutputFormat,
    /// Token selection.
    pub sampling: Sampling,
    /// Most tokens to generate (the end-of-generation token not counted).
    pub max_tokens: usize,
}

/// What a run produced. Every field except the timings is identical on every machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The canonical encoding of the answer (DESIGN §5.3): the bytes that are hashed.
    pub bytes: Vec<u8>,
    /// The answer as text.
    pub text: String,
    /// Generated token ids (without the end-of-generation token).
    pub tokens: Vec<u32>,
    /// Token ids of the rendered prompt.
    pub prompt_tokens: Vec<u32>,
    /// sha256 over the little-endian f32 logits of every step, in order (one step per forward
    /// pass that chose a token; the first is the prompt's last position).
    pub logits_sha256: [u8; 32],
    /// sha256 of each step's logits alone, so a verifier can tell at which step two runs part.
    pub step_sha256: Vec<[u8; 32]>,
    /// Why generation stopped.
    pub stop: StopReason,
    /// Time spent on the prompt.
    pub prefill_time: Duration,
    /// Time spent generating after the prompt.
    pub decode_time: Duration,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model chose an end-of-generation token.
    EndOfGeneration,
    /// A constrained answer was complete and could not be extended.
    Complete,
    /// `max_tokens` was reached.
    MaxTokens,
}

/// A deterministic model driver: the standard interface nodes and verifiers run prompts
/// through, with what context assembly needs to fit a conversation to the model. Any change to a
/// driver's numerics is a new [`ModelDriver::version`]. How a driver is made (a file loaded, a
/// wrapper around another) is its own constructor's business.
pub trait ModelDriver {
    /// The driver and numerics version, e.g. `gguf/1`.
    fn version(&self) -> &'static str;

    /// How many tokens [`ModelDriver::run`] feeds the model for `messages` (the rendered prompt,
    /// generation prompt included): what context assembly counts.
    fn prompt_token_count(&self, messages: &[Message]) -> Result<usize>;

    /// The most tokens the model takes, prompt and output together.
    fn context_length(&self) -> usize;

    /// Runs a request to completion.
    fn run(&self, request: &Request) -> Result<Output>;
}

/// `gguf/1` (alias `llama-gguf/1`): GGUF models of the `llama`, `qwen2` and `gemma3` architectures with
/// F32/F16/BF16/Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q2_K/Q3_K/Q4_K/Q5_K/Q6_K matrices, the canonical numerics of this crate,
/// byte-level BPE or SentencePiece vocabularies, and the model's own chat template or, for a base
/// model, the protocol's plain-text layout ([`PromptLayout`]).
#[derive(Debug)]
pub struct LlamaGgufDriver {
    model: LlamaModel,
    tokenizer: Tokenizer,
    /// `None` for a base model (no `tokenizer.chat_template`).
    template: Option<ChatTemplate>,
    /// How [`ModelDriver::run`] renders messages.
    layout: PromptLayout,
    options: ExecOptions,
    /// `tokenizer.ggml.add_bos_token`: raw text starts with BOS.
    add_bos: bool,
}

impl LlamaGgufDriver {
    /// The version string of this driver: the registry's `driver` id that selects it.
    pub const VERSION: &'static str = "gguf/1";

    /// Earlier ids of exactly these numerics: `llama-gguf/1`, under which the committed
    /// conformance vectors were recorded and which `gguf/1` reproduces bit for bit (the
    /// conformance tests), so models registered under it run here unchanged.
    pub const ALIASES: &'static [&'static str] = &["llama-gguf/1"];

    /// Whether a model registered with driver id `id` runs on this driver.
    pub fn runs(id: &str) -> bool {
        id == Self::VERSION || Self::ALIASES.contains(&id)
    }

    /// Loads a model file.
    pub fn load(path: &Path, options: ExecOptions) -> Result<Self> {
        Self::from_gguf(&Gguf::open(path)?, options)
    }

    /// Builds the driver from a parsed GGUF.
    pub fn from_gguf(gguf: &Gguf, options: ExecOptions) -> Result<Self> {
        let model = LlamaModel::from_gguf(gguf)?;
        let tokenizer = Tokenizer::from_gguf(gguf)?;
        let template = match gguf.metadata("tokenizer.chat_template") {
            Some(_) => Some(ChatTemplate::from_gguf(gguf)?),
            None => None,
        };
        if tokenizer.vocab_size() != model.config().vocab {
            return Err(Error::InvalidModel(format!(
                "tokenizer has {} tokens but the LM head has {} rows",
                tokenizer.vocab_size(),
                model.config().vocab
            )));
        }
        // llama.cpp's defaults: no BOS for a GPT-2 BPE vocabulary, BOS for a SentencePiece one;
        // the file's own key wins.
        let add_bos = gguf
            .metadata("tokenizer.ggml.add_bos_token")
            .and_then(crate::MetadataValue::as_bool)
            .unwrap_or_else(|| tokenizer.is_sentencepiece());
        let layout = if template.is_some() { PromptLayout::Chat } else { PromptLayout::PlainText };
        Ok(Self { model, tokenizer, template, layout, options, add_bos })
    }

    /// The same driver rendering messages with `layout`, as a model's registry entry says. The
    /// chat layout needs the file's chat template.
    pub fn with_layout(self, layout: PromptLayout) -> Result<Self> {
        if layout == PromptLayout::Chat && self.template.is_none() {
            return Err(Error::InvalidModel(
                "it has no chat template (tokenizer.chat_template), so it cannot be prompted with the chat layout: it is a base model, to be registered with the plain-text layout".into(),
            ));
        }
        Ok(Self { layout, ..self })
    }

    /// How messages are rendered: the file's chat template by default, plain text for a file
    /// without one; [`LlamaGgufDriver::with_layout`] sets it.
    pub fn layout(&self) -> PromptLayout {
        self.layout
    }

    /// The loaded model.
    pub fn model(&self) -> &LlamaModel {
        &self.model
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Whether plain text (no chat template) starts with the BOS token, as the model's
    /// metadata says (`tokenizer.ggml.add_bos_token`).
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// Execution options (threads, backend); they never change results.
    pub fn options(&self) -> ExecOptions {
        self.options
    }

    /// Changes the execution options.
    pub fn set_options(&mut self, options: ExecOptions) {
        self.options = options;
    }

    /// Renders and tokenizes the prompt of `messages` in the driver's layout: through the chat
    /// template, where special-token text inside message contents stays text (see
    /// [`ChatTemplate::encode`]), or as [`crate::plain_text`] with
    /// [`LlamaGgufDriver::raw_prompt_tokens`].
    pub fn prompt_tokens(&self, messages: &[Message]) -> Result<Vec<u32>> {
        match (self.layout, &self.template) {
            (PromptLayout::PlainText, _) => {
                Ok(self.raw_prompt_tokens(&crate::plain_text(messages)))
            }
            (PromptLayout::Chat, Some(template)) => {
                template.encode(&self.tokenizer, messages, true)
            }
            // Not reached: `from_gguf` and `with_layout` give a file without a template the
            // plain-text layout.
            (PromptLayout::Chat, None) => Err(Error::InvalidRequest(
                "the model has no chat template (tokenizer.chat_template): it is a base model"
                    .into(),
            )),
        }
    }

    /// Whether the model has a chat template (else it is a base model, prompted raw).
    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }

    /// The prompt of plain `text`, no chat template (a base model's completion): BOS when the
    /// model's metadata asks for it, then the text as [`Tokenizer::encode`] gives it.
    pub fn raw_prompt_tokens(&self, text: &str) -> Vec<u32> {
        let bos = self.tokenizer.bos_id().filter(|_| self.add_bos);
        bos.into_iter().chain(self.tokenizer.encode(text)).collect()
    }

    /// Runs `prompt` (token ids) and generates, as [`ModelDriver::run`] does after rendering.
    pub fn generate(
        &self,
        prompt: &[u32],
        format: &OutputFormat,
        sampling: &Sampling,
        max_tokens: usize,
    ) -> Result<Output> {
        if prompt.is_empty() {
            return Err(Error::InvalidRequest("the prompt has no tokens".into()));
        }
        if max_tokens == 0 {
            return Err(Error::InvalidRequest("max_tokens must be at least 1".into()));
        }
        format.validate().map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let limit = self.model.config().context_length;
        if prompt.len() + max_tokens > limit {
            return Err(Error::ContextFull { needed: prompt.len() + max_tokens, limit });
        }
        let mut sampler = Sampler::new(sampling.clone())?;
        let mut session = Session::new(&self.model, self.options, prompt.len() + max_tokens);
        let tk = &self.tokenizer;
        // Tokens a constrained answer may use: never control tokens, only those whose bytes can
        // occur in an answer of this format.
        let candidates: Vec<u32> = if format.is_constrained() {
            (0..tk.vocab_size() as u32)
                .filter(|&id| !tk.is_special(id) && format.token_may_appear(tk.token_bytes(id)))
                .collect()
        } else {
            Vec::new()
        };
        let mut hasher = Sha256::new();
        let mut step_sha256 = Vec::new();
        let mut step_bytes: Vec<u8> = Vec::new();
        let mut tokens = Vec::new();
        let mut out_bytes: Vec<u8> = Vec::new();
        let mut allowed: Vec<u32> = Vec::new();

        let started = Instant::now();
        let mut logits = session.forward(prompt, Logits::Last)?;
        let prefill_time = started.elapsed();
        let decode_started = Instant::now();
        let stop = loop {
            step_bytes.clear();
            step_bytes.extend(logits.iter().flat_map(|v| v.to_le_bytes()));
            hasher.update(&step_bytes);
            step_sha256.push(Sha256::digest(&step_bytes).into());
            let choice = if format.is_constrained() {
                allowed.clear();
                for &id in &candidates {
                    let len = out_bytes.len();
                    out_bytes.extend_from_slice(tk.token_bytes(id));
                    if format.is_valid_prefix(&out_bytes) {
                        allowed.push(id);
                    }
                    out_bytes.truncate(len);
                }
                if format.is_complete(&out_bytes) {
                    allowed.extend(tk.eog_ids().iter().copied());
                    allowed.sort_unstable();
                }
                sampler.pick(&logits, Some(allowed.as_slice()))
            } else {
                sampler.pick(&logits, None)
            };
            let Some(id) = choice else {
                return Err(Error::Constraint {
                    format: format.to_string(),
                    reason: format!("no token continues '{}'", String::from_utf8_lossy(&out_bytes)),
                });
            };
            if tk.is_eog(id) {
                break StopReason::EndOfGeneration;
            }
            tokens.push(id);
            out_bytes.extend_from_slice(tk.token_bytes(id));
            if format.is_constrained()
                && format.is_complete(&out_bytes)
                && !format.can_extend(&out_bytes)
            {
                break StopReason::Complete;
            }
            if tokens.len() >= max_tokens {
                break StopReason::MaxTokens;
            }
            logits = session.forward(&[id], Logits::Last)?;
        };
        let decode_time = decode_started.elapsed();
        let text = tk.decode(&tokens);
        let bytes = if format.is_constrained() {
            OutputValue::from_text(format, text.as_bytes())
                .map_err(|_| Error::Constraint {
                    format: format.to_string(),
                    reason: format!("stopped ({stop:?}) before a complete value: '{text}'"),
                })?
                .encode()
        } else {
            text.as_bytes().to_vec()
        };
        Ok(Output {
            bytes,
            text,
            tokens,
            prompt_tokens: prompt.to_vec(),
            logits_sha256: hasher.finalize().into(),
            step_sha256,
            stop,
            prefill_time,
            decode_time,
        })
    }
}

impl ModelDriver for LlamaGgufDriver {
    fn version(&self) -> &'static str {
        Self::VERSION
    }

    fn prompt_token_count(&self, messages: &[Message]) -> Result<usize> {
        Ok(self.prompt_tokens(messages)?.len())
    }

    fn context_length(&self) -> usize {
        self.model.config().context_length
    }

    fn run(&self, request: &Request) -> Result<Output> {
        let prompt = self.prompt_tokens(&request.messages)?;
        self.generate(&prompt, &request.format, &request.sampling, request.max_tokens)
    }
}
