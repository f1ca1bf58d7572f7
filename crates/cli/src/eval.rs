//! `aik eval`: measure a model's quality. `aik eval perplexity` computes perplexity on a text
//! file exactly as llama.cpp's `llama-perplexity` does (see `aik_infer::perplexity`), so the
//! two engines' figures compare directly.

use std::path::PathBuf;

use aik_infer::{Backend, ExecOptions, LlamaGgufDriver};
use clap::{Args, Subcommand};
use eyre::WrapErr;

use crate::generate::{default_threads, model_path};

/// `aik eval …`.
#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    #[command(subcommand)]
    command: EvalCommand,
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Perplexity on a text file, as llama.cpp's llama-perplexity computes it.
    Perplexity(PerplexityArgs),
}

#[derive(Debug, Args)]
struct PerplexityArgs {
    /// Model file (GGUF); defaults to the cached SmolLM2.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Tokens per chunk (llama.cpp's -c); the second half of each chunk is scored.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Evaluate at most this many chunks (llama.cpp's --chunks; default: all).
    #[arg(long)]
    chunks: Option<usize>,
    /// Threads to run on (the figure is the same for any count).
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Use the scalar reference kernels (same figure, slower).
    #[arg(long)]
    scalar: bool,
    /// Print one JSON object: {"ppl", "chunks", "tokens", "scored", "nll", "ctx"}.
    #[arg(long)]
    json: bool,
    /// The text to score.
    text: PathBuf,
}

pub(crate) fn run(args: EvalArgs) -> eyre::Result<()> {
    match args.command {
        EvalCommand::Perplexity(args) => perplexity(args),
    }
}

fn perplexity(args: PerplexityArgs) -> eyre::Result<()> {
    let text = std::fs::read_to_string(&args.text)
        .wrap_err_with(|| format!("cannot read the text file {}", args.text.display()))?;
    let path = model_path(args.model)?;
    let backend = if args.scalar { Backend::Scalar } else { Backend::detect() };
    let options = ExecOptions { threads: args.threads.max(1), backend };
    let driver = LlamaGgufDriver::load(&path, options)
        .wrap_err_with(|| format!("loading {}", path.display()))?;
    let started = std::time::Instant::now();
    let json = args.json;
    let mut progress = |done: usize, total: usize| {
        if !json {
            eprintln!("chunk {done}/{total}");
        }
    };
    let result = aik_infer::perplexity(&driver, &text, args.ctx, args.chunks, &mut progress)?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let json = serde_json::json!({
            "ppl": result.ppl,
            "chunks": result.chunks,
            "tokens": result.tokens,
            "scored": result.scored,
            "nll": result.nll,
            "ctx": args.ctx,
            "seconds": seconds,
        });
        println!("{json}");
    } else {
        println!(
            "perplexity {:.4} over {} chunks of {} tokens ({} tokens, {} scored) in {seconds:.1} s",
            result.ppl, result.chunks, args.ctx, result.tokens, result.scored
        );
    }
    Ok(())
}
