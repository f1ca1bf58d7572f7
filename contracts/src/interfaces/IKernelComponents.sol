// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice How a model's queue orders prompts waiting for free workers.
/// @dev FeePriority: highest fee per token first, first come first served on ties. RoundRobin: the queue
/// serves requesting accounts in turn, one prompt each, so one account's flood cannot starve another.
enum SchedulingPolicy {
    FeePriority,
    RoundRobin
}

/// @notice What the kernel needs of a model on every prompt, packed in one storage slot.
/// @param pricePerToken Native coin per output token (the fee is price * maxTokens).
/// @param committeeSize Workers per committee (k).
/// @param policy Queue policy.
/// @param minMemoryMb Least GPU memory a worker must declare to serve the model.
/// @param retired True once the owner retired the model: no new prompts, no new workers.
struct ModelTerms {
    uint128 pricePerToken;
    uint8 committeeSize;
    SchedulingPolicy policy;
    uint64 minMemoryMb;
    bool retired;
}

/// @notice A worker's life: Active (eligible), Jailed until a time, Unbonding until a time, Exited.
enum WorkerStatus {
    None,
    Active,
    Jailed,
    Unbonding,
    Exited
}

/// @title IModelFileSystem
/// @notice The part of the model registry the other kernel contracts read.
interface IModelFileSystem {
    /// @notice The model's terms; reverts with ModelFileSystemUnknownModel for an unknown id.
    function modelTerms(uint256 modelId) external view returns (ModelTerms memory);
}

/// @title IGPUManagement
/// @notice The part of the worker registry the scheduler and the kernel use.
interface IGPUManagement {
    /// @notice Number of workers free to take a prompt of `modelId`.
    function freeCount(uint256 modelId) external view returns (uint256);

    /// @notice Occupies one capacity slot of each worker at the given positions of the model's free set
    /// (positions are read before any removal). Only the scheduler.
    function occupy(uint256 modelId, uint256[] calldata positions) external returns (address[] memory workers);

    /// @notice Frees one capacity slot of each worker. Only the kernel.
    function release(address[] calldata workers) external;

    /// @notice Slashes `slashBps` of the worker's stake to the treasury and jails it for `jailFor` seconds.
    /// Only the kernel.
    function penalize(address worker, uint16 slashBps, uint64 jailFor) external returns (uint256 slashed);
}

/// @title IContextManager
/// @notice The part of the context manager the kernel uses.
interface IContextManager {
    /// @notice What a prompt submitted now would see: finalized turns, system prompt revision, window.
    function snapshot(bytes32 topicId) external view returns (uint64 turns, uint32 systemPromptRevision, uint16 window);

    /// @notice Appends a finalized prompt as the topic's next turn and advances the head hash. Only the kernel.
    function append(bytes32 topicId, address account, uint256 promptId, bytes32 inputHash, bytes32 outputHash)
        external;
}

/// @title IPromptScheduler
/// @notice The part of the scheduler the kernel uses.
interface IPromptScheduler {
    /// @notice Draws a committee now if the queue is empty and k workers are free; else queues the prompt.
    /// Only the kernel.
    /// @return committee The committee, or empty if the prompt was queued (it is then assigned later through
    /// {IKernelAssignments-onCommitteeAssigned}).
    function schedule(
        uint256 promptId,
        uint256 modelId,
        uint8 committeeSize,
        uint8 attempt,
        SchedulingPolicy policy,
        address requester,
        uint256 feePerToken
    ) external returns (address[] memory committee);

    /// @notice Removes a queued prompt (lazily). Only the kernel.
    function cancel(uint256 promptId) external;

    /// @notice Assigns up to `max` queued prompts of `modelId` while enough workers are free.
    function pump(uint256 modelId, uint256 max) external returns (uint256 assigned);
}

/// @title IKernelAssignments
/// @notice How the scheduler hands a committee for a queued prompt to the kernel.
interface IKernelAssignments {
    /// @notice Starts the commit phase of a queued prompt with `committee`. Only the scheduler.
    function onCommitteeAssigned(uint256 promptId, address[] calldata committee) external;
}

/// @title IEAIMinter
/// @notice The part of the EAI token the kernel uses to pay block rewards.
interface IEAIMinter {
    /// @notice Mints block rewards; only the kernel.
    function mint(address to, uint256 amount) external;

    /// @notice The supply cap.
    function cap() external view returns (uint256);

    /// @notice The current supply.
    function totalSupply() external view returns (uint256);
}
