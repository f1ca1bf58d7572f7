//! NameGenerator: an available answer is registered and the unused prepaid fees return; a taken
//! answer makes the callback ask again with the taken names as context; unusable answers use up
//! the attempts; refunded attempts return what is unspent; payouts a requester cannot take are
//! credited; the contract's name rule is `aik_apps::name_in`; bad calls revert with their errors.

use aik_apps::{Answer, bindings::NameGenerator as NG, name_in};
use aik_infer::{OutputFormat, Request};
use alloy::{
    primitives::{Address, U256},
    providers::DynProvider,
    sol_types::SolCall,
};

use crate::net::{CallForwarder, Net, event, finalize_gas, gas_paid, sent};

type Names = NG::NameGeneratorInstance<DynProvider>;

const DESCRIPTION: &str = "a lunar base";
/// `RequestStatus` values.
const REGISTERED: u8 = 2;
const FAILED: u8 = 3;
const RECLAIMED: u8 = 4;

async fn names(net: &Net) -> Names {
    NG::deploy(net.provider.clone(), net.kernel_address(), net.model()).await.unwrap()
}

/// Requests a name for [`DESCRIPTION`]; returns (request id, first prompt id).
async fn request_name(names: &Names) -> (U256, U256) {
    let fee = names.requestFee().call().await.unwrap();
    let requested =
        event::<NG::NameRequested>(&sent(names.requestName(DESCRIPTION.into()).value(fee)).await);
    (requested.requestId, requested.promptId)
}

/// The new user message of a request the committee ran.
fn user_message(request: &Request) -> &str {
    &request.messages.last().unwrap().content
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_reads_names_by_the_rust_rule_and_registers_canonical_ones() {
    let (net, _script) = Net::scripted().await;
    let names = names(&net).await;
    let answers = [
        "GPU Rent",
        "  \"gpurent.eth\"  ",
        "Sure! Here is a name: RentMyGPU\nIt fits.",
        "\n\n  ---  \nfoo_bar",
        "Name: Moon-Base.ETH",
        "a: b: c",
        "x:y:",
        "!!!",
        "",
        "-eth",
        "foo.eth.eth",
        "Eth.ETH.eth.eth",
        "caf\u{e9} bar",
        "abcdefghij abcdefghij abcdefghij abcdefghij",
        "abcdefghijabcdefghijabcdefghija b",
        "UPPER lower 42",
    ];
    let long = [
        format!("{}abcdefghij", " ".repeat(250)),
        format!("{}late", " ".repeat(256)),
        "x".repeat(16_000),
    ];
    for answer in answers.iter().copied().chain(long.iter().map(String::as_str)) {
        let contract = names.normalize(answer.as_bytes().to_vec().into()).call().await.unwrap();
        assert_eq!(contract, name_in(answer.as_bytes()), "answer {answer:?}");
    }
    assert_eq!(name_in(b"Name: Moon-Base.ETH"), "moon-base");
    // Repeated ".eth" suffixes all go: the name read is canonical.
    assert_eq!(name_in(b"foo.eth.eth"), "foo");
    assert_eq!(name_in(b"Eth.ETH.eth.eth"), "eth");

    for invalid in
        ["", "Moon", "a--b", "-a", "a-", "abc-eth", "abc-eth-eth", "a b", &"a".repeat(33)]
    {
        let err = names.register(invalid.into()).call().await.unwrap_err();
        assert_eq!(
            err.as_decoded_error::<NG::NameGeneratorInvalidName>(),
            Some(NG::NameGeneratorInvalidName { name: invalid.into() })
        );
    }
    let receipt = sent(names.register("moon-base".into())).await;
    let registered = event::<NG::NameRegistered>(&receipt);
    assert_eq!((registered.owner, registered.requestId), (net.account, U256::ZERO));
    assert_eq!(names.ownerOf("moon-base".into()).call().await.unwrap(), net.account);
    assert_eq!(names.ownerOf("moon".into()).call().await.unwrap(), Address::ZERO);
    let as_other = NG::new(*names.address(), net.other.clone());
    let err = as_other.register("moon-base".into()).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<NG::NameGeneratorNameTaken>(),
        Some(NG::NameGeneratorNameTaken { name: "moon-base".into(), owner: net.account })
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_answer_is_registered_and_unused_fees_return() {
    let (net, script) = Net::scripted().await;
    let names = names(&net).await;
    let fee = names.attemptFee().call().await.unwrap();
    assert_eq!(names.requestFee().call().await.unwrap(), fee * U256::from(3));

    script.answer(b"Moon Base!".to_vec());
    let before = net.balance(net.account).await;
    let fee_total = names.requestFee().call().await.unwrap();
    let receipt = sent(names.requestName(DESCRIPTION.into()).value(fee_total)).await;
    eprintln!("requestName: {} gas", receipt.gas_used);
    let requested = event::<NG::NameRequested>(&receipt);
    assert_eq!(net.answer(requested.promptId).await, Answer::Finalized(b"Moon Base!".to_vec()));
    let state = names.getRequest(requested.requestId).call().await.unwrap();
    assert_eq!((state.status, state.attempts, state.name.as_str()), (REGISTERED, 1, "moon-base"));
    assert!(state.held.is_zero() && state.taken.is_empty());
    assert_eq!(names.ownerOf("moon-base".into()).call().await.unwrap(), net.account);
    // One attempt's fee spent, two returned by the callback.
    assert_eq!(before - net.balance(net.account).await - gas_paid(&receipt), fee);
    assert_eq!(net.balance(*names.address()).await, U256::ZERO);
    let request = script.seen().pop().unwrap();
    assert_eq!((request.format.clone(), request.max_tokens), (OutputFormat::Text, 12));
    assert_eq!(request.messages.len(), 1);
    assert_eq!(
        user_message(&request),
        "Invent a catchy one-word brand name for a lunar base. Reply with the name only."
    );
    let gas = finalize_gas(&net, requested.promptId).await;
    eprintln!("finalize with a registering callback: {gas} gas");

    // An answer far longer than 12 tokens could be: only its first 256 bytes are read, so the
    // callback stays within its gas and registers.
    script.answer(vec![b'z'; 16_000]);
    let (id, prompt) = request_name(&names).await;
    assert!(matches!(net.answer(prompt).await, Answer::Finalized(_)));
    let state = names.getRequest(id).call().await.unwrap();
    assert_eq!((state.status, state.name), (REGISTERED, "z".repeat(32)));
    eprintln!("finalize with a 16,000-byte answer: {} gas", finalize_gas(&net, prompt).await);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_answer_is_asked_again_with_the_taken_names_then_registered() {
    let (net, script) = Net::scripted().await;
    let names = names(&net).await;
    let fee = names.attemptFee().call().await.unwrap();
    let as_other = NG::new(*names.address(), net.other.clone());
    let other =
        event::<NG::NameRegistered>(&sent(as_other.register("moonbase".into())).await).owner;
    assert_ne!(other, net.account);

    // "moonbase" until told it is taken, then another name.
    script.answer_with(|request| {
        let taken = user_message(request).contains("already taken");
        Some(if taken { b"Lunar Dock".to_vec() } else { b"moonbase".to_vec() })
    });
    let before = net.balance(net.account).await;
    let fee_total = names.requestFee().call().await.unwrap();
    let receipt = sent(names.requestName(DESCRIPTION.into()).value(fee_total)).await;
    let requested = event::<NG::NameRequested>(&receipt);
    let (id, first) = (requested.requestId, requested.promptId);
    assert_eq!(net.answer(first).await, Answer::Finalized(b"moonbase".to_vec()));
    let retry = names.getRequest(id).call().await.unwrap().promptId;
    assert_ne!(retry, first);
    assert_eq!(names.requestOfPrompt(retry).call().await.unwrap(), id);
    assert_eq!(net.answer(retry).await, Answer::Finalized(b"Lunar Dock".to_vec()));

    let state = names.getRequest(id).call().await.unwrap();
    assert_eq!((state.status, state.attempts, state.name.as_str()), (REGISTERED, 2, "lunar-dock"));
    assert_eq!(state.taken, vec!["moonbase".to_owned()]);
    assert!(state.held.is_zero());
    assert_eq!(names.ownerOf("lunar-dock".into()).call().await.unwrap(), net.account);
    assert_eq!(names.ownerOf("moonbase".into()).call().await.unwrap(), other);
    assert_eq!(before - net.balance(net.account).await - gas_paid(&receipt), fee * U256::from(2));
    assert_eq!(net.balance(*names.address()).await, U256::ZERO);

    // The retry ran in a topic of its own (no turns), its message led by the taken names.
    let seen = script.seen();
    let request = seen.last().unwrap();
    assert_eq!(request.messages.len(), 1);
    assert_eq!(
        user_message(request),
        "These names are already taken, so suggest a different one: moonbase.\n\n\
         Invent a catchy one-word brand name for a lunar base. Reply with the name only."
    );
    let retrying = finalize_gas(&net, first).await;
    let registering = finalize_gas(&net, retry).await;
    eprintln!(
        "finalize with a callback that asks again: {retrying} gas; with one that registers: \
         {registering} gas (callback gas limit {})",
        names.CALLBACK_GAS().call().await.unwrap()
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_or_taken_answers_use_up_the_attempts() {
    let (net, script) = Net::scripted().await;
    let names = names(&net).await;
    let fee = names.attemptFee().call().await.unwrap();
    sent(names.register("moonbase".into())).await;

    // First no name at all, then a taken one twice (spelled two ways).
    script.answer_with(|request| {
        let message = user_message(request);
        Some(if message.starts_with("Invent") {
            b"!!!".to_vec()
        } else if message.starts_with("The last answer") {
            b"moonbase".to_vec()
        } else {
            b"MoonBase".to_vec()
        })
    });
    let before = net.balance(net.account).await;
    let fee_total = names.requestFee().call().await.unwrap();
    let receipt = sent(names.requestName(DESCRIPTION.into()).value(fee_total)).await;
    let id = event::<NG::NameRequested>(&receipt).requestId;
    let mut prompt = event::<NG::NameRequested>(&receipt).promptId;
    for _ in 0..3 {
        assert!(matches!(net.answer(prompt).await, Answer::Finalized(_)));
        prompt = names.getRequest(id).call().await.unwrap().promptId;
    }
    let state = names.getRequest(id).call().await.unwrap();
    assert_eq!((state.status, state.attempts, state.name.as_str()), (FAILED, 3, ""));
    assert_eq!(state.taken, vec!["moonbase".to_owned()]);
    assert!(state.held.is_zero());
    // All three prepaid fees paid a prompt: nothing comes back.
    assert_eq!(before - net.balance(net.account).await - gas_paid(&receipt), fee * U256::from(3));
    let seen = script.seen();
    let contexts: Vec<&str> = seen.iter().map(user_message).collect();
    assert!(contexts[0].starts_with("Invent a catchy one-word brand name"));
    assert!(contexts[1].starts_with(
        "The last answer was not a usable name: answer with one name of letters and digits.\n\n"
    ));
    assert!(
        contexts[2].starts_with(
            "These names are already taken, so suggest a different one: moonbase.\n\n"
        )
    );
    let err = names.reclaim(id).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<NG::NameGeneratorNotPending>(),
        Some(NG::NameGeneratorNotPending { requestId: id, status: FAILED })
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunded_attempts_return_what_is_unspent_and_failed_payouts_are_credited() {
    let (net, script) = Net::scripted().await;
    let names = names(&net).await;
    let fee = names.attemptFee().call().await.unwrap();

    // The first attempt refunded: all three fees come back.
    script.disagree();
    let (id, prompt) = request_name(&names).await;
    let err = names.reclaim(id).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<NG::NameGeneratorPromptRunning>(),
        Some(NG::NameGeneratorPromptRunning { requestId: id, promptId: prompt })
    );
    assert_eq!(net.answer(prompt).await, Answer::Refunded);
    let before = net.balance(net.account).await;
    let receipt = sent(names.reclaim(id)).await;
    let reclaimed = event::<NG::NameRequestReclaimed>(&receipt);
    assert_eq!((reclaimed.requester, reclaimed.refund), (net.account, fee * U256::from(3)));
    assert_eq!(net.balance(net.account).await + gas_paid(&receipt) - before, fee * U256::from(3));
    let state = names.getRequest(id).call().await.unwrap();
    assert_eq!((state.status, state.held), (RECLAIMED, U256::ZERO));

    // The second attempt refunded: its fee and the unspent third come back, reclaimed by
    // someone else.
    sent(names.register("moonbase".into())).await;
    script.answer_with(|request| {
        user_message(request).starts_with("Invent").then(|| b"moonbase".to_vec())
    });
    let (id, first) = request_name(&names).await;
    assert!(matches!(net.answer(first).await, Answer::Finalized(_)));
    let second = names.getRequest(id).call().await.unwrap().promptId;
    assert_eq!(net.answer(second).await, Answer::Refunded);
    let before = net.balance(net.account).await;
    sent(NG::new(*names.address(), net.other.clone()).reclaim(id)).await;
    assert_eq!(net.balance(net.account).await - before, fee * U256::from(2));
    assert_eq!(names.getRequest(id).call().await.unwrap().status, RECLAIMED);
    assert_eq!(net.balance(*names.address()).await, U256::ZERO);

    // A requester that takes no coin: its refund and its unused fees are credited instead.
    let forwarder = CallForwarder::deploy(net.provider.clone()).await.unwrap();
    let via = *forwarder.address();
    let ask = NG::requestNameCall { description: DESCRIPTION.into() }.abi_encode();
    let total = fee * U256::from(3);
    script.disagree();
    let receipt = sent(forwarder.forward(*names.address(), ask.clone().into()).value(total)).await;
    let (id, prompt) = {
        let requested = event::<NG::NameRequested>(&receipt);
        (requested.requestId, requested.promptId)
    };
    assert_eq!(net.answer(prompt).await, Answer::Refunded);
    let receipt = sent(names.reclaim(id)).await;
    let credited = event::<NG::PayoutCredited>(&receipt);
    assert_eq!((credited.account, credited.amount), (via, total));
    script.answer(b"forwarded".to_vec());
    let receipt = sent(forwarder.forward(*names.address(), ask.into()).value(total)).await;
    assert!(matches!(
        net.answer(event::<NG::NameRequested>(&receipt).promptId).await,
        Answer::Finalized(_)
    ));
    assert_eq!(names.ownerOf("forwarded".into()).call().await.unwrap(), via);
    assert_eq!(names.credits(via).call().await.unwrap(), total + fee * U256::from(2));

    // Credits go to any address the requester names, once.
    let withdraw = |to: Address| NG::withdrawCall { to }.abi_encode();
    let err = forwarder.forward(*names.address(), withdraw(Address::ZERO).into()).call().await;
    assert_eq!(
        err.unwrap_err().as_decoded_error::<NG::PayoutCreditsZeroAddress>(),
        Some(NG::PayoutCreditsZeroAddress {})
    );
    let err = forwarder.forward(*names.address(), withdraw(via).into()).call().await;
    assert_eq!(
        err.unwrap_err().as_decoded_error::<NG::PayoutCreditsTransferFailed>(),
        Some(NG::PayoutCreditsTransferFailed { to: via, amount: total + fee * U256::from(2) })
    );
    let payee = Address::repeat_byte(0xc3);
    let receipt = sent(forwarder.forward(*names.address(), withdraw(payee).into())).await;
    let withdrawn = event::<NG::Withdrawn>(&receipt);
    assert_eq!((withdrawn.account, withdrawn.to), (via, payee));
    assert_eq!(net.balance(payee).await, total + fee * U256::from(2));
    let err = forwarder.forward(*names.address(), withdraw(payee).into()).call().await;
    assert_eq!(
        err.unwrap_err().as_decoded_error::<NG::PayoutCreditsNothingToWithdraw>(),
        Some(NG::PayoutCreditsNothingToWithdraw { account: via })
    );
    assert_eq!(net.balance(*names.address()).await, U256::ZERO);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_name_requests_revert_with_their_errors() {
    let (net, _script) = Net::scripted().await;
    let names = names(&net).await;
    let total = names.requestFee().call().await.unwrap();
    for paid in [names.attemptFee().call().await.unwrap(), total + U256::from(1)] {
        let err = names.requestName("x".into()).value(paid).call().await.unwrap_err();
        assert_eq!(
            err.as_decoded_error::<NG::NameGeneratorWrongFee>(),
            Some(NG::NameGeneratorWrongFee { value: paid, fee: total })
        );
    }
    for length in [0, 257] {
        let err = names.requestName("x".repeat(length)).value(total).call().await.unwrap_err();
        assert_eq!(
            err.as_decoded_error::<NG::NameGeneratorInvalidDescription>(),
            Some(NG::NameGeneratorInvalidDescription { length: U256::from(length) })
        );
    }
    let err = names.reclaim(U256::from(9)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<NG::NameGeneratorUnknownRequest>(),
        Some(NG::NameGeneratorUnknownRequest { requestId: U256::from(9) })
    );
    let err = names.withdraw(net.account).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<NG::PayoutCreditsNothingToWithdraw>(),
        Some(NG::PayoutCreditsNothingToWithdraw { account: net.account })
    );
    let err = names.onInferenceResult(U256::from(1), b"name".to_vec().into()).call().await;
    assert_eq!(
        err.unwrap_err().as_decoded_error::<NG::AIKernelConsumerUnauthorizedCallback>(),
        Some(NG::AIKernelConsumerUnauthorizedCallback { caller: net.account })
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_registers_the_names_the_model_gives() {
    let net = Net::live().await;
    let outcome = aik_apps::run_demo("ens", &net.env()).await.unwrap();
    let names = NG::new(outcome.contract, net.provider.clone());
    // Independently of the demo's own check: each request's prompts, answers and effect.
    let mut prompts = outcome.prompts.iter();
    for id in [U256::from(1), U256::from(2)] {
        let state = names.getRequest(id).call().await.unwrap();
        let mut last = String::new();
        for _ in 0..state.attempts {
            let prompt = prompts.next().expect("a prompt per attempt");
            assert_eq!(names.requestOfPrompt(*prompt).call().await.unwrap(), id);
            let Answer::Finalized(output) = net.answer(*prompt).await else {
                panic!("the live committee should agree on SmolLM2's answer")
            };
            last = name_in(&output);
        }
        match state.status {
            REGISTERED => {
                assert_eq!(state.name, last);
                assert_eq!(names.ownerOf(last).call().await.unwrap(), net.account);
            }
            FAILED => assert_eq!(state.attempts, 3),
            status => panic!("request {id} ended with status {status}"),
        }
        assert!(state.held.is_zero());
    }
    assert!(prompts.next().is_none());
    assert_eq!(net.balance(outcome.contract).await, U256::ZERO);
    // Both requests first ask the same question with no history, so the second one's first
    // answer is the name the first registered (when it took one attempt): it is taken, and the
    // second request asks again with it as context.
    let first = names.getRequest(U256::from(1)).call().await.unwrap();
    if first.status == REGISTERED && first.attempts == 1 {
        let Answer::Finalized(output) = net.answer(outcome.prompts[1]).await else {
            unreachable!()
        };
        assert_eq!(name_in(&output), first.name);
        let second = names.getRequest(U256::from(2)).call().await.unwrap();
        assert!(second.attempts >= 2);
        assert_eq!(second.taken[0], first.name);
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stuck_in_the_queue_is_cancelled_and_reclaimed() {
    let (net, script) = Net::scripted().await;
    let names = names(&net).await;
    let total = names.requestFee().call().await.unwrap();
    // The committee is kept busy with the first request, so the second waits in the queue.
    script.hold();
    let (_, busy) = request_name(&names).await;
    let (id, queued) = request_name(&names).await;
    let kernel = net.env();
    assert_eq!(kernel.kernel().result(queued).await.unwrap().0, aik_kernel::PromptStatus::Queued);
    // Not before the queue timeout...
    let err = names.cancel(id).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<aik_kernel::bindings::DecentralizedInference::DecentralizedInferenceQueueTimeoutNotReached>()
            .map(|e| e.promptId),
        Some(queued)
    );
    // ...after it, anyone may cancel; the kernel refunds and reclaim returns all three fees.
    net.advance(61).await;
    sent(NG::new(*names.address(), net.other.clone()).cancel(id)).await;
    assert_eq!(net.answer(queued).await, Answer::Refunded);
    let before = net.balance(net.account).await;
    let receipt = sent(names.reclaim(id)).await;
    assert_eq!(event::<NG::NameRequestReclaimed>(&receipt).refund, total);
    assert_eq!(net.balance(net.account).await + gas_paid(&receipt) - before, total);
    let err = names.cancel(id).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<NG::NameGeneratorNotPending>(),
        Some(NG::NameGeneratorNotPending { requestId: id, status: RECLAIMED })
    );
    script.release();
    let _ = busy;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_with_repeated_eth_suffixes_registers_the_canonical_name() {
    let (net, script) = Net::scripted().await;
    let names = names(&net).await;
    script.answer(b"Foo.eth.eth".to_vec());
    let (id, prompt) = request_name(&names).await;
    assert!(matches!(net.answer(prompt).await, Answer::Finalized(_)));
    let state = names.getRequest(id).call().await.unwrap();
    assert_eq!((state.status, state.name.as_str()), (REGISTERED, "foo"));
    assert_eq!(names.ownerOf("foo".into()).call().await.unwrap(), net.account);
    assert_eq!(names.ownerOf("foo-eth".into()).call().await.unwrap(), Address::ZERO);
    net.stop().await;
}
