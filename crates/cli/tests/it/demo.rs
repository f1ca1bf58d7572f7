//! `aik demo`: the list, an unknown name, a run whose effect checks out, a run whose answer
//! the contract could not act on (exit status non-zero), and the challenge demo on `aik up`.

use std::{sync::Arc, time::Duration};

use aik_infer::{ExecOptions, LlamaGgufDriver, Message, ModelDriver, Output, Request};
use aik_kernel::{ChallengeStatus, DeployParams, KernelClient};
use aik_node::{Engine, network::LocalWorkers};
use alloy::{
    primitives::{Address, U256},
    providers::ProviderBuilder,
};

use crate::support::{AikProcess, Network, home_with_default_model, stdout_of};

/// Runs the real driver, then replaces the answer with abi.encode(7): canonical bytes no Bool
/// decoder accepts.
struct Unusable(Arc<LlamaGgufDriver>);

impl ModelDriver for Unusable {
    fn version(&self) -> &'static str {
        LlamaGgufDriver::VERSION
    }

    fn prompt_token_count(&self, messages: &[Message]) -> aik_infer::Result<usize> {
        self.0.prompt_token_count(messages)
    }

    fn context_length(&self) -> usize {
        self.0.context_length()
    }

    fn run(&self, request: &Request) -> aik_infer::Result<Output> {
        let mut output = self.0.run(request)?;
        output.bytes = [[0u8; 31].as_slice(), &[7]].concat();
        Ok(output)
    }
}

async fn with_workers(net: &Network, unusable: bool) -> LocalWorkers {
    let model = net.dir.path().join("tiny-42.gguf");
    let driver = Arc::new(LlamaGgufDriver::load(&model, ExecOptions::default()).unwrap());
    let mut engine = Engine::new(driver.clone());
    if unusable {
        engine = engine.with_driver(Arc::new(Unusable(driver)));
    }
    let accounts = net.devnet.accounts();
    let owner = accounts[0].signer.clone();
    let signers: Vec<_> = accounts[1..=3].iter().map(|a| a.signer.clone()).collect();
    LocalWorkers::start(
        &net.deployment,
        &owner,
        &signers,
        &vec![engine; 3],
        DeployParams::dev(owner.address()).min_stake,
        &net.dir.path().join("workers"),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_lists_runs_and_fails_when_the_effect_is_missing() {
    let net = Network::start().await;
    let list = stdout_of(&net.aik(&["demo", "--list"]).await);
    let names: Vec<&str> = list.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(
        names,
        ["hello", "fantasy", "agent", "wallet", "oracle", "dao", "credit", "ens", "challenge"]
    );

    let unknown = net.aik(&["demo", "nope"]).await;
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("unknown example \"nope\"") && stderr.contains("hello, fantasy"),
        "{stderr}"
    );

    // Honest workers (the tiny model, constrained to true/false): the answer is stored.
    let workers = with_workers(&net, false).await;
    let run = net.aik(&["demo", "hello", "--timeout", "120"]).await;
    let out = stdout_of(&run);
    assert!(out.contains("Effect    answer(1) = "), "{out}");
    workers.stop().await.unwrap();

    // Workers agreeing on an answer HelloKernel cannot decode: the prompt is finalized, the
    // callback fails, nothing is stored, and the demo says so with a failing exit status.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let workers = with_workers(&net, true).await;
    let run = net.aik(&["demo", "hello", "--timeout", "120"]).await;
    assert!(!run.status.success(), "{}", String::from_utf8_lossy(&run.stdout));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("the answer called for answer(2) = false")
            && stderr.contains("answered = false"),
        "{stderr}"
    );
    workers.stop().await.unwrap();
    net.stop().await;
}

/// `aik demo challenge` against a plain `aik up` (three SmolLM2 workers): the colluders it
/// brings get a wrong answer finalized and its challenge overturns it, every check holding; the
/// demo's workers then leave, and the network answers the next prompt as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_demo_overturns_colluders_on_aik_up() {
    let dir = tempfile::tempdir().unwrap();
    let home = home_with_default_model(dir.path());
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let port = free();
    let state = dir.path().join("net");
    let mut up = AikProcess::up(&state, &home, port, free());
    let aik = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_aik"));
        command.args(args).arg("--dir").arg(&state).env("AIK_HOME", &home).env("NO_COLOR", "1");
        command.env_remove("AIK_RPC").env_remove("AIK_KEY");
        command
    };
    let mut demo = aik(&["demo", "challenge", "--timeout", "300"]);
    let out =
        stdout_of(&tokio::task::spawn_blocking(move || demo.output().unwrap()).await.unwrap());
    let verdicts: Vec<&str> =
        out.lines().filter(|line| line.starts_with("ok ") || line.starts_with("FAIL")).collect();
    assert_eq!(verdicts.len(), 5, "{out}");
    assert!(verdicts.iter().all(|line| line.starts_with("ok ")), "{out}");
    assert!(out.contains("the challenge committee's verdict: Overturned"), "{out}");

    // The chain agrees, and the draw holds aik up's three workers again: the outvoted one is out
    // of jail, the demo's have unstaked.
    let rpc = format!("http://127.0.0.1:{port}");
    let provider = ProviderBuilder::new().connect_http(rpc.parse().unwrap());
    let deployment = aik_node::Deployment::load(&state.join("deployment.json")).unwrap();
    let kernel = KernelClient::new(provider, Address::ZERO, deployment.addresses());
    assert_eq!(kernel.challenge_of(U256::from(1)).await.unwrap().1, ChallengeStatus::Overturned);
    assert_eq!(kernel.pool(U256::from(deployment.model_id)).await.unwrap(), (3, 3));
    let mut prompt = aik(&["prompt", "--json", "--max-tokens", "4", "--timeout", "120", "Hi"]);
    let asked =
        stdout_of(&tokio::task::spawn_blocking(move || prompt.output().unwrap()).await.unwrap());
    let asked: serde_json::Value = serde_json::from_str(&asked).unwrap();
    assert_eq!(asked["status"], "finalized", "{asked}");
    up.assert_running();
    // Written to a file, the log has no colour codes (and no progress bar redraws).
    let log = up.log();
    assert!(log.contains(" INFO "), "the workers log at info level: {log}");
    assert!(!log.contains('\x1b') && !log.contains('\r'), "terminal codes in a file: {log}");
}
