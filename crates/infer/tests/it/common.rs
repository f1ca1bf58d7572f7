//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// The real SmolLM2 model, if present. Under `CI=true` its absence is a failure, because
/// `scripts/test` installs it first; elsewhere the real-model tests are skipped with a note.
pub(crate) fn real_model() -> Option<PathBuf> {
    let path = aik_infer::default_model_path().expect("no AIK_HOME or HOME");
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "the real model is missing at {} (scripts/test runs `aik model pull`)",
            path.display()
        );
    }
    eprintln!("skipping: real model not found at {}", path.display());
    None
}

/// The index of the largest logit, the lowest on ties (greedy decoding's choice).
pub(crate) fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}
