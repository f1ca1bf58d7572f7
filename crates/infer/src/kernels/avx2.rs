//! The AVX2 and AVX-512 VNNI kernels: 8 rows of one interleaved group in the 8 lanes of a
//! register, for up to 4 tokens per pass over the weights; and the gated FFN's activation
//! (`act(gate) · up`) in 8 lanes, step for step the canonical scalar sequence.
//!
//! Per block, the 8 rows' exact integer sums are formed with `maddubs`/`madd`, or VNNI's
//! `vpdpbusd` (integer, so any order is exact); then the lane-wise float sequence is the scalar
//! one: `acc + (d·dx)·sumi`, then `acc + (m·dx)·sumx` — `_mm256_mul_ps`/`_mm256_add_ps`, never
//! FMA, never a horizontal float add.

use super::Packed;
use crate::math::{
    Activation, EXP_LN2_HI, EXP_LN2_LO, EXP_LOG2E, EXP_MAX, EXP_MIN, EXP_POLY, GELU_COEF_A,
    GELU_SQRT_2_OVER_PI, ROUND_MAGIC,
};
use crate::quant::Q8Act;
use std::arch::x86_64::*;

/// How far ahead of the block being computed weights are prefetched. Decoding one token streams
/// ~100 MB of weights once; the hardware prefetcher alone leaves the loads waiting on DRAM.
const PREFETCH_AHEAD: usize = 2048;

/// Prefetches the 192 bytes `PREFETCH_AHEAD` past `p` (a hint: no fault, even past the end).
#[inline(always)]
fn prefetch(p: *const u8) {
    let ahead = p.wrapping_add(PREFETCH_AHEAD);
    // SAFETY: prefetching is a hint and never faults, whatever the address.
    unsafe {
        _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64).cast());
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(128).cast());
    }
}

/// Computes the 8 outputs of one row group for each of `T` tokens: `x` holds the tokens'
/// activation blocks one token after another, `blocks` each, and `out[t]` gets token `t`'s. Each
/// group-block's weights are loaded (and unpacked) once for all `T` tokens; every token's
/// integer sums and float sequence are the one-token ones, so `T` never changes a bit.
///
/// # Safety
/// The CPU must support AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn group_dot<const T: usize>(
    packed: Packed,
    data: &[u8],
    x: &[Q8Act],
    blocks: usize,
    out: &mut [[f32; 8]],
) {
    // SAFETY: the caller guarantees the features `dispatch` inlines into this function.
    unsafe { dispatch::<T, false>(packed, data, x, blocks, out) }
}

/// [`group_dot`] with AVX-512 VNNI's `vpdpbusd` forming the integer sums (the same sums: they
/// are exact either way).
///
/// # Safety
/// The CPU must support AVX2, F16C, AVX-512F, AVX-512VL and AVX-512 VNNI.
#[target_feature(enable = "avx2,f16c,avx512f,avx512vl,avx512vnni")]
pub(super) unsafe fn group_dot_vnni<const T: usize>(
    packed: Packed,
    data: &[u8],
    x: &[Q8Act],
    blocks: usize,
    out: &mut [[f32; 8]],
) {
    // SAFETY: as in `group_dot`, with VNNI.
    unsafe { dispatch::<T, true>(packed, data, x, blocks, out) }
}

/// The kernels' shared body, inlined into [`group_dot`] or [`group_dot_vnni`] (whose target
/// features its intrinsics need).
///
/// # Safety
/// Called only from those two, on a CPU with their features.
#[inline(always)]
unsafe fn dispatch<const T: usize, const VNNI: bool>(
    packed: Packed,
    data: &[u8],
    x: &[Q8Act],
    blocks: usize,
    out: &mut [[f32; 8]],
) {
    let gbb = packed.group_block_bytes();
    assert!(data.len() >= blocks * gbb && x.len() >= T * blocks && out.len() >= T);
    let p = data.as_ptr();
    // SAFETY: the length checks above bound every group-block and activation block read.
    let acc: [__m256; T] = unsafe {
        match packed {
            Packed::Q4_1 => group_dot_q4::<true, false, T, VNNI>(p, x, blocks),
            Packed::Q4_0 => group_dot_q4::<false, false, T, VNNI>(p, x, blocks),
            Packed::Q4K => group_dot_q4::<true, true, T, VNNI>(p, x, blocks),
            Packed::Q8_0 => group_dot_q8::<false, false, T, VNNI>(p, x, blocks),
            Packed::Q6K => group_dot_q8::<true, false, T, VNNI>(p, x, blocks),
            Packed::Q5 => group_dot_q8::<false, true, T, VNNI>(p, x, blocks),
            Packed::Q2K => group_dot_q8::<true, true, T, VNNI>(p, x, blocks),
            Packed::Float => unreachable!("float matrices run the scalar kernel"),
        }
    };
    for (o, a) in out.iter_mut().zip(acc) {
        // SAFETY: `o` is 8 floats.
        unsafe { _mm256_storeu_ps(o.as_mut_ptr(), a) };
    }
}

/// Q4_1 (`MIN`), Q4_0 or Q4_K (`MIN`, `F32`: f32 scales) group-blocks: `d[8]`, (`m[8]`), then
/// 4 chunks of 32 bytes, chunk `c` holding quant bytes `4c..4c+4` of rows 0..7.
///
/// # Safety
/// AVX2 and F16C (and VNNI with `VNNI`), inlined into a function enabling them; `blocks`
/// group-blocks follow `p` and `x` holds `T · blocks` blocks.
#[inline(always)]
unsafe fn group_dot_q4<const MIN: bool, const F32: bool, const T: usize, const VNNI: bool>(
    p: *const u8,
    x: &[Q8Act],
    blocks: usize,
) -> [__m256; T] {
    let field = if F32 { 32 } else { 16 };
    let header = if MIN { 2 * field } else { field };
    let gbb = header + 128;
    // SAFETY: the caller enables AVX2 (see the function's safety section).
    let (low_mask, ones) = unsafe { (_mm256_set1_epi8(0x0f), _mm256_set1_epi16(1)) };
    let mut acc = [unsafe { _mm256_setzero_ps() }; T];
    for b in 0..blocks {
        // SAFETY: the caller guarantees `blocks` group-blocks of `gbb` bytes after `p`; each
        // `a.qs` is 32 bytes, read 4 at a time below.
        unsafe {
            let gb = p.add(b * gbb);
            prefetch(gb);
            let q = gb.add(header);
            let (mut lo, mut hi) = ([_mm256_setzero_si256(); 4], [_mm256_setzero_si256(); 4]);
            for c in 0..4 {
                let v = _mm256_loadu_si256(q.add(32 * c).cast());
                lo[c] = _mm256_and_si256(v, low_mask);
                hi[c] = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low_mask);
            }
            let load = |at: usize| {
                if F32 {
                    _mm256_loadu_ps(gb.add(at).cast())
                } else {
                    _mm256_cvtph_ps(_mm_loadu_si128(gb.add(at).cast()))
                }
            };
            let d = load(0);
            let m = if MIN { load(field) } else { _mm256_setzero_ps() };
            for (t, acc) in acc.iter_mut().enumerate() {
                let a = &x[t * blocks + b];
                let xq = a.qs.as_ptr();
                let mut sumi = if VNNI {
                    // Each i32 lane accumulates one row's products, 4 per instruction.
                    let mut s32 = _mm256_setzero_si256();
                    for c in 0..4 {
                        let x_lo = _mm256_set1_epi32(xq.add(4 * c).cast::<i32>().read_unaligned());
                        let x_hi =
                            _mm256_set1_epi32(xq.add(16 + 4 * c).cast::<i32>().read_unaligned());
                        s32 = _mm256_dpbusd_epi32(s32, lo[c], x_lo);
                        s32 = _mm256_dpbusd_epi32(s32, hi[c], x_hi);
                    }
                    s32
                } else {
                    // Per chunk, each i16 lane pair is one row's 4 low-nibble and 4 high-nibble
                    // products; 4 chunks sum to at most 4·2·2·15·127 = 30480, inside i16.
                    let mut s16 = _mm256_setzero_si256();
                    for c in 0..4 {
                        let x_lo = _mm256_set1_epi32(xq.add(4 * c).cast::<i32>().read_unaligned());
                        let x_hi =
                            _mm256_set1_epi32(xq.add(16 + 4 * c).cast::<i32>().read_unaligned());
                        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(lo[c], x_lo));
                        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(hi[c], x_hi));
                    }
                    _mm256_madd_epi16(s16, ones)
                };
                if !MIN {
                    sumi = _mm256_sub_epi32(sumi, _mm256_set1_epi32(8 * a.sum));
                }
                let dx = _mm256_set1_ps(a.d);
                let t1 = _mm256_mul_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(sumi));
                *acc = _mm256_add_ps(*acc, t1);
                if MIN {
                    let sx = _mm256_set1_ps(a.sum as f32);
                    let t2 = _mm256_mul_ps(_mm256_mul_ps(m, dx), sx);
                    *acc = _mm256_add_ps(*acc, t2);
                }
            }
        }
    }
    acc
}

/// Q8_0 group-blocks (`d[8]` f16), Q6_K's (`TWO`: `d0[8]`, `d1[8]` f32, one per 16-element
/// half), Q5's (`MIN`: `d[8]`, `m[8]` f32) or Q2_K's (`TWO` and `MIN`: `d0[8]`, `d1[8]`,
/// `m0[8]`, `m1[8]` f32), then 8 chunks of 32 bytes, chunk `c` holding quant bytes `4c..4c+4` of
/// rows 0..7 (chunks 0..4 the first 16-element half, 4..8 the second).
///
/// # Safety
/// As [`group_dot_q4`].
#[inline(always)]
unsafe fn group_dot_q8<const TWO: bool, const MIN: bool, const T: usize, const VNNI: bool>(
    p: *const u8,
    x: &[Q8Act],
    blocks: usize,
) -> [__m256; T] {
    let header = match (TWO, MIN) {
        (true, true) => 128,
        (false, false) => 16,
        _ => 64,
    };
    let gbb = header + 256;
    // SAFETY: the caller enables AVX2 (see the function's safety section).
    let ones = unsafe { _mm256_set1_epi16(1) };
    let mut acc = [unsafe { _mm256_setzero_ps() }; T];
    for b in 0..blocks {
        // SAFETY: as in `group_dot_q4`, with `gbb`-byte group-blocks.
        unsafe {
            let gb = p.add(b * gbb);
            prefetch(gb);
            prefetch(gb.wrapping_add(192));
            let q = gb.add(header);
            // Chunk `c`: bytes `4c..4c+4` of the 8 rows. |w| as unsigned times x with w's sign:
            // exact, and no i16 saturation in `maddubs` because |x| ≤ 127 (pairs ≤ 32512).
            let (mut w, mut magnitude) = ([_mm256_setzero_si256(); 8], [_mm256_setzero_si256(); 8]);
            for c in 0..8 {
                w[c] = _mm256_loadu_si256(q.add(32 * c).cast());
                magnitude[c] = _mm256_abs_epi8(w[c]);
            }
            let (first_scale, second_scale) = if TWO || MIN {
                (_mm256_loadu_ps(gb.cast()), _mm256_loadu_ps(gb.add(32).cast()))
            } else {
                (_mm256_cvtph_ps(_mm_loadu_si128(gb.cast())), _mm256_setzero_ps())
            };
            for (t, acc) in acc.iter_mut().enumerate() {
                let a = &x[t * blocks + b];
                let xq = a.qs.as_ptr();
                // One i32 per row: the products of chunks `range` (4 chunks: a 16-element half).
                let half = |range: std::ops::Range<usize>| {
                    let mut sum = _mm256_setzero_si256();
                    for c in range {
                        let xc = _mm256_set1_epi32(xq.add(4 * c).cast::<i32>().read_unaligned());
                        let signed = _mm256_sign_epi8(xc, w[c]);
                        sum = if VNNI {
                            _mm256_dpbusd_epi32(sum, magnitude[c], signed)
                        } else {
                            let pairs = _mm256_maddubs_epi16(magnitude[c], signed);
                            _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, ones))
                        };
                    }
                    sum
                };
                let (first, second) = (half(0..4), half(4..8));
                let dx = _mm256_set1_ps(a.d);
                if TWO {
                    let t0 =
                        _mm256_mul_ps(_mm256_mul_ps(first_scale, dx), _mm256_cvtepi32_ps(first));
                    *acc = _mm256_add_ps(*acc, t0);
                    let t1 =
                        _mm256_mul_ps(_mm256_mul_ps(second_scale, dx), _mm256_cvtepi32_ps(second));
                    *acc = _mm256_add_ps(*acc, t1);
                    if MIN {
                        for (at, sum) in [(64, a.first_half), (96, a.sum - a.first_half)] {
                            let m = _mm256_loadu_ps(gb.add(at).cast());
                            let sx = _mm256_set1_ps(sum as f32);
                            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(_mm256_mul_ps(m, dx), sx));
                        }
                    }
                } else {
                    let sumi = _mm256_add_epi32(first, second);
                    let t1 =
                        _mm256_mul_ps(_mm256_mul_ps(first_scale, dx), _mm256_cvtepi32_ps(sumi));
                    *acc = _mm256_add_ps(*acc, t1);
                    if MIN {
                        let sx = _mm256_set1_ps(a.sum as f32);
                        let t2 = _mm256_mul_ps(_mm256_mul_ps(second_scale, dx), sx);
                        *acc = _mm256_add_ps(*acc, t2);
                    }
                }
            }
        }
    }
    acc
}

/// `out[i] = act(gate[i]) · up[i]` for `out.len()` (a multiple of 8) elements, 8 lanes at a time
/// by exactly the scalar steps of [`Activation::gated`] (see [`exp8`]).
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn gated(act: Activation, gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(out.len().is_multiple_of(8) && gate.len() >= out.len() && up.len() >= out.len());
    for i in (0..out.len()).step_by(8) {
        // SAFETY: `i + 8 ≤ out.len()` ≤ both inputs' lengths (checked above).
        unsafe {
            let g = _mm256_loadu_ps(gate.as_ptr().add(i));
            let u = _mm256_loadu_ps(up.as_ptr().add(i));
            let one = _mm256_set1_ps(1.0);
            let a = match act {
                // x / (1 + e^−x)
                Activation::Silu => {
                    let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
                    _mm256_div_ps(g, _mm256_add_ps(one, e))
                }
                // z = (√(2/π)·x)·(1 + (a·x)·x); x / (1 + e^(−2·z))
                Activation::Gelu => {
                    let ax = _mm256_mul_ps(_mm256_set1_ps(GELU_COEF_A), g);
                    let inner = _mm256_add_ps(one, _mm256_mul_ps(ax, g));
                    let z =
                        _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_SQRT_2_OVER_PI), g), inner);
                    let e = exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0), z));
                    _mm256_div_ps(g, _mm256_add_ps(one, e))
                }
            };
            _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_mul_ps(a, u));
        }
    }
}

/// `x[i] = exp_f32(x[i] − shift)` for the whole 8-element chunks of `x` (the caller does the
/// rest), by [`exp8`]: the same bits as the scalar function.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn exp_shifted(x: &mut [f32], shift: f32) {
    let whole = x.len() - x.len() % 8;
    for i in (0..whole).step_by(8) {
        // SAFETY: `i + 8 ≤ whole ≤ x.len()`.
        unsafe {
            let p = x.as_mut_ptr().add(i);
            let v = _mm256_sub_ps(_mm256_loadu_ps(p), _mm256_set1_ps(shift));
            _mm256_storeu_ps(p, exp8(v));
        }
    }
}

/// [`crate::math::exp_f32`] in 8 lanes, step for step: the in-range lanes take the scalar
/// sequence (the rounding by the 1.5·2²³ add-subtract, the two-part ln2, the Horner steps, 2ⁿ
/// by exponent bits with 2¹²⁸ as 2¹²⁷·2), then the out-of-range lanes are replaced by `+inf`,
/// `0` or the NaN itself, as the scalar function returns early.
///
/// # Safety
/// AVX2, inlined into a function enabling it.
#[inline(always)]
unsafe fn exp8(x: __m256) -> __m256 {
    // SAFETY: the caller enables AVX2.
    unsafe {
        let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
        let over = _mm256_cmp_ps::<_CMP_GT_OQ>(x, _mm256_set1_ps(EXP_MAX));
        let under = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_MIN));
        // Lanes the scalar function returns early for compute on 0 instead (then replaced).
        let early = _mm256_or_ps(nan, _mm256_or_ps(over, under));
        let xs = _mm256_andnot_ps(early, x);
        let magic = _mm256_set1_ps(ROUND_MAGIC);
        let n = _mm256_sub_ps(
            _mm256_add_ps(_mm256_mul_ps(xs, _mm256_set1_ps(EXP_LOG2E)), magic),
            magic,
        );
        let r = _mm256_sub_ps(
            _mm256_sub_ps(xs, _mm256_mul_ps(n, _mm256_set1_ps(EXP_LN2_HI))),
            _mm256_mul_ps(n, _mm256_set1_ps(EXP_LN2_LO)),
        );
        let mut p = _mm256_set1_ps(EXP_POLY[0]);
        for &c in &EXP_POLY[1..] {
            p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(c));
        }
        // n is a whole number in [−126, 128]: the conversion is exact.
        let ni = _mm256_cvtps_epi32(n);
        let big = _mm256_cmpgt_epi32(ni, _mm256_set1_epi32(127));
        let biased =
            _mm256_add_epi32(_mm256_min_epi32(ni, _mm256_set1_epi32(127)), _mm256_set1_epi32(127));
        let mut y = _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased)));
        y = _mm256_blendv_ps(y, _mm256_mul_ps(y, _mm256_set1_ps(2.0)), _mm256_castsi256_ps(big));
        y = _mm256_blendv_ps(y, _mm256_setzero_ps(), under);
        y = _mm256_blendv_ps(y, _mm256_set1_ps(f32::INFINITY), over);
        _mm256_blendv_ps(y, x, nan)
    }
}
