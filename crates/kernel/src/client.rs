//! A typed client for what a requester, a worker and the owner do.

use alloy::{
    contract::{CallBuilder, CallDecoder},
    primitives::{Address, B256, U256, keccak256},
    providers::Provider,
    rpc::types::{TransactionReceipt, TransactionRequest},
    sol_types::SolValue,
};

use crate::{
    ChallengeStatus, DeployParams, Error, Hardware, KernelAddresses, ModelSpec, PromptRecord,
    PromptRequest, PromptStatus, Result, SchedulingPolicy, WorkerStatus,
    bindings::{
        ContextManager::{self, ContextManagerInstance},
        DecentralizedInference::{self as DI, DecentralizedInferenceInstance, KernelParams},
        EAI::{self, EAIInstance},
        GPUManagement::{self, GPUManagementInstance},
        KernelTimelock,
        ModelFileSystem::{self, ModelFileSystemInstance},
        PromptScheduler::{self, PromptSchedulerInstance},
    },
    commitment,
    deploy::{deploy_kernel, install_timelock},
    tx::send,
};

/// Most operations with the same call a timelock keeps apart (by salt) before a client gives up
/// looking for a free one.
const MAX_TIMELOCK_SALTS: u64 = 1_000;

/// A submitted prompt.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// The prompt's id.
    pub prompt_id: U256,
    /// The escrowed fee.
    pub fee: U256,
    /// Whether the prompt was anchored for a committee draw in the same transaction (its
    /// committee can be drawn from the next block on); else it waits in its model's queue.
    pub anchored: bool,
    /// The transaction's receipt.
    pub receipt: TransactionReceipt,
}

/// A worker's onchain state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Staked EAI.
    pub stake: u128,
    /// End of jail or unbonding (0 when active).
    pub until: u64,
    /// Life stage.
    pub status: WorkerStatus,
    /// Prompts it runs at once.
    pub capacity: u16,
    /// Prompts assigned now.
    pub busy: u16,
    /// Models served.
    pub models: Vec<U256>,
    /// Its declared machine.
    pub hardware: Hardware,
}

/// The kernel seen from one account: every call is sent from `from` through `provider`, which
/// must be able to sign for it (e.g. an alloy wallet provider).
#[derive(Clone, Debug)]
pub struct KernelClient<P> {
    from: Address,
    addresses: KernelAddresses,
    token: EAIInstance<P>,
    models: ModelFileSystemInstance<P>,
    gpu: GPUManagementInstance<P>,
    context: ContextManagerInstance<P>,
    scheduler: PromptSchedulerInstance<P>,
    kernel: DecentralizedInferenceInstance<P>,
}

/// Gas added to finalize's estimate: room for the queue assignments (`pumpOnFinalize` of them,
/// a few hundred thousand gas each) that prompts submitted after the estimate add.
pub const FINALIZE_GAS_HEADROOM: u64 = 1_000_000;

/// Gas added to the estimate of a transaction that submits a prompt (directly or through a
/// dapp): whether the prompt is anchored for a draw or queued depends on the workers free when
/// it is mined, and the paths differ by some 15,000 gas, so a draw or finalization landing
/// between the estimate and the block would otherwise make it revert out of gas. Unused gas is
/// not paid for.
pub const SUBMIT_GAS_HEADROOM: u64 = 100_000;

impl<P: Provider + Clone> KernelClient<P> {
    /// A client for the kernel at `addresses`, acting as `from`.
    pub fn new(provider: P, from: Address, addresses: KernelAddresses) -> Self {
        Self {
            from,
            addresses,
            token: EAI::new(addresses.token, provider.clone()),
            models: ModelFileSystem::new(addresses.models, provider.clone()),
            gpu: GPUManagement::new(addresses.gpu, provider.clone()),
            context: ContextManager::new(addresses.context, provider.clone()),
            scheduler: PromptScheduler::new(addresses.scheduler, provider.clone()),
            kernel: DI::new(addresses.kernel, provider),
        }
    }

    /// Deploys a kernel with `params` (sent from `params.owner`) and returns the owner's client;
    /// with `params.timelock_delay`, the timelock owns it from the start.
    pub async fn deploy(provider: P, params: &DeployParams) -> Result<Self> {
        let mut addresses = deploy_kernel(&provider, params).await?;
        if let Some(delay) = params.timelock_delay {
            addresses = install_timelock(&provider, addresses, params.owner, delay).await?;
        }
        Ok(Self::new(provider, params.owner, addresses))
    }

    /// Hands every contract to a new `KernelTimelock` with `delay` seconds (this client's account
    /// proposes and executes); this client's owner actions go through it from then on.
    pub async fn install_timelock(&mut self, delay: u64) -> Result<Address> {
        let provider = self.kernel.provider().clone();
        self.addresses = install_timelock(&provider, self.addresses, self.from, delay).await?;
        Ok(self.addresses.timelock.unwrap_or_default())
    }

    /// The same kernel seen from another account (with a provider that signs for it).
    pub fn connect<Q: Provider + Clone>(&self, provider: Q, from: Address) -> KernelClient<Q> {
        KernelClient::new(provider, from, self.addresses)
    }

    /// The account this client acts as.
    pub const fn from(&self) -> Address {
        self.from
    }

    /// The kernel's contract addresses.
    pub const fn addresses(&self) -> &KernelAddresses {
        &self.addresses
    }

    /// The DecentralizedInference binding, for calls the client does not wrap.
    pub const fn kernel(&self) -> &DecentralizedInferenceInstance<P> {
        &self.kernel
    }

    /// The GPUManagement binding.
    pub const fn gpu(&self) -> &GPUManagementInstance<P> {
        &self.gpu
    }

    /// The ModelFileSystem binding.
    pub const fn models(&self) -> &ModelFileSystemInstance<P> {
        &self.models
    }

    /// The ContextManager binding.
    pub const fn context(&self) -> &ContextManagerInstance<P> {
        &self.context
    }

    /// The PromptScheduler binding.
    pub const fn scheduler(&self) -> &PromptSchedulerInstance<P> {
        &self.scheduler
    }

    /// The EAI binding.
    pub const fn token(&self) -> &EAIInstance<P> {
        &self.token
    }

    // ------------------------------------------------------------------ requester

    /// The fee for `max_tokens` output tokens of `model_id` at the model's price, called back
    /// with `callback_gas` gas (0: no callback): tokens plus [`Self::gas_fee`].
    pub async fn estimate_fee(
        &self,
        model_id: U256,
        max_tokens: u32,
        callback_gas: u32,
    ) -> Result<U256> {
        self.kernel
            .estimateFee(model_id, max_tokens, callback_gas)
            .call()
            .await
            .map_err(|e| Error::contract("estimateFee", e))
    }

    /// The part of every fee that pays the finalization and the callback's gas limit at the
    /// kernel's gas price; whoever finalizes gets it.
    pub async fn gas_fee(&self, callback_gas: u32) -> Result<U256> {
        self.kernel.gasFee(callback_gas).call().await.map_err(|e| Error::contract("gasFee", e))
    }

    /// Submits a prompt, paying exactly its fee (the bid per token times max tokens, or the
    /// model's price when the bid is zero, plus the protocol's gas).
    pub async fn submit(&self, request: &PromptRequest) -> Result<Submitted> {
        let callback_gas = request.callback_gas_limit;
        let fee = if request.fee_per_token == 0 {
            self.estimate_fee(request.model_id, request.max_tokens, callback_gas).await?
        } else {
            U256::from(request.fee_per_token) * U256::from(request.max_tokens)
                + self.gas_fee(callback_gas).await?
        };
        self.submit_paying(request, fee).await
    }

    /// Submits a prompt with `value` attached (any excess over the fee comes back).
    /// The gas limit is the estimate plus [`SUBMIT_GAS_HEADROOM`].
    pub async fn submit_paying(&self, request: &PromptRequest, value: U256) -> Result<Submitted> {
        let call = self.kernel.infer(request.to_sol()).value(value).from(self.from);
        let estimate = call.estimate_gas().await.map_err(|e| Error::contract("infer", e))?;
        let receipt = send(call.gas(estimate + SUBMIT_GAS_HEADROOM), "infer").await?;
        let submitted = receipt
            .inner
            .logs()
            .iter()
            .find_map(|log| log.log_decode::<DI::PromptSubmitted>().ok())
            .ok_or(Error::MissingEvent {
                action: "infer",
                event: "PromptSubmitted",
                tx: receipt.transaction_hash,
            })?;
        let anchored = receipt
            .inner
            .logs()
            .iter()
            .filter_map(|log| log.log_decode::<PromptScheduler::Anchored>().ok())
            .any(|log| log.inner.data.promptId == submitted.inner.data.promptId);
        Ok(Submitted {
            prompt_id: submitted.inner.data.promptId,
            fee: submitted.inner.data.fee,
            anchored,
            receipt,
        })
    }

    /// A prompt's status, winning output hash and miner.
    pub async fn result(&self, prompt_id: U256) -> Result<(PromptStatus, B256, Address)> {
        let result = self
            .kernel
            .getResult(prompt_id)
            .call()
            .await
            .map_err(|e| Error::contract("getResult", e))?;
        Ok((PromptStatus::try_from(result.status)?, result.outputHash, result.miner))
    }

    /// A prompt's stored record.
    pub async fn prompt(&self, prompt_id: U256) -> Result<PromptRecord> {
        let record = self
            .kernel
            .getPrompt(prompt_id)
            .call()
            .await
            .map_err(|e| Error::contract("getPrompt", e))?;
        PromptRecord::try_from(record)
    }

    /// A prompt's current committee and per-member commitment (or revealed output hash).
    pub async fn committee(&self, prompt_id: U256) -> Result<(Vec<Address>, Vec<B256>)> {
        let committee = self
            .kernel
            .getCommittee(prompt_id)
            .call()
            .await
            .map_err(|e| Error::contract("getCommittee", e))?;
        Ok((committee.members, committee.hashes))
    }

    /// Cancels a prompt still queued after the queue timeout (anyone may; the fee goes back to
    /// its requester).
    pub async fn cancel_queued(&self, prompt_id: U256) -> Result<TransactionReceipt> {
        send(self.kernel.cancelQueued(prompt_id).from(self.from), "cancelQueued").await
    }

    /// Challenges a finalized prompt's answer, paying `bond` (the kernel's `challengeBond`): a
    /// committee of 2k + 1 other workers recomputes it, and a majority it proves wrong is slashed.
    pub async fn challenge(&self, prompt_id: U256, bond: U256) -> Result<TransactionReceipt> {
        send(self.kernel.challenge(prompt_id).value(bond).from(self.from), "challenge").await
    }

    /// Runs an Optimistic prompt's callback once its challenge window has passed (`output` must
    /// hash to its output hash); the caller is paid the callback's gas.
    pub async fn deliver(&self, prompt_id: U256, output: &[u8]) -> Result<TransactionReceipt> {
        let call = self.kernel.deliver(prompt_id, output.to_vec().into()).from(self.from);
        let estimate = call
            .clone()
            .block(alloy::eips::BlockId::pending())
            .estimate_gas()
            .await
            .map_err(|e| Error::contract("deliver", e))?;
        send(call.gas(estimate + FINALIZE_GAS_HEADROOM), "deliver").await
    }

    /// The first second `deliver` accepts a prompt's Optimistic callback; None when none waits.
    pub async fn delivery_opens_at(&self, prompt_id: U256) -> Result<Option<u64>> {
        let opens = self
            .kernel
            .deliveryOpensAt(prompt_id)
            .call()
            .await
            .map_err(|e| Error::contract("deliveryOpensAt", e))?;
        Ok((!opens.is_zero()).then(|| opens.to::<u64>()))
    }

    /// A prompt's challenge: who challenged, where it is, and the bond.
    pub async fn challenge_of(&self, prompt_id: U256) -> Result<(Address, ChallengeStatus, U256)> {
        let record = self
            .kernel
            .getChallenge(prompt_id)
            .call()
            .await
            .map_err(|e| Error::contract("getChallenge", e))?;
        Ok((record.challenger, ChallengeStatus::try_from(record.status)?, U256::from(record.bond)))
    }

    /// The last second a finalized prompt can be challenged; None when it no longer can.
    pub async fn challenge_deadline(&self, prompt_id: U256) -> Result<Option<u64>> {
        let deadline = self
            .kernel
            .challengeDeadline(prompt_id)
            .call()
            .await
            .map_err(|e| Error::contract("challengeDeadline", e))?;
        Ok((!deadline.is_zero()).then(|| deadline.to::<u64>()))
    }

    /// Withdraws this account's claimable native coin to `to`.
    pub async fn claim(&self, to: Address) -> Result<TransactionReceipt> {
        send(self.kernel.claim(to).from(self.from), "claim").await
    }

    /// The native coin credited back to a closed prompt's requester (the whole fee when
    /// refunded, the fee less the committers' share when unavailable).
    pub async fn refund_of(&self, prompt_id: U256) -> Result<U256> {
        self.kernel.refundOf(prompt_id).call().await.map_err(|e| Error::contract("refundOf", e))
    }

    /// Native coin `account` can claim.
    pub async fn claimable(&self, account: Address) -> Result<U256> {
        self.kernel.claimable(account).call().await.map_err(|e| Error::contract("claimable", e))
    }

    /// The topic id of (`account`, `topic`), as the contracts compute it.
    pub fn topic_id(account: Address, topic: &str) -> B256 {
        keccak256((account, topic.to_owned()).abi_encode_params())
    }

    /// Sets the system prompt of this account's `topic` (a new revision).
    pub async fn set_system_prompt(&self, topic: &str, prompt: &str) -> Result<TransactionReceipt> {
        send(
            self.context.setSystemPrompt(topic.to_owned(), prompt.to_owned()).from(self.from),
            "setSystemPrompt",
        )
        .await
    }

    /// Sets how many turns of history this account's `topic` includes.
    pub async fn set_window(&self, topic: &str, window: u16) -> Result<TransactionReceipt> {
        send(self.context.setWindow(topic.to_owned(), window).from(self.from), "setWindow").await
    }

    // ------------------------------------------------------------------ worker

    /// Approves `stake` EAI and registers this account as a worker.
    pub async fn register_worker(
        &self,
        hardware: &Hardware,
        models: &[U256],
        capacity: u16,
        stake: U256,
    ) -> Result<TransactionReceipt> {
        self.approve_stake(stake).await?;
        let call =
            self.gpu.register(hardware.to_sol(), models.to_vec(), capacity, stake).from(self.from);
        // A prompt anchored between the estimate and the block freezes the pools, and the
        // registration then logs its pool change instead of applying it: more gas.
        let estimate = call.estimate_gas().await.map_err(|e| Error::contract("register", e))?;
        send(call.gas(estimate + SUBMIT_GAS_HEADROOM), "register").await
    }

    /// Lets GPUManagement take `amount` EAI from this account.
    pub async fn approve_stake(&self, amount: U256) -> Result<TransactionReceipt> {
        send(self.token.approve(self.addresses.gpu, amount).from(self.from), "approve").await
    }

    /// Approves and adds `amount` EAI to this worker's stake.
    pub async fn add_stake(&self, amount: U256) -> Result<TransactionReceipt> {
        self.approve_stake(amount).await?;
        send(self.gpu.addStake(amount).from(self.from), "addStake").await
    }

    /// Starts unbonding.
    pub async fn request_unstake(&self) -> Result<TransactionReceipt> {
        send(self.gpu.requestUnstake().from(self.from), "requestUnstake").await
    }

    /// Withdraws the stake after unbonding.
    pub async fn withdraw(&self) -> Result<TransactionReceipt> {
        send(self.gpu.withdraw().from(self.from), "withdraw").await
    }

    /// Leaves jail.
    pub async fn unjail(&self) -> Result<TransactionReceipt> {
        send(self.gpu.unjail().from(self.from), "unjail").await
    }

    /// The registry's minimum stake, per unit of a worker's capacity.
    pub async fn min_stake(&self) -> Result<U256> {
        let params = self
            .gpu
            .stakingParams()
            .call()
            .await
            .map_err(|e| Error::contract("stakingParams", e))?;
        Ok(params.minStake)
    }

    /// Leaves the draw pools without penalty (assigned prompts still need answers).
    pub async fn pause(&self) -> Result<TransactionReceipt> {
        send(self.gpu.pause().from(self.from), "pause").await
    }

    /// Rejoins the draw pools after [`Self::pause`].
    pub async fn resume(&self) -> Result<TransactionReceipt> {
        send(self.gpu.resume().from(self.from), "resume").await
    }

    /// Changes a paused worker's hardware, models and capacity, without unbonding.
    pub async fn update_worker(
        &self,
        hardware: &Hardware,
        models: &[U256],
        capacity: u16,
    ) -> Result<TransactionReceipt> {
        send(
            self.gpu.update(hardware.to_sol(), models.to_vec(), capacity).from(self.from),
            "update",
        )
        .await
    }

    /// A worker's state.
    pub async fn worker(&self, worker: Address) -> Result<WorkerInfo> {
        let info =
            self.gpu.getWorker(worker).call().await.map_err(|e| Error::contract("getWorker", e))?;
        Ok(WorkerInfo {
            stake: info.state.stake,
            until: info.state.until,
            status: WorkerStatus::try_from(info.state.status)?,
            capacity: info.state.capacity,
            busy: info.state.busy,
            models: info.models,
            hardware: Hardware::from_sol(info.hardware),
        })
    }

    /// Publishes the URL of the trustless gateway this worker serves its content store on (empty:
    /// withdraws it).
    pub async fn set_store_gateway(&self, url: &str) -> Result<TransactionReceipt> {
        send(self.kernel.setStoreGateway(url.to_string()).from(self.from), "setStoreGateway").await
    }

    /// The store gateway URL `worker` published (empty when none).
    pub async fn store_gateway(&self, worker: Address) -> Result<String> {
        self.kernel
            .storeGateway(worker)
            .call()
            .await
            .map_err(|e| Error::contract("storeGateway", e))
    }

    /// The store gateways workers published since block `from_block`, as `(worker, url)` in the
    /// order each worker first published one: only current, non-empty URLs of workers that still
    /// hold stake.
    pub async fn store_gateways(&self, from_block: u64) -> Result<Vec<(Address, String)>> {
        let logs = self
            .kernel
            .StoreGatewaySet_filter()
            .from_block(from_block)
            .query()
            .await
            .map_err(|e| Error::contract("StoreGatewaySet logs", e))?;
        let mut workers: Vec<Address> = Vec::new();
        for (event, _) in logs {
            if !workers.contains(&event.worker) {
                workers.push(event.worker);
            }
        }
        let mut gateways = Vec::new();
        for worker in workers {
            let url = self.store_gateway(worker).await?;
            if !url.is_empty() && self.worker(worker).await?.stake > 0 {
                gateways.push((worker, url));
            }
        }
        Ok(gateways)
    }

    /// Commits to `output_hash` with `salt` for the prompt's `attempt` (the commitment binds
    /// the attempt and this account's address).
    pub async fn commit(
        &self,
        prompt_id: U256,
        attempt: u8,
        output_hash: B256,
        salt: B256,
    ) -> Result<TransactionReceipt> {
        self.commit_raw(prompt_id, commitment(prompt_id, attempt, self.from, output_hash, salt))
            .await
    }

    /// Sends a precomputed commitment.
    pub async fn commit_raw(
        &self,
        prompt_id: U256,
        commitment: B256,
    ) -> Result<TransactionReceipt> {
        send(self.kernel.commit(prompt_id, commitment).from(self.from), "commit").await
    }

    /// Reveals an onchain output.
    pub async fn reveal(
        &self,
        prompt_id: U256,
        salt: B256,
        output: &[u8],
    ) -> Result<TransactionReceipt> {
        send(self.kernel.reveal(prompt_id, salt, output.to_vec().into()).from(self.from), "reveal")
            .await
    }

    /// Finalizes a prompt, handing over the winning output for the requester's callback.
    ///
    /// The gas limit is the estimate plus [`FINALIZE_GAS_HEADROOM`]: finalize assigns queued
    /// prompts before it calls the requester back and must keep the callback's full gas limit
    /// for it, so a prompt submitted between the estimate and the block would otherwise make
    /// the transaction revert. Unused gas is not paid for. The estimate runs against the pending
    /// block, whose time is the next block's.
    pub async fn finalize(&self, prompt_id: U256, output: &[u8]) -> Result<TransactionReceipt> {
        let call = self.kernel.finalize(prompt_id, output.to_vec().into()).from(self.from);
        // Estimated against the pending block: finalize opens at a time, and a chain that mines
        // only when asked (the dev chain) has a latest block from before it.
        let estimate = call
            .clone()
            .block(alloy::eips::BlockId::pending())
            .estimate_gas()
            .await
            .map_err(|e| Error::contract("finalize", e))?;
        send(call.gas(estimate + FINALIZE_GAS_HEADROOM), "finalize").await
    }

    /// Anchors up to `max` queued prompts of `model_id` for a draw, while workers are free.
    pub async fn pump(&self, model_id: U256, max: u64) -> Result<TransactionReceipt> {
        send(self.scheduler.pump(model_id, U256::from(max)).from(self.from), "pump").await
    }

    /// How many queued prompts of `model_id` a `pump` sent now would anchor (at most `max`):
    /// zero when the queue is empty or too few workers are free for its first prompt.
    pub async fn pumpable(&self, model_id: U256, max: u64) -> Result<u64> {
        if self
            .scheduler
            .queueLength(model_id)
            .call()
            .await
            .map_err(|e| Error::contract("queueLength", e))?
            .is_zero()
        {
            return Ok(0);
        }
        let anchored = self
            .scheduler
            .pump(model_id, U256::from(max))
            .from(self.from)
            .call()
            .await
            .map_err(|e| Error::contract("pump", e))?;
        Ok(anchored.to::<u64>())
    }

    /// Draws the committees of up to `max` anchored prompts whose anchor block has passed,
    /// oldest first. Anyone may draw; workers do.
    pub async fn draw(&self, max: u64) -> Result<TransactionReceipt> {
        send(self.scheduler.draw(U256::from(max)).from(self.from), "draw").await
    }

    /// Applies up to `max` logged changes to the draw pools that no pending draw still has to
    /// ignore (a registration, pause or penalty reaches the pools this way; draws do it too).
    pub async fn apply_pool_changes(&self, max: u64) -> Result<TransactionReceipt> {
        send(self.gpu.applyPoolChanges(U256::from(max)).from(self.from), "applyPoolChanges").await
    }

    /// The draw pool of `model_id`: its total weight (free seats) and its members.
    pub async fn pool(&self, model_id: U256) -> Result<(u64, u64)> {
        let pool =
            self.gpu.poolOf(model_id).call().await.map_err(|e| Error::contract("poolOf", e))?;
        Ok((pool.total.saturating_to(), pool.members.saturating_to()))
    }

    /// `worker`'s weight (free seats) in the draw pool of `model_id` (0: not drawn).
    pub async fn pool_weight(&self, model_id: U256, worker: Address) -> Result<u64> {
        let weight = self
            .gpu
            .poolWeight(model_id, worker)
            .call()
            .await
            .map_err(|e| Error::contract("poolWeight", e))?;
        Ok(weight.saturating_to())
    }

    /// Prompts awaiting their committee draw, and how many of them can be drawn now.
    pub async fn pending_draws(&self) -> Result<(u64, u64)> {
        // Against the pending block: a draw sent now lands in it, after the anchor (a dev chain
        // mines only when asked, so its latest block may be the anchor itself).
        let pending = self
            .scheduler
            .pendingDraws()
            .block(alloy::eips::BlockId::pending())
            .call()
            .await
            .map_err(|e| Error::contract("pendingDraws", e))?;
        Ok((pending.pending.to(), pending.drawable.to()))
    }

    /// The block whose randomness will draw the prompt's committee (None unless it awaits its
    /// draw).
    pub async fn anchor_of(&self, prompt_id: U256) -> Result<Option<u64>> {
        let anchor = self
            .scheduler
            .anchorOf(prompt_id)
            .call()
            .await
            .map_err(|e| Error::contract("anchorOf", e))?;
        Ok((anchor != 0).then_some(anchor))
    }

    // ------------------------------------------------------------------ owner

    /// Sends an owner action: from this account directly, or through the deployment's timelock.
    /// There it is checked first (simulated as the timelock, so a call that would revert is
    /// refused before it is scheduled), scheduled, and executed once its delay has passed: at
    /// once with a zero delay, else [`Error::Timelocked`] says when, and the same call made again
    /// then executes it. Operations with the same call are told apart by a salt counting up from
    /// zero, so a change made, undone and made again is a new operation each time.
    async fn govern<D: CallDecoder>(
        &self,
        call: CallBuilder<&P, D>,
        target: Address,
        action: &'static str,
    ) -> Result<TransactionReceipt> {
        let Some(timelock) = self.addresses.timelock else {
            return send(call.from(self.from), action).await;
        };
        let data = call.calldata().clone();
        let provider = self.kernel.provider();
        let check =
            TransactionRequest::default().from(timelock).to(target).input(data.clone().into());
        provider.call(check).await.map_err(|e| {
            let revert_data = e.as_error_resp().and_then(|r| r.as_revert_data());
            let reason = revert_data
                .as_ref()
                .and_then(|d| crate::error::decode_revert(d))
                .unwrap_or_else(|| e.to_string());
            Error::Rejected { action, reason, revert_data }
        })?;
        let lock = KernelTimelock::new(timelock, provider);
        let read = |e| Error::contract("timelock", e);
        let delay = lock.getMinDelay().call().await.map_err(read)?;
        for n in 0..MAX_TIMELOCK_SALTS {
            let salt = B256::from(U256::from(n));
            let operation = lock
                .hashOperation(target, U256::ZERO, data.clone(), B256::ZERO, salt)
                .call()
                .await
                .map_err(read)?;
            // OpenZeppelin's OperationState: Unset, Waiting, Ready, Done.
            match lock.getOperationState(operation).call().await.map_err(read)? {
                3 => continue,
                0 => {
                    let schedule =
                        lock.schedule(target, U256::ZERO, data.clone(), B256::ZERO, salt, delay);
                    send(schedule.from(self.from), action).await?;
                    if !delay.is_zero() {
                        let ready_at = lock.getTimestamp(operation).call().await.map_err(read)?;
                        let ready_at = ready_at.saturating_to();
                        return Err(Error::Timelocked { action, timelock, operation, ready_at });
                    }
                }
                1 => {
                    let ready_at = lock.getTimestamp(operation).call().await.map_err(read)?;
                    let ready_at = ready_at.saturating_to();
                    return Err(Error::Timelocked { action, timelock, operation, ready_at });
                }
                _ => {}
            }
            let execute = lock.execute(target, U256::ZERO, data, B256::ZERO, salt);
            return send(execute.from(self.from), action).await;
        }
        Err(Error::InvalidArgument {
            name: "owner action",
            reason: format!("{action}: {MAX_TIMELOCK_SALTS} identical operations already ran"),
        })
    }

    /// Registers a model and returns its id.
    pub async fn register_model(&self, spec: &ModelSpec) -> Result<U256> {
        let call = self.models.registerModel(spec.to_sol());
        let receipt = self.govern(call, self.addresses.models, "registerModel").await?;
        receipt
            .inner
            .logs()
            .iter()
            .find_map(|log| log.log_decode::<ModelFileSystem::ModelRegistered>().ok())
            .map(|log| log.inner.data.modelId)
            .ok_or(Error::MissingEvent {
                action: "registerModel",
                event: "ModelRegistered",
                tx: receipt.transaction_hash,
            })
    }

    /// Changes a model's price, committee size, policy and minimum memory.
    pub async fn set_model_terms(
        &self,
        model_id: U256,
        price_per_token: u128,
        committee_size: u8,
        policy: SchedulingPolicy,
        min_memory_mb: u64,
    ) -> Result<TransactionReceipt> {
        let call = self.models.setModelTerms(
            model_id,
            price_per_token,
            committee_size,
            policy as u8,
            min_memory_mb,
        );
        self.govern(call, self.addresses.models, "setModelTerms").await
    }

    /// Retires a model.
    pub async fn retire_model(&self, model_id: U256) -> Result<TransactionReceipt> {
        self.govern(self.models.retireModel(model_id), self.addresses.models, "retireModel").await
    }

    /// Replaces the kernel parameters.
    pub async fn set_params(&self, params: KernelParams) -> Result<TransactionReceipt> {
        self.govern(self.kernel.setParams(params), self.addresses.kernel, "setParams").await
    }

    /// The kernel parameters.
    pub async fn params(&self) -> Result<KernelParams> {
        self.kernel.getParams().call().await.map_err(|e| Error::contract("getParams", e))
    }

    /// Changes the minimum stake, unbonding period and treasury of GPUManagement.
    pub async fn set_staking_params(
        &self,
        min_stake: U256,
        unbonding_period: u64,
        treasury: Address,
    ) -> Result<TransactionReceipt> {
        let call = self.gpu.setStakingParams(min_stake, unbonding_period, treasury);
        self.govern(call, self.addresses.gpu, "setStakingParams").await
    }

    // ------------------------------------------------------------------ token

    /// EAI balance of `account`.
    pub async fn eai_balance(&self, account: Address) -> Result<U256> {
        self.token.balanceOf(account).call().await.map_err(|e| Error::contract("balanceOf", e))
    }

    /// EAI in existence (the initial supply plus every block reward minted).
    pub async fn eai_supply(&self) -> Result<U256> {
        self.token.totalSupply().call().await.map_err(|e| Error::contract("totalSupply", e))
    }

    /// The block reward the next finalized prompt's miner may earn, in EAI-wei.
    pub async fn current_block_reward(&self) -> Result<U256> {
        self.kernel
            .currentBlockReward()
            .call()
            .await
            .map_err(|e| Error::contract("currentBlockReward", e))
    }

    /// Sends `amount` EAI to `to`.
    pub async fn transfer_eai(&self, to: Address, amount: U256) -> Result<TransactionReceipt> {
        send(self.token.transfer(to, amount).from(self.from), "transfer").await
    }

    /// Sends `amount` wei of the chain's coin to `to` (gas money for a new account).
    pub async fn send_eth(&self, to: Address, amount: U256) -> Result<TransactionReceipt> {
        let provider = self.kernel.provider();
        let request =
            alloy::rpc::types::TransactionRequest::default().from(self.from).to(to).value(amount);
        let pending = provider.send_transaction(request).await.map_err(|e| Error::Rejected {
            action: "send ETH",
            reason: e.to_string(),
            revert_data: None,
        })?;
        crate::tx::receipt(provider, *pending.tx_hash(), "send ETH").await
    }
}

/// An HTTP provider that signs with `signer`, suited to the kernel: it estimates gas, reads the
/// chain id, and asks the node for each nonce rather than caching it, so a call rejected during
/// gas estimation (a revert) does not leave a nonce gap that stalls the next transaction.
pub fn wallet_provider(
    url: &str,
    signer: alloy::signers::local::PrivateKeySigner,
) -> Result<alloy::providers::DynProvider> {
    use alloy::providers::ProviderBuilder;
    let url = url.parse().map_err(|e| Error::InvalidArgument {
        name: "rpc url",
        reason: format!("{url:?} is not a URL: {e}"),
    })?;
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(alloy::network::EthereumWallet::from(signer))
        .connect_http(url)
        .erased())
}
