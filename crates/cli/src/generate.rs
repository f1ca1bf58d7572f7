//! `aik generate`: run the local model on one prompt, no chain involved.

use aik_infer::{
    Backend, ExecOptions, LlamaGgufDriver, Message, ModelDriver, OutputFormat, Request, Sampling,
};
use clap::Args;
use eyre::{WrapErr, bail, eyre};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Arguments of `aik generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Model file (GGUF); defaults to the cached SmolLM2 (`aik model pull`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Threads to run on (results are identical for any count).
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Answer shape: text, bool, choice(a|b|c), uint(min,max), int(min,max).
    #[arg(long, default_value = "text")]
    format: String,
    /// Sample with this seed instead of greedy decoding.
    #[arg(long)]
    seed: Option<u64>,
    /// Sampling temperature (with --seed).
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Keep only the k most likely tokens, 0 for all (with --seed).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Nucleus sampling threshold (with --seed).
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// A system message before the prompt.
    #[arg(long)]
    system: Option<String>,
    /// Use the scalar reference kernels (same results, slower).
    #[arg(long)]
    scalar: bool,
    /// Print one JSON object instead of the text.
    #[arg(long)]
    json: bool,
    /// Send the prompt as plain text to complete, without the chat template (BOS first when the
    /// model's metadata asks for it): for base models such as Gemma 3 270M.
    #[arg(long, conflicts_with = "system")]
    raw: bool,
    /// The user message (with --raw: the text to complete).
    prompt: String,
}

pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
}

/// The model path to use: the flag, else the cached default model.
pub(crate) fn model_path(flag: Option<PathBuf>) -> eyre::Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p);
    }
    let p = aik_infer::default_model_path()
        .ok_or_else(|| eyre!("cannot locate the model cache: set AIK_HOME or HOME"))?;
    if p.is_file() {
        return Ok(p);
    }
    // `aik up` and workers keep the default model in the content store: use that copy.
    match crate::model::stored_default_model() {
        Some(stored) => crate::model::cache_default_model(&stored),
        None => Err(eyre!("no model at {}; run `aik model pull` or pass --model", p.display())),
    }
}

pub(crate) fn run(args: GenerateArgs) -> eyre::Result<()> {
    let path = model_path(args.model)?;
    let backend = if args.scalar { Backend::Scalar } else { Backend::detect() };
    let options = ExecOptions { threads: args.threads.max(1), backend };
    let driver = LlamaGgufDriver::load(&path, options)
        .wrap_err_with(|| format!("loading {}", path.display()))?;
    let sampling = match args.seed {
        None => Sampling::Greedy,
        Some(seed) => Sampling::seeded(seed, args.temperature, args.top_k, args.top_p),
    };
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(Message::system(system));
    }
    let format = args.format.parse::<OutputFormat>()?;
    let out = if args.raw {
        let prompt = driver.raw_prompt_tokens(&args.prompt);
        driver.generate(&prompt, &format, &sampling, args.max_tokens)?
    } else {
        if !driver.has_chat_template() {
            bail!(
                "{} has no chat template (tokenizer.chat_template): it is a base model; use --raw to complete plain text",
                path.display()
            );
        }
        messages.push(Message::user(args.prompt));
        let request =
            Request { messages, format: format.clone(), sampling, max_tokens: args.max_tokens };
        driver.run(&request)?
    };
    let rate = |n: usize, d: std::time::Duration| n as f64 / d.as_secs_f64().max(1e-9);
    // The prompt's last position yields the first token; the rest are decode steps.
    let prefill_tok_s = rate(out.prompt_tokens.len(), out.prefill_time);
    let decode_tok_s = rate(out.tokens.len().saturating_sub(1), out.decode_time);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if args.json {
        let json = serde_json::json!({
            "text": out.text,
            "tokens": out.tokens,
            "output_sha256": hex(&Sha256::digest(&out.bytes)),
            "logits_sha256": hex(&out.logits_sha256),
            "prefill_tok_s": prefill_tok_s,
            "decode_tok_s": decode_tok_s,
        });
        println!("{json}");
    } else {
        println!("{}", out.text);
        if format.is_constrained() {
            println!("encoded: 0x{}", hex(&out.bytes));
        }
        eprintln!(
            "{} prompt tokens at {prefill_tok_s:.1} tok/s, {} generated at {decode_tok_s:.1} tok/s ({}, {} threads); logits sha256 {}",
            out.prompt_tokens.len(),
            out.tokens.len(),
            driver.options().backend.name(),
            driver.options().threads,
            hex(&out.logits_sha256)
        );
    }
    Ok(())
}
