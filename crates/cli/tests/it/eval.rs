//! `aik eval perplexity`: the JSON a script reads, and the error for a text too short to score.

use crate::support::tiny_model;

fn aik(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aik")).args(args).output().unwrap()
}

#[test]
fn eval_perplexity_prints_typed_json_and_refuses_a_short_text() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = tiny_model(dir.path(), 42);
    let model = model.to_str().unwrap();
    let text = dir.path().join("text.txt");
    std::fs::write(&text, "the quick brown fox jumps over the lazy dog. ".repeat(40)).unwrap();
    let text = text.to_str().unwrap();
    let out = aik(&["eval", "perplexity", "--model", model, "--ctx", "16", "--json", text]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (tokens, chunks) = (json["tokens"].as_u64().unwrap(), json["chunks"].as_u64().unwrap());
    assert_eq!(chunks, tokens / 16);
    assert_eq!(json["scored"].as_u64().unwrap(), chunks * (16 - 1 - 8));
    assert_eq!(json["ctx"], 16);
    let ppl = json["ppl"].as_f64().unwrap();
    assert!(ppl.is_finite() && ppl > 1.0, "{json}");
    let mean = json["nll"].as_f64().unwrap() / json["scored"].as_f64().unwrap();
    assert!((mean.exp() / ppl - 1.0).abs() < 1e-12, "ppl = exp(nll / scored): {json}");

    // Limited to two chunks, with the scalar kernels on one thread: the same figure per chunk.
    let two = |extra: &[&str]| {
        let mut args = vec!["eval", "perplexity", "--model", model, "--ctx", "16", "--chunks", "2"];
        args.extend_from_slice(extra);
        args.extend(["--json", text]);
        let out = aik(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (json["nll"].as_f64().unwrap().to_bits(), json["chunks"].clone())
    };
    assert_eq!(two(&[]), two(&["--scalar", "--threads", "1"]));
    assert_eq!(two(&[]).1, 2);

    let short = dir.path().join("short.txt");
    std::fs::write(&short, "too short").unwrap();
    let out =
        aik(&["eval", "perplexity", "--model", model, "--ctx", "16", short.to_str().unwrap()]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("needs at least 32") && error.contains("two chunks"), "{error}");
}
