//! A dev chain with a kernel deployed, a state directory holding its deployment file, and a way
//! to run `aik` against it with its own content store.

use std::{
    fs::File,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
};

use std::sync::Arc;

use aik_devnet::{DevAccount, Devnet, DevnetConfig};
use aik_infer::fixture::{TinyLlamaSpec, tiny_llama_gguf};
use aik_kernel::DeployParams;
use aik_node::{
    Deployment, Engine, NodeDb, Worker, WorkerConfig,
    network::{deploy, fund_workers, model_spec},
};
use alloy::primitives::U256;
use tokio::sync::watch;

/// A tiny generated model file: the same spec always gives the same bytes.
pub(crate) fn tiny_model(dir: &Path, seed: u64) -> (PathBuf, Vec<u8>) {
    let bytes = tiny_llama_gguf(&TinyLlamaSpec { seed, ..TinyLlamaSpec::default() }).unwrap();
    let path = dir.join(format!("tiny-{seed}.gguf"));
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// An `aik` home under `dir` whose content store holds the default model (SmolLM2, linked from
/// the model cache, where `scripts/test` pulls it before the tests).
pub(crate) fn home_with_default_model(dir: &Path) -> PathBuf {
    home_with_model(dir, aik_infer::DEFAULT_MODEL_FILE, aik_infer::DEFAULT_MODEL_SHA256)
}

/// An `aik` home under `dir` whose content store holds the pulled model `file` (sha256 hex
/// `sha256`), linked from the model cache where `scripts/test` pulls it before the tests.
pub(crate) fn home_with_model(dir: &Path, file: &str, sha256: &str) -> PathBuf {
    let real = aik_infer::model_path(file).expect("a home directory");
    assert!(real.is_file(), "scripts/test pulls {file} before the tests");
    let home = dir.join("home");
    let store = home.join("store");
    std::fs::create_dir_all(&store).unwrap();
    let id = aik_store::ContentId::from_hex(sha256).unwrap();
    if std::fs::hard_link(&real, store.join(id.to_string())).is_err() {
        std::fs::copy(&real, store.join(id.to_string())).unwrap();
    }
    home
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
        Self::with_accounts(DevnetConfig::test().accounts).await
    }

    /// [`Network::start`] with `accounts` funded dev accounts.
    pub(crate) async fn with_accounts(accounts: usize) -> Self {
        let devnet =
            Devnet::spawn(DevnetConfig { accounts, ..DevnetConfig::test() }).await.unwrap();
        let owner = devnet.accounts()[0].signer.clone();
        let dir = tempfile::tempdir().unwrap();
        let (model, _) = tiny_model(dir.path(), 42);
        let spec =
            model_spec(&model, "tiny", vec!["https://example.com/tiny.gguf".into()], 3).unwrap();
        let deployment = deploy(
            &devnet.http_url(),
            Some(devnet.ws_url()),
            &owner,
            // As `aik up`: a timelock with no delay owns the kernel, so `aik model add` goes
            // through it.
            &DeployParams { timelock_delay: Some(0), ..DeployParams::dev(owner.address()) },
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
        self.aik_with(args, &[]).await
    }

    /// [`Network::aik`] with more environment variables.
    pub(crate) async fn aik_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_aik"));
        command
            .args(args)
            .arg("--dir")
            .arg(self.dir.path().join("state"))
            .env("AIK_HOME", self.home())
            .env_remove("AIK_RPC")
            .env_remove("AIK_KEY")
            .envs(env.iter().copied());
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
    }

    pub(crate) async fn stop(self) {
        self.devnet.shutdown().await.unwrap();
    }
}

/// Worker tasks in this process and the switch that stops them.
pub(crate) type Serving = (watch::Sender<bool>, Vec<tokio::task::JoinHandle<aik_node::Result<()>>>);

/// Staked workers in this process, each account running its engine, reading prompt data from
/// `store_dir` only (no IPFS), their configuration changed by `tweak`.
pub(crate) async fn serve_workers(
    net: &Network,
    workers: &[(DevAccount, Engine)],
    store_dir: &Path,
    tweak: fn(&mut WorkerConfig),
) -> Serving {
    let owner = net.devnet.accounts()[0].signer.clone();
    let stake = DeployParams::dev(owner.address()).min_stake;
    let addresses: Vec<_> = workers.iter().map(|(a, _)| a.address).collect();
    fund_workers(&net.deployment, &owner, &addresses, stake).await.unwrap();
    let (stop, stopped) = watch::channel(false);
    // Every worker registers before any starts: a network the tests can reason about.
    let mut registered = Vec::new();
    for (account, engine) in workers {
        let mut config = WorkerConfig::new(
            net.deployment.rpc_url.clone(),
            account.signer.clone(),
            net.deployment.addresses(),
        );
        config.ws_url = net.deployment.ws_url.clone();
        config.models = vec![U256::from(net.deployment.model_id)];
        config.stake = stake;
        config.start_block = net.deployment.deploy_block;
        config.store_dir = Some(store_dir.to_path_buf());
        config.fetch = None;
        tweak(&mut config);
        let db = NodeDb::open(&net.dir.path().join(format!("{}.redb", account.address))).unwrap();
        let worker = Arc::new(Worker::new(config, engine.clone(), db).unwrap());
        worker.ensure_registered().await.unwrap();
        registered.push(worker);
    }
    let tasks = registered
        .into_iter()
        .map(|worker| {
            let stopped = stopped.clone();
            tokio::spawn(async move { worker.run(stopped).await })
        })
        .collect();
    (stop, tasks)
}

/// Stops the workers of [`serve_workers`] and checks they ended without an error.
pub(crate) async fn stop_all(
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<aik_node::Result<()>>>,
) {
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap().unwrap();
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

/// An `aik` process (`aik node run`, `aik up`), killed with SIGKILL and reaped when dropped, so
/// no path out of a test (panics included) leaves it running.
pub(crate) struct AikProcess {
    child: Child,
    log: PathBuf,
}

impl AikProcess {
    /// Starts `aik node run ARGS` for `account` on the deployment in `dir`, with its database
    /// in `dir/node`, its log in `dir/node-<n>.log` and, when given, `home` as `AIK_HOME`.
    pub(crate) fn node(
        dir: &Path,
        account: &DevAccount,
        n: usize,
        args: &[&str],
        home: Option<&Path>,
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aik"));
        command
            .args(["node", "run", "--poll-ms", "100", "--dir"])
            .arg(dir)
            .arg("--data-dir")
            .arg(dir.join("node"))
            .args(args)
            .env("AIK_KEY", account.private_key_hex())
            .env("RUST_LOG", "aik_node=debug,warn")
            .env("NO_COLOR", "1");
        if let Some(home) = home {
            command.env("AIK_HOME", home);
        }
        Self::spawn(command, dir.join(format!("node-{n}.log")))
    }

    /// Starts `aik up --dir DIR --port PORT --dashboard-port DASHBOARD` with `home` as `AIK_HOME`, its workers logging at
    /// info level, and waits until it says the network is up. Its output goes to the file
    /// [`AikProcess::log`] (not a terminal, and no `NO_COLOR`: `aik` must leave colours out by
    /// itself).
    pub(crate) fn up(dir: &Path, home: &Path, port: u16, dashboard: u16) -> Self {
        Self::up_with(dir, home, port, dashboard, &[])
    }

    /// [`AikProcess::up`] with more arguments.
    pub(crate) fn up_with(
        dir: &Path,
        home: &Path,
        port: u16,
        dashboard: u16,
        args: &[&str],
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aik"));
        command.arg("up").arg("--dir").arg(dir).args(["--port", &port.to_string()]).args(args);
        command.args(["--dashboard-port", &dashboard.to_string()]);
        command.env("AIK_HOME", home).env("RUST_LOG", "aik_node=info,warn").env_remove("NO_COLOR");
        let mut up = Self::spawn(command, dir.with_extension("log"));
        let started = std::time::Instant::now();
        while !up.log().contains("AI Kernel is up") {
            up.assert_running();
            assert!(started.elapsed().as_secs() < 300, "aik up did not come up in 300 s");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        up
    }

    /// What the process wrote so far (stdout and stderr).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Spawns `command` (any program: `aik`, or a server a test needs) with stdout and stderr
    /// in `log` and no stdin.
    pub(crate) fn spawn(mut command: Command, log: PathBuf) -> Self {
        let output = File::create(&log).unwrap();
        command.stdin(Stdio::null()).stdout(output.try_clone().unwrap()).stderr(output);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent. It makes the
        // kernel SIGKILL the process if the test process dies without running its destructors
        // (a watchdog's SIGKILL), so no orphan keeps running or holding inherited file locks.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let child = command.spawn().expect("the aik binary starts");
        Self { child, log }
    }

    /// SIGKILL (what `Child::kill` sends on Unix) and reap: no shutdown code runs.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Ctrl-C (SIGINT), then waits for the process to exit: its shutdown code runs.
    pub(crate) fn interrupt(&mut self) {
        let pid = i32::try_from(self.child.id()).expect("a pid fits i32");
        // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let _ = self.child.wait();
    }

    /// Fails the test with the node's log if the process has exited.
    pub(crate) fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("aik exited with {status}:\n{}", self.log());
        }
    }
}

impl Drop for AikProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- {} ---\n{log}", self.log.display());
        }
    }
}

/// The body of `GET PATH` from the HTTP server at `address` (HOST:PORT), which must answer 200.
pub(crate) fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    body.to_string()
}
