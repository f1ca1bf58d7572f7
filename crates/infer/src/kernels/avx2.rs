//! The AVX2 kernel: 8 rows of one interleaved group in the 8 lanes of a register.
//!
//! Per block, the 8 rows' exact integer sums are formed with `maddubs`/`madd` and combined with
//! `hadd` (integer, so any order is exact); then the lane-wise float sequence is the scalar
//! one: `acc + (d·dx)·sumi`, then `acc + (m·dx)·sumx` — `_mm256_mul_ps`/`_mm256_add_ps`, never
//! FMA, never a horizontal float add.

use crate::GgmlType;
use crate::quant::Q8Act;
use std::arch::x86_64::*;

/// Computes the 8 outputs of one row group. `data` is the group's `x.len()` group-blocks.
///
/// # Safety
/// The CPU must support AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn group_dot(ty: GgmlType, data: &[u8], x: &[Q8Act], out: &mut [f32; 8]) {
    let gbb = ty.block_bytes() as usize * 8;
    assert!(data.len() >= x.len() * gbb);
    let mut acc = _mm256_setzero_ps();
    let p = data.as_ptr();
    // SAFETY (all loads below): each group-block is `gbb` bytes inside `data`, checked above;
    // the loads are unaligned loads of at most 32 bytes within it.
    unsafe {
        match ty {
            GgmlType::Q4_1 | GgmlType::Q4_0 => {
                let low_mask = _mm256_set1_epi8(0x0f);
                let ones = _mm256_set1_epi16(1);
                let header = if ty == GgmlType::Q4_1 { 32 } else { 16 };
                for (b, a) in x.iter().enumerate() {
                    let gb = p.add(b * gbb);
                    let xv = _mm256_loadu_si256(a.qs.as_ptr().cast());
                    let x_lo = _mm256_permute2x128_si256::<0x00>(xv, xv);
                    let x_hi = _mm256_permute2x128_si256::<0x11>(xv, xv);
                    let q = gb.add(header);
                    // A macro, not a closure, so the intrinsics inline with this function's
                    // target features.
                    macro_rules! pair {
                        ($k:expr) => {{
                            let v = _mm256_loadu_si256(q.add(32 * $k).cast());
                            let lo = _mm256_and_si256(v, low_mask);
                            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low_mask);
                            let s16 = _mm256_add_epi16(
                                _mm256_maddubs_epi16(lo, x_lo),
                                _mm256_maddubs_epi16(hi, x_hi),
                            );
                            _mm256_madd_epi16(s16, ones)
                        }};
                    }
                    // Slots hold rows (0,4), (1,5), (2,6), (3,7): two hadd levels give rows 0..7.
                    let h01 = _mm256_hadd_epi32(pair!(0), pair!(1));
                    let h23 = _mm256_hadd_epi32(pair!(2), pair!(3));
                    let mut sumi = _mm256_hadd_epi32(h01, h23);
                    if ty == GgmlType::Q4_0 {
                        sumi = _mm256_sub_epi32(sumi, _mm256_set1_epi32(8 * a.sum));
                    }
                    let dx = _mm256_set1_ps(a.d);
                    let d = _mm256_cvtph_ps(_mm_loadu_si128(gb.cast()));
                    let t1 = _mm256_mul_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(sumi));
                    acc = _mm256_add_ps(acc, t1);
                    if ty == GgmlType::Q4_1 {
                        let m = _mm256_cvtph_ps(_mm_loadu_si128(gb.add(16).cast()));
                        let sx = _mm256_set1_ps(a.sum as f32);
                        let t2 = _mm256_mul_ps(_mm256_mul_ps(m, dx), sx);
                        acc = _mm256_add_ps(acc, t2);
                    }
                }
            }
            GgmlType::Q8_0 => {
                let ones = _mm256_set1_epi16(1);
                for (b, a) in x.iter().enumerate() {
                    let gb = p.add(b * gbb);
                    let xv = _mm256_loadu_si256(a.qs.as_ptr().cast());
                    let q = gb.add(16);
                    macro_rules! row {
                        ($r:expr) => {{
                            let w = _mm256_loadu_si256(q.add(32 * $r).cast());
                            // |w| as unsigned times x with w's sign: exact, and no i16
                            // saturation because |x| ≤ 127 (pairs ≤ 2·128·127 = 32512).
                            let prod =
                                _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(xv, w));
                            _mm256_madd_epi16(prod, ones)
                        }};
                    }
                    let h01 = _mm256_hadd_epi32(row!(0), row!(1));
                    let h23 = _mm256_hadd_epi32(row!(2), row!(3));
                    let h45 = _mm256_hadd_epi32(row!(4), row!(5));
                    let h67 = _mm256_hadd_epi32(row!(6), row!(7));
                    let h0123 = _mm256_hadd_epi32(h01, h23);
                    let h4567 = _mm256_hadd_epi32(h45, h67);
                    let sumi = _mm256_add_epi32(
                        _mm256_permute2x128_si256::<0x20>(h0123, h4567),
                        _mm256_permute2x128_si256::<0x31>(h0123, h4567),
                    );
                    let dx = _mm256_set1_ps(a.d);
                    let d = _mm256_cvtph_ps(_mm_loadu_si128(gb.cast()));
                    let t1 = _mm256_mul_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(sumi));
                    acc = _mm256_add_ps(acc, t1);
                }
            }
            GgmlType::F32 | GgmlType::F16 => unreachable!("QMatrix holds only quantized types"),
        }
        _mm256_storeu_ps(out.as_mut_ptr(), acc);
    }
}
