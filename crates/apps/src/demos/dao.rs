//! `dao`: the whitepaper's AI-powered DAO. Each proposal (a description and an action paid from
//! the treasury) is judged approve or reject (Choice format) with the DAO's past proposals and
//! their outcomes as extra context; an approved action is executed in the callback, a rejected
//! one never is.

use alloy::{
    primitives::{Address, U256, keccak256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
};

use crate::{
    Answer, DemoEnv, Error, Outcome, Result,
    bindings::AIDao,
    env::{eth, event, rejected},
};

const NAME: &str = "dao";
/// What the demo puts in the treasury: 0.01 ETH.
const TREASURY: u64 = 10_000_000_000_000_000;
/// The proposals, in order: what the model reads, and the wei the action pays a fresh payee.
pub(crate) const PROPOSALS: [(&str, u64); 2] = [
    (
        "Pay a bug bounty of 0.001 ETH to the developer who found and fixed the treasury's \
         accounting bug.",
        1_000_000_000_000_000,
    ),
    (
        "Send 0.005 ETH to an anonymous account that promises to double it within a week.",
        5_000_000_000_000_000,
    ),
];

/// `ProposalStatus` values of the contract.
const APPROVED: u8 = 2;
const REJECTED: u8 = 3;
const NOT_JUDGED: u8 = 4;

pub(crate) async fn run(env: &DemoEnv) -> Result<Outcome> {
    env.say("Deploying AIDao");
    let dao =
        AIDao::deploy(env.provider().clone(), env.kernel().addresses().kernel, env.model_id())
            .await
            .map_err(|e| rejected("deploy AIDao", e))?;
    let address = *dao.address();
    env.say(format!("  AIDao at {address}"));
    let deposit = TransactionRequest::default().to(address).value(U256::from(TREASURY));
    let sent = env
        .provider()
        .send_transaction(deposit)
        .await
        .map_err(|e| rejected("fund the treasury", e))?;
    sent.get_receipt().await.map_err(|e| rejected("fund the treasury", e))?;
    env.say(format!("  treasury funded with {}", eth(U256::from(TREASURY))));

    let mut prompts = Vec::new();
    let mut answers = Vec::new();
    let mut effects = Vec::new();
    for (index, (description, value)) in PROPOSALS.iter().enumerate() {
        // A fresh payee per proposal, so its balance shows only what the action paid.
        let payee = Address::from_word(keccak256([address.as_slice(), &[index as u8]].concat()));
        let value = U256::from(*value);
        let fee = dao.judgingFee().call().await.map_err(|e| rejected("judgingFee", e))?;
        let history = dao.historyContext().call().await.map_err(|e| rejected("history", e))?;
        env.say(format!("Proposal {}: {description}", index + 1));
        env.say(format!("  action: pay {} to {payee} (kernel fee {})", eth(value), eth(fee)));
        if !history.is_empty() {
            env.say("  context sent with it:");
            for line in String::from_utf8_lossy(&history).lines() {
                env.say(format!("    {line}"));
            }
        }
        let call = dao.propose((*description).to_owned(), payee, value, Default::default());
        let receipt = env.send("propose", call.value(fee)).await?;
        let created = event::<AIDao::ProposalCreated>(&receipt)?;
        let (proposal_id, prompt) = (created.proposalId, created.promptId);
        env.say(format!("  proposal {proposal_id} judged by prompt {prompt}"));
        prompts.push(prompt);

        match env.answer(prompt).await? {
            Answer::Finalized(output) => {
                let approved = match U256::from_be_slice(&output) {
                    index if index == U256::ZERO => true,
                    index if index == U256::from(1) => false,
                    index => {
                        return Err(Error::Unexpected {
                            what: "answer",
                            detail: format!("choice index {index} of 2"),
                        });
                    }
                };
                let verdict = if approved { "approve" } else { "reject" };
                env.say(format!("Answer: {verdict}"));
                answers.push(verdict.to_owned());
                let proposal = read_proposal(&dao, proposal_id).await?;
                let paid = env.balance(payee).await?;
                let (expected, ok) = if approved {
                    let ok = proposal.status == APPROVED && proposal.executed && paid == value;
                    (format!("the action executed, {} paid to {payee}", eth(value)), ok)
                } else {
                    let ok = proposal.status == REJECTED && !proposal.executed && paid.is_zero();
                    ("the proposal rejected and nothing paid".to_owned(), ok)
                };
                if !ok {
                    return Err(Error::EffectMismatch {
                        demo: NAME,
                        expected,
                        found: format!(
                            "status {}, executed {}, {} at {payee}",
                            proposal.status,
                            proposal.executed,
                            eth(paid)
                        ),
                    });
                }
                let effect = if approved {
                    format!("proposal {proposal_id} executed: {} paid to {payee}", eth(paid))
                } else {
                    format!("proposal {proposal_id} rejected: not executed, {payee} unpaid")
                };
                env.say(format!("Effect: {effect}"));
                effects.push(effect);
            }
            Answer::Refunded => {
                env.say("No answer: the kernel refunded the fee; reclaiming it");
                env.send("reclaim", dao.reclaim(proposal_id)).await?;
                let proposal = read_proposal(&dao, proposal_id).await?;
                if proposal.status != NOT_JUDGED || !env.balance(payee).await?.is_zero() {
                    return Err(Error::EffectMismatch {
                        demo: NAME,
                        expected: "the proposal ended not judged, nothing paid".into(),
                        found: format!("status {}", proposal.status),
                    });
                }
                answers.push("(refunded)".to_owned());
                effects.push(format!("proposal {proposal_id} not judged: fee returned"));
            }
        }
    }
    let treasury = dao.treasury().call().await.map_err(|e| rejected("treasury", e))?;
    env.say(format!("Treasury left: {}", eth(treasury)));
    Ok(Outcome {
        contract: address,
        prompts,
        answer: answers.join(", "),
        effect: effects.join("; "),
    })
}

async fn read_proposal(
    dao: &AIDao::AIDaoInstance<DynProvider>,
    id: U256,
) -> Result<AIDao::Proposal> {
    dao.getProposal(id).call().await.map_err(|e| rejected("getProposal", e))
}
