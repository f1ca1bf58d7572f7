//! Quantized matrix × quantized activations, the canonical way.
//!
//! Weights are repacked at load into groups of 8 rows whose blocks interleave (a byte
//! permutation, see [`QMatrix`]). For every output row the computation is, in this order:
//!
//! ```text
//! acc = 0.0f32
//! for b in 0..blocks (ascending):
//!     sumi = Σ_j w_q[j] · x_q[j]                      (exact i32; Q4_0 uses w_q − 8)
//!     acc = acc + (d_w · d_x) · f32(sumi)             (each op one IEEE f32 rounding)
//!     Q4_1, Q4_K, Q5_1, Q5_K: acc = acc + (m_w · d_x) · f32(Σ_j x_q[j])
//! ```
//!
//! Q6_K and Q3_K take two steps per block, one per 16-element half with its own scale:
//! `acc = acc + (d_w0 · d_x) · f32(Σ_{j<16} w_q·x_q)`, then the same with `d_w1` over `j ≥ 16`;
//! Q2_K then adds each half's minimum the same way: `acc = acc + (m_w0 · d_x) · f32(Σ_{j<16}
//! x_q[j])`, then `m_w1` over `j ≥ 16`.
//! Q5_0, Q5_1 and the k-quants are rewritten at load as 32-element blocks of exactly the same
//! values (see [`Packed`]), so these are their canonical sequences.
//!
//! F32 and F16 matrices (plain float weights, as the GGUF format allows for any tensor) keep
//! their rows as stored and multiply the same quantized activations, by the scalar kernel on
//! every backend:
//!
//! ```text
//! acc = 0.0f32
//! for b in 0..blocks (ascending):
//!     s = 0.0f32
//!     for j in 0..32 (ascending): s = s + w[32b + j] · f32(x_q[j])   (F16: w widened exactly)
//!     acc = acc + d_x · s
//! ```
//!
//! The scalar kernel does exactly that one row at a time. The AVX2 kernel does it for 8 rows
//! in the 8 lanes of a register, for up to 4 tokens per pass over the weights; integer sums may
//! be formed in any order because they are exact, and no float value is ever summed across
//! lanes or tokens, so both produce identical bits. Threads split row groups, never a row's sum.

#[cfg(target_arch = "x86_64")]
mod avx2;

use crate::math::Activation;
use crate::pool::{SharedMut, ThreadPool};
use crate::quant::{Q8Act, QK, f16_to_f32, quantize_activations};
use crate::{Error, GgmlType, Result};

/// Rows per interleaved group.
pub(crate) const GROUP: usize = 8;

/// Which implementation of the kernels runs. Every backend produces identical bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Plain Rust, one row at a time: the reference.
    Scalar,
    /// x86-64 AVX2 (with F16C), 8 rows per register.
    Avx2,
    /// The AVX2 kernels with AVX-512 VNNI's `vpdpbusd` (on 256-bit registers, AVX-512VL) for the
    /// integer products: one instruction for `maddubs`, its i16 add and `madd`.
    Avx512Vnni,
}

impl Backend {
    /// Every backend, fastest last.
    pub const ALL: [Self; 3] = [Self::Scalar, Self::Avx2, Self::Avx512Vnni];

    /// The fastest backend this CPU supports, unless `AIK_INFER_SCALAR=1` asks for the scalar
    /// reference. The one place where CPU features are detected.
    pub fn detect() -> Self {
        if std::env::var("AIK_INFER_SCALAR").is_ok_and(|v| v == "1") {
            return Self::Scalar;
        }
        Self::best_available()
    }

    /// The fastest backend this CPU supports, ignoring the environment.
    pub fn best_available() -> Self {
        Self::ALL.into_iter().rev().find(|b| b.is_available()).unwrap_or(Self::Scalar)
    }

    /// The backends this CPU can run (the scalar one always).
    pub fn available() -> Vec<Self> {
        Self::ALL.into_iter().filter(|b| b.is_available()).collect()
    }

    /// Whether this backend can run on this CPU.
    pub fn is_available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("f16c");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        match self {
            Self::Scalar => true,
            Self::Avx2 => avx2,
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Vnni => {
                avx2 && std::arch::is_x86_feature_detected!("avx512vnni")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512f")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx512Vnni => false,
        }
    }

    /// A short name for logs and benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Avx2 => "avx2",
            Self::Avx512Vnni => "avx512vnni",
        }
    }
}

/// How a matrix is held for the kernels: a GGUF type's blocks repacked into interleaved groups,
/// after rewriting them, for Q5_0 and the k-quants, as 32-element blocks of exactly the same
/// values in a layout one of the kernels runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packed {
    /// F32, F16, BF16 rows as stored.
    Float,
    /// Q4_0: f16 `d`, nibbles; value (q − 8)·d.
    Q4_0,
    /// Q4_1: f16 `d`, f16 `m`, nibbles; value q·d + m.
    Q4_1,
    /// Q8_0, and Q5_0 rewritten: f16 `d`, signed bytes; value q·d.
    Q8_0,
    /// Q4_K's sub-blocks: f32 `d·sc`, f32 `−dmin·m`, nibbles; value q·d + m (Q4_1's form with
    /// exact f32 scales).
    Q4K,
    /// Q6_K's sub-blocks (and Q3_K's): f32 `d·sc` of the first 16 elements and of the last 16,
    /// signed bytes (`q − 32`; Q3_K's −4..=3); value q·d of its half.
    Q6K,
    /// Q5_1 blocks and Q5_K's sub-blocks: f32 `d`, f32 `m`, the quants 0..=31 as bytes; value
    /// q·d + m (Q4_K's form with a byte per quant).
    Q5,
    /// Q2_K's sub-blocks: f32 `d·sc` of each 16-element half, f32 `−dmin·m` of each, the quants
    /// 0..=3 as bytes; value q·d + m of its half.
    Q2K,
}

impl Packed {
    /// Scale fields per row-block (`d`; `d`, `m`; or two `d`s) and the bytes of each.
    const fn fields(self) -> (usize, usize) {
        match self {
            Self::Float => (0, 0),
            Self::Q4_0 | Self::Q8_0 => (1, 2),
            Self::Q4_1 => (2, 2),
            Self::Q4K | Self::Q6K | Self::Q5 => (2, 4),
            Self::Q2K => (4, 4),
        }
    }

    /// Whether the quants are 32 signed bytes per row-block (else 16 bytes of nibbles).
    const fn bytewise(self) -> bool {
        matches!(self, Self::Q8_0 | Self::Q6K | Self::Q5 | Self::Q2K)
    }

    /// Bytes of one row's quants in one block.
    const fn quant_bytes(self) -> usize {
        if self.bytewise() { 32 } else { 16 }
    }

    /// Bytes of the 8 rows' scale fields in one group-block: each field for rows 0..8 in turn.
    const fn header_bytes(self) -> usize {
        let (fields, bytes) = self.fields();
        fields * bytes * GROUP
    }

    /// Bytes of one row's block.
    const fn row_block_bytes(self) -> usize {
        let (fields, bytes) = self.fields();
        fields * bytes + self.quant_bytes()
    }

    /// Bytes of one group-block (8 rows' blocks).
    const fn group_block_bytes(self) -> usize {
        self.row_block_bytes() * GROUP
    }
}

/// A weight matrix of `rows × cols`, repacked for the kernels (quantized types) or kept as
/// stored (F32, F16, BF16: rows contiguous, `cols` elements each).
///
/// Layout: group `g` (rows `8g..8g+8`), block `b` occupy `group_block_bytes` bytes at
/// `(g·blocks + b)·group_block_bytes`: first each scale field of the 8 rows (`d`, then `m` or
/// the second `d`; f16 or f32 LE, see [`Packed`]), then the 8 rows' quant bytes (see
/// [`quant_offset`]). Quant bytes interleave 4 at a time (bytes `4c..4c+4` of rows 0..7, then
/// of the next `c`), so that one 32-byte load holds the same 4 bytes (8 nibble elements, or 4
/// byte elements) of all 8 rows and the SIMD kernels' integer sums land one row per lane with no
/// horizontal adds.
#[derive(Debug)]
pub(crate) struct QMatrix {
    /// The GGUF type it was loaded from.
    ty: GgmlType,
    packed: Packed,
    rows: usize,
    blocks: usize,
    data: Vec<u8>,
}

/// Offset of quant byte `j` of row `lane` (0..8) inside a group-block's quant area: 4 bytes
/// of each row in turn (`quant_bytes / 4` chunks of 32 bytes).
fn quant_offset(lane: usize, j: usize) -> usize {
    (j / 4) * 32 + lane * 4 + j % 4
}

impl QMatrix {
    /// Repacks a GGUF tensor's bytes (`rows` rows of `cols` elements, rows contiguous).
    pub(crate) fn from_gguf(
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        raw: &[u8],
    ) -> Result<Self> {
        let per_block = (ty.block_elements() as usize).max(QK);
        if !rows.is_multiple_of(GROUP) || !cols.is_multiple_of(per_block) || rows == 0 {
            return Err(Error::InvalidModel(format!(
                "matrix '{name}' ({}) is {rows}×{cols}; rows must be a non-zero multiple of {GROUP} and columns of {per_block}",
                ty.name()
            )));
        }
        let blocks = cols / QK;
        let expected = rows * cols / ty.block_elements() as usize * ty.block_bytes() as usize;
        if raw.len() != expected {
            return Err(Error::InvalidModel(format!(
                "matrix '{name}' has {} bytes, expected {expected}",
                raw.len()
            )));
        }
        let (packed, rewritten) = match ty {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
                return Ok(Self { ty, packed: Packed::Float, rows, blocks, data: raw.to_vec() });
            }
            GgmlType::Q4_0 => (Packed::Q4_0, None),
            GgmlType::Q4_1 => (Packed::Q4_1, None),
            GgmlType::Q8_0 => (Packed::Q8_0, None),
            GgmlType::Q5_0 => (Packed::Q8_0, Some(crate::quant::q5_0_as_q8_0(raw))),
            GgmlType::Q5_1 => (Packed::Q5, Some(crate::quant::q5_1_as_sub_blocks(raw))),
            GgmlType::Q2_K => (Packed::Q2K, Some(crate::quant::q2_k_as_sub_blocks(raw))),
            GgmlType::Q3_K => (Packed::Q6K, Some(crate::quant::q3_k_as_sub_blocks(raw))),
            GgmlType::Q4_K => (Packed::Q4K, Some(crate::quant::q4_k_as_sub_blocks(raw))),
            GgmlType::Q5_K => (Packed::Q5, Some(crate::quant::q5_k_as_sub_blocks(raw))),
            GgmlType::Q6_K => (Packed::Q6K, Some(crate::quant::q6_k_as_sub_blocks(raw))),
        };
        // Row-major 32-element row-blocks: the scale fields in order, then the quant bytes.
        let source = rewritten.as_deref().unwrap_or(raw);
        let (rbb, gbb) = (packed.row_block_bytes(), packed.group_block_bytes());
        let (fields, field_bytes) = packed.fields();
        let (hdr, qb) = (packed.header_bytes(), packed.quant_bytes());
        let mut data = vec![0u8; rows * blocks * rbb];
        for r in 0..rows {
            let (g, lane) = (r / GROUP, r % GROUP);
            for b in 0..blocks {
                let src = &source[(r * blocks + b) * rbb..][..rbb];
                let dst = &mut data[(g * blocks + b) * gbb..][..gbb];
                for f in 0..fields {
                    let at = f * field_bytes * GROUP + lane * field_bytes;
                    dst[at..at + field_bytes]
                        .copy_from_slice(&src[f * field_bytes..(f + 1) * field_bytes]);
                }
                for (j, &q) in src[fields * field_bytes..].iter().enumerate().take(qb) {
                    dst[hdr + quant_offset(lane, j)] = q;
                }
            }
        }
        Ok(Self { ty, packed, rows, blocks, data })
    }

    /// Number of rows (outputs).
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes of weights.
    pub(crate) fn bytes(&self) -> usize {
        self.data.len()
    }

    fn group_block(&self, group: usize, block: usize) -> &[u8] {
        let gbb = self.packed.group_block_bytes();
        &self.data[(group * self.blocks + block) * gbb..][..gbb]
    }

    /// The scale fields (unused ones 0) and quant bytes of `row`'s block `block` (16 quant bytes
    /// for nibble layouts, 32 for byte layouts; the rest zero).
    fn block_of_row(&self, row: usize, block: usize) -> ([f32; 4], [u8; 32]) {
        let (g, lane) = (row / GROUP, row % GROUP);
        let gb = self.group_block(g, block);
        let (fields, bytes) = self.packed.fields();
        let mut values = [0f32; 4];
        for (f, value) in values.iter_mut().enumerate().take(fields) {
            let at = f * bytes * GROUP + lane * bytes;
            *value = match bytes {
                2 => f16_to_f32(u16::from_le_bytes([gb[at], gb[at + 1]])),
                _ => f32::from_le_bytes([gb[at], gb[at + 1], gb[at + 2], gb[at + 3]]),
            };
        }
        let (hdr, qb) = (self.packed.header_bytes(), self.packed.quant_bytes());
        let mut qs = [0u8; 32];
        for (j, q) in qs.iter_mut().enumerate().take(qb) {
            *q = gb[hdr + quant_offset(lane, j)];
        }
        (values, qs)
    }

    /// Row `row` of an F32/F16/BF16 matrix, as stored.
    fn float_row(&self, row: usize) -> &[u8] {
        let row_bytes = self.blocks * QK * self.ty.block_bytes() as usize;
        &self.data[row * row_bytes..][..row_bytes]
    }

    /// Dequantizes one row (used for embedding lookups), with ggml's dequantization rules.
    pub(crate) fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        if self.packed == Packed::Float {
            crate::quant::dequantize_row(
                self.ty,
                self.float_row(row),
                &mut out[..self.blocks * QK],
            );
            return;
        }
        for b in 0..self.blocks {
            let ([d, m, m0, m1], qs) = self.block_of_row(row, b);
            let o = &mut out[b * QK..(b + 1) * QK];
            match self.packed {
                Packed::Q8_0 => {
                    for j in 0..QK {
                        o[j] = f32::from(qs[j] as i8) * d;
                    }
                }
                Packed::Q6K => {
                    for j in 0..QK {
                        o[j] = f32::from(qs[j] as i8) * if j < 16 { d } else { m };
                    }
                }
                Packed::Q5 => {
                    for j in 0..QK {
                        o[j] = f32::from(qs[j]) * d + m;
                    }
                }
                Packed::Q2K => {
                    for j in 0..QK {
                        let (scale, min) = if j < 16 { (d, m0) } else { (m, m1) };
                        o[j] = f32::from(qs[j]) * scale + min;
                    }
                }
                Packed::Q4_1 | Packed::Q4K => {
                    for j in 0..16 {
                        o[j] = f32::from(qs[j] & 15) * d + m;
                        o[j + 16] = f32::from(qs[j] >> 4) * d + m;
                    }
                }
                Packed::Q4_0 => {
                    for j in 0..16 {
                        o[j] = (i32::from(qs[j] & 15) - 8) as f32 * d;
                        o[j + 16] = (i32::from(qs[j] >> 4) - 8) as f32 * d;
                    }
                }
                Packed::Float => unreachable!("float rows are handled above"),
            }
        }
    }

    /// The reference: one row's canonical dot product with quantized activations `x`.
    pub(crate) fn row_dot_scalar(&self, row: usize, x: &[Q8Act]) -> f32 {
        if self.packed == Packed::Float {
            return self.float_row_dot(row, x);
        }
        let mut acc = 0f32;
        for (b, a) in x.iter().enumerate().take(self.blocks) {
            let ([d, m, m0, m1], qs) = self.block_of_row(row, b);
            let bytes = |range: std::ops::Range<usize>| -> i32 {
                range.map(|j| i32::from(qs[j] as i8) * i32::from(a.qs[j])).sum()
            };
            let nibbles = |offset: i32| -> i32 {
                (0..16)
                    .map(|j| {
                        (i32::from(qs[j] & 15) - offset) * i32::from(a.qs[j])
                            + (i32::from(qs[j] >> 4) - offset) * i32::from(a.qs[j + 16])
                    })
                    .sum()
            };
            match self.packed {
                Packed::Q8_0 => acc += (d * a.d) * bytes(0..QK) as f32,
                Packed::Q6K => {
                    acc += (d * a.d) * bytes(0..16) as f32;
                    acc += (m * a.d) * bytes(16..QK) as f32;
                }
                Packed::Q5 => {
                    acc += (d * a.d) * bytes(0..QK) as f32;
                    acc += (m * a.d) * a.sum as f32;
                }
                Packed::Q2K => {
                    let first = a.first_half;
                    acc += (d * a.d) * bytes(0..16) as f32;
                    acc += (m * a.d) * bytes(16..QK) as f32;
                    acc += (m0 * a.d) * first as f32;
                    acc += (m1 * a.d) * (a.sum - first) as f32;
                }
                Packed::Q4_1 | Packed::Q4K => {
                    acc += (d * a.d) * nibbles(0) as f32;
                    acc += (m * a.d) * a.sum as f32;
                }
                Packed::Q4_0 => acc += (d * a.d) * nibbles(8) as f32,
                Packed::Float => unreachable!("float rows are handled above"),
            }
        }
        acc
    }

    /// One row of an F32/F16 matrix times quantized activations, in the order of the module
    /// doc: per block an ascending sum of weight × quant, then scaled by the block's `d`.
    fn float_row_dot(&self, row: usize, x: &[Q8Act]) -> f32 {
        let bytes = self.float_row(row);
        let mut weights = [0f32; QK];
        let block_bytes = QK * self.ty.block_bytes() as usize;
        let mut acc = 0f32;
        for (a, wb) in x.iter().zip(bytes.chunks_exact(block_bytes)) {
            crate::quant::dequantize_row(self.ty, wb, &mut weights);
            let mut s = 0f32;
            for (w, &q) in weights.iter().zip(&a.qs) {
                s += w * f32::from(q);
            }
            acc += a.d * s;
        }
        acc
    }

    /// Computes the 8 outputs of row group `g` for `out.len()` (1..=[`TOKEN_TILE`]) tokens, whose
    /// activations `x` holds one token after another, into `out[t][0..8]`.
    fn group_dot(&self, backend: Backend, g: usize, x: &[Q8Act], out: &mut [[f32; GROUP]]) {
        // Float matrices have only the scalar kernel; it is the reference, so every backend
        // gives the same bits.
        let backend = if self.packed == Packed::Float { Backend::Scalar } else { backend };
        match backend {
            Backend::Scalar => {
                for (t, out) in out.iter_mut().enumerate() {
                    let x = &x[t * self.blocks..(t + 1) * self.blocks];
                    for (lane, o) in out.iter_mut().enumerate() {
                        *o = self.row_dot_scalar(g * GROUP + lane, x);
                    }
                }
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 | Backend::Avx512Vnni => {
                let gbb = self.packed.group_block_bytes();
                let data = &self.data[g * self.blocks * gbb..(g + 1) * self.blocks * gbb];
                let (packed, blocks) = (self.packed, self.blocks);
                // SAFETY: these backends are only used when the CPU has their features
                // (`matmul_many` falls back to the scalar kernel otherwise).
                unsafe {
                    match (backend, out.len()) {
                        (Backend::Avx2, 1) => avx2::group_dot::<1>(packed, data, x, blocks, out),
                        (Backend::Avx2, 2) => avx2::group_dot::<2>(packed, data, x, blocks, out),
                        (Backend::Avx2, 3) => avx2::group_dot::<3>(packed, data, x, blocks, out),
                        (Backend::Avx2, _) => {
                            avx2::group_dot::<TOKEN_TILE>(packed, data, x, blocks, out)
                        }
                        (_, 1) => avx2::group_dot_vnni::<1>(packed, data, x, blocks, out),
                        (_, 2) => avx2::group_dot_vnni::<2>(packed, data, x, blocks, out),
                        (_, 3) => avx2::group_dot_vnni::<3>(packed, data, x, blocks, out),
                        _ => avx2::group_dot_vnni::<TOKEN_TILE>(packed, data, x, blocks, out),
                    }
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            Backend::Avx2 | Backend::Avx512Vnni => unreachable!("x86 backend on another target"),
        }
    }
}

/// Tokens whose products one pass over a row group's weights computes (prefill reuses each
/// group-block, unpacked once, for this many tokens).
const TOKEN_TILE: usize = 4;

/// `out[t][r] = W[r] · x[t]` for `tokens` tokens, threads splitting row groups.
///
/// `x` holds `tokens × w.cols/32` activation blocks; `out` has `tokens × w.rows` floats.
pub(crate) fn matmul(
    w: &QMatrix,
    x: &[Q8Act],
    tokens: usize,
    out: &mut [f32],
    backend: Backend,
    pool: &ThreadPool,
) {
    matmul_many(&mut [(w, out)], x, tokens, backend, pool);
}

/// Several matrices with the same input in one dispatch to the threads (e.g. Q, K and V), the
/// row groups of all of them split across threads as one list. Each output is still computed
/// by the one canonical per-row sequence.
pub(crate) fn matmul_many(
    parts: &mut [(&QMatrix, &mut [f32])],
    x: &[Q8Act],
    tokens: usize,
    backend: Backend,
    pool: &ThreadPool,
) {
    let backend = if backend.is_available() { backend } else { Backend::Scalar };
    let mut starts = Vec::with_capacity(parts.len() + 1);
    let mut total = 0;
    for (w, out) in parts.iter() {
        assert_eq!(x.len(), tokens * w.blocks);
        assert_eq!(out.len(), tokens * w.rows);
        starts.push(total);
        total += w.rows / GROUP;
    }
    starts.push(total);
    let outs: Vec<(&QMatrix, SharedMut<f32>)> =
        parts.iter_mut().map(|(w, out)| (&**w, SharedMut(out.as_mut_ptr()))).collect();
    // Enough chunks for threads to balance, few enough that claiming them costs nothing.
    let chunk = (total / (pool.threads() * 8)).max(4);
    pool.for_each(total, chunk, &|range| {
        let mut tmp = [[0f32; GROUP]; TOKEN_TILE];
        let mut part = 0;
        for global in range {
            while global >= starts[part + 1] {
                part += 1;
            }
            let (w, out_ptr) = outs[part];
            let g = global - starts[part];
            for first in (0..tokens).step_by(TOKEN_TILE) {
                let n = (tokens - first).min(TOKEN_TILE);
                let x = &x[first * w.blocks..(first + n) * w.blocks];
                w.group_dot(backend, g, x, &mut tmp[..n]);
                for (t, row) in (first..).zip(&tmp[..n]) {
                    // SAFETY: each group is claimed by exactly one thread, which alone writes
                    // its rows for every token; each part's buffer holds tokens × rows floats.
                    unsafe {
                        let dst = out_ptr.get().add(t * w.rows + g * GROUP);
                        std::ptr::copy_nonoverlapping(row.as_ptr(), dst, GROUP);
                    }
                }
            }
        }
    });
}

/// `x[i] = exp_f32(x[i] − shift)` (softmax's exponentials), 8 lanes at a time where the backend
/// has them: the same bits either way.
pub(crate) fn exp_shifted(x: &mut [f32], shift: f32, backend: Backend) {
    let backend = if backend.is_available() { backend } else { Backend::Scalar };
    let done = match backend {
        Backend::Scalar => 0,
        // SAFETY: the backend is available, so AVX2 is.
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 | Backend::Avx512Vnni => {
            unsafe { avx2::exp_shifted(x, shift) };
            x.len() - x.len() % 8
        }
        #[cfg(not(target_arch = "x86_64"))]
        Backend::Avx2 | Backend::Avx512Vnni => 0,
    };
    for v in &mut x[done..] {
        *v = crate::math::exp_f32(*v - shift);
    }
}

/// Activation blocks one thread quantizes per claim (and the least worth splitting).
const QUANT_CHUNK: usize = 16;

/// [`quantize_activations`] with threads splitting the blocks (each block is quantized whole by
/// one thread, so the split never changes a bit).
pub(crate) fn quantize_rows(x: &[f32], out: &mut [Q8Act], pool: &ThreadPool) {
    assert_eq!(x.len(), out.len() * QK);
    pool.for_each_part(out, QUANT_CHUNK, &|start, part| {
        quantize_activations(&x[start * QK..(start + part.len()) * QK], part);
    });
}

/// Quantizes `act(gate) · up` (a gated FFN's hidden activations) into `out`, threads splitting
/// the blocks. The products come from [`Activation::gated`] or its 8-lane copy (the same bits).
pub(crate) fn gated_quantize(
    act: Activation,
    gate: &[f32],
    up: &[f32],
    out: &mut [Q8Act],
    backend: Backend,
    pool: &ThreadPool,
) {
    assert!(gate.len() == out.len() * QK && up.len() == gate.len());
    let backend = if backend.is_available() { backend } else { Backend::Scalar };
    pool.for_each_part(out, QUANT_CHUNK, &|start, part| {
        let mut h = [0f32; QUANT_CHUNK * QK];
        let h = &mut h[..part.len() * QK];
        let range = start * QK..start * QK + h.len();
        let (gate, up) = (&gate[range.clone()], &up[range]);
        match backend {
            Backend::Scalar => {
                for ((h, &g), &u) in h.iter_mut().zip(gate).zip(up) {
                    *h = act.gated(g, u);
                }
            }
            // SAFETY: the backend is available, so the CPU has AVX2; blocks are 32 floats.
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 | Backend::Avx512Vnni => unsafe { avx2::gated(act, gate, up, h) },
            #[cfg(not(target_arch = "x86_64"))]
            Backend::Avx2 | Backend::Avx512Vnni => unreachable!("x86 backend on another target"),
        }
        quantize_activations(h, part);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{
        quantize_activations, quantize_q4_0, quantize_q4_1, quantize_q5_0, quantize_q5_1,
        quantize_q8_0,
    };

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn matrices(rows: usize, cols: usize) -> Vec<QMatrix> {
        let mut seed = 7;
        let w: Vec<f32> = (0..rows * cols).map(|_| lcg(&mut seed)).collect();
        vec![
            QMatrix::from_gguf("q8", GgmlType::Q8_0, rows, cols, &quantize_q8_0(&w)).unwrap(),
            QMatrix::from_gguf("q41", GgmlType::Q4_1, rows, cols, &quantize_q4_1(&w)).unwrap(),
            QMatrix::from_gguf("q40", GgmlType::Q4_0, rows, cols, &quantize_q4_0(&w)).unwrap(),
            QMatrix::from_gguf("f32", GgmlType::F32, rows, cols, &f32_bytes(&w)).unwrap(),
            QMatrix::from_gguf("f16", GgmlType::F16, rows, cols, &f16_bytes(&w)).unwrap(),
            QMatrix::from_gguf("q50", GgmlType::Q5_0, rows, cols, &quantize_q5_0(&w)).unwrap(),
            QMatrix::from_gguf("bf16", GgmlType::BF16, rows, cols, &bf16_bytes(&w)).unwrap(),
            QMatrix::from_gguf("q51", GgmlType::Q5_1, rows, cols, &quantize_q5_1(&w)).unwrap(),
        ]
    }

    fn bf16_bytes(w: &[f32]) -> Vec<u8> {
        w.iter().flat_map(|&v| crate::quant::f32_to_bf16(v).to_le_bytes()).collect()
    }

    /// Q5_0 runs as the Q8_0 matrix of the same values: its rows dequantize as ggml's Q5_0
    /// does, and its products equal that Q8_0 matrix's to the bit on every backend.
    #[test]
    fn q5_0_is_the_q8_0_matrix_of_the_same_values() {
        let (rows, cols) = (16, 96);
        let mut seed = 11;
        let w: Vec<f32> = (0..rows * cols).map(|_| lcg(&mut seed)).collect();
        let raw = quantize_q5_0(&w);
        let q5 = QMatrix::from_gguf("q50", GgmlType::Q5_0, rows, cols, &raw).unwrap();
        let q8 =
            QMatrix::from_gguf("q8", GgmlType::Q8_0, rows, cols, &crate::quant::q5_0_as_q8_0(&raw))
                .unwrap();
        let row_bytes = cols / QK * 22;
        for r in 0..rows {
            let (mut ours, mut ggml) = (vec![0f32; cols], vec![0f32; cols]);
            q5.dequantize_row(r, &mut ours);
            crate::quant::dequantize_row(
                GgmlType::Q5_0,
                &raw[r * row_bytes..][..row_bytes],
                &mut ggml,
            );
            assert_eq!(ours, ggml, "row {r}");
        }
        let x: Vec<f32> = (0..2 * cols).map(|_| lcg(&mut seed)).collect();
        let mut xq = vec![Q8Act::ZERO; 2 * cols / QK];
        quantize_activations(&x, &mut xq);
        for backend in Backend::available() {
            let (mut a, mut b) = (vec![0f32; 2 * rows], vec![0f32; 2 * rows]);
            matmul(&q5, &xq, 2, &mut a, backend, &ThreadPool::new(1));
            matmul(&q8, &xq, 2, &mut b, backend, &ThreadPool::new(1));
            assert_eq!(to_bits(&a), to_bits(&b), "{backend:?}");
        }
    }

    /// A BF16 matrix holds its values exactly as f32, so it multiplies to the same bits as the
    /// F32 matrix of those values.
    #[test]
    fn bf16_multiplies_as_the_f32_matrix_of_its_values() {
        let (rows, cols) = (8, 64);
        let mut seed = 5;
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| crate::quant::bf16_to_f32(crate::quant::f32_to_bf16(lcg(&mut seed))))
            .collect();
        let bf = QMatrix::from_gguf("bf16", GgmlType::BF16, rows, cols, &bf16_bytes(&w)).unwrap();
        let f = QMatrix::from_gguf("f32", GgmlType::F32, rows, cols, &f32_bytes(&w)).unwrap();
        let x: Vec<f32> = (0..cols).map(|_| lcg(&mut seed)).collect();
        let mut xq = vec![Q8Act::ZERO; cols / QK];
        quantize_activations(&x, &mut xq);
        let (mut a, mut b) = (vec![0f32; rows], vec![0f32; rows]);
        matmul(&bf, &xq, 1, &mut a, Backend::best_available(), &ThreadPool::new(1));
        matmul(&f, &xq, 1, &mut b, Backend::Scalar, &ThreadPool::new(1));
        assert_eq!(to_bits(&a), to_bits(&b));
    }

    fn to_bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn f32_bytes(w: &[f32]) -> Vec<u8> {
        w.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn f16_bytes(w: &[f32]) -> Vec<u8> {
        w.iter().flat_map(|&v| crate::quant::f32_to_f16(v).to_le_bytes()).collect()
    }

    #[test]
    fn float_matrices_follow_the_documented_order_and_match_f64() {
        let (rows, cols, tokens) = (24, 96, 2);
        let mut seed = 5;
        let w: Vec<f32> = (0..rows * cols).map(|_| lcg(&mut seed) * 0.7).collect();
        let x: Vec<f32> = (0..cols * tokens).map(|_| lcg(&mut seed) * 3.0).collect();
        let mut xq = vec![Q8Act::ZERO; cols / QK * tokens];
        quantize_activations(&x, &mut xq);
        for (ty, raw) in [(GgmlType::F32, f32_bytes(&w)), (GgmlType::F16, f16_bytes(&w))] {
            // Weights straight from the GGUF bytes, independent of the matrix's storage.
            let weight = |r: usize, c: usize| -> f32 {
                let i = r * cols + c;
                match ty {
                    GgmlType::F32 => f32::from_le_bytes(raw[4 * i..4 * i + 4].try_into().unwrap()),
                    _ => f16_to_f32(u16::from_le_bytes([raw[2 * i], raw[2 * i + 1]])),
                }
            };
            let m = QMatrix::from_gguf("float", ty, rows, cols, &raw).unwrap();
            let mut out = vec![0f32; rows * tokens];
            matmul(&m, &xq, tokens, &mut out, Backend::best_available(), &ThreadPool::new(3));
            for t in 0..tokens {
                let acts = &xq[t * cols / QK..(t + 1) * cols / QK];
                for r in 0..rows {
                    let (mut acc, mut exact, mut magnitude) = (0f32, 0f64, 0f64);
                    for (b, a) in acts.iter().enumerate() {
                        let mut s = 0f32;
                        for j in 0..QK {
                            let wv = weight(r, b * QK + j);
                            s += wv * f32::from(a.qs[j]);
                            let term = f64::from(wv) * f64::from(a.d) * f64::from(a.qs[j]);
                            exact += term;
                            magnitude += term.abs();
                        }
                        acc += a.d * s;
                    }
                    let got = out[t * rows + r];
                    assert_eq!(got.to_bits(), acc.to_bits(), "{ty:?} token {t} row {r}");
                    // Each f32 operation rounds by at most 2^-24 relative; 100 of them on any
                    // path bound the error well under 1e-5 of the terms' magnitude.
                    let err = (f64::from(got) - exact).abs();
                    assert!(err <= 1e-5 * magnitude, "{ty:?} row {r}: {got} vs {exact}");
                }
            }
        }
    }

    #[test]
    fn scalar_dot_is_close_to_the_float_dot() {
        let (rows, cols) = (16, 96);
        let mut seed = 7;
        // Advance past the weights `matrices` draws from the same seed.
        for _ in 0..rows * cols {
            lcg(&mut seed);
        }
        let x: Vec<f32> = (0..cols).map(|_| lcg(&mut seed)).collect();
        let mut xq = vec![Q8Act::ZERO; cols / QK];
        quantize_activations(&x, &mut xq);
        for m in matrices(rows, cols) {
            let mut deq = vec![0f32; cols];
            for r in 0..rows {
                m.dequantize_row(r, &mut deq);
                let exact: f32 = deq.iter().zip(&x).map(|(a, b)| a * b).sum();
                let got = m.row_dot_scalar(r, &xq);
                assert!((exact - got).abs() < 0.1, "{:?} row {r}: {exact} vs {got}", m.ty);
            }
        }
    }

    #[test]
    fn repack_keeps_every_row() {
        let (rows, cols) = (16, 64);
        let mut seed = 3;
        let w: Vec<f32> = (0..rows * cols).map(|_| lcg(&mut seed)).collect();
        let raw = quantize_q4_1(&w);
        let m = QMatrix::from_gguf("q41", GgmlType::Q4_1, rows, cols, &raw).unwrap();
        let mut a = vec![0f32; cols];
        let mut b = vec![0f32; cols];
        for r in 0..rows {
            m.dequantize_row(r, &mut a);
            crate::quant::dequantize_row(GgmlType::Q4_1, &raw[r * 40..(r + 1) * 40], &mut b);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn every_backend_and_thread_count_gives_identical_bits() {
        // 7 tokens: a tile of TOKEN_TILE and a remainder of 3.
        let (rows, cols, tokens) = (64, 160, 2 * TOKEN_TILE - 1);
        let mut seed = 11;
        let x: Vec<f32> = (0..cols * tokens).map(|_| lcg(&mut seed) * 5.0).collect();
        let mut xq = vec![Q8Act::ZERO; cols / QK * tokens];
        quantize_activations(&x, &mut xq);
        for m in matrices(rows, cols) {
            let mut reference = vec![0f32; rows * tokens];
            matmul(&m, &xq, tokens, &mut reference, Backend::Scalar, &ThreadPool::new(1));
            // Tokens tiled or one at a time: the same bits.
            let blocks = cols / QK;
            for (t, want) in reference.chunks_exact(rows).enumerate() {
                for backend in Backend::available() {
                    let mut one = vec![0f32; rows];
                    let x = &xq[t * blocks..(t + 1) * blocks];
                    matmul(&m, x, 1, &mut one, backend, &ThreadPool::new(1));
                    assert_eq!(to_bits(&one), to_bits(want), "{:?} {backend:?} token {t}", m.ty);
                }
            }
            for backend in Backend::available() {
                for threads in 1..=4 {
                    let mut out = vec![0f32; rows * tokens];
                    matmul(&m, &xq, tokens, &mut out, backend, &ThreadPool::new(threads));
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&out), bits(&reference), "{:?} {backend:?} {threads}", m.ty);
                }
            }
        }
    }

    /// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q5_1 (all rewritten at load): rows dequantize to ggml's values
    /// bit for bit (its loops, written out in
    /// `quant.rs`), the scalar dot stays close to the float dot of those values, and every
    /// backend and thread count gives the scalar kernel's bits, on quantized weights and on
    /// arbitrary block bytes (any quant, scales of both signs and many magnitudes).
    #[test]
    fn k_quants_dequantize_as_ggml_and_every_backend_agrees() {
        use crate::quant::{
            quantize_q2_k, quantize_q3_k, quantize_q4_k, quantize_q5_k, quantize_q6_k,
        };
        let (rows, cols, tokens) = (16, 512, 3);
        let mut seed = 21;
        let w: Vec<f32> = (0..rows * cols).map(|_| lcg(&mut seed)).collect();
        let x: Vec<f32> = (0..cols * tokens).map(|_| lcg(&mut seed) * 4.0).collect();
        let mut xq = vec![Q8Act::ZERO; cols / QK * tokens];
        quantize_activations(&x, &mut xq);
        let mut state = 77u64;
        let mut byte = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 56) as u8
        };
        for (ty, quantized) in [
            (GgmlType::Q4_K, quantize_q4_k(&w)),
            (GgmlType::Q6_K, quantize_q6_k(&w)),
            (GgmlType::Q3_K, quantize_q3_k(&w)),
            (GgmlType::Q5_K, quantize_q5_k(&w)),
            (GgmlType::Q5_1, quantize_q5_1(&w)),
            (GgmlType::Q2_K, quantize_q2_k(&w)),
        ] {
            let bb = ty.block_bytes() as usize;
            let mut arbitrary: Vec<u8> = (0..quantized.len()).map(|_| byte()).collect();
            for block in arbitrary.chunks_exact_mut(bb) {
                // Keep the f16 scales finite: Q4_K's, Q5_K's and Q5_1's d and dmin lead, Q6_K's
                // and Q3_K's d ends the block, Q2_K's d and dmin do.
                let leading = matches!(ty, GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q5_1);
                let at: &[usize] = match ty {
                    _ if leading => &[1, 3],
                    GgmlType::Q2_K => &[bb - 3, bb - 1],
                    _ => &[bb - 1],
                };
                for &i in at {
                    block[i] &= 0xbb;
                }
            }
            for (what, raw) in [("quantized", &quantized), ("arbitrary", &arbitrary)] {
                let m = QMatrix::from_gguf("k", ty, rows, cols, raw).unwrap();
                let row_bytes = cols / ty.block_elements() as usize * bb;
                for r in 0..rows {
                    let (mut ours, mut ggml) = (vec![0f32; cols], vec![0f32; cols]);
                    m.dequantize_row(r, &mut ours);
                    crate::quant::dequantize_row(ty, &raw[r * row_bytes..][..row_bytes], &mut ggml);
                    assert_eq!(to_bits(&ours), to_bits(&ggml), "{ty:?} {what} row {r}");
                    if what == "quantized" {
                        let exact: f32 = ours.iter().zip(&x).map(|(a, b)| a * b).sum();
                        let got = m.row_dot_scalar(r, &xq[..cols / QK]);
                        assert!((exact - got).abs() < 0.5, "{ty:?} row {r}: {exact} vs {got}");
                    }
                }
                let mut reference = vec![0f32; rows * tokens];
                matmul(&m, &xq, tokens, &mut reference, Backend::Scalar, &ThreadPool::new(1));
                for backend in Backend::available() {
                    for threads in [1, 2, 3] {
                        let mut out = vec![0f32; rows * tokens];
                        matmul(&m, &xq, tokens, &mut out, backend, &ThreadPool::new(threads));
                        assert_eq!(
                            to_bits(&out),
                            to_bits(&reference),
                            "{ty:?} {what} {backend:?} {threads}"
                        );
                    }
                }
            }
        }
        // A k-quant matrix whose rows are not whole super-blocks is refused with the reason.
        let err = QMatrix::from_gguf("short", GgmlType::Q4_K, 8, 288, &[0; 8 * 144]).unwrap_err();
        assert!(err.to_string().contains("columns of 256"), "{err}");
    }

    #[test]
    fn backends_agree_on_arbitrary_block_bytes() {
        // Every quant byte value (Q8_0 −128 included) and scales of both signs and many
        // magnitudes, which reference quantizers never produce.
        let (rows, cols, tokens) = (32, 128, 2);
        let mut seed = 99u64;
        let mut byte = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 56) as u8
        };
        let mut xq = vec![Q8Act::ZERO; cols / QK * tokens];
        for a in &mut xq {
            for q in &mut a.qs {
                *q = (byte() as i8).max(-127);
            }
            a.sum = a.qs.iter().map(|&q| i32::from(q)).sum();
            a.first_half = a.qs[..16].iter().map(|&q| i32::from(q)).sum();
            a.d = f32::from(byte()) / 97.0;
        }
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q5_1] {
            let bb = ty.block_bytes() as usize;
            let mut raw: Vec<u8> = (0..rows * cols / QK * bb).map(|_| byte()).collect();
            for block in raw.chunks_exact_mut(bb) {
                // Scales: f16 with exponent bits limited so values stay finite.
                block[1] &= 0xbb;
                if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
                    block[3] &= 0xbb;
                }
            }
            let m = QMatrix::from_gguf("arb", ty, rows, cols, &raw).unwrap();
            let mut reference = vec![0f32; rows * tokens];
            matmul(&m, &xq, tokens, &mut reference, Backend::Scalar, &ThreadPool::new(1));
            for backend in Backend::available() {
                let mut fast = vec![0f32; rows * tokens];
                matmul(&m, &xq, tokens, &mut fast, backend, &ThreadPool::new(2));
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast), bits(&reference), "{ty:?} {backend:?}");
            }
        }
    }

    /// Inputs for the activation kernels: a strided sweep of every f32 bit pattern (both signs,
    /// NaNs, infinities, subnormals) plus the edges of `exp_f32`'s range and of its 2¹²⁸ case.
    fn activation_inputs() -> Vec<f32> {
        let mut x: Vec<f32> =
            (0..1u64 << 32).step_by(4093).map(|b| f32::from_bits(b as u32)).collect();
        for edge in [crate::math::EXP_MAX, crate::math::EXP_MIN, 88.0, 88.03, 88.4, 44.0, 44.4] {
            for k in -4..=4i32 {
                let e = f32::from_bits(edge.to_bits().wrapping_add_signed(k));
                // The GELU and SiLU exponents are −2z and −x: reach the edges from both sides.
                x.extend([e, -e, e / 2.0, -e / 2.0]);
            }
        }
        x.extend([0.0, -0.0, f32::MIN_POSITIVE, -f32::MIN_POSITIVE, f32::MAX, f32::MIN]);
        x.resize(x.len().div_ceil(QK) * QK, 1.5);
        x
    }

    #[test]
    fn vector_softmax_exponentials_are_the_scalar_ones_bit_for_bit() {
        // An odd length: whole 8-lane chunks and a scalar remainder.
        let mut x = activation_inputs();
        x.push(0.25);
        for shift in [0.0, 1.5, -20.0, 87.0] {
            let want: Vec<f32> = x.iter().map(|&v| crate::math::exp_f32(v - shift)).collect();
            for backend in Backend::available() {
                let mut got = x.clone();
                exp_shifted(&mut got, shift, backend);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                        "{backend:?} shift {shift} at x = {:e}: {g:e} vs {w:e}",
                        x[i]
                    );
                }
            }
        }
    }

    #[test]
    fn vector_activations_are_the_scalar_ones_bit_for_bit() {
        let x = activation_inputs();
        let up: Vec<f32> = (0..x.len()).map(|i| [1.0, -0.75, 3.0e-3, 17.25][i % 4]).collect();
        for act in [Activation::Silu, Activation::Gelu] {
            let want: Vec<u32> =
                x.iter().zip(&up).map(|(&g, &u)| act.gated(g, u).to_bits()).collect();
            for backend in Backend::available() {
                #[cfg(target_arch = "x86_64")]
                if backend != Backend::Scalar {
                    let mut got = vec![0f32; x.len()];
                    // SAFETY: the backend is available, so AVX2 is.
                    unsafe { avx2::gated(act, &x, &up, &mut got) };
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            g.to_bits() == *w || (g.is_nan() && f32::from_bits(*w).is_nan()),
                            "{act:?} {backend:?} at x = {:e} ({:#x}): {:#x} vs {w:#x}",
                            x[i],
                            x[i].to_bits(),
                            g.to_bits()
                        );
                    }
                }
                // Through the threads and the quantizer: the same blocks as quantizing the
                // scalar products.
                let finite: Vec<f32> = x
                    .iter()
                    .map(|v| if v.is_finite() { v.clamp(-60.0, 60.0) } else { 0.5 })
                    .collect();
                let mut reference = vec![Q8Act::ZERO; x.len() / QK];
                let products: Vec<f32> =
                    finite.iter().zip(&up).map(|(&g, &u)| act.gated(g, u)).collect();
                quantize_activations(&products, &mut reference);
                for threads in 1..=3 {
                    let mut out = vec![Q8Act::ZERO; x.len() / QK];
                    gated_quantize(act, &finite, &up, &mut out, backend, &ThreadPool::new(threads));
                    assert!(out == reference, "{act:?} {backend:?} {threads} threads");
                }
            }
        }
    }
}
