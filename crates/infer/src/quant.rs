//! Block formats, f16 conversion, dequantization and the canonical activation quantizer.
//!
//! GGUF block layouts (ggml `ggml-common.h`, little-endian, 32 elements per block):
//!
//! | type | bytes | layout | value of element j |
//! |---|---|---|---|
//! | Q4_0 | 18 | `d: f16`, `qs: [u8; 16]` | `(q_j − 8)·d` |
//! | Q4_1 | 20 | `d: f16`, `m: f16`, `qs: [u8; 16]` | `q_j·d + m` |
//! | Q8_0 | 34 | `d: f16`, `qs: [i8; 32]` | `q_j·d` |
//!
//! In Q4 blocks byte `qs[j]` holds element `j` in its low nibble and element `j + 16` in its
//! high nibble.

/// Elements per quantization block.
pub const QK: usize = 32;

/// Converts IEEE binary16 bits to f32. Exact: every f16 is an f32.
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exp = u32::from((bits >> 10) & 0x1f);
    let mant = u32::from(bits & 0x3ff);
    let out = match (exp, mant) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal f16: value = mant · 2^-24, exact in f32 (normal there).
            let v = mant as f32 * f32::from_bits(0x3380_0000); // 2^-24
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (mant << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (mant << 13),
    };
    f32::from_bits(out)
}

/// Converts f32 to the nearest IEEE binary16 (round to nearest, ties to even), as hardware
/// `vcvtps2ph`/`fcvt` do; used to write test fixtures.
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if mant != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Subnormal or zero in f16.
        if e < -10 {
            return sign;
        }
        let m = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rem = m & ((1u32 << shift) - 1);
        let mut q = m >> shift;
        if rem > half || (rem == half && q & 1 == 1) {
            q += 1;
        }
        return sign | q as u16;
    }
    let rem = mant & 0x1fff;
    let mut h = ((e as u32) << 10) | (mant >> 13);
    if rem > 0x1000 || (rem == 0x1000 && h & 1 == 1) {
        h += 1; // may carry into the exponent, which is the correct rounding (up to inf)
    }
    sign | h as u16
}

fn le_f16(bytes: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

/// Dequantizes one Q4_0 block (18 bytes) into 32 values.
pub fn dequantize_q4_0(block: &[u8], out: &mut [f32]) {
    let d = le_f16(block, 0);
    for j in 0..16 {
        let q = block[2 + j];
        out[j] = (i32::from(q & 0x0f) - 8) as f32 * d;
        out[j + 16] = (i32::from(q >> 4) - 8) as f32 * d;
    }
}

/// Dequantizes one Q4_1 block (20 bytes) into 32 values: `q·d` rounded, then `+ m` rounded.
pub fn dequantize_q4_1(block: &[u8], out: &mut [f32]) {
    let d = le_f16(block, 0);
    let m = le_f16(block, 2);
    for j in 0..16 {
        let q = block[4 + j];
        out[j] = f32::from(q & 0x0f) * d + m;
        out[j + 16] = f32::from(q >> 4) * d + m;
    }
}

/// Dequantizes one Q8_0 block (34 bytes) into 32 values.
pub fn dequantize_q8_0(block: &[u8], out: &mut [f32]) {
    let d = le_f16(block, 0);
    for j in 0..32 {
        out[j] = f32::from(block[2 + j] as i8) * d;
    }
}

/// Dequantizes a row of `out.len()` elements of type `ty` from `bytes`.
pub fn dequantize_row(ty: crate::GgmlType, bytes: &[u8], out: &mut [f32]) {
    use crate::GgmlType;
    match ty {
        GgmlType::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        GgmlType::Q4_0 => {
            for (o, b) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(18)) {
                dequantize_q4_0(b, o);
            }
        }
        GgmlType::Q4_1 => {
            for (o, b) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(20)) {
                dequantize_q4_1(b, o);
            }
        }
        GgmlType::Q8_0 => {
            for (o, b) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(34)) {
                dequantize_q8_0(b, o);
            }
        }
    }
}

/// ggml's reference Q8_0 quantizer (`quantize_row_q8_0_ref`), for building fixtures.
pub fn quantize_q8_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / QK * 34);
    for b in x.chunks_exact(QK) {
        let amax = b.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        out.extend(b.iter().map(|v| (v * id).round() as i8 as u8));
    }
    out
}

/// ggml's reference Q4_1 quantizer (`quantize_row_q4_1_ref`), for building fixtures.
pub fn quantize_q4_1(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / QK * 20);
    for b in x.chunks_exact(QK) {
        let min = b.iter().fold(f32::INFINITY, |a, &v| a.min(v));
        let max = b.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        out.extend_from_slice(&f32_to_f16(min).to_le_bytes());
        let q = |v: f32| (((v - min) * id + 0.5) as u8).min(15);
        for j in 0..16 {
            out.push(q(b[j]) | (q(b[j + 16]) << 4));
        }
    }
    out
}

/// ggml's reference Q4_0 quantizer (`quantize_row_q4_0_ref`), for building fixtures.
pub fn quantize_q4_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / QK * 18);
    for b in x.chunks_exact(QK) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in b {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        let q = |v: f32| ((v * id + 8.5) as u8).min(15);
        for j in 0..16 {
            out.push(q(b[j]) | (q(b[j + 16]) << 4));
        }
    }
    out
}

/// One 32-element block of activations in the engine's canonical 8-bit form.
///
/// The rule (one for every backend): `amax = max |x_j|`; if `amax == 0` then `d = 0` and all
/// `q_j = 0`; else `d = amax / 127` and `q_j = clamp(round_ties_even(x_j · (127 / amax)),
/// −127, 127)`; `sum = Σ q_j`. `d` stays f32.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(8))]
pub struct Q8Act {
    /// The quantized values.
    pub qs: [i8; QK],
    /// Scale: element j ≈ `qs[j] · d`.
    pub d: f32,
    /// `Σ qs[j]`, exact; needed by the Q4_1 minimum term and the Q4_0 offset.
    pub sum: i32,
}

impl Q8Act {
    /// A zero block.
    pub const ZERO: Self = Self { qs: [0; QK], d: 0.0, sum: 0 };
}

/// `x.round_ties_even()` for |x| < 2²²: adding and subtracting 1.5·2²³ leaves no fraction bits,
/// and IEEE round-to-nearest-even does the rounding. Two plain float ops instead of a libm
/// `rintf` call on CPUs without SSE4.1's `roundss`; the same integer (only the sign of a zero
/// may differ, which the conversion to `i8` drops).
#[inline(always)]
fn round_ties_even_small(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    (x + MAGIC) - MAGIC
}

/// Quantizes `x` (a multiple of 32 long) into `out` with the canonical rule.
pub fn quantize_activations(x: &[f32], out: &mut [Q8Act]) {
    debug_assert_eq!(x.len(), out.len() * QK);
    for (b, o) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let amax = b.iter().fold(0f32, |a, v| a.max(v.abs()));
        if amax == 0.0 {
            *o = Q8Act::ZERO;
            continue;
        }
        let d = amax / 127.0;
        let id = 127.0 / amax;
        let mut sum = 0i32;
        for (q, &v) in o.qs.iter_mut().zip(b) {
            let r = round_ties_even_small(v * id).clamp(-127.0, 127.0) as i8;
            *q = r;
            sum += i32::from(r);
        }
        o.d = d;
        o.sum = sum;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::excessive_precision)]
    use super::*;

    #[test]
    fn f16_round_trips_every_finite_value() {
        for bits in 0u16..=u16::MAX {
            let f = f16_to_f32(bits);
            if f.is_nan() {
                assert!(f16_to_f32(f32_to_f16(f)).is_nan());
            } else {
                assert_eq!(f32_to_f16(f), bits, "bits {bits:#06x} value {f}");
            }
        }
    }

    #[test]
    fn f16_known_values() {
        assert_eq!(f16_to_f32(0x2010), 0.0079345703125);
        assert_eq!(f16_to_f32(0x300F), 0.1268310546875);
        assert_eq!(f16_to_f32(0xB9D8), -0.73046875);
        assert_eq!(f32_to_f16(65520.0), 0x7c00); // rounds to infinity
        assert_eq!(f32_to_f16(1.0 + 1.0 / 2048.0), 0x3c00); // tie to even
    }

    #[test]
    fn activation_quantizer_rounds_ties_to_even_and_sums() {
        let mut x = [0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -3.5;
        x[3] = 0.5;
        let mut q = [Q8Act::ZERO];
        quantize_activations(&x, &mut q);
        assert_eq!(q[0].d, 1.0);
        assert_eq!(&q[0].qs[..4], &[127, 2, -4, 0]);
        assert_eq!(q[0].sum, 127 + 2 - 4);
        quantize_activations(&[0.0; 32], &mut q);
        assert_eq!(q[0], Q8Act::ZERO);
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

    #[test]
    fn reference_quantizers_round_trip_closely() {
        let x: Vec<f32> = (0..64).map(|i| ((i * 37 % 64) as f32 - 32.0) / 16.0).collect();
        let mut y = vec![0f32; 64];
        dequantize_row(crate::GgmlType::Q8_0, &quantize_q8_0(&x), &mut y);
        assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 0.02));
        dequantize_row(crate::GgmlType::Q4_1, &quantize_q4_1(&x), &mut y);
        assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 0.15));
        dequantize_row(crate::GgmlType::Q4_0, &quantize_q4_0(&x), &mut y);
        assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 0.3));
    }
}
