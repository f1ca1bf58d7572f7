//! `aik bench infer`: prefill and decode speed of the local model, SIMD and scalar.

use crate::generate::{default_threads, model_path};
use aik_infer::{Backend, ExecOptions, Gguf, LlamaModel, Logits, Session, Tokenizer};
use clap::{Args, Subcommand};
use eyre::WrapErr;
use std::path::PathBuf;
use std::time::Instant;

/// `aik bench …`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Inference speed: prefill and decode tokens/s for the SIMD and the scalar kernels.
    Infer(InferArgs),
    /// Dev chain JSON-RPC speed: signed transactions per second and `eth_call` latency.
    Devnet(crate::devnet::DevnetBenchArgs),
    /// Gas of the kernel contracts: submit, commit, reveal, finalize, committee selection.
    Gas(crate::gas::GasArgs),
    /// A prompt's life on an in-process network of 3 workers, phase by phase: prompts per
    /// minute with the real model and with a tiny generated one (protocol overhead alone).
    E2e(crate::bench_e2e::E2eArgs),
}

#[derive(Debug, Args)]
struct InferArgs {
    /// Model file (GGUF); defaults to the cached SmolLM2.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Threads.
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Tokens to decode with the SIMD kernels (the scalar run decodes a quarter as many).
    #[arg(long, default_value_t = 64)]
    decode_tokens: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// A fixed prompt of a little over 100 tokens.
const PROMPT: &str = "The history of computing is a story of machines that extend what a person can \
calculate. Mechanical calculators of the seventeenth century added and multiplied with gears; \
punched cards drove looms and later tabulated a census; vacuum tubes gave way to transistors and \
then to integrated circuits holding billions of them. Each step made computation cheaper, and \
each drop in cost found new uses nobody had planned for. Write a short summary of this history.";

pub(crate) fn run(args: BenchArgs) -> eyre::Result<()> {
    match args.command {
        BenchCommand::Infer(a) => infer(a),
        BenchCommand::Devnet(a) => crate::devnet::bench(a),
        BenchCommand::Gas(a) => crate::gas::run(a),
        BenchCommand::E2e(a) => crate::bench_e2e::run(a),
    }
}

/// Measures `(prefill tok/s, decode tok/s)` for one configuration.
fn measure(
    model: &LlamaModel,
    prompt: &[u32],
    options: ExecOptions,
    decode: usize,
) -> eyre::Result<(f64, f64)> {
    let mut session = Session::new(model, options, prompt.len() + decode + 1);
    let started = Instant::now();
    let mut logits = session.forward(prompt, Logits::Last)?;
    let prefill = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..decode {
        // Greedy, never stopping early, so every run decodes the same number of tokens.
        let next =
            (0..logits.len()).fold(0, |best, i| if logits[i] > logits[best] { i } else { best });
        logits = session.forward(&[next as u32], Logits::Last)?;
    }
    let decode_s = started.elapsed().as_secs_f64();
    Ok((prompt.len() as f64 / prefill, decode as f64 / decode_s.max(1e-9)))
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`), 0 where unavailable.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn infer(args: InferArgs) -> eyre::Result<()> {
    let path = model_path(args.model)?;
    let gguf = Gguf::open(&path).wrap_err_with(|| format!("opening {}", path.display()))?;
    let model = LlamaModel::from_gguf(&gguf)?;
    let tokenizer = Tokenizer::from_gguf(&gguf)?;
    drop(gguf);
    let prompt = tokenizer.encode(PROMPT);
    let threads = args.threads.max(1);
    let fast = Backend::detect();
    // Warm up caches and the thread pool once.
    measure(&model, &prompt[..8], ExecOptions { threads, backend: fast }, 2)?;
    let (prefill, decode) =
        measure(&model, &prompt, ExecOptions { threads, backend: fast }, args.decode_tokens)?;
    let (scalar_prefill, scalar_decode) = measure(
        &model,
        &prompt,
        ExecOptions { threads, backend: Backend::Scalar },
        (args.decode_tokens / 4).max(1),
    )?;
    let rss = peak_rss_mib();
    if args.json {
        let json = serde_json::json!({
            "threads": threads,
            "backend": fast.name(),
            "prompt_tokens": prompt.len(),
            "prefill_tok_s": prefill,
            "decode_tok_s": decode,
            "scalar_prefill_tok_s": scalar_prefill,
            "scalar_decode_tok_s": scalar_decode,
            "peak_rss_mib": rss,
        });
        println!("{json}");
    } else {
        println!("model        {}", path.display());
        println!("threads      {threads}");
        println!(
            "{:<12} prefill {prefill:8.1} tok/s ({} tokens)   decode {decode:7.1} tok/s",
            fast.name(),
            prompt.len()
        );
        println!(
            "{:<12} prefill {scalar_prefill:8.1} tok/s              decode {scalar_decode:7.1} tok/s",
            "scalar"
        );
        println!(
            "speedup      prefill {:.2}x   decode {:.2}x",
            prefill / scalar_prefill,
            decode / scalar_decode
        );
        println!("peak RSS     {rss:.0} MiB");
    }
    Ok(())
}
