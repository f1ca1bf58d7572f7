//! `aik demo challenge`: a wrong answer overturned onchain, on a running network.
//!
//! The demo brings its own workers. First a colluding majority: real nodes running the model
//! whose every answer is altered afterwards ([`Tampering`]), staked for enough seats that the
//! draw always seats them (a worker heavier than the draw's spacing is always hit). It asks a
//! question, sees the colluders' answer finalized (the honest member of the committee slashed and
//! jailed for disagreeing), lets honest nodes join until a challenge committee can form, re-runs
//! the prompt as `aik verify` does, challenges the answer from a fresh account and follows the
//! challenge committee to its verdict. Then it checks onchain that the colluders lost
//! `slashChallengedBps` of their stake and sit in jail, that the challenger got its bond back and
//! its reward, that the honest minority was made whole, and that the result, miner and topic turn
//! carry the corrected answer. Its workers leave the network (unstake) at the end, whatever
//! happened, so that later prompts never wait on them.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use aik_infer::fixture::Tampering;
use aik_kernel::{
    ChallengeStatus, KernelClient, PromptRequest, PromptStatus, WorkerStatus, bindings, format_eai,
    wallet_provider,
};
use aik_node::{
    Deployment, Engine,
    network::{LocalWorker, LocalWorkers, ensure_current},
};
use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use eyre::{WrapErr, bail, ensure};

use crate::{
    chain::load_engine,
    verify::{Rerun, follow_challenge, rerun},
};

/// What the demo asks.
const QUESTION: &str = "What is six times seven? Answer with the number only.";
/// Output tokens of the answer.
const MAX_TOKENS: u32 = 24;
/// The largest capacity a worker may register (GPUManagement.MAX_CAPACITY).
const MAX_CAPACITY: u64 = 256;
/// Basis points.
const BPS: u128 = 10_000;

/// Runs the demo with `owner` paying (it funds and stakes the demo's workers: the deployment's
/// owner, dev account 0 on `aik up`), giving up on any step after `timeout`.
pub(crate) async fn run(
    deployment: Deployment,
    owner: PrivateKeySigner,
    timeout: Duration,
) -> eyre::Result<()> {
    ensure_current(&deployment).await?;
    let provider = wallet_provider(&deployment.rpc_url, owner.clone())?;
    let kernel = KernelClient::new(provider.clone(), owner.address(), deployment.addresses());
    let plan = Plan::read(&kernel, &deployment).await?;
    plan.print();
    let (engine, _) = load_engine(&deployment, U256::from(deployment.model_id)).await?;
    let dir = std::env::temp_dir().join(format!("aik-demo-challenge-{}", std::process::id()));
    let demo = Demo { deployment, owner, kernel, plan, engine, dir, started: Instant::now() };
    let mut workers = Joined::default();
    let outcome = demo.play(&mut workers, timeout).await;
    // Whatever happened, the demo's workers leave the draw before this process ends.
    let left = demo.leave(workers).await;
    let _ = std::fs::remove_dir_all(&demo.dir);
    let report = outcome?;
    left?;
    report.print();
    ensure!(report.holds(), "the challenge did not have every effect it should (see above)");
    Ok(())
}

/// How many workers the demo brings, and the kernel's terms it plays by.
struct Plan {
    model_id: U256,
    committee: usize,
    colluders: usize,
    /// Seats each colluder registers (its weight in the draw).
    colluder_seats: u16,
    honest: usize,
    challenge_committee: usize,
    min_stake: U256,
    params: bindings::DecentralizedInference::KernelParams,
}

impl Plan {
    async fn read(
        kernel: &KernelClient<DynProvider>,
        deployment: &Deployment,
    ) -> eyre::Result<Self> {
        let params = kernel.params().await?;
        ensure!(
            params.challengeWindow > 0,
            "challenges are off on this kernel (its challengeWindow is 0)"
        );
        let model_id = U256::from(deployment.model_id);
        let terms = kernel.models().modelTerms(model_id).call().await.wrap_err("modelTerms")?;
        let committee = usize::from(terms.committeeSize);
        ensure!(
            committee >= 3,
            "model #{model_id} is answered by a committee of {committee}: the demo needs one of at least 3, where a majority can outvote an honest member"
        );
        let colluders = committee / 2 + 1;
        let challenge_committee = (2 * committee + 1).min(15);
        // Systematic sampling seats every worker heavier than the spacing (total / committee):
        // colluders of c seats each beside a pool of weight w are always seated when
        // c * committee > colluders * c + w.
        let (weight, members) = kernel.pool(model_id).await?;
        let seats = weight / (committee - colluders) as u64 + 1;
        ensure!(
            seats <= MAX_CAPACITY,
            "the pool of model #{model_id} weighs {weight} seats: colluders would need {seats} seats each to be sure of a majority, more than a worker may register ({MAX_CAPACITY})"
        );
        // The challenge committee excludes the answering one, and the honest member it outvoted
        // sits in jail until the overturn.
        let others = usize::try_from(members)?.saturating_sub(committee - colluders);
        let honest = challenge_committee.saturating_sub(others);
        let min_stake = kernel.min_stake().await?;
        let plan = Self {
            model_id,
            committee,
            colluders,
            colluder_seats: u16::try_from(seats)?,
            honest,
            challenge_committee,
            min_stake,
            params,
        };
        let needed = plan.stake_needed();
        let held = kernel.eai_balance(kernel.from()).await?;
        ensure!(
            held >= needed,
            "the demo stakes {} EAI for its workers; {} holds {}: run it with the deployment owner's key (dev account 0 on `aik up`)",
            format_eai(needed),
            kernel.from(),
            format_eai(held)
        );
        Ok(plan)
    }

    fn stake_needed(&self) -> U256 {
        let seats = self.colluders * usize::from(self.colluder_seats) + self.honest;
        self.min_stake * U256::from(seats)
    }

    fn print(&self) {
        println!(
            "Model #{}: committees of {}, a challenge committee of {}; challenge window {} s, bond {} wei, {} % of a losing majority's stake slashed, {} % of it to the challenger",
            self.model_id,
            self.committee,
            self.challenge_committee,
            self.params.challengeWindow,
            self.params.challengeBond,
            f64::from(self.params.slashChallengedBps) / 100.0,
            f64::from(self.params.challengeRewardBps) / 100.0
        );
        println!(
            "The demo brings {} colluding workers ({} seats each, always drawn) and then {} honest ones, staking {} EAI",
            self.colluders,
            self.colluder_seats,
            self.honest,
            format_eai(self.stake_needed())
        );
    }
}

/// The workers the demo brought: every key from before it tried to register it (so that a
/// worker registered by a start that failed half-way still leaves), and the running handles.
#[derive(Default)]
struct Joined {
    keys: Vec<PrivateKeySigner>,
    handles: Vec<LocalWorkers>,
}

/// The demo's state while it plays.
struct Demo {
    deployment: Deployment,
    owner: PrivateKeySigner,
    kernel: KernelClient<DynProvider>,
    plan: Plan,
    engine: Engine,
    dir: std::path::PathBuf,
    started: Instant,
}

impl Demo {
    fn say(&self, line: impl std::fmt::Display) {
        println!("[{:>6.1} s] {line}", self.started.elapsed().as_secs_f64());
    }

    /// Starts `workers` in this process (recording them in `joined` first, so that they leave
    /// at the end even if this fails) and waits until the draw sees each of them.
    async fn join(
        &self,
        workers: Vec<LocalWorker>,
        joined: &mut Joined,
    ) -> eyre::Result<Vec<Address>> {
        joined.keys.extend(workers.iter().map(|w| w.signer.clone()));
        let addresses: Vec<_> = workers.iter().map(|w| w.signer.address()).collect();
        let handle = LocalWorkers::start_with(
            &self.deployment,
            &self.owner,
            &workers,
            self.plan.min_stake,
            &self.dir,
        )
        .await
        .wrap_err("cannot start the demo's workers")?;
        joined.handles.push(handle);
        self.kernel.apply_pool_changes(64).await?;
        for (worker, local) in addresses.iter().zip(&workers) {
            let weight = self.kernel.pool_weight(self.plan.model_id, *worker).await?;
            ensure!(
                weight == u64::from(local.capacity),
                "worker {worker} weighs {weight} in the draw, not its {} seats (a draw still pending holds the pool: try again in a minute)",
                local.capacity
            );
        }
        Ok(addresses)
    }

    async fn play(&self, joined: &mut Joined, timeout: Duration) -> eyre::Result<Report> {
        let plan = &self.plan;
        let liar = self.engine.with_driver(Arc::new(Tampering(self.engine.driver())));
        let colluders: Vec<_> = (0..plan.colluders)
            .map(|_| LocalWorker {
                signer: PrivateKeySigner::random(),
                engine: liar.clone(),
                capacity: plan.colluder_seats,
            })
            .collect();
        let colluders = self.join(colluders, joined).await?;
        self.say(format!(
            "{} colluders staked and running (their answers get \" (tampered)\" appended)",
            colluders.len()
        ));

        // The question, in a topic of its own so that the correction shows in its context.
        let topic = format!("challenge-demo-{}", &colluders[0].to_string()[2..10]);
        let mut request =
            PromptRequest::text(self.deployment.model_id, topic.clone(), QUESTION.as_bytes());
        request.max_tokens = MAX_TOKENS;
        let submitted = self.kernel.submit(&request).await?;
        let id = submitted.prompt_id;
        self.say(format!("asked prompt {id} in topic {topic:?}: {QUESTION}"));
        self.wait_finalized(id, timeout).await?;
        let members = self.first_committee(id).await?;
        let minority: Vec<_> = members.iter().filter(|m| !colluders.contains(m)).copied().collect();
        ensure!(
            members.len() - minority.len() == colluders.len(),
            "the draw seated {} of the {} colluders in committee {members:?}",
            members.len() - minority.len(),
            colluders.len()
        );
        let Rerun { answer, expected: lie, actual: honest, .. } =
            rerun(&self.deployment, id).await?;
        ensure!(lie != honest, "the committee's answer is the model's: the colluders did not lie");
        let revealed: Vec<bindings::DecentralizedInference::OutputRevealed> = self
            .events(
                self.deployment.kernel,
                Filter::new().topic1(id).topic2(colluders[0].into_word()),
            )
            .await?;
        let told =
            revealed.first().map(|event| String::from_utf8_lossy(&event.output).into_owned());
        self.say(format!(
            "finalized with the colluders' answer {:?} (sha256 {lie})",
            told.unwrap_or_default()
        ));
        self.say(format!(
            "this machine re-runs it as `aik verify` does: {:?} (sha256 {honest})",
            answer.run.as_ref().map(|(_, output)| output.text.as_str()).unwrap_or_default()
        ));
        let mut outvoted = Vec::new();
        for member in &minority {
            let info = self.kernel.worker(*member).await?;
            self.say(format!(
                "honest member {member} was outvoted: {:?}, stake {} EAI",
                info.status,
                format_eai(U256::from(info.stake))
            ));
            outvoted.push((*member, info.stake));
        }

        if plan.honest > 0 {
            let honest_workers: Vec<_> = (0..plan.honest)
                .map(|_| LocalWorker {
                    signer: PrivateKeySigner::random(),
                    engine: self.engine.clone(),
                    capacity: 1,
                })
                .collect();
            self.join(honest_workers, joined).await?;
            self.say(format!(
                "{} honest workers joined, so that a challenge committee can form",
                plan.honest
            ));
        }

        // The challenger: a fresh account with the bond and gas money.
        let challenger = PrivateKeySigner::random();
        let challenger_address = challenger.address();
        let bond = U256::from(plan.params.challengeBond);
        self.kernel.send_eth(challenger_address, bond + U256::from(10u128.pow(17))).await?;
        let as_challenger = self
            .kernel
            .connect(wallet_provider(&self.deployment.rpc_url, challenger)?, challenger_address);
        let Some(deadline) = as_challenger.challenge_deadline(id).await? else {
            bail!("prompt {id} can no longer be challenged (its window has passed)");
        };
        as_challenger.challenge(id, bond).await.wrap_err("challenge")?;
        self.say(format!(
            "{challenger_address} challenged it with a bond of {bond} wei (window until block time {deadline})"
        ));
        let outcome = follow_challenge(&as_challenger, id, timeout).await?;
        self.say(format!("the challenge committee's verdict: {outcome:?}"));

        let params = &plan.params;
        let (status, result, miner) = self.kernel.result(id).await?;
        let seat_stake = plan.min_stake.to::<u128>() * u128::from(plan.colluder_seats);
        let mut slashed = 0u128;
        let mut colluders_ok = true;
        for colluder in &colluders {
            let info = self.kernel.worker(*colluder).await?;
            let lost = seat_stake - info.stake;
            slashed += lost;
            colluders_ok &= lost == seat_stake * u128::from(params.slashChallengedBps) / BPS
                && info.status == WorkerStatus::Jailed;
        }
        let mut restored = 0u128;
        let mut minority_ok = true;
        for (member, penalized) in &outvoted {
            let info = self.kernel.worker(*member).await?;
            restored += info.stake.saturating_sub(*penalized);
            minority_ok &= info.stake > *penalized && info.status == WorkerStatus::Active;
        }
        let reward = as_challenger.eai_balance(challenger_address).await?.to::<u128>();
        let refund = as_challenger.claimable(challenger_address).await?;
        let corrections = self.turn_corrections(&topic, id).await?;
        Ok(Report {
            outcome,
            colluders_ok,
            slashed,
            minority_ok,
            restored,
            reward,
            expected_reward: (slashed - restored) * u128::from(params.challengeRewardBps) / BPS,
            refund,
            expected_refund: bond.saturating_sub(self.kernel.gas_fee(params.finalizeGas).await?),
            result_ok: status == PromptStatus::Finalized
                && result == honest
                && !colluders.contains(&miner),
            topic_ok: corrections == [honest],
        })
    }

    /// Waits for the prompt's first committee to finalize it.
    async fn wait_finalized(&self, id: U256, timeout: Duration) -> eyre::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let record = self.kernel.prompt(id).await?;
            match record.status {
                PromptStatus::Finalized => return Ok(()),
                PromptStatus::Refunded | PromptStatus::Unavailable => {
                    bail!("prompt {id} ended {:?} instead of being answered", record.status)
                }
                _ if Instant::now() > deadline => {
                    bail!("prompt {id} is still {:?} after {} s", record.status, timeout.as_secs())
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Events `E` emitted by `address` with `filter`'s topics.
    async fn events<E: SolEvent>(&self, address: Address, filter: Filter) -> eyre::Result<Vec<E>> {
        let filter = filter.address(address).event_signature(E::SIGNATURE_HASH).from_block(0);
        let logs = self.kernel.models().provider().get_logs(&filter).await?;
        logs.iter().map(|log| Ok(E::decode_log_data(log.data())?)).collect()
    }

    /// The committee that answered prompt `id` the first time (its record no longer holds it
    /// once finalized: the `CommitteeAssigned` event of attempt 0 does).
    async fn first_committee(&self, id: U256) -> eyre::Result<Vec<Address>> {
        let assigned: Vec<bindings::DecentralizedInference::CommitteeAssigned> =
            self.events(self.deployment.kernel, Filter::new().topic1(id)).await?;
        assigned
            .into_iter()
            .find(|event| event.attempt == 0)
            .map(|event| event.committee)
            .ok_or_else(|| eyre::eyre!("no committee was assigned to prompt {id}"))
    }

    /// The answers recorded as corrections of turn `id` in the requester's `topic`.
    async fn turn_corrections(&self, topic: &str, id: U256) -> eyre::Result<Vec<B256>> {
        let topic_id = KernelClient::<DynProvider>::topic_id(self.kernel.from(), topic);
        let filter = Filter::new().topic1(topic_id).topic2(B256::from(id));
        let corrected: Vec<bindings::ContextManager::TurnCorrected> =
            self.events(self.deployment.context, filter).await?;
        Ok(corrected.into_iter().map(|event| event.outputHash).collect())
    }

    /// Unstakes every worker the demo registered and stops them.
    async fn leave(&self, joined: Joined) -> eyre::Result<()> {
        let mut first = Ok(());
        for key in joined.keys {
            let address = key.address();
            let worker =
                self.kernel.connect(wallet_provider(&self.deployment.rpc_url, key)?, address);
            let status = worker.worker(address).await?.status;
            if matches!(status, WorkerStatus::Active | WorkerStatus::Jailed | WorkerStatus::Paused)
                && let Err(error) = worker.request_unstake().await
            {
                first = first.and(Err(error).wrap_err(format!("worker {address} cannot unstake")));
            }
        }
        for handle in joined.handles {
            if let Err(error) = handle.stop().await {
                first = first.and(Err(error).wrap_err("a demo worker stopped with an error"));
            }
        }
        if first.is_ok() {
            self.say("the demo's workers unstaked and stopped");
        }
        first
    }
}

/// What the challenge did, checked onchain.
struct Report {
    outcome: ChallengeStatus,
    colluders_ok: bool,
    slashed: u128,
    minority_ok: bool,
    restored: u128,
    reward: u128,
    expected_reward: u128,
    refund: U256,
    expected_refund: U256,
    result_ok: bool,
    topic_ok: bool,
}

impl Report {
    fn checks(&self) -> [(bool, String); 5] {
        [
            (
                self.outcome == ChallengeStatus::Overturned && self.colluders_ok,
                format!(
                    "colluders slashed and jailed: {} EAI of stake forfeited",
                    format_eai(U256::from(self.slashed))
                ),
            ),
            (
                self.reward == self.expected_reward
                    && self.reward > 0
                    && self.refund == self.expected_refund,
                format!(
                    "challenger paid: {} EAI reward (expected {}), {} wei of its bond claimable (expected {})",
                    format_eai(U256::from(self.reward)),
                    format_eai(U256::from(self.expected_reward)),
                    self.refund,
                    self.expected_refund
                ),
            ),
            (
                self.minority_ok,
                format!(
                    "outvoted honest member made whole: {} EAI restored, out of jail",
                    format_eai(U256::from(self.restored))
                ),
            ),
            (self.result_ok, "result and miner: the model's answer and an honest worker".into()),
            (self.topic_ok, "the topic's turn corrected to the model's answer".into()),
        ]
    }

    fn holds(&self) -> bool {
        self.checks().iter().all(|(ok, _)| *ok)
    }

    fn print(&self) {
        println!();
        for (ok, line) in self.checks() {
            println!("{}  {line}", if ok { "ok  " } else { "FAIL" });
        }
    }
}
