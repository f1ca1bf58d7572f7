//! CreditScore: the answer is stored as the account's score with its prompt and time, each
//! account in its own topic; the context holds what the contract read and the reported
//! activity; a refunded or unusable answer is reclaimed; bad requests revert with their errors.

use aik_apps::{Answer, bindings::CreditScore as CS};
use aik_infer::{OutputFormat, Role};
use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider},
    sol_types::SolCall,
};

use crate::net::{CallForwarder, Net, event, finalize_gas, gas_paid, sent, word};

type Scores = CS::CreditScoreInstance<DynProvider>;

/// `RequestStatus` values.
const PENDING: u8 = 1;
const RECLAIMED: u8 = 3;
const RATED: Address = Address::repeat_byte(0x42);

async fn scores(net: &Net) -> Scores {
    CS::deploy(net.provider.clone(), net.kernel_address(), net.model()).await.unwrap()
}

/// Requests a score for `account`; returns (request id, prompt id).
async fn request_score(scores: &Scores, account: Address, activity: &str) -> (U256, U256) {
    let fee = scores.scoringFee().call().await.unwrap();
    let receipt = sent(scores.requestScore(account, activity.into()).value(fee)).await;
    let requested = event::<CS::ScoreRequested>(&receipt);
    assert_eq!(requested.account, account);
    (requested.requestId, requested.promptId)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_is_stored_as_the_accounts_score() {
    let (net, script) = Net::scripted().await;
    let scores = scores(&net).await;

    script.answer(word(712));
    let fee = scores.scoringFee().call().await.unwrap();
    let call = scores.requestScore(RATED, "Repaid 3 loans on time".into()).value(fee);
    eprintln!("requestScore: {} gas", call.estimate_gas().await.unwrap());
    let (first, prompt) = request_score(&scores, RATED, "Repaid 3 loans on time").await;
    assert_eq!(net.answer(prompt).await, Answer::Finalized(word(712)));
    let score = scores.scoreOf(RATED).call().await.unwrap();
    assert_eq!((score.score, score.promptId, score.requester), (712, prompt, net.account));
    let now = net.provider.get_block_number().await.unwrap();
    let block = net.provider.get_block_by_number(now.into()).await.unwrap().unwrap();
    assert!(score.time > 0 && score.time <= block.header.timestamp);
    assert_eq!(scores.getRequest(first).call().await.unwrap().status, 2);
    eprintln!("finalize with a score stored: {} gas", finalize_gas(&net, prompt).await);
    let request = script.seen().pop().unwrap();
    assert_eq!(request.format, OutputFormat::Uint { min: U256::from(300), max: U256::from(850) });
    assert_eq!(request.messages.len(), 1);
    let expected = format!(
        "Address: {}\nRead onchain: balance 0 wei; an externally owned account (no code).\n\
         Reported activity: Repaid 3 loans on time\n\n\
         Based on this history, what is the wallet's credit score? Reliable borrowers score 700 to 850.",
        RATED.to_string().to_lowercase()
    );
    assert_eq!(request.messages[0].content, expected);

    // A second score for the same account: its topic shows the first as a turn.
    script.answer(word(455));
    let (_, second) = request_score(&scores, RATED, "Missed two repayments").await;
    net.answer(second).await;
    let latest = scores.scoreOf(RATED).call().await.unwrap();
    assert_eq!((latest.score, latest.promptId), (455, second));
    let history = scores.scoreHistory(RATED).call().await.unwrap();
    assert_eq!(
        history.iter().map(|s| (s.score, s.promptId)).collect::<Vec<_>>(),
        [(712, prompt), (455, second)]
    );
    let request = script.seen().pop().unwrap();
    assert_eq!(request.messages.len(), 3);
    assert_eq!(
        (request.messages[1].role, request.messages[1].content.as_str()),
        (Role::Assistant, "712")
    );

    // A contract account, with its code size and balance read onchain, in a topic of its own.
    script.answer(word(300));
    let balance = net.balance(net.kernel_address()).await;
    let code = net.provider.get_code_at(net.kernel_address()).await.unwrap();
    let (_, prompt) = request_score(&scores, net.kernel_address(), "").await;
    net.answer(prompt).await;
    assert_eq!(scores.scoreOf(net.kernel_address()).call().await.unwrap().score, 300);
    let request = script.seen().pop().unwrap();
    assert_eq!(request.messages.len(), 1);
    let facts = format!(
        "balance {balance} wei; a contract ({} bytes of code).\nReported activity: none reported",
        code.len()
    );
    assert!(request.messages[0].content.contains(&facts), "{}", request.messages[0].content);
    // The account rated earlier is unaffected.
    assert_eq!(scores.scoreOf(RATED).call().await.unwrap().score, 455);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refunded_or_unusable_score_is_reclaimed() {
    let (net, script) = Net::scripted().await;
    let scores = scores(&net).await;
    let fee = scores.scoringFee().call().await.unwrap();

    // No quorum twice: the fee comes back through reclaim.
    script.disagree();
    let (refunded, prompt) = request_score(&scores, RATED, "").await;
    let err = scores.reclaim(refunded).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CS::CreditScorePromptRunning>(),
        Some(CS::CreditScorePromptRunning { requestId: refunded, promptId: prompt })
    );
    // A requester that cannot take the fee back.
    let forwarder = CallForwarder::deploy(net.provider.clone()).await.unwrap();
    let call = CS::requestScoreCall { account: RATED, activity: String::new() };
    let receipt =
        sent(forwarder.forward(*scores.address(), call.abi_encode().into()).value(fee)).await;
    let (stuck, stuck_prompt) = {
        let requested = event::<CS::ScoreRequested>(&receipt);
        (requested.requestId, requested.promptId)
    };
    assert_eq!(net.answer(prompt).await, Answer::Refunded);
    assert_eq!(net.answer(stuck_prompt).await, Answer::Refunded);
    let before = net.balance(net.account).await;
    let receipt = sent(scores.reclaim(refunded)).await;
    let reclaimed = event::<CS::ScoreReclaimed>(&receipt);
    assert_eq!((reclaimed.requester, reclaimed.refund), (net.account, fee));
    assert_eq!(net.balance(net.account).await + gas_paid(&receipt) - before, fee);
    assert_eq!(scores.getRequest(refunded).call().await.unwrap().status, RECLAIMED);
    let err = scores.reclaim(refunded).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CS::CreditScoreNotPending>(),
        Some(CS::CreditScoreNotPending { requestId: refunded, status: RECLAIMED })
    );
    let err = scores.reclaim(stuck).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CS::CreditScoreTransferFailed>(),
        Some(CS::CreditScoreTransferFailed { to: *forwarder.address(), amount: fee })
    );
    // The forwarder's fee is still there for a later reclaim.
    assert_eq!(net.balance(*scores.address()).await, fee);

    // A score out of range (900 > 850): finalized, callback failed, nothing stored; the fee
    // paid the committee, so the reclaim returns nothing.
    script.answer(word(900));
    let (unusable, prompt) = request_score(&scores, RATED, "").await;
    assert_eq!(net.answer(prompt).await, Answer::Finalized(word(900)));
    assert_eq!(scores.getRequest(unusable).call().await.unwrap().status, PENDING);
    let as_other = CS::new(*scores.address(), net.other.clone());
    let receipt = sent(as_other.reclaim(unusable)).await;
    assert_eq!(event::<CS::ScoreReclaimed>(&receipt).refund, U256::ZERO);
    assert_eq!(scores.getRequest(unusable).call().await.unwrap().status, RECLAIMED);
    let err = scores.scoreOf(RATED).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CS::CreditScoreNoScore>(),
        Some(CS::CreditScoreNoScore { account: RATED })
    );
    assert!(scores.scoreHistory(RATED).call().await.unwrap().is_empty());
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_score_requests_revert_with_their_errors() {
    let (net, _script) = Net::scripted().await;
    let scores = scores(&net).await;
    let fee = scores.scoringFee().call().await.unwrap();
    for paid in [U256::ZERO, fee + U256::from(1)] {
        let err = scores.requestScore(RATED, String::new()).value(paid).call().await.unwrap_err();
        assert_eq!(
            err.as_decoded_error::<CS::CreditScoreWrongFee>(),
            Some(CS::CreditScoreWrongFee { value: paid, fee })
        );
    }
    let err = scores.requestScore(Address::ZERO, String::new()).value(fee).call().await;
    assert_eq!(
        err.unwrap_err().as_decoded_error::<CS::CreditScoreZeroAccount>(),
        Some(CS::CreditScoreZeroAccount {})
    );
    let err = scores.requestScore(RATED, "x".repeat(2049)).value(fee).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CS::CreditScoreActivityTooLong>(),
        Some(CS::CreditScoreActivityTooLong { length: U256::from(2049), max: U256::from(2048) })
    );
    let err = scores.reclaim(U256::from(9)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CS::CreditScoreUnknownRequest>(),
        Some(CS::CreditScoreUnknownRequest { requestId: U256::from(9) })
    );
    let err = scores.scoreOf(RATED).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CS::CreditScoreNoScore>(),
        Some(CS::CreditScoreNoScore { account: RATED })
    );
    let err = scores.onInferenceResult(U256::from(1), word(500).into()).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CS::AIKernelConsumerUnauthorizedCallback>(),
        Some(CS::AIKernelConsumerUnauthorizedCallback { caller: net.account })
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_stores_the_score_the_model_gives() {
    let net = Net::live().await;
    let outcome = aik_apps::run_demo("credit", &net.env()).await.unwrap();
    assert_eq!(outcome.prompts.len(), 1);
    let Answer::Finalized(output) = net.answer(outcome.prompts[0]).await else {
        panic!("the live committee should agree on SmolLM2's answer")
    };
    // Independently of the demo's own check: the stored score is the answer, in range.
    let answer = U256::from_be_slice(&output);
    assert!((300..=850).contains(&answer.to::<u64>()), "{answer}");
    let scores = CS::new(outcome.contract, net.provider.clone());
    let score = scores.scoreOf(net.account).call().await.unwrap();
    assert_eq!((U256::from(score.score), score.promptId), (answer, outcome.prompts[0]));
    assert_eq!(outcome.answer, answer.to_string());
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_score_stuck_in_the_queue_is_cancelled_and_reclaimed() {
    let (net, script) = Net::scripted().await;
    let scores = scores(&net).await;
    let fee = scores.scoringFee().call().await.unwrap();
    // The committee is kept busy with the first request, so the second waits in the queue.
    script.hold();
    let (_, busy) = request_score(&scores, RATED, "").await;
    let (request, queued) = request_score(&scores, RATED, "").await;
    let kernel = net.env();
    assert_eq!(kernel.kernel().result(queued).await.unwrap().0, aik_kernel::PromptStatus::Queued);
    // Not before the queue timeout...
    let err = scores.cancel(request).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<aik_kernel::bindings::DecentralizedInference::DecentralizedInferenceQueueTimeoutNotReached>()
            .map(|e| e.promptId),
        Some(queued)
    );
    // ...after it, anyone may cancel; the kernel refunds and reclaim returns the fee.
    net.advance(61).await;
    let as_other = CS::new(*scores.address(), net.other.clone());
    sent(as_other.cancel(request)).await;
    assert_eq!(net.answer(queued).await, Answer::Refunded);
    let before = net.balance(net.account).await;
    let receipt = sent(scores.reclaim(request)).await;
    assert_eq!(event::<CS::ScoreReclaimed>(&receipt).refund, fee);
    assert_eq!(net.balance(net.account).await + gas_paid(&receipt) - before, fee);
    let err = scores.cancel(request).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<CS::CreditScoreNotPending>(),
        Some(CS::CreditScoreNotPending { requestId: request, status: RECLAIMED })
    );
    script.release();
    let _ = busy;
    net.stop().await;
}
