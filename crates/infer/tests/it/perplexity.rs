//! `aik_infer::perplexity` against llama.cpp's: the same rule (llama-perplexity's) on the same
//! text and model. `tests/data/llamacpp_perplexity.json` comes from
//! `scripts/reference/llamacpp_perplexity.py` (llama-cpp-python); the token count must match
//! exactly (tokenizer parity on a long real text) and the perplexity within 1 %: the engines
//! round differently (llama.cpp's f16 KV cache and Q8_1 activations against our canonical
//! pipeline), a wrong norm, RoPE or attention moves it by far more. Our own figure must be the
//! same to the bit for the scalar and the SIMD kernels at any thread count.

use aik_infer::{Backend, DEFAULT_MODEL_SHA256, ExecOptions, LlamaGgufDriver};
use serde_json::Value;
use sha2::Digest;

use crate::common::real_model;

const TEXT: &str = include_str!("../data/perplexity.txt");

fn reference() -> Value {
    serde_json::from_str(include_str!("../data/llamacpp_perplexity.json"))
        .expect("llamacpp_perplexity.json parses")
}

#[test]
fn perplexity_matches_llama_cpp_within_one_percent() {
    let Some(path) = real_model() else { return };
    let reference = reference();
    assert_eq!(reference["model_sha256"], DEFAULT_MODEL_SHA256, "the reference's model");
    let text_sha: String =
        sha2::Sha256::digest(TEXT.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(reference["text_sha256"], text_sha.as_str(), "the reference's text");
    let driver = LlamaGgufDriver::load(&path, ExecOptions::default()).unwrap();
    assert!(!driver.adds_bos(), "SmolLM2's metadata: add_bos_token = false");
    let results = reference["results"].as_array().unwrap();
    assert!(results.len() >= 2);
    for expected in results {
        let ctx = expected["ctx"].as_u64().unwrap() as usize;
        let ours = aik_infer::perplexity(&driver, TEXT, ctx, None, &mut |_, _| {}).unwrap();
        assert_eq!(ours.tokens as u64, expected["tokens"].as_u64().unwrap(), "tokens, ctx {ctx}");
        assert_eq!(ours.chunks as u64, expected["chunks"].as_u64().unwrap(), "chunks, ctx {ctx}");
        assert_eq!(ours.scored as u64, expected["scored"].as_u64().unwrap(), "scored, ctx {ctx}");
        let theirs = expected["ppl"].as_f64().unwrap();
        let ratio = ours.ppl / theirs;
        eprintln!("ctx {ctx}: ours {:.4}, llama.cpp {theirs:.4} (ratio {ratio:.5})", ours.ppl);
        assert!(
            (0.99..=1.01).contains(&ratio),
            "ctx {ctx}: ours {} vs llama.cpp {theirs}",
            ours.ppl
        );
    }
}

#[test]
fn perplexity_is_the_same_for_every_backend_and_thread_count() {
    let Some(path) = real_model() else { return };
    let run = |backend, threads| {
        let driver = LlamaGgufDriver::load(&path, ExecOptions { threads, backend }).unwrap();
        aik_infer::perplexity(&driver, TEXT, 64, Some(2), &mut |_, _| {}).unwrap()
    };
    let scalar = run(Backend::Scalar, 1);
    for backend in Backend::available().into_iter().skip(1) {
        let simd = run(backend, 2);
        assert_eq!(scalar.nll.to_bits(), simd.nll.to_bits(), "{scalar:?} vs {simd:?}");
        assert_eq!(scalar.ppl.to_bits(), simd.ppl.to_bits());
    }
    assert_eq!((scalar.chunks, scalar.scored), (2, 2 * (64 - 1 - 32)));
}

#[test]
fn perplexity_refuses_what_it_cannot_measure() {
    let Some(path) = real_model() else { return };
    let driver = LlamaGgufDriver::load(&path, ExecOptions::default()).unwrap();
    let short = aik_infer::perplexity(&driver, "Too short.", 64, None, &mut |_, _| {});
    let error = short.unwrap_err().to_string();
    assert!(error.contains("needs at least 128") && error.contains("two chunks"), "{error}");
    let huge = aik_infer::perplexity(&driver, TEXT, 1 << 20, None, &mut |_, _| {});
    let error = huge.unwrap_err().to_string();
    assert!(error.contains("the model's context length"), "{error}");
}
