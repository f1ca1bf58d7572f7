//! Deploying and wiring a kernel.

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
};
use serde::Serialize;

use crate::{
    Error, Result,
    bindings::{
        ContextManager, DecentralizedInference, DecentralizedInference::KernelParams, EAI,
        GPUManagement, KernelTimelock, ModelFileSystem, PromptScheduler,
    },
    tx::send,
};

/// One EAI in its smallest unit (18 decimals).
const EAI_UNIT: u128 = 1_000_000_000_000_000_000;

/// Everything a deployment is configured with. [`DeployParams::dev`] gives the defaults of a
/// local network; production changes what it needs.
#[derive(Clone, Debug)]
pub struct DeployParams {
    /// Sends every deployment transaction and owns every contract (so it can wire them).
    pub owner: Address,
    /// Receives the initial EAI allocation.
    pub initial_holder: Address,
    /// The initial allocation, in EAI wei.
    pub initial_supply: U256,
    /// Cap on the total EAI supply, block rewards included.
    pub supply_cap: U256,
    /// Least stake a worker must keep, in EAI wei.
    pub min_stake: U256,
    /// Seconds between a worker's unstake request and its withdrawal.
    pub unbonding_period: u64,
    /// Kernel parameters (windows, shares, slashing, rewards, limits, treasury).
    pub kernel: KernelParams,
    /// EAI wei a block reward may mint per wei of fee that reached the treasury (fixed for the
    /// deployment's life): bounds emission by what requesters pay.
    pub eai_per_wei: U256,
    /// Where committee randomness comes from: the zero address for the built-in block hashes
    /// (BLOCKHASH, and EIP-2935 history where the chain has it), or an `IRandomness` contract (a
    /// VRF or beacon relay).
    pub randomness: Address,
    /// Seconds a `KernelTimelock` holds every owner action (parameters, models, wiring) before it
    /// can execute; the timelock then owns every contract, and the owner account proposes and
    /// executes through it. None: the owner account acts directly.
    pub timelock_delay: Option<u64>,
}

impl DeployParams {
    /// Defaults for a local network owned by `owner`, who also holds the initial allocation and
    /// is the treasury: 100M EAI minted of a 1B cap, 1,000 EAI minimum stake, 7-day unbonding;
    /// 120 s to commit and 120 s to reveal; fee split 50% miner / 30% verifiers / 20% treasury;
    /// wrong outputs lose 10% of stake and sit out an hour, absent members 2% and ten minutes;
    /// an unavailable prompt (fewer than a quorum committed) keeps 20% of its fee for the
    /// committers; a finalized answer can be challenged for two minutes with a 0.01 ETH bond, and
    /// a majority it proves wrong loses half its stake and sits out a week, half of that stake
    /// (after the wronged minority is made whole) going to the challenger; block reward 10 EAI, halving every 100,000 fully rewarded prompts, and at most
    /// 1 EAI per gwei of treasury share (so a prompt needs 10 gwei in the treasury's share, a
    /// 50-gwei fee, for the full reward); 16 KiB onchain input.
    pub fn dev(owner: Address) -> Self {
        Self {
            owner,
            initial_holder: owner,
            initial_supply: U256::from(100_000_000u128 * EAI_UNIT),
            supply_cap: U256::from(1_000_000_000u128 * EAI_UNIT),
            min_stake: U256::from(1_000u128 * EAI_UNIT),
            unbonding_period: 7 * 24 * 3600,
            kernel: KernelParams {
                commitWindow: 120,
                revealWindow: 120,
                queueTimeout: 600,
                minerShareBps: 5_000,
                verifierShareBps: 3_000,
                unavailableShareBps: 2_000,
                slashWrongBps: 1_000,
                slashAbsentBps: 200,
                jailWrong: 3_600,
                jailAbsent: 600,
                initialReward: 10 * EAI_UNIT,
                halvingInterval: 100_000,
                maxInputBytes: 16 * 1024,
                maxTokens: 4_096,
                maxCallbackGas: 2_000_000,
                pumpOnFinalize: 2,
                // The dev chain's first base fee; an idle chain's falls far below it.
                gasPrice: 1_000_000_000,
                // A finalization with k = 3 takes about 250,000 gas, more when it assigns queued
                // prompts.
                finalizeGas: 350_000,
                treasury: owner,
                challengeWindow: 120,
                challengeBond: 10_000_000_000_000_000,
                slashChallengedBps: 5_000,
                challengeRewardBps: 5_000,
                jailChallenged: 7 * 24 * 3600,
            },
            eai_per_wei: U256::from(1_000_000_000u64),
            randomness: Address::ZERO,
            timelock_delay: None,
        }
    }
}

/// Where a deployed kernel's contracts live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelAddresses {
    /// EAI token.
    pub token: Address,
    /// ModelFileSystem.
    pub models: Address,
    /// GPUManagement.
    pub gpu: Address,
    /// ContextManager.
    pub context: Address,
    /// PromptScheduler.
    pub scheduler: Address,
    /// DecentralizedInference, the front door (`IAIKernel`).
    pub kernel: Address,
    /// The `KernelTimelock` that owns every contract, if the deployment has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timelock: Option<Address>,
}

/// Deploys EAI and the five kernel contracts from `params.owner`, then wires them: the kernel
/// becomes EAI's minter and the kernel of GPUManagement, ContextManager and PromptScheduler.
/// Ten transactions.
pub async fn deploy_kernel<P: Provider + Clone>(
    provider: &P,
    params: &DeployParams,
) -> Result<KernelAddresses> {
    let owner = params.owner;
    let deployed = |receipt: alloy::rpc::types::TransactionReceipt, what: &'static str| {
        receipt.contract_address.ok_or(Error::MissingEvent {
            action: what,
            event: "contract creation",
            tx: receipt.transaction_hash,
        })
    };
    let token = deployed(
        send(
            EAI::deploy_builder(
                provider.clone(),
                owner,
                params.initial_holder,
                params.initial_supply,
                params.supply_cap,
            )
            .from(owner),
            "deploy EAI",
        )
        .await?,
        "deploy EAI",
    )?;
    let models = deployed(
        send(
            ModelFileSystem::deploy_builder(provider.clone(), owner).from(owner),
            "deploy ModelFileSystem",
        )
        .await?,
        "deploy ModelFileSystem",
    )?;
    let gpu = deployed(
        send(
            GPUManagement::deploy_builder(
                provider.clone(),
                owner,
                token,
                models,
                params.kernel.treasury,
                params.min_stake,
                params.unbonding_period,
            )
            .from(owner),
            "deploy GPUManagement",
        )
        .await?,
        "deploy GPUManagement",
    )?;
    let context = deployed(
        send(
            ContextManager::deploy_builder(provider.clone(), owner).from(owner),
            "deploy ContextManager",
        )
        .await?,
        "deploy ContextManager",
    )?;
    let scheduler = deployed(
        send(
            PromptScheduler::deploy_builder(
                provider.clone(),
                owner,
                gpu,
                models,
                params.randomness,
            )
            .from(owner),
            "deploy PromptScheduler",
        )
        .await?,
        "deploy PromptScheduler",
    )?;
    let kernel = deployed(
        send(
            DecentralizedInference::deploy_builder(
                provider.clone(),
                owner,
                models,
                gpu,
                context,
                scheduler,
                token,
                params.kernel.clone(),
                params.eai_per_wei,
            )
            .from(owner),
            "deploy DecentralizedInference",
        )
        .await?,
        "deploy DecentralizedInference",
    )?;

    send(EAI::new(token, provider.clone()).setMinter(kernel).from(owner), "EAI.setMinter").await?;
    send(
        GPUManagement::new(gpu, provider.clone()).setKernel(kernel, scheduler).from(owner),
        "GPUManagement.setKernel",
    )
    .await?;
    send(
        ContextManager::new(context, provider.clone()).setKernel(kernel).from(owner),
        "ContextManager.setKernel",
    )
    .await?;
    send(
        PromptScheduler::new(scheduler, provider.clone()).setKernel(kernel).from(owner),
        "PromptScheduler.setKernel",
    )
    .await?;
    let addresses =
        KernelAddresses { token, models, gpu, context, scheduler, kernel, timelock: None };
    tracing::info!(?addresses, "kernel deployed");
    Ok(addresses)
}

alloy::sol! {
    /// The one call every kernel contract shares as an OpenZeppelin `Ownable`.
    #[sol(rpc)]
    interface IOwnable {
        function transferOwnership(address newOwner) external;
    }
}

/// Deploys a `KernelTimelock` with `delay` seconds (the owner its only proposer and executor, no
/// admin) and hands it the ownership of EAI and the five kernel contracts; returns the
/// addresses with the timelock. Seven transactions, sent from `owner`.
pub async fn install_timelock<P: Provider + Clone>(
    provider: &P,
    addresses: KernelAddresses,
    owner: Address,
    delay: u64,
) -> Result<KernelAddresses> {
    let receipt = send(
        KernelTimelock::deploy_builder(
            provider.clone(),
            U256::from(delay),
            vec![owner],
            vec![owner],
        )
        .from(owner),
        "deploy KernelTimelock",
    )
    .await?;
    let timelock = receipt.contract_address.ok_or(Error::MissingEvent {
        action: "deploy KernelTimelock",
        event: "contract creation",
        tx: receipt.transaction_hash,
    })?;
    let owned = [
        (addresses.token, "EAI.transferOwnership"),
        (addresses.models, "ModelFileSystem.transferOwnership"),
        (addresses.gpu, "GPUManagement.transferOwnership"),
        (addresses.context, "ContextManager.transferOwnership"),
        (addresses.scheduler, "PromptScheduler.transferOwnership"),
        (addresses.kernel, "DecentralizedInference.transferOwnership"),
    ];
    for (contract, action) in owned {
        let ownable = IOwnable::new(contract, provider.clone());
        send(ownable.transferOwnership(timelock).from(owner), action).await?;
    }
    tracing::info!(%timelock, delay, "kernel handed to its timelock");
    Ok(KernelAddresses { timelock: Some(timelock), ..addresses })
}
