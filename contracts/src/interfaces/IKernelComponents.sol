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

/// @notice A worker's life: Active (eligible), Jailed until a time, Unbonding until a time, Exited, or Paused (out
/// of the pool by its own choice, without penalty, until it resumes).
enum WorkerStatus {
    None,
    Active,
    Jailed,
    Unbonding,
    Exited,
    Paused
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
    /// @notice Workers free to take a prompt of `modelId` now (Active, busy below capacity) and their free capacity
    /// slots.
    function availability(uint256 modelId) external view returns (uint256 workers, uint256 seats);

    /// @notice Draws a committee of `committeeSize` distinct workers for `modelId` from the pool as it stood at the end
    /// of block `anchor` (pool changes of later blocks wait in order), each worker's inclusion probability
    /// proportional to its free stake-backed capacity slots, and occupies one capacity slot of each. Workers in
    /// `excluded` are left out when enough others remain, or always when `strict`. Returns an empty array when the pool
    /// at `anchor` has too few workers (too few besides `excluded` when `strict`). Afterwards the pool stays frozen at
    /// `nextAnchor` (the next prompt awaiting its draw; 0 when none). Only the scheduler.
    /// @return ready False when more logged pool changes up to `anchor` remained than one call applies (it applied
    /// some and drew nothing: call again).
    function drawCommittee(
        uint256 modelId,
        uint256 committeeSize,
        bytes32 seed,
        uint64 anchor,
        uint64 nextAnchor,
        address[] calldata excluded,
        bool strict
    ) external returns (bool ready, address[] memory committee);

    /// @notice Freezes the pool at block `anchor`: changes made in later blocks wait until the prompts anchored up to
    /// then are drawn. Only the scheduler, when a prompt is anchored while none awaits its draw; `anchor` 0 unfreezes
    /// (the last prompts awaiting their draw were cancelled) and applies what waited.
    function freeze(uint64 anchor) external;

    /// @notice Frees one capacity slot of each worker of a committee for `modelId`. Only the kernel.
    function release(uint256 modelId, address[] calldata workers) external;

    /// @notice Slashes `slashBps` of the worker's stake to the treasury and jails it for `jailFor` seconds.
    /// Only the kernel.
    /// @return slashed The stake slashed.
    /// @return jailedUntil The end of the worker's jail term now (zero when it is not jailed: it is unbonding or exited).
    function penalize(address worker, uint16 slashBps, uint64 jailFor)
        external
        returns (uint256 slashed, uint64 jailedUntil);

    /// @notice {penalize}, but the slashed stake goes to the kernel, which pays it out (a challenge's rewards).
    /// Only the kernel.
    function forfeit(address worker, uint16 slashBps, uint64 jailFor) external returns (uint256 slashed);

    /// @notice Gives a worker back `amount` of stake, which the kernel transferred to this contract beforehand, and ends
    /// its jail if the term is still the one that ended at `jailedUntil` and the stake backs its capacity (to an exited
    /// worker the amount is sent). Only the kernel, when a challenge proves a penalized worker right.
    function restore(address worker, uint256 amount, uint64 jailedUntil) external;
}

/// @title IRandomness
/// @notice Where committee randomness comes from: a value for a block that nobody could know before that block was
/// produced. The scheduler reads block hashes itself; a chain with a VRF or a drand beacon plugs in its own source.
/// A draw that finds zero for its anchor anchors the prompt again to its own block, so a source must have the value
/// of a block by the time the next block is drawn in (a relay that lags makes prompts wait), and must not revert.
interface IRandomness {
    /// @notice The random value of block `blockNumber`, or zero when it is not available (not published yet, or too
    /// old for the source to remember).
    function randomness(uint256 blockNumber) external view returns (bytes32);
}

/// @title IContextManager
/// @notice The part of the context manager the kernel uses.
interface IContextManager {
    /// @notice What a prompt submitted now would see: finalized turns, system prompt revision, window, and corrections
    /// of turns made so far.
    function snapshot(bytes32 topicId)
        external
        view
        returns (uint64 turns, uint32 systemPromptRevision, uint16 window, uint32 corrections);

    /// @notice Appends a finalized prompt as the topic's next turn and advances the head hash. Only the kernel.
    function append(bytes32 topicId, address account, uint256 promptId, bytes32 inputHash, bytes32 outputHash)
        external;

    /// @notice Records that a challenge replaced the answer of the topic's turn `promptId` with `outputHash`: prompts
    /// submitted from now on see the new answer in their context; those submitted before keep the one they were
    /// computed from. Only the kernel.
    function correct(bytes32 topicId, uint256 promptId, bytes32 inputHash, bytes32 outputHash) external;
}

/// @title IPromptScheduler
/// @notice The part of the scheduler the kernel uses.
interface IPromptScheduler {
    /// @notice Anchors the prompt for a committee draw in a later block if the queue is empty and enough workers are
    /// free; else queues it. Only the kernel. The committee arrives through
    /// {IKernelAssignments-onCommitteeAssigned} when someone calls `draw`.
    /// @return anchored True when anchored now, false when queued.
    function schedule(
        uint256 promptId,
        uint256 modelId,
        uint8 committeeSize,
        uint8 attempt,
        SchedulingPolicy policy,
        address requester,
        uint256 feePerToken
    ) external returns (bool anchored);

    /// @notice Removes a queued or anchored prompt of `modelId` needing `committeeSize` workers (lazily). Only the
    /// kernel.
    function cancel(uint256 promptId, uint256 modelId, uint8 committeeSize) external;

    /// @notice Anchors up to `max` queued prompts of `modelId` while enough workers are free.
    function pump(uint256 modelId, uint256 max) external returns (uint256 anchored);
}

/// @title IKernelAssignments
/// @notice How the scheduler hands a committee for a prompt to the kernel.
interface IKernelAssignments {
    /// @notice Starts the commit phase of a queued prompt with `committee`. Only the scheduler.
    function onCommitteeAssigned(uint256 promptId, address[] calldata committee) external;

    /// @notice The committee of the prompt's previous attempt while its retry or challenge waits for a draw (empty
    /// otherwise), so the new committee can leave it out (a challenge's always does).
    function previousMembers(uint256 promptId) external view returns (address[] memory members);
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
