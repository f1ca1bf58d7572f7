//! Someone tries to break the Proof-of-Compute rules: stall the network with a prompt nobody can
//! run, slash honest workers for free, split a committee by serving the input to one member,
//! guess an answer and hide it when it loses, replay a commitment in the retry.

use aik_kernel::{
    DataSource, Failure, Penalty, PromptStatus, WorkerStatus,
    bindings::DecentralizedInference as DI, commitment, output_hash,
};
use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
};

use crate::fixture::{Env, STAKE, assert_revert, salt};

type Errors = DI::DecentralizedInferenceErrors;

/// The `WorkerPenalized` events of a prompt, as (worker, reason).
async fn penalties(env: &Env, prompt_id: U256) -> Vec<(Address, Penalty)> {
    let events = env.events::<DI::WorkerPenalized>(prompt_id).await;
    events
        .iter()
        .map(|e| (e.worker, Penalty::try_from(e.reason).expect("a known reason")))
        .collect()
}

/// Asserts every worker still has its whole stake and is active and idle.
async fn assert_untouched(env: &Env) {
    for worker in &env.workers {
        let info = env.owner.worker(worker.from()).await.unwrap();
        assert_eq!(
            (info.stake, info.status, info.busy),
            (STAKE, WorkerStatus::Active, 0),
            "{} kept its stake and was released",
            worker.from()
        );
    }
}

/// The stall and free-slash sequences: a prompt whose input is a storage digest nobody published
/// holds the whole committee (every later prompt queues); nobody can commit. Once the commit
/// deadline passes anyone — here a stranger passing no output — closes it as unavailable: nobody
/// is slashed or jailed, the requester pays the unavailable share, and the queue moves on.
#[tokio::test]
async fn test_attack_unpublished_input_neither_stalls_nor_slashes() {
    let env = Env::new().await;
    let (attacker, stranger) = (&env.requesters[0], &env.requesters[1]);
    let mut request = env.request("unused");
    request.input = DataSource::Storage { digest: B256::repeat_byte(0xde), length: 10 };
    request.max_tokens = 8;
    let stall = attacker.submit(&request).await.unwrap();
    assert!(stall.anchored, "the whole 3-worker network sits on it");
    let next = stranger.submit(&env.request("a real question")).await.unwrap();
    assert!(!next.anchored, "every worker is taken: the next prompt queues");
    let members = env.committee(stall.prompt_id).await;
    assert_eq!(members.len(), 3);

    let record = env.owner.prompt(stall.prompt_id).await.unwrap();
    // Before the commit deadline the outcome is open: nobody may close it yet.
    assert_revert(
        stranger.finalize(stall.prompt_id, b"").await,
        Errors::DecentralizedInferenceFinalizeTooEarly(
            DI::DecentralizedInferenceFinalizeTooEarly {
                promptId: stall.prompt_id,
                opensAt: U256::from(record.reveal_deadline + 1),
            },
        ),
    );
    env.advance(record.commit_deadline + 1 - env.now().await).await;
    let treasury = env.params.kernel.treasury;
    let treasury_before = env.owner.claimable(treasury).await.unwrap();
    stranger.finalize(stall.prompt_id, b"").await.unwrap();
    assert!(
        env.now().await <= record.commit_deadline + 2,
        "closed one commit window after assignment"
    );

    assert_eq!(env.owner.prompt(stall.prompt_id).await.unwrap().status, PromptStatus::Unavailable);
    assert_eq!(penalties(&env, stall.prompt_id).await, vec![], "nobody is penalized");
    let kept = stall.fee * U256::from(env.params.kernel.unavailableShareBps) / U256::from(10_000);
    assert_eq!(env.owner.refund_of(stall.prompt_id).await.unwrap(), stall.fee - kept);
    assert_eq!(env.owner.claimable(attacker.from()).await.unwrap(), stall.fee - kept);
    assert_eq!(
        env.owner.claimable(treasury).await.unwrap() - treasury_before,
        kept,
        "nobody committed: the kept share is the treasury's"
    );
    assert_eq!(env.owner.token().totalSupply().call().await.unwrap(), env.params.initial_supply);
    // The freed workers went straight to the queued prompt: anchored, drawn next block.
    assert!(env.owner.anchor_of(next.prompt_id).await.unwrap().is_some());
    let members = env.committee(next.prompt_id).await;
    let next_record = env.owner.prompt(next.prompt_id).await.unwrap();
    assert_eq!(next_record.status, PromptStatus::Committing);
    assert_eq!(members.len(), 3);
    for member in &members {
        let info = env.owner.worker(*member).await.unwrap();
        assert_eq!((info.stake, info.status, info.busy), (STAKE, WorkerStatus::Active, 1));
    }
    env.run_honest(next.prompt_id, b"answer").await;
    assert_untouched(&env).await;
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::ZERO);
}

/// An attacker serves the input to one member only: that member commits, the others cannot. A
/// minority of commitments proves nothing, so nobody is penalized; the committer is paid the
/// kept share for its work and the attacker gets the rest back.
#[tokio::test]
async fn test_attack_input_served_to_one_member_splits_nothing() {
    let env = Env::new().await;
    let requester = &env.requesters[0];
    let submitted = requester.submit(&env.request("served to one")).await.unwrap();
    let id = submitted.prompt_id;
    let members = env.committee(id).await;
    env.commit_reveal(id, &[None, Some(b"answer"), None]).await;
    // The commit deadline passed with one commitment of three: finalize opens at once.
    env.owner.finalize(id, b"").await.unwrap();
    assert_eq!(env.owner.prompt(id).await.unwrap().status, PromptStatus::Unavailable);
    assert_eq!(penalties(&env, id).await, vec![]);
    let kept =
        submitted.fee * U256::from(env.params.kernel.unavailableShareBps) / U256::from(10_000);
    assert_eq!(env.owner.claimable(members[1]).await.unwrap(), kept);
    assert_eq!(env.owner.claimable(members[0]).await.unwrap(), U256::ZERO);
    assert_eq!(env.owner.claimable(requester.from()).await.unwrap(), submitted.fee - kept);
    assert_eq!(
        env.owner.result(id).await.unwrap(),
        (PromptStatus::Unavailable, B256::ZERO, Address::ZERO)
    );
    assert_untouched(&env).await;
}

/// A member commits a guess on a Bool prompt at once, then withholds its reveal when the honest
/// reveals show it lost: that costs exactly what revealing the wrong answer costs.
#[tokio::test]
async fn test_attack_guess_commit_withheld_costs_as_much_as_a_wrong_answer() {
    let env = Env::new().await;
    let wrong_rate = U256::from(env.params.kernel.slashWrongBps);
    let mut bool_request = env.request("Is water wet?");
    bool_request.format = aik_kernel::OutputFormat::Bool;
    let yes = aik_kernel::OutputValue::Bool(true).encode();
    let no = aik_kernel::OutputValue::Bool(false).encode();

    let withheld = env.requesters[0].submit(&bool_request).await.unwrap().prompt_id;
    let members = env.committee(withheld).await;
    let guesser = members[2];
    for member in &members {
        let hash = output_hash(if *member == guesser { &no } else { &yes });
        env.worker(*member).commit(withheld, 0, hash, salt(*member)).await.unwrap();
    }
    for member in &members[..2] {
        env.worker(*member).reveal(withheld, salt(*member), &yes).await.unwrap();
    }
    let deadline = env.owner.prompt(withheld).await.unwrap().reveal_deadline;
    env.advance(deadline + 1 - env.now().await).await;
    env.owner.finalize(withheld, &yes).await.unwrap();
    assert_eq!(penalties(&env, withheld).await, vec![(guesser, Penalty::Withheld)]);
    let after_withholding = env.owner.worker(guesser).await.unwrap();
    let slashed = U256::from(STAKE) * wrong_rate / U256::from(10_000);
    assert_eq!(U256::from(after_withholding.stake), U256::from(STAKE) - slashed);
    assert_eq!(after_withholding.until, env.now().await + env.params.kernel.jailWrong);

    // The same guess revealed: the same loss, as a wrong answer.
    let env = Env::new().await;
    let revealed = env.requesters[0].submit(&bool_request).await.unwrap().prompt_id;
    let members = env.committee(revealed).await;
    env.commit_reveal(revealed, &[Some(&yes), Some(&yes), Some(&no)]).await;
    env.owner.finalize(revealed, &yes).await.unwrap();
    assert_eq!(penalties(&env, revealed).await, vec![(members[2], Penalty::Wrong)]);
    assert_eq!(env.owner.worker(members[2]).await.unwrap().stake, after_withholding.stake);
}

/// A commitment opens only in the attempt it was made for: a member of the retry committee
/// cannot reuse its first-attempt commitment (or anyone's) once the first reveals are public.
#[tokio::test]
async fn test_attack_retry_cannot_replay_a_first_attempt_commitment() {
    let env = Env::new().await;
    let id = env.requesters[0].submit(&env.request("Pick a number")).await.unwrap().prompt_id;
    let first = env.committee(id).await;
    env.commit_reveal(id, &[Some(b"1"), Some(b"2"), Some(b"3")]).await;
    env.owner.finalize(id, b"").await.unwrap();
    env.draw().await;
    let retry = env.owner.prompt(id).await.unwrap();
    assert_eq!((retry.status, retry.attempt), (PromptStatus::Committing, 1));
    let replayer = first[0];
    let old = commitment(id, 0, replayer, output_hash(b"1"), salt(replayer));
    env.worker(replayer).commit_raw(id, old).await.unwrap();
    let advance_to = retry.commit_deadline + 1 - env.now().await;
    env.advance(advance_to).await;
    assert_revert(
        env.worker(replayer).reveal(id, salt(replayer), b"1").await,
        Errors::DecentralizedInferenceRevealMismatch(DI::DecentralizedInferenceRevealMismatch {
            promptId: id,
            commitment: old,
            computed: commitment(id, 1, replayer, output_hash(b"1"), salt(replayer)),
        }),
    );
}

/// A committee that agrees on a canonical failure answer is paid like any other: the requester
/// pays for the work, and the answer is recorded (it is not a value of any format).
#[tokio::test]
async fn test_failure_answer_is_an_answer_the_committee_is_paid_for() {
    let env = Env::new().await;
    let submitted = env.requesters[0].submit(&env.request("too long")).await.unwrap();
    let id = submitted.prompt_id;
    let failure = Failure::ContextTooLong.encode();
    let members = env.committee(id).await;
    env.run_honest(id, &failure).await;
    let (status, hash, miner) = env.owner.result(id).await.unwrap();
    assert_eq!((status, hash, miner), (PromptStatus::Finalized, output_hash(&failure), members[0]));
    assert_eq!(penalties(&env, id).await, vec![]);
    assert!(env.owner.claimable(members[0]).await.unwrap() > U256::ZERO);
    assert_eq!(env.owner.refund_of(id).await.unwrap(), U256::ZERO, "the requester pays");
}

/// The reveal bound workers answer "output too long" against is the kernel's.
#[tokio::test]
async fn test_output_bound_is_the_protocol_constant() {
    let env = Env::new().await;
    let bound = env.owner.kernel().MAX_OUTPUT_BYTES().call().await.unwrap();
    assert_eq!(bound, U256::from(aik_kernel::MAX_OUTPUT_BYTES));
}

/// A colluding majority commits to a hash whose bytes nobody has, hoping to reveal it by
/// reference so that a callback can never be given its bytes. There is no reveal by reference
/// (the old `revealReference` selector reverts); without the bytes they cannot reveal, so they
/// are punished for withholding and the prompt goes to a retry instead of hanging.
#[tokio::test]
async fn test_attack_majority_cannot_reveal_bytes_nobody_has() {
    use alloy::{rpc::types::TransactionRequest, sol_types::SolValue};
    let env = Env::new().await;
    let id = env.requesters[0].submit(&env.request("callback me")).await.unwrap().prompt_id;
    let members = env.committee(id).await;
    let phantom = B256::repeat_byte(0x66);
    for member in &members[..2] {
        env.worker(*member).commit(id, 0, phantom, salt(*member)).await.unwrap();
    }
    env.worker(members[2]).commit(id, 0, output_hash(b"real"), salt(members[2])).await.unwrap();
    let selector = &alloy::primitives::keccak256("revealReference(uint256,bytes32,bytes32)")[..4];
    let mut data = selector.to_vec();
    data.extend((id, phantom, salt(members[0])).abi_encode_params());
    let by_reference = TransactionRequest::default()
        .from(members[0])
        .to(env.owner.addresses().kernel)
        .input(data.into());
    assert!(env.provider.call(by_reference).await.is_err(), "no reveal by reference");
    env.worker(members[2]).reveal(id, salt(members[2]), b"real").await.unwrap();
    let deadline = env.owner.prompt(id).await.unwrap().reveal_deadline;
    env.advance(deadline + 1 - env.now().await).await;
    env.owner.finalize(id, b"").await.unwrap();
    assert_eq!(
        penalties(&env, id).await,
        vec![(members[0], Penalty::Withheld), (members[1], Penalty::Withheld)]
    );
    let record = env.owner.prompt(id).await.unwrap();
    assert_eq!((record.status, record.attempt), (PromptStatus::Queued, 1), "retried, not stuck");
    let honest = env.owner.worker(members[2]).await.unwrap();
    assert_eq!((honest.stake, honest.status), (STAKE, WorkerStatus::Active));
}

/// The finalized event's (treasury pay, block reward) of a prompt.
async fn paid(env: &Env, prompt_id: U256) -> (U256, U256) {
    let events = env.events::<DI::PromptFinalized>(prompt_id).await;
    (events[0].treasuryPay, events[0].blockReward)
}

/// A requester whose own workers form the committee gets the miner and verifier shares back, so
/// the treasury share is all it pays. Cheap one-token prompts mint only what that share backs,
/// and move the halving schedule only by the part of a full reward they earned.
#[tokio::test]
async fn test_attack_self_dealt_prompts_cannot_farm_emission() {
    let env = Env::with(crate::fixture::Options {
        tweak: |p| p.kernel.halvingInterval = 3,
        ..Default::default()
    })
    .await;
    let rate = env.owner.kernel().EAI_PER_WEI().call().await.unwrap();
    assert_eq!(rate, env.params.eai_per_wei);
    let full = env.owner.kernel().currentBlockReward().call().await.unwrap();
    let mut cheap = env.request("farm");
    cheap.max_tokens = 1;
    let supply_before = env.owner.token().totalSupply().call().await.unwrap();
    let mut backed = U256::ZERO;
    for _ in 0..6 {
        let id = env.requesters[0].submit(&cheap).await.unwrap().prompt_id;
        env.run_honest(id, b"a").await;
        let (treasury_pay, reward) = paid(&env, id).await;
        assert_eq!(reward, treasury_pay * rate, "the reward is what the treasury share backs");
        assert!(reward < full);
        backed += treasury_pay * rate;
    }
    let minted = env.owner.token().totalSupply().call().await.unwrap() - supply_before;
    assert_eq!(minted, backed);
    // Six prompts with a halving interval of three: under a per-prompt count the reward would
    // have halved twice; these earned a fiftieth of a full reward each.
    assert_eq!(env.owner.kernel().currentBlockReward().call().await.unwrap(), full);

    // Prompts whose treasury share backs the full reward earn it and do move the schedule.
    for _ in 0..3 {
        let id = env.requesters[0].submit(&env.request("paid")).await.unwrap().prompt_id;
        env.run_honest(id, b"a").await;
        assert_eq!(paid(&env, id).await.1, full);
    }
    assert_eq!(env.owner.kernel().currentBlockReward().call().await.unwrap(), full / U256::from(2));
}

/// The kernel's cold half (views, parameters, cancelling, claiming) runs in `KernelExtension` by
/// DELEGATECALL. Called directly, the extension has no owner, escrow or balances: every function
/// that writes refuses the call, and its views show an empty kernel, never the real one's state.
#[tokio::test]
async fn test_attack_the_extension_called_directly_changes_nothing() {
    let env = Env::new().await;
    let prompt_id = env.requesters[0].submit(&env.request("hello")).await.unwrap().prompt_id;
    env.draw().await;
    env.run_honest(prompt_id, b"world").await;
    let worker = &env.workers[0];
    let kernel = env.owner.kernel();
    let extension = kernel.extension().call().await.unwrap();
    assert_ne!(extension, *kernel.address());
    let earned = kernel.claimable(worker.from()).call().await.unwrap();
    assert!(earned > U256::ZERO);

    let not_delegated = Errors::KernelExtensionNotDelegated(DI::KernelExtensionNotDelegated {});
    let direct =
        |client: &crate::fixture::Client| DI::new(extension, client.kernel().provider().clone());
    let owner_direct = direct(&env.owner);
    let err = owner_direct.setParams(env.params.kernel.clone()).call().await.unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<Errors>(), Some(not_delegated.clone()));
    let worker_direct = direct(worker);
    let err = worker_direct.claim(worker.from()).call().await.unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<Errors>(), Some(not_delegated.clone()));
    let err = worker_direct.cancelQueued(prompt_id).call().await.unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<Errors>(), Some(not_delegated.clone()));
    let bond = U256::from(env.params.kernel.challengeBond);
    let err = worker_direct.challenge(prompt_id).value(bond).call().await.unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<Errors>(), Some(not_delegated.clone()));
    let err = worker_direct.deliver(prompt_id, b"world".to_vec().into()).call().await.unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<Errors>(), Some(not_delegated.clone()));
    let err = worker_direct.setStoreGateway("http://a.example".into()).call().await.unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<Errors>(), Some(not_delegated));
    // The kernel's fallback is payable for the challenge bond; every other extension function, and
    // a plain transfer, still refuses a value.
    let worker_kernel = DI::new(*kernel.address(), worker.kernel().provider().clone());
    assert!(worker_kernel.claim(worker.from()).value(U256::from(1)).call().await.is_err());
    assert!(worker_kernel.getParams().value(U256::from(1)).call().await.is_err());
    let transfer = alloy::rpc::types::TransactionRequest::default()
        .to(*kernel.address())
        .value(U256::from(1))
        .from(worker.from());
    assert!(env.provider.call(transfer).await.is_err(), "a plain transfer is refused");

    // Its own storage is empty: no balances, no prompts, no parameters.
    assert_eq!(worker_direct.claimable(worker.from()).call().await.unwrap(), U256::ZERO);
    assert_eq!(worker_direct.getResult(prompt_id).call().await.unwrap().status, 0);
    assert_eq!(worker_direct.getParams().call().await.unwrap().commitWindow, 0);
    // Through the kernel the same functions read and move the real state.
    let status = kernel.getResult(prompt_id).call().await.unwrap().status;
    assert_eq!(PromptStatus::try_from(status).unwrap(), PromptStatus::Finalized);
    assert_eq!(kernel.getParams().call().await.unwrap(), env.params.kernel);
    let payee = Address::repeat_byte(0x77);
    worker.claim(payee).await.unwrap();
    assert_eq!(kernel.claimable(worker.from()).call().await.unwrap(), U256::ZERO);
    assert_eq!(env.eth(payee).await, earned);
}
