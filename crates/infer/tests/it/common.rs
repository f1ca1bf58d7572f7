//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// The real SmolLM2 model, if present. Under `CI=true` its absence is a failure, because
/// `scripts/test` installs it first; elsewhere the real-model tests are skipped with a note.
pub(crate) fn real_model() -> Option<PathBuf> {
    pulled_model(aik_infer::DEFAULT_MODEL_FILE)
}

/// The real Gemma 3 270M Q4_K_M file (`aik model pull gemma3-270m`), as [`real_model`].
pub(crate) fn gemma3_model() -> Option<PathBuf> {
    pulled_model(aik_infer::GEMMA3_270M_FILE)
}

fn pulled_model(file: &str) -> Option<PathBuf> {
    let path = aik_infer::model_path(file).expect("no AIK_HOME or HOME");
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "the real model is missing at {} (scripts/test runs `aik model pull` for it)",
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
