//! The worker loop: follow assignments, run prompts, commit, reveal, finalize, claim.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use aik_kernel::{
    CHALLENGE_ATTEMPT, Hardware, KernelAddresses, KernelClient, PromptRecord, PromptStatus,
    WorkerStatus, bindings::DecentralizedInference as DI, load_context, output_hash,
};
use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
    transports::ws::WsConnect,
};
use futures_util::StreamExt;
use tokio::sync::{Notify, watch};

use crate::{
    Answer, Engine, Error, Result,
    db::{Job, NodeDb, Stage},
    step::{Step, next_step},
};

/// How long past the reveal deadline a worker keeps retrying a finalize that reverted while
/// the prompt was still open.
const FINALIZE_RETRY_SECS: u64 = 60;

/// How a worker connects and behaves.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// HTTP JSON-RPC endpoint (transactions and reads).
    pub rpc_url: String,
    /// WebSocket endpoint for assignment events; without one the worker only polls.
    pub ws_url: Option<String>,
    /// The worker's key.
    pub signer: PrivateKeySigner,
    /// The kernel.
    pub addresses: KernelAddresses,
    /// Models served.
    pub models: Vec<U256>,
    /// Stake to register with, in EAI wei.
    pub stake: U256,
    /// Prompts run at once.
    pub capacity: u16,
    /// Declared hardware.
    pub hardware: Hardware,
    /// First block to scan for assignments when the database has no record yet.
    pub start_block: u64,
    /// Poll interval (the fallback when no subscription event arrives).
    pub poll_interval: Duration,
    /// Longest pause between retries after RPC errors.
    pub max_backoff: Duration,
    /// How often to claim earned fees.
    pub claim_interval: Duration,
    /// Content store holding prompt data that requests reference by sha256 instead of carrying
    /// it onchain (`None`: such prompts fail on this worker).
    pub store_dir: Option<std::path::PathBuf>,
    /// Where to download prompt data missing from the store (IPFS by content id); `None` reads
    /// the store only.
    pub fetch: Option<aik_store::FetchConfig>,
    /// Police the network: re-run every finalized prompt of a served model that this worker did
    /// not sit on while its challenge window is open, and challenge an answer its own run
    /// disagrees with (paying the kernel's bond, which comes back when the challenge overturns the
    /// answer) when the challenger's expected reward is at least `challenge_min_reward`.
    pub challenge: bool,
    /// Least expected challenger reward, in EAI-wei, worth a challenge (see `challenge`): the
    /// kernel's `challengeRewardBps` of `slashChallengedBps` of the stakes that revealed the
    /// disputed answer.
    pub challenge_min_reward: U256,
}

impl WorkerConfig {
    /// Defaults for a local network: 1,000 EAI stake, capacity 1, this machine's hardware as
    /// detected ([`crate::hardware::detect`]) with the `gguf/1` engine, 200 ms polls, backoff up to 10 s, claims every 10 s; prompt data
    /// held in storage is read from the default content store, else fetched from IPFS.
    pub fn new(rpc_url: String, signer: PrivateKeySigner, addresses: KernelAddresses) -> Self {
        Self {
            rpc_url,
            ws_url: None,
            signer,
            addresses,
            models: vec![U256::from(1)],
            stake: U256::from(1_000u128 * 10u128.pow(18)),
            capacity: 1,
            hardware: crate::hardware::detect(aik_infer::LlamaGgufDriver::VERSION),
            start_block: 0,
            poll_interval: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            claim_interval: Duration::from_secs(10),
            store_dir: Some(aik_store::LocalStore::default_dir()),
            fetch: Some(aik_store::FetchConfig::default()),
            challenge: false,
            challenge_min_reward: U256::ZERO,
        }
    }
}

/// One staked worker: its account, its database and the model it runs.
#[derive(Debug)]
pub struct Worker {
    config: WorkerConfig,
    address: Address,
    provider: DynProvider,
    client: KernelClient<DynProvider>,
    /// The engine of each model served, in `config.models` order.
    engines: Vec<(U256, Engine)>,
    db: Arc<NodeDb>,
    fetcher: Option<aik_store::Fetcher>,
    /// Outputs being computed, by (prompt, attempt). The model runs off the loop, so a worker
    /// serving several prompts at once keeps committing, revealing and finalizing the others.
    computing: Mutex<HashMap<(U256, u8), Computation>>,
    /// Woken by the kernel-event listener and by finished computations.
    wake: Arc<Notify>,
    /// Optimistic callbacks of prompts this worker sat on that wait for their challenge window,
    /// by prompt: the first block time `deliver` accepts them. Kept in memory: every member of the
    /// committee delivers (the first one is paid the callback's gas), so a restarted worker
    /// leaves its deliveries to the others.
    deliveries: Mutex<BTreeMap<U256, u64>>,
    /// With `config.challenge`: the next block whose `PromptFinalized` events it looks at.
    watched_from: Mutex<Option<u64>>,
}

/// The salt of a commitment: secret (derived from the worker's key) and unique per prompt and
/// attempt, so a restarted worker recomputes the one it saved.
fn salt(signer: &PrivateKeySigner, prompt_id: U256, attempt: u8) -> B256 {
    let mut bytes = signer.to_bytes().to_vec();
    bytes.extend_from_slice(&prompt_id.to_be_bytes::<32>());
    bytes.push(attempt);
    bytes.extend_from_slice(b"aik-commit-salt");
    keccak256(bytes)
}

/// Whole EAI in an amount of EAI-wei (for messages).
fn eai(amount: U256) -> U256 {
    amount / U256::from(10u64).pow(U256::from(18))
}

/// Most committees one draw transaction draws.
const DRAWS_PER_TX: u64 = 16;

fn wall_clock() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Worker {
    /// A worker acting through `config.rpc_url` with its jobs in `db`, running every model of
    /// `config.models` through `engine`.
    pub fn new(config: WorkerConfig, engine: Engine, db: NodeDb) -> Result<Self> {
        let engines = config.models.iter().map(|id| (*id, engine.clone())).collect();
        Self::with_engines(config, engines, db)
    }

    /// A worker serving several models, each through its own engine; `config.models` becomes
    /// the engines' model ids.
    pub fn with_engines(
        mut config: WorkerConfig,
        engines: Vec<(U256, Engine)>,
        db: NodeDb,
    ) -> Result<Self> {
        if engines.is_empty() {
            return Err(Error::Config("a worker needs at least one model to serve".into()));
        }
        config.models = engines.iter().map(|(id, _)| *id).collect();
        let address = config.signer.address();
        let provider = aik_kernel::wallet_provider(&config.rpc_url, config.signer.clone())?;
        let client = KernelClient::new(provider.clone(), address, config.addresses);
        let fetcher = config.fetch.as_ref().map(aik_store::Fetcher::new).transpose()?;
        Ok(Self {
            config,
            address,
            provider,
            client,
            engines,
            db: Arc::new(db),
            fetcher,
            computing: Mutex::default(),
            wake: Arc::new(Notify::new()),
            deliveries: Mutex::default(),
            watched_from: Mutex::default(),
        })
    }

    /// The worker's account.
    pub const fn address(&self) -> Address {
        self.address
    }

    /// The worker's database (jobs and their stages).
    pub fn db(&self) -> &NodeDb {
        &self.db
    }

    /// Registers and stakes unless already registered; unjails a worker whose jail time is over
    /// (the run loop calls it again every claim interval).
    pub async fn ensure_registered(&self) -> Result<()> {
        let info = self.client.worker(self.address).await?;
        match info.status {
            WorkerStatus::None | WorkerStatus::Exited => {
                self.check_stake_backs_capacity().await?;
                self.client
                    .register_worker(
                        &self.config.hardware,
                        &self.config.models,
                        self.config.capacity,
                        self.config.stake,
                    )
                    .await?;
                tracing::info!(worker = %self.address, stake = %self.config.stake, "registered");
            }
            WorkerStatus::Jailed if info.until < self.chain_now().await? => {
                self.client.unjail().await?;
                tracing::info!(worker = %self.address, "unjailed");
            }
            status => tracing::debug!(worker = %self.address, ?status, "already registered"),
        }
        Ok(())
    }

    /// Capacity is bought with stake (each unit needs the minimum stake): says so before a
    /// registration that the registry would refuse.
    async fn check_stake_backs_capacity(&self) -> Result<()> {
        let min_stake = self.client.min_stake().await?;
        let need = min_stake * U256::from(self.config.capacity);
        if self.config.stake < need {
            return Err(Error::Config(format!(
                "a stake of {} EAI does not back capacity {}: each prompt a worker runs at once \
                 needs the minimum stake of {} EAI, so stake at least {} EAI or lower the capacity",
                eai(self.config.stake),
                self.config.capacity,
                eai(min_stake),
                eai(need)
            )));
        }
        Ok(())
    }

    /// Runs until `shutdown` turns true: a WebSocket subscription (when configured) wakes the
    /// loop on every kernel event, and a poll catches anything it misses or while it is down.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let wake = Arc::clone(&self.wake);
        // Aborted on drop, so a worker whose task is cancelled leaves no subscription behind.
        let _listener = self.config.ws_url.clone().map(|url| {
            AbortOnDrop(tokio::spawn(listen(url, self.config.addresses.kernel, Arc::clone(&wake))))
        });
        let mut backoff = self.config.poll_interval;
        let mut last_claim = Instant::now();
        let mut registered = false;
        loop {
            let step = async {
                if !registered {
                    self.ensure_registered().await?;
                    registered = true;
                }
                self.tick().await?;
                if last_claim.elapsed() >= self.config.claim_interval {
                    last_claim = Instant::now();
                    self.claim().await?;
                    // Leaves jail once the jail time is over.
                    self.ensure_registered().await?;
                }
                Ok::<_, Error>(())
            };
            let pause = match step.await {
                Ok(()) => {
                    backoff = self.config.poll_interval;
                    self.config.poll_interval
                }
                Err(error) => {
                    tracing::warn!(worker = %self.address, %error, retry_in = ?backoff, "worker step failed");
                    let pause = backoff;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                    pause
                }
            };
            tokio::select! {
                _ = shutdown.changed() => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
        Ok(())
    }

    /// One pass: draw the committees that can be drawn, pick up new assignments, then advance
    /// every pending job as far as it goes.
    pub async fn tick(&self) -> Result<()> {
        self.draw_committees().await?;
        self.scan_assignments().await?;
        for job in self.db.pending()? {
            let (prompt_id, attempt) = (job.prompt_id, job.attempt);
            if let Err(error) = self.advance(job).await {
                if error.is_transient() {
                    return Err(error);
                }
                tracing::warn!(worker = %self.address, prompt = %prompt_id, attempt, %error, "prompt failed");
                if let Some(mut job) = self.db.get(prompt_id, attempt)? {
                    job.stage = Stage::Failed;
                    job.error = Some(error.to_string());
                    self.db.put(&job)?;
                }
            }
        }
        self.deliver_callbacks().await?;
        if self.config.challenge {
            self.police().await?;
        }
        Ok(())
    }

    /// Re-runs the prompts finalized since the last look (see [`WorkerConfig::challenge`]) and
    /// challenges the answers this worker's run disagrees with.
    async fn police(&self) -> Result<()> {
        let head = self.provider.get_block_number().await?;
        let from = self
            .watched_from
            .lock()
            .map_err(|_| Error::Task { prompt_id: String::new(), reason: "poisoned".into() })?
            .unwrap_or(self.config.start_block);
        if from > head {
            return Ok(());
        }
        let filter = Filter::new()
            .address(self.config.addresses.kernel)
            .event_signature(DI::PromptFinalized::SIGNATURE_HASH)
            .from_block(from)
            .to_block(head);
        for log in self.provider.get_logs(&filter).await? {
            let Ok(event) = DI::PromptFinalized::decode_log_data(log.data()) else { continue };
            match self.police_prompt(event.promptId).await {
                Err(error) if error.is_transient() => return Err(error),
                Err(error) => {
                    tracing::warn!(worker = %self.address, prompt = %event.promptId, %error, "could not re-run a finalized prompt: not challenging it");
                }
                Ok(()) => {}
            }
        }
        if let Ok(mut watched) = self.watched_from.lock() {
            *watched = Some(head + 1);
        }
        Ok(())
    }

    async fn police_prompt(&self, prompt_id: U256) -> Result<()> {
        if self.client.challenge_deadline(prompt_id).await?.is_none()
            || self.db.get(prompt_id, 0)?.is_some()
            || self.db.get(prompt_id, 1)?.is_some()
        {
            return Ok(());
        }
        let record = self.client.prompt(prompt_id).await?;
        if !self.engines.iter().any(|(model, _)| *model == U256::from(record.model_id)) {
            return Ok(());
        }
        let answer = self.compute(prompt_id).await?;
        let (_, disputed, _) = self.client.result(prompt_id).await?;
        if output_hash(&answer.bytes) == disputed {
            return Ok(());
        }
        let reward = self.expected_reward(prompt_id, disputed).await?;
        if reward < self.config.challenge_min_reward {
            tracing::info!(worker = %self.address, prompt = %prompt_id, %reward, "disagrees, but the expected reward is below the minimum: not challenging");
            return Ok(());
        }
        let bond = U256::from(self.client.params().await?.challengeBond);
        match self.client.challenge(prompt_id, bond).await {
            Ok(_) => {
                tracing::warn!(worker = %self.address, prompt = %prompt_id, %reward, "its answer differs from this worker's run: challenged");
                Ok(())
            }
            // Someone challenged first, or the window closed meanwhile.
            Err(_) if self.client.challenge_deadline(prompt_id).await?.is_none() => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// What a challenger of `prompt_id` expects to be paid if the challenge overturns the answer
    /// `disputed`: `challengeRewardBps` of `slashChallengedBps` of the stakes of the members that
    /// revealed it (before the wronged minority is made whole), in EAI-wei.
    async fn expected_reward(&self, prompt_id: U256, disputed: B256) -> Result<U256> {
        let params = self.client.params().await?;
        let filter = Filter::new()
            .address(self.config.addresses.kernel)
            .event_signature(DI::OutputRevealed::SIGNATURE_HASH)
            .topic1(B256::from(prompt_id))
            .from_block(self.config.start_block);
        let mut stakes = U256::ZERO;
        for log in self.provider.get_logs(&filter).await? {
            if let Ok(event) = DI::OutputRevealed::decode_log_data(log.data())
                && event.outputHash == disputed
            {
                stakes += U256::from(self.client.worker(event.worker).await?.stake);
            }
        }
        let bps = U256::from(10_000u64);
        Ok(stakes * U256::from(params.slashChallengedBps) / bps
            * U256::from(params.challengeRewardBps)
            / bps)
    }

    /// Delivers the Optimistic callbacks whose challenge window has passed (`deliver`, paid the
    /// callback's gas). One delivered by someone else, or taken over by a challenge (which calls
    /// back when it ends), is dropped.
    async fn deliver_callbacks(&self) -> Result<()> {
        // Nothing waiting (the usual case): no RPC on the worker's loop.
        if self.deliveries.lock().is_ok_and(|deliveries| deliveries.is_empty()) {
            return Ok(());
        }
        let now = self.chain_now().await?;
        let due: Vec<U256> = self
            .deliveries
            .lock()
            .map_err(|_| Error::Task {
                prompt_id: String::new(),
                reason: "the delivery table was poisoned".into(),
            })?
            .iter()
            .filter(|(_, opens)| **opens <= now)
            .map(|(prompt, _)| *prompt)
            .collect();
        for prompt_id in due {
            let output =
                aik_kernel::winning_output(&self.provider, self.config.addresses.kernel, prompt_id)
                    .await?;
            let done = match self.client.deliver(prompt_id, &output).await {
                Ok(_) => {
                    tracing::info!(worker = %self.address, prompt = %prompt_id, "delivered the Optimistic callback");
                    true
                }
                // Block time trails the clock until a block is mined: the next tick tries again.
                Err(_) => self.client.delivery_opens_at(prompt_id).await?.is_none(),
            };
            if done && let Ok(mut deliveries) = self.deliveries.lock() {
                deliveries.remove(&prompt_id);
            }
        }
        Ok(())
    }

    /// Block time now: the later of the head's timestamp and the wall clock (a dev chain mines
    /// only when asked, so its head can lag).
    async fn chain_now(&self) -> Result<u64> {
        let head = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await?
            .map_or(0, |b| b.header.timestamp);
        Ok(head.max(wall_clock()))
    }

    /// Draws the committees of anchored prompts whose anchor block has passed. Any worker may:
    /// the draw is a function of the anchor block's randomness and the pool at that block, so
    /// who sends it changes nothing; when two workers race, the second draws nothing.
    async fn draw_committees(&self) -> Result<()> {
        // Prompts (and challenges) queued while too few workers were free move on only when a
        // finalization or a draw pumps the queue; on a quiet network, or once new workers joined,
        // a free worker pumps it itself, when that would anchor something.
        for (model, _) in &self.engines {
            if self.client.pumpable(*model, 1).await? != 0 {
                self.client.pump(*model, 1).await?;
                tracing::debug!(worker = %self.address, %model, "anchored a queued prompt");
            }
        }
        let (_, drawable) = self.client.pending_draws().await?;
        if drawable != 0 {
            self.client.draw(DRAWS_PER_TX).await?;
            tracing::debug!(worker = %self.address, drawable, "drew committees");
        }
        Ok(())
    }

    /// Reads `CommitteeAssigned` events since the last scan and records this worker's jobs.
    async fn scan_assignments(&self) -> Result<()> {
        let head = self.provider.get_block_number().await?;
        let from = match self.db.last_block()? {
            Some(last) if last >= head => return Ok(()),
            Some(last) => last + 1,
            None => self.config.start_block,
        };
        let filter = Filter::new()
            .address(self.config.addresses.kernel)
            .event_signature(DI::CommitteeAssigned::SIGNATURE_HASH)
            .from_block(from)
            .to_block(head);
        for log in self.provider.get_logs(&filter).await? {
            let Ok(event) = DI::CommitteeAssigned::decode_log_data(log.data()) else {
                tracing::warn!(tx = ?log.transaction_hash, "undecodable CommitteeAssigned log");
                continue;
            };
            let Some(member) = event.committee.iter().position(|m| *m == self.address) else {
                continue;
            };
            if self.db.get(event.promptId, event.attempt)?.is_some() {
                continue;
            }
            tracing::info!(worker = %self.address, prompt = %event.promptId, attempt = event.attempt, "assigned");
            self.db.put(&Job {
                prompt_id: event.promptId,
                attempt: event.attempt,
                member: member as u8,
                commit_deadline: event.commitDeadline,
                reveal_deadline: event.revealDeadline,
                stage: Stage::Assigned,
                output: Vec::new(),
                salt: B256::ZERO,
                error: None,
            })?;
        }
        self.db.set_last_block(head)
    }

    /// Moves one job through its stages ([`next_step`]) until it must wait for others.
    async fn advance(&self, mut job: Job) -> Result<()> {
        loop {
            let record = self.client.prompt(job.prompt_id).await?;
            let now = self.chain_now().await?;
            let before = job.stage;
            let bit = 1u16 << job.member;
            match next_step(&job, &record, now) {
                Step::Done => {
                    if record.status == PromptStatus::Finalized
                        && let Some(opens) = self.client.delivery_opens_at(job.prompt_id).await?
                        && let Ok(mut deliveries) = self.deliveries.lock()
                    {
                        deliveries.insert(job.prompt_id, opens);
                    }
                    job.stage = Stage::Done;
                    self.db.put(&job)?;
                    return Ok(());
                }
                Step::Wait => return Ok(()),
                Step::Compute => {
                    let Some(answer) = self.computed(&job)? else { return Ok(()) };
                    let answer = match answer.await {
                        Ok(answer) => answer,
                        Err(error) if error.is_transient() => return Err(error),
                        // A failure of this worker's own (data not published or not fetchable
                        // yet, a model it cannot run): the next tick tries again until the
                        // commit deadline, then it abstains.
                        Err(error) => {
                            tracing::warn!(worker = %self.address, prompt = %job.prompt_id, %error, "cannot answer yet; retrying until the commit deadline");
                            job.error = Some(error.to_string());
                            self.db.put(&job)?;
                            return Ok(());
                        }
                    };
                    if let Some((failure, reason)) = &answer.failure {
                        tracing::info!(worker = %self.address, prompt = %job.prompt_id, %failure, %reason, "the prompt cannot run: answering with the failure answer");
                    }
                    job.output = answer.bytes;
                    job.salt = salt(&self.config.signer, job.prompt_id, job.attempt);
                    job.stage = Stage::Computed;
                    job.error = None;
                    // Saved before the commit is sent: a restart reveals exactly this.
                    self.db.put(&job)?;
                }
                Step::Commit => {
                    self.client
                        .commit(job.prompt_id, job.attempt, output_hash(&job.output), job.salt)
                        .await?;
                    tracing::info!(worker = %self.address, prompt = %job.prompt_id, "committed");
                    job.stage = Stage::Committed;
                    self.db.put(&job)?;
                }
                Step::Reveal => {
                    if record.revealed_mask & bit == 0 {
                        self.client.reveal(job.prompt_id, job.salt, &job.output).await?;
                        tracing::info!(worker = %self.address, prompt = %job.prompt_id, "revealed");
                    }
                    job.stage = Stage::Revealed;
                    self.db.put(&job)?;
                }
                Step::Abstain => {
                    tracing::warn!(worker = %self.address, prompt = %job.prompt_id, error = job.error.as_deref().unwrap_or("the answer was not ready"), "commit deadline passed without an answer: abstaining");
                    if let Ok(mut computing) = self.computing.lock() {
                        computing.remove(&(job.prompt_id, job.attempt));
                    }
                    job.stage = Stage::Abstained;
                    self.db.put(&job)?;
                }
                Step::Finalize => return self.finalize(&job, &record, now).await,
            }
            if job.stage == before {
                return Ok(());
            }
        }
    }

    /// The prompt's context, with data held in storage read through the configured store.
    /// The job's output once its computation finished (started on the first call); `None`
    /// while the model is still running.
    fn computed(
        &self,
        job: &Job,
    ) -> Result<Option<impl std::future::Future<Output = Result<Answer>> + use<>>> {
        let key = (job.prompt_id, job.attempt);
        let mut computing = self.computing.lock().map_err(|_| Error::Task {
            prompt_id: job.prompt_id.to_string(),
            reason: "a computation panicked while holding the job table".into(),
        })?;
        match computing.get(&key) {
            Some(task) if task.0.is_finished() => {
                let mut task = computing.remove(&key).expect("present");
                let prompt_id = job.prompt_id.to_string();
                // Finished, so aborting it on drop afterwards is a no-op.
                Ok(Some(async move {
                    (&mut task.0)
                        .await
                        .map_err(|e| Error::Task { prompt_id, reason: e.to_string() })?
                }))
            }
            Some(_) => Ok(None),
            None => {
                computing.insert(key, AbortOnDrop(tokio::spawn(self.compute(job.prompt_id))));
                Ok(None)
            }
        }
    }

    /// Loads the prompt's context and answers it ([`Engine::answer`]), then wakes the loop.
    fn compute(
        &self,
        prompt_id: U256,
    ) -> impl std::future::Future<Output = Result<Answer>> + use<> {
        let provider = self.provider.clone();
        let addresses = self.config.addresses;
        let store_dir = self.config.store_dir.clone();
        let fetcher = self.fetcher.clone();
        let engines = self.engines.clone();
        let wake = Arc::clone(&self.wake);
        let address = self.address;
        async move {
            let started = Instant::now();
            let result = async {
                let context = match store_dir {
                    Some(dir) => {
                        let store = aik_store::LocalStore::open(&dir).await?;
                        let storage = aik_kernel::PromptStore::new(store, fetcher);
                        aik_kernel::load_context_with(&provider, &addresses, prompt_id, &storage)
                            .await?
                    }
                    None => load_context(&provider, &addresses, prompt_id).await?,
                };
                let model = context.model_id;
                let Some((_, engine)) = engines.iter().find(|(id, _)| *id == model) else {
                    return Err(Error::Prompt {
                        prompt_id: prompt_id.to_string(),
                        reason: format!("this worker has no engine for model #{model}"),
                    });
                };
                engine.answer_blocking(context).await
            }
            .await;
            if let Ok(answer) = &result {
                let tokens = answer.run.as_ref().map_or(0, |(_, output)| output.tokens.len());
                tracing::info!(worker = %address, prompt = %prompt_id, tokens, seconds = started.elapsed().as_secs_f64(), "answer computed");
            }
            wake.notify_one();
            result
        }
    }

    /// Finalizes when it is this worker's turn: at once when too few members committed (the
    /// prompt closes as unavailable: any member may, the first one wins); else when it is the
    /// first agreeing member, or the first revealer when everyone revealed without a quorum; and
    /// anyone once the reveal deadline is past. Hands over the winning output's bytes.
    async fn finalize(&self, job: &Job, record: &PromptRecord, now: u64) -> Result<()> {
        let (members, hashes) = self.client.committee(job.prompt_id).await?;
        let revealed_mask = record.revealed_mask;
        let revealed: Vec<(usize, B256)> = hashes
            .iter()
            .enumerate()
            .filter(|(i, _)| revealed_mask & (1 << i) != 0)
            .map(|(i, h)| (i, *h))
            .collect();
        let quorum = aik_kernel::quorum(members.len());
        let unavailable = crate::step::unavailable(record, now);
        let winner = revealed
            .iter()
            .map(|(_, h)| *h)
            .find(|h| revealed.iter().filter(|(_, x)| x == h).count() >= quorum);
        let mine = output_hash(&job.output);
        let first_agreeing =
            winner.and_then(|w| revealed.iter().find(|(_, h)| *h == w)).map(|(i, _)| *i);
        // Everyone who committed revealed and nothing reached quorum: waiting cannot change the
        // outcome, so the first revealer finalizes at once (the kernel retries or refunds).
        let deadlocked = winner.is_none()
            && revealed_mask == record.committed_mask
            && revealed.first().map(|(i, _)| *i) == Some(job.member as usize);
        let my_turn = unavailable
            || first_agreeing == Some(job.member as usize)
            || deadlocked
            || now > job.reveal_deadline + 2;
        if !my_turn {
            return Ok(());
        }
        let output = match winner {
            Some(w) if w != mine => self.revealed_bytes(job.prompt_id, w).await?,
            // A challenge without a quorum leaves the disputed answer standing, and a waiting
            // Optimistic callback gets that answer's bytes.
            None if job.attempt == CHALLENGE_ATTEMPT => {
                let standing = self.client.result(job.prompt_id).await?.1;
                self.revealed_bytes(job.prompt_id, standing).await?
            }
            _ => job.output.clone(),
        };
        match self.client.finalize(job.prompt_id, &output).await {
            Ok(_) => {
                tracing::info!(worker = %self.address, prompt = %job.prompt_id, "finalized");
                Ok(())
            }
            Err(error) => {
                let status = self.client.prompt(job.prompt_id).await?.status;
                if status != PromptStatus::Committing {
                    // Someone else finalized first.
                    return Ok(());
                }
                // State moved between the estimate and the block: try again on the next tick,
                // for a minute past the reveal deadline (after that anyone may finalize).
                if now <= job.reveal_deadline + FINALIZE_RETRY_SECS {
                    tracing::warn!(worker = %self.address, prompt = %job.prompt_id, %error, "finalize failed; retrying");
                    return Ok(());
                }
                Err(error.into())
            }
        }
    }

    /// The bytes another member revealed under `hash`.
    async fn revealed_bytes(&self, prompt_id: U256, hash: B256) -> Result<Vec<u8>> {
        let filter = Filter::new()
            .address(self.config.addresses.kernel)
            .event_signature(DI::OutputRevealed::SIGNATURE_HASH)
            .topic1(B256::from(prompt_id))
            .from_block(self.config.start_block);
        for log in self.provider.get_logs(&filter).await? {
            if let Ok(event) = DI::OutputRevealed::decode_log_data(log.data())
                && event.outputHash == hash
                && output_hash(&event.output) == hash
            {
                return Ok(event.output.to_vec());
            }
        }
        Err(Error::Prompt {
            prompt_id: prompt_id.to_string(),
            reason: format!("no onchain reveal carries the winning hash {hash}"),
        })
    }

    /// Withdraws earned fees to the worker's own account.
    async fn claim(&self) -> Result<()> {
        let claimable = self.client.claimable(self.address).await?;
        if !claimable.is_zero() {
            self.client.claim(self.address).await?;
            tracing::info!(worker = %self.address, amount = %claimable, "claimed fees");
        }
        Ok(())
    }
}

/// A running model computation for one job.
type Computation = AbortOnDrop<Result<Answer>>;

/// A task that ends with its owner.
#[derive(Debug)]
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wakes the worker on every kernel log; reconnects with backoff when the socket drops.
async fn listen(url: String, kernel: Address, wake: Arc<Notify>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let result = async {
            let provider = ProviderBuilder::new().connect_ws(WsConnect::new(url.clone())).await?;
            let mut logs =
                provider.subscribe_logs(&Filter::new().address(kernel)).await?.into_stream();
            tracing::debug!(%url, "subscribed to kernel events");
            while logs.next().await.is_some() {
                wake.notify_one();
            }
            Ok::<_, alloy::transports::TransportError>(())
        }
        .await;
        if let Err(error) = result {
            tracing::debug!(%url, %error, "event subscription failed; polling meanwhile");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
