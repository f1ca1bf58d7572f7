//! Requester callbacks: they run with the requested gas, and whatever they do (succeed, revert,
//! burn all their gas, re-enter the kernel) finalization stands and nothing is paid twice.

use aik_kernel::{PromptStatus, bindings::DecentralizedInference as DI};
use alloy::{
    primitives::{B256, Bytes, U256},
    sol_types::SolValue,
};

use crate::fixture::{Env, PRICE, TestConsumer, ask_through, assert_revert};

type Errors = DI::DecentralizedInferenceErrors;

/// Submits through a fresh consumer in `mode`, runs an honest committee and finalizes.
async fn finalize_with_consumer(
    env: &Env,
    mode: u8,
) -> (
    TestConsumer::TestConsumerInstance<alloy::providers::DynProvider>,
    U256,
    alloy::rpc::types::TransactionReceipt,
) {
    let consumer = env.deploy_consumer().await;
    consumer.setMode(mode).send().await.unwrap().get_receipt().await.unwrap();
    let mut request = env.request("Is this a scam?");
    request.callback_gas_limit = 200_000;
    let id = ask_through(env, &consumer, &request, U256::from(100 * PRICE)).await;
    let output = true.abi_encode();
    let members = env.committee(id).await;
    env.commit_reveal(id, &vec![Some(output.as_slice()); members.len()]).await;
    let receipt = env
        .owner
        .finalize(id, &output)
        .await
        .expect("finalization succeeds whatever the callback does");
    assert_eq!(env.owner.result(id).await.unwrap().0, PromptStatus::Finalized);
    (consumer, id, receipt)
}

fn callback_success(receipt: &alloy::rpc::types::TransactionReceipt) -> bool {
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<DI::CallbackResult>().ok())
        .expect("a CallbackResult event")
        .inner
        .data
        .success
}

async fn assert_paid_once(env: &Env, id: U256) {
    let members = env.assigned_committee(id).await;
    let fee = U256::from(100 * PRICE);
    assert_eq!(
        env.owner.claimable(members[0]).await.unwrap(),
        fee * U256::from(5_000) / U256::from(10_000)
    );
    for verifier in &members[1..] {
        assert_eq!(
            env.owner.claimable(*verifier).await.unwrap(),
            fee * U256::from(3_000) / U256::from(20_000)
        );
    }
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn test_callback_delivers_output() {
    let env = Env::new().await;
    let (consumer, id, receipt) = finalize_with_consumer(&env, 0).await;
    assert!(callback_success(&receipt));
    assert_eq!(consumer.callbacks().call().await.unwrap(), U256::from(1));
    assert_eq!(consumer.lastPromptId().call().await.unwrap(), id);
    assert_eq!(consumer.lastOutput().call().await.unwrap(), Bytes::from(true.abi_encode()));
    assert!(consumer.decodeBool(true.abi_encode().into()).call().await.unwrap());
    assert_paid_once(&env, id).await;
}

#[tokio::test]
async fn test_callback_that_reverts_does_not_block_finalization() {
    let env = Env::new().await;
    let (consumer, id, receipt) = finalize_with_consumer(&env, 1).await;
    assert!(!callback_success(&receipt));
    assert_eq!(consumer.callbacks().call().await.unwrap(), U256::ZERO);
    assert_paid_once(&env, id).await;
}

#[tokio::test]
async fn test_callback_that_burns_all_gas_does_not_block_finalization() {
    let env = Env::new().await;
    let (consumer, id, receipt) = finalize_with_consumer(&env, 2).await;
    assert!(!callback_success(&receipt));
    assert!(receipt.gas_used > 200_000, "the callback got its whole limit: {}", receipt.gas_used);
    assert_eq!(consumer.callbacks().call().await.unwrap(), U256::ZERO);
    assert_paid_once(&env, id).await;
}

#[tokio::test]
async fn test_callback_that_reenters_cannot_finalize_or_claim_twice() {
    let env = Env::new().await;
    let (consumer, id, receipt) = finalize_with_consumer(&env, 3).await;
    assert!(callback_success(&receipt));
    assert!(consumer.reentryFinalizeFailed().call().await.unwrap());
    assert!(consumer.reentryClaimFailed().call().await.unwrap());
    let finalized = receipt
        .inner
        .logs()
        .iter()
        .filter(|log| log.log_decode::<DI::PromptFinalized>().is_ok())
        .count();
    assert_eq!(finalized, 1);
    assert_paid_once(&env, id).await;
}

#[tokio::test]
async fn test_finalize_needs_the_winning_output_and_enough_gas_for_the_callback() {
    let env = Env::new().await;
    let consumer = env.deploy_consumer().await;
    let mut request = env.request("q");
    request.callback_gas_limit = 1_000_000;
    let id = ask_through(&env, &consumer, &request, U256::from(100 * PRICE)).await;
    let output = false.abi_encode();
    env.commit_reveal(id, &[Some(output.as_slice()); 3]).await;
    let winner = aik_kernel::output_hash(&output);
    let wrong = true.abi_encode();
    assert_revert(
        env.owner.finalize(id, &wrong).await,
        Errors::DecentralizedInferenceOutputMismatch(DI::DecentralizedInferenceOutputMismatch {
            promptId: id,
            expected: winner,
            computed: aik_kernel::output_hash(&wrong),
        }),
    );
    // A finalizer that sends too little gas for the callback's limit is refused outright.
    let starved = env.owner.kernel().finalize(id, output.clone().into()).gas(600_000).send().await;
    let failed = match starved {
        Err(_) => true,
        Ok(pending) => !pending.get_receipt().await.unwrap().status(),
    };
    assert!(failed, "a starved finalization must not go through");
    assert_eq!(
        env.owner.result(id).await.unwrap(),
        (PromptStatus::Committing, B256::ZERO, alloy::primitives::Address::ZERO)
    );
    env.owner.finalize(id, &output).await.unwrap();
    assert_eq!(consumer.lastOutput().call().await.unwrap(), Bytes::from(output));
}

#[tokio::test]
async fn test_refund_to_a_contract_that_refuses_payment_becomes_a_credit() {
    let env = Env::new().await;
    let consumer = env.deploy_consumer().await;
    consumer.setRejectPayments(true).send().await.unwrap().get_receipt().await.unwrap();
    let request = env.request("q");
    let fee = U256::from(100 * PRICE);
    ask_through(&env, &consumer, &request, fee + U256::from(7)).await;
    assert_eq!(env.owner.claimable(*consumer.address()).await.unwrap(), U256::from(7));
    consumer.setRejectPayments(false).send().await.unwrap().get_receipt().await.unwrap();
    let to = alloy::primitives::Address::repeat_byte(0x55);
    consumer.claimFromKernel(to).send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(env.eth(to).await, U256::from(7));
    assert_eq!(env.owner.claimable(*consumer.address()).await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn test_consumer_decoders_reject_non_canonical_outputs() {
    let env = Env::new().await;
    let consumer = env.deploy_consumer().await;
    assert_eq!(
        consumer
            .decodeChoice(U256::from(2).abi_encode().into(), U256::from(3))
            .call()
            .await
            .unwrap(),
        U256::from(2)
    );
    assert!(
        consumer
            .decodeChoice(U256::from(3).abi_encode().into(), U256::from(3))
            .call()
            .await
            .is_err()
    );
    assert!(consumer.decodeBool(U256::from(2).abi_encode().into()).call().await.is_err());
    assert!(consumer.decodeBool(vec![1u8].into()).call().await.is_err());
    assert_eq!(
        consumer
            .decodeUint(U256::from(50).abi_encode().into(), U256::ZERO, U256::from(100))
            .call()
            .await
            .unwrap(),
        U256::from(50)
    );
    assert!(
        consumer
            .decodeUint(U256::from(101).abi_encode().into(), U256::ZERO, U256::from(100))
            .call()
            .await
            .is_err()
    );
    let minus_two = alloy::primitives::I256::try_from(-2).unwrap();
    assert_eq!(
        consumer
            .decodeInt(
                minus_two.abi_encode().into(),
                alloy::primitives::I256::try_from(-5).unwrap(),
                alloy::primitives::I256::ONE
            )
            .call()
            .await
            .unwrap(),
        minus_two
    );
    assert!(
        consumer
            .decodeInt(
                minus_two.abi_encode().into(),
                alloy::primitives::I256::ZERO,
                alloy::primitives::I256::ONE
            )
            .call()
            .await
            .is_err()
    );
}

/// The consumer base's decoders and failure-answer check against aik-protocol's, on the same
/// generated outputs: both sides accept exactly the same bytes and read the same values.
#[tokio::test]
async fn test_consumer_decoders_agree_with_the_protocol_crate() {
    use aik_kernel::{Failure, OutputFormat, OutputValue};
    use alloy::primitives::I256;
    let env = Env::new().await;
    let consumer = env.deploy_consumer().await;
    // Failure answers, near misses of them, canonical words and random bytes of many lengths.
    let mut cases: Vec<Vec<u8>> = Failure::ALL.iter().map(|f| f.encode().to_vec()).collect();
    for code in [0u8, 6, 255] {
        cases.push(vec![0xff, b'A', b'I', b'K', code]);
    }
    cases.push(vec![0xff, b'A', b'I', b'K']);
    cases.push(vec![0xff, b'A', b'I', b'K', 1, 0]);
    cases.push(vec![0xfe, b'A', b'I', b'K', 1]);
    for word in
        [U256::ZERO, U256::from(1), U256::from(2), U256::from(5), U256::from(100), U256::MAX]
    {
        cases.push(word.to_be_bytes::<32>().to_vec());
    }
    cases.push(I256::try_from(-5).unwrap().into_raw().to_be_bytes::<32>().to_vec());
    cases.push(I256::try_from(-6).unwrap().into_raw().to_be_bytes::<32>().to_vec());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for length in [0usize, 1, 5, 31, 32, 32, 32, 33, 64] {
        let bytes: Vec<u8> = (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Small values often, so that in-range words occur among the random ones.
                if state.is_multiple_of(4) { (state >> 8) as u8 } else { 0 }
            })
            .collect();
        cases.push(bytes);
    }
    let choice = OutputFormat::Choice(vec!["a".into(), "b".into(), "c".into()]);
    let uint = OutputFormat::Uint { min: U256::from(5), max: U256::from(100) };
    let (low, high) = (I256::try_from(-5).unwrap(), I256::try_from(5).unwrap());
    let int = OutputFormat::Int { min: low, max: high };
    for bytes in &cases {
        let sol = consumer.failureCode(bytes.clone().into()).call().await.unwrap();
        assert_eq!(sol, Failure::decode(bytes).map_or(0, Failure::code), "failure {bytes:02x?}");
        let sol = consumer.decodeBool(bytes.clone().into()).call().await.ok();
        let rust = match OutputValue::decode(&OutputFormat::Bool, bytes) {
            Ok(OutputValue::Bool(value)) => Some(value),
            _ => None,
        };
        assert_eq!(sol, rust, "bool {bytes:02x?}");
        let sol = consumer.decodeChoice(bytes.clone().into(), U256::from(3)).call().await.ok();
        let rust = match OutputValue::decode(&choice, bytes) {
            Ok(OutputValue::Choice(index)) => Some(U256::from(index)),
            _ => None,
        };
        assert_eq!(sol, rust, "choice {bytes:02x?}");
        let sol = consumer
            .decodeUint(bytes.clone().into(), U256::from(5), U256::from(100))
            .call()
            .await
            .ok();
        let rust = match OutputValue::decode(&uint, bytes) {
            Ok(OutputValue::Uint(value)) => Some(value),
            _ => None,
        };
        assert_eq!(sol, rust, "uint {bytes:02x?}");
        let sol = consumer.decodeInt(bytes.clone().into(), low, high).call().await.ok();
        let rust = match OutputValue::decode(&int, bytes) {
            Ok(OutputValue::Int(value)) => Some(value),
            _ => None,
        };
        assert_eq!(sol, rust, "int {bytes:02x?}");
    }
}
