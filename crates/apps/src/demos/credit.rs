//! `credit`: the whitepaper's AI-powered wallet credit score. The model rates an address from 300
//! to 850 (Uint format) from its activity (what the contract reads onchain plus the activity the
//! caller reports, as extra context), and the contract stores the score with its prompt id.

use alloy::primitives::U256;

use crate::{
    Answer, DemoEnv, Error, Outcome, Result,
    bindings::CreditScore,
    env::{eth, event, rejected},
};

const NAME: &str = "credit";
/// The activity the demo reports for the rated account.
pub(crate) const ACTIVITY: &str = "Received a salary of 2 ETH every month for two years. \
     Borrowed on Aave three times and repaid every loan on time; never liquidated. \
     Holds ETH and USDC; no transfers to flagged addresses.";

/// `RequestStatus.Reclaimed` of the contract.
const RECLAIMED: u8 = 3;

pub(crate) async fn run(env: &DemoEnv) -> Result<Outcome> {
    env.say("Deploying CreditScore");
    let scores = CreditScore::deploy(
        env.provider().clone(),
        env.kernel().addresses().kernel,
        env.model_id(),
    )
    .await
    .map_err(|e| rejected("deploy CreditScore", e))?;
    let address = *scores.address();
    env.say(format!("  CreditScore at {address}"));
    // The demo rates its own account: it has a balance and no code, facts the contract reads.
    let account = env.account();
    let fee = scores.scoringFee().call().await.map_err(|e| rejected("scoringFee", e))?;
    let context = scores
        .accountContext(account, ACTIVITY.to_owned())
        .call()
        .await
        .map_err(|e| rejected("accountContext", e))?;
    env.say(format!("Requesting a credit score for {account} (kernel fee {})", eth(fee)));
    env.say("  context sent with it:");
    for line in String::from_utf8_lossy(&context).lines() {
        env.say(format!("    {line}"));
    }
    let call = scores.requestScore(account, ACTIVITY.to_owned()).value(fee);
    let receipt = env.send("requestScore", call).await?;
    let requested = event::<CreditScore::ScoreRequested>(&receipt)?;
    let (request_id, prompt) = (requested.requestId, requested.promptId);
    env.say(format!("  request {request_id} scored by prompt {prompt}"));

    let (answer, effect) = match env.answer(prompt).await? {
        Answer::Finalized(output) => {
            let score = U256::from_be_slice(&output);
            env.say(format!("Answer: {score}"));
            let stored =
                scores.scoreOf(account).call().await.map_err(|e| rejected("scoreOf", e))?;
            let history =
                scores.scoreHistory(account).call().await.map_err(|e| rejected("history", e))?;
            if U256::from(stored.score) != score
                || stored.promptId != prompt
                || stored.requester != env.account()
                || history.len() != 1
            {
                return Err(Error::EffectMismatch {
                    demo: NAME,
                    expected: format!("score {score} stored for {account} from prompt {prompt}"),
                    found: format!(
                        "score {} from prompt {} ({} scores)",
                        stored.score,
                        stored.promptId,
                        history.len()
                    ),
                });
            }
            let effect = format!("score {score} stored for {account} at time {}", stored.time);
            env.say(format!("Effect: {effect}"));
            (score.to_string(), effect)
        }
        Answer::Refunded => {
            env.say("No answer: the kernel refunded the fee; reclaiming it");
            env.send("reclaim", scores.reclaim(request_id)).await?;
            let request = scores
                .getRequest(request_id)
                .call()
                .await
                .map_err(|e| rejected("getRequest", e))?;
            if request.status != RECLAIMED {
                return Err(Error::EffectMismatch {
                    demo: NAME,
                    expected: "the request reclaimed".into(),
                    found: format!("status {}", request.status),
                });
            }
            ("(refunded)".to_owned(), "no score; fee returned to the requester".to_owned())
        }
    };
    Ok(Outcome { contract: address, prompts: vec![prompt], answer, effect })
}
