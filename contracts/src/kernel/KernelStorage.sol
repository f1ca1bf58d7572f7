// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IAIKernelEvents, KernelParams, PromptStatus} from "../interfaces/IAIKernel.sol";
import {
    IContextManager,
    IEAIMinter,
    IGPUManagement,
    IModelFileSystem,
    IPromptScheduler,
    ModelTerms
} from "../interfaces/IKernelComponents.sol";

/// @notice What the kernel keeps of every prompt for good: two slots, written once at submission (and the miner
/// at finalization, into the slot the fee keeps non-zero).
/// @param lane The prompt's lane while it is open (Queued or Committing); zero once it is closed.
/// @param minerIndex The miner's index in the final committee (set at finalization).
/// @param fee The escrowed fee (bounded by 2^96 - 1 wei at submission).
/// @param miner The miner (zero until finalized).
struct PromptCore {
    address requester;
    uint32 modelId;
    uint32 lane;
    PromptStatus status;
    uint8 attempt;
    uint8 committeeSize;
    uint8 minerIndex;
    uint96 fee;
    address miner;
}

/// @notice The state of an open prompt, in storage recycled from prompt to prompt: a lane is taken at
/// submission and handed back when the prompt is finalized or refunded, so its slots are rewritten while
/// non-zero (2,900 gas) instead of filled fresh (20,000) for every prompt. Committee members and their hashes
/// live in per-lane maps beside it.
/// The third slot holds everything commit, reveal and finalize check and update, so each reads it once.
/// @param commitDeadline While Queued: the time from which the requester may cancel. While Committing: the
/// last second to commit. Times are uint40 seconds (enough until the year 36,000).
/// @param commitSequence Member indices in commit order, 4 bits each, first committer in the low bits.
/// The slot of the votes never holds zero (maxTokens >= 1), nor does the last one (`touched`): rewriting a zero
/// slot would cost 20,000 gas.
/// @param touched Always true: keeps the slot of `turnSnapshot` non-zero for the first prompt of a topic.
struct Lane {
    bytes32 topicId;
    bytes32 inputHash;
    uint40 commitDeadline;
    uint40 revealDeadline;
    uint16 committedMask;
    uint16 revealedMask;
    uint64 commitSequence;
    uint8 commitCount;
    uint32 maxTokens;
    uint32 callbackGasLimit;
    uint64 turnSnapshot;
    bool touched;
}

/// @notice Counters the kernel updates on every submission and closing, packed in one slot.
/// @param promptCount Prompts submitted (the last prompt id).
/// @param openEscrow Fees held for prompts not yet finalized or refunded.
/// @param laneCount Lanes ever created (lane ids are 1..=laneCount).
/// @param freeLaneCount Lanes waiting for reuse in the free-lane stack.
struct Counters {
    uint64 promptCount;
    uint128 openEscrow;
    uint32 laneCount;
    uint32 freeLaneCount;
}

/// @notice Block rewards so far, in one slot.
/// @param finalized Prompts finalized.
/// @param rewardUnits Full-reward equivalents minted, in 1e18ths: a prompt paid the full reward adds 1e18, one paid
/// a part of it that part. Halvings are rewardUnits / (1e18 * halvingInterval).
struct Emission {
    uint64 finalized;
    uint192 rewardUnits;
}

/// @title KernelStorage
/// @notice The kernel's state and the rules both of its halves apply to it: {DecentralizedInference} (the paths
/// every prompt takes: submit, commit, reveal, finalize) and {KernelExtension} (views, parameters, cancelling and
/// claiming), which DecentralizedInference's fallback runs by DELEGATECALL on this same storage.
/// @dev Both halves inherit this contract and declare no state of their own, so their storage layouts are one
/// (the build checks it). Immutables live in code: both are constructed with the same values.
abstract contract KernelStorage is IAIKernelEvents, Ownable, ReentrancyGuardTransient {
    uint16 internal constant BPS = 10_000;
    /// @dev sha256 of the empty string: the extra-context hash of a prompt without extra context.
    bytes32 internal constant EMPTY_SHA256 = 0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855;
    /// @dev Gas kept for the bookkeeping after the callback returns.
    uint256 internal constant CALLBACK_RESERVE = 10_000;
    uint256 internal constant MAX_CHOICES = 256;
    uint32 internal constant MAX_TEMPERATURE_MILLI = 2000;
    uint32 internal constant MAX_TOP_P_MILLI = 1000;
    /// @dev Longest commit or reveal window: one day.
    uint64 internal constant MAX_PHASE = 1 days;
    /// @dev Longest queue timeout: a week.
    uint64 internal constant MAX_QUEUE_TIMEOUT = 7 days;
    /// @dev Least share of every fee the treasury keeps (it backs block rewards, see {EAI_PER_WEI}): 5 %.
    uint16 internal constant MIN_TREASURY_BPS = 500;
    /// @dev Longest jail term: thirty days.
    uint64 internal constant MAX_JAIL = 30 days;
    /// @dev Largest block reward before halving: 1,000 EAI.
    uint128 internal constant MAX_INITIAL_REWARD = 1_000 ether;
    /// @dev Largest onchain input or extra context: 64 KiB.
    uint32 internal constant MAX_INPUT_BYTES = 65_536;
    /// @notice Largest prompt data held in storage: one IPFS block (a UnixFS chunk, 256 KiB), so its raw CIDv1
    /// (`bafkrei…` of the sha256 the request carries) is the id every IPFS node and gateway serves it under. More
    /// would not fit any served model's context anyway.
    uint64 public constant MAX_STORAGE_BYTES = 262_144;
    /// @dev Largest maxTokens of a request.
    uint32 internal constant MAX_TOKENS = 32_768;
    /// @dev Largest callback gas limit a request may ask for.
    uint32 internal constant MAX_CALLBACK_GAS = 5_000_000;
    /// @dev Most queued prompts one finalization assigns.
    uint8 internal constant MAX_PUMP = 8;
    /// @dev Highest protocol gas price: 10,000 gwei.
    uint64 internal constant MAX_GAS_PRICE = 10_000 gwei;
    /// @dev Largest gas allowance of a finalization.
    uint32 internal constant MAX_FINALIZE_GAS = 2_000_000;
    /// @notice Largest output a member may reveal, in bytes. A protocol constant, not a parameter: workers answer a
    /// longer output with the canonical failure answer "output too long" (aik-protocol), which every honest member
    /// computes alike, so an honest member never holds an output it cannot reveal.
    uint256 public constant MAX_OUTPUT_BYTES = 16_384;
    /// @dev One full reward in {Emission-rewardUnits}.
    uint256 internal constant REWARD_UNIT = 1e18;
    /// @notice EAI (in its smallest unit) a block reward may mint per wei of fee that left the requester for good
    /// (the treasury share), fixed at deployment: self-dealt prompts (the requester's own workers as the committee)
    /// get back the miner and verifier shares, so the treasury share is what they pay, and they can never mint more
    /// than it backs, nor move the halving schedule further than the rewards they paid for.
    uint256 public immutable EAI_PER_WEI;

    IModelFileSystem internal immutable _models;
    IGPUManagement internal immutable _gpu;
    IContextManager internal immutable _context;
    IPromptScheduler internal immutable _scheduler;
    IEAIMinter internal immutable _token;

    KernelParams internal _params;
    Counters internal _counters;
    Emission internal _emission;
    mapping(uint256 promptId => PromptCore) internal _prompts;
    /// @dev The winning output hash of each finalized prompt: the one fresh slot a prompt's result needs.
    mapping(uint256 promptId => bytes32) internal _outputHashes;
    mapping(uint256 laneId => Lane) internal _lanes;
    /// @dev The current committee of the prompt holding the lane (a retry overwrites the first committee).
    mapping(uint256 laneId => mapping(uint256 index => address)) internal _laneMembers;
    /// @dev A member's commitment until it reveals, then its revealed output hash.
    mapping(uint256 laneId => mapping(uint256 index => bytes32)) internal _laneHashes;
    /// @dev Stack of lanes free for reuse: entries [0, freeLaneCount) are live; the rest are stale non-zero
    /// values kept so that a push rewrites a non-zero slot.
    mapping(uint256 index => uint256 laneId) internal _freeLanes;
    mapping(address account => uint256) internal _claimable;
    /// @dev What was refunded of an Unavailable prompt's fee (a Refunded prompt's refund is its whole fee).
    mapping(uint256 promptId => uint256) internal _unavailableRefunds;

    /// @notice The owner changed the parameters.
    event ParamsUpdated(KernelParams params);

    /// @param initialOwner Sets parameters.
    /// @param models_ Model registry.
    /// @param gpu_ Worker registry.
    /// @param context_ Context manager.
    /// @param scheduler_ Scheduler.
    /// @param token_ EAI (this contract must be its minter).
    /// @param eaiPerWei_ {EAI_PER_WEI}, at most 2^128 - 1.
    constructor(
        address initialOwner,
        IModelFileSystem models_,
        IGPUManagement gpu_,
        IContextManager context_,
        IPromptScheduler scheduler_,
        IEAIMinter token_,
        uint256 eaiPerWei_
    ) Ownable(initialOwner) {
        if (
            address(models_) == address(0) || address(gpu_) == address(0) || address(context_) == address(0)
                || address(scheduler_) == address(0) || address(token_) == address(0)
        ) revert DecentralizedInferenceZeroAddress();
        // treasuryPay < 2^96, so treasuryPay * EAI_PER_WEI < 2^224 cannot overflow.
        if (eaiPerWei_ > type(uint128).max) revert DecentralizedInferenceInvalidParameter("eaiPerWei");
        EAI_PER_WEI = eaiPerWei_;
        _models = models_;
        _gpu = gpu_;
        _context = context_;
        _scheduler = scheduler_;
        _token = token_;
    }

    /// @dev Releases a closed prompt's escrow and lane. The lane's slots stay as they are (non-zero) until the
    /// next prompt that takes it rewrites them; nothing reads a lane through a closed prompt.
    function _close(PromptCore storage prompt, uint256 fee) internal {
        uint256 laneId = prompt.lane;
        prompt.lane = 0;
        Counters memory counters = _counters;
        counters.openEscrow -= uint128(fee);
        _freeLanes[counters.freeLaneCount] = laneId;
        ++counters.freeLaneCount;
        _counters = counters;
    }

    function _refund(uint256 promptId, PromptCore storage prompt) internal {
        uint256 fee = prompt.fee;
        prompt.status = PromptStatus.Refunded;
        _close(prompt, fee);
        _credit(prompt.requester, fee);
        emit PromptRefunded(promptId, prompt.requester, fee);
    }

    function _credit(address account, uint256 amount) internal {
        if (amount == 0) return;
        _claimable[account] += amount;
        emit Credited(account, amount);
    }

    function _existing(uint256 promptId) internal view returns (PromptCore storage prompt) {
        prompt = _prompts[promptId];
        if (prompt.status == PromptStatus.None) revert DecentralizedInferenceUnknownPrompt(promptId);
    }

    function _liveTerms(uint256 modelId) internal view returns (ModelTerms memory terms) {
        try _models.modelTerms(modelId) returns (ModelTerms memory found) {
            terms = found;
        } catch {
            revert DecentralizedInferenceUnknownModel(modelId);
        }
        if (terms.retired) revert DecentralizedInferenceModelRetired(modelId);
    }

    /// @dev The part of a fee that pays the finalization and the callback's gas limit at the parameters' gas price.
    function _gasFee(KernelParams storage params, uint256 callbackGasLimit) internal view returns (uint256) {
        return _gasCost(params.gasPrice, params.finalizeGas, callbackGasLimit);
    }

    function _gasCost(uint256 gasPrice, uint256 finalizeGas, uint256 callbackGasLimit) internal pure returns (uint256) {
        return gasPrice * (finalizeGas + callbackGasLimit);
    }

    /// @dev The full block reward the next finalized prompt may earn (see {KernelExtension-currentBlockReward}).
    function _blockReward() internal view returns (uint256) {
        uint256 halvings = _emission.rewardUnits / (REWARD_UNIT * _params.halvingInterval);
        return halvings >= 128 ? 0 : uint256(_params.initialReward) >> halvings;
    }

    /// @dev Every parameter's bounds (see {KernelParams}).
    function _setParams(KernelParams memory params_) internal {
        if (params_.commitWindow == 0 || params_.commitWindow > MAX_PHASE) {
            revert DecentralizedInferenceInvalidParameter("commitWindow");
        }
        if (params_.revealWindow == 0 || params_.revealWindow > MAX_PHASE) {
            revert DecentralizedInferenceInvalidParameter("revealWindow");
        }
        if (params_.queueTimeout > MAX_QUEUE_TIMEOUT) revert DecentralizedInferenceInvalidParameter("queueTimeout");
        if (uint256(params_.minerShareBps) + params_.verifierShareBps > BPS - MIN_TREASURY_BPS) {
            revert DecentralizedInferenceInvalidParameter("shares");
        }
        if (params_.unavailableShareBps > BPS / 2) revert DecentralizedInferenceInvalidParameter("unavailableShareBps");
        if (params_.slashWrongBps > BPS / 2) revert DecentralizedInferenceInvalidParameter("slashWrongBps");
        if (params_.slashAbsentBps > params_.slashWrongBps) {
            revert DecentralizedInferenceInvalidParameter("slashAbsentBps");
        }
        if (params_.jailWrong > MAX_JAIL) revert DecentralizedInferenceInvalidParameter("jailWrong");
        if (params_.jailAbsent > MAX_JAIL) revert DecentralizedInferenceInvalidParameter("jailAbsent");
        if (params_.initialReward > MAX_INITIAL_REWARD) revert DecentralizedInferenceInvalidParameter("initialReward");
        if (params_.halvingInterval == 0) revert DecentralizedInferenceInvalidParameter("halvingInterval");
        if (params_.maxInputBytes == 0 || params_.maxInputBytes > MAX_INPUT_BYTES) {
            revert DecentralizedInferenceInvalidParameter("maxInputBytes");
        }
        if (params_.maxTokens == 0 || params_.maxTokens > MAX_TOKENS) {
            revert DecentralizedInferenceInvalidParameter("maxTokens");
        }
        if (params_.maxCallbackGas > MAX_CALLBACK_GAS) revert DecentralizedInferenceInvalidParameter("maxCallbackGas");
        if (params_.pumpOnFinalize > MAX_PUMP) revert DecentralizedInferenceInvalidParameter("pumpOnFinalize");
        if (params_.gasPrice > MAX_GAS_PRICE) revert DecentralizedInferenceInvalidParameter("gasPrice");
        if (params_.finalizeGas > MAX_FINALIZE_GAS) revert DecentralizedInferenceInvalidParameter("finalizeGas");
        if (params_.treasury == address(0)) revert DecentralizedInferenceZeroAddress();
        _params = params_;
        emit ParamsUpdated(params_);
    }
}
