//! Workers: registration checks, stake, unbonding, withdrawal, jail and unjail timing, and the
//! functions only the kernel (or owner) may call.

use aik_kernel::{
    Hardware, WorkerStatus,
    bindings::{ContextManager as CM, EAI, GPUManagement as GPU, PromptScheduler as PS},
};
use alloy::primitives::{Address, B256, U256};

use crate::fixture::{EAI as ONE_EAI, Env, Options, STAKE, assert_revert, hardware, test_model};

type Errors = GPU::GPUManagementErrors;

#[tokio::test]
async fn test_register_rejects_bad_workers() {
    let env = Env::with(Options { requesters: 1, ..Options::default() }).await;
    let newcomer = &env.requesters[0];
    env.owner.transfer_eai(newcomer.from(), U256::from(10 * STAKE)).await.unwrap();
    let min = U256::from(1_000 * ONE_EAI);
    let model = env.model;
    assert_revert(
        newcomer.register_worker(&hardware(), &[model], 1, min - U256::from(1)).await,
        Errors::GPUManagementInsufficientStake(GPU::GPUManagementInsufficientStake {
            have: min - U256::from(1),
            need: min,
        }),
    );
    assert_revert(
        newcomer.register_worker(&hardware(), &[model], 0, min).await,
        Errors::GPUManagementInvalidCapacity(GPU::GPUManagementInvalidCapacity { capacity: 0 }),
    );
    assert_revert(
        newcomer.register_worker(&hardware(), &[], 1, min).await,
        Errors::GPUManagementInvalidModelCount(GPU::GPUManagementInvalidModelCount {
            count: U256::ZERO,
        }),
    );
    assert_revert(
        newcomer.register_worker(&hardware(), &[model, model], 1, min).await,
        Errors::GPUManagementDuplicateModel(GPU::GPUManagementDuplicateModel { modelId: model }),
    );
    let small = Hardware { memory_mb: 100, ..hardware() };
    assert_revert(
        newcomer.register_worker(&small, &[model], 1, min).await,
        Errors::GPUManagementHardwareBelowMinimum(GPU::GPUManagementHardwareBelowMinimum {
            modelId: model,
            memoryMb: 100,
            minMemoryMb: 512,
        }),
    );
    let err = newcomer.register_worker(&hardware(), &[U256::from(42)], 1, min).await.unwrap_err();
    assert!(err.to_string().contains("ModelFileSystemUnknownModel"), "{err}");
    let retired = env
        .owner
        .register_model(&test_model(3, aik_kernel::SchedulingPolicy::FeePriority))
        .await
        .unwrap();
    env.owner.retire_model(retired).await.unwrap();
    assert_revert(
        newcomer.register_worker(&hardware(), &[retired], 1, min).await,
        Errors::GPUManagementModelRetired(GPU::GPUManagementModelRetired { modelId: retired }),
    );
    let existing = &env.workers[0];
    assert_revert(
        existing.register_worker(&hardware(), &[model], 1, min).await,
        Errors::GPUManagementAlreadyRegistered(GPU::GPUManagementAlreadyRegistered {
            worker: existing.from(),
        }),
    );
    for result in
        [newcomer.request_unstake().await, newcomer.withdraw().await, newcomer.unjail().await]
    {
        assert_revert(
            result,
            Errors::GPUManagementNotRegistered(GPU::GPUManagementNotRegistered {
                worker: newcomer.from(),
            }),
        );
    }
    // Capacity is bought with stake: each unit needs the minimum stake.
    assert_revert(
        newcomer.register_worker(&hardware(), &[model], 4, min).await,
        Errors::GPUManagementInsufficientStake(GPU::GPUManagementInsufficientStake {
            have: min,
            need: min * U256::from(4),
        }),
    );
    newcomer.register_worker(&hardware(), &[model], 1, min).await.unwrap();
    let info = newcomer.worker(newcomer.from()).await.unwrap();
    assert_eq!(
        (info.stake, info.status, info.capacity, info.busy),
        (1_000 * ONE_EAI, WorkerStatus::Active, 1, 0)
    );
    assert_eq!(env.owner.gpu().freeCount(model).call().await.unwrap(), U256::from(4));
    newcomer.add_stake(U256::from(5 * ONE_EAI)).await.unwrap();
    assert_eq!(newcomer.worker(newcomer.from()).await.unwrap().stake, 1_005 * ONE_EAI);
    assert_revert(
        newcomer.add_stake(U256::ZERO).await,
        Errors::GPUManagementZeroAmount(GPU::GPUManagementZeroAmount {}),
    );
}

#[tokio::test]
async fn test_unbond_and_withdraw_timing() {
    let env = Env::new().await;
    let worker = &env.workers[0];
    worker.request_unstake().await.unwrap();
    let until = env.now().await + 7 * 24 * 3600;
    let info = worker.worker(worker.from()).await.unwrap();
    assert_eq!((info.status, info.until), (WorkerStatus::Unbonding, until));
    assert!(!env.owner.gpu().isFree(env.model, worker.from()).call().await.unwrap());
    assert_revert(
        worker.request_unstake().await,
        Errors::GPUManagementWrongStatus(GPU::GPUManagementWrongStatus {
            worker: worker.from(),
            status: WorkerStatus::Unbonding as u8,
        }),
    );
    let err = worker.withdraw().await.unwrap_err();
    assert!(
        matches!(err.decode_revert::<Errors>(), Some(Errors::GPUManagementUnbondingNotOver(e)) if e.until == until),
        "{err}"
    );
    env.advance(7 * 24 * 3600 - 2).await;
    assert!(worker.withdraw().await.is_err(), "one second early");
    env.advance(2).await;
    let before = env.owner.eai_balance(worker.from()).await.unwrap();
    worker.withdraw().await.unwrap();
    assert_eq!(env.owner.eai_balance(worker.from()).await.unwrap() - before, U256::from(STAKE));
    let info = worker.worker(worker.from()).await.unwrap();
    assert_eq!((info.status, info.stake), (WorkerStatus::Exited, 0));
    assert_revert(
        worker.withdraw().await,
        Errors::GPUManagementWrongStatus(GPU::GPUManagementWrongStatus {
            worker: worker.from(),
            status: WorkerStatus::Exited as u8,
        }),
    );
    assert_revert(
        worker.add_stake(U256::from(1)).await,
        Errors::GPUManagementWrongStatus(GPU::GPUManagementWrongStatus {
            worker: worker.from(),
            status: WorkerStatus::Exited as u8,
        }),
    );
    // An exited worker may come back.
    worker.register_worker(&hardware(), &[env.model], 1, U256::from(STAKE)).await.unwrap();
    assert_eq!(worker.worker(worker.from()).await.unwrap().status, WorkerStatus::Active);
}

#[tokio::test]
async fn test_busy_worker_cannot_withdraw_and_still_answers_for_its_prompt() {
    let env = Env::new().await;
    let id = env.requesters[0].submit(&env.request("q")).await.unwrap().prompt_id;
    let members = env.committee(id).await;
    let member = env.worker(members[0]);
    member.request_unstake().await.unwrap();
    // The two others answer; the unbonding member stays silent.
    env.commit_reveal(id, &[None, Some(b"a"), Some(b"a")]).await;
    env.advance(7 * 24 * 3600).await;
    assert_revert(
        member.withdraw().await,
        Errors::GPUManagementWorkerBusy(GPU::GPUManagementWorkerBusy {
            worker: member.from(),
            busy: 1,
        }),
    );
    // The prompt's deadlines passed long ago and the unbonding member is absent: it is slashed
    // and its withdrawal pushed to the end of the jail term.
    env.owner.finalize(id, b"a").await.unwrap();
    let now = env.now().await;
    let info = member.worker(member.from()).await.unwrap();
    assert_eq!((info.status, info.until, info.busy), (WorkerStatus::Unbonding, now + 600, 0));
    assert_eq!(info.stake, STAKE - STAKE * 2 / 100);
    assert!(member.withdraw().await.is_err());
    env.advance(600).await;
    member.withdraw().await.unwrap();
}

#[tokio::test]
async fn test_jail_and_unjail_timing() {
    let env = Env::new().await;
    let id = env.requesters[0].submit(&env.request("q")).await.unwrap().prompt_id;
    let members = env.committee(id).await;
    env.commit_reveal(id, &[Some(b"a"), Some(b"a"), Some(b"b")]).await;
    env.owner.finalize(id, b"a").await.unwrap();
    let jailed = env.worker(members[2]);
    let until = env.now().await + 3600;
    assert_eq!(jailed.worker(jailed.from()).await.unwrap().until, until);
    let err = jailed.unjail().await.unwrap_err();
    assert!(
        matches!(err.decode_revert::<Errors>(), Some(Errors::GPUManagementStillJailed(e)) if e.until == until),
        "{err}"
    );
    assert_revert(
        env.worker(members[0]).unjail().await,
        Errors::GPUManagementWrongStatus(GPU::GPUManagementWrongStatus {
            worker: members[0],
            status: WorkerStatus::Active as u8,
        }),
    );
    env.advance(3600).await;
    // Raise the minimum above the slashed stake: unjailing needs a top-up first.
    let min = U256::from(STAKE);
    env.owner.set_staking_params(min, 7 * 24 * 3600, env.params.kernel.treasury).await.unwrap();
    assert_revert(
        jailed.unjail().await,
        Errors::GPUManagementInsufficientStake(GPU::GPUManagementInsufficientStake {
            have: U256::from(STAKE - STAKE / 10),
            need: min,
        }),
    );
    jailed.add_stake(U256::from(STAKE / 10)).await.unwrap();
    jailed.unjail().await.unwrap();
    let info = jailed.worker(jailed.from()).await.unwrap();
    assert_eq!((info.status, info.until, info.stake), (WorkerStatus::Active, 0, STAKE));
    assert!(env.owner.gpu().isFree(env.model, jailed.from()).call().await.unwrap());
    // A jailed worker may unbond; its withdrawal waits for the later of both ends.
    env.requesters[0].submit(&env.request("q2")).await.unwrap();
}

#[tokio::test]
async fn test_kernel_only_and_owner_only_functions() {
    let env = Env::new().await;
    let stranger = &env.requesters[0];
    let who = stranger.from();
    let gpu_refused =
        Some(Errors::GPUManagementUnauthorized(GPU::GPUManagementUnauthorized { caller: who }));
    let err = stranger.gpu().release(U256::from(1), vec![who]).from(who).call().await.unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<Errors>(), gpu_refused);
    let err = stranger.gpu().penalize(who, 100, 10).from(who).call().await.unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<Errors>(), gpu_refused);
    // A stranger can neither take a worker's stake as a challenge would nor give stake back.
    let worker = env.workers[0].from();
    let err = stranger.gpu().forfeit(worker, 10_000, 10).from(who).call().await.unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<Errors>(), gpu_refused);
    let err = stranger.gpu().restore(worker, U256::from(1), 0).from(who).call().await.unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<Errors>(), gpu_refused);
    let err = stranger
        .gpu()
        .drawCommittee(env.model, U256::from(3), B256::ZERO, 1, 0, vec![], false)
        .from(who)
        .call()
        .await
        .unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<Errors>(), gpu_refused);
    let err = stranger.gpu().freeze(1).from(who).call().await.unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<Errors>(), gpu_refused);
    let err = stranger.gpu().setKernel(who, who).from(who).call().await.unwrap_err();
    assert!(format!("{err}").contains("revert") || err.as_revert_data().is_some());
    let err = env.owner.gpu().setKernel(who, who).from(env.owner.from()).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_interface_error::<Errors>(),
        Some(Errors::GPUManagementKernelAlreadySet(GPU::GPUManagementKernelAlreadySet {}))
    );
    let context_refused = Some(CM::ContextManagerErrors::ContextManagerUnauthorized(
        CM::ContextManagerUnauthorized { caller: who },
    ));
    let err = stranger
        .context()
        .append(B256::ZERO, who, U256::from(1), B256::ZERO, B256::ZERO)
        .from(who)
        .call()
        .await
        .unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<CM::ContextManagerErrors>(), context_refused);
    // Nobody but the kernel (at a challenge's end) corrects a turn.
    let err = stranger
        .context()
        .correct(B256::ZERO, U256::from(1), B256::ZERO, B256::ZERO)
        .from(who)
        .call()
        .await
        .unwrap_err();
    assert_eq!(err.as_decoded_interface_error::<CM::ContextManagerErrors>(), context_refused);
    let err = stranger
        .scheduler()
        .schedule(U256::from(1), env.model, 3, 0, 0, who, U256::from(1))
        .from(who)
        .call()
        .await
        .unwrap_err();
    assert_eq!(
        err.as_decoded_interface_error::<PS::PromptSchedulerErrors>(),
        Some(PS::PromptSchedulerErrors::PromptSchedulerUnauthorized(
            PS::PromptSchedulerUnauthorized { caller: who }
        ))
    );
    let err = stranger
        .scheduler()
        .cancel(U256::from(1), U256::from(1), 3)
        .from(who)
        .call()
        .await
        .unwrap_err();
    assert!(err.as_decoded_interface_error::<PS::PromptSchedulerErrors>().is_some());
    let err = stranger.token().mint(who, U256::from(1)).from(who).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_interface_error::<EAI::EAIErrors>(),
        Some(EAI::EAIErrors::EAIUnauthorizedMinter(EAI::EAIUnauthorizedMinter { caller: who }))
    );
    let err = env.owner.token().setMinter(who).from(env.owner.from()).call().await.unwrap_err();
    assert_eq!(
        err.as_decoded_interface_error::<EAI::EAIErrors>(),
        Some(EAI::EAIErrors::EAIMinterAlreadySet(EAI::EAIMinterAlreadySet {
            minter: env.owner.addresses().kernel
        }))
    );
    // Owner-only parameters.
    let mut params = env.params.kernel.clone();
    assert!(
        stranger
            .set_params(params.clone())
            .await
            .unwrap_err()
            .to_string()
            .contains("OwnableUnauthorizedAccount")
    );
    params.minerShareBps = 9_000;
    params.verifierShareBps = 2_000;
    let err = env.owner.set_params(params.clone()).await.unwrap_err();
    assert!(err.to_string().contains("shares"), "{err}");
    params.minerShareBps = 6_000;
    params.commitWindow = 30;
    env.owner.set_params(params.clone()).await.unwrap();
    assert_eq!(env.owner.params().await.unwrap(), params);
    assert!(stranger.set_staking_params(U256::ZERO, 0, who).await.is_err());
    assert!(
        env.owner
            .set_staking_params(U256::ZERO, 0, Address::ZERO)
            .await
            .unwrap_err()
            .to_string()
            .contains("ZeroAddress")
    );
}

/// Store gateways: a registered worker publishes, replaces and withdraws its URL (events and
/// the view agree); an outsider cannot publish; a URL that is too long, not http(s), or carries
/// spaces, control or non-ASCII bytes is refused at the offending byte; the list a fetcher reads
/// keeps the order workers first published in and drops withdrawn URLs and workers that left.
#[tokio::test]
async fn test_attack_store_gateways_are_published_by_workers_only_and_kept_plain() {
    let env = Env::with(Options { requesters: 1, ..Options::default() }).await;
    let (a, b) = (&env.workers[0], &env.workers[1]);
    let outsider = &env.requesters[0];
    use aik_kernel::bindings::DecentralizedInference as DI;
    type KernelErrors = DI::DecentralizedInferenceErrors;
    let invalid = |at: u64| {
        KernelErrors::DecentralizedInferenceInvalidGateway(
            DI::DecentralizedInferenceInvalidGateway { at: U256::from(at) },
        )
    };
    assert_revert(
        outsider.set_store_gateway("http://evil.example").await,
        KernelErrors::DecentralizedInferenceNotAWorker(DI::DecentralizedInferenceNotAWorker {
            caller: outsider.from(),
        }),
    );
    let long = format!("https://{}", "a".repeat(193));
    assert_eq!(long.len(), 201);
    assert_revert(a.set_store_gateway(&long).await, invalid(201));
    a.set_store_gateway(&long[..200]).await.unwrap();
    for (url, at) in [
        ("ftp://x.example", 0),
        ("file:///etc/passwd", 0),
        ("http://", 0),
        ("javascript:alert(1)", 0),
        ("http://a.example/ b", 17),
        ("http://a.example\r\nX: y", 16),
        ("https://caf\u{e9}.example", 11),
    ] {
        assert_revert(b.set_store_gateway(url).await, invalid(at));
    }
    b.set_store_gateway("http://127.0.0.1:8081").await.unwrap();
    a.set_store_gateway("https://store-a.example").await.unwrap();
    assert_eq!(a.store_gateway(a.from()).await.unwrap(), "https://store-a.example");
    let logs = env.owner.kernel().StoreGatewaySet_filter().from_block(0).query().await.unwrap();
    let urls: Vec<_> = logs.iter().map(|(e, _)| (e.worker, e.url.as_str())).collect();
    assert_eq!(
        urls,
        [
            (a.from(), &long[..200]),
            (b.from(), "http://127.0.0.1:8081"),
            (a.from(), "https://store-a.example")
        ]
    );
    let listed = env.owner.store_gateways(0).await.unwrap();
    assert_eq!(
        listed,
        [
            (a.from(), "https://store-a.example".to_string()),
            (b.from(), "http://127.0.0.1:8081".to_string())
        ]
    );

    // Withdrawn, or gone with its stake: no longer listed.
    a.set_store_gateway("").await.unwrap();
    b.request_unstake().await.unwrap();
    env.advance(7 * 24 * 3600).await;
    b.withdraw().await.unwrap();
    assert!(env.owner.store_gateways(0).await.unwrap().is_empty());
}
