//! Submitting prompts: every revert path of `infer`, `commit`, `reveal` and `finalize`, input by
//! storage reference, and fee refunds.

use aik_kernel::{
    ContentId, DataSource, OutputFormat, PromptStatus, SamplingSpec,
    bindings::DecentralizedInference as DI, output_hash,
};
use alloy::primitives::{Address, B256, I256, U256};

use crate::fixture::{Env, PRICE, assert_revert, salt};

type Errors = DI::DecentralizedInferenceErrors;

#[tokio::test]
async fn test_infer_rejects_bad_requests() {
    let env = Env::new().await;
    let requester = &env.requesters[0];
    let base = env.request("hello");
    let fee = U256::from(100 * PRICE);

    let mut r = base.clone();
    r.model_id = U256::from(9);
    assert_revert(
        requester.submit_paying(&r, fee).await,
        Errors::DecentralizedInferenceUnknownModel(DI::DecentralizedInferenceUnknownModel {
            modelId: U256::from(9),
        }),
    );
    assert_revert(
        requester.submit_paying(&base, fee - U256::from(1)).await,
        Errors::DecentralizedInferenceFeeTooLow(DI::DecentralizedInferenceFeeTooLow {
            paid: fee - U256::from(1),
            fee,
        }),
    );
    let mut r = base.clone();
    r.input = DataSource::Onchain(Vec::new());
    assert_revert(
        requester.submit_paying(&r, fee).await,
        Errors::DecentralizedInferenceEmptyInput(DI::DecentralizedInferenceEmptyInput {}),
    );
    let mut r = base.clone();
    r.input = DataSource::Onchain(vec![b'x'; 16 * 1024 + 1]);
    assert_revert(
        requester.submit_paying(&r, fee).await,
        Errors::DecentralizedInferenceInputTooLarge(DI::DecentralizedInferenceInputTooLarge {
            length: U256::from(16 * 1024 + 1),
            limit: U256::from(16 * 1024),
        }),
    );
    let mut r = base.clone();
    r.extra = Some(DataSource::Onchain(vec![b'x'; 16 * 1024 + 1]));
    assert!(
        requester.submit_paying(&r, fee).await.unwrap_err().to_string().contains("InputTooLarge")
    );
    let mut r = base.clone();
    r.max_tokens = 0;
    assert_revert(
        requester.submit_paying(&r, fee).await,
        Errors::DecentralizedInferenceZeroMaxTokens(DI::DecentralizedInferenceZeroMaxTokens {}),
    );
    let mut r = base.clone();
    r.max_tokens = 4097;
    assert_revert(
        requester.submit_paying(&r, U256::from(4097 * PRICE)).await,
        Errors::DecentralizedInferenceMaxTokensTooLarge(
            DI::DecentralizedInferenceMaxTokensTooLarge {
                maxTokens: U256::from(4097),
                limit: U256::from(4096),
            },
        ),
    );
    for (format, kind) in [
        (OutputFormat::Choice(vec!["only".into()]), 2u8),
        (OutputFormat::Choice(vec!["a".into(), String::new()]), 2),
        (OutputFormat::Uint { min: U256::from(5), max: U256::from(4) }, 3),
        (OutputFormat::Int { min: I256::ONE, max: I256::MINUS_ONE }, 4),
    ] {
        let mut r = base.clone();
        r.format = format;
        assert_revert(
            requester.submit_paying(&r, fee).await,
            Errors::DecentralizedInferenceInvalidFormatOptions(
                DI::DecentralizedInferenceInvalidFormatOptions { kind },
            ),
        );
    }
    // Options that are not even an encoding, and options on a format that takes none.
    let mut raw = base.to_sol();
    raw.format = DI::OutputFormat { kind: 2, options: vec![1, 2, 3].into() };
    let err = requester.kernel().infer(raw.clone()).value(fee).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_interface_error::<Errors>(),
        Some(Errors::DecentralizedInferenceInvalidFormatOptions(
            DI::DecentralizedInferenceInvalidFormatOptions { kind: 2 }
        ))
    );
    raw.format = DI::OutputFormat { kind: 1, options: vec![0].into() };
    let err = requester.kernel().infer(raw).value(fee).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_interface_error::<Errors>(),
        Some(Errors::DecentralizedInferenceInvalidFormatOptions(
            DI::DecentralizedInferenceInvalidFormatOptions { kind: 1 }
        ))
    );
    for sampling in [
        SamplingSpec::Sample { temperature_milli: 0, top_p_milli: 900, seed: 1 },
        SamplingSpec::Sample { temperature_milli: 2001, top_p_milli: 900, seed: 1 },
        SamplingSpec::Sample { temperature_milli: 700, top_p_milli: 1001, seed: 1 },
    ] {
        let mut r = base.clone();
        r.sampling = sampling;
        assert_revert(
            requester.submit_paying(&r, fee).await,
            Errors::DecentralizedInferenceInvalidSampling(
                DI::DecentralizedInferenceInvalidSampling {},
            ),
        );
    }
    let mut raw = base.to_sol();
    raw.sampling.seed = 7; // greedy with a seed: two meanings for one request
    let err = requester.kernel().infer(raw).value(fee).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_interface_error::<Errors>(),
        Some(Errors::DecentralizedInferenceInvalidSampling(
            DI::DecentralizedInferenceInvalidSampling {}
        ))
    );
    let mut r = base.clone();
    r.callback_gas_limit = 2_000_001;
    assert_revert(
        requester.submit_paying(&r, fee).await,
        Errors::DecentralizedInferenceCallbackGasTooHigh(
            DI::DecentralizedInferenceCallbackGasTooHigh {
                gasLimit: U256::from(2_000_001),
                limit: U256::from(2_000_000),
            },
        ),
    );
    let mut r = base.clone();
    r.fee_per_token = PRICE - 1;
    assert_revert(
        requester.submit_paying(&r, fee).await,
        Errors::DecentralizedInferenceBidTooLow(DI::DecentralizedInferenceBidTooLow {
            feePerToken: U256::from(PRICE - 1),
            price: U256::from(PRICE),
        }),
    );
    for bad in [DataSource::Storage { digest: B256::ZERO, length: 10 }] {
        let mut r = base.clone();
        r.input = bad;
        assert_revert(
            requester.submit_paying(&r, fee).await,
            Errors::DecentralizedInferenceInvalidDataRef(
                DI::DecentralizedInferenceInvalidDataRef {},
            ),
        );
    }
    let mut r = base.clone();
    r.input = DataSource::Storage { digest: B256::repeat_byte(1), length: 0 };
    assert_revert(
        requester.submit_paying(&r, fee).await,
        Errors::DecentralizedInferenceEmptyInput(DI::DecentralizedInferenceEmptyInput {}),
    );
    // Storage data beyond one IPFS block (its raw CID would name nothing IPFS serves).
    let mut r = base.clone();
    r.input = DataSource::Storage {
        digest: B256::repeat_byte(1),
        length: aik_kernel::MAX_STORAGE_BYTES + 1,
    };
    assert_revert(
        requester.submit_paying(&r, fee).await,
        Errors::DecentralizedInferenceInputTooLarge(DI::DecentralizedInferenceInputTooLarge {
            length: U256::from(aik_kernel::MAX_STORAGE_BYTES + 1),
            limit: U256::from(aik_kernel::MAX_STORAGE_BYTES),
        }),
    );
    r.input =
        DataSource::Storage { digest: B256::repeat_byte(1), length: aik_kernel::MAX_STORAGE_BYTES };
    let ok = requester.kernel().infer(r.to_sol()).value(fee).call().await;
    assert!(ok.is_ok(), "one full block is allowed: {ok:?}");
    assert_eq!(
        requester.kernel().MAX_STORAGE_BYTES().call().await.unwrap(),
        aik_kernel::MAX_STORAGE_BYTES,
        "the protocol crate's bound is the kernel's"
    );
    assert_eq!(aik_kernel::MAX_STORAGE_BYTES, aik_store::unixfs::CHUNK_SIZE as u64, "one block");
    let mut raw = base.to_sol();
    raw.input.digest = B256::repeat_byte(1); // onchain bytes with a digest too
    let err = requester.kernel().infer(raw).value(fee).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_interface_error::<Errors>(),
        Some(Errors::DecentralizedInferenceInvalidDataRef(
            DI::DecentralizedInferenceInvalidDataRef {}
        ))
    );

    env.owner.retire_model(env.model).await.unwrap();
    assert_revert(
        requester.submit_paying(&base, fee).await,
        Errors::DecentralizedInferenceModelRetired(DI::DecentralizedInferenceModelRetired {
            modelId: env.model,
        }),
    );
    assert_revert(
        requester.estimate_fee(env.model, 10, 0).await,
        Errors::DecentralizedInferenceModelRetired(DI::DecentralizedInferenceModelRetired {
            modelId: env.model,
        }),
    );
    let (submitted, _) = env.owner.kernel().counts().call().await.unwrap().into();
    assert_eq!(submitted, U256::ZERO, "nothing was accepted");
}

#[tokio::test]
async fn test_infer_storage_input_and_excess_refund() {
    let env = Env::new().await;
    let requester = &env.requesters[0];
    assert_eq!(requester.estimate_fee(env.model, 100, 0).await.unwrap(), U256::from(100 * PRICE));
    let content = b"a long document kept in IPFS".to_vec();
    let id = ContentId::of(&content);
    let mut request = env.request("unused");
    request.input =
        DataSource::Storage { digest: (*id.digest()).into(), length: content.len() as u64 };
    request.extra = Some(DataSource::Onchain(b"extra".to_vec()));
    request.fee_per_token = 2 * PRICE; // a higher bid is charged in full
    let before = env.eth(requester.from()).await;
    let submitted = requester.submit_paying(&request, U256::from(1_000 * PRICE)).await.unwrap();
    assert_eq!(submitted.fee, U256::from(200 * PRICE));
    let receipt = &submitted.receipt;
    let gas_cost = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    assert_eq!(
        before - env.eth(requester.from()).await,
        submitted.fee + gas_cost,
        "the excess came back"
    );
    let record = env.owner.prompt(submitted.prompt_id).await.unwrap();
    assert_eq!(record.input_hash, *id.digest());
    assert_eq!(record.fee, 200 * PRICE);
    assert_eq!(record.status, PromptStatus::Queued, "awaits its committee draw");
    let data = receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<DI::PromptData>().ok())
        .unwrap()
        .inner
        .data;
    assert_eq!(data.inputHash, id.digest());
    assert_eq!(data.extraHash, output_hash(b"extra"));
    assert_eq!(data.request.input.kind, 1);
    assert_eq!(env.owner.kernel().openEscrow().call().await.unwrap(), U256::from(200 * PRICE));
}

#[tokio::test]
async fn test_commit_reveal_finalize_revert_paths() {
    let env = Env::new().await;
    let id = env.requesters[0].submit(&env.request("hello")).await.unwrap().prompt_id;
    let members = env.committee(id).await;
    let (a, b, c) = (env.worker(members[0]), env.worker(members[1]), env.worker(members[2]));
    let outsider = &env.requesters[1];
    let hash = output_hash(b"out");

    assert_revert(
        outsider.commit(id, 0, hash, salt(outsider.from())).await,
        Errors::DecentralizedInferenceNotAssigned(DI::DecentralizedInferenceNotAssigned {
            promptId: id,
            caller: outsider.from(),
        }),
    );
    assert_revert(
        a.commit_raw(id, B256::ZERO).await,
        Errors::DecentralizedInferenceZeroCommitment(DI::DecentralizedInferenceZeroCommitment {}),
    );
    assert_revert(
        a.commit(U256::from(99), 0, hash, salt(a.from())).await,
        Errors::DecentralizedInferenceUnknownPrompt(DI::DecentralizedInferenceUnknownPrompt {
            promptId: U256::from(99),
        }),
    );
    a.commit(id, 0, hash, salt(a.from())).await.unwrap();
    assert_revert(
        a.commit(id, 0, hash, salt(a.from())).await,
        Errors::DecentralizedInferenceAlreadyCommitted(
            DI::DecentralizedInferenceAlreadyCommitted { promptId: id, worker: a.from() },
        ),
    );
    let record = env.owner.prompt(id).await.unwrap();
    assert_revert(
        a.reveal(id, salt(a.from()), b"out").await,
        Errors::DecentralizedInferenceRevealNotOpen(DI::DecentralizedInferenceRevealNotOpen {
            promptId: id,
            opensAt: U256::from(record.commit_deadline + 1),
        }),
    );
    assert_revert(
        env.owner.finalize(id, b"out").await,
        Errors::DecentralizedInferenceFinalizeTooEarly(
            DI::DecentralizedInferenceFinalizeTooEarly {
                promptId: id,
                opensAt: U256::from(record.reveal_deadline + 1),
            },
        ),
    );
    b.commit(id, 0, hash, salt(b.from())).await.unwrap();
    env.advance(record.commit_deadline + 1 - env.now().await).await;
    let err = c.commit(id, 0, hash, salt(c.from())).await.unwrap_err();
    let Some(Errors::DecentralizedInferenceCommitDeadlinePassed(e)) = err.decode_revert::<Errors>()
    else {
        panic!("expected CommitDeadlinePassed, got {err}");
    };
    assert_eq!((e.promptId, e.deadline), (id, U256::from(record.commit_deadline)));
    assert_revert(
        c.reveal(id, salt(c.from()), b"out").await,
        Errors::DecentralizedInferenceNotCommitted(DI::DecentralizedInferenceNotCommitted {
            promptId: id,
            worker: c.from(),
        }),
    );
    let too_big = vec![0u8; aik_kernel::MAX_OUTPUT_BYTES + 1];
    assert_revert(
        a.reveal(id, salt(a.from()), &too_big).await,
        Errors::DecentralizedInferenceOutputTooLarge(DI::DecentralizedInferenceOutputTooLarge {
            length: U256::from(too_big.len()),
            limit: U256::from(16 * 1024),
        }),
    );
    a.reveal(id, salt(a.from()), b"out").await.unwrap();
    assert_revert(
        a.reveal(id, salt(a.from()), b"out").await,
        Errors::DecentralizedInferenceAlreadyRevealed(DI::DecentralizedInferenceAlreadyRevealed {
            promptId: id,
            worker: a.from(),
        }),
    );
    let deadline = env.owner.prompt(id).await.unwrap().reveal_deadline;
    env.advance(deadline + 1 - env.now().await).await;
    let err = b.reveal(id, salt(b.from()), b"out").await.unwrap_err();
    assert!(
        matches!(err.decode_revert::<Errors>(), Some(Errors::DecentralizedInferenceRevealDeadlinePassed(e)) if e.deadline == U256::from(deadline)),
        "{err}"
    );
    // One reveal of three is no quorum; the member that never committed (absent) and the one
    // that committed but never revealed (withheld) are jailed, so the retry waits in the queue.
    env.owner.finalize(id, b"").await.unwrap();
    let record = env.owner.prompt(id).await.unwrap();
    assert_eq!((record.status, record.attempt), (PromptStatus::Queued, 1));
    assert_eq!(env.owner.result(id).await.unwrap().1, B256::ZERO);
    assert_revert(
        env.owner
            .kernel()
            .onCommitteeAssigned(id, vec![Address::ZERO])
            .from(env.owner.from())
            .call()
            .await
            .map_err(|e| aik_kernel::Error::Rejected {
                action: "x",
                reason: String::new(),
                revert_data: e.as_revert_data(),
            }),
        Errors::DecentralizedInferenceUnauthorized(DI::DecentralizedInferenceUnauthorized {
            caller: env.owner.from(),
        }),
    );
}
