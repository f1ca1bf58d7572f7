//! FantasyLeague: the judged matchup pays the winner's owner; a refunded or failed judgment
//! returns the prize; bad matchups revert with their errors.

use aik_apps::{Answer, bindings::FantasyLeague as FL};
use alloy::{
    primitives::{Address, U256},
    providers::DynProvider,
};

use crate::net::{Net, word};

async fn league(net: &Net) -> FL::FantasyLeagueInstance<DynProvider> {
    FL::deploy(net.provider.clone(), net.kernel_address(), net.model()).await.unwrap()
}

const OWNERS: [Address; 2] = [Address::repeat_byte(0xa1), Address::repeat_byte(0xb2)];
const PRIZE: u64 = 1_000_000_000_000_000;

/// Creates a matchup with prize [`PRIZE`]; returns (matchup id, prompt id).
async fn create(league: &FL::FantasyLeagueInstance<DynProvider>) -> (U256, U256) {
    let fee = league.judgingFee().call().await.unwrap();
    let receipt = league
        .createMatchup(["Ants".into(), "Bees".into()], ["3 wins".into(), "9 wins".into()], OWNERS)
        .value(fee + U256::from(PRIZE))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let created = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<FL::MatchupCreated>().ok())
        .unwrap()
        .inner
        .data;
    (created.matchupId, created.promptId)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_decides_who_gets_the_prize() {
    let (net, script) = Net::scripted().await;
    let league = league(&net).await;
    for winner in [1u64, 0] {
        script.answer(word(winner));
        let before = net.balance(OWNERS[winner as usize]).await;
        let (matchup, prompt) = create(&league).await;
        assert_eq!(net.answer(prompt).await, Answer::Finalized(word(winner)));
        let state = league.getMatchup(matchup).call().await.unwrap();
        assert_eq!((state.status, state.winner), (2, winner as u8));
        let after = net.balance(OWNERS[winner as usize]).await;
        assert_eq!(after - before, U256::from(PRIZE));
        // The prompt the committee ran names both teams and asks for one of them.
        let request = script.seen().pop().unwrap();
        let text = &request.messages.last().unwrap().content;
        assert!(text.contains("Ants: 3 wins") && text.contains("Bees: 9 wins"), "{text}");
        assert_eq!(
            request.format,
            aik_infer::OutputFormat::Choice(vec!["Ants".into(), "Bees".into()])
        );
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refunded_or_failed_judgment_returns_the_prize_to_the_creator() {
    let (net, script) = Net::scripted().await;
    let league = league(&net).await;
    let fee = league.judgingFee().call().await.unwrap();

    // No quorum twice: the kernel refunds the fee to the league; reclaim returns prize + fee.
    script.disagree();
    let (matchup, prompt) = create(&league).await;
    let err = league.reclaim(matchup).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<FL::FantasyLeaguePromptRunning>(),
        Some(FL::FantasyLeaguePromptRunning { matchupId: matchup, promptId: prompt })
    );
    assert_eq!(net.answer(prompt).await, Answer::Refunded);
    let before = net.balance(net.account).await;
    let receipt = league.reclaim(matchup).send().await.unwrap().get_receipt().await.unwrap();
    let gas = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    let after = net.balance(net.account).await;
    assert_eq!(after + gas - before, U256::from(PRIZE) + fee);
    assert_eq!(league.getMatchup(matchup).call().await.unwrap().status, 3);
    assert_eq!(net.balance(*league.address()).await, U256::ZERO);
    let err = league.reclaim(matchup).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<FL::FantasyLeagueNotPending>(),
        Some(FL::FantasyLeagueNotPending { matchupId: matchup, status: 3 })
    );

    // An answer the league cannot use (choice 7 of 2): finalized, callback failed; the prize
    // (not the fee, which paid the committee) goes back.
    script.answer(word(7));
    let (matchup, prompt) = create(&league).await;
    assert_eq!(net.answer(prompt).await, Answer::Finalized(word(7)));
    assert_eq!(league.getMatchup(matchup).call().await.unwrap().status, 1);
    let before = net.balance(net.account).await;
    let as_other = FL::new(*league.address(), net.other.clone());
    let receipt = as_other.reclaim(matchup).send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    assert_eq!(net.balance(net.account).await - before, U256::from(PRIZE));
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_matchups_revert_with_their_errors() {
    let (net, _script) = Net::scripted().await;
    let league = league(&net).await;
    let fee = league.judgingFee().call().await.unwrap();
    let teams = |a: &str, b: &str| [a.to_owned(), b.to_owned()];
    let stats = teams("", "");
    let call = |t: [String; 2], owners: [Address; 2], value: U256| {
        let league = league.clone();
        let stats = stats.clone();
        async move { league.createMatchup(t, stats, owners).value(value).call().await.unwrap_err() }
    };
    let err = call(teams("A", "B"), OWNERS, fee - U256::from(1)).await;
    assert_eq!(
        err.as_decoded_error::<FL::FantasyLeagueFeeNotCovered>(),
        Some(FL::FantasyLeagueFeeNotCovered { value: fee - U256::from(1), fee })
    );
    let err = call(teams("", "B"), OWNERS, fee).await;
    assert_eq!(
        err.as_decoded_error::<FL::FantasyLeagueInvalidTeam>(),
        Some(FL::FantasyLeagueInvalidTeam { team: U256::ZERO })
    );
    let err = call(teams("A", &"x".repeat(1025)), OWNERS, fee).await;
    assert_eq!(
        err.as_decoded_error::<FL::FantasyLeagueInvalidTeam>(),
        Some(FL::FantasyLeagueInvalidTeam { team: U256::from(1) })
    );
    let err = call(teams("A", "A"), OWNERS, fee).await;
    assert_eq!(
        err.as_decoded_error::<FL::FantasyLeagueSameTeams>(),
        Some(FL::FantasyLeagueSameTeams {})
    );
    let err = call(teams("A", "B"), [OWNERS[0], Address::ZERO], fee).await;
    assert_eq!(
        err.as_decoded_error::<FL::FantasyLeagueZeroOwner>(),
        Some(FL::FantasyLeagueZeroOwner { team: U256::from(1) })
    );
    let err = league.reclaim(U256::from(9)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<FL::FantasyLeagueUnknownMatchup>(),
        Some(FL::FantasyLeagueUnknownMatchup { matchupId: U256::from(9) })
    );
    // Only the kernel may deliver answers.
    let err = league.onInferenceResult(U256::from(1), word(0).into()).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<FL::AIKernelConsumerUnauthorizedCallback>(),
        Some(FL::AIKernelConsumerUnauthorizedCallback { caller: net.account })
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_pays_the_team_the_model_picks() {
    let net = Net::live().await;
    let outcome = aik_apps::run_demo("fantasy", &net.env()).await.unwrap();
    assert_eq!(outcome.prompts.len(), 1);
    // Independently of the demo's own check: the matchup's winner is the answer's index, and
    // that team's owner holds the prize.
    let league = FL::new(outcome.contract, net.provider.clone());
    let state = league.getMatchup(U256::from(1)).call().await.unwrap();
    let Answer::Finalized(output) = net.answer(outcome.prompts[0]).await else {
        panic!("the live committee should agree on SmolLM2's answer")
    };
    assert_eq!(U256::from(state.winner), U256::from_be_slice(&output));
    assert_eq!(state.status, 2);
    assert_eq!(net.balance(state.owners[state.winner as usize]).await, U256::from(10u64.pow(16)));
    assert_eq!(net.balance(state.owners[1 - state.winner as usize]).await, U256::ZERO);
    assert_eq!(outcome.answer, ["Lakers", "Celtics"][state.winner as usize]);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matchup_stuck_in_the_queue_is_cancelled_and_reclaimed() {
    let (net, script) = Net::scripted().await;
    let league = league(&net).await;
    let fee = league.judgingFee().call().await.unwrap();
    // The committee is kept busy with the first matchup, so the second waits in the queue.
    script.hold();
    let (_, busy) = create(&league).await;
    let (matchup, queued) = create(&league).await;
    let kernel = net.env();
    assert_eq!(kernel.kernel().result(queued).await.unwrap().0, aik_kernel::PromptStatus::Queued);
    // Not before the queue timeout...
    let err = league.cancel(matchup).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<aik_kernel::bindings::DecentralizedInference::DecentralizedInferenceQueueTimeoutNotReached>()
            .map(|e| e.promptId),
        Some(queued)
    );
    // ...after it, anyone may cancel; the kernel refunds and reclaim returns prize and fee.
    net.advance(61).await;
    let as_other = FL::new(*league.address(), net.other.clone());
    assert!(as_other.cancel(matchup).send().await.unwrap().get_receipt().await.unwrap().status());
    assert_eq!(net.answer(queued).await, Answer::Refunded);
    let before = net.balance(net.account).await;
    let receipt = league.reclaim(matchup).send().await.unwrap().get_receipt().await.unwrap();
    let gas = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    assert_eq!(net.balance(net.account).await + gas - before, U256::from(PRIZE) + fee);
    let err = league.cancel(matchup).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<FL::FantasyLeagueNotPending>(),
        Some(FL::FantasyLeagueNotPending { matchupId: matchup, status: 3 })
    );
    script.release();
    let _ = busy;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_winner_that_refuses_the_prize_is_credited_and_withdraws_it() {
    let (net, script) = Net::scripted().await;
    let league = league(&net).await;
    let fee = league.judgingFee().call().await.unwrap();
    // Team 1's owner is a contract that refuses native coin.
    let refuser = crate::calls::forwarder(&net.provider).await;
    let owners = [OWNERS[0], *refuser.address()];
    script.answer(word(1));
    let receipt = league
        .createMatchup(["Ants".into(), "Bees".into()], ["".into(), "".into()], owners)
        .value(fee + U256::from(PRIZE))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let created = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<FL::MatchupCreated>().ok())
        .unwrap()
        .inner
        .data;
    assert_eq!(net.answer(created.promptId).await, Answer::Finalized(word(1)));
    // The verdict stands: decided for team 1, the prize credited to its owner.
    let state = league.getMatchup(created.matchupId).call().await.unwrap();
    assert_eq!((state.status, state.winner), (2, 1));
    assert_eq!(league.credits(*refuser.address()).call().await.unwrap(), U256::from(PRIZE));
    assert_eq!(net.balance(*refuser.address()).await, U256::ZERO);
    // Withdrawing: errors for a zero recipient and for an account with nothing credited.
    let err = league.withdraw(Address::ZERO).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<FL::PayoutCreditsZeroAddress>(),
        Some(FL::PayoutCreditsZeroAddress {})
    );
    let err = league.withdraw(net.account).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<FL::PayoutCreditsNothingToWithdraw>(),
        Some(FL::PayoutCreditsNothingToWithdraw { account: net.account })
    );
    // The owner withdraws to an address that takes coin.
    let payee = Address::repeat_byte(0xc3);
    let call = crate::calls::calldata(FL::withdrawCall { to: payee });
    let receipt =
        refuser.forward(*league.address(), call).send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    assert_eq!(net.balance(payee).await, U256::from(PRIZE));
    assert_eq!(league.credits(*refuser.address()).call().await.unwrap(), U256::ZERO);
    net.stop().await;
}
