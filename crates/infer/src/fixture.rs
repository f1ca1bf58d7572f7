//! Tiny random Llama models as GGUF bytes, built in code so tests need no downloaded blobs.
//!
//! The model has SmolLM2's shape in miniature (GQA, tied or separate LM head, Q4_1/Q4_0/Q8_0
//! matrices, F32 norms) and a real byte-level BPE vocabulary: three ChatML control tokens,
//! the 256 GPT-2 byte symbols, then tokens made by a list of merges; plus a ChatML chat template.
//! Weights come from a fixed-seed generator, so the same spec always gives the same bytes.

use crate::gguf::{GgmlType, GgufWriter, MetadataArray, MetadataValue};
use crate::quant::{quantize_q4_0, quantize_q4_1, quantize_q8_0};
use crate::{Error, Result};

/// The shape and content of a tiny test model.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyLlamaSpec {
    /// Transformer blocks.
    pub layers: usize,
    /// Residual width (a multiple of 32).
    pub dim: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Feed-forward width (a multiple of 32).
    pub ffn_dim: usize,
    /// Context length.
    pub context_length: usize,
    /// Type of every matrix except the token embedding.
    pub matrix_type: GgmlType,
    /// Type of the token embedding.
    pub embedding_type: GgmlType,
    /// Whether the LM head is tied to the token embedding (no `output.weight`).
    pub tied: bool,
    /// Seed of the weight generator.
    pub seed: u64,
    /// How RoPE frequencies are scaled.
    pub rope_scaling: RopeScaling,
    /// The architecture (`qwen2` adds q/k/v biases; its RoPE pairs are NEOX's).
    pub arch: crate::Arch,
}

/// RoPE scaling of a tiny model, written as the GGUF files of real models carry it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// None.
    None,
    /// `llama.rope.scaling.type = linear` with this factor.
    Linear(f32),
    /// Llama 3.1's scaling (`rope_scaling.rope_type = llama3` in the HF config), written as
    /// llama.cpp's converter writes it: the `rope_freqs.weight` tensor of per-pair divisors.
    Llama3 {
        /// `factor`.
        factor: f32,
        /// `low_freq_factor`.
        low_freq_factor: f32,
        /// `high_freq_factor`.
        high_freq_factor: f32,
        /// `original_max_position_embeddings`.
        original_context: f32,
    },
}

impl RopeScaling {
    /// Llama 3.1's divisors for the pairs of `rope_dims` dimensions at `base`, computed as
    /// llama.cpp's `convert_hf_to_gguf.py` does (in f64, stored as f32).
    pub fn llama3_factors(&self, rope_dims: usize, base: f32) -> Option<Vec<f32>> {
        let Self::Llama3 { factor, low_freq_factor, high_freq_factor, original_context } = *self
        else {
            return None;
        };
        let (factor, low, high, original) = (
            f64::from(factor),
            f64::from(low_freq_factor),
            f64::from(high_freq_factor),
            f64::from(original_context),
        );
        let (low_wavelen, high_wavelen) = (original / low, original / high);
        let factors = (0..rope_dims / 2)
            .map(|i| {
                let freq = 1.0 / f64::from(base).powf(2.0 * i as f64 / rope_dims as f64);
                let wavelen = 2.0 * std::f64::consts::PI / freq;
                if wavelen < high_wavelen {
                    1.0
                } else if wavelen > low_wavelen {
                    factor as f32
                } else {
                    let smooth = (original / wavelen - low) / (high - low);
                    (1.0 / ((1.0 - smooth) / factor + smooth)) as f32
                }
            })
            .collect();
        Some(factors)
    }
}

impl Default for TinyLlamaSpec {
    /// 2 layers, width 64, 4 heads over 2 KV heads, FFN 128, Q4_1 matrices, Q8_0 tied
    /// embedding: SmolLM2's recipe at 1/10,000 of the size.
    fn default() -> Self {
        Self {
            layers: 2,
            dim: 64,
            heads: 4,
            kv_heads: 2,
            ffn_dim: 128,
            context_length: 256,
            matrix_type: GgmlType::Q4_1,
            embedding_type: GgmlType::Q8_0,
            tied: true,
            seed: 42,
            rope_scaling: RopeScaling::None,
            arch: crate::Arch::Llama,
        }
    }
}

/// The tiny models checked against llama.cpp (`examples/tiny_models.rs` writes them,
/// `scripts/reference/llamacpp_tiny.py` runs them, `tests/it/quant_types.rs` compares): one per
/// weight type (every matrix and the tied embedding of that type), and Llama 3- and linear-
/// RoPE-scaled models, by name.
pub fn reference_models() -> Vec<(String, TinyLlamaSpec)> {
    let mut models: Vec<(String, TinyLlamaSpec)> = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
    ]
    .into_iter()
    .map(|ty| {
        let spec =
            TinyLlamaSpec { matrix_type: ty, embedding_type: ty, ..TinyLlamaSpec::default() };
        (ty.name().to_string(), spec)
    })
    .collect();
    // Llama 3.1's recipe in small: frequencies with wavelengths under 8 positions kept, over 32
    // divided by 8, smoothly in between (so that the factors matter within the short prompt);
    // an untied LM head.
    let llama3 = RopeScaling::Llama3 {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_context: 32.0,
    };
    let f32s = TinyLlamaSpec {
        matrix_type: GgmlType::F32,
        embedding_type: GgmlType::F32,
        ..TinyLlamaSpec::default()
    };
    models.push((
        "rope-llama3".into(),
        TinyLlamaSpec { rope_scaling: llama3, tied: false, seed: 7, ..f32s },
    ));
    models.push((
        "rope-linear".into(),
        TinyLlamaSpec { rope_scaling: RopeScaling::Linear(4.0), seed: 8, ..f32s },
    ));
    // The k-quants need rows of whole 256-element super-blocks: width 256, FFN 512. Q4_K
    // matrices with a Q6_K embedding (the Q4_K_M recipe), Q6_K throughout, and Q2_K, Q3_K and
    // Q5_K matrices with embeddings of their own type.
    for (name, matrix_type, embedding_type) in [
        ("Q4_K", GgmlType::Q4_K, GgmlType::Q6_K),
        ("Q6_K", GgmlType::Q6_K, GgmlType::Q6_K),
        ("Q2_K", GgmlType::Q2_K, GgmlType::Q2_K),
        ("Q3_K", GgmlType::Q3_K, GgmlType::Q3_K),
        ("Q5_K", GgmlType::Q5_K, GgmlType::Q5_K),
    ] {
        let spec = TinyLlamaSpec {
            dim: 256,
            ffn_dim: 512,
            matrix_type,
            embedding_type,
            seed: 10,
            ..TinyLlamaSpec::default()
        };
        models.push((name.into(), spec));
    }
    // Gemma 3's block: wide heads, q/k norms, post-norms, GELU, windowed layers with their own
    // RoPE base; Q8_0 matrices (as most of the 270M file's are Q5_0/Q8_0).
    models.push((
        "gemma3".into(),
        TinyLlamaSpec {
            arch: crate::Arch::Gemma3,
            matrix_type: GgmlType::Q8_0,
            embedding_type: GgmlType::Q8_0,
            seed: 11,
            ..TinyLlamaSpec::default()
        },
    ));
    // Qwen 2's block: q/k/v biases, NEOX RoPE, Q8_0 matrices (as Qwen2.5 files often are).
    models.push((
        "qwen2".into(),
        TinyLlamaSpec {
            arch: crate::Arch::Qwen2,
            matrix_type: GgmlType::Q8_0,
            embedding_type: GgmlType::Q8_0,
            seed: 9,
            ..TinyLlamaSpec::default()
        },
    ));
    models
}

/// SmolLM2's ChatML template, without its default system prompt.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Control tokens at ids 0, 1, 2 (as in SmolLM2).
pub const TINY_SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// GPT-2's byte → printable character map (`bytes_to_unicode`).
pub fn byte_symbol(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable(b) {
        return char::from(b);
    }
    let rank = (0..b).filter(|&c| !printable(c)).count() as u32;
    char::from_u32(256 + rank).expect("256..324 are valid chars")
}

/// Merges of the tiny vocabulary, in rank order; each yields the concatenation of its halves.
fn tiny_merges() -> Vec<(String, String)> {
    let sp = byte_symbol(b' ').to_string();
    let mut merges: Vec<(String, String)> = Vec::new();
    for pair in [
        "th", "he", "in", "er", "an", "re", "on", "at", "en", "nd", "ti", "es", "or", "te", "of",
        "ed", "is", "it", "al", "ar", "st", "to", "nt", "ng", "se", "ha", "as", "ou", "io", "le",
        "ve", "co", "me", "de", "hi", "ri", "ro", "ic", "ne", "ea", "ra", "ce",
    ] {
        let (a, b) = pair.split_at(1);
        merges.push((a.into(), b.into()));
    }
    for c in ["t", "a", "s", "w", "o", "c", "b", "f", "m", "h", "i", "p", "d"] {
        merges.push((sp.clone(), c.into()));
    }
    merges.push((format!("{sp}t"), "he".into()));
    merges.push((format!("{sp}a"), "nd".into()));
    merges.push((format!("{sp}i"), "s".into()));
    merges.push(("t".into(), "he".into()));
    merges
}

/// The tiny vocabulary: control tokens, byte symbols, merge results; and the merges as GGUF
/// writes them (`"a b"`). Its size is a multiple of 8.
pub fn tiny_vocab() -> (Vec<String>, Vec<i32>, Vec<String>) {
    let mut tokens: Vec<String> = TINY_SPECIAL_TOKENS.iter().map(|s| s.to_string()).collect();
    let mut types = vec![3; TINY_SPECIAL_TOKENS.len()];
    for b in 0..=255u8 {
        tokens.push(byte_symbol(b).to_string());
        types.push(1);
    }
    let mut merges = Vec::new();
    for (a, b) in tiny_merges() {
        let joined = format!("{a}{b}");
        if !tokens.contains(&joined) {
            tokens.push(joined);
            types.push(1);
        }
        merges.push(format!("{a} {b}"));
    }
    // Pad with unused tokens so the LM head's rows form whole 8-row groups.
    let mut pad = 0;
    while !tokens.len().is_multiple_of(8) {
        tokens.push(format!("<unused{pad}>"));
        types.push(3);
        pad += 1;
    }
    (tokens, types, merges)
}

/// A splitmix64 stream of floats uniform in [−1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

fn quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    match ty {
        GgmlType::Q4_0 => quantize_q4_0(x),
        GgmlType::Q4_1 => quantize_q4_1(x),
        GgmlType::Q5_0 => crate::quant::quantize_q5_0(x),
        GgmlType::Q5_1 => crate::quant::quantize_q5_1(x),
        GgmlType::Q8_0 => quantize_q8_0(x),
        GgmlType::Q2_K => crate::quant::quantize_q2_k(x),
        GgmlType::Q3_K => crate::quant::quantize_q3_k(x),
        GgmlType::Q4_K => crate::quant::quantize_q4_k(x),
        GgmlType::Q5_K => crate::quant::quantize_q5_k(x),
        GgmlType::Q6_K => crate::quant::quantize_q6_k(x),
        GgmlType::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GgmlType::F16 => {
            x.iter().flat_map(|v| crate::quant::f32_to_f16(*v).to_le_bytes()).collect()
        }
        GgmlType::BF16 => {
            x.iter().flat_map(|v| crate::quant::f32_to_bf16(*v).to_le_bytes()).collect()
        }
    }
}

/// Builds the GGUF bytes of a tiny random Llama model.
pub fn tiny_llama_gguf(spec: &TinyLlamaSpec) -> Result<Vec<u8>> {
    if !spec.dim.is_multiple_of(spec.heads) || !spec.heads.is_multiple_of(spec.kv_heads) {
        return Err(Error::InvalidModel(format!("tiny model spec does not divide: {spec:?}")));
    }
    let (tokens, types, merges) = tiny_vocab();
    let vocab = tokens.len();
    let gemma = spec.arch == crate::Arch::Gemma3;
    // Gemma 3's heads are wider than dim / heads (270M: 4 heads of 256 over a width of 640).
    let head_dim = if gemma { 2 * spec.dim / spec.heads } else { spec.dim / spec.heads };
    let (q_dim, kv_dim) = (spec.heads * head_dim, spec.kv_heads * head_dim);
    let mut w = GgufWriter::new();
    let s = |v: &str| MetadataValue::String(v.into());
    let u = |v: usize| MetadataValue::U32(v as u32);
    let arch = spec.arch.name();
    let key = |k: &str| format!("{arch}.{k}");
    w.metadata("general.architecture", s(arch));
    w.metadata("general.name", s(&format!("aik tiny {arch}")));
    w.metadata(key("block_count"), u(spec.layers));
    w.metadata(key("context_length"), u(spec.context_length));
    w.metadata(key("embedding_length"), u(spec.dim));
    w.metadata(key("feed_forward_length"), u(spec.ffn_dim));
    w.metadata(key("attention.head_count"), u(spec.heads));
    w.metadata(key("attention.head_count_kv"), u(spec.kv_heads));
    let base = if gemma { 1_000_000.0 } else { 10_000.0 };
    w.metadata(key("rope.freq_base"), MetadataValue::F32(base));
    w.metadata(key("rope.dimension_count"), u(head_dim));
    if gemma {
        // Windows of 4 positions on every other layer (270M: 512 on five layers of six), so
        // that the window and both RoPE bases matter within a short prompt.
        w.metadata(key("attention.key_length"), u(head_dim));
        w.metadata(key("attention.value_length"), u(head_dim));
        w.metadata(key("attention.sliding_window"), u(4));
        w.metadata(key("attention.sliding_window_pattern"), u(2));
        // A base far from the global one, so that a layer rotating with the wrong one shows.
        w.metadata(key("rope.freq_base_swa"), MetadataValue::F32(100.0));
    }
    if let RopeScaling::Linear(factor) = spec.rope_scaling {
        w.metadata(key("rope.scaling.type"), s("linear"));
        w.metadata(key("rope.scaling.factor"), MetadataValue::F32(factor));
    }
    w.metadata(key("attention.layer_norm_rms_epsilon"), MetadataValue::F32(1e-5));
    w.metadata(key("vocab_size"), u(vocab));
    w.metadata("tokenizer.ggml.model", s("gpt2"));
    let pre = if spec.arch == crate::Arch::Qwen2 { "qwen2" } else { "smollm" };
    w.metadata("tokenizer.ggml.pre", s(pre));
    w.metadata("tokenizer.ggml.tokens", MetadataValue::Array(MetadataArray::strings(tokens)));
    w.metadata("tokenizer.ggml.token_type", MetadataValue::Array(MetadataArray::i32s(types)));
    w.metadata("tokenizer.ggml.merges", MetadataValue::Array(MetadataArray::strings(merges)));
    w.metadata("tokenizer.ggml.bos_token_id", u(1));
    w.metadata("tokenizer.ggml.eos_token_id", u(2));
    w.metadata("tokenizer.ggml.unknown_token_id", u(0));
    w.metadata("tokenizer.ggml.padding_token_id", u(2));
    w.metadata("tokenizer.ggml.add_bos_token", MetadataValue::Bool(false));
    w.metadata("tokenizer.chat_template", s(CHATML_TEMPLATE));

    let mut rng = Rng(spec.seed);
    let mut matrix = |w: &mut GgufWriter, name: &str, ty: GgmlType, cols: usize, rows: usize| {
        let scale = 2.0 / (cols as f32).sqrt();
        let data = quantize(ty, &rng.vec(cols * rows, scale));
        w.tensor(name, &[cols as u64, rows as u64], ty, data).map(|_| ())
    };
    matrix(&mut w, "token_embd.weight", spec.embedding_type, spec.dim, vocab)?;
    let mut norm_rng = Rng(spec.seed ^ 0x5eed);
    let mut norm_of = |w: &mut GgufWriter, name: &str, len: usize| {
        let data: Vec<f32> = norm_rng.vec(len, 0.2).iter().map(|v| 1.0 + v).collect();
        w.tensor(name, &[len as u64], GgmlType::F32, quantize(GgmlType::F32, &data)).map(|_| ())
    };
    let mut bias_rng = Rng(spec.seed ^ 0xb1a5);
    for l in 0..spec.layers {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        let ty = spec.matrix_type;
        norm_of(&mut w, &n("attn_norm"), spec.dim)?;
        matrix(&mut w, &n("attn_q"), ty, spec.dim, q_dim)?;
        matrix(&mut w, &n("attn_k"), ty, spec.dim, kv_dim)?;
        matrix(&mut w, &n("attn_v"), ty, spec.dim, kv_dim)?;
        if spec.arch == crate::Arch::Qwen2 {
            for (part, len) in [("attn_q", spec.dim), ("attn_k", kv_dim), ("attn_v", kv_dim)] {
                let bias = bias_rng.vec(len, 0.5);
                let name = format!("blk.{l}.{part}.bias");
                w.tensor(&name, &[len as u64], GgmlType::F32, quantize(GgmlType::F32, &bias))?;
            }
        }
        matrix(&mut w, &n("attn_output"), ty, q_dim, spec.dim)?;
        norm_of(&mut w, &n("ffn_norm"), spec.dim)?;
        matrix(&mut w, &n("ffn_gate"), ty, spec.dim, spec.ffn_dim)?;
        matrix(&mut w, &n("ffn_up"), ty, spec.dim, spec.ffn_dim)?;
        matrix(&mut w, &n("ffn_down"), ty, spec.ffn_dim, spec.dim)?;
        if gemma {
            norm_of(&mut w, &n("attn_q_norm"), head_dim)?;
            norm_of(&mut w, &n("attn_k_norm"), head_dim)?;
            norm_of(&mut w, &n("post_attention_norm"), spec.dim)?;
            norm_of(&mut w, &n("post_ffw_norm"), spec.dim)?;
        }
    }
    norm_of(&mut w, "output_norm.weight", spec.dim)?;
    if let Some(factors) = spec.rope_scaling.llama3_factors(head_dim, 10_000.0) {
        let len = factors.len() as u64;
        w.tensor("rope_freqs.weight", &[len], GgmlType::F32, quantize(GgmlType::F32, &factors))?;
    }
    if !spec.tied {
        matrix(&mut w, "output.weight", spec.matrix_type, spec.dim, vocab)?;
    }
    w.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_symbols_are_gpt2s() {
        assert_eq!(byte_symbol(b'A'), 'A');
        assert_eq!(byte_symbol(b' '), 'Ġ');
        assert_eq!(byte_symbol(b'\n'), 'Ċ');
        assert_eq!(byte_symbol(0), 'Ā');
        let all: std::collections::BTreeSet<char> = (0..=255).map(byte_symbol).collect();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn tiny_vocab_is_whole_groups_and_merges_are_valid() {
        let (tokens, types, merges) = tiny_vocab();
        assert_eq!(tokens.len() % 8, 0);
        assert_eq!(tokens.len(), types.len());
        for m in &merges {
            let (a, b) = m.split_once(' ').unwrap();
            assert!(tokens.iter().any(|t| t == a) && tokens.iter().any(|t| t == b), "{m}");
            assert!(tokens.contains(&format!("{a}{b}")), "{m}");
        }
    }
}

/// A driver that runs another and then changes every answer (appending `" (tampered)"`): a
/// dishonest worker in tests and in `aik demo challenge`, with the version of the driver it
/// wraps so that it registers and is drawn like any other.
#[derive(Debug)]
pub struct Tampering<D: ?Sized>(pub std::sync::Arc<D>);

impl<D: crate::ModelDriver + ?Sized> crate::ModelDriver for Tampering<D> {
    fn version(&self) -> &'static str {
        self.0.version()
    }

    fn prompt_token_count(&self, messages: &[crate::Message]) -> Result<usize> {
        self.0.prompt_token_count(messages)
    }

    fn context_length(&self) -> usize {
        self.0.context_length()
    }

    fn run(&self, request: &crate::Request) -> Result<crate::Output> {
        let mut output = self.0.run(request)?;
        output.bytes.extend_from_slice(b" (tampered)");
        output.text.push_str(" (tampered)");
        Ok(output)
    }
}
