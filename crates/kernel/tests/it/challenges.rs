//! Challenges: anyone who re-runs a prompt can overturn a wrong answer onchain. Scripted
//! committees play a colluding majority, a wronged minority and the challenge committee; every
//! test checks stakes, EAI and claimable coin to the wei. Attacks tried here: a colluding
//! majority keeps its answer when a challenge committee could include it, a challenge after the
//! window or a second one, a wrong bond, a challenge of a refunded, unavailable or open prompt,
//! a delivery before the window, twice, with the wrong bytes or from inside the callback, a
//! later turn re-run against a context a correction changed after it was computed, and colluders
//! unstaking before the challenge ends.

use aik_kernel::{
    ChallengeStatus, Finality, Penalty, PromptStatus, WorkerStatus,
    bindings::{ContextManager, DecentralizedInference as DI},
    load_context, output_hash,
};
use alloy::primitives::{Address, U256};

use crate::fixture::{Env, Options, STAKE, ask_through, assert_revert};

type Errors = DI::DecentralizedInferenceErrors;

const RIGHT: &[u8] = b"Paris";
const WRONG: &[u8] = b"Lyon";
const BPS: u128 = 10_000;

/// Ten capacity-1 workers, committees of three: a challenge committee of seven is exactly the
/// seven workers that did not answer.
async fn ten_workers() -> Env {
    Env::with(Options { workers: 10, ..Options::default() }).await
}

fn bond(env: &Env) -> U256 {
    U256::from(env.params.kernel.challengeBond)
}

/// Runs the prompt's committee, the members at `wrong` revealing WRONG and the others RIGHT, and
/// finalizes with the majority's output; returns the committee.
async fn answer(env: &Env, prompt_id: U256, wrong: &[usize]) -> Vec<Address> {
    let members = env.committee(prompt_id).await;
    let outputs: Vec<Option<&[u8]>> =
        (0..members.len()).map(|i| Some(if wrong.contains(&i) { WRONG } else { RIGHT })).collect();
    env.commit_reveal(prompt_id, &outputs).await;
    let winner = if wrong.len() * 2 > members.len() { WRONG } else { RIGHT };
    env.owner.finalize(prompt_id, winner).await.expect("finalize");
    members
}

async fn eai(env: &Env, account: Address) -> U256 {
    env.owner.eai_balance(account).await.unwrap()
}

async fn claimable(env: &Env, account: Address) -> U256 {
    env.owner.claimable(account).await.unwrap()
}

async fn resolved(env: &Env, prompt_id: U256) -> DI::ChallengeResolved {
    env.events::<DI::ChallengeResolved>(prompt_id).await.pop().expect("a ChallengeResolved event")
}

#[tokio::test]
async fn test_a_challenge_overturns_a_colluding_majority_to_the_wei() {
    let env = ten_workers().await;
    let challenger = &env.requesters[1];
    let id = env.requesters[0].submit(&env.request("Capital of France?")).await.unwrap().prompt_id;
    let first = answer(&env, id, &[0, 1]).await;
    assert_eq!(env.owner.result(id).await.unwrap().1, output_hash(WRONG), "the majority won");
    let minority = env.owner.worker(first[2]).await.unwrap();
    assert_eq!((minority.stake, minority.status), (STAKE - STAKE / 10, WorkerStatus::Jailed));
    let deadline = env.owner.challenge_deadline(id).await.unwrap().expect("the window is open");
    assert_eq!(deadline, env.now().await + u64::from(env.params.kernel.challengeWindow));

    let others: Vec<Address> =
        env.workers.iter().map(|w| w.from()).filter(|w| !first.contains(w)).collect();
    let mut before = Vec::new();
    for account in others.iter().chain([&challenger.from(), &env.owner.from()]) {
        before.push(eai(&env, *account).await);
    }
    challenger.challenge(id, bond(&env)).await.unwrap();
    assert_eq!(
        env.owner.challenge_of(id).await.unwrap(),
        (challenger.from(), ChallengeStatus::Pending, bond(&env))
    );
    let record = env.owner.prompt(id).await.unwrap();
    assert_eq!(
        (record.status, record.attempt, record.committee_size),
        (PromptStatus::Queued, 2, 7)
    );
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), bond(&env));

    let members = env.committee(id).await;
    let mut sorted = members.clone();
    sorted.sort();
    let mut expected = others.clone();
    expected.sort();
    assert_eq!(sorted, expected, "the seven workers that did not answer, none that did");
    env.commit_reveal(id, &[Some(RIGHT); 7]).await;
    env.owner.finalize(id, RIGHT).await.unwrap();

    let (status, hash, miner) = env.owner.result(id).await.unwrap();
    assert_eq!((status, hash), (PromptStatus::Finalized, output_hash(RIGHT)));
    assert_eq!(miner, members[0], "the challenge committee's first committer mines");
    assert_eq!(env.owner.challenge_of(id).await.unwrap().1, ChallengeStatus::Overturned);

    // The majority lost half its stake and sits out a week; the minority is whole and free.
    let now = env.now().await;
    for colluder in &first[..2] {
        let info = env.owner.worker(*colluder).await.unwrap();
        assert_eq!((info.stake, info.status), (STAKE / 2, WorkerStatus::Jailed));
        assert_eq!(info.until, now + env.params.kernel.jailChallenged);
    }
    let minority = env.owner.worker(first[2]).await.unwrap();
    assert_eq!((minority.stake, minority.status), (STAKE, WorkerStatus::Active));

    // The slashed 10,000 EAI: 1,000 back to the minority, then half of the rest to the
    // challenger and the other half split by the seven agreeing members (dust to the treasury).
    let slashed = U256::from(STAKE);
    let rest = slashed - U256::from(STAKE / 10);
    let reward = rest * U256::from(env.params.kernel.challengeRewardBps) / U256::from(BPS);
    let each = (rest - reward) / U256::from(7);
    let dust = rest - reward - each * U256::from(7);
    for (i, account) in others.iter().enumerate() {
        assert_eq!(eai(&env, *account).await - before[i], each, "member {account}");
    }
    assert_eq!(eai(&env, challenger.from()).await - before[7], reward);
    assert_eq!(eai(&env, env.owner.from()).await - before[8], dust);
    assert_eq!(eai(&env, env.owner.addresses().kernel).await, U256::ZERO, "nothing stays");
    let event = resolved(&env, id).await;
    assert_eq!(
        (event.outcome, event.outputHash, event.slashed, event.challengerReward),
        (ChallengeStatus::Overturned as u8, output_hash(RIGHT), slashed, reward)
    );
    let reversed = env.events::<DI::PenaltyReversed>(id).await;
    assert_eq!(reversed.len(), 1);
    assert_eq!((reversed[0].worker, reversed[0].restored), (first[2], U256::from(STAKE / 10)));
    let overturned: Vec<Address> = env
        .events::<DI::WorkerPenalized>(id)
        .await
        .iter()
        .filter(|e| e.reason == Penalty::Overturned as u8)
        .map(|e| e.worker)
        .collect();
    assert_eq!(overturned, first[..2]);

    // The bond is back (the fixture's gas price is zero), the escrow empty, the topic corrected.
    assert_eq!(claimable(&env, challenger.from()).await, bond(&env));
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
    let context = ContextManager::new(env.owner.addresses().context, env.provider.clone());
    let topic = aik_kernel::KernelClient::<alloy::providers::DynProvider>::topic_id(
        env.requesters[0].from(),
        "chat",
    );
    assert_eq!(context.correctionCount(topic).call().await.unwrap(), U256::from(1));
    assert_eq!(env.owner.challenge_deadline(id).await.unwrap(), None);
    assert_revert(
        challenger.challenge(id, bond(&env)).await,
        Errors::DecentralizedInferenceAlreadyChallenged(
            DI::DecentralizedInferenceAlreadyChallenged { promptId: id },
        ),
    );
}

/// The colluders see the challenge coming and unstake at once: unbonding keeps their stake where
/// the overturn finds it, the jail term outlasts the unbonding, and they leave with half.
#[tokio::test]
async fn test_attack_colluders_that_unstake_at_once_are_still_slashed() {
    type GpuErrors = aik_kernel::bindings::GPUManagement::GPUManagementErrors;
    let env = ten_workers().await;
    let id = env.requesters[0].submit(&env.request("Capital of France?")).await.unwrap().prompt_id;
    let first = answer(&env, id, &[0, 1]).await;
    let colluders = [env.worker(first[0]), env.worker(first[1])];
    for colluder in colluders {
        colluder.request_unstake().await.unwrap();
    }
    let unbonded_at = env.now().await + env.params.unbonding_period;
    env.requesters[1].challenge(id, bond(&env)).await.unwrap();
    let members = env.committee(id).await;
    assert!(members.iter().all(|m| !first.contains(m)));
    env.commit_reveal(id, &[Some(RIGHT); 7]).await;
    // Their stake is locked until the unbonding ends, however the challenge goes.
    let unbonding = env.owner.worker(first[0]).await.unwrap().until;
    let refused = colluders[0].withdraw().await.expect_err("withdrawing while unbonding");
    assert!(
        matches!(
            refused.decode_revert::<GpuErrors>(),
            Some(GpuErrors::GPUManagementUnbondingNotOver(e)) if e.until == unbonding
        ),
        "{refused}"
    );
    env.owner.finalize(id, RIGHT).await.unwrap();
    assert_eq!(env.owner.challenge_of(id).await.unwrap().1, ChallengeStatus::Overturned);
    let jailed_until = env.now().await + env.params.kernel.jailChallenged;
    for colluder in &first[..2] {
        let info = env.owner.worker(*colluder).await.unwrap();
        assert_eq!(info.stake, STAKE / 2, "slashed while unbonding");
        assert_eq!(info.status, WorkerStatus::Unbonding);
        assert_eq!(info.until, jailed_until.max(unbonded_at), "the jail term holds the stake");
    }
    env.advance(jailed_until.max(unbonded_at) - env.now().await + 1).await;
    let before = eai(&env, first[0]).await;
    colluders[0].withdraw().await.unwrap();
    assert_eq!(eai(&env, first[0]).await - before, U256::from(STAKE / 2), "half is all they keep");
}

#[tokio::test]
async fn test_a_failed_challenge_pays_the_bond_to_the_committee_and_the_treasury() {
    let env = ten_workers().await;
    let challenger = &env.requesters[1];
    let id = env.requesters[0].submit(&env.request("Capital of France?")).await.unwrap().prompt_id;
    let first = answer(&env, id, &[]).await;
    let (_, hash, miner) = env.owner.result(id).await.unwrap();
    let others: Vec<Address> =
        env.workers.iter().map(|w| w.from()).filter(|w| !first.contains(w)).collect();
    let treasury = env.owner.from();
    let treasury_before = claimable(&env, treasury).await;

    challenger.challenge(id, bond(&env)).await.unwrap();
    env.commit_reveal(id, &[Some(RIGHT); 7]).await;
    env.owner.finalize(id, RIGHT).await.unwrap();

    let params = &env.params.kernel;
    let share =
        bond(&env) * U256::from(params.minerShareBps + params.verifierShareBps) / U256::from(BPS);
    let each = share / U256::from(7);
    for account in &others {
        assert_eq!(claimable(&env, *account).await, each, "member {account}");
    }
    assert_eq!(
        claimable(&env, treasury).await - treasury_before,
        bond(&env) - each * U256::from(7)
    );
    assert_eq!(claimable(&env, challenger.from()).await, U256::ZERO, "the bond is lost");
    assert_eq!(env.owner.result(id).await.unwrap(), (PromptStatus::Finalized, hash, miner));
    assert_eq!(env.owner.challenge_of(id).await.unwrap().1, ChallengeStatus::Upheld);
    assert_eq!(env.owner.prompt(id).await.unwrap().committee_size, 3, "its own record again");
    for worker in &env.workers {
        let info = env.owner.worker(worker.from()).await.unwrap();
        assert_eq!((info.stake, info.status, info.busy), (STAKE, WorkerStatus::Active, 0));
    }
    assert_eq!(resolved(&env, id).await.outcome, ChallengeStatus::Upheld as u8);
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn test_a_challenge_without_a_quorum_leaves_the_answer_and_returns_the_bond() {
    let env = ten_workers().await;
    let challenger = &env.requesters[1];
    let id = env.requesters[0].submit(&env.request("Capital of France?")).await.unwrap().prompt_id;
    answer(&env, id, &[0, 1]).await;
    challenger.challenge(id, bond(&env)).await.unwrap();
    let members = env.committee(id).await;
    // Three and three split, one silent: no output reaches the quorum of four.
    env.commit_reveal(
        id,
        &[Some(RIGHT), Some(RIGHT), Some(RIGHT), Some(b"Nice"), Some(b"Nice"), Some(b"Nice"), None],
    )
    .await;
    env.owner.finalize(id, b"").await.unwrap();
    assert_eq!(env.owner.result(id).await.unwrap().1, output_hash(WRONG));
    assert_eq!(env.owner.challenge_of(id).await.unwrap().1, ChallengeStatus::Inconclusive);
    assert_eq!(claimable(&env, challenger.from()).await, bond(&env));
    let absent = env.owner.worker(members[6]).await.unwrap();
    let slash = STAKE * u128::from(env.params.kernel.slashAbsentBps) / BPS;
    assert_eq!((absent.stake, absent.status), (STAKE - slash, WorkerStatus::Jailed));
    for member in &members[..6] {
        assert_eq!(env.owner.worker(*member).await.unwrap().stake, STAKE, "no quorum, no wrong");
    }
}

#[tokio::test]
async fn test_challenge_reverts_name_what_was_wrong() {
    let env = Env::new().await;
    let challenger = &env.requesters[1];
    let bond = bond(&env);
    assert_revert(
        challenger.challenge(U256::from(99), bond).await,
        Errors::DecentralizedInferenceUnknownPrompt(DI::DecentralizedInferenceUnknownPrompt {
            promptId: U256::from(99),
        }),
    );
    // Open: anchored for its draw, then committing.
    let id = env.requesters[0].submit(&env.request("Capital of France?")).await.unwrap().prompt_id;
    let wrong_status = |status: PromptStatus| {
        Errors::DecentralizedInferenceWrongStatus(DI::DecentralizedInferenceWrongStatus {
            promptId: id,
            status: status as u8,
        })
    };
    assert_revert(challenger.challenge(id, bond).await, wrong_status(PromptStatus::Queued));
    env.committee(id).await;
    assert_revert(challenger.challenge(id, bond).await, wrong_status(PromptStatus::Committing));
    answer(&env, id, &[]).await;
    for paid in [bond - U256::from(1), bond + U256::from(1), U256::ZERO] {
        assert_revert(
            challenger.challenge(id, paid).await,
            Errors::DecentralizedInferenceWrongBond(DI::DecentralizedInferenceWrongBond {
                paid,
                bond,
            }),
        );
    }
    let deadline = env.owner.challenge_deadline(id).await.unwrap().unwrap();
    env.advance(u64::from(env.params.kernel.challengeWindow) + 1).await;
    assert_eq!(env.owner.challenge_deadline(id).await.unwrap(), None);
    assert_revert(
        challenger.challenge(id, bond).await,
        Errors::DecentralizedInferenceChallengeClosed(DI::DecentralizedInferenceChallengeClosed {
            promptId: id,
            deadline: U256::from(deadline),
        }),
    );

    // Unavailable: nobody committed.
    let silent = env.requesters[0].submit(&env.request("Anyone?")).await.unwrap().prompt_id;
    // It took the lane that kept the first prompt's record (deadline 0: the record is gone), so
    // another prompt's committee can never stand in for the first one's.
    assert_revert(
        challenger.challenge(id, bond).await,
        Errors::DecentralizedInferenceChallengeClosed(DI::DecentralizedInferenceChallengeClosed {
            promptId: id,
            deadline: U256::ZERO,
        }),
    );
    env.committee(silent).await;
    env.advance(u64::from(env.params.kernel.commitWindow) + 1).await;
    env.owner.finalize(silent, b"").await.unwrap();
    assert_revert(
        challenger.challenge(silent, bond).await,
        Errors::DecentralizedInferenceWrongStatus(DI::DecentralizedInferenceWrongStatus {
            promptId: silent,
            status: PromptStatus::Unavailable as u8,
        }),
    );
    // Refunded: two committees that agree on nothing.
    let split = env.requesters[0].submit(&env.request("Pick one")).await.unwrap().prompt_id;
    for _ in 0..2 {
        env.commit_reveal(split, &[Some(b"a"), Some(b"b"), Some(b"c")]).await;
        env.owner.finalize(split, b"").await.unwrap();
    }
    assert_eq!(env.owner.result(split).await.unwrap().0, PromptStatus::Refunded);
    assert_revert(
        challenger.challenge(split, bond).await,
        Errors::DecentralizedInferenceWrongStatus(DI::DecentralizedInferenceWrongStatus {
            promptId: split,
            status: PromptStatus::Refunded as u8,
        }),
    );
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn test_no_challenge_when_the_window_is_off() {
    let env = Env::with(Options {
        tweak: |p| (p.kernel.challengeWindow, p.kernel.challengeBond) = (0, 0),
        ..Options::default()
    })
    .await;
    let id = env.requesters[0].submit(&env.request("Capital of France?")).await.unwrap().prompt_id;
    answer(&env, id, &[]).await;
    let finalized_at = env.now().await;
    assert_eq!(env.owner.challenge_deadline(id).await.unwrap(), None);
    assert_revert(
        env.requesters[1].challenge(id, U256::ZERO).await,
        Errors::DecentralizedInferenceChallengeClosed(DI::DecentralizedInferenceChallengeClosed {
            promptId: id,
            deadline: U256::from(finalized_at),
        }),
    );
}

/// Attack: the colluders would win a challenge committee drawn from a small pool. Eight workers
/// free, seven seats: only five are not the answering committee, so no committee is ever drawn
/// (however often anyone draws), and after the queue timeout anyone cancels the challenge: the
/// bond goes back, the answer stands, and the prompt cannot be challenged again.
#[tokio::test]
async fn test_attack_a_challenge_committee_never_includes_the_answering_committee() {
    let env = Env::with(Options { workers: 8, ..Options::default() }).await;
    let challenger = &env.requesters[1];
    let id = env.requesters[0].submit(&env.request("Capital of France?")).await.unwrap().prompt_id;
    answer(&env, id, &[0, 1]).await;
    challenger.challenge(id, bond(&env)).await.unwrap();
    for _ in 0..3 {
        env.mine(1).await;
        env.draw().await;
        assert!(env.owner.committee(id).await.unwrap().0.is_empty(), "no committee drawn");
        assert_eq!(env.owner.prompt(id).await.unwrap().status, PromptStatus::Queued);
    }
    let too_early = env.owner.prompt(id).await.unwrap().commit_deadline;
    assert_revert(
        challenger.cancel_queued(id).await,
        Errors::DecentralizedInferenceQueueTimeoutNotReached(
            DI::DecentralizedInferenceQueueTimeoutNotReached {
                promptId: id,
                cancellableAt: U256::from(too_early),
            },
        ),
    );
    env.advance(u64::from(env.params.kernel.queueTimeout)).await;
    env.requesters[0].cancel_queued(id).await.unwrap();
    assert_eq!(env.owner.challenge_of(id).await.unwrap().1, ChallengeStatus::Cancelled);
    assert_eq!(claimable(&env, challenger.from()).await, bond(&env));
    let (status, hash, _) = env.owner.result(id).await.unwrap();
    assert_eq!((status, hash), (PromptStatus::Finalized, output_hash(WRONG)));
    assert_eq!(env.owner.prompt(id).await.unwrap().committee_size, 3);
    assert_revert(
        challenger.challenge(id, bond(&env)).await,
        Errors::DecentralizedInferenceAlreadyChallenged(
            DI::DecentralizedInferenceAlreadyChallenged { promptId: id },
        ),
    );
    for worker in &env.workers {
        assert_eq!(env.owner.worker(worker.from()).await.unwrap().busy, 0, "nobody held");
    }
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
    assert_eq!(resolved(&env, id).await.outcome, ChallengeStatus::Cancelled as u8);
}

/// An Optimistic callback waits for the window, is delivered once by anyone (who is paid its gas)
/// with exactly the answer's bytes, and cannot be delivered again from inside itself.
#[tokio::test]
async fn test_an_optimistic_callback_runs_once_after_the_window() {
    let env =
        Env::with(Options { tweak: |p| p.kernel.gasPrice = 1_000_000_000, ..Options::default() })
            .await;
    let consumer = env.deploy_consumer().await;
    consumer.setMode(3).send().await.unwrap().get_receipt().await.unwrap();
    let mut request = env.request("Capital of France?");
    request.callback_gas_limit = 200_000;
    request.finality = Finality::Optimistic;
    let fee = env.owner.estimate_fee(env.model, request.max_tokens, 200_000).await.unwrap();
    let id = ask_through(&env, &consumer, &request, fee).await;
    answer(&env, id, &[]).await;
    assert!(env.events::<DI::CallbackResult>(id).await.is_empty(), "no callback at finalize");
    let reserve = U256::from(200_000u64) * U256::from(env.params.kernel.gasPrice);
    assert_eq!(U256::from(env.owner.prompt(id).await.unwrap().fee), reserve, "held for delivery");
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), reserve);

    let deliverer = &env.requesters[1];
    let deadline = env.owner.challenge_deadline(id).await.unwrap().unwrap();
    assert_revert(
        deliverer.deliver(id, RIGHT).await,
        Errors::DecentralizedInferenceDeliveryTooEarly(
            DI::DecentralizedInferenceDeliveryTooEarly {
                promptId: id,
                opensAt: U256::from(deadline + 1),
            },
        ),
    );
    env.advance(u64::from(env.params.kernel.challengeWindow) + 1).await;
    assert_revert(
        deliverer.deliver(id, WRONG).await,
        Errors::DecentralizedInferenceOutputMismatch(DI::DecentralizedInferenceOutputMismatch {
            promptId: id,
            expected: output_hash(RIGHT),
            computed: output_hash(WRONG),
        }),
    );
    deliverer.deliver(id, RIGHT).await.unwrap();
    let results = env.events::<DI::CallbackResult>(id).await;
    assert_eq!(results.len(), 1);
    assert!(results[0].success);
    assert_eq!(consumer.callbacks().call().await.unwrap(), U256::from(1));
    assert_eq!(consumer.lastOutput().call().await.unwrap().to_vec(), RIGHT);
    assert!(consumer.reentryDeliverFailed().call().await.unwrap(), "no delivery from inside");
    assert_eq!(claimable(&env, deliverer.from()).await, reserve);
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
    assert_revert(
        deliverer.deliver(id, RIGHT).await,
        Errors::DecentralizedInferenceNothingToDeliver(
            DI::DecentralizedInferenceNothingToDeliver { promptId: id },
        ),
    );
    // A requester whose callback reverts cannot have it delivered again: the delivery stands.
    consumer.setMode(1).send().await.unwrap().get_receipt().await.unwrap();
    let reverting = ask_through(&env, &consumer, &request, fee).await;
    answer(&env, reverting, &[]).await;
    env.advance(u64::from(env.params.kernel.challengeWindow) + 1).await;
    deliverer.deliver(reverting, RIGHT).await.unwrap();
    let results = env.events::<DI::CallbackResult>(reverting).await;
    assert_eq!(results.len(), 1);
    assert!(!results[0].success, "the callback reverted");
    assert_revert(
        deliverer.deliver(reverting, RIGHT).await,
        Errors::DecentralizedInferenceNothingToDeliver(
            DI::DecentralizedInferenceNothingToDeliver { promptId: reverting },
        ),
    );
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
    // An Immediate prompt has nothing to deliver either.
    request.finality = Finality::Immediate;
    let immediate = ask_through(&env, &consumer, &request, fee).await;
    answer(&env, immediate, &[]).await;
    assert_eq!(env.events::<DI::CallbackResult>(immediate).await.len(), 1);
    env.advance(u64::from(env.params.kernel.challengeWindow) + 1).await;
    assert_revert(
        deliverer.deliver(immediate, RIGHT).await,
        Errors::DecentralizedInferenceNothingToDeliver(
            DI::DecentralizedInferenceNothingToDeliver { promptId: immediate },
        ),
    );
}

/// A challenged Optimistic prompt is called back when the challenge ends, with the corrected
/// answer, and never again; the challenge's finalizer is paid twice `finalizeGas` from the bond
/// and the callback's gas from what the prompt held for it.
#[tokio::test]
async fn test_an_optimistic_callback_gets_the_corrected_answer() {
    let env = Env::with(Options {
        workers: 10,
        tweak: |p| p.kernel.gasPrice = 1_000_000_000,
        ..Options::default()
    })
    .await;
    let consumer = env.deploy_consumer().await;
    let mut request = env.request("Capital of France?");
    request.callback_gas_limit = 200_000;
    request.finality = Finality::Optimistic;
    let fee = env.owner.estimate_fee(env.model, request.max_tokens, 200_000).await.unwrap();
    let id = ask_through(&env, &consumer, &request, fee).await;
    answer(&env, id, &[0, 1]).await;
    env.requesters[1].challenge(id, bond(&env)).await.unwrap();
    env.commit_reveal(id, &[Some(RIGHT); 7]).await;
    assert_revert(
        env.owner.finalize(id, WRONG).await,
        Errors::DecentralizedInferenceOutputMismatch(DI::DecentralizedInferenceOutputMismatch {
            promptId: id,
            expected: output_hash(RIGHT),
            computed: output_hash(WRONG),
        }),
    );
    let finalizer = &env.requesters[0];
    finalizer.finalize(id, RIGHT).await.unwrap();
    assert_eq!(consumer.callbacks().call().await.unwrap(), U256::from(1));
    assert_eq!(consumer.lastOutput().call().await.unwrap().to_vec(), RIGHT);
    let gas_price = U256::from(env.params.kernel.gasPrice);
    let challenge_gas = gas_price * U256::from(2 * env.params.kernel.finalizeGas);
    let callback_gas = gas_price * U256::from(200_000u64);
    assert_eq!(claimable(&env, finalizer.from()).await, challenge_gas + callback_gas);
    assert_eq!(claimable(&env, env.requesters[1].from()).await, bond(&env) - challenge_gas);
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
    env.advance(u64::from(env.params.kernel.challengeWindow) + 1).await;
    assert_revert(
        env.requesters[1].deliver(id, RIGHT).await,
        Errors::DecentralizedInferenceNothingToDeliver(
            DI::DecentralizedInferenceNothingToDeliver { promptId: id },
        ),
    );
    assert_eq!(env.events::<DI::CallbackResult>(id).await.len(), 1);
}

/// The topic rule: a correction reaches the context of prompts submitted after it, and only
/// theirs; a later turn computed on the answer before the correction re-runs to what its
/// committee computed, so nobody can overturn it by pointing at the correction.
#[tokio::test]
async fn test_a_correction_reaches_only_prompts_submitted_after_it() {
    let env = ten_workers().await;
    let requester = &env.requesters[0];
    let asked = requester.submit(&env.request("Capital of France?")).await.unwrap().prompt_id;
    answer(&env, asked, &[0, 1]).await;
    let before = requester.submit(&env.request("And its river?")).await.unwrap().prompt_id;
    answer(&env, before, &[]).await;
    env.requesters[1].challenge(asked, bond(&env)).await.unwrap();
    env.commit_reveal(asked, &[Some(RIGHT); 7]).await;
    env.owner.finalize(asked, RIGHT).await.unwrap();
    let after = requester.submit(&env.request("And its river?")).await.unwrap().prompt_id;

    let corrections = [
        env.events::<DI::PromptData>(before).await[0].corrections,
        env.events::<DI::PromptData>(after).await[0].corrections,
    ];
    assert_eq!(corrections, [0, 1]);
    let addresses = env.owner.addresses();
    let old = load_context(&env.provider, addresses, before).await.unwrap();
    let new = load_context(&env.provider, addresses, after).await.unwrap();
    assert_eq!(old.history[0].prompt_id, asked);
    assert_eq!(old.history[0].output, WRONG, "computed before the correction");
    assert_eq!(new.history[0].output, RIGHT, "submitted after it");
    assert_eq!(new.history[1].prompt_id, before);
}
