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
//!     Q4_1 only: acc = acc + (m_w · d_x) · f32(Σ_j x_q[j])
//! ```
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
//! in the 8 lanes of a register; integer sums may be formed in any order because they are
//! exact, and no float value is ever summed across lanes, so both produce identical bits.
//! Threads split row groups, never a row's sum.

#[cfg(target_arch = "x86_64")]
mod avx2;

use crate::pool::{SharedMut, ThreadPool};
use crate::quant::{Q8Act, QK, f16_to_f32};
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
}

impl Backend {
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
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            return Self::Avx2;
        }
        Self::Scalar
    }

    /// Whether this backend can run on this CPU.
    pub fn is_available(self) -> bool {
        match self {
            Self::Scalar => true,
            Self::Avx2 => Self::best_available() == Self::Avx2,
        }
    }

    /// A short name for logs and benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Avx2 => "avx2",
        }
    }
}

/// A weight matrix of `rows × cols`, repacked for the kernels (quantized types) or kept as
/// stored (F32, F16: rows contiguous, `cols` elements each).
///
/// Layout: group `g` (rows `8g..8g+8`), block `b` occupy `group_block_bytes` bytes at
/// `(g·blocks + b)·group_block_bytes`: first the 8 rows' `d` (f16 LE), then for Q4_1 the 8 rows'
/// `m`, then the 8 rows' quant bytes (see [`quant_offset`]). Q4 quants interleave 4 bytes at a
/// time (bytes `4c..4c+4` of rows 0..7, then of the next `c`), so that one 32-byte load holds the
/// same 8 elements of all 8 rows and the AVX2 kernel's integer sums land one row per lane with
/// no horizontal adds; Q8_0 keeps each row's 32 bytes together.
#[derive(Debug)]
pub(crate) struct QMatrix {
    ty: GgmlType,
    rows: usize,
    blocks: usize,
    data: Vec<u8>,
}

/// Whether `ty` is a plain float type, kept as stored rather than repacked.
fn is_float(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)
}

/// Q5_0 blocks rewritten as the Q8_0 blocks of the same values: `(q − 16)·d` is `q8·d` with
/// `q8 = q − 16` in −16..=15 and the same `d`, so every kernel, dequantization and dot product
/// is Q8_0's, exactly (at 34 bytes a block instead of 22).
fn q5_0_as_q8_0(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 22 * 34);
    for block in raw.chunks_exact(22) {
        out.extend_from_slice(&block[..2]);
        out.extend(crate::quant::q5_0_values(block).iter().map(|&q| (q as i8 - 16) as u8));
    }
    out
}

/// Bytes of one row's quants in one block.
fn quant_bytes(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q8_0 => 32,
        _ => 16,
    }
}

/// Bytes of the 8 rows' scale header (d, and m for Q4_1) in one group-block.
fn header_bytes(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q4_1 => 32,
        _ => 16,
    }
}

/// Offset of quant byte `j` of row `lane` (0..8) inside a group-block's quant area.
fn quant_offset(ty: GgmlType, lane: usize, j: usize) -> usize {
    match ty {
        GgmlType::Q8_0 => lane * 32 + j,
        _ => (j / 4) * 32 + lane * 4 + j % 4,
    }
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
        if !rows.is_multiple_of(GROUP) || !cols.is_multiple_of(QK) || rows == 0 {
            return Err(Error::InvalidModel(format!(
                "matrix '{name}' is {rows}×{cols}; rows must be a non-zero multiple of {GROUP} and columns of {QK}"
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
        if is_float(ty) {
            return Ok(Self { ty, rows, blocks, data: raw.to_vec() });
        }
        if ty == GgmlType::Q5_0 {
            return Self::from_gguf(name, GgmlType::Q8_0, rows, cols, &q5_0_as_q8_0(raw));
        }
        let bb = ty.block_bytes() as usize;
        let gbb = bb * GROUP;
        let (hdr, qb) = (header_bytes(ty), quant_bytes(ty));
        let mut data = vec![0u8; raw.len()];
        for r in 0..rows {
            let (g, lane) = (r / GROUP, r % GROUP);
            for b in 0..blocks {
                let src = &raw[(r * blocks + b) * bb..][..bb];
                let dst = &mut data[(g * blocks + b) * gbb..][..gbb];
                dst[2 * lane..2 * lane + 2].copy_from_slice(&src[0..2]);
                let q_src = if ty == GgmlType::Q4_1 {
                    dst[16 + 2 * lane..16 + 2 * lane + 2].copy_from_slice(&src[2..4]);
                    &src[4..]
                } else {
                    &src[2..]
                };
                for (j, &q) in q_src.iter().enumerate().take(qb) {
                    dst[hdr + quant_offset(ty, lane, j)] = q;
                }
            }
        }
        Ok(Self { ty, rows, blocks, data })
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
        let gbb = self.ty.block_bytes() as usize * GROUP;
        &self.data[(group * self.blocks + block) * gbb..][..gbb]
    }

    /// Scale, minimum and quant bytes of `row`'s block `block` (16 quant bytes for Q4 types, 32
    /// for Q8_0; the rest zero).
    fn block_of_row(&self, row: usize, block: usize) -> (f32, f32, [u8; 32]) {
        let (g, lane) = (row / GROUP, row % GROUP);
        let gb = self.group_block(g, block);
        let d = f16_to_f32(u16::from_le_bytes([gb[2 * lane], gb[2 * lane + 1]]));
        let m = if self.ty == GgmlType::Q4_1 {
            f16_to_f32(u16::from_le_bytes([gb[16 + 2 * lane], gb[17 + 2 * lane]]))
        } else {
            0.0
        };
        let (hdr, qb) = (header_bytes(self.ty), quant_bytes(self.ty));
        let mut qs = [0u8; 32];
        for (j, q) in qs.iter_mut().enumerate().take(qb) {
            *q = gb[hdr + quant_offset(self.ty, lane, j)];
        }
        (d, m, qs)
    }

    /// Row `row` of an F32/F16 matrix, as stored.
    fn float_row(&self, row: usize) -> &[u8] {
        let row_bytes = self.blocks * QK * self.ty.block_bytes() as usize;
        &self.data[row * row_bytes..][..row_bytes]
    }

    /// Dequantizes one row (used for embedding lookups), with ggml's dequantization rules.
    pub(crate) fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        if is_float(self.ty) {
            crate::quant::dequantize_row(
                self.ty,
                self.float_row(row),
                &mut out[..self.blocks * QK],
            );
            return;
        }
        for b in 0..self.blocks {
            let (d, m, qs) = self.block_of_row(row, b);
            let o = &mut out[b * QK..(b + 1) * QK];
            match self.ty {
                GgmlType::Q8_0 => {
                    for j in 0..QK {
                        o[j] = f32::from(qs[j] as i8) * d;
                    }
                }
                GgmlType::Q4_1 => {
                    for j in 0..16 {
                        o[j] = f32::from(qs[j] & 15) * d + m;
                        o[j + 16] = f32::from(qs[j] >> 4) * d + m;
                    }
                }
                _ => {
                    for j in 0..16 {
                        o[j] = (i32::from(qs[j] & 15) - 8) as f32 * d;
                        o[j + 16] = (i32::from(qs[j] >> 4) - 8) as f32 * d;
                    }
                }
            }
        }
    }

    /// The reference: one row's canonical dot product with quantized activations `x`.
    pub(crate) fn row_dot_scalar(&self, row: usize, x: &[Q8Act]) -> f32 {
        if is_float(self.ty) {
            return self.float_row_dot(row, x);
        }
        let mut acc = 0f32;
        for (b, a) in x.iter().enumerate().take(self.blocks) {
            let (d, m, qs) = self.block_of_row(row, b);
            let sumi: i32 = match self.ty {
                GgmlType::Q8_0 => {
                    (0..QK).map(|j| i32::from(qs[j] as i8) * i32::from(a.qs[j])).sum()
                }
                GgmlType::Q4_1 => (0..16)
                    .map(|j| {
                        i32::from(qs[j] & 15) * i32::from(a.qs[j])
                            + i32::from(qs[j] >> 4) * i32::from(a.qs[j + 16])
                    })
                    .sum(),
                _ => (0..16)
                    .map(|j| {
                        (i32::from(qs[j] & 15) - 8) * i32::from(a.qs[j])
                            + (i32::from(qs[j] >> 4) - 8) * i32::from(a.qs[j + 16])
                    })
                    .sum(),
            };
            acc += (d * a.d) * sumi as f32;
            if self.ty == GgmlType::Q4_1 {
                acc += (m * a.d) * a.sum as f32;
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

    /// Computes the 8 outputs of row group `g` for one token's activations into `out[0..8]`.
    fn group_dot(&self, backend: Backend, g: usize, x: &[Q8Act], out: &mut [f32; GROUP]) {
        // Float matrices have only the scalar kernel; it is the reference, so every backend
        // gives the same bits.
        let backend = if is_float(self.ty) { Backend::Scalar } else { backend };
        match backend {
            Backend::Scalar => {
                for (lane, o) in out.iter_mut().enumerate() {
                    *o = self.row_dot_scalar(g * GROUP + lane, x);
                }
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => {
                let gbb = self.ty.block_bytes() as usize * GROUP;
                let data = &self.data[g * self.blocks * gbb..(g + 1) * self.blocks * gbb];
                // SAFETY: Backend::Avx2 is only constructed when the CPU has AVX2 and F16C
                // (`Backend::detect`/`best_available`, checked again in `matmul`).
                unsafe { avx2::group_dot(self.ty, data, &x[..self.blocks], out) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            Backend::Avx2 => unreachable!("AVX2 backend on a non-x86 target"),
        }
    }
}

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
        let mut tmp = [0f32; GROUP];
        let mut part = 0;
        for global in range {
            while global >= starts[part + 1] {
                part += 1;
            }
            let (w, out_ptr) = outs[part];
            let g = global - starts[part];
            for t in 0..tokens {
                w.group_dot(backend, g, &x[t * w.blocks..(t + 1) * w.blocks], &mut tmp);
                // SAFETY: each group is claimed by exactly one thread, which alone writes its
                // rows for every token; each part's buffer holds tokens × rows floats.
                unsafe {
                    let dst = out_ptr.get().add(t * w.rows + g * GROUP);
                    std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, GROUP);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{
        quantize_activations, quantize_q4_0, quantize_q4_1, quantize_q5_0, quantize_q8_0,
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
        let q8 = QMatrix::from_gguf("q8", GgmlType::Q8_0, rows, cols, &q5_0_as_q8_0(&raw)).unwrap();
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
        for backend in [Backend::Scalar, Backend::best_available()] {
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
        let (rows, cols, tokens) = (64, 160, 3);
        let mut seed = 11;
        let x: Vec<f32> = (0..cols * tokens).map(|_| lcg(&mut seed) * 5.0).collect();
        let mut xq = vec![Q8Act::ZERO; cols / QK * tokens];
        quantize_activations(&x, &mut xq);
        for m in matrices(rows, cols) {
            let mut reference = vec![0f32; rows * tokens];
            matmul(&m, &xq, tokens, &mut reference, Backend::Scalar, &ThreadPool::new(1));
            for backend in [Backend::Scalar, Backend::best_available()] {
                for threads in 1..=4 {
                    let mut out = vec![0f32; rows * tokens];
                    matmul(&m, &xq, tokens, &mut out, backend, &ThreadPool::new(threads));
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&out), bits(&reference), "{:?} {backend:?} {threads}", m.ty);
                }
            }
        }
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
            a.d = f32::from(byte()) / 97.0;
        }
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            let bb = ty.block_bytes() as usize;
            let mut raw: Vec<u8> = (0..rows * cols / QK * bb).map(|_| byte()).collect();
            for block in raw.chunks_exact_mut(bb) {
                // Scales: f16 with exponent bits limited so values stay finite.
                block[1] &= 0xbb;
                if ty == GgmlType::Q4_1 {
                    block[3] &= 0xbb;
                }
            }
            let m = QMatrix::from_gguf("arb", ty, rows, cols, &raw).unwrap();
            let mut reference = vec![0f32; rows * tokens];
            matmul(&m, &xq, tokens, &mut reference, Backend::Scalar, &ThreadPool::new(1));
            let mut fast = vec![0f32; rows * tokens];
            matmul(&m, &xq, tokens, &mut fast, Backend::best_available(), &ThreadPool::new(2));
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&reference), "{ty:?}");
        }
    }
}
