//! Hostile GGUF input: random bytes, truncations and mutations of real headers must give
//! errors, never panics, and never more memory than the bound of `gguf_alloc::allowed`.
//! Property tests with a fixed seed, so a failure reproduces.

use crate::common::real_model;
use crate::gguf_alloc::read_within_bound;
use aik_infer::fixture::{TinyLlamaSpec, tiny_llama_gguf};
use aik_infer::{ExecOptions, Gguf, LlamaGgufDriver};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::io::Read;

fn runner(cases: u32) -> TestRunner {
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]))
}

/// Parses `bytes` and, if that succeeds, loads everything a driver loads from it.
fn load_all(bytes: Vec<u8>) {
    if let Ok(gguf) = read_within_bound(bytes) {
        let _ = LlamaGgufDriver::from_gguf(&gguf, ExecOptions { threads: 1, ..Default::default() });
    }
}

#[test]
fn random_bytes_never_panic() {
    runner(512)
        .run(&prop::collection::vec(any::<u8>(), 0..2048), |mut bytes| {
            if bytes.len() >= 8 && bytes[0] % 2 == 0 {
                // Half the inputs get a valid magic and version so parsing goes deeper.
                bytes[..4].copy_from_slice(b"GGUF");
                bytes[4..8].copy_from_slice(&3u32.to_le_bytes());
            }
            prop_assert!(read_within_bound(bytes).is_err());
            Ok(())
        })
        .unwrap();
}

#[test]
fn truncated_and_mutated_tiny_models_never_panic() {
    let model = tiny_llama_gguf(&TinyLlamaSpec { layers: 1, ..Default::default() }).unwrap();
    mutate(&model, 128, 256);
    // The other shapes' metadata paths (Gemma 3's head widths, windows and pattern, RoPE
    // scaling, Qwen 2's biases) and the k-quant blocks.
    for (name, spec) in aik_infer::fixture::reference_models() {
        if [
            "gemma3",
            "qwen2",
            "rope-llama3",
            "rope-linear",
            "Q2_K",
            "Q3_K",
            "Q4_K",
            "Q5_K",
            "Q6_K",
            "Q5_1",
        ]
        .contains(&name.as_str())
        {
            mutate(&tiny_llama_gguf(&TinyLlamaSpec { layers: 1, ..spec }).unwrap(), 32, 96);
        }
    }
}

/// Truncations of `model` at `cuts` random points fail to parse; `edits` random header
/// mutations parse and load or fail, never panic.
fn mutate(model: &[u8], cuts: u32, edits: u32) {
    let model = model.to_vec();
    let len = model.len();
    runner(cuts)
        .run(&(0..len), |cut| {
            prop_assert!(read_within_bound(model[..cut].to_vec()).is_err());
            Ok(())
        })
        .unwrap();
    let header_len = Gguf::read(model.clone()).unwrap().data_offset() as usize;
    let mutation = prop::collection::vec((0..header_len, any::<u8>()), 1..6);
    runner(edits)
        .run(&mutation, |edits| {
            let mut bytes = model.clone();
            for (at, value) in edits {
                bytes[at] = value;
            }
            load_all(bytes);
            Ok(())
        })
        .unwrap();
}

#[test]
fn mutated_real_headers_never_panic() {
    let Some(path) = real_model() else { return };
    // The header (metadata and tensor directory) is the first 1,785,664 bytes.
    let mut header = vec![0u8; 1_785_664];
    std::fs::File::open(&path).unwrap().read_exact(&mut header).unwrap();
    // Edit the fixed fields, the first metadata entries and the tensor directory at the end.
    let hot = prop_oneof![0usize..4096, (header.len() - 20_000)..header.len()];
    runner(48)
        .run(&prop::collection::vec((hot, any::<u8>()), 1..4), |edits| {
            let mut bytes = header.clone();
            for (at, value) in edits {
                bytes[at] = value;
            }
            // Without tensor data every tensor runs past the end: an error, whatever the edit.
            prop_assert!(read_within_bound(bytes).is_err());
            Ok(())
        })
        .unwrap();
}
