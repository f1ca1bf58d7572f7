// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ChallengeStatus, Finality, IAIKernelEvents, KernelParams, PromptStatus} from "../interfaces/IAIKernel.sol";
import {IAIKernelConsumer} from "../interfaces/IAIKernelConsumer.sol";
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
/// @param lane The prompt's lane: while it is open, the one its committee works in (a challenge's committee works in a
/// lane of its own); once it is closed, the lane that kept its committee's record, which is its own while the lane's
/// `owner` is this prompt.
/// @param attempt 0, 1 for the retry, 2 once challenged.
/// @param minerIndex The miner's index in the final committee (set at finalization).
/// @param fee The escrowed fee (bounded by 2^96 - 1 wei at submission). While a challenge runs: its bond. Once
/// Finalized: what the kernel still holds for the prompt (an Optimistic callback's gas until it is delivered); once
/// Refunded: the refund.
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

/// @notice What holds a closed prompt's lane out of circulation. Delivery: an Optimistic callback waits to be
/// delivered. Challenge: a challenge of the prompt runs (its committee's record is the evidence).
enum LaneHold {
    None,
    Delivery,
    Challenge
}

/// @notice The state of a prompt, in storage recycled from prompt to prompt: a lane is taken at submission and,
/// once the prompt is closed, kept as the record of its committee (members, revealed hashes, masks) until its
/// challenge window has passed, then reused, so its slots are rewritten while non-zero (2,900 gas) instead of filled
/// fresh (20,000) for every prompt. Closed lanes wait in a FIFO list (threaded through `next`) in the order they
/// closed; a submission takes the oldest if it has cooled. Committee members and their hashes live in per-lane maps
/// beside it.
/// The third slot holds everything commit, reveal and finalize check and update, so each reads it once.
/// @param commitDeadline While Queued: the time from which the requester may cancel. While Committing: the
/// last second to commit. Once closed: the last second of its prompt's challenge window, after which the lane may
/// be reused. Times are uint40 seconds (enough until the year 36,000).
/// @param commitSequence Member indices in commit order, 4 bits each, first committer in the low bits.
/// @param next The next lane in the list of closed lanes (0: none).
/// @param owner The prompt the lane serves or keeps the record of (never zero once used, so the slot is never
/// rewritten from zero; neither is the slot of the votes, as maxTokens >= 1).
/// @param hold What keeps the closed lane out of circulation, if anything.
/// @param dropped True once a submission found the lane held at the front of the list and took it out; releasing it
/// appends it again.
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
    Finality finality;
    uint64 turnSnapshot;
    uint32 next;
    uint64 owner;
    LaneHold hold;
    bool dropped;
}

/// @notice A prompt's challenge, two slots written when it opens.
/// @param challenger Who paid the bond.
/// @param originalLane The lane keeping the record of the committee whose answer is disputed.
/// @param originalSize That committee's size.
/// @param status Where the challenge is.
/// @param delivery True when an Optimistic callback waits for the challenge's end.
/// @param bond The bond paid.
/// @param reserve The callback gas held for that delivery.
struct Challenge {
    address challenger;
    uint32 originalLane;
    uint8 originalSize;
    ChallengeStatus status;
    bool delivery;
    uint128 bond;
    uint128 reserve;
}

/// @notice Counters the kernel updates on every submission and closing, packed in one slot.
/// @param promptCount Prompts submitted (the last prompt id).
/// @param openEscrow Fees held for prompts not yet finalized or refunded.
/// @param openEscrow Fees, bonds and callback gas held for prompts (less than the coin in existence, far below 2^96).
/// @param laneCount Lanes ever created (lane ids are 1..=laneCount).
/// @param closedHead The oldest lane in the list of closed lanes (0: empty).
/// @param closedTail The newest (0: empty).
struct Counters {
    uint64 promptCount;
    uint96 openEscrow;
    uint32 laneCount;
    uint32 closedHead;
    uint32 closedTail;
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
    /// @dev The attempt of a challenge's committee (0 and 1 are the prompt's own committees).
    uint8 internal constant CHALLENGE_ATTEMPT = 2;
    /// @dev Largest challenge committee (2k + 1 members up to this).
    uint8 internal constant MAX_CHALLENGE_COMMITTEE = 15;
    /// @dev Longest challenge window: a week.
    uint64 internal constant MAX_CHALLENGE_WINDOW = 7 days;
    /// @dev Largest challenge bond.
    uint128 internal constant MAX_CHALLENGE_BOND = 1_000 ether;
    /// @dev Held lanes a submission takes out of the front of the closed list at most before it makes a new lane.
    uint256 internal constant MAX_LANE_SKIPS = 4;
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
    mapping(address account => uint256) internal _claimable;
    /// @dev What was refunded of an Unavailable prompt's fee (a Refunded prompt's refund is its whole fee).
    mapping(uint256 promptId => uint256) internal _unavailableRefunds;
    mapping(uint256 promptId => Challenge) internal _challenges;
    /// @dev Per lane and member, what a member penalized for a wrong output lost: the stake slashed (high bits) and
    /// the end of the jail term it got (low 64 bits), so that a challenge that proves it right can give both back.
    /// Written only when someone is penalized for a wrong output.
    mapping(uint256 laneId => mapping(uint256 index => uint256)) internal _laneSlashes;
    /// @dev The trustless gateway each worker serves its content store on (empty: none published); see
    /// {KernelExtension-setStoreGateway}.
    mapping(address worker => string url) internal _storeGateways;

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

    /// @dev Releases a closed prompt's escrow and appends its lane to the closed list, to be reused after `coolUntil`.
    function _close(PromptCore storage prompt, uint256 fee, uint256 coolUntil) internal {
        Counters memory counters = _counters;
        counters.openEscrow -= uint96(fee);
        _append(counters, prompt.lane, coolUntil);
        _counters = counters;
    }

    /// @dev Appends a lane to the closed list. Its `next` is zero already: a lane leaves the list before it is reused,
    /// and taking or re-appending it clears the field.
    function _append(Counters memory counters, uint256 laneId, uint256 coolUntil) internal {
        // Block times fit uint40 for the next 34,000 years; windows are bounded.
        _lanes[laneId].commitDeadline = uint40(coolUntil);
        uint256 tail = counters.closedTail;
        if (tail == 0) counters.closedHead = uint32(laneId);
        else _lanes[tail].next = uint32(laneId);
        // Lane ids are at most laneCount < 2^32.
        counters.closedTail = uint32(laneId);
    }

    /// @dev Ends a lane's hold; a lane that was taken out of the list while held goes back at its end.
    function _release(Counters memory counters, uint256 laneId) internal {
        Lane storage lane = _lanes[laneId];
        lane.hold = LaneHold.None;
        if (lane.dropped) {
            lane.dropped = false;
            lane.next = 0;
            _append(counters, laneId, lane.commitDeadline);
        }
    }

    /// @dev A lane for a new prompt or challenge: the oldest closed lane once its window has passed, else a new one.
    /// Held lanes found at the front leave the list (their release appends them again), at most {MAX_LANE_SKIPS}.
    /// The caller rewrites the lane's slots.
    function _takeLane(Counters memory counters) internal returns (uint256) {
        for (uint256 i = 0; i < MAX_LANE_SKIPS; ++i) {
            uint256 head = counters.closedHead;
            if (head == 0) break;
            Lane storage lane = _lanes[head];
            LaneHold hold = lane.hold;
            if (hold == LaneHold.None && lane.commitDeadline >= block.timestamp) break;
            counters.closedHead = lane.next;
            if (counters.closedHead == 0) counters.closedTail = 0;
            if (hold == LaneHold.None) return head;
            lane.dropped = true;
        }
        return ++counters.laneCount;
    }

    function _refund(uint256 promptId, PromptCore storage prompt) internal {
        uint256 fee = prompt.fee;
        prompt.status = PromptStatus.Refunded;
        _close(prompt, fee, block.timestamp);
        _credit(prompt.requester, fee);
        emit PromptRefunded(promptId, prompt.requester, fee);
    }

    /// @dev Hands the prompt to the scheduler, which anchors it for a draw in a later block or queues it; either way
    /// it is Queued until its committee is drawn, and cancellable by anyone once the queue timeout passed.
    function _schedule(
        uint256 promptId,
        PromptCore storage prompt,
        ModelTerms memory terms,
        uint256 feePerToken,
        uint64 queueTimeout
    ) internal {
        prompt.status = PromptStatus.Queued;
        // block.timestamp + queueTimeout < 2^40 for the next 34,000 years (queueTimeout <= MAX_QUEUE_TIMEOUT).
        _lanes[prompt.lane].commitDeadline = uint40(block.timestamp + queueTimeout);
        bool anchored = _scheduler.schedule(
            promptId, prompt.modelId, prompt.committeeSize, prompt.attempt, terms.policy, prompt.requester, feePerToken
        );
        if (!anchored) emit PromptQueued(promptId, prompt.modelId);
    }

    /// @dev Calls the requester with exactly its gas limit. Too little gas left reverts the whole finalization
    /// (so a finalizer cannot starve the callback on purpose); anything the callback does only fails the call.
    function _callBack(uint256 promptId, address requester, uint256 gasLimit, bytes calldata output) internal {
        // EIP-150 forwards at most 63/64 of the gas left; require enough that the callee gets all of gasLimit.
        uint256 needed = gasLimit + gasLimit / 63 + CALLBACK_RESERVE;
        if (gasleft() < needed) revert DecentralizedInferenceInsufficientGas(gasleft(), needed);
        bytes memory data = abi.encodeCall(IAIKernelConsumer.onInferenceResult, (promptId, output));
        bool success;
        assembly ("memory-safe") {
            // No return data is copied, so a callee cannot make this frame pay for a huge return.
            success := call(gasLimit, requester, 0, add(data, 0x20), mload(data), 0, 0)
        }
        emit CallbackResult(promptId, requester, success);
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
        if (params_.challengeWindow > MAX_CHALLENGE_WINDOW) {
            revert DecentralizedInferenceInvalidParameter("challengeWindow");
        }
        if (params_.slashChallengedBps < params_.slashWrongBps || params_.slashChallengedBps > BPS) {
            revert DecentralizedInferenceInvalidParameter("slashChallengedBps");
        }
        if (params_.challengeRewardBps > BPS) revert DecentralizedInferenceInvalidParameter("challengeRewardBps");
        if (params_.challengeBond > MAX_CHALLENGE_BOND || (params_.challengeBond == 0 && params_.challengeWindow != 0)) {
            revert DecentralizedInferenceInvalidParameter("challengeBond");
        }
        if (params_.jailChallenged > MAX_JAIL) revert DecentralizedInferenceInvalidParameter("jailChallenged");
        _params = params_;
        emit ParamsUpdated(params_);
    }
}
