//! A prompt's life: honest committees, wrong and absent members, replayed commitments, no
//! quorum, payouts and block rewards.

use aik_kernel::{
    PromptStatus, WorkerStatus, bindings::DecentralizedInference as DI, commitment, output_hash,
};
use alloy::primitives::{Address, B256, U256};

use crate::fixture::{EAI, Env, Options, STAKE, assert_revert, salt};

type Errors = DI::DecentralizedInferenceErrors;

#[tokio::test]
async fn test_lifecycle_three_honest_workers_are_paid_and_rewarded() {
    let env = Env::new().await;
    let requester = &env.requesters[0];
    let submitted = requester.submit(&env.request("What is 2+2?")).await.unwrap();
    assert!(submitted.anchored);
    let id = submitted.prompt_id;
    assert_eq!(submitted.fee, U256::from(100 * crate::fixture::PRICE));
    let members = env.committee(id).await;
    assert_eq!(members.len(), 3);
    let mut distinct = members.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "committee members are distinct");
    for member in &members {
        assert_eq!(env.owner.worker(*member).await.unwrap().busy, 1);
    }

    let output = b"4";
    env.commit_reveal(id, &[Some(output), Some(output), Some(output)]).await;
    let treasury = env.params.kernel.treasury;
    let treasury_before = env.owner.claimable(treasury).await.unwrap();
    env.owner.finalize(id, output).await.unwrap();

    let (status, hash, miner) = env.owner.result(id).await.unwrap();
    assert_eq!(status, PromptStatus::Finalized);
    assert_eq!(hash, output_hash(output));
    assert_eq!(miner, members[0], "the earliest committer is the miner");

    let fee = submitted.fee;
    let miner_pay = fee * U256::from(5_000) / U256::from(10_000);
    let verifier_pay = fee * U256::from(3_000) / U256::from(10_000) / U256::from(2);
    assert_eq!(env.owner.claimable(members[0]).await.unwrap(), miner_pay);
    assert_eq!(env.owner.claimable(members[1]).await.unwrap(), verifier_pay);
    assert_eq!(env.owner.claimable(members[2]).await.unwrap(), verifier_pay);
    assert_eq!(
        env.owner.claimable(treasury).await.unwrap() - treasury_before,
        fee - miner_pay - verifier_pay * U256::from(2)
    );
    assert_eq!(env.owner.eai_balance(members[0]).await.unwrap(), U256::from(9 * STAKE + 10 * EAI));
    assert_eq!(env.owner.eai_balance(members[1]).await.unwrap(), U256::from(9 * STAKE));
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
    for member in &members {
        assert_eq!(env.owner.worker(*member).await.unwrap().busy, 0, "released");
        assert!(env.owner.gpu().isFree(env.model, *member).call().await.unwrap());
    }

    // The miner pulls its pay.
    let miner_client = env.worker(members[0]);
    let before = env.eth(Address::repeat_byte(0x77)).await;
    miner_client.claim(Address::repeat_byte(0x77)).await.unwrap();
    assert_eq!(env.eth(Address::repeat_byte(0x77)).await - before, miner_pay);
    assert_eq!(env.owner.claimable(members[0]).await.unwrap(), U256::ZERO);
    assert_revert(
        miner_client.claim(members[0]).await,
        Errors::DecentralizedInferenceNothingToClaim(DI::DecentralizedInferenceNothingToClaim {
            account: members[0],
        }),
    );
    assert_revert(
        env.owner.finalize(id, output).await,
        Errors::DecentralizedInferenceWrongStatus(DI::DecentralizedInferenceWrongStatus {
            promptId: id,
            status: PromptStatus::Finalized as u8,
        }),
    );
}

#[tokio::test]
async fn test_lifecycle_wrong_output_is_slashed_and_jailed() {
    let env = Env::new().await;
    let id = env.requesters[0].submit(&env.request("Is the sky blue?")).await.unwrap().prompt_id;
    let members = env.committee(id).await;
    env.commit_reveal(id, &[Some(b"yes"), Some(b"no"), Some(b"yes")]).await;
    let treasury = env.params.kernel.treasury;
    let treasury_eai = env.owner.eai_balance(treasury).await.unwrap();
    env.owner.finalize(id, b"yes").await.unwrap();
    let now = env.now().await;

    let wrong = env.owner.worker(members[1]).await.unwrap();
    assert_eq!(wrong.stake, STAKE - STAKE / 10, "10% slashed");
    assert_eq!(wrong.status, WorkerStatus::Jailed);
    assert_eq!(wrong.until, now + 3_600);
    assert!(!env.owner.gpu().isFree(env.model, members[1]).call().await.unwrap());
    assert_eq!(
        env.owner.eai_balance(treasury).await.unwrap() - treasury_eai,
        U256::from(STAKE / 10)
    );
    assert_eq!(
        env.owner.claimable(members[1]).await.unwrap(),
        U256::ZERO,
        "the wrong member earns nothing"
    );
    assert!(env.owner.claimable(members[0]).await.unwrap() > U256::ZERO);
    assert!(env.owner.claimable(members[2]).await.unwrap() > U256::ZERO);
    for honest in [members[0], members[2]] {
        let state = env.owner.worker(honest).await.unwrap();
        assert_eq!((state.stake, state.status), (STAKE, WorkerStatus::Active));
    }
    assert_eq!(env.owner.result(id).await.unwrap().1, output_hash(b"yes"));
}

#[tokio::test]
async fn test_lifecycle_absent_member_is_penalized_less() {
    let env = Env::new().await;
    let id = env.requesters[0].submit(&env.request("Hello")).await.unwrap().prompt_id;
    let members = env.committee(id).await;
    env.commit_reveal(id, &[Some(b"hi"), None, Some(b"hi")]).await;
    // Everyone who committed revealed: finalization does not wait for the reveal deadline.
    env.owner.finalize(id, b"hi").await.unwrap();
    let now = env.now().await;
    let absent = env.owner.worker(members[1]).await.unwrap();
    assert_eq!(absent.stake, STAKE - STAKE * 2 / 100, "2% slashed");
    assert_eq!((absent.status, absent.until), (WorkerStatus::Jailed, now + 600));
    assert_eq!(env.owner.result(id).await.unwrap().2, members[0]);
}

#[tokio::test]
async fn test_lifecycle_committed_but_unrevealed_member_is_punished_as_wrong() {
    let env = Env::new().await;
    let id = env.requesters[0].submit(&env.request("Hello")).await.unwrap().prompt_id;
    let members = env.committee(id).await;
    for member in &members {
        env.worker(*member).commit(id, 0, output_hash(b"hi"), salt(*member)).await.unwrap();
    }
    for member in &members[..2] {
        env.worker(*member).reveal(id, salt(*member), b"hi").await.unwrap();
    }
    let prompt = env.owner.prompt(id).await.unwrap();
    assert_revert(
        env.owner.finalize(id, b"hi").await,
        Errors::DecentralizedInferenceFinalizeTooEarly(
            DI::DecentralizedInferenceFinalizeTooEarly {
                promptId: id,
                opensAt: U256::from(prompt.reveal_deadline + 1),
            },
        ),
    );
    env.advance(prompt.reveal_deadline + 1 - env.now().await).await;
    env.owner.finalize(id, b"hi").await.unwrap();
    let withheld = env.owner.worker(members[2]).await.unwrap();
    assert_eq!((withheld.status, withheld.stake), (WorkerStatus::Jailed, STAKE - STAKE / 10));
    assert_eq!(withheld.until, env.now().await + env.params.kernel.jailWrong);
    assert_eq!(env.owner.worker(members[0]).await.unwrap().status, WorkerStatus::Active);
}

#[tokio::test]
async fn test_lifecycle_replayed_commitment_gains_nothing() {
    let env = Env::new().await;
    let id = env.requesters[0].submit(&env.request("Hello")).await.unwrap().prompt_id;
    let members = env.committee(id).await;
    let (honest, copier) = (members[0], members[2]);
    let honest_commitment = commitment(id, 0, honest, output_hash(b"hi"), salt(honest));
    env.worker(honest).commit_raw(id, honest_commitment).await.unwrap();
    env.worker(members[1]).commit(id, 0, output_hash(b"hi"), salt(members[1])).await.unwrap();
    // The copier replays the honest member's commitment without knowing the output.
    env.worker(copier).commit_raw(id, honest_commitment).await.unwrap();
    env.worker(honest).reveal(id, salt(honest), b"hi").await.unwrap();
    env.worker(members[1]).reveal(id, salt(members[1]), b"hi").await.unwrap();
    // Even after seeing the revealed output and salt, the copier cannot open the commitment:
    // it binds the honest member's address.
    let computed = commitment(id, 0, copier, output_hash(b"hi"), salt(honest));
    assert_revert(
        env.worker(copier).reveal(id, salt(honest), b"hi").await,
        Errors::DecentralizedInferenceRevealMismatch(DI::DecentralizedInferenceRevealMismatch {
            promptId: id,
            commitment: honest_commitment,
            computed,
        }),
    );
    let deadline = env.owner.prompt(id).await.unwrap().reveal_deadline;
    env.advance(deadline + 1 - env.now().await).await;
    env.owner.finalize(id, b"hi").await.unwrap();
    assert_eq!(env.owner.claimable(copier).await.unwrap(), U256::ZERO);
    assert_eq!(env.owner.eai_balance(copier).await.unwrap(), U256::from(9 * STAKE));
    assert_eq!(env.owner.worker(copier).await.unwrap().status, WorkerStatus::Jailed);
    assert_eq!(env.owner.result(id).await.unwrap().2, honest);
}

#[tokio::test]
async fn test_lifecycle_no_quorum_retries_once_then_refunds() {
    let env = Env::new().await;
    let requester = &env.requesters[0];
    let submitted = requester.submit(&env.request("Pick a number")).await.unwrap();
    let id = submitted.prompt_id;
    env.commit_reveal(id, &[Some(b"1"), Some(b"2"), Some(b"3")]).await;
    env.owner.finalize(id, b"").await.unwrap();
    let prompt = env.owner.prompt(id).await.unwrap();
    assert_eq!((prompt.status, prompt.attempt), (PromptStatus::Queued, 1), "awaits its draw");
    assert!(env.committee(id).await.len() == 3, "drawn in a later transaction");
    let prompt = env.owner.prompt(id).await.unwrap();
    assert_eq!(
        (prompt.status, prompt.attempt),
        (PromptStatus::Committing, 1),
        "retried with a fresh committee"
    );
    assert_eq!(prompt.committed_mask, 0);
    for worker in &env.workers {
        let state = worker.worker(worker.from()).await.unwrap();
        assert_eq!(
            (state.stake, state.status),
            (STAKE, WorkerStatus::Active),
            "no revealer is slashed"
        );
        assert_eq!(env.owner.claimable(worker.from()).await.unwrap(), U256::ZERO, "nobody is paid");
    }
    env.commit_reveal(id, &[Some(b"1"), Some(b"2"), Some(b"3")]).await;
    env.owner.finalize(id, b"").await.unwrap();
    assert_eq!(
        env.owner.result(id).await.unwrap(),
        (PromptStatus::Refunded, B256::ZERO, Address::ZERO)
    );
    assert_eq!(env.owner.claimable(requester.from()).await.unwrap(), submitted.fee);
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
    let (_, finalized) = env.owner.kernel().counts().call().await.unwrap().into();
    assert_eq!(finalized, U256::ZERO, "no block reward without a result");
}

/// Gas at 1 gwei: a finalization is paid 350,000 of it plus its callback's limit.
fn with_gas_fee(params: &mut aik_kernel::DeployParams) {
    (params.kernel.gasPrice, params.kernel.finalizeGas) = (1_000_000_000, 350_000);
}

const GWEI: u128 = 1_000_000_000;

/// The fee pays the finalization: whoever finalizes is credited the finalization's and the
/// callback's gas at the kernel's gas price, so finalizing never costs a worker money; the
/// committee and the treasury share the tokens' part as before. `estimateFee` and `gasFee` say
/// so up front. Without a callback (an account requester) the callback's part is not paid out:
/// it stays in what the committee and the treasury share.
#[tokio::test]
async fn test_gas_fee_pays_the_finalizer() {
    let env = Env::with(Options { requesters: 3, tweak: with_gas_fee, ..Options::default() }).await;
    let finalizer = &env.requesters[2];
    assert_eq!(env.owner.gas_fee(0).await.unwrap(), U256::from(350_000 * GWEI));
    assert_eq!(env.owner.gas_fee(200_000).await.unwrap(), U256::from(550_000 * GWEI));
    let tokens = 100 * crate::fixture::PRICE;
    let mut request = env.request("What is 2+2?");
    request.callback_gas_limit = 200_000;
    let fee = env.owner.estimate_fee(env.model, 100, 200_000).await.unwrap();
    assert_eq!(fee, U256::from(tokens + 550_000 * GWEI));

    // Through a contract: the callback runs, and the finalizer is paid for it.
    let consumer = env.deploy_consumer().await;
    let id = crate::fixture::ask_through(&env, &consumer, &request, fee).await;
    let members = env.committee(id).await;
    let output = b"4";
    env.commit_reveal(id, &[Some(output), Some(output), Some(output)]).await;
    finalizer.finalize(id, output).await.unwrap();
    let miner = env.owner.result(id).await.unwrap().2;
    assert_eq!(env.owner.claimable(finalizer.from()).await.unwrap(), U256::from(550_000 * GWEI));
    for member in &members {
        let share = if *member == miner { tokens / 2 } else { tokens * 3 / 10 / 2 };
        assert_eq!(env.owner.claimable(*member).await.unwrap(), U256::from(share), "tokens only");
    }

    // From an account: no callback, so the finalizer gets the finalization's 350,000 gas and
    // the committee shares the callback's part with the tokens.
    let submitted = env.requesters[0].submit(&request).await.unwrap();
    assert_eq!(submitted.fee, fee);
    let id = submitted.prompt_id;
    let members = env.committee(id).await;
    let mut before = Vec::new();
    for member in &members {
        before.push(env.owner.claimable(*member).await.unwrap());
    }
    env.commit_reveal(id, &[Some(output), Some(output), Some(output)]).await;
    finalizer.finalize(id, output).await.unwrap();
    assert_eq!(env.owner.claimable(finalizer.from()).await.unwrap(), U256::from(900_000 * GWEI));
    let shared = tokens + 200_000 * GWEI;
    let miner = env.owner.result(id).await.unwrap().2;
    for (member, before) in members.iter().zip(before) {
        let share = if *member == miner { shared / 2 } else { shared * 3 / 10 / 2 };
        assert_eq!(env.owner.claimable(*member).await.unwrap() - before, U256::from(share));
    }
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
}

/// A retry pays its own finalization out of the fee: a prompt that fails twice refunds its fee
/// less the second finalization (the first was in the fee).
#[tokio::test]
async fn test_gas_fee_a_retry_pays_its_finalization_from_the_fee() {
    let env = Env::with(Options { requesters: 3, tweak: with_gas_fee, ..Options::default() }).await;
    let (requester, finalizer) = (&env.requesters[0], &env.requesters[2]);
    let mut request = env.request("Pick a number");
    request.fee_per_token = 10_000 * GWEI;
    let submitted = requester.submit(&request).await.unwrap();
    let tokens = 100 * 10_000 * GWEI;
    assert_eq!(submitted.fee, U256::from(tokens + 350_000 * GWEI));
    let id = submitted.prompt_id;
    for attempt in 1..=2u128 {
        env.commit_reveal(id, &[Some(b"1"), Some(b"2"), Some(b"3")]).await;
        finalizer.finalize(id, b"").await.unwrap();
        assert_eq!(
            env.owner.claimable(finalizer.from()).await.unwrap(),
            U256::from(attempt * 350_000 * GWEI)
        );
    }
    assert_eq!(env.owner.result(id).await.unwrap().0, PromptStatus::Refunded);
    let refund = U256::from(tokens - 350_000 * GWEI);
    assert_eq!(env.owner.claimable(requester.from()).await.unwrap(), refund);
    assert_eq!(env.owner.refund_of(id).await.unwrap(), refund);
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
}

/// A requester whose input nobody can fetch (fewer than a quorum commit) still pays the
/// finalization: the finalizer is paid first, then the committers keep their share of what is
/// left and the requester gets the rest back; nobody is slashed.
#[tokio::test]
async fn test_gas_fee_an_unavailable_prompt_pays_the_finalizer_first() {
    let env = Env::with(Options { requesters: 3, tweak: with_gas_fee, ..Options::default() }).await;
    let (requester, finalizer) = (&env.requesters[0], &env.requesters[2]);
    let mut request = env.request("an input one member got");
    request.fee_per_token = 10_000 * GWEI;
    let submitted = requester.submit(&request).await.unwrap();
    let id = submitted.prompt_id;
    let members = env.committee(id).await;
    env.commit_reveal(id, &[Some(b"1"), None, None]).await;
    finalizer.finalize(id, b"").await.unwrap();
    assert_eq!(env.owner.result(id).await.unwrap().0, PromptStatus::Unavailable);
    assert_eq!(env.owner.claimable(finalizer.from()).await.unwrap(), U256::from(350_000 * GWEI));
    // 1,000,000 gwei of tokens and 350,000 of gas; the finalization leaves 1,000,000, of which
    // the committers keep 20 %.
    let left = 1_000_000 * GWEI;
    assert_eq!(env.owner.claimable(members[0]).await.unwrap(), U256::from(left / 5));
    assert_eq!(env.owner.refund_of(id).await.unwrap(), U256::from(left - left / 5));
    assert_eq!(env.owner.claimable(requester.from()).await.unwrap(), U256::from(left - left / 5));
    for member in &members {
        assert_eq!(env.owner.worker(*member).await.unwrap().stake, STAKE, "nobody is slashed");
    }
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn test_lifecycle_block_reward_halves_to_zero() {
    let env = Env::with(Options {
        tweak: |p| {
            p.kernel.initialReward = 8;
            p.kernel.halvingInterval = 1;
        },
        ..Options::default()
    })
    .await;
    let mut minted = Vec::new();
    for i in 0..6 {
        let id = env.requesters[0].submit(&env.request(&format!("q{i}"))).await.unwrap().prompt_id;
        let expected = env.owner.kernel().currentBlockReward().call().await.unwrap();
        env.run_honest(id, b"a").await;
        minted.push(expected);
    }
    assert_eq!(minted, [8u64, 4, 2, 1, 0, 0].map(U256::from));
}

#[tokio::test]
async fn test_lifecycle_block_reward_stops_at_the_supply_cap() {
    let env = Env::with(Options {
        tweak: |p| {
            p.supply_cap = p.initial_supply + U256::from(15 * EAI);
        },
        ..Options::default()
    })
    .await;
    let cap = env.owner.token().cap().call().await.unwrap();
    let mut rewards = Vec::new();
    for i in 0..3 {
        let id = env.requesters[0].submit(&env.request(&format!("q{i}"))).await.unwrap().prompt_id;
        let receipt_before = env.owner.token().totalSupply().call().await.unwrap();
        env.run_honest(id, b"a").await;
        rewards.push(env.owner.token().totalSupply().call().await.unwrap() - receipt_before);
    }
    assert_eq!(rewards, [U256::from(10 * EAI), U256::from(5 * EAI), U256::ZERO]);
    assert_eq!(env.owner.token().totalSupply().call().await.unwrap(), cap);
}
