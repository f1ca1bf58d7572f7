//! The tensor element types: ggml's ids, block sizes and names.

/// Tensor element types this engine implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16: the top 16 bits of an IEEE binary32.
    BF16,
    /// 32-element blocks: f16 scale `d`, 16 bytes of nibbles; value = (q − 8)·d.
    Q4_0,
    /// 32-element blocks: f16 scale `d`, f16 minimum `m`, 16 bytes of nibbles; value = q·d + m.
    Q4_1,
    /// 32-element blocks: f16 scale `d`, 32 fifth bits (u32 LE), 16 bytes of nibbles; value =
    /// (q − 16)·d.
    Q5_0,
    /// 32-element blocks: f16 scale `d`, f16 minimum `m`, 32 fifth bits (u32 LE), 16 bytes of
    /// nibbles; value = q·d + m.
    Q5_1,
    /// 32-element blocks: f16 scale `d`, 32 signed bytes; value = q·d.
    Q8_0,
    /// 256-element super-blocks: 16 bytes of 4-bit scales and mins (one each per 16 elements),
    /// 64 bytes of 2-bit quants, f16 `d`, f16 `dmin`; value = d·sc·q − dmin·m.
    #[allow(non_camel_case_types)] // ggml's name
    Q2_K,
    /// 256-element super-blocks: 32 bytes of high bits, 64 bytes of 2-bit pairs, 12 bytes of
    /// 6-bit scales (one per 16 elements, offset by 32), f16 `d`; value = d·(sc − 32)·q with q in
    /// −4..=3.
    #[allow(non_camel_case_types)] // ggml's name
    Q3_K,
    /// 256-element super-blocks: f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and mins for 8
    /// sub-blocks of 32, 128 bytes of nibbles; value = d·sc·q − dmin·m.
    #[allow(non_camel_case_types)] // ggml's name
    Q4_K,
    /// 256-element super-blocks: f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and mins for 8
    /// sub-blocks of 32, 32 bytes of fifth bits, 128 bytes of nibbles; value = d·sc·q − dmin·m.
    #[allow(non_camel_case_types)] // ggml's name
    Q5_K,
    /// 256-element super-blocks: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16
    /// signed 8-bit scales (one per 16 elements), f16 `d`; value = d·sc·(q − 32).
    #[allow(non_camel_case_types)] // ggml's name
    Q6_K,
}

impl GgmlType {
    /// The ggml type id as stored in GGUF.
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q2_K => 10,
            Self::Q3_K => 11,
            Self::Q4_K => 12,
            Self::Q5_K => 13,
            Self::Q6_K => 14,
            Self::BF16 => 30,
        }
    }

    /// The supported type with ggml id `id`, if any.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            10 => Self::Q2_K,
            11 => Self::Q3_K,
            12 => Self::Q4_K,
            13 => Self::Q5_K,
            14 => Self::Q6_K,
            30 => Self::BF16,
            _ => return None,
        })
    }

    /// Elements per block (1 for plain floats).
    pub fn block_elements(self) -> u64 {
        match self {
            Self::F32 | Self::F16 | Self::BF16 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
            Self::Q2_K | Self::Q3_K | Self::Q4_K | Self::Q5_K | Self::Q6_K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> u64 {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q2_K => 84,
            Self::Q3_K => 110,
            Self::Q4_K => 144,
            Self::Q5_K => 176,
            Self::Q6_K => 210,
        }
    }

    /// The conventional name of this type.
    pub fn name(self) -> &'static str {
        ggml_type_name(self.id())
    }
}

/// The conventional name of any ggml type id, for error messages.
pub fn ggml_type_name(id: u32) -> &'static str {
    match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16..=23 => "IQ",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        _ => "unknown",
    }
}
