//! Queues: more prompts than free capacity, under both policies; cancellation and pump.

use aik_kernel::{
    PromptStatus, SchedulingPolicy, TX_GAS_HEADROOM, WorkerStatus,
    bindings::DecentralizedInference as DI,
};
use alloy::{eips::BlockId, primitives::U256};

use crate::fixture::{Env, Options, PRICE, assert_revert};

type Errors = DI::DecentralizedInferenceErrors;

/// Finalizes the running prompt, then returns which of `waiting` got the freed committee.
async fn next_assigned(env: &Env, running: U256, waiting: &mut Vec<U256>) -> U256 {
    env.run_honest(running, b"ok").await;
    env.draw().await;
    let mut assigned = Vec::new();
    for id in waiting.iter() {
        if env.owner.prompt(*id).await.unwrap().status == PromptStatus::Committing {
            assigned.push(*id);
        }
    }
    assert_eq!(assigned.len(), 1, "three capacity-1 workers run one k=3 prompt at a time");
    waiting.retain(|id| *id != assigned[0]);
    assigned[0]
}

#[tokio::test]
async fn test_queue_fee_priority_serves_highest_fee_per_token_first_fifo_on_ties() {
    let env = Env::new().await;
    let requester = &env.requesters[0];
    let first = requester.submit(&env.request("first")).await.unwrap();
    assert!(first.anchored);
    let mut waiting = Vec::new();
    for bid in [1, 3, 2, 3] {
        let mut request = env.request("queued");
        request.fee_per_token = bid * PRICE;
        let submitted = requester.submit(&request).await.unwrap();
        assert!(!submitted.anchored);
        assert_eq!(
            env.owner.prompt(submitted.prompt_id).await.unwrap().status,
            PromptStatus::Queued
        );
        waiting.push(submitted.prompt_id);
    }
    assert_eq!(env.owner.scheduler().queueLength(env.model).call().await.unwrap(), U256::from(4));
    let ids = waiting.clone();
    let mut order = Vec::new();
    let mut running = first.prompt_id;
    while !waiting.is_empty() {
        running = next_assigned(&env, running, &mut waiting).await;
        order.push(running);
    }
    // Bids 1, 3, 2, 3 → the two 3s in submission order, then 2, then 1.
    assert_eq!(order, vec![ids[1], ids[3], ids[2], ids[0]]);
    assert_eq!(env.owner.scheduler().queueLength(env.model).call().await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn test_queue_round_robin_lets_no_requester_starve_another() {
    let env =
        Env::with(Options { policy: SchedulingPolicy::RoundRobin, ..Options::default() }).await;
    let (alice, bob) = (&env.requesters[0], &env.requesters[1]);
    let first = alice.submit(&env.request("first")).await.unwrap();
    let mut waiting = Vec::new();
    for requester in [alice, alice, alice, bob, bob] {
        // Alice bids more: the round-robin policy ignores fees.
        let mut request = env.request("queued");
        if requester.from() == alice.from() {
            request.fee_per_token = 5 * PRICE;
        }
        waiting.push(requester.submit(&request).await.unwrap().prompt_id);
    }
    let ids = waiting.clone();
    let mut order = Vec::new();
    let mut running = first.prompt_id;
    while !waiting.is_empty() {
        running = next_assigned(&env, running, &mut waiting).await;
        order.push(running);
    }
    assert_eq!(order, vec![ids[0], ids[3], ids[1], ids[4], ids[2]]);
}

#[tokio::test]
async fn test_queue_cancel_after_timeout_refunds_and_pump_skips_it() {
    let env =
        Env::with(Options { tweak: |p| p.kernel.pumpOnFinalize = 0, ..Options::default() }).await;
    let (alice, bob) = (&env.requesters[0], &env.requesters[1]);
    let first = alice.submit(&env.request("first")).await.unwrap().prompt_id;
    env.draw().await;
    let cancelled = alice.submit(&env.request("second")).await.unwrap();
    let later = bob.submit(&env.request("third")).await.unwrap().prompt_id;
    let id = cancelled.prompt_id;
    let record = env.owner.prompt(id).await.unwrap();
    assert_revert(
        alice.cancel_queued(id).await,
        Errors::DecentralizedInferenceQueueTimeoutNotReached(
            DI::DecentralizedInferenceQueueTimeoutNotReached {
                promptId: id,
                cancellableAt: U256::from(record.commit_deadline),
            },
        ),
    );
    env.advance(600).await;
    // Past the timeout anyone may cancel (here a stranger), and the fee goes to the requester.
    bob.cancel_queued(id).await.unwrap();
    assert_eq!(env.owner.prompt(id).await.unwrap().status, PromptStatus::Refunded);
    assert_eq!(env.owner.claimable(alice.from()).await.unwrap(), cancelled.fee);
    assert_eq!(env.owner.claimable(bob.from()).await.unwrap(), U256::ZERO);
    assert_eq!(env.owner.refund_of(id).await.unwrap(), cancelled.fee);
    assert_revert(
        alice.cancel_queued(id).await,
        Errors::DecentralizedInferenceWrongStatus(DI::DecentralizedInferenceWrongStatus {
            promptId: id,
            status: 4,
        }),
    );
    assert_eq!(env.owner.scheduler().queueLength(env.model).call().await.unwrap(), U256::from(1));

    // The committee of the first prompt was long past its deadlines: nobody committed, so the
    // prompt is unavailable and nobody is penalized; capacity is back at once.
    env.owner.finalize(first, b"").await.unwrap();
    assert_eq!(env.owner.prompt(first).await.unwrap().status, PromptStatus::Unavailable);
    for worker in &env.workers {
        assert_eq!(worker.worker(worker.from()).await.unwrap().status, WorkerStatus::Active);
    }
    assert_eq!(
        env.owner.prompt(later).await.unwrap().status,
        PromptStatus::Queued,
        "pumpOnFinalize is 0"
    );
    // Anyone may pump; the cancelled entry is skipped and the live one assigned.
    let pumper = &env.requesters[1];
    pumper.pump(env.model, 5).await.unwrap();
    assert!(env.owner.anchor_of(later).await.unwrap().is_some(), "anchored for its draw");
    env.draw().await;
    assert_eq!(env.owner.prompt(later).await.unwrap().status, PromptStatus::Committing);
    assert_eq!(env.owner.scheduler().queueLength(env.model).call().await.unwrap(), U256::ZERO);
}

/// Cancelling closes the prompt's lane, writing the block time over the queue deadline in the
/// same packed slot. Estimated in the very second of the deadline that write changes nothing;
/// mined a second later it does and costs 2,800 gas more: the bare estimate runs out of gas
/// (how this test once failed in CI), the client's headroom does not.
#[tokio::test]
async fn test_cancel_estimated_at_the_deadline_and_mined_a_second_later_has_enough_gas() {
    let env =
        Env::with(Options { tweak: |p| p.kernel.pumpOnFinalize = 0, ..Options::default() }).await;
    let alice = &env.requesters[0];
    alice.submit(&env.request("first")).await.unwrap();
    env.draw().await;
    let id = alice.submit(&env.request("second")).await.unwrap().prompt_id;
    let deadline = env.owner.prompt(id).await.unwrap().commit_deadline;
    env.set_next_timestamp(deadline).await;
    env.mine(1).await;
    let call = alice.kernel().cancelQueued(id).from(alice.from());
    let estimate = call.clone().block(BlockId::latest()).estimate_gas().await.unwrap();

    env.set_next_timestamp(deadline + 1).await;
    let bare = call.clone().gas(estimate).send().await.unwrap().get_receipt().await.unwrap();
    assert!(!bare.status(), "the bare estimate is {estimate} gas; the block needed more");
    assert_eq!(env.owner.prompt(id).await.unwrap().status, PromptStatus::Queued);
    assert_eq!(env.now().await, deadline + 1);

    let padded = call.gas(estimate + TX_GAS_HEADROOM).send().await.unwrap();
    assert!(padded.get_receipt().await.unwrap().status());
    assert_eq!(env.owner.prompt(id).await.unwrap().status, PromptStatus::Refunded);
}
