//! AIWallet: a send is held while `suspiciousTransaction` is pending, paid on "false" and
//! returned on "true", with the sender's history as context; a refunded or unusable verdict
//! returns the held amount; bad deposits, sends and withdrawals revert with their errors.

use aik_apps::{Answer, bindings::AIWallet as AW};
use aik_infer::OutputFormat;
use alloy::{
    primitives::{Address, U256},
    providers::DynProvider,
    rpc::types::TransactionReceipt,
};

use crate::{
    calls::{calldata, forwarder, gas_cost, log, mined, transfer_revert},
    net::{Net, word},
};

type Wallet = AW::AIWalletInstance<DynProvider>;

/// `milli` thousandths of an ETH, in wei.
fn milli(milli: u64) -> U256 {
    U256::from(milli) * U256::from(1_000_000_000_000_000u64)
}

async fn wallet(net: &Net) -> Wallet {
    AW::deploy(net.provider.clone(), net.kernel_address(), net.model()).await.unwrap()
}

/// Sends `amount` to `to` paying `value`; returns the receipt, transfer id and prompt id.
async fn send(
    wallet: &Wallet,
    to: Address,
    amount: U256,
    value: U256,
) -> (TransactionReceipt, U256, U256) {
    let receipt = mined(wallet.send(to, amount).value(value)).await;
    let requested = log::<AW::TransferRequested>(&receipt);
    (receipt, requested.transferId, requested.promptId)
}

/// The sender's balance once the send's amount was held, from the send's own event (before
/// any answer could arrive).
fn balance_left(receipt: &TransactionReceipt) -> U256 {
    log::<AW::TransferRequested>(receipt).balanceLeft
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_is_paid_only_when_the_answer_is_no() {
    let (net, script) = Net::scripted().await;
    let wallet = wallet(&net).await;
    let fee = wallet.sendFee().call().await.unwrap();
    let callback_gas = wallet.CALLBACK_GAS().call().await.unwrap();
    assert_eq!(fee, net.env().kernel().estimate_fee(net.model(), 4, callback_gas).await.unwrap());
    mined(wallet.deposit().value(milli(1000))).await;
    let me = net.account;
    let (alice, bob) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xb0));

    // Not suspicious: the amount is held by the send, then paid to the recipient. The
    // excess msg.value over the fee is deposited first.
    script.answer(word(0));
    let (receipt, transfer, prompt) = send(&wallet, alice, milli(100), fee + milli(50)).await;
    assert_eq!(log::<AW::Deposited>(&receipt).amount, milli(50));
    assert_eq!(balance_left(&receipt), milli(950));
    assert_eq!(net.answer(prompt).await, Answer::Finalized(word(0)));
    let state = wallet.getTransfer(transfer).call().await.unwrap();
    assert_eq!(
        (state.from, state.to, state.amount, state.fee, state.promptId, state.status),
        (me, alice, milli(100), fee, prompt, 2)
    );
    assert_eq!(net.balance(alice).await, milli(100));
    assert_eq!(wallet.balanceOf(me).call().await.unwrap(), milli(950));
    let request = script.seen().pop().unwrap();
    assert_eq!(request.format, OutputFormat::Bool);
    let asked = &request.messages.last().unwrap().content;
    let me_hex = format!("0x{}", alloy::hex::encode(me));
    let alice_hex = format!("0x{}", alloy::hex::encode(alice));
    assert!(
        asked.starts_with(&format!(
            "Recent transactions of {me_hex} (0 sends in total):\n- none\n\n"
        )),
        "{asked}"
    );
    assert!(asked.contains(&format!("{me_hex} sends 0.1 ETH to {alice_hex}")), "{asked}");
    assert!(asked.contains("balance before this send: 1.05 ETH"), "{asked}");
    assert!(
        asked.ends_with(
            "\nsuspiciousTransaction: Is this transaction suspicious? Answer true or false."
        ),
        "{asked}"
    );

    // Suspicious: held, then back in the sender's balance; the recipient gets nothing and is
    // counted as flagged. The history now shows the paid send.
    script.answer(word(1));
    let (receipt, transfer, prompt) = send(&wallet, bob, milli(200), fee).await;
    assert_eq!(balance_left(&receipt), milli(750));
    assert_eq!(net.answer(prompt).await, Answer::Finalized(word(1)));
    assert_eq!(wallet.getTransfer(transfer).call().await.unwrap().status, 3);
    assert_eq!(wallet.balanceOf(me).call().await.unwrap(), milli(950));
    assert_eq!(net.balance(bob).await, U256::ZERO);
    assert_eq!(wallet.flaggedCount(bob).call().await.unwrap(), U256::from(1));
    let asked = script.seen().pop().unwrap().messages.pop().unwrap().content;
    assert!(asked.contains(&format!("sent 0.1 ETH to {alice_hex} (paid)")), "{asked}");

    // Not suspicious, to a contract that refuses the coin: credited to its balance here. The
    // history shows the flagged send, and the input how often the recipient was flagged.
    let refuser = forwarder(&net.provider).await;
    script.answer(word(0));
    let (_, transfer, prompt) = send(&wallet, *refuser.address(), milli(25), fee).await;
    assert_eq!(net.answer(prompt).await, Answer::Finalized(word(0)));
    assert_eq!(wallet.getTransfer(transfer).call().await.unwrap().status, 2);
    assert_eq!(wallet.balanceOf(*refuser.address()).call().await.unwrap(), milli(25));
    let asked = script.seen().pop().unwrap().messages.pop().unwrap().content;
    let bob_hex = format!("0x{}", alloy::hex::encode(bob));
    assert!(
        asked.contains(&format!("sent 0.2 ETH to {bob_hex} (flagged as suspicious)")),
        "{asked}"
    );
    assert!(asked.contains("(2 sends in total)"), "{asked}");
    assert!(asked.contains("flagged as suspicious: 0."), "{asked}");
    assert_eq!(
        wallet.sendsOf(me).call().await.unwrap(),
        vec![U256::from(1), U256::from(2), U256::from(3)]
    );

    // Withdraw part of the balance; the wallet holds exactly what its balances say.
    let before = net.balance(me).await;
    let receipt = mined(wallet.withdraw(milli(500))).await;
    assert_eq!(net.balance(me).await + gas_cost(&receipt) - before, milli(500));
    assert_eq!(wallet.balanceOf(me).call().await.unwrap(), milli(425));
    assert_eq!(net.balance(*wallet.address()).await, milli(425) + milli(25));
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refunded_or_unusable_verdict_returns_the_held_amount() {
    let (net, script) = Net::scripted().await;
    let wallet = wallet(&net).await;
    let fee = wallet.sendFee().call().await.unwrap();
    mined(wallet.deposit().value(milli(1000))).await;
    let to = Address::repeat_byte(0xd1);

    // No quorum twice: refunded; reclaim puts the amount and the fee back in the balance.
    script.disagree();
    let (receipt, transfer, prompt) = send(&wallet, to, milli(300), fee).await;
    assert_eq!(balance_left(&receipt), milli(700));
    let err = wallet.reclaim(transfer).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AW::AIWalletPromptRunning>(),
        Some(AW::AIWalletPromptRunning { transferId: transfer, promptId: prompt })
    );
    assert_eq!(net.answer(prompt).await, Answer::Refunded);
    let receipt = mined(AW::new(*wallet.address(), net.other.clone()).reclaim(transfer)).await;
    assert_eq!(log::<AW::TransferReclaimed>(&receipt).amount, milli(300) + fee);
    assert_eq!(wallet.getTransfer(transfer).call().await.unwrap().status, 4);
    assert_eq!(wallet.balanceOf(net.account).call().await.unwrap(), milli(1000) + fee);
    assert_eq!(net.balance(to).await, U256::ZERO);
    let err = wallet.reclaim(transfer).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AW::AIWalletNotPending>(),
        Some(AW::AIWalletNotPending { transferId: transfer, status: 4 })
    );

    // An answer that is not a Bool: finalized, callback failed; the amount (not the fee, which
    // paid the committee) goes back.
    script.answer(word(2));
    let (_, transfer, prompt) = send(&wallet, to, milli(300), fee).await;
    assert_eq!(net.answer(prompt).await, Answer::Finalized(word(2)));
    assert_eq!(wallet.getTransfer(transfer).call().await.unwrap().status, 1);
    mined(wallet.reclaim(transfer)).await;
    assert_eq!(wallet.balanceOf(net.account).call().await.unwrap(), milli(1000) + fee);
    let history = wallet.historyOf(net.account).call().await.unwrap();
    assert!(history.ends_with("(not judged, returned)"), "{history}");

    // Everything can leave: the wallet ends empty.
    let before = net.balance(net.account).await;
    let receipt = mined(wallet.withdraw(milli(1000) + fee)).await;
    assert_eq!(net.balance(net.account).await + gas_cost(&receipt) - before, milli(1000) + fee);
    assert_eq!(net.balance(*wallet.address()).await, U256::ZERO);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deposits_sends_and_withdrawals_revert_with_their_errors() {
    let (net, _script) = Net::scripted().await;
    let wallet = wallet(&net).await;
    let fee = wallet.sendFee().call().await.unwrap();
    let zero = |err: alloy::contract::Error| {
        assert_eq!(
            err.as_decoded_error::<AW::AIWalletZeroAmount>(),
            Some(AW::AIWalletZeroAmount {})
        );
    };
    zero(wallet.deposit().call().await.unwrap_err());
    zero(wallet.withdraw(U256::ZERO).call().await.unwrap_err());
    zero(wallet.send(Address::repeat_byte(1), U256::ZERO).value(fee).call().await.unwrap_err());
    let err = wallet.withdraw(U256::from(1)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AW::AIWalletInsufficientBalance>(),
        Some(AW::AIWalletInsufficientBalance { available: U256::ZERO, amount: U256::from(1) })
    );
    for to in [Address::ZERO, *wallet.address()] {
        let err = wallet.send(to, U256::from(1)).value(fee).call().await.unwrap_err();
        assert_eq!(
            err.as_decoded_error::<AW::AIWalletInvalidRecipient>(),
            Some(AW::AIWalletInvalidRecipient { to })
        );
    }
    let err =
        wallet.send(Address::repeat_byte(1), U256::from(1)).value(fee - U256::from(1)).call().await;
    assert_eq!(
        err.unwrap_err().as_decoded_error::<AW::AIWalletFeeNotCovered>(),
        Some(AW::AIWalletFeeNotCovered { value: fee - U256::from(1), fee })
    );
    // The excess over the fee counts as a deposit, but not enough of one.
    let err = wallet
        .send(Address::repeat_byte(1), U256::from(10))
        .value(fee + U256::from(4))
        .call()
        .await
        .unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AW::AIWalletInsufficientBalance>(),
        Some(AW::AIWalletInsufficientBalance { available: U256::from(4), amount: U256::from(10) })
    );
    let err = wallet.reclaim(U256::from(9)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AW::AIWalletUnknownTransfer>(),
        Some(AW::AIWalletUnknownTransfer { transferId: U256::from(9) })
    );
    assert_eq!(
        transfer_revert::<AW::AIWalletDirectPayment>(&net.provider, *wallet.address(), milli(1))
            .await,
        Some(AW::AIWalletDirectPayment { sender: net.account })
    );
    let err = wallet.onInferenceResult(U256::from(1), word(0).into()).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AW::AIKernelConsumerUnauthorizedCallback>(),
        Some(AW::AIKernelConsumerUnauthorizedCallback { caller: net.account })
    );

    // A depositor that refuses the coin cannot withdraw it: the withdrawal reverts whole.
    let refuser = forwarder(&net.provider).await;
    let deposit = calldata(AW::depositCall {});
    mined(refuser.forward(*wallet.address(), deposit).value(milli(3))).await;
    assert_eq!(wallet.balanceOf(*refuser.address()).call().await.unwrap(), milli(3));
    let withdraw = calldata(AW::withdrawCall { amount: milli(3) });
    let err = refuser.forward(*wallet.address(), withdraw).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AW::AIWalletTransferFailed>(),
        Some(AW::AIWalletTransferFailed { to: *refuser.address(), amount: milli(3) })
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_pays_only_the_sends_the_model_clears() {
    let net = Net::live().await;
    let outcome = aik_apps::run_demo("wallet", &net.env()).await.unwrap();
    assert_eq!(outcome.prompts.len(), 2);
    // Independently of the demo's own check: each transfer's fate is its verdict's.
    let wallet = AW::new(outcome.contract, net.provider.clone());
    for &prompt in &outcome.prompts {
        let transfer = wallet.transferOfPrompt(prompt).call().await.unwrap();
        let state = wallet.getTransfer(transfer).call().await.unwrap();
        let received = net.balance(state.to).await;
        match net.answer(prompt).await {
            Answer::Finalized(output) if output == word(0) => {
                assert_eq!((state.status, received), (2, state.amount));
            }
            Answer::Finalized(output) => {
                assert_eq!(output, word(1));
                assert_eq!((state.status, received), (3, U256::ZERO));
            }
            Answer::Refunded => assert_eq!((state.status, received), (4, U256::ZERO)),
        }
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_stuck_in_the_queue_is_cancelled_and_reclaimed() {
    let (net, script) = Net::scripted().await;
    let wallet = wallet(&net).await;
    let fee = wallet.sendFee().call().await.unwrap();
    mined(wallet.deposit().value(milli(1000))).await;
    let to = Address::repeat_byte(0xd2);
    // The committee is kept busy with the first send, so the second waits in the queue.
    script.hold();
    let (_, busy, _) = send(&wallet, to, milli(100), fee).await;
    let (receipt, transfer, queued) = send(&wallet, to, milli(300), fee).await;
    assert_eq!(balance_left(&receipt), milli(600));
    assert_eq!(
        net.env().kernel().result(queued).await.unwrap().0,
        aik_kernel::PromptStatus::Queued
    );
    // Not before the queue timeout...
    let err = wallet.cancel(transfer).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<aik_kernel::bindings::DecentralizedInference::DecentralizedInferenceQueueTimeoutNotReached>()
            .map(|e| e.promptId),
        Some(queued)
    );
    // ...after it, anyone may cancel; the kernel refunds and reclaim returns amount and fee.
    net.advance(61).await;
    mined(AW::new(*wallet.address(), net.other.clone()).cancel(transfer)).await;
    assert_eq!(net.answer(queued).await, Answer::Refunded);
    let held = net.balance(*wallet.address()).await;
    let receipt = mined(wallet.reclaim(transfer)).await;
    assert_eq!(log::<AW::TransferReclaimed>(&receipt).amount, milli(300) + fee);
    assert_eq!(wallet.balanceOf(net.account).call().await.unwrap(), milli(900) + fee);
    // The refunded fee was pulled out of the kernel into the wallet.
    assert_eq!(net.balance(*wallet.address()).await - held, fee);
    assert_eq!(wallet.getTransfer(transfer).call().await.unwrap().status, 4);
    let err = wallet.cancel(transfer).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AW::AIWalletNotPending>(),
        Some(AW::AIWalletNotPending { transferId: transfer, status: 4 })
    );
    let err = wallet.cancel(U256::from(99)).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_error::<AW::AIWalletUnknownTransfer>(),
        Some(AW::AIWalletUnknownTransfer { transferId: U256::from(99) })
    );
    script.release();
    let _ = busy;
    net.stop().await;
}
