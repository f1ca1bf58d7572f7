//! AIDao: the verdict decides whether the action runs; a failing action is recorded, not
//! reverted; past proposals and outcomes travel as the next prompt's extra context; a refunded
//! or failed judgment ends the proposal not judged with the fee returned when refunded; bad
//! proposals revert with their errors.

use aik_apps::{Answer, bindings::AIDao};
use aik_infer::OutputFormat;
use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    sol_types::SolCall,
};

use crate::net::{CallForwarder, Net, event, finalize_gas, gas_paid, sent, word};

type Dao = AIDao::AIDaoInstance<DynProvider>;

/// 0.001 ETH.
const UNIT: u64 = 1_000_000_000_000_000;
const PAYEES: [Address; 2] = [Address::repeat_byte(0xa1), Address::repeat_byte(0xb2)];

/// `ProposalStatus` values.
const PENDING: u8 = 1;
const APPROVED: u8 = 2;
const REJECTED: u8 = 3;
const NOT_JUDGED: u8 = 4;

/// A DAO whose treasury holds `treasury` wei.
async fn dao(net: &Net, treasury: u64) -> Dao {
    let dao = AIDao::deploy(net.provider.clone(), net.kernel_address(), net.model()).await.unwrap();
    if treasury != 0 {
        let deposit = TransactionRequest::default().to(*dao.address()).value(U256::from(treasury));
        let receipt =
            net.provider.send_transaction(deposit).await.unwrap().get_receipt().await.unwrap();
        assert!(receipt.status());
        let deposited = event::<AIDao::Deposited>(&receipt);
        assert_eq!((deposited.from, deposited.amount), (net.account, U256::from(treasury)));
    }
    dao
}

/// Proposes calling `target` with `value` wei and `data`; returns (proposal id, prompt id).
async fn propose(
    dao: &Dao,
    description: &str,
    target: Address,
    value: u64,
    data: Vec<u8>,
) -> (U256, U256) {
    let fee = dao.judgingFee().call().await.unwrap();
    let call = dao.propose(description.into(), target, U256::from(value), data.into()).value(fee);
    let created = event::<AIDao::ProposalCreated>(&sent(call).await);
    assert_eq!(created.description, description);
    (created.proposalId, created.promptId)
}

/// The text of the new user message the committee ran for the latest prompt.
fn last_user_message(script: &crate::net::Script) -> String {
    let request = script.seen().pop().unwrap();
    request.messages.last().unwrap().content.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verdict_decides_whether_the_action_runs() {
    let (net, script) = Net::scripted().await;
    let dao = dao(&net, 10 * UNIT).await;

    // Approved: the action pays the payee from the treasury.
    script.answer(word(0));
    let (first, prompt) = propose(&dao, "Pay A", PAYEES[0], UNIT, Vec::new()).await;
    assert_eq!(net.answer(prompt).await, Answer::Finalized(word(0)));
    let state = dao.getProposal(first).call().await.unwrap();
    assert_eq!((state.status, state.executed), (APPROVED, true));
    assert_eq!(net.balance(PAYEES[0]).await, U256::from(UNIT));
    assert_eq!(dao.treasury().call().await.unwrap(), U256::from(9 * UNIT));
    let executed = finalize_gas(&net, prompt).await;
    let request = script.seen().pop().unwrap();
    assert_eq!(request.format, OutputFormat::Choice(vec!["approve".into(), "reject".into()]));
    // Its own topic and no history yet: one user message, the question alone.
    assert_eq!(request.messages.len(), 1);
    let text = &request.messages[0].content;
    let action = format!(
        "Action: call {} sending {UNIT} wei with 0 bytes of calldata",
        PAYEES[0].to_string().to_lowercase()
    );
    assert!(
        text.starts_with(
            "You judge proposals for a DAO and its treasury of 10000000000000000 wei."
        )
    );
    assert!(text.contains("\nProposal: Pay A\n") && text.ends_with(&action), "{text}");

    // Rejected: nothing is called, nothing paid.
    script.answer(word(1));
    let (second, prompt) = propose(&dao, "Pay B", PAYEES[1], UNIT, Vec::new()).await;
    assert_eq!(net.answer(prompt).await, Answer::Finalized(word(1)));
    let state = dao.getProposal(second).call().await.unwrap();
    assert_eq!((state.status, state.executed), (REJECTED, false));
    assert_eq!(net.balance(PAYEES[1]).await, U256::ZERO);
    assert_eq!(dao.treasury().call().await.unwrap(), U256::from(9 * UNIT));
    eprintln!(
        "finalize with an approved action executed: {executed} gas; with a rejection: {} gas",
        finalize_gas(&net, prompt).await
    );

    // A proposal without an action: approved, nothing to execute.
    script.answer(word(0));
    let (third, prompt) = propose(&dao, "We value audits", Address::ZERO, 0, Vec::new()).await;
    assert_eq!(net.answer(prompt).await, Answer::Finalized(word(0)));
    let state = dao.getProposal(third).call().await.unwrap();
    assert_eq!((state.status, state.executed), (APPROVED, false));
    assert!(last_user_message(&script).ends_with("Action: none (a statement of intent)"));

    // The next proposal carries the three outcomes as extra context, before its question.
    assert_eq!(dao.history().call().await.unwrap(), vec![first, second, third]);
    let fee = dao.judgingFee().call().await.unwrap();
    let call = dao.propose("Pay A again".into(), PAYEES[0], U256::from(UNIT), Default::default());
    eprintln!(
        "propose with three past outcomes: {} gas",
        call.value(fee).estimate_gas().await.unwrap()
    );
    let (_, prompt) = propose(&dao, "Pay A again", PAYEES[0], UNIT, Vec::new()).await;
    net.answer(prompt).await;
    let history = "Past proposals of this DAO and their outcomes, oldest first:\n\
                   - \"Pay A\": approved, action executed\n\
                   - \"Pay B\": rejected\n\
                   - \"We value audits\": approved\n\n\
                   You judge proposals for a DAO and its treasury of 9000000000000000 wei.";
    let text = last_user_message(&script);
    assert!(text.starts_with(history), "{text}");
    assert_eq!(net.balance(PAYEES[0]).await, U256::from(2 * UNIT));
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_action_is_recorded_and_history_keeps_the_last_five() {
    let (net, script) = Net::scripted().await;
    let dao = dao(&net, UNIT).await;
    script.answer(word(0));

    // More than the treasury holds: approved, not executed, nothing paid.
    let (too_much, prompt) = propose(&dao, "Pay A a lot", PAYEES[0], 2 * UNIT, Vec::new()).await;
    net.answer(prompt).await;
    let state = dao.getProposal(too_much).call().await.unwrap();
    assert_eq!((state.status, state.executed), (APPROVED, false));
    assert_eq!(net.balance(PAYEES[0]).await, U256::ZERO);

    // A call that reverts (re-entering the DAO trips its guard): recorded as failed.
    let reenter = AIDao::reclaimCall { proposalId: U256::from(1) }.abi_encode();
    let (reverting, prompt) = propose(&dao, "Reclaim", *dao.address(), 0, reenter).await;
    net.answer(prompt).await;
    let state = dao.getProposal(reverting).call().await.unwrap();
    assert_eq!((state.status, state.executed), (APPROVED, false));

    // A call with calldata that succeeds.
    let read = AIDao::judgingFeeCall {}.abi_encode();
    let (works, prompt) = propose(&dao, "Read the fee", *dao.address(), 0, read).await;
    net.answer(prompt).await;
    let state = dao.getProposal(works).call().await.unwrap();
    assert_eq!((state.status, state.executed), (APPROVED, true));
    assert_eq!(dao.treasury().call().await.unwrap(), U256::from(UNIT));

    // Three more: the history holds the last five judged, oldest first.
    let mut ids = vec![too_much, reverting, works];
    for statement in ["Four", "Five", "Six"] {
        let (id, prompt) = propose(&dao, statement, Address::ZERO, 0, Vec::new()).await;
        net.answer(prompt).await;
        ids.push(id);
    }
    assert_eq!(dao.judgedCount().call().await.unwrap(), U256::from(6));
    assert_eq!(dao.history().call().await.unwrap(), ids[1..].to_vec());
    let context = String::from_utf8(dao.historyContext().call().await.unwrap().to_vec()).unwrap();
    let lines: Vec<&str> = context.lines().collect();
    assert_eq!(
        lines,
        [
            "Past proposals of this DAO and their outcomes, oldest first:",
            "- \"Reclaim\": approved, action failed",
            "- \"Read the fee\": approved, action executed",
            "- \"Four\": approved",
            "- \"Five\": approved",
            "- \"Six\": approved",
        ]
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refunded_or_failed_judgment_ends_the_proposal_not_judged() {
    let (net, script) = Net::scripted().await;
    let dao = dao(&net, 5 * UNIT).await;
    let fee = dao.judgingFee().call().await.unwrap();
    let treasury = U256::from(5 * UNIT);

    // No quorum twice, for two proposals: the kernel refunds both fees to the DAO.
    script.disagree();
    let (first, first_prompt) = propose(&dao, "One", PAYEES[0], UNIT, Vec::new()).await;
    let err = dao.reclaim(first).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AIDao::AIDaoPromptRunning>(),
        Some(AIDao::AIDaoPromptRunning { proposalId: first, promptId: first_prompt })
    );
    let (second, second_prompt) = propose(&dao, "Two", PAYEES[0], UNIT, Vec::new()).await;
    // A proposer that cannot take the refund back.
    let forwarder = CallForwarder::deploy(net.provider.clone()).await.unwrap();
    let call = AIDao::proposeCall {
        description: "Three".into(),
        target: PAYEES[1],
        value: U256::from(UNIT),
        data: Default::default(),
    };
    let receipt =
        sent(forwarder.forward(*dao.address(), call.abi_encode().into()).value(fee)).await;
    let third_prompt = event::<AIDao::ProposalCreated>(&receipt).promptId;
    for prompt in [first_prompt, second_prompt, third_prompt] {
        assert_eq!(net.answer(prompt).await, Answer::Refunded);
    }

    // The first reclaim collects every refunded fee, returns its own and keeps the rest apart
    // from the treasury.
    let before = net.balance(net.account).await;
    let receipt = sent(dao.reclaim(first)).await;
    let ended = event::<AIDao::ProposalNotJudged>(&receipt);
    assert_eq!((ended.proposalId, ended.proposer, ended.refund), (first, net.account, fee));
    assert_eq!(net.balance(net.account).await + gas_paid(&receipt) - before, fee);
    assert_eq!(dao.getProposal(first).call().await.unwrap().status, NOT_JUDGED);
    assert_eq!(dao.refundsOwed().call().await.unwrap(), fee * U256::from(2));
    assert_eq!(dao.treasury().call().await.unwrap(), treasury);
    assert_eq!(net.balance(*dao.address()).await, treasury + fee * U256::from(2));
    let err = dao.reclaim(first).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AIDao::AIDaoNotPending>(),
        Some(AIDao::AIDaoNotPending { proposalId: first, status: NOT_JUDGED })
    );
    // Anyone may reclaim; the proposer is paid.
    let before = net.balance(net.account).await;
    let as_other = AIDao::new(*dao.address(), net.other.clone());
    sent(as_other.reclaim(second)).await;
    assert_eq!(net.balance(net.account).await - before, fee);
    let err = dao.reclaim(U256::from(3)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AIDao::AIDaoTransferFailed>(),
        Some(AIDao::AIDaoTransferFailed { to: *forwarder.address(), amount: fee })
    );
    assert_eq!(dao.refundsOwed().call().await.unwrap(), fee);
    assert_eq!(dao.treasury().call().await.unwrap(), treasury);

    // An answer the DAO cannot use (choice 2 of 2): finalized, callback failed, the proposal
    // stays pending until reclaimed; the fee paid the committee, so nothing is returned.
    script.answer(word(2));
    let (failed, prompt) = propose(&dao, "Four", PAYEES[0], UNIT, Vec::new()).await;
    assert_eq!(net.answer(prompt).await, Answer::Finalized(word(2)));
    assert_eq!(dao.getProposal(failed).call().await.unwrap().status, PENDING);
    let receipt = sent(dao.reclaim(failed)).await;
    assert_eq!(event::<AIDao::ProposalNotJudged>(&receipt).refund, U256::ZERO);
    let state = dao.getProposal(failed).call().await.unwrap();
    assert_eq!((state.status, state.executed), (NOT_JUDGED, false));
    assert_eq!(dao.judgedCount().call().await.unwrap(), U256::ZERO);
    assert_eq!(net.balance(PAYEES[0]).await, U256::ZERO);
    assert_eq!(dao.treasury().call().await.unwrap(), treasury);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_proposals_revert_with_their_errors() {
    let (net, _script) = Net::scripted().await;
    let dao = dao(&net, 0).await;
    let fee = dao.judgingFee().call().await.unwrap();
    let propose = |description: String, target: Address, value: u64, data: Vec<u8>, paid: U256| {
        let dao = dao.clone();
        async move {
            dao.propose(description, target, U256::from(value), data.into())
                .value(paid)
                .call()
                .await
                .unwrap_err()
        }
    };
    for paid in [fee - U256::from(1), fee + U256::from(1)] {
        let err = propose("x".into(), PAYEES[0], 0, Vec::new(), paid).await;
        assert_eq!(
            err.as_decoded_error::<AIDao::AIDaoWrongFee>(),
            Some(AIDao::AIDaoWrongFee { value: paid, fee })
        );
    }
    for length in [0, 513] {
        let err = propose("x".repeat(length), PAYEES[0], 0, Vec::new(), fee).await;
        assert_eq!(
            err.as_decoded_error::<AIDao::AIDaoInvalidDescription>(),
            Some(AIDao::AIDaoInvalidDescription { length: U256::from(length) })
        );
    }
    let err = propose("x".into(), PAYEES[0], 0, vec![0; 1025], fee).await;
    assert_eq!(
        err.as_decoded_error::<AIDao::AIDaoCalldataTooLong>(),
        Some(AIDao::AIDaoCalldataTooLong { length: U256::from(1025), max: U256::from(1024) })
    );
    for (value, data) in [(1, Vec::new()), (0, vec![1, 2, 3, 4])] {
        let err = propose("x".into(), Address::ZERO, value, data.clone(), fee).await;
        assert_eq!(
            err.as_decoded_error::<AIDao::AIDaoActionWithoutTarget>(),
            Some(AIDao::AIDaoActionWithoutTarget {
                value: U256::from(value),
                dataLength: U256::from(data.len())
            })
        );
    }
    for target in [net.kernel_address(), net.deployment.addresses().context] {
        let err = propose("x".into(), target, 0, Vec::new(), fee).await;
        assert_eq!(
            err.as_decoded_error::<AIDao::AIDaoForbiddenTarget>(),
            Some(AIDao::AIDaoForbiddenTarget { target })
        );
    }
    let err = dao.reclaim(U256::from(9)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AIDao::AIDaoUnknownProposal>(),
        Some(AIDao::AIDaoUnknownProposal { proposalId: U256::from(9) })
    );
    let err = dao.onInferenceResult(U256::from(1), word(0).into()).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AIDao::AIKernelConsumerUnauthorizedCallback>(),
        Some(AIDao::AIKernelConsumerUnauthorizedCallback { caller: net.account })
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_executes_what_the_model_approves() {
    let net = Net::live().await;
    let outcome = aik_apps::run_demo("dao", &net.env()).await.unwrap();
    assert_eq!(outcome.prompts.len(), 2);
    // Independently of the demo's own check: each proposal's fate is its answer's.
    let dao = AIDao::new(outcome.contract, net.provider.clone());
    for (index, prompt) in outcome.prompts.iter().enumerate() {
        let state = dao.getProposal(U256::from(index + 1)).call().await.unwrap();
        assert_eq!(state.promptId, *prompt);
        let Answer::Finalized(output) = net.answer(*prompt).await else {
            panic!("the live committee should agree on SmolLM2's answer")
        };
        let paid = net.balance(state.target).await;
        if U256::from_be_slice(&output).is_zero() {
            assert_eq!((state.status, state.executed, paid), (APPROVED, true, state.value));
        } else {
            assert_eq!((state.status, state.executed, paid), (REJECTED, false, U256::ZERO));
        }
    }
    // The second proposal was judged with the first's outcome as context.
    assert_eq!(dao.history().call().await.unwrap(), vec![U256::from(1), U256::from(2)]);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_stuck_in_the_queue_is_cancelled_and_reclaimed() {
    let (net, script) = Net::scripted().await;
    let dao = dao(&net, 5 * UNIT).await;
    let fee = dao.judgingFee().call().await.unwrap();
    let treasury = U256::from(5 * UNIT);
    // The committee is kept busy with the first proposal, so the second waits in the queue.
    script.hold();
    let (_, busy) = propose(&dao, "Busy", Address::ZERO, 0, Vec::new()).await;
    let (proposal, queued) = propose(&dao, "Queued", PAYEES[0], UNIT, Vec::new()).await;
    assert_eq!(dao.pendingFees().call().await.unwrap(), fee * U256::from(2));
    let kernel = net.env();
    assert_eq!(kernel.kernel().result(queued).await.unwrap().0, aik_kernel::PromptStatus::Queued);
    // Not before the queue timeout...
    let err = dao.cancel(proposal).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<aik_kernel::bindings::DecentralizedInference::DecentralizedInferenceQueueTimeoutNotReached>()
            .map(|e| e.promptId),
        Some(queued)
    );
    // ...after it, anyone may cancel; the kernel refunds and reclaim returns the fee.
    net.advance(61).await;
    let as_other = AIDao::new(*dao.address(), net.other.clone());
    sent(as_other.cancel(proposal)).await;
    assert_eq!(net.answer(queued).await, Answer::Refunded);
    let before = net.balance(net.account).await;
    let receipt = sent(dao.reclaim(proposal)).await;
    let ended = event::<AIDao::ProposalNotJudged>(&receipt);
    assert_eq!((ended.proposalId, ended.refund), (proposal, fee));
    assert_eq!(net.balance(net.account).await + gas_paid(&receipt) - before, fee);
    assert_eq!(dao.refundsOwed().call().await.unwrap(), U256::ZERO);
    assert_eq!(dao.pendingFees().call().await.unwrap(), fee);
    assert_eq!(dao.treasury().call().await.unwrap(), treasury);
    assert_eq!(net.balance(PAYEES[0]).await, U256::ZERO);
    let err = dao.cancel(proposal).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AIDao::AIDaoNotPending>(),
        Some(AIDao::AIDaoNotPending { proposalId: proposal, status: NOT_JUDGED })
    );
    script.release();
    let _ = busy;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_that_re_enters_the_dao_fails_and_is_recorded() {
    let (net, script) = Net::scripted().await;
    let dao = dao(&net, 5 * UNIT).await;
    let fee = dao.judgingFee().call().await.unwrap();
    script.answer(word(0));
    // An action proposing from the treasury: valid calldata and enough value, so only the
    // running-action flag can make it fail.
    let reenter = AIDao::proposeCall {
        description: "Nested".into(),
        target: Address::ZERO,
        value: U256::ZERO,
        data: Default::default(),
    }
    .abi_encode();
    let value = fee.to::<u64>();
    let (id, prompt) = propose(&dao, "Propose again", *dao.address(), value, reenter).await;
    assert_eq!(net.answer(prompt).await, Answer::Finalized(word(0)));
    let state = dao.getProposal(id).call().await.unwrap();
    assert_eq!((state.status, state.executed), (APPROVED, false));
    assert_eq!(dao.proposalCount().call().await.unwrap(), id);
    assert_eq!(dao.treasury().call().await.unwrap(), U256::from(5 * UNIT));
    assert_eq!(dao.pendingFees().call().await.unwrap(), U256::ZERO);
    // Outside an action the same call works: the flag is cleared after the callback.
    let (next, _) = propose(&dao, "Nested", Address::ZERO, 0, Vec::new()).await;
    assert_eq!(next, id + U256::from(1));
    net.stop().await;
}
