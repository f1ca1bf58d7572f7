//! Conformance vectors: token ids, answers and logits hashes of fixed requests, on the tiny
//! generated model and on SmolLM2, committed in `tests/data/conformance.json`.
//!
//! Any change to the numerics changes these and fails the suite: that is a new driver version,
//! not a test to update casually. After an intended change, regenerate with
//! `AIK_UPDATE_CONFORMANCE=1 cargo test -p aik-infer --test it conformance` and commit the file.

use crate::common::real_model;
use aik_infer::fixture::{TinyLlamaSpec, tiny_llama_gguf};
use aik_infer::{
    ExecOptions, GgmlType, Gguf, LlamaGgufDriver, Message, ModelDriver, OutputFormat, Request,
    Sampling,
};
use serde_json::{Value, json};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/conformance.json");

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn case(
    driver: &LlamaGgufDriver,
    name: &str,
    prompt: &str,
    format: &str,
    sampling: Sampling,
    max_tokens: usize,
) -> (String, Value) {
    let request = Request {
        messages: vec![Message::user(prompt)],
        format: format.parse::<OutputFormat>().unwrap(),
        sampling,
        max_tokens,
    };
    let out = driver.run(&request).unwrap();
    let value = json!({
        "prompt": prompt,
        "format": format,
        "text": out.text,
        "tokens": out.tokens,
        "output_hex": hex(&out.bytes),
        "logits_sha256": hex(&out.logits_sha256),
        "step_sha256": out.step_sha256.iter().map(|h| hex(h)).collect::<Vec<_>>(),
    });
    (name.to_string(), value)
}

fn tiny_cases() -> Vec<(String, Value)> {
    let mut cases = Vec::new();
    for (label, spec) in [
        ("tiny_q4_1_tied", TinyLlamaSpec::default()),
        (
            "tiny_q4_0_separate",
            TinyLlamaSpec {
                matrix_type: GgmlType::Q4_0,
                embedding_type: GgmlType::Q8_0,
                tied: false,
                seed: 5,
                ..Default::default()
            },
        ),
    ] {
        let gguf = Gguf::read(tiny_llama_gguf(&spec).unwrap()).unwrap();
        let d = LlamaGgufDriver::from_gguf(&gguf, ExecOptions::default()).unwrap();
        cases.push(case(
            &d,
            &format!("{label}/greedy"),
            "the cat sat on the mat",
            "text",
            Sampling::Greedy,
            24,
        ));
        cases.push(case(
            &d,
            &format!("{label}/sampled"),
            "the cat",
            "text",
            Sampling::seeded(1234, 0.9, 40, 0.95),
            24,
        ));
        cases.push(case(
            &d,
            &format!("{label}/int"),
            "count",
            "int(-1000,1000)",
            Sampling::Greedy,
            8,
        ));
    }
    cases
}

fn real_cases(driver: &LlamaGgufDriver) -> Vec<(String, Value)> {
    vec![
        case(
            driver,
            "smollm2/greedy",
            "Explain what a blockchain is in one sentence.",
            "text",
            Sampling::Greedy,
            12,
        ),
        case(
            driver,
            "smollm2/sampled",
            "Write a haiku about rain.",
            "text",
            Sampling::seeded(42, 0.8, 40, 0.95),
            12,
        ),
        case(
            driver,
            "smollm2/bool",
            "Is the sun a star? Answer true or false.",
            "bool",
            Sampling::Greedy,
            4,
        ),
        case(
            driver,
            "smollm2/choice",
            "Which is a fruit: apple, car or stone?",
            "choice(apple|car|stone)",
            Sampling::Greedy,
            4,
        ),
        case(
            driver,
            "smollm2/uint",
            "How many legs does a spider have?",
            "uint(0,100)",
            Sampling::Greedy,
            4,
        ),
    ]
}

fn check(section: &str, got: Vec<(String, Value)>) {
    // Both tests read and rewrite the one file; take turns.
    static FILE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = FILE_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut doc: Value = std::fs::read_to_string(FILE)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({}));
    if std::env::var("AIK_UPDATE_CONFORMANCE").is_ok_and(|v| v == "1") {
        doc[section] = Value::Object(got.into_iter().collect());
        std::fs::write(FILE, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
        return;
    }
    let want =
        doc[section].as_object().unwrap_or_else(|| panic!("{FILE} has no '{section}' section"));
    assert_eq!(want.len(), got.len(), "case count of '{section}'");
    for (name, value) in got {
        assert_eq!(Some(&value), want.get(&name), "conformance case '{name}' changed");
    }
}

#[test]
fn tiny_model_conformance_vectors() {
    check("tiny", tiny_cases());
}

#[test]
fn real_model_conformance_vectors() {
    let Some(path) = real_model() else { return };
    let driver = LlamaGgufDriver::load(&path, ExecOptions::default()).unwrap();
    check("smollm2", real_cases(&driver));
}

/// The vectors above were recorded when the driver's id was `llama-gguf/1`; it registers as
/// `gguf/1` now and keeps the old id as an alias only because it reproduces every one of them bit
/// for bit (the two tests above): a model registered under either runs on it, nothing else does.
#[test]
fn gguf_1_runs_the_vectors_of_llama_gguf_1_so_keeps_it_as_an_alias() {
    assert_eq!(LlamaGgufDriver::VERSION, "gguf/1");
    assert_eq!(LlamaGgufDriver::ALIASES, ["llama-gguf/1"]);
    assert!(LlamaGgufDriver::runs("gguf/1") && LlamaGgufDriver::runs("llama-gguf/1"));
    assert!(!LlamaGgufDriver::runs("gguf/2") && !LlamaGgufDriver::runs("llama-gguf/2"));
}
