//! The owner's parameters: every bound `setParams` and `setStakingParams` enforce (at and past
//! each), who may call them, what they record, and the fee bound a submission checks against
//! the packed prompt record.

use aik_kernel::bindings::DecentralizedInference::{self as DI, KernelParams};
use alloy::primitives::{Address, U256};

use crate::fixture::{Env, assert_revert};

type Errors = DI::DecentralizedInferenceErrors;
/// A parameter's name and a change that puts it out of range.
type Spoiler = (&'static str, fn(&mut KernelParams));

fn invalid(name: &str) -> Errors {
    Errors::DecentralizedInferenceInvalidParameter(DI::DecentralizedInferenceInvalidParameter {
        name: name.into(),
    })
}

#[tokio::test]
async fn test_set_params_checks_every_bound_and_records_the_change() {
    let env = Env::new().await;
    let good = env.params.kernel.clone();
    const DAY: u64 = 24 * 3600;
    // The windows are uint32 (bounded far below).
    const DAY32: u32 = 24 * 3600;
    const EAI: u128 = 1_000_000_000_000_000_000;
    let cases: Vec<Spoiler> = vec![
        ("commitWindow", |p| p.commitWindow = 0),
        ("commitWindow", |p| p.commitWindow = DAY32 + 1),
        ("revealWindow", |p| p.revealWindow = 0),
        ("revealWindow", |p| p.revealWindow = DAY32 + 1),
        ("queueTimeout", |p| p.queueTimeout = 7 * DAY32 + 1),
        ("shares", |p| (p.minerShareBps, p.verifierShareBps) = (6_000, 3_501)),
        ("unavailableShareBps", |p| p.unavailableShareBps = 5_001),
        ("slashWrongBps", |p| p.slashWrongBps = 5_001),
        ("slashAbsentBps", |p| p.slashAbsentBps = p.slashWrongBps + 1),
        ("jailWrong", |p| p.jailWrong = 30 * DAY + 1),
        ("jailAbsent", |p| p.jailAbsent = 30 * DAY + 1),
        ("initialReward", |p| p.initialReward = 1_000 * EAI + 1),
        ("halvingInterval", |p| p.halvingInterval = 0),
        ("maxInputBytes", |p| p.maxInputBytes = 0),
        ("maxInputBytes", |p| p.maxInputBytes = 65_537),
        ("maxTokens", |p| p.maxTokens = 0),
        ("maxTokens", |p| p.maxTokens = 32_769),
        ("maxCallbackGas", |p| p.maxCallbackGas = 5_000_001),
        ("pumpOnFinalize", |p| p.pumpOnFinalize = 9),
        ("gasPrice", |p| p.gasPrice = 10_000_000_000_001),
        ("finalizeGas", |p| p.finalizeGas = 2_000_001),
        ("challengeWindow", |p| p.challengeWindow = 7 * DAY32 + 1),
        ("slashChallengedBps", |p| p.slashChallengedBps = p.slashWrongBps - 1),
        ("slashChallengedBps", |p| p.slashChallengedBps = 10_001),
        ("challengeRewardBps", |p| p.challengeRewardBps = 10_001),
        ("challengeBond", |p| p.challengeBond = 1_000 * EAI + 1),
        ("challengeBond", |p| p.challengeBond = 0),
        ("jailChallenged", |p| p.jailChallenged = 30 * DAY + 1),
    ];
    for (name, spoil) in cases {
        let mut params = good.clone();
        spoil(&mut params);
        assert_revert(env.owner.set_params(params).await, invalid(name));
    }
    let mut params = good.clone();
    params.treasury = Address::ZERO;
    assert_revert(
        env.owner.set_params(params).await,
        Errors::DecentralizedInferenceZeroAddress(DI::DecentralizedInferenceZeroAddress {}),
    );
    assert!(
        env.requesters[0]
            .set_params(good.clone())
            .await
            .unwrap_err()
            .to_string()
            .contains("OwnableUnauthorizedAccount")
    );
    assert_eq!(env.owner.params().await.unwrap(), good, "nothing changed");

    // Every parameter at its bound is accepted, recorded and announced.
    let mut changed = good.clone();
    (changed.commitWindow, changed.revealWindow, changed.queueTimeout) = (DAY32, DAY32, 7 * DAY32);
    (changed.minerShareBps, changed.verifierShareBps) = (6_500, 3_000);
    (changed.unavailableShareBps, changed.slashWrongBps, changed.slashAbsentBps) =
        (5_000, 5_000, 5_000);
    (changed.jailWrong, changed.jailAbsent) = (30 * DAY, 30 * DAY);
    changed.initialReward = 1_000 * EAI;
    (changed.maxInputBytes, changed.maxTokens) = (65_536, 32_768);
    (changed.maxCallbackGas, changed.pumpOnFinalize) = (5_000_000, 8);
    (changed.gasPrice, changed.finalizeGas) = (10_000_000_000_000, 2_000_000);
    changed.treasury = env.requesters[1].from();
    (changed.challengeWindow, changed.slashChallengedBps, changed.challengeRewardBps) =
        (7 * DAY32, 10_000, 10_000);
    (changed.challengeBond, changed.jailChallenged) = (1_000 * EAI, 30 * DAY);
    let receipt = env.owner.set_params(changed.clone()).await.unwrap();
    assert_eq!(env.owner.params().await.unwrap(), changed);
    let event = receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<DI::ParamsUpdated>().ok())
        .expect("a ParamsUpdated event");
    assert_eq!(event.inner.data.params, changed);

    // Challenges off: no window, so no bond is needed.
    let mut off = changed.clone();
    (off.challengeWindow, off.challengeBond) = (0, 0);
    env.owner.set_params(off.clone()).await.unwrap();
    assert_eq!(env.owner.params().await.unwrap(), off);
}

#[tokio::test]
async fn test_submit_rejects_a_fee_above_the_record_bound() {
    let env = Env::new().await;
    let mut request = env.request("Hello");
    request.max_tokens = 1;
    // 2^96 wei for one token: one wei more than the prompt record holds.
    request.fee_per_token = 1u128 << 96;
    assert_revert(env.requesters[0].submit_paying(&request, U256::ZERO).await, invalid("fee"));
    request.fee_per_token = (1u128 << 96) - 1;
    assert_revert(
        env.requesters[0].submit_paying(&request, U256::ZERO).await,
        Errors::DecentralizedInferenceFeeTooLow(DI::DecentralizedInferenceFeeTooLow {
            paid: U256::ZERO,
            fee: U256::from((1u128 << 96) - 1),
        }),
    );
}

#[tokio::test]
async fn test_staking_params_are_bounded() {
    use aik_kernel::bindings::GPUManagement as GPU;
    const EAI: u128 = 1_000_000_000_000_000_000;
    const MAX_UNBONDING: u64 = 30 * 24 * 3600;
    let env = Env::new().await;
    let treasury = env.params.kernel.treasury;
    let invalid = |name: &str| {
        GPU::GPUManagementErrors::GPUManagementInvalidParameter(
            GPU::GPUManagementInvalidParameter { name: name.into() },
        )
    };
    assert_revert(
        env.owner.set_staking_params(U256::from(EAI - 1), 3_600, treasury).await,
        invalid("minStake"),
    );
    assert_revert(
        env.owner.set_staking_params(U256::from(EAI), MAX_UNBONDING + 1, treasury).await,
        invalid("unbondingPeriod"),
    );
    env.owner.set_staking_params(U256::from(EAI), MAX_UNBONDING, treasury).await.unwrap();
    let params = env.owner.gpu().stakingParams().call().await.unwrap();
    assert_eq!((params.minStake, params.unbondingPeriod), (U256::from(EAI), MAX_UNBONDING));
}
