//! Every weight type the engine loads, against llama.cpp: the tiny generated Llama model with
//! all matrices and the tied embedding of one type (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0;
//! at width 256, Q4_K with a Q6_K embedding, and Q2_K, Q3_K, Q5_K and Q6_K throughout), and the
//! RoPE-scaled and Qwen 2 shapes, run
//! by llama.cpp (`tests/data/llamacpp_tiny.json`, from `scripts/reference/llamacpp_tiny.py` over
//! the files `examples/tiny_models.rs` writes) and by us. The files must be byte for byte the
//! ones llama.cpp ran; the prompt's logits must agree within [`LOGIT_TOLERANCE`] (largest) and
//! [`MEAN_TOLERANCE`] (mean); greedy continuations must agree token for token until a step where
//! llama.cpp's top two logits are closer than twice the largest difference measured on that
//! model (where either engine may legitimately pick either), after which the contexts differ.

use aik_infer::{
    ExecOptions, Gguf, LlamaModel, Logits, Session,
    fixture::{reference_models, tiny_llama_gguf},
};
use serde_json::Value;
use sha2::Digest;

use crate::common::argmax;

/// Largest difference of one logit between the engines. llama.cpp multiplies float matrices by
/// float activations and quantized ones by Q8_0/Q8_1 activations with its own rounding; we
/// multiply every matrix by our canonical 8-bit activations. On these models (logits up to about
/// 3.7) that moves a logit by at most 0.18 (Q5_K) and 0.039 on average; a wrong dequantization
/// moves them by units (Q5_0 with its fifth bit misplaced: 4.09 at most, 1.10 on average).
const LOGIT_TOLERANCE: f32 = 0.2;
/// Mean absolute difference of the logits between the engines (measured at most 0.039).
const MEAN_TOLERANCE: f32 = 0.05;

#[test]
fn every_weight_type_matches_llama_cpp() {
    let reference: Value =
        serde_json::from_str(include_str!("../data/llamacpp_tiny.json")).unwrap();
    let prompt: Vec<u32> = numbers(&reference["prompt"]).map(|v| v as u32).collect();
    let models = reference["models"].as_object().unwrap();
    let specs = reference_models();
    assert_eq!(models.len(), specs.len(), "every reference model");
    let dir = std::env::temp_dir().join(format!("aik-quant-types-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, expected) in models {
        let (_, spec) = specs.iter().find(|(n, _)| n == name).expect("a known model");
        let bytes = tiny_llama_gguf(spec).unwrap();
        let sha: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(expected["sha256"], sha.as_str(), "{name}: the file llama.cpp ran");
        let path = dir.join(format!("tiny-{name}.gguf"));
        std::fs::write(&path, &bytes).unwrap();
        let model = LlamaModel::from_gguf(&Gguf::open(&path).unwrap()).unwrap();
        let mut session = Session::new(&model, ExecOptions::default(), 64);
        let logits = session.forward(&prompt, Logits::Last).unwrap();
        let theirs: Vec<f32> = numbers(&expected["prompt_logits"]).map(|v| v as f32).collect();
        assert_eq!(logits.len(), theirs.len(), "{name}: vocabulary");
        let worst = logits.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let mean = logits.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).sum::<f32>()
            / logits.len() as f32;
        eprintln!("{name}: largest logit difference {worst:.4}, mean {mean:.4}");
        assert!(worst <= LOGIT_TOLERANCE, "{name}: logits differ by {worst}");
        assert!(mean <= MEAN_TOLERANCE, "{name}: logits differ by {mean} on average");

        let greedy: Vec<u32> = numbers(&expected["greedy"]).map(|v| v as u32).collect();
        let margins: Vec<f32> = numbers(&expected["margins"]).map(|v| v as f32).collect();
        let mut last = logits;
        let mut compared = 0;
        for (step, (&want, &margin)) in greedy.iter().zip(&margins).enumerate() {
            if margin < 2.0 * worst {
                break;
            }
            let best = argmax(&last);
            assert_eq!(best, want, "{name}: greedy step {step}");
            compared += 1;
            last = session.forward(&[best], Logits::Last).unwrap();
        }
        eprintln!("{name}: {compared} greedy tokens equal before llama.cpp's first near-tie");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A JSON array of numbers, as f64.
fn numbers(array: &Value) -> impl Iterator<Item = f64> + '_ {
    array.as_array().expect("an array").iter().map(|v| v.as_f64().expect("a number"))
}

/// What the engine cannot run faithfully is refused with the key or tensor named, never
/// ignored: a RoPE scaling type other than none/linear (YaRN, …), a tensor the forward pass
/// would not read, a Llama 3 frequency divisor that is not positive, a Qwen 2 block without its
/// biases, an architecture it does not run.
#[test]
fn rope_scaling_and_tensors_the_engine_cannot_run_are_refused() {
    let specs = reference_models();
    let bytes = |name: &str| {
        let (_, spec) = specs.iter().find(|(n, _)| n == name).unwrap();
        tiny_llama_gguf(spec).unwrap()
    };
    let replace = |mut bytes: Vec<u8>, from: &[u8], to: &[u8]| {
        let at = bytes.windows(from.len()).position(|w| w == from).expect("present");
        bytes[at..at + to.len()].copy_from_slice(to);
        bytes
    };
    let refused = |bytes: Vec<u8>| {
        LlamaModel::from_gguf(&Gguf::read(bytes).unwrap()).unwrap_err().to_string()
    };
    LlamaModel::from_gguf(&Gguf::read(bytes("rope-linear")).unwrap()).unwrap();
    let yarn = refused(replace(bytes("rope-linear"), b"linear", b"yarn-x"));
    assert!(yarn.contains("llama.rope.scaling.type \"yarn-x\" is not implemented"), "{yarn}");
    let unknown = refused(replace(bytes("rope-llama3"), b"rope_freqs", b"rope_freqX"));
    assert!(unknown.contains("tensor 'rope_freqX.weight' is not part of the llama"), "{unknown}");
    // The first divisor (1.0, a kept high frequency) made 0.
    let (_, spec) = specs.iter().find(|(n, _)| n == "rope-llama3").unwrap();
    let factors = spec.rope_scaling.llama3_factors(spec.dim / spec.heads, 10_000.0).unwrap();
    assert_eq!(factors[0], 1.0);
    let stored: Vec<u8> = factors.iter().flat_map(|f| f.to_le_bytes()).collect();
    let zero = refused(replace(bytes("rope-llama3"), &stored, &0f32.to_le_bytes()));
    assert!(zero.contains("'rope_freqs.weight' holds 0"), "{zero}");
    // Qwen 2 without one of its biases.
    let unbiased = refused(replace(bytes("qwen2"), b"blk.0.attn_k.bias", b"blk.0.attn_k.biaX"));
    assert!(
        unbiased.contains("'blk.0.attn_k.bias' is missing (qwen2 needs the q, k and v biases)"),
        "{unbiased}"
    );
    // An architecture this engine does not run.
    let gemma =
        refused(replace(bytes("F32"), b"\x05\0\0\0\0\0\0\0llama", b"\x05\0\0\0\0\0\0\0gemma"));
    assert!(gemma.contains("general.architecture is 'gemma'"), "{gemma}");
}
