//! Finalize's gas limit: a prompt submitted between a finalizer's gas estimate and its block
//! joins the queue that finalize assigns before the callback; the client's headroom keeps the
//! callback's gas intact.

use aik_kernel::{FINALIZE_GAS_HEADROOM, PromptStatus};
use alloy::{primitives::U256, sol_types::SolValue};

use crate::fixture::{Env, PRICE, ask_through};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_survives_a_prompt_queued_after_its_estimate() {
    let env = Env::new().await;
    let consumer = env.deploy_consumer().await;
    let mut request = env.request("Is this a scam?");
    request.callback_gas_limit = 300_000;
    let id = ask_through(&env, &consumer, &request, U256::from(100 * PRICE)).await;
    let output = true.abi_encode();
    env.commit_reveal(id, &[Some(output.as_slice()); 3]).await;

    // What a finalizer estimates now, with nothing queued.
    let kernel = env.owner.kernel();
    let estimate = kernel
        .finalize(id, output.clone().into())
        .from(env.owner.from())
        .estimate_gas()
        .await
        .unwrap();
    // Then a prompt arrives: every worker is busy, so it waits in the queue, and finalize
    // will assign it before calling the consumer back.
    let queued = env.requesters[0].submit(&env.request("Next")).await.unwrap().prompt_id;
    assert_eq!(env.owner.result(queued).await.unwrap().0, PromptStatus::Queued);

    // With the bare estimate the transaction now reverts...
    let receipt = kernel
        .finalize(id, output.clone().into())
        .from(env.owner.from())
        .gas(estimate)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(!receipt.status(), "the bare estimate should no longer suffice");
    assert_eq!(env.owner.result(id).await.unwrap().0, PromptStatus::Committing);

    // ...while the client's finalize, estimate plus headroom, goes through: the queued prompt
    // gets its committee and the callback runs with its full gas.
    let receipt = env.owner.finalize(id, &output).await.unwrap();
    assert!(receipt.gas_used < estimate + FINALIZE_GAS_HEADROOM);
    assert_eq!(env.owner.result(id).await.unwrap().0, PromptStatus::Finalized);
    assert!(env.owner.anchor_of(queued).await.unwrap().is_some(), "anchored for its draw");
    env.draw().await;
    assert_eq!(env.owner.result(queued).await.unwrap().0, PromptStatus::Committing);
    assert_eq!(consumer.callbacks().call().await.unwrap(), U256::from(1));
}
