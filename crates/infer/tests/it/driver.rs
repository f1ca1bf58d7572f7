//! End to end through `ModelDriver`: chat template, tokenizer, forward pass, sampling and
//! constrained formats, on the tiny model and on SmolLM2.

use crate::common::real_model;
use aik_infer::fixture::{TinyLlamaSpec, tiny_llama_gguf};
use aik_infer::{
    Backend, ExecOptions, Gguf, LlamaGgufDriver, Message, ModelDriver, Output, OutputFormat,
    OutputValue, Request, Sampling,
};

fn tiny_driver(options: ExecOptions) -> LlamaGgufDriver {
    let gguf = Gguf::read(tiny_llama_gguf(&TinyLlamaSpec::default()).unwrap()).unwrap();
    LlamaGgufDriver::from_gguf(&gguf, options).unwrap()
}

fn request(prompt: &str, format: &str, sampling: Sampling, max_tokens: usize) -> Request {
    Request {
        messages: vec![Message::user(prompt)],
        format: format.parse::<OutputFormat>().unwrap(),
        sampling,
        max_tokens,
    }
}

#[test]
fn tiny_model_outputs_always_parse_and_repeat() {
    let driver = tiny_driver(ExecOptions { threads: 2, backend: Backend::best_available() });
    let scalar = tiny_driver(ExecOptions { threads: 1, backend: Backend::Scalar });
    for format in ["text", "bool", "choice(red|green|blue)", "uint(0,1000)", "int(-50,50)"] {
        for sampling in [Sampling::Greedy, Sampling::seeded(9, 1.5, 0, 1.0)] {
            let req = request("the cat", format, sampling, 12);
            let a = driver.run(&req).unwrap();
            assert_eq!(
                a,
                Output {
                    prefill_time: a.prefill_time,
                    decode_time: a.decode_time,
                    ..scalar.run(&req).unwrap()
                }
            );
            if format != "text" {
                let f = format.parse::<OutputFormat>().unwrap();
                assert!(f.is_complete(a.text.as_bytes()), "{format}: '{}'", a.text);
                assert_eq!(a.bytes.len(), 32);
            }
        }
    }
}

#[test]
fn real_model_answers_and_constrains() {
    let Some(path) = real_model() else { return };
    let driver = LlamaGgufDriver::load(&path, ExecOptions::default()).unwrap();
    // llama.cpp's greedy answer starts "A blockchain is a decentralized digital ledger".
    let out = driver
        .run(&request(
            "Explain what a blockchain is in two sentences.",
            "text",
            Sampling::Greedy,
            8,
        ))
        .unwrap();
    assert!(out.text.starts_with("A blockchain is a decentralized"), "{}", out.text);
    for (prompt, format) in [
        ("Is the sky blue on a clear day? Answer true or false.", "bool"),
        ("What is 7 times 6?", "uint(0,1000)"),
        ("What is 5 minus 8?", "int(-100,100)"),
        ("Pick a primary color.", "choice(red|yellow|blue)"),
    ] {
        let out =
            driver.run(&request(prompt, format, Sampling::seeded(3, 1.0, 0, 1.0), 6)).unwrap();
        let f = format.parse::<OutputFormat>().unwrap();
        assert!(f.is_complete(out.text.as_bytes()), "{format}: '{}'", out.text);
        assert_eq!(out.bytes, OutputValue::from_text(&f, out.text.as_bytes()).unwrap().encode());
    }
}
