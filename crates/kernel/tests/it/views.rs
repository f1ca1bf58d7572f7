//! Views the other tests do not reach: a model's draw pool, the staking parameters, the
//! kernel's components, a reference of the committee draw, and what a closed prompt still shows
//! once its lane (the storage of its open state) serves the next prompt.

use std::collections::{BTreeMap, BTreeSet};

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    sol_types::SolValue,
};

use crate::fixture::{EAI as ONE_EAI, Env, Options};

#[tokio::test]
async fn test_pool_views_follow_free_capacity() {
    let env = Env::with(Options { workers: 4, ..Options::default() }).await;
    let gpu = env.owner.gpu();
    // One unit of weight per free capacity slot; each worker has one.
    let one_slot = U256::from(1);
    let weight =
        |worker: Address| async move { gpu.poolWeight(env.model, worker).call().await.unwrap() };
    let pool = gpu.poolOf(env.model).call().await.unwrap();
    assert_eq!(
        (pool.total, pool.members, pool.leaves),
        (one_slot * U256::from(4), U256::from(4), U256::from(4))
    );
    assert_eq!(gpu.freeCount(env.model).call().await.unwrap(), U256::from(4));
    for worker in &env.workers {
        assert_eq!(weight(worker.from()).await, one_slot, "weight = free slots");
    }

    // A committee of three takes three capacity-1 workers out of the pool; the fourth is left.
    let id = env.requesters[0].submit(&env.request("Hello")).await.unwrap().prompt_id;
    let committee: BTreeSet<Address> = env.committee(id).await.into_iter().collect();
    assert_eq!(committee.len(), 3);
    assert_eq!(gpu.freeCount(env.model).call().await.unwrap(), U256::from(1));
    for worker in &env.workers {
        let expected = if committee.contains(&worker.from()) { U256::ZERO } else { one_slot };
        assert_eq!(weight(worker.from()).await, expected);
        let free = gpu.isFree(env.model, worker.from()).call().await.unwrap();
        assert_eq!(free, !committee.contains(&worker.from()));
    }
    let pool = gpu.poolOf(env.model).call().await.unwrap();
    assert_eq!((pool.total, pool.members), (one_slot, U256::from(1)));

    // Finalizing puts the committee back (nothing awaits a draw, so at once).
    env.run_honest(id, b"Hi").await;
    let pool = gpu.poolOf(env.model).call().await.unwrap();
    assert_eq!((pool.total, pool.members), (one_slot * U256::from(4), U256::from(4)));
    assert_eq!(gpu.poolChangeLog().call().await.unwrap().pending, U256::ZERO);
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

/// The sixteen layouts of a node's children, as GPUManagement documents them (entry p of a
/// layout names the child at place p).
const LAYOUTS: [[u64; 8]; 16] = [
    [0, 1, 2, 3, 4, 5, 6, 7],
    [3, 5, 1, 0, 7, 2, 4, 6],
    [0, 2, 4, 3, 7, 6, 1, 5],
    [3, 5, 7, 4, 1, 2, 0, 6],
    [5, 6, 3, 0, 2, 1, 7, 4],
    [2, 5, 6, 1, 3, 7, 4, 0],
    [7, 0, 3, 6, 1, 4, 5, 2],
    [6, 2, 5, 4, 7, 0, 1, 3],
    [5, 6, 7, 2, 1, 4, 3, 0],
    [7, 5, 4, 0, 1, 3, 6, 2],
    [7, 4, 2, 6, 3, 0, 1, 5],
    [4, 1, 2, 7, 6, 3, 0, 5],
    [3, 2, 4, 1, 0, 7, 6, 5],
    [7, 1, 0, 3, 2, 6, 5, 4],
    [7, 0, 6, 3, 5, 2, 4, 1],
    [6, 2, 1, 0, 3, 7, 5, 4],
];

/// The layout a draw with `seed` gives the node `key`: the low four bits of
/// keccak256(abi.encode(seed, key)) pick one of [`LAYOUTS`].
fn child_order(seed: B256, key: u64) -> [u64; 8] {
    let random = keccak256((seed, U256::from(key)).abi_encode());
    LAYOUTS[usize::from(random[31] & 15)]
}

#[test]
fn test_layouts_spread_every_pair_of_children() {
    // Any two children stand at any given offset in at most four of the sixteen layouts.
    for a in 0..8u64 {
        for b in 0..8u64 {
            if a == b {
                continue;
            }
            let mut offsets = BTreeMap::new();
            for layout in LAYOUTS {
                let place = |c| layout.iter().position(|x| *x == c).unwrap() as i64;
                *offsets.entry(place(b) - place(a)).or_insert(0) += 1;
            }
            assert!(offsets.values().all(|n| *n <= 4), "children {a}, {b}: {offsets:?}");
        }
    }
}

/// The leaves under the node at `height` and `index`, in the draw's shuffled order.
fn shuffled(seed: B256, height: u32, index: u64, leaves: u64, out: &mut Vec<u64>) {
    if height == 0 {
        if index < leaves {
            out.push(index);
        }
        return;
    }
    for child in child_order(seed, u64::from(height) << 32 | index) {
        shuffled(seed, height - 1, index * 8 + child, leaves, out);
    }
}

/// The documented draw, computed here independently: the pool's leaves (registration order in
/// `pool`) laid out in the draw's shuffled order, then systematic sampling over the cumulative
/// weights without the `excluded` intervals; workers heavier than the spacing are seated once and
/// the other seats drawn again over the rest.
pub(crate) fn reference_draw(
    pool: &[(Address, u64)],
    k: usize,
    seed: B256,
    excluded: &[Address],
) -> Vec<Address> {
    let leaves = pool.len() as u64;
    let mut depth = 1;
    while 8u64.pow(depth) < leaves {
        depth += 1;
    }
    let mut order = Vec::new();
    shuffled(seed, depth, 0, leaves, &mut order);
    let line_all: Vec<(Address, u64)> = order.iter().map(|leaf| pool[*leaf as usize]).collect();
    let members = pool.iter().filter(|(_, w)| *w != 0).count();
    let mut holes: Vec<Address> = Vec::new();
    if members >= k + excluded.len() {
        holes.extend(excluded.iter().filter(|e| pool.iter().any(|(a, w)| a == *e && *w != 0)));
    }
    let mut seated = Vec::new();
    let mut round = 0u64;
    while seated.len() < k {
        let need = (k - seated.len()) as u64;
        // The reduced line: the shuffled pool without the holes.
        let line: Vec<(Address, u64)> =
            line_all.iter().filter(|(a, w)| *w != 0 && !holes.contains(a)).copied().collect();
        let remaining: u64 = line.iter().map(|(_, w)| w).sum();
        let random = U256::from_be_bytes(keccak256((seed, U256::from(round)).abi_encode()).0);
        let offset = (random % U256::from(remaining)).to::<u64>();
        let hits: Vec<(Address, u64)> = (0..need)
            .map(|j| {
                let point = ((u128::from(offset) + u128::from(j) * u128::from(remaining))
                    / u128::from(need)) as u64;
                let mut start = 0;
                *line
                    .iter()
                    .find(|(_, w)| {
                        start += w;
                        point < start
                    })
                    .expect("a point below the total")
            })
            .collect();
        if hits.iter().all(|(_, w)| w * need <= remaining) {
            seated.extend(hits.iter().map(|(a, _)| *a));
            break;
        }
        for (address, weight) in hits {
            if weight * need > remaining && !seated.contains(&address) {
                seated.push(address);
                holes.push(address);
            }
        }
        round += 1;
    }
    seated
}

#[test]
fn test_reference_draw_seats_heavy_workers_once_and_fills_the_rest() {
    let a = Address::repeat_byte(1);
    let b = Address::repeat_byte(2);
    let c = Address::repeat_byte(3);
    let d = Address::repeat_byte(4);
    for round in 0..50u64 {
        let seed = keccak256(round.to_be_bytes());
        // a holds more than a third: always seated, exactly once.
        let drawn = reference_draw(&[(a, 90), (b, 5), (c, 3), (d, 2)], 3, seed, &[]);
        let distinct: BTreeSet<_> = drawn.iter().collect();
        assert_eq!((drawn.len(), distinct.len()), (3, 3));
        assert!(drawn.contains(&a));
        // With as many members as seats, everyone sits.
        let all = reference_draw(&[(a, 1), (b, 100), (c, 7)], 3, seed, &[]);
        assert_eq!(all.iter().collect::<BTreeSet<_>>(), [a, b, c].iter().collect());
        // Exclusions hold when enough others remain, and are ignored when not.
        let rest = reference_draw(&[(a, 5), (b, 5), (c, 5), (d, 5)], 1, seed, &[a, b, c]);
        assert_eq!(rest, vec![d]);
        let short = reference_draw(&[(a, 5), (b, 5), (c, 5)], 3, seed, &[a]);
        assert_eq!(short.len(), 3);
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

    // Once the first prompt's challenge window has passed, the second prompt takes the lane the
    // first one handed back and writes its own state there.
    env.advance(u64::from(env.params.kernel.challengeWindow) + 1).await;
    let second = requester.submit(&env.request("two")).await.unwrap();
    env.draw().await;
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
    // The permanent record stays (nothing of the fee is held for it any more); the open state
    // (lane fields and committee) reads as empty.
    let closed = env.owner.prompt(first.prompt_id).await.unwrap();
    assert_eq!(
        (closed.requester, closed.fee, closed.committee_size, closed.attempt),
        (requester.from(), 0, 3, 0)
    );
    assert_eq!(
        (closed.topic_id, closed.input_hash, closed.max_tokens, closed.commit_deadline),
        (B256::ZERO, B256::ZERO, 0, 0)
    );
    assert!(env.owner.committee(first.prompt_id).await.unwrap().0.is_empty());
    assert_eq!(env.assigned_committee(first.prompt_id).await, first_members);
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
}
