//! What a demo runs in: an account on a network running AI Kernel.

use std::time::{Duration, Instant};

use aik_kernel::{KernelAddresses, KernelClient, PromptStatus, winning_output};
use alloy::{
    contract::{CallBuilder, CallDecoder},
    primitives::{Address, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionReceipt,
};

use crate::{Error, Result};

/// How a prompt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The committee agreed: the canonical output bytes (the contract's callback has run).
    Finalized(Vec<u8>),
    /// No answer: the kernel refunded the fee to the requester (the example contract): all of
    /// it, or, when fewer than a quorum of the committee committed, all but the committers'
    /// share.
    Refunded,
}

/// What a demo did: its prompts, the answer, and the onchain effect it checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The example contract the demo deployed.
    pub contract: Address,
    /// The prompts it submitted, in order.
    pub prompts: Vec<U256>,
    /// The deciding answer, as text.
    pub answer: String,
    /// The onchain effect, as text.
    pub effect: String,
}

/// An account on a network running AI Kernel (`aik up`, or a test's in-process network) and
/// where a demo's progress lines go.
pub struct DemoEnv {
    provider: DynProvider,
    account: Address,
    kernel: KernelClient<DynProvider>,
    model_id: U256,
    timeout: Duration,
    log: Box<dyn Fn(&str) + Send + Sync>,
}

impl std::fmt::Debug for DemoEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoEnv")
            .field("account", &self.account)
            .field("kernel", &self.kernel.addresses().kernel)
            .field("model_id", &self.model_id)
            .finish_non_exhaustive()
    }
}

impl DemoEnv {
    /// `provider` signs as `account`, which pays for everything the demo does; prompts go to
    /// `model_id`. Progress lines are dropped until [`DemoEnv::with_log`]; prompts may take
    /// ten minutes.
    pub fn new(
        provider: DynProvider,
        account: Address,
        addresses: KernelAddresses,
        model_id: U256,
    ) -> Self {
        let kernel = KernelClient::new(provider.clone(), account, addresses);
        Self {
            provider,
            account,
            kernel,
            model_id,
            timeout: Duration::from_secs(600),
            log: Box::new(|_| {}),
        }
    }

    /// Sends each progress line to `log` (the CLI prints them; tests log them).
    pub fn with_log(mut self, log: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.log = Box::new(log);
        self
    }

    /// How long to wait for one prompt to end.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The provider, signing as [`DemoEnv::account`].
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The account that deploys and pays.
    pub fn account(&self) -> Address {
        self.account
    }

    /// The kernel, as the demo's account.
    pub fn kernel(&self) -> &KernelClient<DynProvider> {
        &self.kernel
    }

    /// The model prompts go to.
    pub fn model_id(&self) -> U256 {
        self.model_id
    }

    /// Reports one step of the demo.
    pub(crate) fn say(&self, line: impl AsRef<str>) {
        (self.log)(line.as_ref());
    }

    /// Sends a contract call as the demo's account and waits for a successful receipt.
    pub(crate) async fn send<D: CallDecoder>(
        &self,
        action: &str,
        call: CallBuilder<&DynProvider, D>,
    ) -> Result<TransactionReceipt> {
        let rejected = |reason: String| Error::Rejected { action: action.to_owned(), reason };
        // Dapp calls submit prompts: room for the path the kernel takes when mined.
        let estimate = call.estimate_gas().await.map_err(|e| rejected(e.to_string()))?;
        let call = call.gas(estimate + aik_kernel::SUBMIT_GAS_HEADROOM);
        let pending = call.send().await.map_err(|e| rejected(e.to_string()))?;
        let receipt = pending.get_receipt().await.map_err(|e| rejected(e.to_string()))?;
        if !receipt.status() {
            return Err(rejected(format!("transaction {} reverted", receipt.transaction_hash)));
        }
        Ok(receipt)
    }

    /// Waits until `prompt_id` is finalized, refunded or unavailable; an Optimistic prompt also
    /// until its callback ran (delivering it once its challenge window has passed, or waiting for
    /// the end of a challenge, whose answer it returns).
    pub async fn answer(&self, prompt_id: U256) -> Result<Answer> {
        let started = Instant::now();
        let mut last = PromptStatus::None;
        loop {
            let (status, _, miner) = self.kernel.result(prompt_id).await?;
            if status != last {
                self.say(format!("  prompt {prompt_id}: {status:?}"));
                last = status;
            }
            match status {
                PromptStatus::Finalized => {
                    let output =
                        winning_output(&self.provider, self.kernel.addresses().kernel, prompt_id)
                            .await?;
                    if let Some(opens) = self.kernel.delivery_opens_at(prompt_id).await? {
                        self.deliver(prompt_id, opens, &output, started).await?;
                        // Delivered, or a challenge took over: look again.
                        continue;
                    }
                    self.say(format!("  prompt {prompt_id}: answered by miner {miner}"));
                    return Ok(Answer::Finalized(output));
                }
                PromptStatus::Refunded | PromptStatus::Unavailable => return Ok(Answer::Refunded),
                _ => {}
            }
            if started.elapsed() > self.timeout {
                return Err(Error::Timeout { prompt_id, seconds: self.timeout.as_secs() });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Runs an Optimistic prompt's callback once its challenge window has passed (anyone may;
    /// this account is paid the callback's gas).
    async fn deliver(
        &self,
        prompt_id: U256,
        opens: u64,
        output: &[u8],
        started: Instant,
    ) -> Result<()> {
        self.say(format!(
            "  prompt {prompt_id}: Optimistic, called back once its challenge window ends (block time {opens})"
        ));
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if now >= opens {
                match self.kernel.deliver(prompt_id, output).await {
                    Ok(_) => {
                        self.say(format!("  prompt {prompt_id}: delivered"));
                        return Ok(());
                    }
                    // Delivered by someone else meanwhile, or a challenge took over.
                    Err(_) if self.kernel.delivery_opens_at(prompt_id).await?.is_none() => {
                        return Ok(());
                    }
                    // Block time trails the clock until a block is mined: try again.
                    Err(_) => {}
                }
            }
            if started.elapsed() > self.timeout {
                return Err(Error::Timeout { prompt_id, seconds: self.timeout.as_secs() });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The native-coin balance of `account`.
    pub(crate) async fn balance(&self, account: Address) -> Result<U256> {
        Ok(self.provider.get_balance(account).await?)
    }
}

/// Decodes the first log of type `E` in `receipt`.
pub(crate) fn event<E: alloy::sol_types::SolEvent>(receipt: &TransactionReceipt) -> Result<E> {
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<E>().ok())
        .map(|log| log.inner.data)
        .ok_or_else(|| Error::Unexpected {
            what: "receipt",
            detail: format!(
                "transaction {} emitted no {} event",
                receipt.transaction_hash,
                E::SIGNATURE
            ),
        })
}

/// Wei as ETH with 6 decimals, or as gwei when below a millionth of an ETH, for progress lines.
pub(crate) fn eth(wei: U256) -> String {
    let wei: u128 = wei.saturating_to();
    if wei < 1_000_000_000_000 {
        return format!("{} gwei", wei as f64 / 1e9);
    }
    let micro = wei / 1_000_000_000_000;
    format!("{}.{:06} ETH", micro / 1_000_000, micro % 1_000_000)
}

/// A failed read or deployment, named by what the demo was doing.
pub(crate) fn rejected(action: &str, error: impl std::fmt::Display) -> Error {
    Error::Rejected { action: action.to_owned(), reason: error.to_string() }
}
