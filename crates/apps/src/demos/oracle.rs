//! `oracle`: the whitepaper's AI-powered BTC price oracle. A feeder appends three price reports
//! to the oracle's topic (each a short prompt that becomes a turn), then a query asks, in that
//! topic, for the aggregated current price (Uint), which the oracle stores with its prompt id.

use alloy::primitives::U256;

use crate::{
    Answer, DemoEnv, Error, Outcome, Result,
    bindings::BtcPriceOracle,
    env::{event, rejected},
};

const NAME: &str = "oracle";
/// The reports the feeder appends, in US dollars.
const REPORTS: [u64; 3] = [97_120, 97_480, 97_250];
/// Turns of the topic a query sees: room for the reports and a few earlier answers.
const WINDOW: u16 = 8;
/// The sane price range, in US dollars. Its upper end also lets a small model's answer stop
/// after five digits: no sixth digit fits under 150000 after "97…".
const PRICE_RANGE: (u64, u64) = (50_000, 150_000);

// RequestStatus in BtcPriceOracle.sol.
const ANSWERED: u8 = 2;
const RECLAIMED: u8 = 3;

pub(crate) async fn run(env: &DemoEnv) -> Result<Outcome> {
    env.say("Deploying BtcPriceOracle");
    let oracle = BtcPriceOracle::deploy(
        env.provider().clone(),
        env.kernel().addresses().kernel,
        env.model_id(),
        WINDOW,
        U256::from(PRICE_RANGE.0),
        U256::from(PRICE_RANGE.1),
    )
    .await
    .map_err(|e| rejected("deploy BtcPriceOracle", e))?;
    let address = *oracle.address();
    env.say(format!(
        "  BtcPriceOracle at {address}, topic \"btc-usd\", window {WINDOW}, prices {}..={} USD",
        PRICE_RANGE.0, PRICE_RANGE.1
    ));
    let feeder = env.account();
    env.send("setFeeder", oracle.setFeeder(feeder, true)).await?;
    env.say(format!("  {feeder} may feed prices"));
    let fee = oracle.requestFee().call().await.map_err(|e| rejected("requestFee", e))?;

    let request_state = |prompt| {
        let oracle = oracle.clone();
        async move { oracle.getRequest(prompt).call().await.map_err(|e| rejected("getRequest", e)) }
    };
    let mut prompts = Vec::new();
    for price in REPORTS {
        let receipt =
            env.send("reportPrice", oracle.reportPrice(U256::from(price)).value(fee)).await?;
        let reported = event::<BtcPriceOracle::PriceReported>(&receipt)?;
        env.say(format!("Feeder reports {price} USD as prompt {}", reported.promptId));
        prompts.push(reported.promptId);
    }
    // A query sees the turns finalized before it, so every report must end first.
    for &prompt in &prompts {
        match env.answer(prompt).await? {
            Answer::Finalized(output) => {
                env.say(format!(
                    "  report {prompt} is a turn of the topic (echo {})",
                    U256::from_be_slice(&output)
                ));
            }
            Answer::Refunded => {
                env.say(format!("  report {prompt} refunded; reclaiming its fee"));
                env.send("reclaim", oracle.reclaim(prompt)).await?;
            }
        }
    }

    env.say("Asking for the aggregated current price");
    let receipt = env.send("requestPrice", oracle.requestPrice().value(fee)).await?;
    let query = event::<BtcPriceOracle::PriceRequested>(&receipt)?.promptId;
    prompts.push(query);
    env.say(format!("  query prompt {query}"));
    let (answer, effect) = match env.answer(query).await? {
        Answer::Finalized(output) => {
            let price = U256::from_be_slice(&output);
            env.say(format!("Answer: {price} USD"));
            let stored = oracle.priceOf(query).call().await.map_err(|e| rejected("priceOf", e))?;
            let latest =
                oracle.latestPrice().call().await.map_err(|e| rejected("latestPrice", e))?;
            let latest_prompt =
                oracle.latestPromptId().call().await.map_err(|e| rejected("latestPromptId", e))?;
            let status = request_state(query).await?.status;
            if status != ANSWERED || stored != price || latest != price || latest_prompt != query {
                return Err(Error::EffectMismatch {
                    demo: NAME,
                    expected: format!("{price} stored for prompt {query} and as the latest price"),
                    found: format!(
                        "status {status}, priceOf {stored}, latestPrice {latest} from prompt \
                         {latest_prompt}"
                    ),
                });
            }
            env.say(format!("Effect: latestPrice = {latest} USD, stored for prompt {query}"));
            (format!("{price} USD"), format!("price {price} stored for prompt {query}"))
        }
        Answer::Refunded => {
            env.say("No answer: the kernel refunded the fee; reclaiming it");
            env.send("reclaim", oracle.reclaim(query)).await?;
            let status = request_state(query).await?.status;
            if status != RECLAIMED {
                return Err(Error::EffectMismatch {
                    demo: NAME,
                    expected: format!("query {query} reclaimed"),
                    found: format!("status {status}"),
                });
            }
            ("(refunded)".to_owned(), "no price stored; fee returned".to_owned())
        }
    };
    Ok(Outcome { contract: address, prompts, answer, effect })
}
