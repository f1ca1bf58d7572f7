//! `aik node pause|resume|update` and the hardware `aik status` shows: a worker changes what it
//! declares without unbonding.

use aik_kernel::{DeployParams, Hardware, KernelClient, WorkerStatus, wallet_provider};
use aik_node::network::fund_workers;
use alloy::primitives::U256;

use crate::support::{Network, stdout_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_pauses_updates_and_resumes_from_the_command_line() {
    let net = Network::start().await;
    let accounts = net.devnet.accounts().to_vec();
    let owner = accounts[0].signer.clone();
    let worker = &accounts[1];
    let min_stake = DeployParams::dev(owner.address()).min_stake;
    fund_workers(&net.deployment, &owner, &[worker.address], min_stake * U256::from(2))
        .await
        .unwrap();
    let provider = wallet_provider(&net.deployment.rpc_url, worker.signer.clone()).unwrap();
    let client = KernelClient::new(provider, worker.address, net.deployment.addresses());
    // Registered as `aik node run` does: with the machine it detects.
    let detected = aik_node::hardware::detect("llama-gguf/1");
    let model = U256::from(net.deployment.model_id);
    client.register_worker(&detected, &[model], 1, min_stake * U256::from(2)).await.unwrap();

    let key = worker.private_key_hex();
    let status = || async {
        let json = stdout_of(&net.aik(&["status", "--json"]).await);
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        json["workers"][0].clone()
    };
    let shown = status().await;
    assert_eq!(shown["hardware"]["gpu_model"], detected.gpu_model.as_str());
    assert_eq!(shown["hardware"]["memory_mb"], detected.memory_mb);
    assert!(detected.gpu_model.starts_with("cpu: "), "{}", detected.gpu_model);

    let paused = stdout_of(&net.aik(&["node", "pause", "--key", &key]).await);
    assert_eq!(paused.trim(), format!("worker {} is paused", worker.address));
    assert_eq!(client.worker(worker.address).await.unwrap().status, WorkerStatus::Paused);
    let resumed = stdout_of(&net.aik(&["node", "resume", "--key", &key]).await);
    assert_eq!(resumed.trim(), format!("worker {} is active", worker.address));

    // Active: update pauses, changes the record, resumes; no unbonding, stake untouched.
    let updated = stdout_of(
        &net.aik(&[
            "node",
            "update",
            "--key",
            &key,
            "--gpu-model",
            "NVIDIA L4",
            "--memory-mb",
            "24000",
            "--capacity",
            "2",
        ])
        .await,
    );
    assert!(updated.contains("is active: NVIDIA L4, 24000 MiB, capacity 2"), "{updated}");
    let info = client.worker(worker.address).await.unwrap();
    assert_eq!(info.status, WorkerStatus::Active);
    assert_eq!(info.capacity, 2);
    assert_eq!(
        info.hardware,
        Hardware { gpu_model: "NVIDIA L4".into(), memory_mb: 24000, engine: "llama-gguf/1".into() }
    );
    assert_eq!(U256::from(info.stake), min_stake * U256::from(2));
    assert_eq!(status().await["hardware"]["gpu_model"], "NVIDIA L4");

    // A capacity the stake cannot back is refused by the kernel; the worker is left paused and
    // told what to do.
    let refused = net.aik(&["node", "update", "--key", &key, "--capacity", "3"]).await;
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("is paused but not updated"), "{error}");
    assert_eq!(client.worker(worker.address).await.unwrap().status, WorkerStatus::Paused);
    net.stop().await;
}

/// A model registered with a driver this node does not have is refused before anything is
/// downloaded or registered, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_model_whose_driver_it_lacks() {
    let net = Network::start().await;
    let accounts = net.devnet.accounts().to_vec();
    let owner = accounts[0].signer.clone();
    let (file, _) = crate::support::tiny_model(net.dir.path(), 5);
    let mut spec = aik_node::network::model_spec(
        &file,
        "future",
        vec!["https://example.com/future.gguf".into()],
        1,
    )
    .unwrap();
    spec.driver = "gguf/9".into();
    let provider = wallet_provider(&net.deployment.rpc_url, owner.clone()).unwrap();
    // The deployment's timelock (zero delay, as `aik up`) schedules and executes it.
    let registry = KernelClient::new(provider, owner.address(), net.deployment.addresses());
    let model = registry.register_model(&spec).await.unwrap();
    let key = accounts[1].private_key_hex();
    let run = net.aik(&["node", "run", "--key", &key, "--model", &model.to_string()]).await;
    assert!(!run.status.success());
    let error = String::from_utf8_lossy(&run.stderr);
    assert!(
        error.contains(
            "runs on driver \"gguf/9\", which this node does not have (it has gguf/1, llama-gguf/1)"
        ),
        "{error}"
    );
    net.stop().await;
}

/// A client with only the chain's RPC URL (no deployment file) finds the network through the
/// kernel directory the deployment registered in; `--kernel` names one, and a wrong one is named
/// in the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_finds_the_network_by_its_rpc_url_alone() {
    let net = Network::start().await;
    let nowhere = net.dir.path().join("no-deployment-file");
    let rpc = net.deployment.rpc_url.clone();
    let dir = nowhere.to_str().unwrap();
    let run = |args: Vec<String>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_aik"));
        command.args(&args).env("AIK_HOME", net.home()).env_remove("AIK_RPC");
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    let args = |extra: &[&str]| {
        let mut all: Vec<String> = ["status", "--json", "--rpc", &rpc, "--dir", dir]
            .iter()
            .map(|s| s.to_string())
            .collect();
        all.extend(extra.iter().map(|s| s.to_string()));
        all
    };
    let found = stdout_of(&run(args(&[])).await.unwrap());
    let found: serde_json::Value = serde_json::from_str(&found).unwrap();
    assert_eq!(found["kernel"], net.deployment.kernel.to_string());
    assert_eq!(found["model_id"], net.deployment.model_id);
    let named =
        stdout_of(&run(args(&["--kernel", &net.deployment.kernel.to_string()])).await.unwrap());
    assert!(named.contains(&net.deployment.kernel.to_string()), "{named}");
    let stranger = alloy::primitives::Address::repeat_byte(0x42).to_string();
    let failed = run(args(&["--kernel", &stranger])).await.unwrap();
    assert!(!failed.status.success());
    let error = String::from_utf8_lossy(&failed.stderr);
    assert!(error.contains(&format!("{} on {rpc} is not an AI Kernel", stranger)), "{error}");
    // Without --rpc and without a file: what to do.
    let lost = run(vec!["status".into(), "--dir".into(), dir.into()]).await.unwrap();
    let error = String::from_utf8_lossy(&lost.stderr);
    assert!(error.contains("run `aik up` first, or pass --rpc URL"), "{error}");
    net.stop().await;
}
