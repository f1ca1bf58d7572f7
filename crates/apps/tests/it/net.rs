//! An in-process network for the examples: dev chain, kernel, the default model registered,
//! and three staked workers running either the real model or a script.
//!
//! - [`Net::live`] runs SmolLM2 (loaded once per test binary); live tests run one at a time,
//!   since three workers already share the machine's cores.
//! - [`Net::scripted`] runs workers whose driver answers what the test sets with
//!   [`Script::answer`] (all agree) or [`Script::disagree`] (no quorum, so the kernel retries and
//!   then refunds), or [`Script::answer_with`] (a rule over the request, for contracts that ask
//!   again from their callback), and records each request the committee ran, so a test can
//!   drive a contract down any path and check the context it sent.

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use aik_apps::{Answer, DemoEnv};
use aik_devnet::{Devnet, DevnetConfig};
use aik_infer::{ExecOptions, LlamaGgufDriver, Message, ModelDriver, Output, Request, StopReason};
use aik_kernel::{DeployParams, bindings::DecentralizedInference, wallet_provider};
use aik_node::{
    Deployment, Engine,
    network::{DEFAULT_MODEL_URI, LocalWorkers, deploy, model_spec},
};
use alloy::{
    contract::{CallBuilder, CallDecoder},
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, TransactionReceipt},
    sol_types::SolEvent,
};

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    CallForwarder,
    "../../contracts/out/CallForwarder.json"
);

/// An answer computed from the request; `None` makes the members disagree.
type Rule = Arc<dyn Fn(&Request) -> Option<Vec<u8>> + Send + Sync>;

/// What scripted workers answer.
#[derive(Clone)]
enum Mode {
    Agree(Vec<u8>),
    Disagree,
    Rule(Rule),
}

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Agree(bytes) => f.debug_tuple("Agree").field(bytes).finish(),
            Self::Disagree => f.write_str("Disagree"),
            Self::Rule(_) => f.write_str("Rule"),
        }
    }
}

/// The committee's script, shared by the three scripted workers.
#[derive(Debug)]
pub(crate) struct Script {
    mode: Mutex<Mode>,
    seen: Mutex<Vec<Request>>,
    /// While set, every member's run waits (up to a minute): the committee stays busy, so
    /// later prompts wait in the kernel's queue.
    held: std::sync::atomic::AtomicBool,
}

impl Script {
    /// From now on every member answers `output` (canonical bytes).
    pub(crate) fn answer(&self, output: impl Into<Vec<u8>>) {
        *self.mode.lock().unwrap() = Mode::Agree(output.into());
    }

    /// From now on every member answers differently: no output reaches quorum.
    pub(crate) fn disagree(&self) {
        *self.mode.lock().unwrap() = Mode::Disagree;
    }

    /// From now on every member answers `rule(request)`, all the same, or each differently where
    /// the rule returns `None`.
    pub(crate) fn answer_with(
        &self,
        rule: impl Fn(&Request) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) {
        *self.mode.lock().unwrap() = Mode::Rule(Arc::new(rule));
    }

    /// Keeps every member busy with its current prompt until [`Script::release`].
    pub(crate) fn hold(&self) {
        self.held.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Ends a [`Script::hold`]; call it before the test ends (held runs block shutdown).
    pub(crate) fn release(&self) {
        self.held.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// The requests the committee ran so far (one per prompt attempt), oldest first.
    pub(crate) fn seen(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

/// A worker's driver that answers from the [`Script`].
struct Scripted {
    member: u8,
    script: Arc<Script>,
}

impl ModelDriver for Scripted {
    fn version(&self) -> &'static str {
        LlamaGgufDriver::VERSION
    }

    /// A rough count (a token per 4 bytes, 4 per message): the script ignores the model.
    fn prompt_token_count(&self, messages: &[Message]) -> aik_infer::Result<usize> {
        Ok(messages.iter().map(|m| m.content.len() / 4 + 4).sum())
    }

    fn context_length(&self) -> usize {
        8192
    }

    fn run(&self, request: &Request) -> aik_infer::Result<Output> {
        let started = std::time::Instant::now();
        while self.script.held.load(std::sync::atomic::Ordering::SeqCst)
            && started.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.member == 0 {
            self.script.seen.lock().unwrap().push(request.clone());
        }
        let bytes = match &*self.script.mode.lock().unwrap() {
            Mode::Agree(bytes) => bytes.clone(),
            Mode::Disagree => format!("member {}", self.member).into_bytes(),
            Mode::Rule(rule) => {
                rule(request).unwrap_or_else(|| format!("member {}", self.member).into_bytes())
            }
        };
        Ok(Output {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
            tokens: Vec::new(),
            prompt_tokens: Vec::new(),
            logits_sha256: [0; 32],
            step_sha256: Vec::new(),
            stop: StopReason::Complete,
            prefill_time: Duration::ZERO,
            decode_time: Duration::ZERO,
        })
    }
}

/// The real model, loaded once for every test of the binary.
fn llama() -> Arc<LlamaGgufDriver> {
    static DRIVER: OnceLock<Arc<LlamaGgufDriver>> = OnceLock::new();
    DRIVER
        .get_or_init(|| {
            let path = aik_infer::default_model_path().expect("a home directory");
            assert!(path.is_file(), "run `aik model pull` first: {} is missing", path.display());
            Arc::new(LlamaGgufDriver::load(&path, ExecOptions::default()).unwrap())
        })
        .clone()
}

/// Live tests run one at a time.
static LIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) struct Net {
    devnet: Devnet,
    workers: LocalWorkers,
    pub(crate) deployment: Deployment,
    /// The account that deploys the examples and pays (dev account 5).
    pub(crate) provider: DynProvider,
    pub(crate) account: Address,
    /// Another funded account (dev account 6), for calls from someone else.
    pub(crate) other: DynProvider,
    _live: Option<tokio::sync::MutexGuard<'static, ()>>,
    _dir: tempfile::TempDir,
}

impl Net {
    /// Three workers running SmolLM2.
    pub(crate) async fn live() -> Self {
        let guard = LIVE.lock().await;
        let honest = Engine::new(llama());
        let mut net = Self::start(vec![honest.clone(), honest.clone(), honest]).await;
        net._live = Some(guard);
        net
    }

    /// Three workers answering from the returned script (initially: all answer `0x` empty).
    pub(crate) async fn scripted() -> (Self, Arc<Script>) {
        let script = Arc::new(Script {
            mode: Mutex::new(Mode::Agree(Vec::new())),
            seen: Mutex::default(),
            held: std::sync::atomic::AtomicBool::new(false),
        });
        let engines = (0..3)
            .map(|member| {
                let driver = Scripted { member, script: Arc::clone(&script) };
                Engine::new(Arc::new(driver))
            })
            .collect();
        (Self::start(engines).await, script)
    }

    async fn start(engines: Vec<Engine>) -> Self {
        let devnet = Devnet::spawn(DevnetConfig::test()).await.unwrap();
        let accounts = devnet.accounts().to_vec();
        let owner = accounts[0].signer.clone();
        let path = aik_infer::default_model_path().unwrap();
        let spec = model_spec(&path, "SmolLM2", vec![DEFAULT_MODEL_URI.into()], 3).unwrap();
        let mut params = DeployParams::dev(owner.address());
        // Shorter than the commit window: a prompt queued behind a held committee can be
        // cancelled while that committee's prompt is still open (it closes, bounded, after the
        // commit window, and its workers would then take the queued prompt).
        params.kernel.queueTimeout = 60;
        // The dapps' refunds and payouts these tests check exactly are about tokens: the
        // finalization's gas (paid from every fee, and again by a retry) is the kernel tests'
        // subject (`lifecycle::test_gas_fee_*`) and is on in the end-to-end tests on `aik up`.
        params.kernel.gasPrice = 0;
        // The wallet's and the DAO's Optimistic callbacks wait for the challenge window: two seconds
        // here, so that the demos deliver them within the test.
        params.kernel.challengeWindow = 2;
        let deployment = deploy(&devnet.http_url(), Some(devnet.ws_url()), &owner, &params, &spec)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let signers: Vec<_> = accounts[1..=3].iter().map(|a| a.signer.clone()).collect();
        let workers = LocalWorkers::start(
            &deployment,
            &owner,
            &signers,
            &engines,
            params.min_stake,
            dir.path(),
        )
        .await
        .unwrap();
        let provider = wallet_provider(&devnet.http_url(), accounts[5].signer.clone()).unwrap();
        let other = wallet_provider(&devnet.http_url(), accounts[6].signer.clone()).unwrap();
        Self {
            devnet,
            workers,
            deployment,
            provider,
            account: accounts[5].address,
            other,
            _live: None,
            _dir: dir,
        }
    }

    /// A demo environment for the paying account, logging to the test's output.
    pub(crate) fn env(&self) -> DemoEnv {
        DemoEnv::new(
            self.provider.clone(),
            self.account,
            self.deployment.addresses(),
            U256::from(self.deployment.model_id),
        )
        .with_timeout(Duration::from_secs(600))
        .with_log(|line| eprintln!("{line}"))
    }

    /// The kernel's address.
    pub(crate) fn kernel_address(&self) -> Address {
        self.deployment.kernel
    }

    /// The model id, as contracts take it.
    pub(crate) fn model(&self) -> U256 {
        U256::from(self.deployment.model_id)
    }

    /// Waits for `prompt_id` to end.
    pub(crate) async fn answer(&self, prompt_id: U256) -> Answer {
        self.env().answer(prompt_id).await.unwrap()
    }

    /// The native-coin balance of `account`.
    pub(crate) async fn balance(&self, account: Address) -> U256 {
        self.provider.get_balance(account).await.unwrap()
    }

    /// Moves block time forward by `seconds` and mines a block (e.g. past the queue timeout).
    pub(crate) async fn advance(&self, seconds: u64) {
        let _: serde_json::Value =
            self.provider.raw_request("evm_increaseTime".into(), (seconds,)).await.unwrap();
        let _: serde_json::Value = self.provider.raw_request("evm_mine".into(), ()).await.unwrap();
    }

    pub(crate) async fn stop(self) {
        self.workers.stop().await.unwrap();
        self.devnet.shutdown().await.unwrap();
    }
}

/// abi.encode(uint256): the canonical Uint, Choice and Bool output.
pub(crate) fn word(value: u64) -> Vec<u8> {
    U256::from(value).to_be_bytes::<32>().to_vec()
}

/// Sends `call` and returns its receipt, asserting it succeeded.
pub(crate) async fn sent<D: CallDecoder>(call: CallBuilder<&DynProvider, D>) -> TransactionReceipt {
    let receipt = call.send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status(), "transaction {} reverted", receipt.transaction_hash);
    receipt
}

/// The first `E` event in `receipt`.
pub(crate) fn event<E: SolEvent>(receipt: &TransactionReceipt) -> E {
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<E>().ok())
        .unwrap_or_else(|| panic!("no {} in {}", E::SIGNATURE, receipt.transaction_hash))
        .inner
        .data
}

/// What the sender of `receipt` paid for gas.
pub(crate) fn gas_paid(receipt: &TransactionReceipt) -> U256 {
    U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price)
}

/// The gas of the transaction that finalized `prompt` (and ran its callback), asserting the
/// callback succeeded.
pub(crate) async fn finalize_gas(net: &Net, prompt: U256) -> u64 {
    let filter = Filter::new()
        .address(net.kernel_address())
        .event_signature(DecentralizedInference::CallbackResult::SIGNATURE_HASH)
        .topic1(B256::from(prompt))
        .from_block(0);
    let logs = net.provider.get_logs(&filter).await.unwrap();
    let log = logs.last().expect("a CallbackResult");
    let result = log.log_decode::<DecentralizedInference::CallbackResult>().unwrap();
    assert!(result.inner.data.success, "the callback of prompt {prompt} failed");
    let hash = log.transaction_hash.unwrap();
    net.provider.get_transaction_receipt(hash).await.unwrap().unwrap().gas_used
}
