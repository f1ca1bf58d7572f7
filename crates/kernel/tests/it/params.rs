//! The owner's kernel parameters: every bound `setParams` enforces, who may call it, what it
//! records, and the fee bound a submission checks against the packed prompt record.

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
    let window_limit = u64::from(u32::MAX);
    let cases: Vec<Spoiler> = vec![
        ("commitWindow", |p| p.commitWindow = 0),
        ("revealWindow", |p| p.revealWindow = 0),
        ("commitWindow", |p| p.commitWindow = u64::from(u32::MAX) + 1),
        ("revealWindow", |p| p.revealWindow = u64::from(u32::MAX) + 1),
        ("queueTimeout", |p| p.queueTimeout = u64::from(u32::MAX) + 1),
        ("shares", |p| (p.minerShareBps, p.verifierShareBps) = (6_000, 4_001)),
        ("slashWrongBps", |p| p.slashWrongBps = 10_001),
        ("slashAbsentBps", |p| p.slashAbsentBps = 10_001),
        ("halvingInterval", |p| p.halvingInterval = 0),
        ("maxInputBytes", |p| p.maxInputBytes = 0),
        ("unavailableShareBps", |p| p.unavailableShareBps = 5_001),
        ("maxTokens", |p| p.maxTokens = 0),
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

    // The largest windows and full shares are accepted, recorded and announced.
    let mut changed = good.clone();
    (changed.commitWindow, changed.revealWindow, changed.queueTimeout) =
        (window_limit, window_limit, window_limit);
    (changed.minerShareBps, changed.verifierShareBps) = (7_000, 3_000);
    changed.treasury = env.requesters[1].from();
    let receipt = env.owner.set_params(changed.clone()).await.unwrap();
    assert_eq!(env.owner.params().await.unwrap(), changed);
    let event = receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<DI::ParamsUpdated>().ok())
        .expect("a ParamsUpdated event");
    assert_eq!(event.inner.data.params, changed);
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
