//! BtcPriceOracle: feeders' reports become turns of the oracle's topic, a query sees them and
//! stores its price under its prompt id, a refunded prompt returns its fee, and bad feeders,
//! prices and payments revert with their errors.

use aik_apps::{Answer, bindings::BtcPriceOracle as BO};
use aik_infer::{Message, OutputFormat, Role};
use alloy::{
    primitives::{Address, U256},
    providers::DynProvider,
};

use crate::{
    calls::{calldata, forwarder, gas_cost, log, mined, other_account, transfer_revert},
    net::{Net, word},
};

type Oracle = BO::BtcPriceOracleInstance<DynProvider>;

const QUERY: &str = "What is the current BTC/USD price, aggregated from the recent reports? Answer in whole US dollars.";

const MIN: u64 = 50_000;
const MAX: u64 = 150_000;

async fn oracle(net: &Net) -> Oracle {
    let (min, max) = (U256::from(MIN), U256::from(MAX));
    BO::deploy(net.provider.clone(), net.kernel_address(), net.model(), 8, min, max).await.unwrap()
}

fn report_text(feeder: Address, price: u64) -> String {
    format!(
        "Feeder 0x{} reports the BTC/USD price: {price} USD. What is the reported price in USD?",
        alloy::hex::encode(feeder)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_become_turns_and_the_query_stores_the_price() {
    let (net, script) = Net::scripted().await;
    let oracle = oracle(&net).await;
    let as_other = BO::new(*oracle.address(), net.other.clone());
    let other = other_account();
    let fee = oracle.requestFee().call().await.unwrap();
    let callback_gas = oracle.CALLBACK_GAS().call().await.unwrap();
    assert_eq!(fee, net.env().kernel().estimate_fee(net.model(), 12, callback_gas).await.unwrap());
    for feeder in [net.account, other] {
        let receipt = mined(oracle.setFeeder(feeder, true)).await;
        assert_eq!(log::<BO::FeederSet>(&receipt), BO::FeederSet { feeder, allowed: true });
    }

    // Two reports from two feeders; each is answered with its echo and recorded. The excess
    // payment comes back.
    for (oracle, feeder, price) in [(&oracle, net.account, 97_120u64), (&as_other, other, 97_480)] {
        script.answer(word(price));
        let before = net.balance(feeder).await;
        let receipt =
            mined(oracle.reportPrice(U256::from(price)).value(fee + U256::from(99))).await;
        assert_eq!(before - net.balance(feeder).await - gas_cost(&receipt), fee);
        let reported = log::<BO::PriceReported>(&receipt);
        assert_eq!((reported.feeder, reported.price), (feeder, U256::from(price)));
        assert_eq!(net.answer(reported.promptId).await, Answer::Finalized(word(price)));
        let request = oracle.getRequest(reported.promptId).call().await.unwrap();
        assert_eq!(
            (request.requester, request.kind, request.fee, request.reportedPrice, request.answer),
            (feeder, 0, fee, U256::from(price), U256::from(price))
        );
        assert_eq!(request.status, 2);
    }
    // Reports are not prices.
    assert_eq!(oracle.latestPrice().call().await.unwrap(), U256::ZERO);

    // The query runs on the system prompt and both reports as turns, and stores its answer.
    script.answer(word(97_300));
    let receipt = mined(as_other.requestPrice().value(fee)).await;
    let query = log::<BO::PriceRequested>(&receipt).promptId;
    assert_eq!(net.answer(query).await, Answer::Finalized(word(97_300)));
    let request = script.seen().pop().unwrap();
    let system = oracle.SYSTEM_PROMPT().call().await.unwrap();
    assert_eq!(
        request.messages,
        vec![
            Message::new(Role::System, system),
            Message::new(Role::User, report_text(net.account, 97_120)),
            Message::new(Role::Assistant, "97120"),
            Message::new(Role::User, report_text(other, 97_480)),
            Message::new(Role::Assistant, "97480"),
            Message::new(Role::User, QUERY),
        ]
    );
    assert_eq!(request.format, OutputFormat::Uint { min: U256::from(MIN), max: U256::from(MAX) });
    assert_eq!(oracle.priceOf(query).call().await.unwrap(), U256::from(97_300));
    assert_eq!(oracle.latestPrice().call().await.unwrap(), U256::from(97_300));
    assert_eq!(oracle.latestPromptId().call().await.unwrap(), query);
    assert!(oracle.latestUpdatedAt().call().await.unwrap() > U256::ZERO);
    let state = oracle.getRequest(query).call().await.unwrap();
    assert_eq!((state.requester, state.kind, state.status), (other, 1, 2));

    // A later query replaces the latest price; the earlier one keeps its own.
    script.answer(word(97_350));
    let receipt = mined(oracle.requestPrice().value(fee)).await;
    let later = log::<BO::PriceRequested>(&receipt).promptId;
    assert_eq!(net.answer(later).await, Answer::Finalized(word(97_350)));
    assert_eq!(
        (oracle.latestPrice().call().await.unwrap(), oracle.latestPromptId().call().await.unwrap()),
        (U256::from(97_350), later)
    );
    assert_eq!(oracle.priceOf(query).call().await.unwrap(), U256::from(97_300));
    // The first query's answer is a turn too.
    let turns = script.seen().pop().unwrap().messages;
    assert_eq!(turns[turns.len() - 2], Message::new(Role::Assistant, "97300"));

    // A feeder removed by the owner can no longer report.
    mined(oracle.setFeeder(other, false)).await;
    let err = as_other.reportPrice(U256::from(97_000)).value(fee).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<BO::BtcPriceOracleNotFeeder>(),
        Some(BO::BtcPriceOracleNotFeeder { caller: other })
    );
    assert_eq!(net.balance(*oracle.address()).await, U256::ZERO);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refunded_prompt_returns_its_fee_and_an_unusable_one_nothing() {
    let (net, script) = Net::scripted().await;
    let oracle = oracle(&net).await;
    let fee = oracle.requestFee().call().await.unwrap();
    mined(oracle.setFeeder(net.account, true)).await;

    // No quorum twice on a report and on a query: reclaim returns each fee to its payer.
    script.disagree();
    let receipt = mined(oracle.reportPrice(U256::from(97_000)).value(fee)).await;
    let report = log::<BO::PriceReported>(&receipt).promptId;
    let err = oracle.reclaim(report).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<BO::BtcPriceOraclePromptRunning>(),
        Some(BO::BtcPriceOraclePromptRunning { promptId: report })
    );
    let as_other = BO::new(*oracle.address(), net.other.clone());
    let other = other_account();
    let receipt = mined(as_other.requestPrice().value(fee)).await;
    let query = log::<BO::PriceRequested>(&receipt).promptId;
    assert_eq!(net.answer(report).await, Answer::Refunded);
    assert_eq!(net.answer(query).await, Answer::Refunded);
    let before = net.balance(net.account).await;
    let receipt = mined(oracle.reclaim(report)).await;
    assert_eq!(net.balance(net.account).await + gas_cost(&receipt) - before, fee);
    let before = net.balance(other).await;
    let receipt = mined(oracle.reclaim(query)).await;
    assert_eq!(
        log::<BO::RequestReclaimed>(&receipt),
        BO::RequestReclaimed { promptId: query, requester: other, amount: fee }
    );
    assert_eq!(net.balance(other).await - before, fee);
    assert_eq!(oracle.getRequest(query).call().await.unwrap().status, 3);
    assert_eq!(net.balance(*oracle.address()).await, U256::ZERO);
    let err = oracle.reclaim(query).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<BO::BtcPriceOracleNotPending>(),
        Some(BO::BtcPriceOracleNotPending { promptId: query, status: 3 })
    );

    // An answer below the range: finalized, callback failed, no price stored; the fee paid the
    // committee, so reclaim closes the request with nothing to return.
    script.answer(word(5));
    let receipt = mined(oracle.requestPrice().value(fee)).await;
    let query = log::<BO::PriceRequested>(&receipt).promptId;
    assert_eq!(net.answer(query).await, Answer::Finalized(word(5)));
    assert_eq!(oracle.getRequest(query).call().await.unwrap().status, 1);
    assert_eq!(oracle.latestPrice().call().await.unwrap(), U256::ZERO);
    let receipt = mined(oracle.reclaim(query)).await;
    assert_eq!(log::<BO::RequestReclaimed>(&receipt).amount, U256::ZERO);
    assert_eq!(oracle.getRequest(query).call().await.unwrap().status, 3);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_feeders_prices_and_payments_revert_with_their_errors() {
    let (net, _script) = Net::scripted().await;
    let deploy = |window: u16, min: u64, max: u64| {
        let builder = BO::deploy_builder(
            net.provider.clone(),
            net.kernel_address(),
            net.model(),
            window,
            U256::from(min),
            U256::from(max),
        );
        async move { builder.call().await.unwrap_err() }
    };
    for window in [0u16, 65] {
        let err = deploy(window, MIN, MAX).await;
        assert_eq!(
            err.as_decoded_error::<BO::BtcPriceOracleInvalidWindow>(),
            Some(BO::BtcPriceOracleInvalidWindow { window, limit: 64 })
        );
    }
    for (min, max) in [(0, MAX), (MAX + 1, MAX), (MIN, 10_000_000_000)] {
        let err = deploy(8, min, max).await;
        assert_eq!(
            err.as_decoded_error::<BO::BtcPriceOracleInvalidRange>(),
            Some(BO::BtcPriceOracleInvalidRange { min: U256::from(min), max: U256::from(max) })
        );
    }
    let oracle = oracle(&net).await;
    let fee = oracle.requestFee().call().await.unwrap();
    let err = oracle.setFeeder(Address::ZERO, true).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<BO::BtcPriceOracleZeroFeeder>(),
        Some(BO::BtcPriceOracleZeroFeeder {})
    );
    let other = other_account();
    let as_other = BO::new(*oracle.address(), net.other.clone());
    let err = as_other.setFeeder(other, true).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<BO::OwnableUnauthorizedAccount>(),
        Some(BO::OwnableUnauthorizedAccount { account: other })
    );
    let err = oracle.reportPrice(U256::from(97_000)).value(fee).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<BO::BtcPriceOracleNotFeeder>(),
        Some(BO::BtcPriceOracleNotFeeder { caller: net.account })
    );
    mined(oracle.setFeeder(net.account, true)).await;
    for price in [MIN - 1, MAX + 1] {
        let err = oracle.reportPrice(U256::from(price)).value(fee).call().await.unwrap_err();
        assert_eq!(
            err.as_decoded_error::<BO::BtcPriceOracleInvalidPrice>(),
            Some(BO::BtcPriceOracleInvalidPrice {
                price: U256::from(price),
                min: U256::from(MIN),
                max: U256::from(MAX)
            })
        );
    }
    let short = fee - U256::from(1);
    let expected = Some(BO::BtcPriceOracleFeeNotCovered { value: short, fee });
    let err = oracle.reportPrice(U256::from(97_000)).value(short).call().await.unwrap_err();
    assert_eq!(err.as_decoded_error::<BO::BtcPriceOracleFeeNotCovered>(), expected);
    let err = oracle.requestPrice().value(short).call().await.unwrap_err();
    assert_eq!(err.as_decoded_error::<BO::BtcPriceOracleFeeNotCovered>(), expected);
    let err = oracle.reclaim(U256::from(9)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<BO::BtcPriceOracleUnknownRequest>(),
        Some(BO::BtcPriceOracleUnknownRequest { promptId: U256::from(9) })
    );
    assert_eq!(
        transfer_revert::<BO::BtcPriceOracleDirectPayment>(
            &net.provider,
            *oracle.address(),
            U256::from(1)
        )
        .await,
        Some(BO::BtcPriceOracleDirectPayment { sender: net.account })
    );
    let err = oracle.onInferenceResult(U256::from(1), word(0).into()).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<BO::AIKernelConsumerUnauthorizedCallback>(),
        Some(BO::AIKernelConsumerUnauthorizedCallback { caller: net.account })
    );
    // A feeder contract that refuses its excess payment back.
    let refuser = forwarder(&net.provider).await;
    mined(oracle.setFeeder(*refuser.address(), true)).await;
    let report = calldata(BO::reportPriceCall { price: U256::from(97_000) });
    let err = refuser
        .forward(*oracle.address(), report)
        .value(fee + U256::from(1))
        .call()
        .await
        .unwrap_err();
    assert_eq!(
        err.as_decoded_error::<BO::BtcPriceOracleTransferFailed>(),
        Some(BO::BtcPriceOracleTransferFailed { to: *refuser.address(), amount: U256::from(1) })
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_stores_the_price_the_model_aggregates() {
    let net = Net::live().await;
    let outcome = aik_apps::run_demo("oracle", &net.env()).await.unwrap();
    assert_eq!(outcome.prompts.len(), 4);
    let oracle = BO::new(outcome.contract, net.provider.clone());
    // Independently of the demo's own check: every report is recorded with its echo, and the
    // query's price is the committee's Uint answer.
    for &report in &outcome.prompts[..3] {
        let request = oracle.getRequest(report).call().await.unwrap();
        match net.answer(report).await {
            Answer::Finalized(output) => {
                assert_eq!((request.status, request.answer), (2, U256::from_be_slice(&output)));
            }
            Answer::Refunded => assert_eq!(request.status, 3),
        }
    }
    let query = outcome.prompts[3];
    let Answer::Finalized(output) = net.answer(query).await else {
        panic!("the live committee should agree on SmolLM2's price")
    };
    let price = U256::from_be_slice(&output);
    let range = oracle.minPrice().call().await.unwrap()..=oracle.maxPrice().call().await.unwrap();
    assert!(range.contains(&price), "{price} outside {range:?}");
    assert_eq!(oracle.priceOf(query).call().await.unwrap(), price);
    assert_eq!(oracle.latestPrice().call().await.unwrap(), price);
    assert_eq!(oracle.latestPromptId().call().await.unwrap(), query);
    // The query's context held the three reports as turns.
    let context =
        aik_kernel::load_context(&net.provider, &net.deployment.addresses(), query).await.unwrap();
    assert_eq!(
        context.history.iter().map(|t| t.prompt_id).collect::<Vec<_>>(),
        outcome.prompts[..3].to_vec()
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_stuck_in_the_queue_is_cancelled_and_reclaimed() {
    let (net, script) = Net::scripted().await;
    let oracle = oracle(&net).await;
    let fee = oracle.requestFee().call().await.unwrap();
    // The committee is kept busy with the first query, so the second waits in the queue.
    script.hold();
    let busy = log::<BO::PriceRequested>(&mined(oracle.requestPrice().value(fee)).await).promptId;
    let queued = log::<BO::PriceRequested>(&mined(oracle.requestPrice().value(fee)).await).promptId;
    assert_eq!(
        net.env().kernel().result(queued).await.unwrap().0,
        aik_kernel::PromptStatus::Queued
    );
    // Not before the queue timeout...
    let err = oracle.cancel(queued).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<aik_kernel::bindings::DecentralizedInference::DecentralizedInferenceQueueTimeoutNotReached>()
            .map(|e| e.promptId),
        Some(queued)
    );
    // ...after it, anyone may cancel; the kernel refunds and reclaim returns the fee.
    net.advance(61).await;
    mined(BO::new(*oracle.address(), net.other.clone()).cancel(queued)).await;
    assert_eq!(net.answer(queued).await, Answer::Refunded);
    let before = net.balance(net.account).await;
    let receipt = mined(oracle.reclaim(queued)).await;
    assert_eq!(net.balance(net.account).await + gas_cost(&receipt) - before, fee);
    assert_eq!(log::<BO::RequestReclaimed>(&receipt).amount, fee);
    assert_eq!(net.balance(*oracle.address()).await, U256::ZERO);
    let err = oracle.cancel(queued).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<BO::BtcPriceOracleNotPending>(),
        Some(BO::BtcPriceOracleNotPending { promptId: queued, status: 3 })
    );
    let err = oracle.cancel(U256::from(999)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<BO::BtcPriceOracleUnknownRequest>(),
        Some(BO::BtcPriceOracleUnknownRequest { promptId: U256::from(999) })
    );
    script.release();
    let _ = busy;
    net.stop().await;
}
