//! The same SDK and contracts against `npx hardhat node`, a chain nobody here wrote: deploy,
//! register, a prompt's whole life, and custom-error decoding from Hardhat's revert format.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use aik_devnet::{DEV_MNEMONIC, derive_dev_accounts};
use aik_kernel::{
    DeployParams, KernelClient, PromptRequest, PromptStatus,
    bindings::DecentralizedInference as DI, output_hash, wallet_provider,
};
use alloy::{
    primitives::{B256, U256},
    providers::Provider,
};

use crate::fixture::{EAI, PRICE, STAKE, assert_revert, hardware, test_model};

/// A `hardhat node` child process, killed on drop.
struct HardhatNode {
    child: Child,
    url: String,
}

impl HardhatNode {
    fn start() -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/hardhat");
        let bin = dir.join("node_modules/hardhat/internal/cli/cli.js");
        assert!(
            bin.exists(),
            "hardhat is not installed at {}: run scripts/test (it runs npm ci in contracts/hardhat)",
            bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // cli.js runs the node in this process (the bootstrap script may fork), so killing the
        // child stops the chain.
        let child = {
            Command::new("node")
                .arg(&bin)
                .args(["node", "--hostname", "127.0.0.1", "--port", &port.to_string()])
                .current_dir(&dir)
                .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("hardhat node starts")
        };
        Self { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for HardhatNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn test_hardhat_node_runs_a_prompt_life() {
    let node = HardhatNode::start();
    let accounts = derive_dev_accounts(DEV_MNEMONIC, 6).unwrap();
    let owner_provider = wallet_provider(&node.url, accounts[0].signer.clone()).unwrap();
    let started = Instant::now();
    while owner_provider.get_chain_id().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(90), "hardhat node did not answer in 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(owner_provider.get_chain_id().await.unwrap(), 31337);
    eprintln!("hardhat node up after {:?}", started.elapsed());

    let params = DeployParams::dev(accounts[0].address);
    let owner = KernelClient::deploy(owner_provider, &params).await.unwrap();
    let model = owner
        .register_model(&test_model(3, aik_kernel::SchedulingPolicy::FeePriority))
        .await
        .unwrap();
    let mut workers = Vec::new();
    for account in &accounts[1..4] {
        owner.transfer_eai(account.address, U256::from(2 * STAKE)).await.unwrap();
        let worker = owner
            .connect(wallet_provider(&node.url, account.signer.clone()).unwrap(), account.address);
        worker.register_worker(&hardware(), &[model], 1, U256::from(STAKE)).await.unwrap();
        workers.push(worker);
    }
    let requester = owner.connect(
        wallet_provider(&node.url, accounts[4].signer.clone()).unwrap(),
        accounts[4].address,
    );
    let mut request =
        PromptRequest::text(model.to::<u64>(), "chat", b"Hello from hardhat".to_vec());
    request.max_tokens = 10;
    assert_revert(
        requester.submit_paying(&request, U256::from(1)).await,
        DI::DecentralizedInferenceErrors::DecentralizedInferenceFeeTooLow(
            DI::DecentralizedInferenceFeeTooLow {
                paid: U256::from(1),
                // Ten tokens and the finalization's gas at the dev parameters' price.
                fee: U256::from(10 * PRICE + 350_000 * 1_000_000_000),
            },
        ),
    );
    let submitted = requester.submit(&request).await.unwrap();
    assert!(submitted.anchored);
    let id = submitted.prompt_id;
    assert!(owner.committee(id).await.unwrap().0.is_empty(), "no committee before the draw");
    // Hardhat mines a block per transaction: the draw lands after the anchor block.
    requester.draw(16).await.unwrap();
    let (members, _) = owner.committee(id).await.unwrap();
    let member = |address| workers.iter().find(|w| w.from() == address).unwrap();
    let output = b"Hi!";
    for m in &members {
        member(*m).commit(id, 0, output_hash(output), B256::repeat_byte(7)).await.unwrap();
    }
    for m in &members {
        member(*m).reveal(id, B256::repeat_byte(7), output).await.unwrap();
    }
    owner.finalize(id, output).await.unwrap();
    assert_eq!(
        owner.result(id).await.unwrap(),
        (PromptStatus::Finalized, output_hash(output), members[0])
    );
    // A 10-gwei fee leaves 2 gwei to the treasury, which backs 2 EAI of the 10 EAI reward.
    assert_eq!(owner.eai_balance(members[0]).await.unwrap(), U256::from(STAKE + 2 * EAI));
    assert!(owner.claimable(members[0]).await.unwrap() > U256::ZERO);
}
