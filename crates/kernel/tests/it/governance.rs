//! The owner behind a timelock: every owner action of a timelocked deployment waits its delay
//! in `KernelTimelock`, nobody but the owner account can schedule or execute there, the owner
//! account itself can no longer act directly, and a call that would revert is refused before
//! it is scheduled.

use aik_kernel::{
    Error, SchedulingPolicy,
    bindings::{
        ContextManager, DecentralizedInference as DI, EAI, GPUManagement, KernelTimelock,
        ModelFileSystem, PromptScheduler,
    },
};
use alloy::primitives::{Address, B256, U256};

use crate::fixture::{Env, assert_revert, test_model};

fn timelocked(result: aik_kernel::Result<impl std::fmt::Debug>) -> (B256, u64) {
    match result {
        Err(Error::Timelocked { operation, ready_at, .. }) => (operation, ready_at),
        other => panic!("expected the action to wait in the timelock, got {other:?}"),
    }
}

#[tokio::test]
async fn test_timelock_delays_every_owner_action_and_only_the_owner_proposes() {
    const DELAY: u64 = 3_600;
    let env = Env::new().await;
    let mut owner = env.owner.clone();
    let timelock = owner.install_timelock(DELAY).await.unwrap();
    let p = env.provider.clone();
    let a = *owner.addresses();
    let owners = [
        EAI::new(a.token, p.clone()).owner().call().await.unwrap(),
        ModelFileSystem::new(a.models, p.clone()).owner().call().await.unwrap(),
        GPUManagement::new(a.gpu, p.clone()).owner().call().await.unwrap(),
        ContextManager::new(a.context, p.clone()).owner().call().await.unwrap(),
        PromptScheduler::new(a.scheduler, p.clone()).owner().call().await.unwrap(),
        DI::new(a.kernel, p.clone()).owner().call().await.unwrap(),
    ];
    assert_eq!(owners, [timelock; 6], "the timelock owns every contract");

    // The owner account can no longer act directly (its old, direct client).
    let mut changed = env.params.kernel.clone();
    changed.commitWindow = 300;
    let direct = env.owner.set_params(changed.clone()).await.unwrap_err();
    assert!(direct.to_string().contains("OwnableUnauthorizedAccount"), "{direct}");

    // Through the timelock: scheduled, not applied, and asking again before the delay only
    // says when.
    let now = env.now().await;
    let (operation, ready_at) = timelocked(owner.set_params(changed.clone()).await);
    assert!(ready_at >= now + DELAY, "ready at {ready_at}, now {now}");
    assert_eq!(owner.params().await.unwrap().commitWindow, env.params.kernel.commitWindow);
    assert_eq!(timelocked(owner.set_params(changed.clone()).await), (operation, ready_at));

    // A stranger can neither schedule nor execute there.
    let stranger = &env.requesters[0];
    let lock = KernelTimelock::new(timelock, env.provider.clone());
    let data = DI::setParamsCall { params_: changed.clone() };
    let data = alloy::sol_types::SolCall::abi_encode(&data);
    let proposer = lock.PROPOSER_ROLE().call().await.unwrap();
    let executor = lock.EXECUTOR_ROLE().call().await.unwrap();
    let salt = B256::repeat_byte(1);
    let schedule = lock
        .schedule(a.kernel, U256::ZERO, data.clone().into(), B256::ZERO, salt, U256::from(DELAY))
        .from(stranger.from());
    let refused = schedule.call().await.unwrap_err();
    assert_eq!(
        refused.as_decoded_error::<KernelTimelock::AccessControlUnauthorizedAccount>(),
        Some(KernelTimelock::AccessControlUnauthorizedAccount {
            account: stranger.from(),
            neededRole: proposer
        })
    );
    env.advance(DELAY).await;
    let execute = lock
        .execute(a.kernel, U256::ZERO, data.into(), B256::ZERO, B256::ZERO)
        .from(stranger.from());
    let refused = execute.call().await.unwrap_err();
    assert_eq!(
        refused.as_decoded_error::<KernelTimelock::AccessControlUnauthorizedAccount>(),
        Some(KernelTimelock::AccessControlUnauthorizedAccount {
            account: stranger.from(),
            neededRole: executor
        })
    );

    // After the delay the same call executes it.
    owner.set_params(changed.clone()).await.unwrap();
    assert_eq!(owner.params().await.unwrap(), changed);

    // Undoing it is a new operation with its own wait, even for the same call later.
    let (undo, _) = timelocked(owner.set_params(env.params.kernel.clone()).await);
    assert_ne!(undo, operation);

    // A change the kernel would refuse is refused before it is scheduled.
    let mut bad = changed.clone();
    bad.commitWindow = 0;
    assert_revert(
        owner.set_params(bad).await,
        DI::DecentralizedInferenceErrors::DecentralizedInferenceInvalidParameter(
            DI::DecentralizedInferenceInvalidParameter { name: "commitWindow".into() },
        ),
    );
    // Models wait too.
    timelocked(owner.register_model(&test_model(3, SchedulingPolicy::FeePriority)).await);
}

/// `aik up`'s setting: a timelock with no delay, through which owner actions run at once.
#[tokio::test]
async fn test_a_zero_delay_timelock_runs_owner_actions_at_once() {
    let env = Env::new().await;
    let mut owner = env.owner.clone();
    let timelock = owner.install_timelock(0).await.unwrap();
    assert_ne!(timelock, Address::ZERO);
    let id = owner.register_model(&test_model(3, SchedulingPolicy::FeePriority)).await.unwrap();
    assert_eq!(id, env.model + U256::from(1));
    owner.retire_model(id).await.unwrap();
    let mut changed = env.params.kernel.clone();
    changed.revealWindow = 60;
    owner.set_params(changed.clone()).await.unwrap();
    // Twice the same change, and back: each a fresh operation, each executed.
    owner.set_params(env.params.kernel.clone()).await.unwrap();
    owner.set_params(changed.clone()).await.unwrap();
    assert_eq!(owner.params().await.unwrap(), changed);
}
