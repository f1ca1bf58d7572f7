//! Where the default model lives, shared by the CLI (which downloads it) and tests (which need
//! it).

use std::path::PathBuf;

/// File name of the default model, SmolLM2-135M-Instruct quantized to Q4_1.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// sha256 of the default model file, as hex; a cached copy with another hash is not used.
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// Size in bytes of the default model file.
pub const DEFAULT_MODEL_LEN: u64 = 98_362_432;

/// The AI Kernel home directory: `$AIK_HOME`, else `~/.cache/aik`; `None` if neither can be
/// determined.
pub fn aik_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("AIK_HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".cache").join("aik"))
}

/// Where the default model is cached: `<aik_home>/models/SmolLM2-135M-Instruct.Q4_1.gguf`.
pub fn default_model_path() -> Option<PathBuf> {
    aik_home().map(|h| h.join("models").join(DEFAULT_MODEL_FILE))
}
