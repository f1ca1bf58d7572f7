//! `wallet`: the whitepaper's AI-powered wallet. The demo deposits, then makes two sends; each
//! asks `suspiciousTransaction` (Bool) with the sender's recent sends as extra context, holds the
//! amount while the kernel answers, and pays the recipient only if the answer is no (false).

use alloy::primitives::{Address, U256, keccak256};

use crate::{
    Answer, DemoEnv, Error, Outcome, Result,
    bindings::AIWallet,
    env::{eth, event, rejected},
};

const NAME: &str = "wallet";
/// What the demo deposits: 0.05 ETH.
const DEPOSIT: u64 = 50_000_000_000_000_000;
/// The two sends: a small one, then most of the balance.
const AMOUNTS: [u64; 2] = [2_000_000_000_000_000, 40_000_000_000_000_000];

// TransferStatus in AIWallet.sol.
const PAID: u8 = 2;
const FLAGGED: u8 = 3;
const RECLAIMED: u8 = 4;

pub(crate) async fn run(env: &DemoEnv) -> Result<Outcome> {
    env.say("Deploying AIWallet");
    let wallet =
        AIWallet::deploy(env.provider().clone(), env.kernel().addresses().kernel, env.model_id())
            .await
            .map_err(|e| rejected("deploy AIWallet", e))?;
    let address = *wallet.address();
    env.say(format!("  AIWallet at {address}"));
    env.say(format!("Depositing {}", eth(U256::from(DEPOSIT))));
    env.send("deposit", wallet.deposit().value(U256::from(DEPOSIT))).await?;
    let fee = wallet.sendFee().call().await.map_err(|e| rejected("sendFee", e))?;
    let user = env.account();

    let mut prompts = Vec::new();
    let mut verdicts = Vec::new();
    let mut effects = Vec::new();
    for (i, amount) in AMOUNTS.into_iter().map(U256::from).enumerate() {
        // A fresh recipient, so the payout is the only thing its balance can show.
        let to = Address::from_word(keccak256([address.as_slice(), &[i as u8]].concat()));
        let before = balance_of(&wallet, user).await?;
        let history = wallet.historyOf(user).call().await.map_err(|e| rejected("historyOf", e))?;
        env.say(format!("Sending {} to {to} (kernel fee {})", eth(amount), eth(fee)));
        for line in history.lines() {
            env.say(format!("  context: {line}"));
        }
        let receipt = env.send("send", wallet.send(to, amount).value(fee)).await?;
        let requested = event::<AIWallet::TransferRequested>(&receipt)?;
        let (transfer, prompt) = (requested.transferId, requested.promptId);
        prompts.push(prompt);
        // The send's own event says what was left: the amount is held before any answer.
        let held = before - requested.balanceLeft;
        env.say(format!(
            "  transfer {transfer}, prompt {prompt}: {} held, {} left in the balance",
            eth(held),
            eth(requested.balanceLeft)
        ));
        if held != amount {
            return Err(mismatch(format!("{} held", eth(amount)), format!("{} held", eth(held))));
        }

        let state = |transfer| {
            let wallet = wallet.clone();
            async move {
                wallet.getTransfer(transfer).call().await.map_err(|e| rejected("getTransfer", e))
            }
        };
        let (verdict, effect) = match env.answer(prompt).await? {
            Answer::Finalized(output) => {
                let suspicious = match U256::from_be_slice(&output) {
                    v if v == U256::ZERO && output.len() == 32 => false,
                    v if v == U256::from(1) && output.len() == 32 => true,
                    _ => {
                        return Err(Error::Unexpected {
                            what: "answer",
                            detail: format!("not a Bool: 0x{}", alloy::hex::encode(&output)),
                        });
                    }
                };
                env.say(format!("Answer: suspicious = {suspicious}"));
                let status = state(transfer).await?.status;
                let received = env.balance(to).await?;
                let after = balance_of(&wallet, user).await?;
                let found = format!(
                    "status {status}, {} at the recipient, sender's balance {}",
                    eth(received),
                    eth(after)
                );
                if suspicious {
                    if status != FLAGGED || received != U256::ZERO || after != before {
                        return Err(mismatch("refused, amount back to the sender".into(), found));
                    }
                    env.say(format!(
                        "Effect: refused; {} back in the sender's balance",
                        eth(amount)
                    ));
                    ("suspicious", format!("{} refused and returned", eth(amount)))
                } else {
                    if status != PAID || received != amount || after != before - amount {
                        return Err(mismatch(format!("{} paid to {to}", eth(amount)), found));
                    }
                    env.say(format!("Effect: {} paid to {to}", eth(received)));
                    ("not suspicious", format!("{} paid to {to}", eth(amount)))
                }
            }
            Answer::Refunded => {
                env.say("No answer: the kernel refunded the fee; reclaiming the held amount");
                env.send("reclaim", wallet.reclaim(transfer)).await?;
                let status = state(transfer).await?.status;
                let after = balance_of(&wallet, user).await?;
                if status != RECLAIMED || after != before + fee {
                    return Err(mismatch(
                        "the amount and the fee back in the sender's balance".into(),
                        format!("status {status}, balance {}", eth(after)),
                    ));
                }
                ("no answer", format!("{} and the fee returned", eth(amount)))
            }
        };
        verdicts.push(format!("send {}: {verdict}", i + 1));
        effects.push(effect);
    }
    Ok(Outcome {
        contract: address,
        prompts,
        answer: verdicts.join("; "),
        effect: format!(
            "{}; sender's wallet balance {}",
            effects.join("; "),
            eth(balance_of(&wallet, user).await?)
        ),
    })
}

async fn balance_of(
    wallet: &AIWallet::AIWalletInstance<alloy::providers::DynProvider>,
    account: Address,
) -> Result<U256> {
    wallet.balanceOf(account).call().await.map_err(|e| rejected("balanceOf", e))
}

fn mismatch(expected: String, found: String) -> Error {
    Error::EffectMismatch { demo: NAME, expected, found }
}
