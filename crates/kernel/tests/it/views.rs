//! Views the other tests do not reach: a model's free set by position, the staking parameters,
//! the kernel's components, the scheduler's committee sampling, and what a closed prompt still
//! shows once its lane (the storage of its open state) serves the next prompt.

use std::collections::BTreeSet;

use aik_kernel::bindings::{GPUManagement as GPU, PromptScheduler as PS};
use alloy::{
    primitives::{Address, B256, U256, keccak256},
    sol_types::SolValue,
};

use crate::fixture::{EAI as ONE_EAI, Env, Options};

#[tokio::test]
async fn test_free_worker_at_lists_the_free_set_and_rejects_positions_past_it() {
    let env = Env::with(Options { workers: 4, ..Options::default() }).await;
    let gpu = env.owner.gpu();
    let all: BTreeSet<Address> = env.workers.iter().map(|w| w.from()).collect();
    let listed = |count: u64| async move {
        let mut found = BTreeSet::new();
        for position in 0..count {
            found.insert(gpu.freeWorkerAt(env.model, U256::from(position)).call().await.unwrap());
        }
        found
    };
    assert_eq!(gpu.freeCount(env.model).call().await.unwrap(), U256::from(4));
    assert_eq!(listed(4).await, all, "positions 0..4 hold the four registered workers");
    let past = gpu.freeWorkerAt(env.model, U256::from(4)).call().await.unwrap_err();
    assert_eq!(
        past.as_decoded_interface_error::<GPU::GPUManagementErrors>(),
        Some(GPU::GPUManagementErrors::GPUManagementInvalidPosition(
            GPU::GPUManagementInvalidPosition { modelId: env.model, position: U256::from(4) }
        ))
    );

    // A committee of three takes three capacity-1 workers out of the set; the fourth is left.
    let id = env.requesters[0].submit(&env.request("Hello")).await.unwrap().prompt_id;
    let committee: BTreeSet<Address> = env.committee(id).await.into_iter().collect();
    let left: BTreeSet<Address> = all.difference(&committee).copied().collect();
    assert_eq!(left.len(), 1);
    assert_eq!(gpu.freeCount(env.model).call().await.unwrap(), U256::from(1));
    assert_eq!(listed(1).await, left);
    let past = gpu.freeWorkerAt(env.model, U256::from(1)).call().await.unwrap_err();
    assert_eq!(
        past.as_decoded_interface_error::<GPU::GPUManagementErrors>(),
        Some(GPU::GPUManagementErrors::GPUManagementInvalidPosition(
            GPU::GPUManagementInvalidPosition { modelId: env.model, position: U256::from(1) }
        ))
    );

    // Finalizing puts the committee back.
    env.run_honest(id, b"Hi").await;
    assert_eq!(listed(4).await, all);
}

#[tokio::test]
async fn test_staking_params_report_the_deployment_and_owner_changes() {
    let env = Env::new().await;
    let gpu = env.owner.gpu();
    let params = gpu.stakingParams().call().await.unwrap();
    assert_eq!(
        (params.minStake, params.unbondingPeriod, params.treasury),
        (env.params.min_stake, env.params.unbonding_period, env.params.kernel.treasury)
    );
    let treasury = env.requesters[1].from();
    env.owner.set_staking_params(U256::from(5 * ONE_EAI), 3_600, treasury).await.unwrap();
    let params = gpu.stakingParams().call().await.unwrap();
    assert_eq!(
        (params.minStake, params.unbondingPeriod, params.treasury),
        (U256::from(5 * ONE_EAI), 3_600, treasury)
    );
}

#[tokio::test]
async fn test_components_are_the_deployed_contracts() {
    let env = Env::new().await;
    let addresses = env.owner.addresses();
    let components = env.owner.kernel().components().call().await.unwrap();
    assert_eq!(
        (
            components.models,
            components.gpu,
            components.context,
            components.scheduler,
            components.token
        ),
        (addresses.models, addresses.gpu, addresses.context, addresses.scheduler, addresses.token)
    );
    // Each one answers as the contract it is said to be.
    assert_eq!(env.owner.token().symbol().call().await.unwrap(), "EAI");
    assert_eq!(env.owner.scheduler().kernel().call().await.unwrap(), addresses.kernel);
    assert_eq!(env.owner.context().kernel().call().await.unwrap(), addresses.kernel);
    assert_eq!(env.owner.models().modelCount().call().await.unwrap(), U256::from(1));
}

/// The documented draw, computed here independently: a partial Fisher-Yates shuffle of 0..n
/// where draw i swaps positions i and i + keccak256(abi.encode(seed, i)) mod (n - i).
fn reference_sample(n: u64, k: u64, seed: B256) -> Vec<U256> {
    let mut values: Vec<U256> = (0..n).map(U256::from).collect();
    for i in 0..k {
        let draw = U256::from_be_bytes(keccak256((seed, U256::from(i)).abi_encode()).0);
        let j = i + (draw % U256::from(n - i)).to::<u64>();
        values.swap(i as usize, j as usize);
    }
    values.truncate(k as usize);
    values
}

#[tokio::test]
async fn test_sample_positions_follow_the_documented_shuffle() {
    let env = Env::new().await;
    let scheduler = env.owner.scheduler();
    for (n, k, seed) in [
        (10u64, 3u64, keccak256("seed one")),
        (1_000, 3, keccak256("seed two")),
        (5, 5, keccak256("seed three")),
        (1, 1, B256::ZERO),
        (16, 16, keccak256("seed four")),
    ] {
        let positions =
            scheduler.samplePositions(U256::from(n), U256::from(k), seed).call().await.unwrap();
        assert_eq!(positions, reference_sample(n, k, seed), "n = {n}, k = {k}");
        let distinct: BTreeSet<_> = positions.iter().collect();
        assert_eq!(distinct.len() as u64, k, "distinct positions for n = {n}, k = {k}");
        assert!(positions.iter().all(|p| *p < U256::from(n)));
    }
    // A different seed draws differently.
    let a = scheduler.samplePositions(U256::from(1_000), U256::from(3), keccak256("a"));
    let b = scheduler.samplePositions(U256::from(1_000), U256::from(3), keccak256("b"));
    assert_ne!(a.call().await.unwrap(), b.call().await.unwrap());
    for (n, k) in [(3u64, 0u64), (3, 4), (0, 1)] {
        let err = scheduler
            .samplePositions(U256::from(n), U256::from(k), B256::ZERO)
            .call()
            .await
            .unwrap_err();
        assert_eq!(
            err.as_decoded_interface_error::<PS::PromptSchedulerErrors>(),
            Some(PS::PromptSchedulerErrors::PromptSchedulerInvalidSample(
                PS::PromptSchedulerInvalidSample { n: U256::from(n), k: U256::from(k) }
            )),
            "n = {n}, k = {k}"
        );
    }
}

#[tokio::test]
async fn test_a_closed_prompt_keeps_its_result_when_its_lane_serves_the_next_prompt() {
    let env = Env::new().await;
    let requester = &env.requesters[0];
    let first = requester.submit(&env.request("one")).await.unwrap();
    let open = env.owner.prompt(first.prompt_id).await.unwrap();
    assert_eq!((open.max_tokens, open.turn_snapshot), (100, 0));
    assert_ne!(open.topic_id, B256::ZERO);
    let first_members = env.committee(first.prompt_id).await;
    env.run_honest(first.prompt_id, b"1").await;
    let (_, first_hash, first_miner) = env.owner.result(first.prompt_id).await.unwrap();
    assert_eq!(first_hash, aik_kernel::output_hash(b"1"));
    assert_eq!(first_miner, first_members[0], "members commit in committee order");

    // The second prompt takes the lane the first one handed back and writes its own state there.
    let second = requester.submit(&env.request("two")).await.unwrap();
    let record = env.owner.prompt(second.prompt_id).await.unwrap();
    assert_eq!(record.turn_snapshot, 1);
    assert_eq!((record.committed_mask, record.revealed_mask), (0, 0));
    // The lane's hash slots still hold the first prompt's outputs; the view shows none of them.
    let (second_members, hashes) = env.owner.committee(second.prompt_id).await.unwrap();
    assert_eq!(hashes, vec![B256::ZERO; 3]);
    let salt = crate::fixture::salt(second_members[1]);
    env.worker(second_members[1])
        .commit(second.prompt_id, 0, aik_kernel::output_hash(b"2"), salt)
        .await
        .unwrap();
    let commitment = aik_kernel::commitment(
        second.prompt_id,
        0,
        second_members[1],
        aik_kernel::output_hash(b"2"),
        salt,
    );
    let (_, hashes) = env.owner.committee(second.prompt_id).await.unwrap();
    assert_eq!(hashes, vec![B256::ZERO, commitment, B256::ZERO]);
    for member in [second_members[0], second_members[2]] {
        env.worker(member)
            .commit(
                second.prompt_id,
                0,
                aik_kernel::output_hash(b"2"),
                crate::fixture::salt(member),
            )
            .await
            .unwrap();
    }
    for member in &second_members {
        env.worker(*member)
            .reveal(second.prompt_id, crate::fixture::salt(*member), b"2")
            .await
            .unwrap();
    }
    env.owner.finalize(second.prompt_id, b"2").await.unwrap();

    assert_eq!(
        env.owner.result(first.prompt_id).await.unwrap(),
        (aik_kernel::PromptStatus::Finalized, aik_kernel::output_hash(b"1"), first_miner)
    );
    assert_eq!(
        env.owner.result(second.prompt_id).await.unwrap(),
        // The miner is the earliest committer of the winning output.
        (aik_kernel::PromptStatus::Finalized, aik_kernel::output_hash(b"2"), second_members[1])
    );
    // The permanent record stays; the open state (lane fields and committee) reads as empty.
    let closed = env.owner.prompt(first.prompt_id).await.unwrap();
    assert_eq!(
        (closed.requester, closed.fee, closed.committee_size, closed.attempt),
        (requester.from(), 100 * crate::fixture::PRICE, 3, 0)
    );
    assert_eq!(
        (closed.topic_id, closed.input_hash, closed.max_tokens, closed.commit_deadline),
        (B256::ZERO, B256::ZERO, 0, 0)
    );
    assert!(env.owner.committee(first.prompt_id).await.unwrap().0.is_empty());
    assert_eq!(env.assigned_committee(first.prompt_id).await, first_members);
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
}
