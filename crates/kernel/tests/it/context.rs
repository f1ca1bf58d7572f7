//! Topics: system prompt revisions, window, turns and head hash, and the snapshot a prompt takes
//! at submission.

use aik_kernel::{
    KernelClient,
    bindings::{ContextManager as CM, DecentralizedInference as DI},
    output_hash,
};
use alloy::{
    primitives::{B256, U256, keccak256},
    sol_types::SolValue,
};

use crate::fixture::{Env, Options, assert_revert};

type Errors = CM::ContextManagerErrors;

fn prompt_data(receipt: &alloy::rpc::types::TransactionReceipt) -> DI::PromptData {
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<DI::PromptData>().ok())
        .unwrap()
        .inner
        .data
}

#[tokio::test]
async fn test_context_snapshot_with_two_prompts_in_flight_on_one_topic() {
    let env = Env::with(Options { capacity: |_| 2, ..Options::default() }).await;
    let alice = &env.requesters[0];
    alice.set_system_prompt("chat", "Be brief.").await.unwrap();
    alice.set_window("chat", 4).await.unwrap();
    let first = alice.submit(&env.request("one")).await.unwrap();
    let second = alice.submit(&env.request("two")).await.unwrap();
    assert!(first.anchored && second.anchored, "capacity 2: both run at once");
    for submitted in [&first, &second] {
        let data = prompt_data(&submitted.receipt);
        assert_eq!((data.turnSnapshot, data.systemPromptRevision, data.window), (0, 1, 4));
    }
    // The second finishes first and becomes turn 0.
    env.run_honest(second.prompt_id, b"2").await;
    env.run_honest(first.prompt_id, b"1").await;
    let topic = KernelClient::<alloy::providers::DynProvider>::topic_id(alice.from(), "chat");
    assert_eq!(
        topic,
        env.owner.context().topicIdOf(alice.from(), "chat".into()).call().await.unwrap()
    );
    let info = env.owner.context().getTopic(topic).call().await.unwrap();
    let head_after = |head: B256, id: U256, input: &[u8], output: &[u8]| {
        keccak256((head, id, output_hash(input), output_hash(output)).abi_encode_params())
    };
    let expected = head_after(
        head_after(B256::ZERO, second.prompt_id, b"two", b"2"),
        first.prompt_id,
        b"one",
        b"1",
    );
    assert_eq!(
        (info.owner, info.window, info.systemPromptRevision, info.turnCount),
        (alice.from(), 4, 1, U256::from(2))
    );
    assert_eq!(info.head, expected);
    assert_eq!(
        env.owner.context().turnRange(topic, U256::ZERO, U256::from(2)).call().await.unwrap(),
        vec![second.prompt_id, first.prompt_id]
    );
    let third = alice.submit(&env.request("three")).await.unwrap();
    assert_eq!(prompt_data(&third.receipt).turnSnapshot, 2);
    assert_eq!(env.owner.prompt(third.prompt_id).await.unwrap().turn_snapshot, 2);
    // Another account's topic of the same name is another topic.
    let bob = &env.requesters[1];
    let other = bob.submit(&env.request("hi")).await.unwrap();
    let data = prompt_data(&other.receipt);
    assert_eq!((data.turnSnapshot, data.systemPromptRevision, data.window), (0, 0, 8));
}

#[tokio::test]
async fn test_context_system_prompt_revisions_and_limits() {
    let env = Env::new().await;
    let alice = &env.requesters[0];
    let topic = KernelClient::<alloy::providers::DynProvider>::topic_id(alice.from(), "t");
    alice.set_system_prompt("t", "v1").await.unwrap();
    alice.set_system_prompt("t", "v2").await.unwrap();
    assert_eq!(env.owner.context().systemPromptAt(topic, 1).call().await.unwrap(), "v1");
    assert_eq!(env.owner.context().systemPromptAt(topic, 2).call().await.unwrap(), "v2");
    assert_revert(
        env.owner.context().systemPromptAt(topic, 3).call().await.map_err(|e| {
            aik_kernel::Error::Rejected {
                action: "systemPromptAt",
                reason: String::new(),
                revert_data: e.as_revert_data(),
            }
        }),
        Errors::ContextManagerUnknownRevision(CM::ContextManagerUnknownRevision {
            topicId: topic,
            revision: 3,
        }),
    );
    assert_revert(
        alice.set_window("t", 0).await,
        Errors::ContextManagerInvalidWindow(CM::ContextManagerInvalidWindow { window: 0 }),
    );
    assert_revert(
        alice.set_window("t", 65).await,
        Errors::ContextManagerInvalidWindow(CM::ContextManagerInvalidWindow { window: 65 }),
    );
    let long = "x".repeat(8193);
    assert_revert(
        alice.set_system_prompt("t", &long).await,
        Errors::ContextManagerSystemPromptTooLong(CM::ContextManagerSystemPromptTooLong {
            length: U256::from(8193),
            limit: U256::from(8192),
        }),
    );
    let err =
        env.owner.context().turnRange(topic, U256::ZERO, U256::from(1)).call().await.unwrap_err();
    assert!(err.as_decoded_interface_error::<Errors>().is_some());
    let snapshot = env.owner.context().snapshot(topic).call().await.unwrap();
    assert_eq!((snapshot.turns, snapshot.systemPromptRevision, snapshot.window), (0, 2, 8));
}
