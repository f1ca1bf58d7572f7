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

/// File name of the second model `aik model pull` knows: Gemma 3 270M (a base model) quantized
/// to Q4_K_M.
pub const GEMMA3_270M_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

/// sha256 of the Gemma 3 270M Q4_K_M file, as hex.
pub const GEMMA3_270M_SHA256: &str =
    "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

/// Size in bytes of the Gemma 3 270M Q4_K_M file.
pub const GEMMA3_270M_LEN: u64 = 253_113_024;

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
    model_path(DEFAULT_MODEL_FILE)
}

/// Where a pulled model file named `file` is cached: `<aik_home>/models/<file>`.
pub fn model_path(file: &str) -> Option<PathBuf> {
    aik_home().map(|h| h.join("models").join(file))
}
