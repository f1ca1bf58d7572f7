//! Model quality you can measure: perplexity on a text, computed exactly as llama.cpp's
//! `llama-perplexity` computes it, so the two engines' figures compare directly.
//!
//! The rule (llama.cpp's `perplexity()` with its defaults):
//!
//! 1. Tokenize the whole text as plain text (no special tokens parsed), with a BOS first when
//!    the model's metadata asks for one (`tokenizer.ggml.add_bos_token`).
//! 2. Cut `floor(tokens / ctx)` chunks of `ctx` tokens (at least two are needed); in each, the
//!    first token becomes BOS when the model adds one.
//! 3. Run each chunk from an empty context in one batch, with logits at every position.
//! 4. Score the second half: for `i` in `ctx/2 .. ctx − 1`, the logits at position `i` predict
//!    token `i + 1`: `nll += −(l[tok] − max(l) − ln Σ_j exp(l[j] − max(l)))`, the exponentials
//!    in f32 summed in f64, `nll` in f64.
//! 5. `ppl = exp(nll / scored)`, `scored = chunks · (ctx − 1 − ctx/2)`.
//!
//! Our logits are bit-identical across backends, thread counts and machines, the reduction runs
//! in a fixed order and the exponentials and logarithm are the engine's own
//! ([`crate::math`], not the platform's libm), so the figure is bit-identical too.

use crate::{
    Error, LlamaGgufDriver, Logits, Result, Session,
    math::{exp_f32, exp_f64, ln_f64},
};

/// The result of [`perplexity`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Perplexity {
    /// `exp(nll / scored)`.
    pub ppl: f64,
    /// Chunks of `ctx` tokens evaluated.
    pub chunks: usize,
    /// Tokens of the whole text (BOS included when the model adds one).
    pub tokens: usize,
    /// Positions scored (the second half of each chunk, less its last token).
    pub scored: usize,
    /// Summed negative log-likelihood of the scored tokens, in nats.
    pub nll: f64,
}

/// Perplexity of `driver`'s model on `text` with chunks of `ctx` tokens (see the module docs),
/// over at most `max_chunks` chunks when given. `progress` is called after each chunk with the
/// number done and the total.
pub fn perplexity(
    driver: &LlamaGgufDriver,
    text: &str,
    ctx: usize,
    max_chunks: Option<usize>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Perplexity> {
    let tokenizer = driver.tokenizer();
    let limit = driver.model().config().context_length;
    if !(4..=limit).contains(&ctx) {
        return Err(Error::InvalidRequest(format!(
            "a perplexity context of {ctx} tokens: it must be 4..={limit} (the model's context length)"
        )));
    }
    let bos = if driver.adds_bos() {
        Some(tokenizer.bos_id().ok_or_else(|| {
            Error::InvalidModel("the model asks for a BOS token but names none".into())
        })?)
    } else {
        None
    };
    let mut tokens: Vec<u32> = bos.into_iter().collect();
    tokens.extend(tokenizer.encode(text));
    let available = tokens.len() / ctx;
    if available < 2 {
        return Err(Error::InvalidRequest(format!(
            "the text has {} tokens: perplexity with a context of {ctx} needs at least {} (two chunks)",
            tokens.len(),
            2 * ctx
        )));
    }
    let chunks = max_chunks.map_or(available, |max| available.min(max.max(1)));
    let vocab = driver.model().config().vocab;
    let first = ctx / 2;
    let mut session = Session::new(driver.model(), driver.options(), ctx);
    let mut nll = 0f64;
    let mut scored = 0usize;
    for chunk in 0..chunks {
        let mut batch = tokens[chunk * ctx..(chunk + 1) * ctx].to_vec();
        if let Some(bos) = bos {
            batch[0] = bos;
        }
        session.reset();
        let logits = session.forward(&batch, Logits::All)?;
        for i in first..ctx - 1 {
            let row = &logits[i * vocab..(i + 1) * vocab];
            nll -= log_softmax(row, batch[i + 1] as usize);
            scored += 1;
        }
        progress(chunk + 1, chunks);
    }
    let mean = nll / scored as f64;
    // e^700 is already beyond any meaningful perplexity (and the canonical exp's range).
    let ppl = if mean < 700.0 { exp_f64(mean) } else { f64::INFINITY };
    Ok(Perplexity { ppl, chunks, tokens: tokens.len(), scored, nll })
}

/// `ln softmax(logits)[token]` as llama.cpp computes it: the maximum in f32, each exponential in
/// f32, their sum in f64 (in index order).
fn log_softmax(logits: &[f32], token: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(exp_f32(l - max))).sum();
    f64::from(logits[token] - max) - ln_f64(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_of_equal_logits_is_minus_ln_n() {
        let logits = [3.5f32; 8];
        assert!((log_softmax(&logits, 5) + 8f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn log_softmax_prefers_the_largest_logit_and_is_shift_invariant() {
        let logits = [0.0f32, 2.0, -1.0, 1.0];
        let shifted: Vec<f32> = logits.iter().map(|l| l + 100.0).collect();
        assert!(log_softmax(&logits, 1) > log_softmax(&logits, 3));
        assert!((log_softmax(&logits, 1) - log_softmax(&shifted, 1)).abs() < 1e-6);
        let total: f64 = (0..4).map(|t| log_softmax(&logits, t).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
    }
}
