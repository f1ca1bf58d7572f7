//! Invariant fuzzing: random sequences of actions (145 sequences of 60 to 80, about 10,000 in
//! all) by five workers and three requesters, with a fixed seed so a failure reproduces; workers
//! also pause and resume, and anyone draws. Four workers are honest (they commit the right
//! output and reveal as soon as they may, as a real node does); the fifth acts at random and
//! lies at times. After every step: EAI is conserved, the kernel's coin balance is exactly open
//! escrow plus claimable balances, free counts agree with status and capacity, the draw pool's
//! weights are the free workers' capacity slots whenever no draw is pending, worker load
//! matches the open committees, no committee repeats a worker, no honest worker has lost stake,
//! no more EAI was minted than the fees' treasury shares back, and every prompt past its bound
//! (reveal deadline, or queue timeout) can be closed by anyone. A second run (30 sequences) uses
//! one-member committees and a liar that always answers wrong and holds 6 of the 14 seats, so
//! that wrong answers get finalized and verifiers' challenges run to their end, overturned and
//! upheld, under the same invariants.

use std::collections::{BTreeMap, BTreeSet};

use aik_kernel::{PromptStatus, WorkerStatus, output_hash};
use alloy::{
    primitives::{Address, U256},
    providers::Provider,
};
use proptest::{
    prelude::*,
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};

use crate::fixture::{Env, Options, PRICE, salt};

#[derive(Clone, Debug)]
enum Action {
    Submit { requester: usize, bid: u128, cheap: bool },
    Commit { prompt: usize, member: usize, honest: bool },
    Reveal { prompt: usize, member: usize },
    Finalize { prompt: usize },
    Advance { seconds: u64 },
    Unjail { worker: usize },
    Claim { account: usize },
    Cancel { prompt: usize },
    Pump,
    Draw,
    Pause { worker: usize },
    Resume { worker: usize },
    Challenge { prompt: usize, requester: usize },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0..3usize, 1..4u128, proptest::bool::ANY)
            .prop_map(|(requester, bid, cheap)| Action::Submit { requester, bid, cheap }),
        4 => (0..3usize, 0..3usize, proptest::bool::weighted(0.5))
            .prop_map(|(prompt, member, honest)| Action::Commit { prompt, member, honest }),
        4 => (0..3usize, 0..3usize).prop_map(|(prompt, member)| Action::Reveal { prompt, member }),
        3 => (0..3usize).prop_map(|prompt| Action::Finalize { prompt }),
        2 => (1..400u64).prop_map(|seconds| Action::Advance { seconds }),
        2 => (0..5usize).prop_map(|worker| Action::Unjail { worker }),
        1 => (0..9usize).prop_map(|account| Action::Claim { account }),
        1 => (0..3usize).prop_map(|prompt| Action::Cancel { prompt }),
        1 => Just(Action::Pump),
        2 => Just(Action::Draw),
        1 => (0..5usize).prop_map(|worker| Action::Pause { worker }),
        3 => (0..5usize).prop_map(|worker| Action::Resume { worker }),
        3 => (0..3usize, 0..3usize)
            .prop_map(|(prompt, requester)| Action::Challenge { prompt, requester }),
    ]
}

/// Picks the `index`-th (modulo) prompt that has a committee at work, else the `index`-th most
/// recent one, so that random sequences carry prompts through their whole life.
async fn pick(env: &Env, prompts: &[U256], index: usize) -> Option<U256> {
    let mut open = Vec::new();
    for id in prompts {
        if env.owner.prompt(*id).await.unwrap().status == PromptStatus::Committing {
            open.push(*id);
        }
    }
    if !open.is_empty() {
        return Some(open[index % open.len()]);
    }
    (!prompts.is_empty()).then(|| prompts[prompts.len() - 1 - index % prompts.len()])
}

async fn step(
    env: &Env,
    prompts: &mut Vec<U256>,
    outputs: &mut BTreeMap<(U256, Address), Vec<u8>>,
    finalizations: &mut usize,
    action: &Action,
    steady_liar: bool,
) {
    // Actions may be invalid at the time (wrong phase, not a member…): the chain rejects them,
    // and the invariants must hold either way.
    match *action {
        Action::Submit { requester, bid, cheap } => {
            let mut request = env.request("fuzz");
            // One-token prompts: their treasury share backs less than a full block reward.
            if cheap {
                request.max_tokens = 1;
            }
            request.fee_per_token = bid * PRICE;
            if let Ok(submitted) = env.requesters[requester].submit(&request).await {
                prompts.push(submitted.prompt_id);
            }
        }
        Action::Commit { prompt, member, honest } => {
            let Some(id) = pick(env, prompts, prompt).await else { return };
            let members = env.committee(id).await;
            let Some(worker) = members.get(member % members.len().max(1)) else { return };
            // Honest members act on their own (see `honest_step`); only the liar is random, unless
            // it is a steady one.
            if steady_liar || *worker != liar(env) {
                return;
            }
            let output: &[u8] = if honest { b"ok" } else { b"bad" };
            let attempt = env.owner.prompt(id).await.map_or(0, |p| p.attempt);
            let hash = output_hash(output);
            if env.worker(*worker).commit(id, attempt, hash, salt(*worker)).await.is_ok() {
                outputs.insert((id, *worker), output.to_vec());
            }
        }
        Action::Reveal { prompt, member } => {
            let Some(id) = pick(env, prompts, prompt).await else { return };
            let members = env.committee(id).await;
            let Some(worker) = members.get(member % members.len().max(1)) else { return };
            if let Some(output) = outputs.get(&(id, *worker)) {
                let _ = env.worker(*worker).reveal(id, salt(*worker), output).await;
            }
        }
        Action::Finalize { prompt } => {
            let Some(id) = pick(env, prompts, prompt).await else { return };
            // With one-member committees the liar's answer may be the one that won.
            let finalized = env.owner.finalize(id, b"ok").await.is_ok()
                || env.owner.finalize(id, b"bad").await.is_ok();
            if finalized {
                *finalizations += 1;
                // A retry draws a new committee: earlier commitments are void.
                outputs.retain(|(p, _), _| *p != id);
            }
        }
        Action::Advance { seconds } => {
            // In steps shorter than a window, so that honest members keep their deadlines.
            let mut left = seconds;
            while left > 0 {
                let chunk = left.min(100);
                env.advance(chunk).await;
                honest_step(env, prompts, outputs, steady_liar).await;
                left -= chunk;
            }
        }
        Action::Unjail { worker } => {
            for offset in 0..env.workers.len() {
                let _ = env.workers[(worker + offset) % env.workers.len()].unjail().await;
            }
        }
        Action::Claim { account } => {
            let client = if account < 5 {
                &env.workers[account]
            } else if account < 8 {
                &env.requesters[account - 5]
            } else {
                &env.owner
            };
            let _ = client.claim(client.from()).await;
        }
        Action::Cancel { prompt } => {
            let Some(id) = pick(env, prompts, prompt).await else { return };
            for requester in &env.requesters {
                let _ = requester.cancel_queued(id).await;
            }
        }
        Action::Pump => {
            let _ = env.owner.pump(env.model, 3).await;
        }
        Action::Draw => {
            let _ = env.requesters[0].draw(16).await;
        }
        Action::Pause { worker } => {
            let _ = env.workers[worker].pause().await;
        }
        Action::Resume { worker } => {
            let _ = env.workers[worker].resume().await;
        }
        Action::Challenge { prompt, requester } => {
            // The `prompt`-th most recent prompt, finalized or not (the kernel refuses the rest).
            // With committees of three, five workers cannot seat a challenge committee of seven
            // besides the answering three: challenges wait, hold their bond in escrow and are
            // cancelled with it back. With committees of one, the other four seat the challenge
            // committee of three, which overturns the liar's wrong answers and upholds the rest.
            // A verifier challenges a wrong answer it can still dispute first, as `aik verify
            // --challenge` would; otherwise anything.
            let mut target = prompts.iter().rev().nth(prompt % prompts.len().max(1)).copied();
            for id in prompts.iter().rev() {
                let (status, hash, _) = env.owner.result(*id).await.unwrap();
                let open = env.owner.challenge_deadline(*id).await.unwrap().is_some();
                if status == PromptStatus::Finalized && open && hash != output_hash(b"ok") {
                    target = Some(*id);
                    break;
                }
            }
            let Some(id) = target else { return };
            let bond = U256::from(env.params.kernel.challengeBond);
            let _ = env.requesters[requester].challenge(id, bond).await;
        }
    }
}

/// The worker that may lie: the last one. With three-member committees drawn from five workers
/// of which four are honest, every committee has an honest majority.
fn liar(env: &Env) -> Address {
    env.workers.last().expect("workers").from()
}

/// What honest nodes do on their own: commit the right output as soon as they sit on a committee,
/// reveal as soon as reveals open. With `steady_liar`, the liar does the same with a wrong
/// output (otherwise it acts only through the random actions).
async fn honest_step(
    env: &Env,
    prompts: &[U256],
    outputs: &mut BTreeMap<(U256, Address), Vec<u8>>,
    steady_liar: bool,
) {
    let liar = if steady_liar { Address::ZERO } else { liar(env) };
    let output = |member: &Address| -> &'static [u8] {
        if steady_liar && *member == self::liar(env) { b"bad" } else { b"ok" }
    };
    let now = env.now().await;
    for id in prompts {
        let record = env.owner.prompt(*id).await.unwrap();
        if record.status != PromptStatus::Committing {
            continue;
        }
        let members = env.committee(*id).await;
        let everyone = (1u16 << members.len()) - 1;
        for (index, member) in members.iter().enumerate() {
            let bit = 1u16 << index;
            if *member == liar {
                continue;
            }
            if record.committed_mask & bit == 0 && now <= record.commit_deadline {
                let hash = output_hash(output(member));
                let worker = env.worker(*member);
                worker.commit(*id, record.attempt, hash, salt(*member)).await.unwrap();
                outputs.insert((*id, *member), output(member).to_vec());
            }
        }
        let record = env.owner.prompt(*id).await.unwrap();
        let reveal_open = record.committed_mask == everyone || now > record.commit_deadline;
        for (index, member) in members.iter().enumerate() {
            let bit = 1u16 << index;
            let pending = record.committed_mask & bit != 0 && record.revealed_mask & bit == 0;
            if *member != liar && pending && reveal_open && now <= record.reveal_deadline {
                env.worker(*member).reveal(*id, salt(*member), output(member)).await.unwrap();
            }
        }
    }
}

async fn check_invariants(env: &Env, prompts: &[U256]) -> Result<(), TestCaseError> {
    let addresses = env.owner.addresses();
    let mut accounts: Vec<Address> =
        env.workers.iter().chain(&env.requesters).map(|c| c.from()).collect();
    accounts.push(env.owner.from());

    // EAI: every holder's balance plus the staking contract's adds up to the supply, and the
    // staking contract holds exactly the stakes.
    let mut held = U256::ZERO;
    for account in accounts.iter().chain([&addresses.gpu, &addresses.kernel]) {
        held += env.owner.eai_balance(*account).await.unwrap();
    }
    let supply = env.owner.token().totalSupply().call().await.unwrap();
    prop_assert_eq!(held, supply, "EAI held != minted");
    let mut stakes = U256::ZERO;
    let mut infos = Vec::new();
    for worker in &env.workers {
        let info = env.owner.worker(worker.from()).await.unwrap();
        stakes += U256::from(info.stake);
        infos.push((worker.from(), info));
    }
    prop_assert_eq!(
        env.owner.eai_balance(addresses.gpu).await.unwrap(),
        stakes,
        "stakes != staking balance"
    );

    // Coin: the kernel holds open escrow plus what accounts can claim, and open escrow is the
    // fees of the prompts still open.
    let mut claimable = U256::ZERO;
    for account in &accounts {
        claimable += env.owner.claimable(*account).await.unwrap();
    }
    let escrow = env.owner.kernel().openEscrow().call().await.unwrap();
    prop_assert_eq!(env.provider.get_balance(addresses.kernel).await.unwrap(), escrow + claimable);
    let mut open_fees = U256::ZERO;
    let mut load: BTreeMap<Address, u16> = BTreeMap::new();
    for id in prompts {
        let record = env.owner.prompt(*id).await.unwrap();
        if matches!(record.status, PromptStatus::Queued | PromptStatus::Committing) {
            open_fees += U256::from(record.fee);
        }
        if record.status == PromptStatus::Committing {
            let members = env.committee(*id).await;
            let distinct: BTreeSet<_> = members.iter().collect();
            prop_assert_eq!(distinct.len(), members.len(), "a worker sits twice on prompt {}", id);
            for member in members {
                *load.entry(member).or_default() += 1;
            }
        }
    }
    prop_assert_eq!(escrow, open_fees);

    // Free sets: free iff active with spare capacity; busy equals open committee seats.
    let mut free = 0u64;
    for (address, info) in &infos {
        let expected = info.status == WorkerStatus::Active && info.busy < info.capacity;
        let actual = env.owner.gpu().isFree(env.model, *address).call().await.unwrap();
        prop_assert_eq!(actual, expected, "free status of {}", address);
        free += u64::from(expected);
        prop_assert_eq!(info.busy, load.get(address).copied().unwrap_or(0), "load of {}", address);
    }
    prop_assert_eq!(env.owner.gpu().freeCount(env.model).call().await.unwrap(), U256::from(free));

    // Draw pool: with no draw pending and nothing logged, each worker's weight is its free
    // capacity slots while Active, and the tree's total is their sum.
    let gpu = env.owner.gpu();
    let (pending_draws, _) = env.owner.pending_draws().await.unwrap();
    let logged = gpu.poolChangeLog().call().await.unwrap().pending;
    if pending_draws == 0 && logged == U256::ZERO {
        let mut total = U256::ZERO;
        for (address, info) in &infos {
            let expected = if info.status == WorkerStatus::Active {
                U256::from(info.capacity - info.busy)
            } else {
                U256::ZERO
            };
            let weight = gpu.poolWeight(env.model, *address).call().await.unwrap();
            prop_assert_eq!(weight, expected, "pool weight of {}", address);
            total += weight;
        }
        prop_assert_eq!(gpu.poolOf(env.model).call().await.unwrap().total, total, "pool total");
    }

    // Emission is bounded by fees: no more EAI minted than the treasury shares back.
    let filter = alloy::rpc::types::Filter::new()
        .address(addresses.kernel)
        .event_signature(<aik_kernel::bindings::DecentralizedInference::PromptFinalized as alloy::sol_types::SolEvent>::SIGNATURE_HASH)
        .from_block(0);
    let mut backed = U256::ZERO;
    for log in env.provider.get_logs(&filter).await.unwrap() {
        let event = log
            .log_decode::<aik_kernel::bindings::DecentralizedInference::PromptFinalized>()
            .unwrap()
            .inner
            .data;
        backed += event.treasuryPay * env.params.eai_per_wei;
    }
    prop_assert!(supply - env.params.initial_supply <= backed, "emission above what fees back");

    // No honest worker loses stake.
    let liar = liar(env);
    for (address, info) in &infos {
        if *address != liar {
            prop_assert_eq!(info.stake, crate::fixture::STAKE, "honest {} lost stake", address);
        }
    }

    // Every prompt is final within its bound: past its reveal deadline (or, queued, past its
    // queue timeout) anyone can close it.
    let now = env.now().await;
    for id in prompts {
        let record = env.owner.prompt(*id).await.unwrap();
        let closable = match record.status {
            PromptStatus::Committing if now > record.reveal_deadline => {
                let kernel = env.requesters[0].kernel();
                let honest = kernel.finalize(*id, b"ok".to_vec().into()).call().await;
                match honest {
                    Ok(_) => Ok(()),
                    // The liar's answer won a one-member committee: it closes with its bytes.
                    Err(_) => kernel.finalize(*id, b"bad".to_vec().into()).call().await.map(|_| ()),
                }
            }
            PromptStatus::Queued if now >= record.commit_deadline => {
                env.requesters[0].kernel().cancelQueued(*id).call().await.map(|_| ())
            }
            _ => Ok(()),
        };
        prop_assert!(closable.is_ok(), "prompt {} is past its bound and cannot be closed", id);
    }
    Ok(())
}

/// What a fuzz run did: sequences that finalized a prompt, actions, and challenges that ended
/// overturned and upheld.
struct Coverage {
    exercised: usize,
    steps: usize,
    overturned: usize,
    upheld: usize,
}

/// Runs `cases` random sequences of 60 to 80 actions on five workers (capacity 2, the last one
/// a liar, random or steady: see [`honest_step`]) and three requesters, with committees of
/// `committee_size`, checking the invariants after every step.
fn fuzz(committee_size: u8, steady_liar: bool, cases: u32, seed: u8) -> Coverage {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let config =
        Config { cases, max_shrink_iters: 0, failure_persistence: None, ..Config::default() };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]));
    let (exercised, steps) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let (overturned, upheld) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let result = runner.run(&proptest::collection::vec(action(), 60..80), |actions| {
        runtime.block_on(async {
            // A steady liar takes more seats (6 of 14), so that its wrong answers come often.
            let env = Env::with(Options {
                workers: 5,
                requesters: 3,
                committee_size,
                capacity: if steady_liar { |i| if i == 4 { 6 } else { 2 } } else { |_| 2 },
                stake: if steady_liar {
                    |i| if i == 4 { 6 * crate::fixture::STAKE } else { crate::fixture::STAKE }
                } else {
                    |_| crate::fixture::STAKE
                },
                ..Options::default()
            })
            .await;
            let mut prompts = Vec::new();
            let mut outputs = BTreeMap::new();
            let mut finalizations = 0;
            for action in &actions {
                step(&env, &mut prompts, &mut outputs, &mut finalizations, action, steady_liar)
                    .await;
                honest_step(&env, &prompts, &mut outputs, steady_liar).await;
                check_invariants(&env, &prompts).await?;
            }
            if finalizations > 0 {
                exercised.fetch_add(1, Relaxed);
            }
            for id in &prompts {
                match env.owner.challenge_of(*id).await.unwrap().1 {
                    aik_kernel::ChallengeStatus::Overturned => overturned.fetch_add(1, Relaxed),
                    aik_kernel::ChallengeStatus::Upheld => upheld.fetch_add(1, Relaxed),
                    _ => 0,
                };
            }
            steps.fetch_add(actions.len(), Relaxed);
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    Coverage {
        exercised: exercised.into_inner(),
        steps: steps.into_inner(),
        overturned: overturned.into_inner(),
        upheld: upheld.into_inner(),
    }
}

#[test]
fn test_fuzz_invariants_hold_over_random_action_sequences() {
    let run = fuzz(3, false, 145, 42);
    // The sequences must exercise the protocol, not only fail: in most of them prompts get
    // finalized (with a result, a retry or a refund). Pauses can starve a few of workers.
    assert!(run.exercised >= 100, "only {} of 145 sequences finalized a prompt", run.exercised);
    assert!(run.steps >= 10_000, "{} actions", run.steps);
    eprintln!("{} random actions, invariants checked after each", run.steps);
}

/// One-member committees and a liar that always answers wrong, so that its answers get finalized
/// and challenges run to their end: EAI and coin stay conserved, and no honest worker loses
/// stake, through overturned and upheld challenges alike.
#[test]
fn test_fuzz_invariants_hold_through_challenges_that_overturn_and_uphold() {
    let run = fuzz(1, true, 30, 7);
    eprintln!(
        "{} random actions: {} challenges overturned, {} upheld",
        run.steps, run.overturned, run.upheld
    );
    assert!(run.exercised >= 20, "only {} of 30 sequences finalized a prompt", run.exercised);
    assert!(run.overturned >= 1 && run.upheld >= 1, "challenges must run to both ends");
}
