//! ConversationalAgent: each user's messages form their own conversation under the persona,
//! answered replies are stored and earn the creator the service fee, a refunded or unstored
//! reply returns the user's money, and bad agents and messages revert with their errors.

use aik_apps::{Answer, bindings::ConversationalAgent as CA};
use aik_infer::{Message, OutputFormat, Role};
use alloy::{
    primitives::{Address, U256},
    providers::DynProvider,
};

use crate::{
    calls::{calldata, forwarder, gas_cost, log, logs, mined, transfer_revert},
    net::{Net, word},
};

const PERSONA: &str = "You are Ada, a terse assistant.";
/// 0.001 ETH per answered message.
const SERVICE_FEE: u64 = 1_000_000_000_000_000;
const CREATOR: Address = Address::repeat_byte(0xc7);
const REPLY_TOKENS: u32 = 16;

type Agent = CA::ConversationalAgentInstance<DynProvider>;

async fn deploy_agent(net: &Net, creator: Address, reply_tokens: u32) -> Agent {
    CA::deploy(
        net.provider.clone(),
        net.kernel_address(),
        net.model(),
        creator,
        PERSONA.into(),
        U256::from(SERVICE_FEE),
        reply_tokens,
        4,
    )
    .await
    .unwrap()
}

/// Sends `message` with `value`; returns the receipt and the message's prompt id.
async fn chat(
    agent: &Agent,
    message: &str,
    value: U256,
) -> (alloy::rpc::types::TransactionReceipt, U256) {
    let receipt = mined(agent.chat(message.into()).value(value)).await;
    let prompt = log::<CA::MessageSent>(&receipt).promptId;
    (receipt, prompt)
}

fn text(role: Role, content: &str) -> Message {
    Message::new(role, content)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_stored_per_user_and_earn_the_creator_the_service_fee() {
    let (net, script) = Net::scripted().await;
    let agent = deploy_agent(&net, CREATOR, REPLY_TOKENS).await;
    let price = agent.chatFee().call().await.unwrap();
    let callback_gas = agent.callbackGas().call().await.unwrap();
    let kernel_fee =
        net.env().kernel().estimate_fee(net.model(), REPLY_TOKENS, callback_gas).await.unwrap();
    assert_eq!(price, U256::from(SERVICE_FEE) + kernel_fee);
    let topic = format!("0x{}", alloy::hex::encode(net.account));
    assert_eq!(agent.topicOf(net.account).call().await.unwrap(), topic);

    // First message: opens the user's topic under the persona; the excess payment comes back.
    script.answer(b"Ahoy, I am Ada.".to_vec());
    let before = net.balance(net.account).await;
    let (receipt, first) = chat(&agent, "Hello", price + U256::from(12_345)).await;
    assert_eq!(before - net.balance(net.account).await - gas_cost(&receipt), price);
    let opened = log::<CA::ConversationOpened>(&receipt);
    assert_eq!((opened.user, opened.topic), (net.account, topic.clone()));
    assert_eq!(net.answer(first).await, Answer::Finalized(b"Ahoy, I am Ada.".to_vec()));
    let message = agent.getMessage(first).call().await.unwrap();
    assert_eq!(
        (message.user, message.serviceFee, message.fee, message.status, message.reply.as_str()),
        (net.account, U256::from(SERVICE_FEE), kernel_fee, 2, "Ahoy, I am Ada.")
    );
    assert_eq!(agent.creatorBalance().call().await.unwrap(), U256::from(SERVICE_FEE));
    let request = script.seen().pop().unwrap();
    assert_eq!(request.messages, vec![text(Role::System, PERSONA), text(Role::User, "Hello")]);
    assert_eq!((request.format, request.max_tokens), (OutputFormat::Text, REPLY_TOKENS as usize));

    // Second message of the same user: the first turn is in its context; no new topic.
    script.answer(b"You said hello.".to_vec());
    let (receipt, second) = chat(&agent, "What did I say?", price).await;
    assert!(logs::<CA::ConversationOpened>(&receipt).is_empty());
    assert_eq!(net.answer(second).await, Answer::Finalized(b"You said hello.".to_vec()));
    assert_eq!(
        script.seen().pop().unwrap().messages,
        vec![
            text(Role::System, PERSONA),
            text(Role::User, "Hello"),
            text(Role::Assistant, "Ahoy, I am Ada."),
            text(Role::User, "What did I say?"),
        ]
    );

    // Another user has their own conversation: the persona, none of the first user's turns.
    let other = CA::new(*agent.address(), net.other.clone());
    let (receipt, third) = chat(&other, "Hi from someone else", price).await;
    let other_user = log::<CA::MessageSent>(&receipt).user;
    assert_eq!(log::<CA::ConversationOpened>(&receipt).user, other_user);
    assert_eq!(net.answer(third).await, Answer::Finalized(b"You said hello.".to_vec()));
    assert_eq!(
        script.seen().pop().unwrap().messages,
        vec![text(Role::System, PERSONA), text(Role::User, "Hi from someone else")]
    );

    let last = agent.lastReply(net.account).call().await.unwrap();
    assert_eq!((last.promptId, last.reply.as_str()), (second, "You said hello."));
    assert_eq!(agent.promptsOf(net.account).call().await.unwrap(), vec![first, second]);
    let nobody = agent.lastReply(Address::repeat_byte(0x99)).call().await.unwrap();
    assert_eq!((nobody.promptId, nobody.reply.as_str()), (U256::ZERO, ""));

    // Three answered messages: anyone may pay the creator's earnings out, only to the creator.
    assert_eq!(agent.creatorBalance().call().await.unwrap(), U256::from(3 * SERVICE_FEE));
    let receipt = mined(other.withdrawEarnings()).await;
    assert_eq!(log::<CA::EarningsWithdrawn>(&receipt).amount, U256::from(3 * SERVICE_FEE));
    assert_eq!(net.balance(CREATOR).await, U256::from(3 * SERVICE_FEE));
    assert_eq!(agent.creatorBalance().call().await.unwrap(), U256::ZERO);
    assert_eq!(net.balance(*agent.address()).await, U256::ZERO);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refunded_or_unstored_reply_returns_the_users_money() {
    let (net, script) = Net::scripted().await;
    let agent = deploy_agent(&net, CREATOR, REPLY_TOKENS).await;
    let price = agent.chatFee().call().await.unwrap();

    // No quorum twice: the kernel refunds its fee; reclaim returns fee + service fee.
    script.disagree();
    let (_, prompt) = chat(&agent, "Hello?", price).await;
    let err = agent.reclaim(prompt).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CA::ConversationalAgentPromptRunning>(),
        Some(CA::ConversationalAgentPromptRunning { promptId: prompt })
    );
    assert_eq!(net.answer(prompt).await, Answer::Refunded);
    let before = net.balance(net.account).await;
    let receipt = mined(agent.reclaim(prompt)).await;
    assert_eq!(net.balance(net.account).await + gas_cost(&receipt) - before, price);
    assert_eq!(log::<CA::MessageReclaimed>(&receipt).amount, price);
    assert_eq!(agent.getMessage(prompt).call().await.unwrap().status, 3);
    assert_eq!(net.balance(*agent.address()).await, U256::ZERO);
    assert_eq!(agent.creatorBalance().call().await.unwrap(), U256::ZERO);
    let err = agent.reclaim(prompt).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CA::ConversationalAgentNotPending>(),
        Some(CA::ConversationalAgentNotPending { promptId: prompt, status: 3 })
    );

    // A reply too long for the callback's gas (1 reply token: 112k gas; 4000 bytes need ~2.8M
    // to store): finalized, callback failed, nothing stored; the service fee goes back (the
    // kernel fee paid the committee).
    let short = deploy_agent(&net, CREATOR, 1).await;
    assert_eq!(short.callbackGas().call().await.unwrap(), 112_000);
    let price = short.chatFee().call().await.unwrap();
    script.answer(vec![b'x'; 4000]);
    let (_, prompt) = chat(&short, "Write a lot", price).await;
    assert_eq!(net.answer(prompt).await, Answer::Finalized(vec![b'x'; 4000]));
    assert_eq!(short.getMessage(prompt).call().await.unwrap().status, 1);
    let before = net.balance(net.account).await;
    mined(CA::new(*short.address(), net.other.clone()).reclaim(prompt)).await;
    assert_eq!(net.balance(net.account).await - before, U256::from(SERVICE_FEE));
    assert_eq!(short.getMessage(prompt).call().await.unwrap().status, 3);
    assert_eq!(short.creatorBalance().call().await.unwrap(), U256::ZERO);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_agents_and_messages_revert_with_their_errors() {
    let (net, _script) = Net::scripted().await;
    let deploy = |creator: Address, persona: String, tokens: u32, window: u16| {
        let provider = net.provider.clone();
        let (kernel, model) = (net.kernel_address(), net.model());
        async move {
            CA::deploy_builder(
                provider,
                kernel,
                model,
                creator,
                persona,
                U256::ZERO,
                tokens,
                window,
            )
            .call()
            .await
            .unwrap_err()
        }
    };
    let err = deploy(Address::ZERO, PERSONA.into(), 16, 4).await;
    assert_eq!(
        err.as_decoded_error::<CA::ConversationalAgentZeroCreator>(),
        Some(CA::ConversationalAgentZeroCreator {})
    );
    for (persona, length) in [(String::new(), 0u64), ("p".repeat(8193), 8193)] {
        let err = deploy(CREATOR, persona, 16, 4).await;
        assert_eq!(
            err.as_decoded_error::<CA::ConversationalAgentInvalidPersona>(),
            Some(CA::ConversationalAgentInvalidPersona {
                length: U256::from(length),
                limit: U256::from(8192)
            })
        );
    }
    for tokens in [0, 129] {
        let err = deploy(CREATOR, PERSONA.into(), tokens, 4).await;
        assert_eq!(
            err.as_decoded_error::<CA::ConversationalAgentInvalidReplyTokens>(),
            Some(CA::ConversationalAgentInvalidReplyTokens { tokens, limit: 128 })
        );
    }
    for window in [0, 65] {
        let err = deploy(CREATOR, PERSONA.into(), 16, window).await;
        assert_eq!(
            err.as_decoded_error::<CA::ConversationalAgentInvalidWindow>(),
            Some(CA::ConversationalAgentInvalidWindow { window, limit: 64 })
        );
    }

    // The creator is a contract that refuses the coin, to reach the failed payout.
    let refuser = forwarder(&net.provider).await;
    let agent = deploy_agent(&net, *refuser.address(), REPLY_TOKENS).await;
    let price = agent.chatFee().call().await.unwrap();
    for (message, length) in [(String::new(), 0u64), ("m".repeat(2049), 2049)] {
        let err = agent.chat(message).value(price).call().await.unwrap_err();
        assert_eq!(
            err.as_decoded_error::<CA::ConversationalAgentInvalidMessage>(),
            Some(CA::ConversationalAgentInvalidMessage {
                length: U256::from(length),
                limit: U256::from(2048)
            })
        );
    }
    let err = agent.chat("hi".into()).value(price - U256::from(1)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CA::ConversationalAgentPaymentTooLow>(),
        Some(CA::ConversationalAgentPaymentTooLow { value: price - U256::from(1), price })
    );
    let err = agent.reclaim(U256::from(9)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CA::ConversationalAgentUnknownMessage>(),
        Some(CA::ConversationalAgentUnknownMessage { promptId: U256::from(9) })
    );
    let err = agent.withdrawEarnings().call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CA::ConversationalAgentNothingToWithdraw>(),
        Some(CA::ConversationalAgentNothingToWithdraw {})
    );
    assert_eq!(
        transfer_revert::<CA::ConversationalAgentDirectPayment>(
            &net.provider,
            *agent.address(),
            U256::from(1)
        )
        .await,
        Some(CA::ConversationalAgentDirectPayment { sender: net.account })
    );
    let err = agent.onInferenceResult(U256::from(1), word(0).into()).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CA::AIKernelConsumerUnauthorizedCallback>(),
        Some(CA::AIKernelConsumerUnauthorizedCallback { caller: net.account })
    );

    // A chat from a contract that refuses its excess payment back.
    let chat_call = calldata(CA::chatCall { message: "hi".into() });
    let err =
        refuser.forward(*agent.address(), chat_call).value(price + U256::from(7)).call().await;
    assert_eq!(
        err.unwrap_err().as_decoded_error::<CA::ConversationalAgentTransferFailed>(),
        Some(CA::ConversationalAgentTransferFailed {
            to: *refuser.address(),
            amount: U256::from(7)
        })
    );
    // An answered message (the script's empty reply), then a payout the creator refuses.
    let (_, prompt) = chat(&agent, "hi", price).await;
    assert_eq!(net.answer(prompt).await, Answer::Finalized(Vec::new()));
    let err = agent.withdrawEarnings().call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CA::ConversationalAgentTransferFailed>(),
        Some(CA::ConversationalAgentTransferFailed {
            to: *refuser.address(),
            amount: U256::from(SERVICE_FEE)
        })
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_stores_the_models_replies_and_pays_the_creator() {
    let net = Net::live().await;
    let outcome = aik_apps::run_demo("agent", &net.env()).await.unwrap();
    assert_eq!(outcome.prompts.len(), 2);
    // Independently of the demo's own check: each reply stored is the committee's output.
    let agent = CA::new(outcome.contract, net.provider.clone());
    let mut answered = 0u64;
    for &prompt in &outcome.prompts {
        let message = agent.getMessage(prompt).call().await.unwrap();
        match net.answer(prompt).await {
            Answer::Finalized(output) => {
                assert_eq!((message.status, message.reply.into_bytes()), (2, output));
                answered += 1;
            }
            Answer::Refunded => assert_eq!(message.status, 3),
        }
    }
    assert_eq!(answered, 2, "the live committee should agree on SmolLM2's replies");
    // The second message's context held the first turn under the persona.
    let context =
        aik_kernel::load_context(&net.provider, &net.deployment.addresses(), outcome.prompts[1])
            .await
            .unwrap();
    assert_eq!(context.history.len(), 1);
    assert_eq!(context.history[0].prompt_id, outcome.prompts[0]);
    assert_eq!(context.system_prompt, Some(agent.persona().call().await.unwrap()));
    let creator = agent.creator().call().await.unwrap();
    let fee = agent.serviceFee().call().await.unwrap();
    assert_eq!(net.balance(creator).await, fee * U256::from(answered));
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_stuck_in_the_queue_is_cancelled_and_reclaimed() {
    let (net, script) = Net::scripted().await;
    let agent = deploy_agent(&net, CREATOR, REPLY_TOKENS).await;
    let price = agent.chatFee().call().await.unwrap();
    // The committee is kept busy with the first message, so the second waits in the queue.
    script.hold();
    let (_, busy) = chat(&agent, "first", price).await;
    let (_, queued) = chat(&agent, "second", price).await;
    assert_eq!(
        net.env().kernel().result(queued).await.unwrap().0,
        aik_kernel::PromptStatus::Queued
    );
    // Not before the queue timeout...
    let err = agent.cancel(queued).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<aik_kernel::bindings::DecentralizedInference::DecentralizedInferenceQueueTimeoutNotReached>()
            .map(|e| e.promptId),
        Some(queued)
    );
    // ...after it, anyone may cancel; the kernel refunds and reclaim returns both fees.
    net.advance(61).await;
    mined(CA::new(*agent.address(), net.other.clone()).cancel(queued)).await;
    assert_eq!(net.answer(queued).await, Answer::Refunded);
    let before = net.balance(net.account).await;
    let receipt = mined(agent.reclaim(queued)).await;
    assert_eq!(net.balance(net.account).await + gas_cost(&receipt) - before, price);
    assert_eq!(log::<CA::MessageReclaimed>(&receipt).amount, price);
    assert_eq!(agent.creatorBalance().call().await.unwrap(), U256::ZERO);
    let err = agent.cancel(queued).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CA::ConversationalAgentNotPending>(),
        Some(CA::ConversationalAgentNotPending { promptId: queued, status: 3 })
    );
    let err = agent.cancel(U256::from(999)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CA::ConversationalAgentUnknownMessage>(),
        Some(CA::ConversationalAgentUnknownMessage { promptId: U256::from(999) })
    );
    script.release();
    let _ = busy;
    net.stop().await;
}
