//! The GGUF reader against the real SmolLM2 file: metadata and known-answer values from
//! `reference/deterministic-inference.md` §3.

// The expected values are written exactly as the reference document gives them.
#![allow(clippy::excessive_precision)]

use crate::common::real_model;
use aik_infer::{GgmlType, Gguf, quant};

#[test]
fn real_model_metadata_matches_the_reference() {
    let Some(path) = real_model() else { return };
    let g = Gguf::open(&path).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.tensors().len(), 272);
    assert_eq!(g.metadata_entries().len(), 33);
    assert_eq!(g.data_offset(), 1_785_664);
    assert_eq!(g.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(g.get_u64("llama.block_count").unwrap(), 30);
    assert_eq!(g.get_u64("llama.embedding_length").unwrap(), 576);
    assert_eq!(g.get_u64("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(g.get_f32("llama.rope.freq_base").unwrap(), 100_000.0);
    assert_eq!(g.get_f32("llama.attention.layer_norm_rms_epsilon").unwrap(), 1e-5);
    assert_eq!(g.get_str("tokenizer.ggml.pre").unwrap(), "smollm");
    assert_eq!(g.get_str_array("tokenizer.ggml.tokens").unwrap().len(), 49152);
    assert_eq!(g.get_str_array("tokenizer.ggml.merges").unwrap().len(), 48_900);
    let types = g.get_i64_array("tokenizer.ggml.token_type").unwrap();
    assert_eq!(types.iter().filter(|&&t| t == 3).count(), 17);
    assert_eq!(g.get_u64("tokenizer.ggml.eos_token_id").unwrap(), 2);
    assert!(!g.get_bool("tokenizer.ggml.add_bos_token").unwrap());
    let count = |ty| g.tensors().iter().filter(|t| t.ggml_type == ty).count();
    assert_eq!((count(GgmlType::Q4_1), count(GgmlType::Q8_0), count(GgmlType::F32)), (210, 1, 61));
    assert!(g.tensor("output.weight").is_none());
}

#[test]
fn real_model_known_answer_values() {
    let Some(path) = real_model() else { return };
    let g = Gguf::open(&path).unwrap();

    let embd = g.tensor("token_embd.weight").unwrap();
    assert_eq!((embd.dims.as_slice(), embd.ggml_type), (&[576u64, 49152][..], GgmlType::Q8_0));
    let bytes = g.tensor_data(embd).unwrap();
    let row1 = &bytes[18 * 34..19 * 34];
    assert_eq!(u16::from_le_bytes([row1[0], row1[1]]), 0x2010);
    let qs: Vec<i8> = row1[2..10].iter().map(|&b| b as i8).collect();
    assert_eq!(qs, [-3, -2, -5, 2, -14, -1, -8, 9]);
    let mut out = [0f32; 32];
    quant::dequantize_q8_0(&quant::blocks::blocks(row1)[0], &mut out);
    assert_eq!(out[0], -3.0 * 0.0079345703125);

    let q = g.tensor("blk.0.attn_q.weight").unwrap();
    let bytes = g.tensor_data(q).unwrap();
    let block = &bytes[..20];
    assert_eq!(u16::from_le_bytes([block[0], block[1]]), 0x300F);
    assert_eq!(u16::from_le_bytes([block[2], block[3]]), 0xB9D8);
    assert_eq!(&block[4..8], &[69, 135, 101, 64]);
    quant::dequantize_q4_1(&quant::blocks::blocks(block)[0], &mut out);
    assert_eq!(out[0], -0.0963134765625);
    assert_eq!(out[16], 4.0 * 0.1268310546875 + -0.73046875);

    let norm = |name: &str| {
        let t = g.tensor(name).unwrap();
        let b = g.tensor_data(t).unwrap();
        (0..4)
            .map(|i| f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        norm("blk.0.attn_norm.weight"),
        [0.01397705078125, 0.0238037109375, -0.019775390625, -0.0302734375]
    );
    assert_eq!(norm("output_norm.weight"), [1.7578125, 1.8203125, 1.78125, 1.6015625]);
}
