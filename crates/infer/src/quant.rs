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
//! high nibble. [`blocks`] has every layout read here (these and Q5_0, Q5_1 and the k-quants)
//! as a `#[repr(C)]` struct.

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

/// ggml's block layouts (`ggml-common.h`), field for field. Every field is a byte array (an
/// f16 is its two little-endian bytes), so a block has alignment 1 and no padding, and any
/// `size_of` bytes are one: [`blocks`] views a tensor's bytes as a slice of them, no copy, no
/// offsets.
pub mod blocks {
    use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

    /// An f16 as stored: two little-endian bytes.
    pub type F16 = [u8; 2];

    /// Q4_0: `(q − 8)·d`; `qs[j]` holds element `j` (low nibble) and `j + 16` (high nibble).
    #[derive(Debug, FromBytes, Immutable, KnownLayout, Unaligned)]
    #[repr(C)]
    pub struct Q4_0 {
        /// The scale (super-block scale in the k-quants).
        pub d: F16,
        /// 4-bit quants, two per byte.
        pub qs: [u8; 16],
    }

    /// Q4_1: `q·d + m`, nibbles as Q4_0.
    #[derive(Debug, FromBytes, Immutable, KnownLayout, Unaligned)]
    #[repr(C)]
    pub struct Q4_1 {
        /// The scale (super-block scale in the k-quants).
        pub d: F16,
        /// The minimum added to every value.
        pub m: F16,
        /// 4-bit quants, two per byte.
        pub qs: [u8; 16],
    }

    /// Q5_0: `(q − 16)·d`, the fifth bit of element `j` bit `j` of `qh` (u32 LE).
    #[derive(Debug, FromBytes, Immutable, KnownLayout, Unaligned)]
    #[repr(C)]
    pub struct Q5_0 {
        /// The scale (super-block scale in the k-quants).
        pub d: F16,
        /// Fifth bits, element j in bit j (u32 LE).
        pub qh: [u8; 4],
        /// 4-bit quants, two per byte.
        pub qs: [u8; 16],
    }

    /// Q5_1: `q·d + m`, bits as Q5_0.
    #[derive(Debug, FromBytes, Immutable, KnownLayout, Unaligned)]
    #[repr(C)]
    pub struct Q5_1 {
        /// The scale (super-block scale in the k-quants).
        pub d: F16,
        /// The minimum added to every value.
        pub m: F16,
        /// Fifth bits, element j in bit j (u32 LE).
        pub qh: [u8; 4],
        /// 4-bit quants, two per byte.
        pub qs: [u8; 16],
    }

    /// Q8_0: `q·d`.
    #[derive(Debug, FromBytes, Immutable, KnownLayout, Unaligned)]
    #[repr(C)]
    pub struct Q8_0 {
        /// The scale (super-block scale in the k-quants).
        pub d: F16,
        /// 8-bit quants.
        pub qs: [i8; 32],
    }

    /// Q2_K (256 elements): per 16 elements a scale byte (low nibble scale, high nibble min),
    /// 2-bit quants, the super-block's `d` and `dmin` last.
    #[derive(Debug, FromBytes, Immutable, KnownLayout, Unaligned)]
    #[repr(C)]
    pub struct Q2K {
        /// Per 16 elements: scale (low nibble) and min (high nibble).
        pub scales: [u8; 16],
        /// 2-bit quants, four per byte.
        pub qs: [u8; 64],
        /// The scale (super-block scale in the k-quants).
        pub d: F16,
        /// The super-block scale of the sub-block minimums.
        pub dmin: F16,
    }

    /// Q3_K (256 elements): high bits, 2-bit low bits, 16 packed 6-bit scales, `d`.
    #[derive(Debug, FromBytes, Immutable, KnownLayout, Unaligned)]
    #[repr(C)]
    pub struct Q3K {
        /// High (third) bits.
        pub hmask: [u8; 32],
        /// 2-bit quants, four per byte.
        pub qs: [u8; 64],
        /// Packed 6-bit scales (and mins, in Q4_K and Q5_K).
        pub scales: [u8; 12],
        /// The scale (super-block scale in the k-quants).
        pub d: F16,
    }

    /// Q4_K (256 elements): `d`, `dmin`, 8 packed 6-bit scales and mins, 4-bit quants.
    #[derive(Debug, FromBytes, Immutable, KnownLayout, Unaligned)]
    #[repr(C)]
    pub struct Q4K {
        /// The scale (super-block scale in the k-quants).
        pub d: F16,
        /// The super-block scale of the sub-block minimums.
        pub dmin: F16,
        /// Packed 6-bit scales (and mins, in Q4_K and Q5_K).
        pub scales: [u8; 12],
        /// 4-bit quants, two per byte.
        pub qs: [u8; 128],
    }

    /// Q5_K (256 elements): Q4_K's fields with the fifth bits `qh` before the nibbles.
    #[derive(Debug, FromBytes, Immutable, KnownLayout, Unaligned)]
    #[repr(C)]
    pub struct Q5K {
        /// The scale (super-block scale in the k-quants).
        pub d: F16,
        /// The super-block scale of the sub-block minimums.
        pub dmin: F16,
        /// Packed 6-bit scales (and mins, in Q4_K and Q5_K).
        pub scales: [u8; 12],
        /// Fifth bits, one per sub-block in each byte.
        pub qh: [u8; 32],
        /// 4-bit quants, two per byte.
        pub qs: [u8; 128],
    }

    /// Q6_K (256 elements): low 4 bits, high 2 bits, 16 signed 8-bit scales, `d`.
    #[derive(Debug, FromBytes, Immutable, KnownLayout, Unaligned)]
    #[repr(C)]
    pub struct Q6K {
        /// Low 4 bits, two per byte.
        pub ql: [u8; 128],
        /// High 2 bits, four per byte.
        pub qh: [u8; 64],
        /// Signed 8-bit scale per 16 elements.
        pub scales: [i8; 16],
        /// The scale (super-block scale in the k-quants).
        pub d: F16,
    }

    // The sizes GGUF files use (`GgmlType::block_bytes`).
    const _: () = {
        use std::mem::size_of;
        assert!(size_of::<Q4_0>() == 18 && size_of::<Q4_1>() == 20);
        assert!(size_of::<Q5_0>() == 22 && size_of::<Q5_1>() == 24 && size_of::<Q8_0>() == 34);
        assert!(size_of::<Q2K>() == 84 && size_of::<Q3K>() == 110 && size_of::<Q4K>() == 144);
        assert!(size_of::<Q5K>() == 176 && size_of::<Q6K>() == 210);
    };

    /// The whole blocks of `bytes` (a trailing partial block is left out, as `chunks_exact`
    /// does).
    pub fn blocks<B: FromBytes + Immutable + KnownLayout + Unaligned>(bytes: &[u8]) -> &[B] {
        let whole = bytes.len() - bytes.len() % size_of::<B>();
        <[B]>::ref_from_bytes(&bytes[..whole]).expect("whole unaligned blocks")
    }

    /// The f16 value of stored bytes.
    pub fn f32_of(h: F16) -> f32 {
        super::f16_to_f32(u16::from_le_bytes(h))
    }
}

use blocks::{blocks as as_blocks, f32_of};

/// Dequantizes one Q4_0 block into 32 values.
pub fn dequantize_q4_0(block: &blocks::Q4_0, out: &mut [f32]) {
    let d = f32_of(block.d);
    for (j, &q) in block.qs.iter().enumerate() {
        out[j] = (i32::from(q & 0x0f) - 8) as f32 * d;
        out[j + 16] = (i32::from(q >> 4) - 8) as f32 * d;
    }
}

/// Dequantizes one Q4_1 block into 32 values: `q·d` rounded, then `+ m` rounded.
pub fn dequantize_q4_1(block: &blocks::Q4_1, out: &mut [f32]) {
    let (d, m) = (f32_of(block.d), f32_of(block.m));
    for (j, &q) in block.qs.iter().enumerate() {
        out[j] = f32::from(q & 0x0f) * d + m;
        out[j + 16] = f32::from(q >> 4) * d + m;
    }
}

/// The 32 five-bit values (0..=31) of a Q5_0 or Q5_1 block from its fifth bits `qh` (u32 LE)
/// and 16 nibble bytes `qs`, in order: element `j < 16` is the low nibble of `qs[j]`, element
/// `j + 16` its high nibble, and bit `j` of `qh` is element `j`'s fifth bit.
fn q5_values(qh: [u8; 4], qs: &[u8; 16]) -> [u8; QK] {
    let qh = u32::from_le_bytes(qh);
    let mut out = [0u8; QK];
    for j in 0..16 {
        let high = |bit: usize| (((qh >> bit) & 1) as u8) << 4;
        out[j] = (qs[j] & 0x0f) | high(j);
        out[j + 16] = (qs[j] >> 4) | high(j + 16);
    }
    out
}

/// Dequantizes one Q5_1 block into 32 values: `q·d` rounded, then `+ m` rounded.
pub fn dequantize_q5_1(block: &blocks::Q5_1, out: &mut [f32]) {
    let (d, m) = (f32_of(block.d), f32_of(block.m));
    for (o, q) in out.iter_mut().zip(q5_values(block.qh, &block.qs)) {
        *o = f32::from(q) * d + m;
    }
}

/// Q5_1 blocks rewritten as 40-byte blocks of the same values: f32 `d`, f32 `m` (both exact:
/// every f16 is an f32), then the 32 quants as bytes; value `q·d + m`, as Q5_K's sub-blocks.
pub fn q5_1_as_sub_blocks(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 24 * 40);
    for block in as_blocks::<blocks::Q5_1>(raw) {
        out.extend_from_slice(&f32_of(block.d).to_le_bytes());
        out.extend_from_slice(&f32_of(block.m).to_le_bytes());
        out.extend_from_slice(&q5_values(block.qh, &block.qs));
    }
    out
}

/// Dequantizes one Q5_0 block into 32 values: `(q − 16)·d`.
pub fn dequantize_q5_0(block: &blocks::Q5_0, out: &mut [f32]) {
    let d = f32_of(block.d);
    for (o, q) in out.iter_mut().zip(q5_values(block.qh, &block.qs)) {
        *o = (i32::from(q) - 16) as f32 * d;
    }
}

/// Q5_0 blocks rewritten as the Q8_0 blocks of the same values: `(q − 16)·d` is `q8·d` with
/// `q8 = q − 16` in −16..=15 and the same `d`, so every kernel, dequantization and dot product
/// is Q8_0's, exactly (at 34 bytes a block instead of 22).
pub fn q5_0_as_q8_0(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 22 * 34);
    for block in as_blocks::<blocks::Q5_0>(raw) {
        out.extend_from_slice(&block.d);
        out.extend(q5_values(block.qh, &block.qs).iter().map(|&q| (q as i8 - 16) as u8));
    }
    out
}

/// Q4_K's 6-bit scale and min of sub-block `j` from its 12 packed bytes (ggml's
/// `get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Dequantizes one Q4_K super-block into 256 values, as ggml's `dequantize_row_q4_K` does:
/// `d1·q − m1` with `d1 = d·sc`, `m1 = dmin·m`.
pub fn dequantize_q4_k(block: &blocks::Q4K, out: &mut [f32]) {
    let (d, min) = (f32_of(block.d), f32_of(block.dmin));
    for chunk in 0..4 {
        let qs = &block.qs[32 * chunk..32 * chunk + 32];
        let y = &mut out[64 * chunk..64 * chunk + 64];
        let (sc, m) = scale_min_k4(2 * chunk, &block.scales);
        let (d1, m1) = (d * f32::from(sc), min * f32::from(m));
        let (sc, m) = scale_min_k4(2 * chunk + 1, &block.scales);
        let (d2, m2) = (d * f32::from(sc), min * f32::from(m));
        for l in 0..32 {
            y[l] = d1 * f32::from(qs[l] & 0x0f) - m1;
            y[l + 32] = d2 * f32::from(qs[l] >> 4) - m2;
        }
    }
}

/// Q4_K super-blocks rewritten as 32-element blocks of the same values, 24 bytes each: f32
/// `d·sc`, f32 `−dmin·m`, 16 bytes of nibbles (element `j` in the low nibble of byte `j`,
/// element `j + 16` in its high nibble, as Q4_1). Both products are exact in f32 (an f16 times
/// a 6-bit integer), and `q·d1 + (−m1)` is `d1·q − m1`, so every value is ggml's to the bit.
pub fn q4_k_as_sub_blocks(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 144 * 8 * 24);
    for block in as_blocks::<blocks::Q4K>(raw) {
        let (d, min) = (f32_of(block.d), f32_of(block.dmin));
        for sub in 0..8 {
            let (sc, m) = scale_min_k4(sub, &block.scales);
            let qs = &block.qs[32 * (sub / 2)..32 * (sub / 2) + 32];
            let nibble = |l: usize| (qs[l] >> (4 * (sub % 2))) & 0x0f;
            out.extend_from_slice(&(d * f32::from(sc)).to_le_bytes());
            out.extend_from_slice(&(-(min * f32::from(m))).to_le_bytes());
            out.extend((0..16).map(|j| nibble(j) | (nibble(j + 16) << 4)));
        }
    }
    out
}

/// The 5-bit quant (0..=31) of element `l` (0..32) of sub-block `sub` (0..8) of a Q5_K
/// super-block: a nibble of `qs[32·(sub/2) + l]` (low for even sub-blocks) and bit `sub` of
/// `qh[l]` (ggml's `u1`/`u2` masks).
fn q5_k_quant(block: &blocks::Q5K, sub: usize, l: usize) -> u8 {
    let nibble = (block.qs[32 * (sub / 2) + l] >> (4 * (sub % 2))) & 0x0f;
    nibble | (((block.qh[l] >> sub) & 1) << 4)
}

/// Dequantizes one Q5_K super-block into 256 values, as ggml's `dequantize_row_q5_K` does:
/// `d1·q − m1` with `d1 = d·sc`, `m1 = dmin·m`.
pub fn dequantize_q5_k(block: &blocks::Q5K, out: &mut [f32]) {
    let (d, min) = (f32_of(block.d), f32_of(block.dmin));
    for sub in 0..8 {
        let (sc, m) = scale_min_k4(sub, &block.scales);
        let (d1, m1) = (d * f32::from(sc), min * f32::from(m));
        for l in 0..32 {
            out[32 * sub + l] = d1 * f32::from(q5_k_quant(block, sub, l)) - m1;
        }
    }
}

/// Q5_K super-blocks rewritten as 32-element blocks of the same values, 40 bytes each: f32
/// `d·sc`, f32 `−dmin·m` (both exact in f32), then the 32 quants as bytes; `q·d1 + (−m1)` is
/// `d1·q − m1`, so every value is ggml's to the bit.
pub fn q5_k_as_sub_blocks(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 176 * 8 * 40);
    for block in as_blocks::<blocks::Q5K>(raw) {
        let (d, min) = (f32_of(block.d), f32_of(block.dmin));
        for sub in 0..8 {
            let (sc, m) = scale_min_k4(sub, &block.scales);
            out.extend_from_slice(&(d * f32::from(sc)).to_le_bytes());
            out.extend_from_slice(&(-(min * f32::from(m))).to_le_bytes());
            out.extend((0..32).map(|l| q5_k_quant(block, sub, l)));
        }
    }
    out
}

/// The 16 signed 6-bit scales of a Q3_K super-block (`sc − 32`, −32..=31), unpacked from its
/// 12 bytes as ggml's `kmask` shuffle does: scale `i`'s low 4 bits are nibble `i / 8` of byte
/// `i % 8`, its high 2 bits are bits `2·(i / 4)` of byte `8 + i % 4`.
fn q3_k_scales(block: &blocks::Q3K) -> [i8; 16] {
    let packed = &block.scales;
    let mut out = [0i8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let low = (packed[i % 8] >> (4 * (i / 8))) & 0x0f;
        let high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
        *o = (low | (high << 4)) as i8 - 32;
    }
    out
}

/// The 2 bits of element `e` (0..256) in the 64 bytes `qs` of a Q2_K or Q3_K super-block: bits
/// `2j..2j+2` of `qs[32n + l]` for `e = 128n + 32j + l`.
fn two_bits(qs: &[u8; 64], e: usize) -> u8 {
    let (n, j, l) = (e / 128, (e % 128) / 32, e % 32);
    (qs[32 * n + l] >> (2 * j)) & 3
}

/// The 3-bit quant (−4..=3) of element `e` (0..256) of a Q3_K super-block: its [`two_bits`],
/// minus 4 unless bit `4n + j` of `hmask[l]` is set.
fn q3_k_quant(block: &blocks::Q3K, e: usize) -> i8 {
    let (n, j, l) = (e / 128, (e % 128) / 32, e % 32);
    let high = (block.hmask[l] >> (4 * n + j)) & 1;
    two_bits(&block.qs, e) as i8 - if high == 1 { 0 } else { 4 }
}

/// Dequantizes one Q2_K super-block into 256 values, as ggml's `dequantize_row_q2_K` does:
/// `dl·q − ml` with `dl = d·(sc & 15)`, `ml = dmin·(sc >> 4)`, one scale byte per 16 elements.
pub fn dequantize_q2_k(block: &blocks::Q2K, out: &mut [f32]) {
    let (d, min) = (f32_of(block.d), f32_of(block.dmin));
    for (e, y) in out.iter_mut().enumerate().take(256) {
        let sc = block.scales[e / 16];
        let (dl, ml) = (d * f32::from(sc & 15), min * f32::from(sc >> 4));
        *y = dl * f32::from(two_bits(&block.qs, e)) - ml;
    }
}

/// Q2_K super-blocks rewritten as 32-element blocks of the same values, 48 bytes each: f32
/// `d·sc` of the first 16 elements and of the last 16, f32 `−dmin·m` of each, then the 32 quants
/// (0..=3) as bytes. The products are exact in f32 (an f16 times a 4-bit integer), and
/// `q·dl + (−ml)` is `dl·q − ml`.
pub fn q2_k_as_sub_blocks(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 84 * 8 * 48);
    for block in as_blocks::<blocks::Q2K>(raw) {
        let (d, min) = (f32_of(block.d), f32_of(block.dmin));
        for sub in 0..8 {
            let (first, second) = (block.scales[2 * sub], block.scales[2 * sub + 1]);
            for sc in [first, second] {
                out.extend_from_slice(&(d * f32::from(sc & 15)).to_le_bytes());
            }
            for sc in [first, second] {
                out.extend_from_slice(&(-(min * f32::from(sc >> 4))).to_le_bytes());
            }
            out.extend((0..32).map(|j| two_bits(&block.qs, 32 * sub + j)));
        }
    }
    out
}

/// Dequantizes one Q3_K super-block into 256 values, as ggml's `dequantize_row_q3_K` does:
/// `(d·(sc − 32))·q`, one scale per 16 elements.
pub fn dequantize_q3_k(block: &blocks::Q3K, out: &mut [f32]) {
    let d = f32_of(block.d);
    let scales = q3_k_scales(block);
    for (e, y) in out.iter_mut().enumerate().take(256) {
        *y = d * f32::from(scales[e / 16]) * f32::from(q3_k_quant(block, e));
    }
}

/// Q3_K super-blocks rewritten as Q6_K's 32-element blocks (40 bytes): f32 `d·(sc − 32)` of
/// each 16-element half (exact: an f16 times a 6-bit integer), then the 32 quants (−4..=3) as
/// signed bytes.
pub fn q3_k_as_sub_blocks(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 110 * 8 * 40);
    for block in as_blocks::<blocks::Q3K>(raw) {
        let d = f32_of(block.d);
        let scales = q3_k_scales(block);
        for sub in 0..8 {
            for half in 0..2 {
                out.extend_from_slice(&(d * f32::from(scales[2 * sub + half])).to_le_bytes());
            }
            out.extend((0..32).map(|j| q3_k_quant(block, 32 * sub + j) as u8));
        }
    }
    out
}

/// The 6-bit quant (0..=63) of element `e` (0..256) of a Q6_K super-block.
fn q6_k_quant(block: &blocks::Q6K, e: usize) -> u8 {
    let (n, k, l) = (e / 128, (e % 128) / 32, e % 32);
    let low = block.ql[64 * n + l + 32 * (k % 2)] >> (4 * (k / 2)) & 0x0f;
    let high = (block.qh[32 * n + l] >> (2 * k)) & 3;
    low | (high << 4)
}

/// Dequantizes one Q6_K super-block into 256 values, as ggml's `dequantize_row_q6_K` does:
/// `(d·sc)·(q − 32)`, one 8-bit scale per 16 elements.
pub fn dequantize_q6_k(block: &blocks::Q6K, out: &mut [f32]) {
    let d = f32_of(block.d);
    for (e, y) in out.iter_mut().enumerate().take(256) {
        let sc = f32::from(block.scales[e / 16]);
        *y = d * sc * f32::from(q6_k_quant(block, e) as i8 - 32);
    }
}

/// Q6_K super-blocks rewritten as 32-element blocks of the same values, 40 bytes each: f32
/// `d·sc` of the first 16 elements, of the last 16, then the 32 quants `q − 32` as signed
/// bytes. The products are exact in f32 (an f16 times an 8-bit integer).
pub fn q6_k_as_sub_blocks(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 210 * 8 * 40);
    for block in as_blocks::<blocks::Q6K>(raw) {
        let d = f32_of(block.d);
        for sub in 0..8 {
            for half in 0..2 {
                let sc = f32::from(block.scales[2 * sub + half]);
                out.extend_from_slice(&(d * sc).to_le_bytes());
            }
            out.extend((0..32).map(|j| (q6_k_quant(block, 32 * sub + j) as i8 - 32) as u8));
        }
    }
    out
}

/// One super-block of a k-quant with mins (Q4_K, Q5_K) for fixtures: per sub-block the range
/// from min(0, smallest) to the largest value in `levels − 1` steps, 6-bit scales and mins
/// relative to the super-block's largest (not ggml's search, but blocks any reader takes).
/// Returns f16 `d`, f16 `dmin`, the 12 packed scale bytes and the 256 quants.
fn k_quantize_with_mins(sb: &[f32], levels: u8) -> (u16, u16, [u8; 12], [u8; 256]) {
    let top = f32::from(levels - 1);
    let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
    for (j, sub) in sb.chunks_exact(32).enumerate() {
        let lo = sub.iter().fold(0f32, |a, &b| a.min(b));
        let hi = sub.iter().fold(lo, |a, &b| a.max(b));
        scales[j] = (hi - lo) / top;
        mins[j] = -lo;
    }
    let largest = |v: &[f32; 8]| v.iter().fold(0f32, |a, &b| a.max(b));
    let (d16, dmin16) = (f32_to_f16(largest(&scales) / 63.0), f32_to_f16(largest(&mins) / 63.0));
    let (d, dmin) = (f16_to_f32(d16), f16_to_f32(dmin16));
    let six =
        |v: f32, unit: f32| if unit > 0.0 { (v / unit).round().clamp(0.0, 63.0) as u8 } else { 0 };
    let sc: Vec<u8> = scales.iter().map(|&s| six(s, d)).collect();
    let m: Vec<u8> = mins.iter().map(|&v| six(v, dmin)).collect();
    let mut packed = [0u8; 12];
    for j in 0..4 {
        packed[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        packed[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        packed[j + 8] = (sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4);
    }
    let mut quants = [0u8; 256];
    for (j, sub) in sb.chunks_exact(32).enumerate() {
        let (step, offset) = (d * f32::from(sc[j]), dmin * f32::from(m[j]));
        for (l, &v) in sub.iter().enumerate() {
            quants[32 * j + l] =
                if step > 0.0 { ((v + offset) / step).round().clamp(0.0, top) as u8 } else { 0 };
        }
    }
    (d16, dmin16, packed, quants)
}

/// A Q4_K quantizer for fixtures (see [`k_quantize_with_mins`]).
pub fn quantize_q4_k(x: &[f32]) -> Vec<u8> {
    quantize_k_with_mins(x, false)
}

/// A Q5_K quantizer for fixtures (see [`k_quantize_with_mins`]).
pub fn quantize_q5_k(x: &[f32]) -> Vec<u8> {
    quantize_k_with_mins(x, true)
}

/// Q4_K super-blocks (`d`, `dmin`, scales, nibbles), or Q5_K ones (`fifth`: the fifth bits
/// between the scales and the nibbles), of [`k_quantize_with_mins`]'s quants.
fn quantize_k_with_mins(x: &[f32], fifth: bool) -> Vec<u8> {
    let block_bytes = if fifth { 176 } else { 144 };
    let mut out = Vec::with_capacity(x.len() / 256 * block_bytes);
    for sb in x.chunks_exact(256) {
        let (d16, dmin16, packed, quants) = k_quantize_with_mins(sb, if fifth { 32 } else { 16 });
        let (mut qh, mut qs) = ([0u8; 32], [0u8; 128]);
        for (e, &q) in quants.iter().enumerate() {
            let (j, l) = (e / 32, e % 32);
            qs[32 * (j / 2) + l] |= (q & 0x0f) << (4 * (j % 2));
            qh[l] |= (q >> 4) << j;
        }
        out.extend_from_slice(&d16.to_le_bytes());
        out.extend_from_slice(&dmin16.to_le_bytes());
        out.extend_from_slice(&packed);
        if fifth {
            out.extend_from_slice(&qh);
        }
        out.extend_from_slice(&qs);
    }
    out
}

/// A Q2_K quantizer for fixtures: per 16 elements the range from min(0, smallest) to the
/// largest value in 3 steps, 4-bit scales and mins relative to the super-block's largest (not
/// ggml's search, but blocks any Q2_K reader takes).
pub fn quantize_q2_k(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 256 * 84);
    for sb in x.chunks_exact(256) {
        let (mut scales, mut mins) = ([0f32; 16], [0f32; 16]);
        for (i, group) in sb.chunks_exact(16).enumerate() {
            let lo = group.iter().fold(0f32, |a, &b| a.min(b));
            let hi = group.iter().fold(lo, |a, &b| a.max(b));
            scales[i] = (hi - lo) / 3.0;
            mins[i] = -lo;
        }
        let largest = |v: &[f32; 16]| v.iter().fold(0f32, |a, &b| a.max(b));
        let (d16, dmin16) =
            (f32_to_f16(largest(&scales) / 15.0), f32_to_f16(largest(&mins) / 15.0));
        let (d, dmin) = (f16_to_f32(d16), f16_to_f32(dmin16));
        let four = |v: f32, unit: f32| {
            if unit > 0.0 { (v / unit).round().clamp(0.0, 15.0) as u8 } else { 0 }
        };
        let mut block = [0u8; 84];
        for i in 0..16 {
            block[i] = four(scales[i], d) | (four(mins[i], dmin) << 4);
        }
        for (e, &v) in sb.iter().enumerate() {
            let sc = block[e / 16];
            let (step, offset) = (d * f32::from(sc & 15), dmin * f32::from(sc >> 4));
            let q =
                if step > 0.0 { ((v + offset) / step).round().clamp(0.0, 3.0) as u8 } else { 0 };
            let (n, j, l) = (e / 128, (e % 128) / 32, e % 32);
            block[16 + 32 * n + l] |= q << (2 * j);
        }
        block[80..82].copy_from_slice(&d16.to_le_bytes());
        block[82..84].copy_from_slice(&dmin16.to_le_bytes());
        out.extend_from_slice(&block);
    }
    out
}

/// The scales of a symmetric k-quant super-block (Q3_K, Q6_K) for fixtures: per 16 elements the
/// largest magnitude over `levels`, as signed integers in −(limit + 1)..=limit relative to the
/// super-block's largest over `limit`. Returns f16 `d`, its value and the integer scales.
fn k_symmetric_scales(sb: &[f32], levels: f32, limit: f32) -> (u16, f32, Vec<i8>) {
    let scales: Vec<f32> =
        sb.chunks_exact(16).map(|g| g.iter().fold(0f32, |a, &b| a.max(b.abs())) / levels).collect();
    let d16 = f32_to_f16(scales.iter().fold(0f32, |a, &b| a.max(b)) / limit);
    let d = f16_to_f32(d16);
    let sc = scales
        .iter()
        .map(|&s| if d > 0.0 { (s / d).round().clamp(-limit - 1.0, limit) as i8 } else { 0 })
        .collect();
    (d16, d, sc)
}

/// A Q3_K quantizer for fixtures: per 16 elements a scale of the largest magnitude over 4,
/// 6-bit signed scales relative to the super-block's largest (not ggml's search, but blocks any
/// Q3_K reader takes).
pub fn quantize_q3_k(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 256 * 110);
    for sb in x.chunks_exact(256) {
        let (d16, d, sc) = k_symmetric_scales(sb, 4.0, 31.0);
        let mut block = [0u8; 110];
        for (e, &v) in sb.iter().enumerate() {
            let step = d * f32::from(sc[e / 16]);
            let q = if step != 0.0 { (v / step).round().clamp(-4.0, 3.0) as i8 } else { 0 };
            let (n, j, l) = (e / 128, (e % 128) / 32, e % 32);
            let biased = (q + 4) as u8;
            block[32 + 32 * n + l] |= (biased & 3) << (2 * j);
            block[l] |= (biased >> 2) << (4 * n + j);
        }
        for (i, &s) in sc.iter().enumerate() {
            let six = (s + 32) as u8;
            block[96 + i % 8] |= (six & 0x0f) << (4 * (i / 8));
            block[104 + i % 4] |= (six >> 4) << (2 * (i / 4));
        }
        block[108..110].copy_from_slice(&d16.to_le_bytes());
        out.extend_from_slice(&block);
    }
    out
}

/// A Q6_K quantizer for fixtures: per 16 elements a scale of the largest magnitude over 31,
/// 8-bit scales relative to the super-block's largest (not ggml's search, but blocks any Q6_K
/// reader takes).
pub fn quantize_q6_k(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 256 * 210);
    for sb in x.chunks_exact(256) {
        let (d16, d, sc) = k_symmetric_scales(sb, 31.0, 127.0);
        let mut block = [0u8; 210];
        for (e, &v) in sb.iter().enumerate() {
            let step = d * f32::from(sc[e / 16]);
            let q = if step != 0.0 { (v / step).round().clamp(-32.0, 31.0) as i32 + 32 } else { 32 }
                as u8;
            let (n, k, l) = (e / 128, (e % 128) / 32, e % 32);
            block[64 * n + l + 32 * (k % 2)] |= (q & 0x0f) << (4 * (k / 2));
            block[128 + 32 * n + l] |= (q >> 4) << (2 * k);
        }
        for (i, &s) in sc.iter().enumerate() {
            block[192 + i] = s as u8;
        }
        block[208..210].copy_from_slice(&d16.to_le_bytes());
        out.extend_from_slice(&block);
    }
    out
}

/// A bfloat16 widened to f32 (exact).
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// f32 to bfloat16, rounding to nearest even (ggml's `GGML_FP32_TO_BF16`; NaN stays a quiet NaN).
pub fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if x.is_nan() {
        return ((u >> 16) | 64) as u16;
    }
    ((u + (0x7fff + ((u >> 16) & 1))) >> 16) as u16
}

/// Dequantizes one Q8_0 block into 32 values.
pub fn dequantize_q8_0(block: &blocks::Q8_0, out: &mut [f32]) {
    let d = f32_of(block.d);
    for (o, &q) in out.iter_mut().zip(&block.qs) {
        *o = f32::from(q) * d;
    }
}

/// Dequantizes a row of `out.len()` elements of type `ty` from `bytes`.
pub fn dequantize_row(ty: crate::GgmlType, bytes: &[u8], out: &mut [f32]) {
    use crate::GgmlType;
    /// Each block of `bytes` as `B` through `block`, into the next elements of `out`.
    fn each<
        B: zerocopy::FromBytes + zerocopy::Immutable + zerocopy::KnownLayout + zerocopy::Unaligned,
    >(
        bytes: &[u8],
        out: &mut [f32],
        elements: usize,
        block: fn(&B, &mut [f32]),
    ) {
        for (o, b) in out.chunks_exact_mut(elements).zip(as_blocks::<B>(bytes)) {
            block(b, o);
        }
    }
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
        GgmlType::BF16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        GgmlType::Q4_0 => each(bytes, out, QK, dequantize_q4_0),
        GgmlType::Q4_1 => each(bytes, out, QK, dequantize_q4_1),
        GgmlType::Q5_0 => each(bytes, out, QK, dequantize_q5_0),
        GgmlType::Q5_1 => each(bytes, out, QK, dequantize_q5_1),
        GgmlType::Q8_0 => each(bytes, out, QK, dequantize_q8_0),
        GgmlType::Q2_K => each(bytes, out, 256, dequantize_q2_k),
        GgmlType::Q3_K => each(bytes, out, 256, dequantize_q3_k),
        GgmlType::Q4_K => each(bytes, out, 256, dequantize_q4_k),
        GgmlType::Q5_K => each(bytes, out, 256, dequantize_q5_k),
        GgmlType::Q6_K => each(bytes, out, 256, dequantize_q6_k),
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

/// ggml's reference Q5_1 quantizer (`quantize_row_q5_1_ref`), for building fixtures.
pub fn quantize_q5_1(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / QK * 24);
    for b in x.chunks_exact(QK) {
        let min = b.iter().fold(f32::INFINITY, |a, &v| a.min(v));
        let max = b.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let q = |v: f32| (((v - min) * id + 0.5) as u8).min(31);
        let mut qh = 0u32;
        let mut qs = [0u8; 16];
        for j in 0..16 {
            let (q0, q1) = (q(b[j]), q(b[j + 16]));
            qs[j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
            qh |= u32::from(q0 >> 4) << j;
            qh |= u32::from(q1 >> 4) << (j + 16);
        }
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        out.extend_from_slice(&f32_to_f16(min).to_le_bytes());
        out.extend_from_slice(&qh.to_le_bytes());
        out.extend_from_slice(&qs);
    }
    out
}

/// The value of largest magnitude, with its sign (the first one on ties), as ggml's symmetric
/// quantizers pick it.
fn signed_extreme(block: &[f32]) -> f32 {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in block {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// ggml's reference Q5_0 quantizer (`quantize_row_q5_0_ref`), for building fixtures.
pub fn quantize_q5_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / QK * 22);
    for b in x.chunks_exact(QK) {
        let d = signed_extreme(b) / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        // (int8_t)(v·id + 16.5) truncates toward zero; the sum is positive here.
        let q = |v: f32| ((v * id + 16.5) as i8 as u8).min(31);
        let mut qh = 0u32;
        let mut qs = [0u8; 16];
        for j in 0..16 {
            let (q0, q1) = (q(b[j]), q(b[j + 16]));
            qs[j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
            qh |= u32::from(q0 >> 4) << j;
            qh |= u32::from(q1 >> 4) << (j + 16);
        }
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        out.extend_from_slice(&qh.to_le_bytes());
        out.extend_from_slice(&qs);
    }
    out
}

/// ggml's reference Q4_0 quantizer (`quantize_row_q4_0_ref`), for building fixtures.
pub fn quantize_q4_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / QK * 18);
    for b in x.chunks_exact(QK) {
        let d = signed_extreme(b) / -8.0;
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
/// −127, 127)`; `sum = Σ q_j`, `first_half = Σ_{j<16} q_j`. `d` stays f32.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(8))]
pub struct Q8Act {
    /// The quantized values.
    pub qs: [i8; QK],
    /// Scale: element j ≈ `qs[j] · d`.
    pub d: f32,
    /// `Σ qs[j]`, exact; needed by the Q4_1 minimum term and the Q4_0 offset.
    pub sum: i32,
    /// `Σ qs[j]` over `j < 16`, exact; needed by Q2_K's per-half minimum terms (computed once
    /// here, not in every row group's kernel).
    pub first_half: i32,
}

impl Q8Act {
    /// A zero block.
    pub const ZERO: Self = Self { qs: [0; QK], d: 0.0, sum: 0, first_half: 0 };
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
        let (mut sum, mut first_half) = (0i32, 0i32);
        for (j, (q, &v)) in o.qs.iter_mut().zip(b).enumerate() {
            let r = crate::math::round_ties_even_small(v * id).clamp(-127.0, 127.0) as i8;
            *q = r;
            sum += i32::from(r);
            if j == 15 {
                first_half = sum;
            }
        }
        o.d = d;
        o.sum = sum;
        o.first_half = first_half;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::excessive_precision)]
    use super::*;

    #[test]
    fn bf16_round_trips_and_rounds_to_nearest_even() {
        for bits in 0u16..=u16::MAX {
            let f = bf16_to_f32(bits);
            if f.is_nan() {
                assert!(bf16_to_f32(f32_to_bf16(f)).is_nan());
            } else {
                assert_eq!(f32_to_bf16(f), bits, "bits {bits:#06x}");
            }
        }
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even 1.
        assert_eq!(f32_to_bf16(1.0 + 2f32.powi(-8)), f32_to_bf16(1.0));
        assert_eq!(f32_to_bf16(1.0 + 3.0 * 2f32.powi(-8)), f32_to_bf16(1.0 + 2f32.powi(-6)));
    }

    #[test]
    fn q5_0_keeps_every_value_within_half_a_step() {
        let x: Vec<f32> = (0..64).map(|i| ((i * 37 % 64) as f32 - 31.5) / 7.0).collect();
        let blocks = quantize_q5_0(&x);
        assert_eq!(blocks.len(), 2 * 22);
        let mut y = vec![0f32; 64];
        dequantize_row(crate::GgmlType::Q5_0, &blocks, &mut y);
        for (b, (xs, ys)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
            let d = f16_to_f32(u16::from_le_bytes([blocks[22 * b], blocks[22 * b + 1]])).abs();
            // The range is −16·d..=15·d (d signed so that the block's extreme is −16·d): a value
            // beyond 15·d on the other side clips to it, anything else is within half a step,
            // plus what storing d as f16 (2^-11 relative, over up to 16 steps) moves it.
            for (v, w) in xs.iter().zip(ys) {
                let steps = if v.abs() <= 15.0 * d { 0.5 } else { 1.0 };
                let bound = steps * d + 16.0 * d / 1024.0;
                assert!((v - w).abs() <= bound, "{v} vs {w} (d {d})");
            }
        }
        // The block's extreme value is exactly −16·d: it uses the fifth bit.
        let first = &as_blocks::<blocks::Q5_0>(&blocks)[0];
        assert!(q5_values(first.qh, &first.qs).contains(&0));
    }

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
