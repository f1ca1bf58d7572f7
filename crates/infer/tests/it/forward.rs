//! The forward pass: identical logits bits across backends, thread counts and batching, on the
//! generated tiny models and on the real SmolLM2.

use crate::common::real_model;
use aik_infer::fixture::{TinyLlamaSpec, tiny_llama_gguf};
use aik_infer::{Backend, ExecOptions, GgmlType, Gguf, LlamaModel, Logits, Session};

pub(crate) fn tiny_model(spec: &TinyLlamaSpec) -> LlamaModel {
    LlamaModel::from_gguf(&Gguf::read(tiny_llama_gguf(spec).unwrap()).unwrap()).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// Logits of every position of `tokens`, computed in one batch.
fn prefill_all(model: &LlamaModel, opts: ExecOptions, tokens: &[u32]) -> Vec<u32> {
    let mut s = Session::new(model, opts, 1 << 20);
    bits(&s.forward(tokens, Logits::All).unwrap())
}

/// Logits of every position, one token at a time.
fn one_by_one(model: &LlamaModel, opts: ExecOptions, tokens: &[u32]) -> Vec<u32> {
    let mut s = Session::new(model, opts, 1 << 20);
    tokens.iter().flat_map(|&t| bits(&s.forward(&[t], Logits::Last).unwrap())).collect()
}

/// Logits of every position, in chunks of `chunk`.
fn chunked(model: &LlamaModel, opts: ExecOptions, tokens: &[u32], chunk: usize) -> Vec<u32> {
    let mut s = Session::new(model, opts, 1 << 20);
    tokens.chunks(chunk).flat_map(|c| bits(&s.forward(c, Logits::All).unwrap())).collect()
}

fn check_invariance(model: &LlamaModel, tokens: &[u32], thread_counts: &[usize]) -> Vec<u32> {
    let reference =
        prefill_all(model, ExecOptions { threads: 1, backend: Backend::Scalar }, tokens);
    for &threads in thread_counts {
        for backend in [Backend::Scalar, Backend::best_available()] {
            let opts = ExecOptions { threads, backend };
            assert_eq!(prefill_all(model, opts, tokens), reference, "prefill {opts:?}");
            assert_eq!(one_by_one(model, opts, tokens), reference, "one by one {opts:?}");
            assert_eq!(chunked(model, opts, tokens, 3), reference, "chunks of 3 {opts:?}");
        }
    }
    reference
}

#[test]
fn tiny_models_are_invariant_to_backend_threads_and_batching() {
    let tokens: Vec<u32> = (0..23).map(|i| (i * 37 + 5) % 300).collect();
    for (matrix_type, embedding_type, tied) in [
        (GgmlType::Q4_1, GgmlType::Q8_0, true),
        (GgmlType::Q4_0, GgmlType::Q4_1, false),
        (GgmlType::Q8_0, GgmlType::Q4_0, false),
    ] {
        let spec = TinyLlamaSpec { matrix_type, embedding_type, tied, ..Default::default() };
        let model = tiny_model(&spec);
        let logits = check_invariance(&model, &tokens, &[1, 2, 3, 4]);
        assert_eq!(logits.len(), tokens.len() * model.config().vocab);
        // Two runs on a fresh load agree too.
        assert_eq!(check_invariance(&tiny_model(&spec), &tokens, &[1]), logits);
    }
}

#[test]
fn real_model_is_invariant_to_backend_threads_and_batching() {
    let Some(path) = real_model() else { return };
    let model = LlamaModel::open(&path).unwrap();
    // "<|im_start|>user\nWhat is 2+2?<|im_end|>\n" style ids; exact values do not matter here.
    let tokens = [1u32, 4093, 198, 1780, 314, 216, 34, 32, 34, 47, 2, 198];
    check_invariance(&model, &tokens, &[1, 2, 3]);
}
