//! The same SDK and contracts against `npx hardhat node`, a chain nobody here wrote: deploy,
//! register, a prompt's whole life, and custom-error decoding from Hardhat's revert format; and
//! the npm package `@ai-kernel/contracts` in a fresh Hardhat project, its consumer answered by
//! the kernel on that chain.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
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
    providers::{DynProvider, Provider},
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

impl HardhatNode {
    /// Waits until the node answers (it starts in a few seconds).
    async fn ready(&self) {
        let provider =
            alloy::providers::ProviderBuilder::new().connect_http(self.url.parse().unwrap());
        let started = Instant::now();
        while provider.get_chain_id().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "hardhat node did not answer in 90 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!("hardhat node up after {:?}", started.elapsed());
    }
}

/// The kernel on a Hardhat node: its owner's client, a model with committees of three, and
/// three staked workers.
struct KernelOnHardhat {
    owner: KernelClient<DynProvider>,
    model: U256,
    workers: Vec<KernelClient<DynProvider>>,
    accounts: Vec<aik_devnet::DevAccount>,
}

impl KernelOnHardhat {
    async fn deploy(node: &HardhatNode) -> Self {
        node.ready().await;
        let accounts = derive_dev_accounts(DEV_MNEMONIC, 6).unwrap();
        let owner_provider = wallet_provider(&node.url, accounts[0].signer.clone()).unwrap();
        assert_eq!(owner_provider.get_chain_id().await.unwrap(), 31337);
        let params = DeployParams::dev(accounts[0].address);
        let owner = KernelClient::deploy(owner_provider, &params).await.unwrap();
        let model = owner
            .register_model(&test_model(3, aik_kernel::SchedulingPolicy::FeePriority))
            .await
            .unwrap();
        let mut workers = Vec::new();
        for account in &accounts[1..4] {
            owner.transfer_eai(account.address, U256::from(2 * STAKE)).await.unwrap();
            let worker = owner.connect(
                wallet_provider(&node.url, account.signer.clone()).unwrap(),
                account.address,
            );
            worker.register_worker(&hardware(), &[model], 1, U256::from(STAKE)).await.unwrap();
            workers.push(worker);
        }
        Self { owner, model, workers, accounts }
    }

    /// Draws prompt `id`'s committee (from `drawer`) and has every member commit and reveal
    /// `output`, then finalizes it; returns the committee.
    async fn answer(
        &self,
        drawer: &KernelClient<DynProvider>,
        id: U256,
        output: &[u8],
    ) -> Vec<alloy::primitives::Address> {
        assert!(
            self.owner.committee(id).await.unwrap().0.is_empty(),
            "no committee before the draw"
        );
        // Hardhat mines a block per transaction: the draw lands after the anchor block.
        drawer.draw(16).await.unwrap();
        let (members, _) = self.owner.committee(id).await.unwrap();
        let member = |address| self.workers.iter().find(|w| w.from() == address).unwrap();
        for m in &members {
            member(*m).commit(id, 0, output_hash(output), B256::repeat_byte(7)).await.unwrap();
        }
        for m in &members {
            member(*m).reveal(id, B256::repeat_byte(7), output).await.unwrap();
        }
        self.owner.finalize(id, output).await.unwrap();
        members
    }
}

#[tokio::test]
async fn test_hardhat_node_runs_a_prompt_life() {
    let node = HardhatNode::start();
    let net = KernelOnHardhat::deploy(&node).await;
    let (owner, model, accounts) = (&net.owner, net.model, &net.accounts);
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
    let output = b"Hi!";
    let members = net.answer(&requester, id, output).await;
    assert_eq!(
        owner.result(id).await.unwrap(),
        (PromptStatus::Finalized, output_hash(output), members[0])
    );
    // A 10-gwei fee leaves 2 gwei to the treasury, which backs 2 EAI of the 10 EAI reward.
    assert_eq!(owner.eai_balance(members[0]).await.unwrap(), U256::from(STAKE + 2 * EAI));
    assert!(owner.claimable(members[0]).await.unwrap() > U256::ZERO);
}

alloy::sol!(
    #[sol(rpc)]
    interface IHello {
        function kernel() external view returns (address);
        function modelId() external view returns (uint256);
        function ask(string calldata question) external payable returns (uint256 promptId);
        function answer(uint256 promptId) external view returns (bool);
        function answered(uint256 promptId) external view returns (bool);
    }
);

/// Runs `program ARGS` in `dir` and returns its stdout, failing the test with its output if it
/// fails.
fn run_in(dir: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The npm package as a Solidity developer meets it: `npm pack` in contracts/npm, the tarball
/// installed in a fresh Hardhat project, its README's example compiled there with
/// `@ai-kernel/contracts/...` imports (by npm's solc: Hardhat's compiler download needs the
/// network) and deployed by a Hardhat script to a Hardhat node running the kernel, where it asks
/// a question and gets the committee's answer through the callback.
#[tokio::test]
async fn test_the_npm_package_builds_and_answers_in_a_fresh_hardhat_project() {
    let contracts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts");
    let hardhat = contracts.join("hardhat/node_modules/hardhat");
    let solc = contracts.join("node_modules/solc");
    assert!(hardhat.exists() && solc.exists(), "run scripts/test (it runs npm ci in contracts/)");
    let dir = tempfile::tempdir().unwrap();
    let packed = run_in(
        &contracts.join("npm"),
        "npm",
        &["pack", "--json", "--pack-destination", dir.path().to_str().unwrap()],
        &[],
    );
    let packed: serde_json::Value = serde_json::from_str(&packed).unwrap();
    let files: Vec<&str> = packed[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for shipped in [
        "AIKernelConsumer.sol",
        "interfaces/IAIKernel.sol",
        "interfaces/IAIKernelConsumer.sol",
        "examples/HelloKernel.sol",
        "abi/DecentralizedInference.json",
        "abi/AIKernelConsumer.json",
        "README.md",
        "package.json",
    ] {
        assert!(files.contains(&shipped), "{shipped} missing from {files:?}");
    }
    assert!(
        files.iter().all(|f| !f.contains("TestConsumer") && !f.contains("kernel/")),
        "only what a dapp imports: {files:?}"
    );
    let tarball = dir.path().join(packed[0]["filename"].as_str().unwrap());

    // A fresh project: the README's example, a config whose compiler is npm's solc, a deploy
    // script that uses Hardhat's own provider and artifacts.
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("contracts")).unwrap();
    std::fs::create_dir_all(project.join("scripts")).unwrap();
    std::fs::write(project.join("package.json"), r#"{"name": "fresh-dapp", "private": true}"#)
        .unwrap();
    let readme = std::fs::read_to_string(contracts.join("npm/README.md")).unwrap();
    let example = readme
        .split("```solidity\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a Solidity example in the package README");
    assert!(
        example.contains(
            "import {AIKernelConsumer} from \"@ai-kernel/contracts/AIKernelConsumer.sol\";"
        )
    );
    std::fs::write(project.join("contracts/Hello.sol"), example).unwrap();
    std::fs::write(
        project.join("hardhat.config.cjs"),
        r#"const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");

// Offline: compile with npm's solc (solcjs) instead of a downloaded compiler.
subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async ({ solcVersion }) => {
  const solc = require(process.env.SOLCJS_DIR);
  return {
    compilerPath: require.resolve(process.env.SOLCJS_DIR + "/soljson.js"),
    isSolcJs: true,
    version: solcVersion,
    longVersion: solc.version(),
  };
});

module.exports = {
  solidity: { version: "0.8.37", settings: { evmVersion: "prague", optimizer: { enabled: true, runs: 200 } } },
  networks: { localhost: { url: process.env.AIK_RPC ?? "http://127.0.0.1:8545" } },
};
"#,
    )
    .unwrap();
    std::fs::write(
        project.join("scripts/deploy.cjs"),
        r#"const hre = require("hardhat");

async function main() {
  const artifact = await hre.artifacts.readArtifact("Hello");
  const provider = hre.network.provider;
  const [from] = await provider.request({ method: "eth_accounts" });
  const word = (hex) => hex.replace(/^0x/, "").padStart(64, "0");
  const args = word(process.env.AIK_KERNEL) + word(BigInt(process.env.AIK_MODEL).toString(16));
  const hash = await provider.request({
    method: "eth_sendTransaction",
    params: [{ from, data: artifact.bytecode + args }],
  });
  const receipt = await provider.request({ method: "eth_getTransactionReceipt", params: [hash] });
  console.log(JSON.stringify({ address: receipt.contractAddress, status: receipt.status }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
"#,
    )
    .unwrap();
    let tarball = tarball.to_str().unwrap();
    run_in(&project, "npm", &["install", "--offline", "--no-audit", "--no-fund", tarball], &[]);
    assert!(project.join("node_modules/@ai-kernel/contracts/interfaces/IAIKernel.sol").is_file());
    // Hardhat itself from the copy scripts/test installed (linked, as `npm link` would).
    std::os::unix::fs::symlink(&hardhat, project.join("node_modules/hardhat")).unwrap();
    let cli = "node_modules/hardhat/internal/cli/cli.js";
    let solc = solc.to_str().unwrap();
    let compiled = run_in(&project, "node", &[cli, "compile"], &[("SOLCJS_DIR", solc)]);
    assert!(compiled.contains("Compiled"), "{compiled}");

    let node = HardhatNode::start();
    let net = KernelOnHardhat::deploy(&node).await;
    let kernel = net.owner.addresses().kernel.to_string();
    let model = net.model.to_string();
    let deployed = run_in(
        &project,
        "node",
        &[cli, "run", "scripts/deploy.cjs", "--network", "localhost"],
        &[
            ("SOLCJS_DIR", solc),
            ("AIK_RPC", &node.url),
            ("AIK_KERNEL", &kernel),
            ("AIK_MODEL", &model),
        ],
    );
    let deployed: serde_json::Value = serde_json::from_str(deployed.trim()).unwrap();
    assert_eq!(deployed["status"], "0x1", "{deployed}");
    let address: alloy::primitives::Address =
        deployed["address"].as_str().unwrap().parse().unwrap();

    // The consumer built from the package talks to the real kernel.
    let requester = wallet_provider(&node.url, net.accounts[4].signer.clone()).unwrap();
    let hello = IHello::new(address, requester.clone());
    assert_eq!(hello.kernel().call().await.unwrap(), net.owner.addresses().kernel);
    assert_eq!(hello.modelId().call().await.unwrap(), net.model);
    let fee = net.owner.estimate_fee(net.model, 4, 100_000).await.unwrap();
    let id = hello.ask("Is water wet?".into()).value(fee).call().await.unwrap();
    let receipt = hello
        .ask("Is water wet?".into())
        .value(fee)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert_eq!(net.owner.prompt(id).await.unwrap().requester, address);
    let yes = U256::from(1).to_be_bytes::<32>();
    let drawer = net.owner.connect(requester, net.accounts[4].address);
    net.answer(&drawer, id, &yes).await;
    assert!(hello.answered(id).call().await.unwrap(), "the kernel called the consumer back");
    assert!(hello.answer(id).call().await.unwrap());
}
