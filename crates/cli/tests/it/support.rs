//! A dev chain with a kernel deployed, a state directory holding its deployment file, and a way
//! to run `aik` against it with its own content store.

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use aik_devnet::{Devnet, DevnetConfig};
use aik_infer::fixture::{TinyLlamaSpec, tiny_llama_gguf};
use aik_kernel::DeployParams;
use aik_node::{
    Deployment,
    network::{deploy, model_spec},
};

/// A tiny generated model file: the same spec always gives the same bytes.
pub(crate) fn tiny_model(dir: &Path, seed: u64) -> (PathBuf, Vec<u8>) {
    let bytes = tiny_llama_gguf(&TinyLlamaSpec { seed, ..TinyLlamaSpec::default() }).unwrap();
    let path = dir.join(format!("tiny-{seed}.gguf"));
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// A dev chain with the kernel deployed (a tiny model as its default) and `aik`'s state
/// directory and home in a temporary directory.
pub(crate) struct Network {
    pub(crate) devnet: Devnet,
    pub(crate) deployment: Deployment,
    pub(crate) dir: tempfile::TempDir,
}

impl Network {
    pub(crate) async fn start() -> Self {
        let devnet = Devnet::spawn(DevnetConfig::test()).await.unwrap();
        let owner = devnet.accounts()[0].signer.clone();
        let dir = tempfile::tempdir().unwrap();
        let (model, _) = tiny_model(dir.path(), 42);
        let spec =
            model_spec(&model, "tiny", vec!["https://example.com/tiny.gguf".into()], 3).unwrap();
        let deployment = deploy(
            &devnet.http_url(),
            Some(devnet.ws_url()),
            &owner,
            &DeployParams::dev(owner.address()),
            &spec,
        )
        .await
        .unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        deployment.save(&dir.path().join("state").join("deployment.json")).unwrap();
        Self { devnet, deployment, dir }
    }

    /// `aik`'s home (content store, model cache) for this network's commands.
    pub(crate) fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Runs `aik ARGS --dir STATE` to completion on a blocking thread (the chain keeps serving).
    pub(crate) async fn aik(&self, args: &[&str]) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_aik"));
        command
            .args(args)
            .arg("--dir")
            .arg(self.dir.path().join("state"))
            .env("AIK_HOME", self.home())
            .env_remove("AIK_RPC")
            .env_remove("AIK_KEY");
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
    }

    pub(crate) async fn stop(self) {
        self.devnet.shutdown().await.unwrap();
    }
}

/// The output of a command that must have succeeded, as text.
pub(crate) fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "aik failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}
