//! The exact token ids a worker feeds the model for an assembled context (DESIGN §5.2), checked
//! against ids computed independently: the expected ChatML text written out by hand and
//! tokenized by HF `tokenizers` over the model file's own vocabulary and merges.

use std::{
    path::Path,
    sync::{Arc, OnceLock},
};

use aik_infer::{
    ExecOptions, Gguf, LlamaGgufDriver, Message, ModelDriver, Output, Request, TokenType,
};
use aik_kernel::{OutputFormat, OutputValue, PromptContext, SamplingSpec, Turn};
use aik_node::Engine;
use alloy::primitives::{Address, U256};
use serde_json::{Value, json};

/// HF `tokenizers` built from a GGUF's vocabulary: byte-level BPE over the same tokens and
/// merges, pre-tokenized as llama.cpp's `smollm` (single digits, then GPT-2 byte level), with
/// the control tokens registered as special so their text in a template maps to their ids.
pub(crate) fn hf_tokenizer(model: &Path) -> tokenizers::Tokenizer {
    let gguf = Gguf::open(model).unwrap();
    assert_eq!(gguf.get_str("tokenizer.ggml.pre").unwrap(), "smollm");
    let tokens = gguf.get_str_array("tokenizer.ggml.tokens").unwrap();
    let types = gguf.get_i64_array("tokenizer.ggml.token_type").unwrap();
    let merges = gguf.get_str_array("tokenizer.ggml.merges").unwrap();
    let vocab: serde_json::Map<String, Value> =
        tokens.iter().enumerate().map(|(id, t)| ((*t).to_owned(), json!(id))).collect();
    let specials: Vec<Value> = tokens
        .iter()
        .zip(&types)
        .enumerate()
        .filter(|(_, (_, t))| TokenType::from_gguf(**t) == Some(TokenType::Control))
        .map(|(id, (text, _))| {
            json!({"id": id, "content": text, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                            "trim_offsets": true, "use_regex": true});
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": specials,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level]},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    });
    tokenizers::Tokenizer::from_bytes(serde_json::to_vec(&spec).unwrap()).unwrap()
}

/// HF's ids for `text`, specials matched, nothing added around it.
pub(crate) fn hf_ids(tokenizer: &tokenizers::Tokenizer, text: &str) -> Vec<u32> {
    tokenizer.encode(text, false).unwrap().get_ids().to_vec()
}

/// ChatML as SmolLM2 (and the generated test models) write it, one message at a time, with the
/// generation prompt at the end: the text the model must see for `messages`.
pub(crate) fn chatml(messages: &[(&str, &str)]) -> String {
    let mut text: String = messages
        .iter()
        .map(|(role, content)| format!("<|im_start|>{role}\n{content}<|im_end|>\n"))
        .collect();
    text.push_str("<|im_start|>assistant\n");
    text
}

fn smollm2() -> (Arc<LlamaGgufDriver>, std::path::PathBuf) {
    static DRIVER: OnceLock<Arc<LlamaGgufDriver>> = OnceLock::new();
    let path = aik_infer::default_model_path().expect("a home directory");
    assert!(path.is_file(), "run `aik model pull` first: {} is missing", path.display());
    let driver = DRIVER
        .get_or_init(|| Arc::new(LlamaGgufDriver::load(&path, ExecOptions::default()).unwrap()));
    (Arc::clone(driver), path)
}

/// The driver with its context length cut to a number of tokens, so truncation can be driven to
/// its exact boundary.
struct Shortened(Arc<LlamaGgufDriver>, usize);

impl ModelDriver for Shortened {
    fn version(&self) -> &'static str {
        self.0.version()
    }

    fn prompt_token_count(&self, messages: &[Message]) -> aik_infer::Result<usize> {
        self.0.prompt_token_count(messages)
    }

    fn context_length(&self) -> usize {
        self.1
    }

    fn run(&self, request: &Request) -> aik_infer::Result<Output> {
        self.0.run(request)
    }
}

/// The engine a worker builds for the driver, but with the context length cut to `context`.
fn engine_with_context(driver: &Arc<LlamaGgufDriver>, context: usize) -> Engine {
    Engine::new(Arc::new(Shortened(Arc::clone(driver), context)))
}

/// The ids the worker's engine feeds the model for `context` (one output token is generated).
fn fed_ids(engine: &Engine, context: &PromptContext) -> Vec<u32> {
    engine.run(context).unwrap().1.prompt_tokens
}

fn topic() -> PromptContext {
    PromptContext {
        prompt_id: U256::from(3),
        requester: Address::repeat_byte(7),
        model_id: U256::from(1),
        topic: "geo".into(),
        system_prompt: Some("You are a geography tutor. Answer briefly.".into()),
        history: vec![
            Turn {
                prompt_id: U256::from(1),
                input: b"What is the capital of France?".to_vec(),
                extra: Vec::new(),
                format: OutputFormat::Text,
                output: "The capital of France is Paris (2,102,650 people in 2023).".into(),
            },
            Turn {
                prompt_id: U256::from(2),
                input: b"Is Z\xc3\xbcrich on the Seine?".to_vec(),
                extra: b"Quiz mode: answer true or false.".to_vec(),
                format: OutputFormat::Bool,
                output: OutputValue::Bool(false).encode(),
            },
        ],
        input: b"And the capital of Italy?".to_vec(),
        extra: b"Reply with one word.".to_vec(),
        format: OutputFormat::Text,
        max_tokens: 1,
        sampling: SamplingSpec::Greedy,
    }
}

const SYSTEM: (&str, &str) = ("system", "You are a geography tutor. Answer briefly.");
const TURN_1: [(&str, &str); 2] = [
    ("user", "What is the capital of France?"),
    ("assistant", "The capital of France is Paris (2,102,650 people in 2023)."),
];
// The extra context comes first, then a blank line, then the input; a bool answer reads as text.
const TURN_2: [(&str, &str); 2] = [
    ("user", "Quiz mode: answer true or false.\n\nIs Zürich on the Seine?"),
    ("assistant", "false"),
];
const NEW: (&str, &str) = ("user", "Reply with one word.\n\nAnd the capital of Italy?");

#[test]
fn a_system_prompt_and_two_turns_feed_the_model_exactly_these_ids() {
    let (driver, path) = smollm2();
    let hf = hf_tokenizer(&path);
    let expected = hf_ids(&hf, &chatml(&[SYSTEM, TURN_1[0], TURN_1[1], TURN_2[0], TURN_2[1], NEW]));
    let ids = fed_ids(&Engine::new(driver.clone()), &topic());
    assert_eq!(ids, expected);
    // Seven messages' worth of framing: <|im_start|> (1) and <|im_end|> (2) are real control ids.
    assert_eq!(ids.iter().filter(|&&id| id == 1).count(), 7);
    assert_eq!(ids.iter().filter(|&&id| id == 2).count(), 6);

    // Without a system prompt SmolLM2's template supplies its own default one (part of the
    // model, DESIGN §5.2 rule 1), followed by the same turns.
    let bare = PromptContext { system_prompt: None, ..topic() };
    let default_system =
        ("system", "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
    assert_eq!(
        fed_ids(&Engine::new(driver), &bare),
        hf_ids(&hf, &chatml(&[default_system, TURN_1[0], TURN_1[1], TURN_2[0], TURN_2[1], NEW]))
    );
}

#[test]
fn truncation_drops_the_oldest_turn_at_the_exact_token_boundary() {
    let (driver, path) = smollm2();
    let hf = hf_tokenizer(&path);
    let context = topic();
    let full = hf_ids(&hf, &chatml(&[SYSTEM, TURN_1[0], TURN_1[1], TURN_2[0], TURN_2[1], NEW]));
    let without_first = hf_ids(&hf, &chatml(&[SYSTEM, TURN_2[0], TURN_2[1], NEW]));
    let only_new = hf_ids(&hf, &chatml(&[SYSTEM, NEW]));
    let max_tokens = context.max_tokens as usize;

    // Exactly room for everything: nothing is dropped.
    let fits = engine_with_context(&driver, full.len() + max_tokens);
    assert_eq!(fed_ids(&fits, &context), full);
    // One token less: the oldest turn (its question and answer together) goes first.
    let short = engine_with_context(&driver, full.len() + max_tokens - 1);
    assert_eq!(fed_ids(&short, &context), without_first);
    let shorter = engine_with_context(&driver, without_first.len() + max_tokens - 1);
    assert_eq!(fed_ids(&shorter, &context), only_new);
    // Not even the system prompt and the new message fit: an error naming the prompt, and the
    // answer a worker commits is the ContextTooLong failure answer.
    let tiny = engine_with_context(&driver, only_new.len() + max_tokens - 1);
    let error = tiny.run(&context).unwrap_err().to_string();
    let needs = format!(
        "prompt 3 cannot run (failure 1: the prompt does not fit the model's context): it needs {} prompt tokens",
        only_new.len()
    );
    assert!(error.contains(&needs), "{error}");
    let answer = tiny.answer(&context).unwrap();
    assert_eq!(answer.bytes, aik_kernel::Failure::ContextTooLong.encode());
    assert!(answer.run.is_none());
}
