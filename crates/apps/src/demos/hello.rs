//! `hello`: the README's smallest AI-powered contract. One yes/no question; the answer the
//! committee agreed on is stored by the callback.

use aik_kernel::bindings::DecentralizedInference as DI;
use alloy::primitives::U256;

use crate::{
    Answer, DemoEnv, Error, Outcome, Result,
    bindings::HelloKernel,
    env::{eth, event, rejected},
};

const NAME: &str = "hello";
const QUESTION: &str = "Is the sky blue on a clear day? Answer true or false.";

pub(crate) async fn run(env: &DemoEnv) -> Result<Outcome> {
    env.say("Deploying HelloKernel");
    let hello = HelloKernel::deploy(
        env.provider().clone(),
        env.kernel().addresses().kernel,
        env.model_id(),
    )
    .await
    .map_err(|e| rejected("deploy HelloKernel", e))?;
    let address = *hello.address();
    env.say(format!("  HelloKernel at {address}"));
    let max_tokens = hello.MAX_TOKENS().call().await.map_err(|e| rejected("MAX_TOKENS", e))?;
    let callback_gas =
        hello.CALLBACK_GAS().call().await.map_err(|e| rejected("CALLBACK_GAS", e))?;
    let fee = env.kernel().estimate_fee(env.model_id(), max_tokens, callback_gas).await?;
    env.say(format!("Asking {QUESTION:?} (fee {})", eth(fee)));
    let receipt = env.send("ask", hello.ask(QUESTION.into()).value(fee)).await?;
    // The kernel's own event names the prompt this transaction submitted.
    let prompt = event::<DI::PromptSubmitted>(&receipt)?.promptId;
    env.say(format!("  prompt {prompt}"));
    let (answer, effect) = match env.answer(prompt).await? {
        Answer::Finalized(output) => {
            let yes = U256::from_be_slice(&output) == U256::from(1);
            env.say(format!("Answer: {yes}"));
            let stored = hello.answer(prompt).call().await.map_err(|e| rejected("answer", e))?;
            let answered =
                hello.answered(prompt).call().await.map_err(|e| rejected("answered", e))?;
            if !answered || stored != yes {
                return Err(Error::EffectMismatch {
                    demo: NAME,
                    expected: format!("answer({prompt}) = {yes}"),
                    found: format!("answered = {answered}, answer = {stored}"),
                });
            }
            env.say(format!("Effect: answer({prompt}) = {stored} stored by the callback"));
            (yes.to_string(), format!("answer({prompt}) = {stored} stored"))
        }
        Answer::Refunded => {
            env.say("No answer: the kernel refunded the fee to the contract");
            ("(refunded)".to_owned(), "nothing stored".to_owned())
        }
    };
    Ok(Outcome { contract: address, prompts: vec![prompt], answer, effect })
}
