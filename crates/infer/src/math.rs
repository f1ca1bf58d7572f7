//! Canonical transcendentals and reductions, built only from IEEE `+ − × ÷ √` and bit
//! manipulation, so every platform computes the same bits (no libm, no FMA, no estimates).
//!
//! The exact operation sequences here are part of the `gguf/1` numerics: changing any of
//! them changes logits and needs a new driver version.

// Constants are written with all the digits of their sources (fdlibm) so they can be checked.
#![allow(clippy::excessive_precision)]

/// `x.round_ties_even()` for |x| < 2²²: adding and subtracting 1.5·2²³ leaves no fraction bits,
/// and IEEE round-to-nearest-even does the rounding. Two plain float ops instead of a libm
/// `rintf` call on CPUs without SSE4.1's `roundss`; the same integer (only the sign of a zero
/// may differ).
#[inline(always)]
pub(crate) fn round_ties_even_small(x: f32) -> f32 {
    (x + ROUND_MAGIC) - ROUND_MAGIC
}

/// 1.5 · 2²³, the constant of [`round_ties_even_small`].
pub(crate) const ROUND_MAGIC: f32 = 12_582_912.0;

/// `log2 e`, the factor that splits `x` as `n·ln2 + r` in [`exp_f32`].
pub(crate) const EXP_LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln2 = `EXP_LN2_HI + EXP_LN2_LO`; the high part has 9 significant bits so `n·EXP_LN2_HI` is
/// exact for |n| ≤ 2^15.
pub(crate) const EXP_LN2_HI: f32 = 0.693_359_4;
pub(crate) const EXP_LN2_LO: f32 = -2.121_944_4e-4;
/// Above this [`exp_f32`] is `+inf`.
pub(crate) const EXP_MAX: f32 = 88.722_83;
/// Below this (where the result would be subnormal) [`exp_f32`] is `0`.
pub(crate) const EXP_MIN: f32 = -87.336_54;
/// The Taylor coefficients of `e^r`, highest degree first: 1/7!, 1/6!, …, 1/1!, 1/0!.
pub(crate) const EXP_POLY: [f32; 8] =
    [1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0];

/// `e^x` for f32, canonical.
///
/// `x` is split as `n·ln2 + r` with `n = round_ties_even(x·log2 e)` and a two-part (Cody–Waite)
/// `ln2`, `e^r` is a degree-7 Taylor polynomial in Horner form, and `2^n` is applied by exponent
/// bits. Inputs below −87.33654 (where the result would be subnormal) give `0`; above 88.72283
/// give `+inf`; NaN gives NaN. (The AVX2 kernels' 8-lane copy takes exactly these steps.)
pub fn exp_f32(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x > EXP_MAX {
        return f32::INFINITY;
    }
    if x < EXP_MIN {
        return 0.0;
    }
    // |x·log2 e| < 129 here. The fast rounding may give +0 where `round_ties_even` gives −0
    // (x in (−0.35, 0)); then `n·LN2_*` is ±0, `x − ±0` is `x` (for x = −0, r is ∓0, and the
    // polynomial's first product p·r is a zero added to a non-zero): the same result.
    let n = round_ties_even_small(x * EXP_LOG2E);
    let r = (x - n * EXP_LN2_HI) - n * EXP_LN2_LO;
    // 1 + r + r²/2! + … + r⁷/7!, Horner, each step one mul then one add.
    let mut p = EXP_POLY[0];
    for c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    let n = n as i32;
    // 2^n with n in [-126, 128]; 2^128 is not an f32, so apply it as 2^127 · 2.
    if n > 127 {
        p * f32::from_bits(((127 + 127) as u32) << 23) * 2.0
    } else {
        p * f32::from_bits(((n + 127) as u32) << 23)
    }
}

/// SiLU, `x / (1 + e^−x)`, canonical. For very negative `x` the exponential overflows to
/// infinity and the result is `−0`, as IEEE division defines.
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp_f32(-x))
}

/// `√(2/π)` and the cubic coefficient of ggml's tanh-approximated GELU.
pub(crate) const GELU_SQRT_2_OVER_PI: f32 = 0.797_884_6;
pub(crate) const GELU_COEF_A: f32 = 0.044_715;

/// The tanh-approximated GELU of ggml's `ggml_gelu_f32`,
/// `0.5·x·(1 + tanh(√(2/π)·x·(1 + 0.044715·x²)))`, computed as the equal `x / (1 + e^{−2z})`
/// (`z` the tanh's argument) with the canonical `exp_f32`: the same on every machine, and without
/// the cancellation of `1 + tanh` for negative `x`. (ggml's tanh comes from the C library or an
/// f16 table, so the engines agree closely but not bit for bit.)
pub fn gelu(x: f32) -> f32 {
    let z = GELU_SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x);
    x / (1.0 + exp_f32(-2.0 * z))
}

/// The gate of a gated FFN: `act(gate) · up` per element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    /// SwiGLU (Llama, Qwen 2).
    Silu,
    /// GeGLU with the tanh GELU (Gemma 3).
    Gelu,
}

impl Activation {
    /// `act(g) · u`, canonical.
    pub(crate) fn gated(self, g: f32, u: f32) -> f32 {
        match self {
            Self::Silu => silu(g) * u,
            Self::Gelu => gelu(g) * u,
        }
    }
}

/// Sum of `x` in the canonical 8-stripe shape: stripe `k` adds the elements with index ≡ k
/// (mod 8) in ascending order, then `((s0+s1)+(s2+s3)) + ((s4+s5)+(s6+s7))`. Maps one to one
/// onto an 8-lane register, two 4-lane registers, or 8 scalar accumulators.
pub fn sum_striped(x: &[f32]) -> f32 {
    let mut s = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            s[k] += c[k];
        }
    }
    for (k, &v) in chunks.remainder().iter().enumerate() {
        s[k] += v;
    }
    tree8(s)
}

/// Sum of squares of `x` in the canonical 8-stripe shape (each square rounded, then added).
pub fn sum_squares_striped(x: &[f32]) -> f32 {
    let mut s = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            s[k] += c[k] * c[k];
        }
    }
    for (k, &v) in chunks.remainder().iter().enumerate() {
        s[k] += v * v;
    }
    tree8(s)
}

/// Dot product of `a` and `b` in the canonical 8-stripe shape.
pub fn dot_striped(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut s = [0f32; 8];
    // Whole chunks carry no bounds checks, so the 8 stripes become SIMD lanes (the same
    // operations in the same order per stripe).
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for k in 0..8 {
            s[k] += x[k] * y[k];
        }
    }
    for (k, (x, y)) in ar.iter().zip(br).enumerate() {
        s[k] += x * y;
    }
    tree8(s)
}

/// The fixed combine of 8 stripes.
#[inline(always)]
pub fn tree8(s: [f32; 8]) -> f32 {
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

/// Natural logarithm for f64, canonical: `x = 2^k·m` with `m` in [√½, √2), then
/// `ln m = 2·atanh(s)` with `s = (m−1)/(m+1)` by its odd series. Only for positive finite `x`.
pub fn ln_f64(x: f64) -> f64 {
    debug_assert!(x > 0.0 && x.is_finite());
    let bits = x.to_bits();
    let mut k = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0;
        k += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    // Σ_{i=0}^{13} s^(2i+1)/(2i+1), Horner in s², highest term first.
    let mut p = 1.0 / 27.0;
    let mut i = 12i32;
    while i >= 0 {
        p = p * s2 + 1.0 / f64::from(2 * i + 1);
        i -= 1;
    }
    let ln_m = 2.0 * s * p;
    (k as f64) * std::f64::consts::LN_2 + ln_m
}

/// `e^x` for f64, canonical, for |x| < 700: `x = n·ln2 + r`, degree-13 Taylor polynomial.
pub fn exp_f64(x: f64) -> f64 {
    debug_assert!(x.abs() < 700.0);
    // Two-part ln2 (fdlibm's ln2_hi has its low 32 bits zero, so n·LN2_HI is exact).
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-01;
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    let n = (x * std::f64::consts::LOG2_E).round_ties_even();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0;
    let mut i = 13;
    while i >= 1 {
        p = p * r / f64::from(i) + 1.0;
        i -= 1;
    }
    p * f64::from_bits(((n as i64 + 1023) as u64) << 52)
}

/// `(sin x, cos x)` for f64, canonical, for |x| < 2^19: reduce by a three-part π/2 (fdlibm's
/// split, so `k·PIO2_1` and `k·PIO2_2` are exact), then Taylor series on |r| ≤ π/4.
pub fn sin_cos_f64(x: f64) -> (f64, f64) {
    const PIO2_1: f64 = 1.570_796_326_734_125_614_17e+00;
    const PIO2_2: f64 = 6.077_100_506_303_965_976_60e-11;
    const PIO2_3: f64 = 2.022_266_248_711_166_455_80e-21;
    let k = (x * std::f64::consts::FRAC_2_PI).round_ties_even();
    let r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3;
    let r2 = r * r;
    // sin r = r·(1 − r²/(2·3)·(1 − r²/(4·5)·(1 − …))), cos r = 1 − r²/(1·2)·(1 − r²/(3·4)·(…)),
    // nine levels deep (to r¹⁹ and r¹⁸), innermost first.
    let mut s = 1.0;
    let mut c = 1.0;
    for i in (1..=9).rev() {
        s = 1.0 - r2 / f64::from((2 * i) * (2 * i + 1)) * s;
        c = 1.0 - r2 / f64::from((2 * i - 1) * (2 * i)) * c;
    }
    let sin_r = r * s;
    let cos_r = c;
    match (k as i64).rem_euclid(4) {
        0 => (sin_r, cos_r),
        1 => (cos_r, -sin_r),
        2 => (-sin_r, -cos_r),
        _ => (-cos_r, sin_r),
    }
}

/// RoPE frequencies `base^(−2i/rot_dims)` for `i < rot_dims/2`, in f64 by the canonical `exp`
/// and `ln`.
pub fn rope_inv_freq(rot_dims: usize, base: f32) -> Vec<f64> {
    let ln_base = ln_f64(f64::from(base));
    (0..rot_dims / 2).map(|i| exp_f64(-(2.0 * i as f64 / rot_dims as f64) * ln_base)).collect()
}

/// Appends position `pos`'s RoPE row to `cos` and `sin`: `cos/sin(pos · inv_freq[i])`, computed
/// in f64 by the canonical functions and rounded once to f32.
pub fn push_rope_row(pos: usize, inv_freq: &[f64], cos: &mut Vec<f32>, sin: &mut Vec<f32>) {
    for &f in inv_freq {
        let (s, c) = sin_cos_f64(pos as f64 * f);
        cos.push(c as f32);
        sin.push(s as f32);
    }
}

/// The RoPE rotation table for positions `0..positions`, laid out `[p][i]`.
pub fn rope_table(positions: usize, rot_dims: usize, base: f32) -> (Vec<f32>, Vec<f32>) {
    let inv_freq = rope_inv_freq(rot_dims, base);
    let (mut cos, mut sin) = (Vec::new(), Vec::new());
    for p in 0..positions {
        push_rope_row(p, &inv_freq, &mut cos, &mut sin);
    }
    (cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_follows_the_tanh_formula() {
        let mut worst = 0f64;
        let mut x = -12.0f32;
        while x < 12.0 {
            let v = f64::from(x);
            let z = 0.797_884_560_802_865_4 * v * (1.0 + 0.044_715 * v * v);
            let want = 0.5 * v * (1.0 + z.tanh());
            worst = worst.max((f64::from(gelu(x)) - want).abs() / want.abs().max(1e-3));
            x += 0.0137;
        }
        assert!(worst < 1e-5, "worst relative error {worst}");
        assert_eq!(gelu(0.0), 0.0);
        assert_eq!(gelu(100.0), 100.0);
        assert_eq!(gelu(-100.0), 0.0);
    }

    #[test]
    fn fast_rounding_equals_round_ties_even() {
        let mut x = -130.0f32;
        while x <= 130.0 {
            assert_eq!(round_ties_even_small(x) as i8, x.round_ties_even() as i8, "{x}");
            assert_eq!(round_ties_even_small(x), x.round_ties_even(), "{x}");
            x += 0.015625 / 4.0;
        }
        for x in [0.5f32, 1.5, 2.5, -0.5, -2.5, 126.5, -126.5, 0.49999997, 1e-30] {
            assert_eq!(round_ties_even_small(x), x.round_ties_even(), "{x}");
        }
    }

    /// `exp_f32` with the fast rounding gives, bit for bit, what it gave with
    /// `round_ties_even` (the sequence the committed conformance vectors were made with), on
    /// every 256th f32 from −88 to 89 and every 997th below 0.5 in magnitude.
    #[test]
    fn exp_with_fast_rounding_is_the_round_ties_even_one() {
        fn with_rint(x: f32) -> f32 {
            if x.is_nan() || !(-87.336_54..=88.722_83).contains(&x) {
                return exp_f32(x);
            }
            let n = (x * std::f32::consts::LOG2_E).round_ties_even();
            let r = (x - n * 0.693_359_4) - n * -2.121_944_4e-4;
            let mut p = 1.0 / 5040.0f32;
            for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
                p = p * r + c;
            }
            let n = n as i32;
            if n > 127 {
                p * f32::from_bits(((127 + 127) as u32) << 23) * 2.0
            } else {
                p * f32::from_bits(((n + 127) as u32) << 23)
            }
        }
        let check = |x: f32| assert_eq!(exp_f32(x).to_bits(), with_rint(x).to_bits(), "{x}");
        // Up to 89.0 and down to −88.0 (0x42b2_0000, 0xc2b0_0000), then below 0.5 in magnitude.
        let wide = (0u32..0x42b2_0000).chain(0x8000_0000..0xc2b0_0000).step_by(256);
        let near_zero = (0u32..0x3f00_0000).chain(0x8000_0000..0xbf00_0000).step_by(997);
        for bits in wide.chain(near_zero) {
            check(f32::from_bits(bits));
        }
    }

    #[test]
    fn exp_is_accurate_to_a_few_ulp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = f64::from(exp_f32(x));
            let want = f64::from(x).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.01173;
        }
        assert!(worst < 4.0 * f64::from(f32::EPSILON), "worst relative error {worst}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(88.72).is_finite());
    }

    #[test]
    fn f64_functions_are_accurate() {
        for &x in &[1e-3, 0.5, 1.0, 2.0, 10.0, 100000.0] {
            assert!((ln_f64(x) - x.ln()).abs() < 1e-14 * x.ln().abs().max(1.0), "ln {x}");
        }
        for &x in &[-30.0, -1.0, 0.0, 0.3, 5.0] {
            assert!((exp_f64(x) / x.exp() - 1.0).abs() < 1e-14, "exp {x}");
        }
        let mut x = -100.0;
        while x < 9000.0 {
            let (s, c) = sin_cos_f64(x);
            assert!((s - x.sin()).abs() < 1e-13 && (c - x.cos()).abs() < 1e-13, "sincos {x}");
            x += 0.731;
        }
    }

    #[test]
    fn silu_matches_definition_and_saturates() {
        assert_eq!(silu(0.0), 0.0);
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
        assert_eq!(silu(-200.0), 0.0);
        assert_eq!(silu(200.0), 200.0);
    }

    #[test]
    fn striped_sums_follow_the_fixed_shape() {
        let x: Vec<f32> = (0..19).map(|i| 1.0 + i as f32 * 1e-7).collect();
        let mut s = [0f32; 8];
        for (i, v) in x.iter().enumerate() {
            s[i % 8] += v;
        }
        assert_eq!(sum_striped(&x).to_bits(), tree8(s).to_bits());
        assert_eq!(dot_striped(&x, &x).to_bits(), sum_squares_striped(&x).to_bits());
    }
}
