//! `agent`: the whitepaper's onchain conversational agent. A user chats with an agent whose
//! persona is the system prompt of the user's own topic; each answered message stores the reply
//! on chain and earns the agent's creator the service fee, which the demo then pays out.

use aik_kernel::load_context;
use alloy::primitives::{Address, U256, keccak256};

use crate::{
    Answer, DemoEnv, Error, Outcome, Result,
    bindings::ConversationalAgent,
    env::{eth, event, rejected},
};

const NAME: &str = "agent";
/// The agent's persona: the system prompt of every user's topic.
pub(crate) const PERSONA: &str = "You are Ada, a friendly guide to AI Kernel, a network that runs \
    AI models for Ethereum smart contracts. Answer in one short sentence.";
/// The user's messages, sent one after the other in the same conversation.
const MESSAGES: [&str; 2] = ["Hello! Who are you?", "What can you help me with?"];
/// The creator's service fee per answered message: 0.001 ETH.
const SERVICE_FEE: u64 = 1_000_000_000_000_000;
/// Output tokens per reply: short, so the demo stays quick on a CPU.
const REPLY_TOKENS: u32 = 24;
/// Past turns the model sees with each message.
const WINDOW: u16 = 4;

// MessageStatus in ConversationalAgent.sol.
const ANSWERED: u8 = 2;
const RECLAIMED: u8 = 3;

pub(crate) async fn run(env: &DemoEnv) -> Result<Outcome> {
    env.say("Deploying ConversationalAgent");
    // A fresh creator address, so the service fees are the only thing its balance can show.
    let creator = Address::from_word(keccak256(
        [env.account().as_slice(), b"agent creator", &env.kernel().addresses().kernel[..]].concat(),
    ));
    let agent = ConversationalAgent::deploy(
        env.provider().clone(),
        env.kernel().addresses().kernel,
        env.model_id(),
        creator,
        PERSONA.to_owned(),
        U256::from(SERVICE_FEE),
        REPLY_TOKENS,
        WINDOW,
    )
    .await
    .map_err(|e| rejected("deploy ConversationalAgent", e))?;
    let address = *agent.address();
    env.say(format!("  ConversationalAgent at {address}, creator {creator}"));
    env.say(format!("  persona: {PERSONA}"));
    let price = agent.chatFee().call().await.map_err(|e| rejected("chatFee", e))?;
    env.say(format!(
        "  a message costs {} ({} service fee + kernel fee for {REPLY_TOKENS} tokens)",
        eth(price),
        eth(U256::from(SERVICE_FEE))
    ));

    let mut prompts = Vec::new();
    let mut answered = 0u64;
    let mut last_reply = String::from("(no reply)");
    for message in MESSAGES {
        env.say(format!("User {}: {message}", env.account()));
        let receipt = env.send("chat", agent.chat(message.to_owned()).value(price)).await?;
        let sent = event::<ConversationalAgent::MessageSent>(&receipt)?;
        let prompt = sent.promptId;
        prompts.push(prompt);
        env.say(format!("  message sent as prompt {prompt}"));
        let state_of = |prompt| {
            let agent = agent.clone();
            async move { agent.getMessage(prompt).call().await.map_err(|e| rejected("getMessage", e)) }
        };
        match env.answer(prompt).await? {
            Answer::Finalized(output) => {
                let context =
                    load_context(env.provider(), env.kernel().addresses(), prompt).await?;
                env.say(format!(
                    "  context: the persona and {} earlier turn(s) of this user's topic {}",
                    context.history.len(),
                    context.topic
                ));
                let reply = String::from_utf8_lossy(&output).into_owned();
                env.say(format!("Agent: {reply}"));
                let state = state_of(prompt).await?;
                if state.status != ANSWERED || state.reply.as_bytes() != output.as_slice() {
                    return Err(Error::EffectMismatch {
                        demo: NAME,
                        expected: format!("message {prompt} answered with {reply:?}"),
                        found: format!("status {}, reply {:?}", state.status, state.reply),
                    });
                }
                answered += 1;
                last_reply = reply;
            }
            Answer::Refunded => {
                env.say("  no answer: the kernel refunded the fee; reclaiming fee and service fee");
                env.send("reclaim", agent.reclaim(prompt)).await?;
                let state = state_of(prompt).await?;
                if state.status != RECLAIMED {
                    return Err(Error::EffectMismatch {
                        demo: NAME,
                        expected: format!("message {prompt} reclaimed"),
                        found: format!("status {}", state.status),
                    });
                }
            }
        }
    }

    let earned = U256::from(SERVICE_FEE * answered);
    let credited =
        agent.creatorBalance().call().await.map_err(|e| rejected("creatorBalance", e))?;
    if credited != earned {
        return Err(Error::EffectMismatch {
            demo: NAME,
            expected: format!("{} credited to the creator for {answered} replies", eth(earned)),
            found: format!("{} credited", eth(credited)),
        });
    }
    if answered > 0 {
        env.say(format!("Paying the creator's earnings ({}) out", eth(earned)));
        env.send("withdrawEarnings", agent.withdrawEarnings()).await?;
    }
    let paid = env.balance(creator).await?;
    if paid != earned {
        return Err(Error::EffectMismatch {
            demo: NAME,
            expected: format!("{} paid to the creator {creator}", eth(earned)),
            found: format!("{} at {creator}", eth(paid)),
        });
    }
    let (last_prompt, stored) = agent
        .lastReply(env.account())
        .call()
        .await
        .map_err(|e| rejected("lastReply", e))
        .map(|r| (r.promptId, r.reply))?;
    env.say(format!(
        "Effect: {answered} of {} replies stored on chain (last: prompt {last_prompt}), {} of service \
         fees paid to the creator {creator}",
        MESSAGES.len(),
        eth(paid)
    ));
    if answered > 0 && stored != last_reply {
        return Err(Error::EffectMismatch {
            demo: NAME,
            expected: format!("last reply {last_reply:?}"),
            found: format!("{stored:?}"),
        });
    }
    Ok(Outcome {
        contract: address,
        prompts,
        answer: last_reply,
        effect: format!("{answered} replies stored, {} paid to the creator {creator}", eth(paid)),
    })
}
