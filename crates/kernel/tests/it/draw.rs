//! Committee draws under attack: nobody sees or chooses a committee in the transactions that
//! cause it, a reverted draw gives the same committee again, the pool cannot be shaped in the
//! drawing transaction, seats follow stake (a Sybil gets no more than its capital), the retry
//! leaves the first committee out, stale anchors move forward, and workers pause, resume and
//! update without unbonding.

use std::collections::{BTreeMap, BTreeSet};

use aik_kernel::{
    Hardware, KernelClient, PromptStatus, WorkerStatus,
    bindings::{DecentralizedInference as DI, GPUManagement as GPU, PromptScheduler as PS},
};
use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, U64, U256, keccak256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionReceipt,
    sol_types::{SolEvent, SolValue},
};

use crate::{
    fixture::{
        EAI as ONE_EAI, Env, Options, PRICE, STAKE, assert_revert, hardware, provider_for,
        test_model,
    },
    views::reference_draw,
};

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    CommitteeGambler,
    "../../contracts/out/CommitteeGambler.json"
);

type Gambler = CommitteeGambler::CommitteeGamblerInstance<DynProvider>;

async fn deploy_gambler(env: &Env) -> Gambler {
    let addresses = env.owner.addresses();
    let address = CommitteeGambler::deploy_builder(
        env.provider.clone(),
        addresses.kernel,
        addresses.scheduler,
        addresses.gpu,
    )
    .from(env.owner.from())
    .deploy()
    .await
    .expect("gambler deploys");
    CommitteeGambler::new(address, env.provider.clone())
}

/// A request in the gambler's ABI type (the same struct, generated twice).
fn gambler_request(env: &Env, input: &str) -> CommitteeGambler::InferenceRequest {
    CommitteeGambler::InferenceRequest::abi_decode(&env.request(input).to_sol().abi_encode())
        .expect("same ABI type")
}

async fn receipt_of<D: alloy::contract::CallDecoder>(
    call: alloy::contract::CallBuilder<&DynProvider, D>,
) -> TransactionReceipt {
    let receipt = call.send().await.expect("sent").get_receipt().await.expect("mined");
    assert!(receipt.status(), "the transaction reverted");
    receipt
}

fn logs<E: SolEvent>(receipt: &TransactionReceipt) -> Vec<E> {
    receipt
        .inner
        .logs()
        .iter()
        .filter_map(|log| log.log_decode::<E>().ok())
        .map(|l| l.inner.data)
        .collect()
}

/// What the gambler saw of a committee inside its own transaction.
fn seen(receipt: &TransactionReceipt) -> Vec<(U256, U256)> {
    logs::<CommitteeGambler::Seen>(receipt).iter().map(|s| (s.promptId, s.members)).collect()
}

/// The seed the draw of `prompt_id`'s `attempt` will use: the anchor block's hash, the prompt
/// id and the attempt.
async fn seed_of(env: &Env, prompt_id: U256, attempt: u8) -> B256 {
    let anchor = env.owner.anchor_of(prompt_id).await.unwrap().expect("anchored");
    let block = env
        .provider
        .get_block_by_number(BlockNumberOrTag::Number(anchor))
        .await
        .unwrap()
        .expect("the anchor block exists");
    keccak256((block.header.hash, prompt_id, U256::from(attempt)).abi_encode())
}

async fn preview(env: &Env, seed: B256, excluded: Vec<Address>) -> Vec<Address> {
    env.owner.gpu().previewDraw(env.model, U256::from(3), seed, excluded).call().await.unwrap()
}

/// The model's pool in leaf (registration) order, as (worker, weight).
async fn pool(env: &Env, workers: &[Address]) -> Vec<(Address, u64)> {
    let mut pool = Vec::new();
    for worker in workers {
        let weight = env.owner.gpu().poolWeight(env.model, *worker).call().await.unwrap();
        pool.push((*worker, weight.to::<u64>()));
    }
    pool
}

#[tokio::test]
async fn test_attack_no_submit_pump_or_finalize_sees_the_committee_it_causes() {
    let env = Env::with(Options {
        workers: 6,
        tweak: |p| p.kernel.pumpOnFinalize = 0,
        ..Options::default()
    })
    .await;
    let gambler = deploy_gambler(&env).await;
    let fee = U256::from(100 * PRICE);

    // Submitting: the prompt is anchored, and its committee does not exist yet.
    let receipt =
        receipt_of(gambler.submitAndPeek(gambler_request(&env, "first")).value(fee)).await;
    let (first, members) = seen(&receipt)[0];
    assert_eq!(members, U256::ZERO, "no committee inside the submitting transaction");
    assert_eq!(logs::<PS::Anchored>(&receipt).len(), 1);
    assert_eq!(env.committee(first).await.len(), 3, "drawn in a later transaction");

    // A second prompt takes the other three workers; a third queues.
    let second = env.requesters[0].submit(&env.request("second")).await.unwrap().prompt_id;
    env.draw().await;
    let third = env.requesters[0].submit(&env.request("third")).await.unwrap();
    assert!(!third.anchored, "every worker is taken");

    // Finalizing with no quorum starts a retry: it queues behind the third prompt, which the
    // freed workers anchor in the same transaction. Neither has a committee yet.
    env.commit_reveal(first, &[Some(b"1"), Some(b"2"), Some(b"3")]).await;
    let receipt = receipt_of(gambler.finalizeAndPeek(first, Vec::new().into())).await;
    assert_eq!(seen(&receipt), vec![(first, U256::ZERO)], "no retry committee in finalize");
    assert_eq!(env.owner.prompt(first).await.unwrap().attempt, 1);
    assert_eq!(logs::<PS::Anchored>(&receipt).len(), 1);
    assert!(env.owner.committee(third.prompt_id).await.unwrap().0.is_empty());
    assert_eq!(env.committee(third.prompt_id).await.len(), 3);

    // Pumping: the workers the second prompt frees anchor the retry, whose committee is not
    // there yet either.
    env.run_honest(second, b"ok").await;
    let receipt = receipt_of(gambler.pumpAndPeek(env.model, first)).await;
    assert_eq!(seen(&receipt), vec![(first, U256::ZERO)]);
    assert_eq!(logs::<PS::Anchored>(&receipt).len(), 1, "pumped: anchored, not drawn");
    assert_eq!(env.committee(first).await.len(), 3);
}

#[tokio::test]
async fn test_attack_reverting_the_draw_and_retrying_later_gives_the_same_committee() {
    let env = Env::with(Options { workers: 6, ..Options::default() }).await;
    let gambler = deploy_gambler(&env).await;
    let id = env.requesters[0].submit(&env.request("Who sits?")).await.unwrap().prompt_id;
    let seed = seed_of(&env, id, 0).await;
    let expected = preview(&env, seed, vec![]).await;
    // The contract's draw is the documented one.
    let workers: Vec<Address> = env.workers.iter().map(|w| w.from()).collect();
    assert_eq!(expected, reference_draw(&pool(&env, &workers).await, 3, seed, &[]));

    // The gambler refuses every committee holding `banned`; later blocks change nothing.
    let banned = expected[1];
    for _ in 0..3 {
        let result = gambler.drawUnless(id, banned).send().await;
        let reverted = match result {
            Err(error) => {
                error.as_decoded_error::<CommitteeGambler::CommitteeGamblerDisfavoured>()
                    == Some(CommitteeGambler::CommitteeGamblerDisfavoured { member: banned })
            }
            Ok(pending) => !pending.get_receipt().await.unwrap().status(),
        };
        assert!(reverted, "the disfavoured committee is drawn again");
        env.mine(5).await;
    }
    let receipt = env.requesters[1].draw(16).await.unwrap();
    let assigned = logs::<DI::CommitteeAssigned>(&receipt);
    assert_eq!((assigned[0].promptId, &assigned[0].committee), (id, &expected));
    assert_eq!(env.committee(id).await, expected);
}

#[tokio::test]
async fn test_attack_drawer_cannot_shape_the_pool_in_the_drawing_transaction() {
    let env = Env::with(Options { workers: 6, ..Options::default() }).await;
    let gambler = deploy_gambler(&env).await;
    // The gambler is a worker whose 40,000 EAI back 40 slots against the others' six: it sits
    // on every committee while it is in the pool.
    let stake = U256::from(40_000 * ONE_EAI);
    env.owner.transfer_eai(*gambler.address(), stake).await.unwrap();
    receipt_of(gambler.register(vec![env.model], 40, stake)).await;
    let gpu = env.owner.gpu();
    assert_eq!(gpu.poolWeight(env.model, *gambler.address()).call().await.unwrap(), U256::from(40));

    // Pausing in the drawing transaction: the draw still sees the gambler, as at the anchor.
    let first = env.requesters[0].submit(&env.request("one")).await.unwrap().prompt_id;
    let expected = preview(&env, seed_of(&env, first, 0).await, vec![]).await;
    assert!(expected.contains(gambler.address()), "40 of 46 slots: seated for sure");
    let receipt = receipt_of(gambler.pauseAndDraw()).await;
    assert_eq!(logs::<GPU::PoolChangeLogged>(&receipt).len(), 1, "the pause waited for the draw");
    assert_eq!(env.committee(first).await, expected);
    assert_eq!(gpu.poolWeight(env.model, *gambler.address()).call().await.unwrap(), U256::ZERO);
    let gambler_worker = env.owner.worker(*gambler.address()).await.unwrap();
    assert_eq!((gambler_worker.status, gambler_worker.busy), (WorkerStatus::Paused, 1));

    // Resuming in the drawing transaction: the draw does not see it, as at the anchor.
    let second = env.requesters[0].submit(&env.request("two")).await.unwrap().prompt_id;
    let expected = preview(&env, seed_of(&env, second, 0).await, vec![]).await;
    assert!(!expected.contains(gambler.address()));
    receipt_of(gambler.resumeAndDraw()).await;
    assert_eq!(env.committee(second).await, expected);
    assert_eq!(
        gpu.poolWeight(env.model, *gambler.address()).call().await.unwrap(),
        U256::from(39),
        "back in the pool once the draw is done, less its seat on the first prompt"
    );
}

/// A Sybil splits 10,000 EAI over ten minimum-stake workers against three honest workers with
/// 10,000 EAI each, backing ten slots each: over 1,000 draws each worker sits in proportion to
/// the stake behind its slots (k · slots / total), so the Sybil wins a quarter of the seats —
/// its share of the capital — and not the ten thirteenths a uniform draw over workers would
/// give it.
#[tokio::test]
async fn test_attack_sybil_seats_follow_stake_over_1000_draws() {
    const DRAWS: u64 = 1_000;
    let env = Env::with(Options {
        workers: 13,
        stake: |i| if i < 3 { STAKE } else { STAKE / 10 },
        capacity: |i| if i < 3 { 10 } else { 1 },
        ..Options::default()
    })
    .await;
    let workers: Vec<Address> = env.workers.iter().map(|w| w.from()).collect();
    let pool = pool(&env, &workers).await;
    let total: u64 = pool.iter().map(|(_, w)| w).sum();
    assert_eq!(total, 40, "30 honest slots and 10 Sybil slots");
    let mut seats: BTreeMap<Address, u64> = BTreeMap::new();
    for draw in 0..DRAWS {
        let seed = keccak256(draw.to_be_bytes());
        let committee = preview(&env, seed, vec![]).await;
        assert_eq!(committee.iter().collect::<BTreeSet<_>>().len(), 3, "distinct members");
        if draw < 25 {
            assert_eq!(committee, reference_draw(&pool, 3, seed, &[]), "seed {seed}");
        }
        for member in committee {
            *seats.entry(member).or_default() += 1;
        }
    }
    for (worker, weight) in &pool {
        // Inclusion probability k · w / T, within four standard deviations.
        let p = 3.0 * *weight as f64 / total as f64;
        let expected = p * DRAWS as f64;
        let sigma = (DRAWS as f64 * p * (1.0 - p)).sqrt();
        let got = seats.get(worker).copied().unwrap_or(0) as f64;
        assert!(
            (got - expected).abs() <= 4.0 * sigma,
            "{worker}: {got} seats, expected {expected:.0} ± {:.0}",
            4.0 * sigma
        );
    }
    let sybil: u64 = workers[3..].iter().map(|w| seats.get(w).copied().unwrap_or(0)).sum();
    // A quarter of 3,000 seats; a uniform draw over workers would give it about 2,300.
    assert!((650..=850).contains(&sybil), "the Sybil won {sybil} of 3,000 seats");
    // A real draw seats what the preview says for its seed.
    let id = env.requesters[0].submit(&env.request("real")).await.unwrap().prompt_id;
    let expected = preview(&env, seed_of(&env, id, 0).await, vec![]).await;
    assert_eq!(env.committee(id).await, expected);
}

/// Spam that fills honest capacity before a target prompt does not skew the target's pool: the
/// attacker holds half the slots (two workers of six slots each, against twelve honest workers
/// of one), submits five cheap prompts that take fifteen of the 24 slots, then the target.
/// Every seat takes one unit of weight from whoever holds it, so the attacker's share of what
/// is left stays half in expectation, and over 100 trials it sits on the target's committee as
/// often as with no spam at all: k · 12 / 24 = 1.5 seats. Were the weight the whole stake while
/// any slot is free (this kernel's previous rule), the honest one-slot workers would leave the
/// pool at their first seat while the attacker's stayed whole, and it would take 2 of the 3
/// seats, a majority, in about 98 % of the trials (1.98 seats on average, by simulation).
#[tokio::test]
async fn test_attack_spam_that_fills_honest_capacity_does_not_skew_the_target_draw() {
    const TRIALS: u32 = 100;
    const HONEST: usize = 12;
    let env = Env::with(Options {
        workers: HONEST + 2,
        stake: |i| if i < HONEST { STAKE / 10 } else { 6 * STAKE / 10 },
        capacity: |i| if i < HONEST { 1 } else { 6 },
        ..Options::default()
    })
    .await;
    let attacker: BTreeSet<Address> = env.workers[HONEST..].iter().map(|w| w.from()).collect();
    let gpu = env.owner.gpu();
    assert_eq!(gpu.poolOf(env.model).call().await.unwrap().total, U256::from(24));
    let (mut seats, mut majorities, mut drawn) = (0u32, 0u32, 0u32);
    for trial in 0..TRIALS {
        let snapshot: U64 = env.provider.raw_request("evm_snapshot".into(), ()).await.unwrap();
        for i in 0..5 {
            let spam = env.requesters[0].submit(&env.request(&format!("spam {trial}.{i}"))).await;
            assert!(spam.unwrap().anchored, "the spam finds free workers");
        }
        env.draw().await;
        assert_eq!(gpu.availability(env.model).call().await.unwrap().seats, U256::from(9));
        let target = env.requesters[1].submit(&env.request("target")).await.unwrap();
        // Nine slots left on two workers only (the attacker's, six and three) would queue the
        // target; that needs the honest workers to take twelve of fifteen seats, which systematic
        // sampling all but rules out.
        if target.anchored {
            let committee = env.committee(target.prompt_id).await;
            assert_eq!(committee.len(), 3);
            let taken = committee.iter().filter(|m| attacker.contains(*m)).count() as u32;
            seats += taken;
            majorities += u32::from(taken >= 2);
            drawn += 1;
        }
        let reverted: bool =
            env.provider.raw_request("evm_revert".into(), (snapshot,)).await.unwrap();
        assert!(reverted);
    }
    assert!(drawn >= TRIALS - 5, "only {drawn} of {TRIALS} targets were drawn");
    let mean = f64::from(seats) / f64::from(drawn);
    eprintln!("spam before a target: attacker seats {mean:.2} of 3, majority {majorities}/{drawn}");
    // One trial's seats have a standard deviation of about 0.6: four standard deviations of the
    // mean of 100 trials are 0.24.
    assert!(
        (1.25..=1.75).contains(&mean),
        "the attacker took {mean} seats of 3 per target, a majority {majorities} times of {drawn}"
    );
}

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    TestBeacon,
    "../../contracts/out/TestBeacon.json"
);

/// A chain with a beacon plugs it in at deployment: the committee follows the beacon's value for
/// the anchor block, not the block's hash, and a draw moves the anchor on while the beacon has
/// no value for it.
#[tokio::test]
async fn test_a_pluggable_randomness_source_seeds_the_draw() {
    let env = Env::with(Options { workers: 0, requesters: 6, ..Options::default() }).await;
    let beacon_address = TestBeacon::deploy_builder(env.provider.clone())
        .from(env.owner.from())
        .deploy()
        .await
        .unwrap();
    let beacon = TestBeacon::new(beacon_address, env.provider.clone());
    // A deployment with the beacon as its source, served by four workers.
    let mut params = env.params.clone();
    params.randomness = beacon_address;
    let owner = KernelClient::deploy(env.provider.clone(), &params).await.unwrap();
    assert_eq!(owner.scheduler().randomness().call().await.unwrap(), beacon_address);
    let model = owner
        .register_model(&test_model(3, aik_kernel::SchedulingPolicy::FeePriority))
        .await
        .unwrap();
    let url = env._devnet.http_url();
    let accounts = env._devnet.accounts().to_vec();
    let client = |i: usize| {
        KernelClient::new(
            provider_for(&url, accounts[i].signer.clone()),
            accounts[i].address,
            *owner.addresses(),
        )
    };
    let workers: Vec<Address> = accounts[3..7].iter().map(|a| a.address).collect();
    for (i, worker) in workers.iter().enumerate() {
        owner.transfer_eai(*worker, U256::from(STAKE)).await.unwrap();
        client(3 + i).register_worker(&hardware(), &[model], 1, U256::from(STAKE)).await.unwrap();
    }
    let requester = client(1);
    let mut request = env.request("beacon");
    request.model_id = model;
    let id = requester.submit(&request).await.unwrap().prompt_id;
    let anchor = requester.anchor_of(id).await.unwrap().unwrap();

    // No value yet: the draw moves the anchor to its own block.
    let receipt = requester.draw(16).await.unwrap();
    assert!(logs::<DI::CommitteeAssigned>(&receipt).is_empty());
    let moved = requester.anchor_of(id).await.unwrap().unwrap();
    assert_eq!(moved, receipt.block_number.unwrap());
    assert!(moved > anchor);

    // The beacon publishes the value of the new anchor; the draw follows it.
    let value = keccak256("beacon round 1");
    receipt_of(beacon.publish(U256::from(moved), value)).await;
    let seed = keccak256((value, id, U256::ZERO).abi_encode());
    let expected =
        owner.gpu().previewDraw(model, U256::from(3), seed, vec![]).call().await.unwrap();
    let weights: Vec<(Address, u64)> = workers.iter().map(|w| (*w, 1)).collect();
    assert_eq!(expected, reference_draw(&weights, 3, seed, &[]));
    let receipt = requester.draw(16).await.unwrap();
    assert_eq!(logs::<DI::CommitteeAssigned>(&receipt)[0].committee, expected);
}

#[tokio::test]
async fn test_retry_committee_leaves_out_the_first_committee() {
    let env = Env::with(Options { workers: 6, ..Options::default() }).await;
    let id = env.requesters[0].submit(&env.request("Pick a number")).await.unwrap().prompt_id;
    let first = env.committee(id).await;
    env.commit_reveal(id, &[Some(b"1"), Some(b"2"), Some(b"3")]).await;
    env.owner.finalize(id, b"").await.unwrap();
    let previous = env.owner.kernel().previousMembers(id).call().await.unwrap();
    assert_eq!(previous, first, "the scheduler reads the first committee while the retry waits");
    let seed = seed_of(&env, id, 1).await;
    let expected = preview(&env, seed, first.clone()).await;
    let retry = env.committee(id).await;
    assert_eq!(retry, expected);
    assert!(retry.iter().all(|m| !first.contains(m)), "fresh members: {first:?} then {retry:?}");
    assert_eq!(env.owner.prompt(id).await.unwrap().status, PromptStatus::Committing);
}

#[tokio::test]
async fn test_a_stale_anchor_moves_to_the_block_that_finds_it() {
    let env = Env::with(Options { workers: 6, ..Options::default() }).await;
    let id = env.requesters[0].submit(&env.request("late")).await.unwrap().prompt_id;
    let anchor = env.owner.anchor_of(id).await.unwrap().unwrap();
    // Nobody draws for more than the 256 blocks BLOCKHASH remembers (no EIP-2935 history here).
    env.mine(257).await;
    let receipt = env.requesters[1].draw(16).await.unwrap();
    assert!(
        logs::<DI::CommitteeAssigned>(&receipt).is_empty(),
        "no committee from a forgotten hash"
    );
    assert_eq!(logs::<PS::Anchored>(&receipt).len(), 1);
    let moved = env.owner.anchor_of(id).await.unwrap().unwrap();
    assert_eq!(moved, receipt.block_number.unwrap(), "the block of the draw that found it stale");
    assert!(moved > anchor + 256);
    let expected = preview(&env, seed_of(&env, id, 0).await, vec![]).await;
    assert_eq!(env.committee(id).await, expected);
}

#[tokio::test]
async fn test_workers_pause_resume_and_update_without_unbonding() {
    let env = Env::with(Options { workers: 4, ..Options::default() }).await;
    let gpu = env.owner.gpu();
    let worker = &env.workers[3];
    let me = worker.from();
    type Errors = GPU::GPUManagementErrors;
    let better = Hardware {
        gpu_model: "NVIDIA H100".into(),
        memory_mb: 81_920,
        engine: "aik-infer/llama-gguf/1".into(),
    };

    // Updating needs a pause first.
    assert_revert(
        worker.update_worker(&better, &[env.model], 2).await,
        Errors::GPUManagementWrongStatus(GPU::GPUManagementWrongStatus { worker: me, status: 1 }),
    );
    worker.pause().await.unwrap();
    assert_eq!(worker.worker(me).await.unwrap().status, WorkerStatus::Paused);
    assert_eq!(gpu.freeCount(env.model).call().await.unwrap(), U256::from(3));
    assert_eq!(gpu.poolWeight(env.model, me).call().await.unwrap(), U256::ZERO);
    // Prompts go to the others meanwhile.
    let id = env.requesters[0].submit(&env.request("while paused")).await.unwrap().prompt_id;
    assert!(!env.committee(id).await.contains(&me));
    env.run_honest(id, b"ok").await;

    // Capacity is bought with stake: 10,000 EAI backs at most 10 slots.
    assert_revert(
        worker.update_worker(&better, &[env.model], 11).await,
        Errors::GPUManagementInsufficientStake(GPU::GPUManagementInsufficientStake {
            have: U256::from(STAKE),
            need: U256::from(11_000 * ONE_EAI),
        }),
    );
    worker.update_worker(&better, &[env.model], 2).await.unwrap();
    let (state, hardware_now, models) = {
        let info = gpu.getWorker(me).call().await.unwrap();
        (info.state, info.hardware, info.models)
    };
    assert_eq!((state.capacity, state.stake), (2, STAKE));
    assert_eq!((hardware_now.gpuModel.as_str(), hardware_now.memoryMb), ("NVIDIA H100", 81_920));
    assert_eq!(models, vec![env.model]);

    worker.resume().await.unwrap();
    assert_eq!(worker.worker(me).await.unwrap().status, WorkerStatus::Active);
    assert_eq!(gpu.poolWeight(env.model, me).call().await.unwrap(), U256::from(2), "two slots");
    assert_eq!(gpu.availability(env.model).call().await.unwrap().seats, U256::from(5));
    assert_revert(
        worker.resume().await,
        Errors::GPUManagementWrongStatus(GPU::GPUManagementWrongStatus { worker: me, status: 1 }),
    );

    // A pause made while a draw is pending waits in the log; updating waits for it too.
    let id = env.requesters[0].submit(&env.request("pending")).await.unwrap().prompt_id;
    let receipt = worker.pause().await.unwrap();
    assert_eq!(logs::<GPU::PoolChangeLogged>(&receipt).len(), 1);
    assert_revert(
        worker.update_worker(&hardware(), &[env.model], 1).await,
        Errors::GPUManagementPoolChangePending(GPU::GPUManagementPoolChangePending {
            worker: me,
            pending: 1,
        }),
    );
    // The draw sees the pool at its anchor, where the worker still was; a paused member answers.
    let committee = env.committee(id).await;
    assert_eq!(gpu.poolChangeLog().call().await.unwrap().pending, U256::ZERO);
    let busy = u16::from(committee.contains(&me));
    assert_eq!(worker.worker(me).await.unwrap().busy, busy);
    if busy == 1 {
        assert_revert(
            worker.update_worker(&hardware(), &[env.model], 1).await,
            Errors::GPUManagementWorkerBusy(GPU::GPUManagementWorkerBusy { worker: me, busy: 1 }),
        );
    }
    env.run_honest(id, b"ok").await;
    worker.update_worker(&hardware(), &[env.model], 1).await.unwrap();
}

/// A prompt cancelled while it awaited its draw leaves nothing frozen: the next draw call skips
/// it, the pools apply what waited in the log, and a paused worker can update again.
#[tokio::test]
async fn test_a_cancelled_draw_unfreezes_the_pool() {
    let env = Env::new().await;
    let gpu = env.owner.gpu();
    let worker = &env.workers[0];
    let requester = &env.requesters[0];
    let id = requester.submit(&env.request("never drawn")).await.unwrap().prompt_id;
    let receipt = worker.pause().await.unwrap();
    assert_eq!(logs::<GPU::PoolChangeLogged>(&receipt).len(), 1, "frozen at the anchor");
    // A stranger cannot push the logged pause into the pool the pending draw will see.
    let stranger = &env.requesters[1];
    receipt_of(stranger.gpu().applyPoolChanges(U256::from(16)).from(stranger.from())).await;
    assert_eq!(gpu.poolChangeLog().call().await.unwrap().pending, U256::from(1));
    assert_eq!(gpu.poolWeight(env.model, worker.from()).call().await.unwrap(), U256::from(1));
    env.advance(u64::from(env.params.kernel.queueTimeout) + 1).await;
    requester.cancel_queued(id).await.unwrap();
    assert_eq!(env.owner.prompt(id).await.unwrap().status, PromptStatus::Refunded);
    assert_revert(
        worker.update_worker(&hardware(), &[env.model], 1).await,
        GPU::GPUManagementErrors::GPUManagementPoolChangePending(
            GPU::GPUManagementPoolChangePending { worker: worker.from(), pending: 1 },
        ),
    );
    let (pending, drawable) = env.owner.pending_draws().await.unwrap();
    assert_eq!((pending, drawable), (1, 1), "the cancelled entry still waits to be skipped");
    let receipt = env.requesters[1].draw(16).await.unwrap();
    assert!(logs::<DI::CommitteeAssigned>(&receipt).is_empty());
    assert_eq!(env.owner.pending_draws().await.unwrap(), (0, 0));
    let log = gpu.poolChangeLog().call().await.unwrap();
    assert_eq!((log.pending, log.frozenSince), (U256::ZERO, 0));
    assert_eq!(gpu.poolWeight(env.model, worker.from()).call().await.unwrap(), U256::ZERO);
    worker.update_worker(&hardware(), &[env.model], 1).await.unwrap();
}

/// More logged pool changes before a draw's anchor than one call applies, behind a cancelled
/// prompt: each draw call applies some and keeps the prompt first, so draws never stall.
#[tokio::test]
async fn test_a_pool_log_backlog_behind_a_cancelled_prompt_never_stalls_draws() {
    let env = Env::with(Options { workers: 6, ..Options::default() }).await;
    let gpu = env.owner.gpu();
    let requester = &env.requesters[0];
    let first = requester.submit(&env.request("cancelled")).await.unwrap().prompt_id;
    // Twenty changes after the first anchor: a worker pauses and resumes ten times.
    let churner = &env.workers[5];
    for _ in 0..10 {
        churner.pause().await.unwrap();
        churner.resume().await.unwrap();
    }
    assert_eq!(gpu.poolChangeLog().call().await.unwrap().pending, U256::from(20));
    let second = requester.submit(&env.request("drawn")).await.unwrap().prompt_id;
    env.advance(u64::from(env.params.kernel.queueTimeout) + 1).await;
    requester.cancel_queued(first).await.unwrap();
    let expected = {
        // What the pool at the second anchor seats: the churner is back, as it ended.
        let seed = seed_of(&env, second, 0).await;
        let workers: Vec<Address> = env.workers.iter().map(|w| w.from()).collect();
        let pool: Vec<(Address, u64)> = workers.iter().map(|w| (*w, 1)).collect();
        reference_draw(&pool, 3, seed, &[])
    };
    // The first call skips the cancelled prompt and applies 16 of the 20 changes; the second
    // applies the rest and draws.
    let receipt = env.requesters[1].draw(16).await.unwrap();
    assert!(logs::<DI::CommitteeAssigned>(&receipt).is_empty());
    assert_eq!(gpu.poolChangeLog().call().await.unwrap().pending, U256::from(4));
    assert_eq!(env.owner.pending_draws().await.unwrap().0, 1, "the second prompt stays first");
    let receipt = env.requesters[1].draw(16).await.unwrap();
    assert_eq!(logs::<DI::CommitteeAssigned>(&receipt)[0].committee, expected);
}

/// A worker that unstakes while a draw is pending cannot withdraw before the pools have seen
/// the unstake, even with no unbonding period: the pending draw may still seat it.
#[tokio::test]
async fn test_an_unstaked_worker_cannot_withdraw_before_the_pools_saw_it() {
    let env = Env::with(Options { workers: 4, ..Options::default() }).await;
    let treasury = env.params.kernel.treasury;
    env.owner.set_staking_params(env.params.min_stake, 0, treasury).await.unwrap();
    let id = env.requesters[0].submit(&env.request("pending")).await.unwrap().prompt_id;
    let leaver = &env.workers[3];
    leaver.request_unstake().await.unwrap();
    assert_revert(
        leaver.withdraw().await,
        GPU::GPUManagementErrors::GPUManagementPoolChangePending(
            GPU::GPUManagementPoolChangePending { worker: leaver.from(), pending: 1 },
        ),
    );
    let committee = env.committee(id).await;
    if committee.contains(&leaver.from()) {
        // Seated from the pool at the anchor: it answers before it leaves.
        assert_revert(
            leaver.withdraw().await,
            GPU::GPUManagementErrors::GPUManagementWorkerBusy(GPU::GPUManagementWorkerBusy {
                worker: leaver.from(),
                busy: 1,
            }),
        );
        env.run_honest(id, b"ok").await;
    }
    leaver.withdraw().await.unwrap();
    assert_eq!(leaver.worker(leaver.from()).await.unwrap().status, WorkerStatus::Exited);
}
