//! The Llama forward pass (`general.architecture = llama`; `qwen2`: the same block with
//! q/k/v biases and NEOX-style RoPE; `gemma3`: see [`Arch::Gemma3`]), canonical numerics.
//!
//! Per layer: `h = RMSNorm(x)·attn_norm`; `q, k, v = Wq h, Wk h, Wv h`; RoPE on adjacent pairs
//! of q and k (GGUF's row order, not HF's rotate-half); causal grouped-query attention over the
//! KV cache; `x += Wo·attn`; `h = RMSNorm(x)·ffn_norm`; `x += Wdown(silu(Wgate h) ⊙ Wup h)`.
//! Then `RMSNorm(x)·output_norm` and the LM head (`output.weight`, else the tied
//! `token_embd.weight`).
//!
//! Every float op below happens in a fixed order per output element, independent of how many
//! tokens are processed together, of the thread count and of the kernel backend; so prefill,
//! chunked prefill and token-by-token decoding give identical logits.

use crate::kernels::{
    Backend, QMatrix, exp_shifted, gated_quantize, matmul, matmul_many, quantize_rows,
};
use crate::math::{
    Activation, dot_striped, push_rope_row, rope_inv_freq as rope_inv_freq_of, sum_squares_striped,
    sum_striped,
};
use crate::pool::{SharedMut, ThreadPool};
use crate::quant::{Q8Act, QK, dequantize_row};
use crate::{Error, GgmlType, Gguf, Result};
use std::path::Path;

/// The architectures this forward pass runs (`general.architecture`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `llama`: Llama 2/3, Mistral, SmolLM2 (optional q/k/v biases).
    Llama,
    /// `qwen2`: Llama's block with q/k/v biases and NEOX-style RoPE.
    Qwen2,
    /// `gemma3`: embeddings scaled by √dim; q and k RMS-normed per head before NEOX RoPE;
    /// attention and FFN outputs RMS-normed again before each residual add; a GELU-gated FFN;
    /// heads wider than `dim / heads` (`attention.key_length`); sliding-window layers (every
    /// layer but each sixth, by default) attending the last `attention.sliding_window`
    /// positions with RoPE base `rope.freq_base_swa` (10000 when absent).
    Gemma3,
}

impl Arch {
    /// The GGUF name, which also prefixes the architecture's metadata keys.
    pub fn name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Gemma3 => "gemma3",
        }
    }

    /// Whether RoPE rotates the pairs `(i, i + rope_dims/2)` (GPT-NeoX's layout, what llama.cpp
    /// calls `LLAMA_ROPE_TYPE_NEOX`) rather than adjacent pairs.
    pub fn neox_rope(self) -> bool {
        matches!(self, Self::Qwen2 | Self::Gemma3)
    }
}

/// Hyperparameters of a model, read from GGUF metadata (keys prefixed by the architecture's
/// name, shown here for `llama`).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// The architecture.
    pub arch: Arch,
    /// Transformer blocks (`llama.block_count`).
    pub layers: usize,
    /// Residual width (`llama.embedding_length`).
    pub dim: usize,
    /// Query heads (`llama.attention.head_count`).
    pub heads: usize,
    /// Key/value heads (`llama.attention.head_count_kv`; GQA when fewer than `heads`).
    pub kv_heads: usize,
    /// Width of one head (`dim / heads`).
    pub head_dim: usize,
    /// Feed-forward width (`llama.feed_forward_length`).
    pub ffn_dim: usize,
    /// Vocabulary size (rows of the LM head).
    pub vocab: usize,
    /// Trained context length (`llama.context_length`).
    pub context_length: usize,
    /// RoPE base (`llama.rope.freq_base`, default 10000).
    pub rope_base: f32,
    /// Dimensions of each head that RoPE rotates (`llama.rope.dimension_count`, default
    /// `head_dim`).
    pub rope_dims: usize,
    /// RMSNorm epsilon (`llama.attention.layer_norm_rms_epsilon`).
    pub rms_eps: f32,
    /// Linear RoPE scaling: positions are multiplied by this (`1 / llama.rope.scaling.factor`
    /// when `llama.rope.scaling.type = linear`, else 1).
    pub rope_freq_scale: f32,
    /// Positions a sliding-window layer attends (`attention.sliding_window`; 0: none).
    pub window: usize,
    /// Per layer, whether it attends only the window (Gemma 3's pattern).
    pub windowed: Vec<bool>,
    /// RoPE base of the sliding-window layers (`rope.freq_base_swa`).
    pub rope_base_swa: f32,
}

impl LlamaConfig {
    /// Reads the hyperparameters from `gguf`, checking that they are consistent.
    pub fn from_gguf(gguf: &Gguf) -> Result<Self> {
        let arch = match gguf.get_str("general.architecture")? {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "gemma3" => Arch::Gemma3,
            other => {
                return Err(Error::InvalidModel(format!(
                    "general.architecture is '{other}'; gguf/1 runs 'llama', 'qwen2' and 'gemma3'"
                )));
            }
        };
        let key = |k: &str| format!("{}.{k}", arch.name());
        let get = |k: &str| -> Result<usize> {
            let k = key(k);
            let v = gguf.get_u64(&k)?;
            usize::try_from(v)
                .ok()
                .filter(|&v| v > 0 && v < (1 << 24))
                .ok_or_else(|| Error::InvalidModel(format!("{k} = {v} is out of range")))
        };
        let dim = get("embedding_length")?;
        let heads = get("attention.head_count")?;
        let kv_heads = match gguf.get_u64_opt(&key("attention.head_count_kv"))? {
            Some(_) => get("attention.head_count_kv")?,
            None => heads,
        };
        let embd = gguf
            .tensor("token_embd.weight")
            .ok_or_else(|| Error::InvalidModel("tensor 'token_embd.weight' is missing".into()))?;
        let vocab = usize::try_from(embd.rows()).unwrap_or(usize::MAX);
        if (arch != Arch::Gemma3 && dim % heads != 0) || heads % kv_heads != 0 {
            return Err(Error::InvalidModel(format!(
                "embedding_length {dim}, head_count {heads} and head_count_kv {kv_heads} do not divide"
            )));
        }
        // Gemma 3's heads are wider than dim / heads: their width is in the metadata.
        let head_dim = match gguf.get_u64_opt(&key("attention.key_length"))? {
            Some(_) => {
                let k = get("attention.key_length")?;
                let v = match gguf.get_u64_opt(&key("attention.value_length"))? {
                    Some(_) => get("attention.value_length")?,
                    None => k,
                };
                if v != k {
                    return Err(Error::InvalidModel(format!(
                        "{} {v} differs from {} {k}; heads of two widths are not implemented",
                        key("attention.value_length"),
                        key("attention.key_length")
                    )));
                }
                k
            }
            None => dim / heads,
        };
        let layers = get("block_count")?;
        let window = match gguf.get_u64_opt(&key("attention.sliding_window"))? {
            Some(_) if arch == Arch::Gemma3 => get("attention.sliding_window")?,
            Some(_) => {
                return Err(Error::InvalidModel(format!(
                    "{} is set; sliding-window attention is implemented for gemma3 only",
                    key("attention.sliding_window")
                )));
            }
            None => 0,
        };
        // Gemma 3: every layer but each sixth is windowed (llama.cpp's default pattern); a
        // file may give another period.
        let period = match gguf.metadata(&key("attention.sliding_window_pattern")) {
            None => 6,
            Some(v) => v.as_u64().and_then(|p| usize::try_from(p).ok()).ok_or_else(|| {
                Error::InvalidModel(format!(
                    "{} is {}; only a period (an integer) is implemented",
                    key("attention.sliding_window_pattern"),
                    v.type_description()
                ))
            })?,
        };
        let windowed =
            (0..layers).map(|l| window > 0 && (period == 0 || l % period < period - 1)).collect();
        if let Some(cap) = gguf.metadata(&key("final_logit_softcapping"))
            && cap.as_f32().is_none_or(|c| c != 0.0)
        {
            return Err(Error::InvalidModel(format!(
                "{} is set; logit soft-capping is not implemented",
                key("final_logit_softcapping")
            )));
        }
        let rope_dims = match gguf.get_u64_opt(&key("rope.dimension_count"))? {
            Some(_) => get("rope.dimension_count")?,
            None => head_dim,
        };
        if rope_dims > head_dim || rope_dims % 2 != 0 {
            return Err(Error::InvalidModel(format!(
                "{} {rope_dims} must be even and at most the head size {head_dim}",
                key("rope.dimension_count")
            )));
        }
        let f32_or = |k: &str, default: f32| -> Result<f32> {
            match gguf.metadata(&key(k)) {
                Some(_) => gguf.get_f32(&key(k)),
                None => Ok(default),
            }
        };
        let rope_base = f32_or("rope.freq_base", 10_000.0)?;
        let rope_base_swa = f32_or("rope.freq_base_swa", 10_000.0)?;
        let rms_eps = gguf.get_f32(&key("attention.layer_norm_rms_epsilon"))?;
        let base_ok = |b: f32| b.is_finite() && b > 1.0;
        if !(base_ok(rope_base) && base_ok(rope_base_swa) && rms_eps.is_finite() && rms_eps >= 0.0)
        {
            return Err(Error::InvalidModel(format!(
                "rope.freq_base {rope_base}, rope.freq_base_swa {rope_base_swa} or rms epsilon {rms_eps} is out of range"
            )));
        }
        let rope_freq_scale = match gguf.metadata(&key("rope.scaling.type")) {
            None => 1.0,
            Some(value) => match value.as_str() {
                Some("none") => 1.0,
                Some("linear") => {
                    let factor = gguf.get_f32(&key("rope.scaling.factor"))?;
                    if !(factor.is_finite() && factor >= 1.0) {
                        return Err(Error::InvalidModel(format!(
                            "{} {factor} must be at least 1",
                            key("rope.scaling.factor")
                        )));
                    }
                    1.0 / factor
                }
                other => {
                    return Err(Error::InvalidModel(format!(
                        "{} {:?} is not implemented (none and linear are; Llama 3's scaling comes as the rope_freqs.weight tensor)",
                        key("rope.scaling.type"),
                        other.unwrap_or("(not a string)")
                    )));
                }
            },
        };
        Ok(Self {
            arch,
            layers,
            dim,
            heads,
            kv_heads,
            head_dim,
            ffn_dim: get("feed_forward_length")?,
            vocab,
            context_length: get("context_length")?,
            rope_base,
            rope_dims,
            rms_eps,
            rope_freq_scale,
            window,
            windowed,
            rope_base_swa,
        })
    }

    /// Width of the key and value vectors of one position.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Width of the queries of all heads, `heads · head_dim` (`dim` except for Gemma 3).
    pub fn q_dim(&self) -> usize {
        self.heads * self.head_dim
    }
}

#[derive(Debug)]
struct Layer {
    attn_norm: Vec<f32>,
    wq: QMatrix,
    wk: QMatrix,
    wv: QMatrix,
    wo: QMatrix,
    ffn_norm: Vec<f32>,
    w_gate: QMatrix,
    w_up: QMatrix,
    w_down: QMatrix,
    /// Biases added to q, k and v (`attn_q.bias`, …): required by `qwen2`, optional otherwise.
    qkv_bias: Option<[Vec<f32>; 3]>,
    /// Gemma 3's extra norms.
    gemma: Option<GemmaNorms>,
}

/// Gemma 3's per-layer norms beyond Llama's.
#[derive(Debug)]
struct GemmaNorms {
    /// Per-head RMSNorm weights of q and k (`attn_q_norm`, `attn_k_norm`, `head_dim` each).
    q_norm: Vec<f32>,
    k_norm: Vec<f32>,
    /// RMSNorm of the attention output before its residual add (`post_attention_norm`).
    post_attn: Vec<f32>,
    /// RMSNorm of the FFN output before its residual add (`post_ffw_norm`).
    post_ffn: Vec<f32>,
}

/// A loaded Llama model: repacked weights and the RoPE table. Immutable; run it through a
/// [`Session`], which holds the KV cache, the threads and the backend choice.
#[derive(Debug)]
pub struct LlamaModel {
    config: LlamaConfig,
    token_embd: QMatrix,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    /// `None` when the LM head is tied to `token_embd`.
    output: Option<QMatrix>,
    /// RoPE frequencies; sessions build their cos/sin rows from these as positions are used,
    /// so a file claiming a huge context costs nothing until it is used.
    rope_inv_freq: Vec<f64>,
    /// The sliding-window layers' frequencies (Gemma 3; empty otherwise).
    rope_inv_freq_swa: Vec<f64>,
}

/// Llama 3's per-pair RoPE frequency divisors.
const ROPE_FREQS: &str = "rope_freqs.weight";
/// The tensors of one block, `blk.N.<name>.weight`.
const LAYER_TENSORS: [&str; 9] = [
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

/// The bias tensors of one block, `blk.N.<name>.bias`.
const QKV_BIAS: [&str; 3] = ["attn_q", "attn_k", "attn_v"];
/// Gemma 3's extra norms of one block, `blk.N.<name>.weight`.
const GEMMA_NORMS: [&str; 4] =
    ["attn_q_norm", "attn_k_norm", "post_attention_norm", "post_ffw_norm"];

/// Reads a 1-D F32/F16 tensor of `len` elements.
fn load_vector(gguf: &Gguf, name: &str, len: usize) -> Result<Vec<f32>> {
    let t = gguf
        .tensor(name)
        .ok_or_else(|| Error::InvalidModel(format!("tensor '{name}' is missing")))?;
    if t.dims != [len as u64] || !matches!(t.ggml_type, GgmlType::F32 | GgmlType::F16) {
        return Err(Error::InvalidModel(format!(
            "tensor '{name}' is {} {:?}; expected F32 or F16 [{len}]",
            t.ggml_type.name(),
            t.dims
        )));
    }
    let raw = gguf.tensor_data(t)?;
    let mut out = vec![0f32; len];
    dequantize_row(t.ggml_type, &raw, &mut out);
    Ok(out)
}

/// The q/k/v biases of block `l`: all three or none (`qwen2` needs them).
fn load_qkv_bias(gguf: &Gguf, c: &LlamaConfig, l: usize) -> Result<Option<[Vec<f32>; 3]>> {
    let names = QKV_BIAS.map(|part| format!("blk.{l}.{part}.bias"));
    let present = names.iter().filter(|n| gguf.tensor(n).is_some()).count();
    if present == 0 && c.arch != Arch::Qwen2 {
        return Ok(None);
    }
    if present < 3 {
        let missing = names.iter().find(|n| gguf.tensor(n).is_none()).expect("one is missing");
        return Err(Error::InvalidModel(format!(
            "tensor '{missing}' is missing ({} needs the q, k and v biases{})",
            c.arch.name(),
            if c.arch == Arch::Qwen2 { "" } else { " once one is present" }
        )));
    }
    Ok(Some([
        load_vector(gguf, &names[0], c.q_dim())?,
        load_vector(gguf, &names[1], c.kv_dim())?,
        load_vector(gguf, &names[2], c.kv_dim())?,
    ]))
}

/// Reads and repacks a matrix with `cols` inputs and `rows` outputs.
fn load_matrix(gguf: &Gguf, name: &str, cols: usize, rows: usize) -> Result<QMatrix> {
    let t = gguf
        .tensor(name)
        .ok_or_else(|| Error::InvalidModel(format!("tensor '{name}' is missing")))?;
    if t.dims != [cols as u64, rows as u64] {
        return Err(Error::InvalidModel(format!(
            "tensor '{name}' has dims {:?}; expected [{cols}, {rows}]",
            t.dims
        )));
    }
    let raw = gguf.tensor_data(t)?;
    QMatrix::from_gguf(name, t.ggml_type, rows, cols, &raw)
}

impl LlamaModel {
    /// Opens and loads a GGUF file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_gguf(&Gguf::open(path)?)
    }

    /// Loads the model from a parsed GGUF file, repacking every matrix.
    pub fn from_gguf(gguf: &Gguf) -> Result<Self> {
        let c = LlamaConfig::from_gguf(gguf)?;
        let (dim, kv, ffn, qd) = (c.dim, c.kv_dim(), c.ffn_dim, c.q_dim());
        let token_embd = load_matrix(gguf, "token_embd.weight", dim, c.vocab)?;
        let mut layers = Vec::with_capacity(c.layers);
        for l in 0..c.layers {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            layers.push(Layer {
                attn_norm: load_vector(gguf, &n("attn_norm"), dim)?,
                wq: load_matrix(gguf, &n("attn_q"), dim, qd)?,
                wk: load_matrix(gguf, &n("attn_k"), dim, kv)?,
                wv: load_matrix(gguf, &n("attn_v"), dim, kv)?,
                wo: load_matrix(gguf, &n("attn_output"), qd, dim)?,
                ffn_norm: load_vector(gguf, &n("ffn_norm"), dim)?,
                w_gate: load_matrix(gguf, &n("ffn_gate"), dim, ffn)?,
                w_up: load_matrix(gguf, &n("ffn_up"), dim, ffn)?,
                w_down: load_matrix(gguf, &n("ffn_down"), ffn, dim)?,
                qkv_bias: load_qkv_bias(gguf, &c, l)?,
                gemma: match c.arch {
                    Arch::Gemma3 => Some(GemmaNorms {
                        q_norm: load_vector(gguf, &n("attn_q_norm"), c.head_dim)?,
                        k_norm: load_vector(gguf, &n("attn_k_norm"), c.head_dim)?,
                        post_attn: load_vector(gguf, &n("post_attention_norm"), dim)?,
                        post_ffn: load_vector(gguf, &n("post_ffw_norm"), dim)?,
                    }),
                    _ => None,
                },
            });
        }
        let output_norm = load_vector(gguf, "output_norm.weight", dim)?;
        let output = match gguf.tensor("output.weight") {
            Some(_) => Some(load_matrix(gguf, "output.weight", dim, c.vocab)?),
            None => None,
        };
        let mut rope_inv_freq = rope_inv_freq_of(c.rope_dims, c.rope_base);
        // Llama 3's frequency scaling: one divisor per rotated pair (llama.cpp's rope_freqs),
        // applied with the linear scale in f64, exactly, before the table is built.
        let factors = match gguf.tensor(ROPE_FREQS) {
            Some(_) => load_vector(gguf, ROPE_FREQS, c.rope_dims / 2)?,
            None => vec![1.0; c.rope_dims / 2],
        };
        if let Some(bad) = factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
            return Err(Error::InvalidModel(format!(
                "tensor '{ROPE_FREQS}' holds {bad}; its factors must be positive"
            )));
        }
        for (freq, factor) in rope_inv_freq.iter_mut().zip(&factors) {
            *freq = *freq * f64::from(c.rope_freq_scale) / f64::from(*factor);
        }
        // A tensor this forward pass does not read would be a feature silently left out.
        let mut used: Vec<String> = ["token_embd.weight", "output_norm.weight", "output.weight"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        used.push(ROPE_FREQS.to_string());
        for l in 0..c.layers {
            for part in LAYER_TENSORS {
                used.push(format!("blk.{l}.{part}.weight"));
            }
            for part in QKV_BIAS {
                used.push(format!("blk.{l}.{part}.bias"));
            }
            if c.arch == Arch::Gemma3 {
                for part in GEMMA_NORMS {
                    used.push(format!("blk.{l}.{part}.weight"));
                }
            }
        }
        if let Some(extra) = gguf.tensors().iter().find(|t| !used.contains(&t.name)) {
            return Err(Error::InvalidModel(format!(
                "tensor '{}' is not part of the {} architecture as gguf/1 runs it (refused rather than ignored)",
                extra.name,
                c.arch.name()
            )));
        }
        let weight_bytes = token_embd.bytes()
            + output.as_ref().map_or(0, QMatrix::bytes)
            + layers
                .iter()
                .map(|l| {
                    [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]
                        .iter()
                        .map(|m| m.bytes())
                        .sum::<usize>()
                })
                .sum::<usize>();
        tracing::debug!(?c, weight_bytes, tied = output.is_none(), "loaded llama model");
        // Sliding-window layers rotate with their own base (no scaling: llama.cpp gives them
        // none either).
        let rope_inv_freq_swa = if c.windowed.iter().any(|&w| w) {
            rope_inv_freq_of(c.rope_dims, c.rope_base_swa)
        } else {
            Vec::new()
        };
        Ok(Self {
            config: c,
            token_embd,
            layers,
            output_norm,
            output,
            rope_inv_freq,
            rope_inv_freq_swa,
        })
    }

    /// The model's hyperparameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    fn lm_head(&self) -> &QMatrix {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }
}

/// How a [`Session`] executes: none of these change any result bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecOptions {
    /// Threads to split rows across (at least 1).
    pub threads: usize,
    /// Kernel implementation.
    pub backend: Backend,
}

impl Default for ExecOptions {
    /// All available cores (at most 8) and [`Backend::detect`].
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        Self { threads, backend: Backend::detect() }
    }
}

/// Which positions of a forward pass produce logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token's (what generation needs).
    Last,
    /// Every token's, in order.
    All,
}

/// One conversation's state on a model: KV cache, position, threads.
#[derive(Debug)]
pub struct Session<'m> {
    model: &'m LlamaModel,
    backend: Backend,
    pool: ThreadPool,
    max_positions: usize,
    /// Per layer, `positions × kv_dim` keys (after RoPE) and values.
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    position: usize,
    /// RoPE cos/sin rows `[p][i]` for every position reached so far: `[0]` of the model's
    /// frequencies, `[1]` of the sliding-window layers' (Gemma 3).
    rope_cos: [Vec<f32>; 2],
    rope_sin: [Vec<f32>; 2],
}

/// Scratch buffers of one forward pass over `tokens` tokens.
struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    hq: Vec<Q8Act>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    fq: Vec<Q8Act>,
    proj: Vec<f32>,
}

impl<'m> Session<'m> {
    /// A fresh session at position 0 that may grow to `max_positions` (capped by the model's
    /// context length).
    pub fn new(model: &'m LlamaModel, options: ExecOptions, max_positions: usize) -> Self {
        let c = &model.config;
        let backend =
            if options.backend.is_available() { options.backend } else { Backend::Scalar };
        Self {
            model,
            backend,
            pool: ThreadPool::new(options.threads),
            max_positions: max_positions.min(c.context_length),
            keys: (0..c.layers).map(|_| Vec::new()).collect(),
            values: (0..c.layers).map(|_| Vec::new()).collect(),
            position: 0,
            rope_cos: [Vec::new(), Vec::new()],
            rope_sin: [Vec::new(), Vec::new()],
        }
    }

    /// Tokens processed so far.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Forgets everything (the KV cache keeps its memory for reuse).
    pub fn reset(&mut self) {
        self.position = 0;
        for k in &mut self.keys {
            k.clear();
        }
        for v in &mut self.values {
            v.clear();
        }
    }

    /// Runs `tokens` through the model in one batch, appending them to the context, and
    /// returns logits (`vocab` floats per requested position). Non-finite logits are an error.
    pub fn forward(&mut self, tokens: &[u32], logits: Logits) -> Result<Vec<f32>> {
        let m = self.model;
        let c = &m.config;
        let n = tokens.len();
        if n == 0 {
            return Err(Error::InvalidRequest("forward pass over zero tokens".into()));
        }
        if self.position + n > self.max_positions {
            return Err(Error::ContextFull {
                needed: self.position + n,
                limit: self.max_positions,
            });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.vocab) {
            return Err(Error::InvalidRequest(format!(
                "token id {bad} is outside the vocabulary of {}",
                c.vocab
            )));
        }
        let half = c.rope_dims / 2;
        for (table, freqs) in [&m.rope_inv_freq, &m.rope_inv_freq_swa].into_iter().enumerate() {
            if freqs.is_empty() {
                continue;
            }
            let (cos, sin) = (&mut self.rope_cos[table], &mut self.rope_sin[table]);
            while cos.len() < (self.position + n) * half {
                push_rope_row(cos.len() / half, freqs, cos, sin);
            }
        }
        let (dim, kv, ffn, qd) = (c.dim, c.kv_dim(), c.ffn_dim, c.q_dim());
        let mut s = Scratch {
            x: vec![0f32; n * dim],
            h: vec![0f32; n * dim],
            hq: vec![Q8Act::ZERO; n * dim.max(qd) / QK],
            q: vec![0f32; n * qd],
            k: vec![0f32; n * kv],
            v: vec![0f32; n * kv],
            attn: vec![0f32; n * qd],
            gate: vec![0f32; n * ffn],
            up: vec![0f32; n * ffn],
            fq: vec![Q8Act::ZERO; n * ffn / QK],
            proj: vec![0f32; n * dim],
        };
        for (t, &tok) in tokens.iter().enumerate() {
            m.token_embd.dequantize_row(tok as usize, &mut s.x[t * dim..(t + 1) * dim]);
        }
        if c.arch == Arch::Gemma3 {
            // √dim rounded once to f32, as llama.cpp's `sqrtf(n_embd)`.
            let scale = (dim as f32).sqrt();
            for x in &mut s.x {
                *x *= scale;
            }
        }
        for l in 0..c.layers {
            self.layer(l, n, &mut s);
        }
        self.position += n;

        let first = match logits {
            Logits::Last => n - 1,
            Logits::All => 0,
        };
        let rows = n - first;
        let mut normed = vec![0f32; rows * dim];
        for t in first..n {
            rms_norm(
                &s.x[t * dim..(t + 1) * dim],
                &m.output_norm,
                c.rms_eps,
                &mut normed[(t - first) * dim..(t - first + 1) * dim],
            );
        }
        let mut nq = vec![Q8Act::ZERO; rows * dim / QK];
        quantize_rows(&normed, &mut nq, &self.pool);
        let head = m.lm_head();
        let mut out = vec![0f32; rows * head.rows()];
        matmul(head, &nq, rows, &mut out, self.backend, &self.pool);
        if let Some(i) = out.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                position: self.position - rows + i / head.rows(),
                index: i % head.rows(),
                value: out[i],
            });
        }
        Ok(out)
    }

    fn layer(&mut self, l: usize, n: usize, s: &mut Scratch) {
        let m = self.model;
        let c = &m.config;
        let layer = &m.layers[l];
        let (dim, kv, qd, hd) = (c.dim, c.kv_dim(), c.q_dim(), c.head_dim);

        for t in 0..n {
            rms_norm(
                &s.x[t * dim..(t + 1) * dim],
                &layer.attn_norm,
                c.rms_eps,
                &mut s.h[t * dim..(t + 1) * dim],
            );
        }
        quantize_rows(&s.h[..n * dim], &mut s.hq[..n * dim / QK], &self.pool);
        matmul_many(
            &mut [(&layer.wq, &mut s.q), (&layer.wk, &mut s.k), (&layer.wv, &mut s.v)],
            &s.hq[..n * dim / QK],
            n,
            self.backend,
            &self.pool,
        );
        if let Some([bq, bk, bv]) = &layer.qkv_bias {
            for (out, bias) in [(&mut s.q, bq), (&mut s.k, bk), (&mut s.v, bv)] {
                for row in out.chunks_exact_mut(bias.len()) {
                    for (x, b) in row.iter_mut().zip(bias) {
                        *x += *b;
                    }
                }
            }
        }
        if let Some(g) = &layer.gemma {
            rms_norm_rows(&mut s.q, &g.q_norm, c.rms_eps);
            rms_norm_rows(&mut s.k, &g.k_norm, c.rms_eps);
        }
        let table = usize::from(c.windowed[l]);
        for t in 0..n {
            let pos = self.position + t;
            for head in s.q[t * qd..(t + 1) * qd].chunks_exact_mut(hd) {
                self.rope(head, pos, table);
            }
            for head in s.k[t * kv..(t + 1) * kv].chunks_exact_mut(hd) {
                self.rope(head, pos, table);
            }
        }
        self.keys[l].extend_from_slice(&s.k);
        self.values[l].extend_from_slice(&s.v);
        self.attention(l, n, &s.q, &mut s.attn);

        quantize_rows(&s.attn, &mut s.hq[..n * qd / QK], &self.pool);
        matmul(&layer.wo, &s.hq[..n * qd / QK], n, &mut s.proj, self.backend, &self.pool);
        if let Some(g) = &layer.gemma {
            rms_norm_rows(&mut s.proj, &g.post_attn, c.rms_eps);
        }
        for (x, p) in s.x.iter_mut().zip(&s.proj) {
            *x += *p;
        }

        for t in 0..n {
            rms_norm(
                &s.x[t * dim..(t + 1) * dim],
                &layer.ffn_norm,
                c.rms_eps,
                &mut s.h[t * dim..(t + 1) * dim],
            );
        }
        quantize_rows(&s.h[..n * dim], &mut s.hq[..n * dim / QK], &self.pool);
        matmul_many(
            &mut [(&layer.w_gate, &mut s.gate), (&layer.w_up, &mut s.up)],
            &s.hq[..n * dim / QK],
            n,
            self.backend,
            &self.pool,
        );
        let act = if c.arch == Arch::Gemma3 { Activation::Gelu } else { Activation::Silu };
        gated_quantize(act, &s.gate, &s.up, &mut s.fq, self.backend, &self.pool);
        matmul(&layer.w_down, &s.fq, n, &mut s.proj, self.backend, &self.pool);
        if let Some(g) = &layer.gemma {
            rms_norm_rows(&mut s.proj, &g.post_ffn, c.rms_eps);
        }
        for (x, p) in s.x.iter_mut().zip(&s.proj) {
            *x += *p;
        }
    }

    /// Rotates the pairs of one head by the canonical table `table` (0: the model's, 1: the
    /// sliding-window layers') at `pos`: adjacent pairs `(2i, 2i+1)`, or `(i, i + rope_dims/2)`
    /// for NEOX-style architectures.
    fn rope(&self, head: &mut [f32], pos: usize, table: usize) {
        let m = self.model;
        let half = m.config.rope_dims / 2;
        let cos = &self.rope_cos[table][pos * half..(pos + 1) * half];
        let sin = &self.rope_sin[table][pos * half..(pos + 1) * half];
        let (stride, offset) = if m.config.arch.neox_rope() { (1, half) } else { (2, 1) };
        for i in 0..half {
            let (a, b) = (stride * i, stride * i + offset);
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * cos[i] - x1 * sin[i];
            head[b] = x0 * sin[i] + x1 * cos[i];
        }
    }

    /// Causal attention of the `n` newest positions of layer `l` (over the last `window`
    /// positions in a sliding-window layer), one (token, head) pair per task, tasks split
    /// across threads.
    fn attention(&self, l: usize, n: usize, q: &[f32], out: &mut [f32]) {
        let c = &self.model.config;
        let (dim, kv, hd) = (c.q_dim(), c.kv_dim(), c.head_dim);
        let window = if c.windowed[l] { c.window } else { usize::MAX };
        let group = c.heads / c.kv_heads;
        let keys = &self.keys[l];
        let values = &self.values[l];
        let scale = 1.0 / (hd as f32).sqrt();
        let start = self.position;
        let tasks = n * c.heads;
        // A single token's short attention is cheaper than waking the other threads; the split
        // never changes results, since each (token, head) is computed whole by one thread.
        let work = tasks * (start + n) * hd;
        let chunk = if n == 1 && work < 1 << 18 { tasks } else { 1 };
        let out_ptr = SharedMut(out.as_mut_ptr());
        let backend = self.backend;
        let job = |range: std::ops::Range<usize>| {
            let mut scores = Vec::with_capacity(start + n);
            for task in range {
                let (t, h) = (task / c.heads, task % c.heads);
                let kvh = h / group;
                let len = start + t + 1;
                // llama.cpp masks key p0 for query p1 when p1 − p0 ≥ window.
                let first = len.saturating_sub(window);
                let qh = &q[t * dim + h * hd..t * dim + (h + 1) * hd];
                scores.clear();
                for j in first..len {
                    let kj = &keys[j * kv + kvh * hd..j * kv + (kvh + 1) * hd];
                    scores.push(dot_striped(qh, kj) * scale);
                }
                let max = scores.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                exp_shifted(&mut scores, max, backend);
                let denom = sum_striped(&scores);
                // SAFETY: task (t, h) alone writes this head's slice of token t's output.
                let o = unsafe {
                    std::slice::from_raw_parts_mut(out_ptr.get().add(t * dim + h * hd), hd)
                };
                o.fill(0.0);
                for (j, &e) in (first..len).zip(scores.iter()) {
                    let p = e / denom;
                    let vj = &values[j * kv + kvh * hd..j * kv + (kvh + 1) * hd];
                    for (od, &vd) in o.iter_mut().zip(vj) {
                        *od += p * vd;
                    }
                }
            }
        };
        self.pool.for_each(tasks, chunk, &job);
    }
}

/// RMS-normalizes each `w.len()`-wide row of `rows` in place, as [`rms_norm`] (Gemma 3's
/// per-head q/k norms and post-norms).
fn rms_norm_rows(rows: &mut [f32], w: &[f32], eps: f32) {
    for row in rows.chunks_exact_mut(w.len()) {
        let scale = rms_scale(row, eps);
        for (x, &w) in row.iter_mut().zip(w) {
            *x = (*x * scale) * w;
        }
    }
}

/// `y = (x · (1 / √(mean(x²) + eps))) · w`, with the canonical striped sum of squares.
fn rms_norm(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let scale = rms_scale(x, eps);
    for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
        *y = (x * scale) * w;
    }
}

/// `1 / √(mean(x²) + eps)`.
fn rms_scale(x: &[f32], eps: f32) -> f32 {
    let mean = sum_squares_striped(x) / x.len() as f32;
    1.0 / (mean + eps).sqrt()
}
