// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {
    DataKind,
    DataRef,
    FormatKind,
    IAIKernel,
    InferenceRequest,
    KernelParams,
    OutputFormat,
    PromptRecord,
    PromptStatus,
    Sampling,
    SamplingMode
} from "../interfaces/IAIKernel.sol";
import {IAIKernelConsumer} from "../interfaces/IAIKernelConsumer.sol";
import {
    IContextManager,
    IEAIMinter,
    IGPUManagement,
    IKernelAssignments,
    IModelFileSystem,
    IPromptScheduler,
    ModelTerms
} from "../interfaces/IKernelComponents.sol";
import {Penalty} from "../interfaces/IAIKernel.sol";

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

/// @title DecentralizedInference
/// @notice The kernel's front door and its Proof-of-Compute: prompts are paid for and recorded here, their
/// committees commit and reveal output hashes here, and finalization pays, penalizes, rewards, appends the
/// context and calls the requester back.
/// @dev Payments in the native coin are pulled: fees, refunds and payouts are credited to claimable balances
/// and withdrawn with {claim}, so no recipient can block finalization. Invariant: this contract's balance is
/// the escrow of open prompts plus all claimable balances. The requester callback runs last, with exactly the
/// requested gas, without copying its return data; its failure is recorded and changes nothing else.
contract DecentralizedInference is IAIKernel, IKernelAssignments, Ownable, ReentrancyGuardTransient {
    uint16 private constant BPS = 10_000;
    /// @dev sha256 of the empty string: the extra-context hash of a prompt without extra context.
    bytes32 private constant EMPTY_SHA256 = 0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855;
    /// @dev Gas kept for the bookkeeping after the callback returns.
    uint256 private constant CALLBACK_RESERVE = 10_000;
    uint256 private constant MAX_CHOICES = 256;
    uint32 private constant MAX_TEMPERATURE_MILLI = 2000;
    uint32 private constant MAX_TOP_P_MILLI = 1000;
    /// @dev Longest commit or reveal window: one day.
    uint64 private constant MAX_PHASE = 1 days;
    /// @dev Longest queue timeout: a week.
    uint64 private constant MAX_QUEUE_TIMEOUT = 7 days;
    /// @dev Least share of every fee the treasury keeps (it backs block rewards, see {EAI_PER_WEI}): 5 %.
    uint16 private constant MIN_TREASURY_BPS = 500;
    /// @dev Longest jail term: thirty days.
    uint64 private constant MAX_JAIL = 30 days;
    /// @dev Largest block reward before halving: 1,000 EAI.
    uint128 private constant MAX_INITIAL_REWARD = 1_000 ether;
    /// @dev Largest onchain input or extra context: 64 KiB.
    uint32 private constant MAX_INPUT_BYTES = 65_536;
    /// @dev Largest maxTokens of a request.
    uint32 private constant MAX_TOKENS = 32_768;
    /// @dev Largest callback gas limit a request may ask for.
    uint32 private constant MAX_CALLBACK_GAS = 5_000_000;
    /// @dev Most queued prompts one finalization assigns.
    uint8 private constant MAX_PUMP = 8;
    /// @dev Highest protocol gas price: 10,000 gwei.
    uint64 private constant MAX_GAS_PRICE = 10_000 gwei;
    /// @dev Largest gas allowance of a finalization.
    uint32 private constant MAX_FINALIZE_GAS = 2_000_000;
    /// @notice Largest output a member may reveal, in bytes. A protocol constant, not a parameter: workers answer a
    /// longer output with the canonical failure answer "output too long" (aik-protocol), which every honest member
    /// computes alike, so an honest member never holds an output it cannot reveal.
    uint256 public constant MAX_OUTPUT_BYTES = 16_384;
    /// @dev One full reward in {Emission-rewardUnits}.
    uint256 private constant REWARD_UNIT = 1e18;
    /// @notice EAI (in its smallest unit) a block reward may mint per wei of fee that left the requester for good
    /// (the treasury share), fixed at deployment: self-dealt prompts (the requester's own workers as the committee)
    /// get back the miner and verifier shares, so the treasury share is what they pay, and they can never mint more
    /// than it backs, nor move the halving schedule further than the rewards they paid for.
    uint256 public immutable EAI_PER_WEI;

    IModelFileSystem private immutable _models;
    IGPUManagement private immutable _gpu;
    IContextManager private immutable _context;
    IPromptScheduler private immutable _scheduler;
    IEAIMinter private immutable _token;

    KernelParams private _params;
    Counters private _counters;
    Emission private _emission;
    mapping(uint256 promptId => PromptCore) private _prompts;
    /// @dev The winning output hash of each finalized prompt: the one fresh slot a prompt's result needs.
    mapping(uint256 promptId => bytes32) private _outputHashes;
    mapping(uint256 laneId => Lane) private _lanes;
    /// @dev The current committee of the prompt holding the lane (a retry overwrites the first committee).
    mapping(uint256 laneId => mapping(uint256 index => address)) private _laneMembers;
    /// @dev A member's commitment until it reveals, then its revealed output hash.
    mapping(uint256 laneId => mapping(uint256 index => bytes32)) private _laneHashes;
    /// @dev Stack of lanes free for reuse: entries [0, freeLaneCount) are live; the rest are stale non-zero
    /// values kept so that a push rewrites a non-zero slot.
    mapping(uint256 index => uint256 laneId) private _freeLanes;
    mapping(address account => uint256) private _claimable;
    /// @dev What was refunded of an Unavailable prompt's fee (a Refunded prompt's refund is its whole fee).
    mapping(uint256 promptId => uint256) private _unavailableRefunds;

    /// @notice The owner changed the parameters.
    event ParamsUpdated(KernelParams params);

    /// @param initialOwner Sets parameters.
    /// @param models_ Model registry.
    /// @param gpu_ Worker registry.
    /// @param context_ Context manager.
    /// @param scheduler_ Scheduler.
    /// @param token_ EAI (this contract must be its minter).
    /// @param params_ Initial parameters.
    /// @param eaiPerWei_ {EAI_PER_WEI}, at most 2^128 - 1.
    constructor(
        address initialOwner,
        IModelFileSystem models_,
        IGPUManagement gpu_,
        IContextManager context_,
        IPromptScheduler scheduler_,
        IEAIMinter token_,
        KernelParams memory params_,
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
        _setParams(params_);
    }

    // ------------------------------------------------------------------ requester

    /// @inheritdoc IAIKernel
    function infer(InferenceRequest calldata request) external payable returns (uint256 promptId) {
        ModelTerms memory terms = _liveTerms(request.modelId);
        // Read from storage field by field: a submission needs two of the four parameter slots.
        KernelParams storage params = _params;
        if (request.maxTokens == 0) revert DecentralizedInferenceZeroMaxTokens();
        if (request.maxTokens > params.maxTokens) {
            revert DecentralizedInferenceMaxTokensTooLarge(request.maxTokens, params.maxTokens);
        }
        if (request.callbackGasLimit > params.maxCallbackGas) {
            revert DecentralizedInferenceCallbackGasTooHigh(request.callbackGasLimit, params.maxCallbackGas);
        }
        bytes32 inputHash = _dataHash(request.input, params.maxInputBytes, true);
        bytes32 extraHash = _dataHash(request.extra, params.maxInputBytes, false);
        _checkFormat(request.format);
        _checkSampling(request.sampling);

        uint256 feePerToken = request.feePerToken;
        if (feePerToken == 0) feePerToken = terms.pricePerToken;
        else if (feePerToken < terms.pricePerToken) revert DecentralizedInferenceBidTooLow(feePerToken, terms.pricePerToken);
        // Cannot overflow: feePerToken < 2^128, maxTokens < 2^32 and the gas fee < 2^64 * 2^33.
        uint256 fee = feePerToken * request.maxTokens + _gasFee(params, request.callbackGasLimit);
        if (fee > type(uint96).max) revert DecentralizedInferenceInvalidParameter("fee");
        if (msg.value < fee) revert DecentralizedInferenceFeeTooLow(msg.value, fee);

        bytes32 topicId = keccak256(abi.encode(msg.sender, request.topic));
        (uint64 turns, uint32 systemPromptRevision, uint16 window) = _context.snapshot(topicId);

        uint256 laneId;
        (promptId, laneId) = _open(fee);
        _prompts[promptId] = PromptCore({
            requester: msg.sender,
            // Model ids are sequential registry ids, far below 2^32.
            modelId: uint32(request.modelId),
            lane: uint32(laneId),
            status: PromptStatus.Queued,
            attempt: 0,
            committeeSize: terms.committeeSize,
            minerIndex: 0,
            fee: uint96(fee),
            miner: address(0)
        });
        _lanes[laneId] = Lane({
            topicId: topicId,
            inputHash: inputHash,
            commitDeadline: 0,
            revealDeadline: 0,
            committedMask: 0,
            revealedMask: 0,
            commitSequence: 0,
            commitCount: 0,
            maxTokens: request.maxTokens,
            callbackGasLimit: request.callbackGasLimit,
            turnSnapshot: turns,
            touched: true
        });
        emit PromptSubmitted(promptId, msg.sender, request.modelId, topicId, fee);
        emit PromptData(promptId, request, inputHash, extraHash, turns, systemPromptRevision, window);

        _schedule(promptId, _prompts[promptId], terms, feePerToken, params.queueTimeout);

        uint256 excess = msg.value - fee;
        if (excess != 0) {
            // Refund last (checks-effects-interactions). A caller that cannot take the coin back gets a credit.
            (bool sent,) = payable(msg.sender).call{value: excess}("");
            if (!sent) _credit(msg.sender, excess);
        }
    }

    /// @inheritdoc IAIKernel
    function cancelQueued(uint256 promptId) external {
        PromptCore storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Queued) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        uint256 cancellableAt = _lanes[prompt.lane].commitDeadline;
        if (block.timestamp < cancellableAt) {
            revert DecentralizedInferenceQueueTimeoutNotReached(promptId, cancellableAt);
        }
        _scheduler.cancel(promptId, prompt.modelId, prompt.committeeSize);
        _refund(promptId, prompt);
    }

    /// @notice Withdraws the caller's claimable balance (fees earned, refunds) to `to`.
    function claim(address to) external nonReentrant {
        if (to == address(0)) revert DecentralizedInferenceZeroAddress();
        uint256 amount = _claimable[msg.sender];
        if (amount == 0) revert DecentralizedInferenceNothingToClaim(msg.sender);
        _claimable[msg.sender] = 0;
        emit Claimed(msg.sender, to, amount);
        (bool sent,) = payable(to).call{value: amount}("");
        if (!sent) revert DecentralizedInferenceTransferFailed(to, amount);
    }

    // ------------------------------------------------------------------ workers

    /// @notice Commits to an output: commitment = keccak256(abi.encode(promptId, attempt, worker, outputHash, salt)),
    /// with outputHash the sha256 of the canonical output bytes and attempt the prompt's current attempt (0, or 1
    /// for the retry: a retry member cannot replay a commitment of the first committee). Before the commit
    /// deadline, once per member.
    function commit(uint256 promptId, bytes32 commitment) external {
        PromptCore storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Committing) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        uint256 laneId = prompt.lane;
        Lane storage lane = _lanes[laneId];
        if (block.timestamp > lane.commitDeadline) {
            revert DecentralizedInferenceCommitDeadlinePassed(promptId, lane.commitDeadline, block.timestamp);
        }
        if (commitment == bytes32(0)) revert DecentralizedInferenceZeroCommitment();
        uint256 index = _memberIndex(promptId, laneId, prompt.committeeSize);
        uint16 bit = uint16(1 << index);
        if (lane.committedMask & bit != 0) revert DecentralizedInferenceAlreadyCommitted(promptId, msg.sender);
        _laneHashes[laneId][index] = commitment;
        lane.committedMask |= bit;
        uint8 order = lane.commitCount;
        lane.commitSequence |= uint64(index) << (4 * order);
        lane.commitCount = order + 1;
        emit OutputCommitted(promptId, msg.sender, commitment);
    }

    /// @notice Reveals the committed output; the contract computes its sha256. Every output is revealed onchain
    /// (at most {MAX_OUTPUT_BYTES}), so the bytes a callback needs are always in an OutputRevealed event and no
    /// majority can make a prompt unfinalizable by revealing a hash whose bytes nobody has.
    function reveal(uint256 promptId, bytes32 salt, bytes calldata output) external {
        if (output.length > MAX_OUTPUT_BYTES) revert DecentralizedInferenceOutputTooLarge(output.length, MAX_OUTPUT_BYTES);
        _reveal(promptId, sha256(output), salt, output);
    }

    /// @inheritdoc IAIKernel
    function finalize(uint256 promptId, bytes calldata output) external nonReentrant {
        PromptCore storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Committing) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        uint256 laneId = prompt.lane;
        Lane storage lane = _lanes[laneId];
        uint256 committeeSize = prompt.committeeSize;
        uint256 opensAt = _finalizeOpensAt(lane, committeeSize);
        if (block.timestamp < opensAt) revert DecentralizedInferenceFinalizeTooEarly(promptId, opensAt);

        address[] memory committee = new address[](committeeSize);
        bytes32[] memory hashes = new bytes32[](committeeSize);
        uint256 revealedMask = lane.revealedMask;
        for (uint256 i = 0; i < committeeSize; ++i) {
            committee[i] = _laneMembers[laneId][i];
            if (revealedMask & (1 << i) != 0) hashes[i] = _laneHashes[laneId][i];
        }
        KernelParams memory params = _params;
        uint256 modelId = prompt.modelId;
        if (lane.commitCount < _quorum(committeeSize)) {
            // Too few commitments to tell an unavailable input from absent members: nobody is penalized.
            _gpu.release(modelId, committee);
            _payGas(prompt, params, 0);
            _closeUnavailable(promptId, prompt, committee, lane.committedMask, lane.commitCount, params);
            _scheduler.pump(modelId, params.pumpOnFinalize);
            return;
        }
        (bool agreed, bytes32 winner) = _tally(hashes, revealedMask, committeeSize);

        // Penalties first: they only touch stakes, never this contract's accounting.
        uint256 committedMask = lane.committedMask;
        for (uint256 i = 0; i < committeeSize; ++i) {
            uint256 bit = 1 << i;
            if (committedMask & bit == 0) {
                _gpu.penalize(committee[i], params.slashAbsentBps, params.jailAbsent);
                emit WorkerPenalized(promptId, committee[i], Penalty.Absent);
            } else if (revealedMask & bit == 0) {
                _gpu.penalize(committee[i], params.slashWrongBps, params.jailWrong);
                emit WorkerPenalized(promptId, committee[i], Penalty.Withheld);
            } else if (agreed && hashes[i] != winner) {
                _gpu.penalize(committee[i], params.slashWrongBps, params.jailWrong);
                emit WorkerPenalized(promptId, committee[i], Penalty.Wrong);
            }
        }
        _gpu.release(modelId, committee);

        if (!agreed) {
            _payGas(prompt, params, 0);
            if (prompt.attempt == 0) {
                prompt.attempt = 1;
                _resetVotes(lane);
                emit PromptRetried(promptId, 1);
                ModelTerms memory terms = _models.modelTerms(modelId);
                // Queue priority by what is left for tokens after the retry's own protocol gas.
                uint256 gas = _gasCost(params.gasPrice, params.finalizeGas, lane.callbackGasLimit);
                uint256 left = prompt.fee;
                uint256 perToken = left > gas ? (left - gas) / lane.maxTokens : 0;
                _schedule(promptId, prompt, terms, perToken, params.queueTimeout);
            } else {
                _refund(promptId, prompt);
            }
            _scheduler.pump(modelId, params.pumpOnFinalize);
            return;
        }

        // Read what the rest needs before the lane goes back to the pool in {_settle}.
        address requester = prompt.requester;
        uint256 callbackGasLimit = lane.callbackGasLimit;
        bytes32 topicId = lane.topicId;
        bytes32 inputHash = lane.inputHash;
        bool callsBack = callbackGasLimit != 0 && requester.code.length != 0;
        if (callsBack && sha256(output) != winner) {
            revert DecentralizedInferenceOutputMismatch(promptId, winner, sha256(output));
        }
        _payGas(prompt, params, callsBack ? callbackGasLimit : 0);
        _settle(promptId, prompt, lane, committee, hashes, winner, params);
        _context.append(topicId, requester, promptId, inputHash, winner);
        if (params.pumpOnFinalize != 0) _scheduler.pump(modelId, params.pumpOnFinalize);
        if (callsBack) _callBack(promptId, requester, callbackGasLimit, output);
    }

    // ------------------------------------------------------------------ scheduler

    /// @inheritdoc IKernelAssignments
    function onCommitteeAssigned(uint256 promptId, address[] calldata committee) external {
        if (msg.sender != address(_scheduler)) revert DecentralizedInferenceUnauthorized(msg.sender);
        PromptCore storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Queued) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        _startCommit(promptId, prompt, committee);
    }

    /// @inheritdoc IKernelAssignments
    function previousMembers(uint256 promptId) external view returns (address[] memory members) {
        PromptCore storage prompt = _prompts[promptId];
        if (prompt.status != PromptStatus.Queued || prompt.attempt == 0) return members;
        uint256 laneId = prompt.lane;
        members = new address[](prompt.committeeSize);
        for (uint256 i = 0; i < members.length; ++i) {
            members[i] = _laneMembers[laneId][i];
        }
    }

    // ------------------------------------------------------------------ owner

    /// @notice Replaces the parameters (validated: shares and slash rates within 100%, windows non-zero).
    function setParams(KernelParams calldata params_) external onlyOwner {
        _setParams(params_);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IAIKernel
    function estimateFee(uint256 modelId, uint32 maxTokens, uint32 callbackGasLimit)
        external
        view
        returns (uint256 fee)
    {
        if (maxTokens == 0) revert DecentralizedInferenceZeroMaxTokens();
        return uint256(_liveTerms(modelId).pricePerToken) * maxTokens + _gasFee(_params, callbackGasLimit);
    }

    /// @inheritdoc IAIKernel
    function gasFee(uint32 callbackGasLimit) external view returns (uint256) {
        return _gasFee(_params, callbackGasLimit);
    }

    /// @inheritdoc IAIKernel
    function refundOf(uint256 promptId) external view returns (uint256) {
        PromptCore storage prompt = _prompts[promptId];
        if (prompt.status == PromptStatus.Refunded) return prompt.fee;
        if (prompt.status == PromptStatus.Unavailable) return _unavailableRefunds[promptId];
        return 0;
    }

    /// @inheritdoc IAIKernel
    function getResult(uint256 promptId)
        external
        view
        returns (PromptStatus status, bytes32 outputHash, address miner)
    {
        PromptCore storage prompt = _prompts[promptId];
        status = prompt.status;
        if (status == PromptStatus.Finalized) {
            outputHash = _outputHashes[promptId];
            miner = prompt.miner;
        }
    }

    /// @notice The record of a prompt; the fields kept in its lane read as zero once it is closed (see
    /// {PromptRecord}).
    function getPrompt(uint256 promptId) external view returns (PromptRecord memory record) {
        PromptCore memory core = _prompts[promptId];
        record.requester = core.requester;
        record.modelId = core.modelId;
        record.status = core.status;
        record.attempt = core.attempt;
        record.committeeSize = core.committeeSize;
        record.minerIndex = core.minerIndex;
        record.fee = core.fee;
        if (core.status == PromptStatus.Queued || core.status == PromptStatus.Committing) {
            Lane memory lane = _lanes[core.lane];
            record.commitDeadline = lane.commitDeadline;
            record.revealDeadline = lane.revealDeadline;
            record.topicId = lane.topicId;
            record.inputHash = lane.inputHash;
            record.turnSnapshot = lane.turnSnapshot;
            record.maxTokens = lane.maxTokens;
            record.callbackGasLimit = lane.callbackGasLimit;
            record.committedMask = lane.committedMask;
            record.revealedMask = lane.revealedMask;
            record.commitSequence = lane.commitSequence;
            record.commitCount = lane.commitCount;
        }
    }

    /// @notice The prompt's committee and, per member, its commitment (before it reveals) or its revealed output
    /// hash (after), while the prompt is Committing. Empty otherwise: while queued (a retry waits for a fresh
    /// committee) and once closed, when the CommitteeAssigned, OutputCommitted and OutputRevealed events are the
    /// record.
    function getCommittee(uint256 promptId) external view returns (address[] memory members, bytes32[] memory hashes) {
        PromptCore storage prompt = _prompts[promptId];
        uint256 size = prompt.status == PromptStatus.Committing ? prompt.committeeSize : 0;
        uint256 laneId = prompt.lane;
        // A member that has not committed yet has no hash; its lane slot may still hold an earlier prompt's.
        uint256 committedMask = _lanes[laneId].committedMask;
        members = new address[](size);
        hashes = new bytes32[](size);
        for (uint256 i = 0; i < size; ++i) {
            members[i] = _laneMembers[laneId][i];
            if (committedMask & (1 << i) != 0) hashes[i] = _laneHashes[laneId][i];
        }
    }

    /// @notice The parameters.
    function getParams() external view returns (KernelParams memory) {
        return _params;
    }

    /// @notice Native coin `account` can withdraw with {claim}.
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    /// @notice Fees held for prompts not yet finalized or refunded.
    function openEscrow() external view returns (uint256) {
        return _counters.openEscrow;
    }

    /// @notice Prompts submitted and prompts finalized so far.
    function counts() external view returns (uint256 submitted, uint256 finalized) {
        return (_counters.promptCount, _emission.finalized);
    }

    /// @notice The full block reward the next finalized prompt may earn, before its backing (treasury share times
    /// {EAI_PER_WEI}) and the supply cap.
    function currentBlockReward() public view returns (uint256) {
        uint256 halvings = _emission.rewardUnits / (REWARD_UNIT * _params.halvingInterval);
        return halvings >= 128 ? 0 : uint256(_params.initialReward) >> halvings;
    }

    /// @notice The kernel's component contracts.
    function components()
        external
        view
        returns (address models, address gpu, address context, address scheduler, address token)
    {
        return (address(_models), address(_gpu), address(_context), address(_scheduler), address(_token));
    }

    /// @notice Number of options in abi.encode(string[]) Choice options; reverts if malformed, if there are
    /// fewer than 2 or more than 256, or if one is empty. External so that {infer} can catch a bad encoding.
    function choiceCount(bytes calldata options) external pure returns (uint256 count) {
        string[] memory choices = abi.decode(options, (string[]));
        count = choices.length;
        if (count < 2 || count > MAX_CHOICES) revert DecentralizedInferenceInvalidFormatOptions(FormatKind.Choice);
        for (uint256 i = 0; i < count; ++i) {
            if (bytes(choices[i]).length == 0) revert DecentralizedInferenceInvalidFormatOptions(FormatKind.Choice);
        }
    }

    // ------------------------------------------------------------------ internal

    /// @dev Numbers a new prompt, escrows its fee and hands it a lane (a free one, else a new one), in one write
    /// of the counters slot.
    function _open(uint256 fee) private returns (uint256 promptId, uint256 laneId) {
        Counters memory counters = _counters;
        promptId = counters.promptCount + 1;
        counters.promptCount = uint64(promptId);
        // fee < 2^96; the sum of open fees stays below 2^128 (checked arithmetic would revert, never wrap).
        counters.openEscrow += uint128(fee);
        if (counters.freeLaneCount != 0) {
            --counters.freeLaneCount;
            laneId = _freeLanes[counters.freeLaneCount];
        } else {
            laneId = ++counters.laneCount;
        }
        _counters = counters;
    }

    /// @dev Releases a closed prompt's escrow and lane. The lane's slots stay as they are (non-zero) until the
    /// next prompt that takes it rewrites them; nothing reads a lane through a closed prompt.
    function _close(PromptCore storage prompt, uint256 fee) private {
        uint256 laneId = prompt.lane;
        prompt.lane = 0;
        Counters memory counters = _counters;
        counters.openEscrow -= uint128(fee);
        _freeLanes[counters.freeLaneCount] = laneId;
        ++counters.freeLaneCount;
        _counters = counters;
    }

    /// @dev Hands the prompt to the scheduler, which anchors it for a draw in a later block or queues it; either way
    /// it is Queued until its committee is drawn, and cancellable by anyone once the queue timeout passed.
    function _schedule(
        uint256 promptId,
        PromptCore storage prompt,
        ModelTerms memory terms,
        uint256 feePerToken,
        uint64 queueTimeout
    ) private {
        prompt.status = PromptStatus.Queued;
        // block.timestamp + queueTimeout < 2^40 for the next 34,000 years (queueTimeout <= MAX_QUEUE_TIMEOUT).
        _lanes[prompt.lane].commitDeadline = uint40(block.timestamp + queueTimeout);
        bool anchored = _scheduler.schedule(
            promptId, prompt.modelId, prompt.committeeSize, prompt.attempt, terms.policy, prompt.requester, feePerToken
        );
        if (!anchored) emit PromptQueued(promptId, prompt.modelId);
    }

    function _startCommit(uint256 promptId, PromptCore storage prompt, address[] memory committee) private {
        uint256 laneId = prompt.lane;
        for (uint256 i = 0; i < committee.length; ++i) {
            _laneMembers[laneId][i] = committee[i];
        }
        uint64 commitDeadline = uint64(block.timestamp) + _params.commitWindow;
        uint64 revealDeadline = commitDeadline + _params.revealWindow;
        prompt.status = PromptStatus.Committing;
        Lane storage lane = _lanes[laneId];
        // Block times fit uint40 for the next 34,000 years; the windows are owner-set and bounded below.
        lane.commitDeadline = uint40(commitDeadline);
        lane.revealDeadline = uint40(revealDeadline);
        emit CommitteeAssigned(promptId, committee, prompt.attempt, commitDeadline, revealDeadline);
    }

    /// @dev Clears the votes of a committee that reached no quorum, for the retry's committee.
    function _resetVotes(Lane storage lane) private {
        lane.committedMask = 0;
        lane.revealedMask = 0;
        lane.commitSequence = 0;
        lane.commitCount = 0;
    }

    function _reveal(uint256 promptId, bytes32 outputHash, bytes32 salt, bytes calldata output) private {
        PromptCore storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Committing) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        uint256 committeeSize = prompt.committeeSize;
        uint256 laneId = prompt.lane;
        Lane storage lane = _lanes[laneId];
        uint16 committedMask = lane.committedMask;
        uint256 fullMask = (1 << committeeSize) - 1;
        if (committedMask != fullMask && block.timestamp <= lane.commitDeadline) {
            revert DecentralizedInferenceRevealNotOpen(promptId, uint256(lane.commitDeadline) + 1);
        }
        if (block.timestamp > lane.revealDeadline) {
            revert DecentralizedInferenceRevealDeadlinePassed(promptId, lane.revealDeadline, block.timestamp);
        }
        uint256 index = _memberIndex(promptId, laneId, committeeSize);
        uint16 bit = uint16(1 << index);
        if (committedMask & bit == 0) revert DecentralizedInferenceNotCommitted(promptId, msg.sender);
        if (lane.revealedMask & bit != 0) revert DecentralizedInferenceAlreadyRevealed(promptId, msg.sender);
        bytes32 commitment = _laneHashes[laneId][index];
        bytes32 computed = keccak256(abi.encode(promptId, prompt.attempt, msg.sender, outputHash, salt));
        if (computed != commitment) revert DecentralizedInferenceRevealMismatch(promptId, commitment, computed);
        _laneHashes[laneId][index] = outputHash;
        lane.revealedMask |= bit;
        emit OutputRevealed(promptId, msg.sender, outputHash, output);
    }

    /// @dev Finalize opens after the reveal deadline, or as soon as the outcome cannot change: the commit deadline
    /// passed with fewer than a quorum of commitments (the prompt is unavailable), or reveals are open and every
    /// member that committed has revealed (nobody left to wait for).
    function _finalizeOpensAt(Lane storage lane, uint256 committeeSize) private view returns (uint256) {
        uint16 committedMask = lane.committedMask;
        bool commitClosed = block.timestamp > lane.commitDeadline;
        if (commitClosed && lane.commitCount < _quorum(committeeSize)) return block.timestamp;
        bool revealOpen = committedMask == (1 << committeeSize) - 1 || commitClosed;
        if (revealOpen && lane.revealedMask == committedMask) return block.timestamp;
        return uint256(lane.revealDeadline) + 1;
    }

    /// @dev Closes a prompt fewer than a quorum committed to: the committers split `unavailableShareBps` of the fee
    /// (the treasury takes the remainder of the split, or all of it when nobody committed), the requester gets
    /// the rest back, and nobody is penalized or rewarded.
    function _closeUnavailable(
        uint256 promptId,
        PromptCore storage prompt,
        address[] memory committee,
        uint256 committedMask,
        uint256 committers,
        KernelParams memory params
    ) private {
        uint256 fee = prompt.fee;
        uint256 kept = fee * params.unavailableShareBps / BPS;
        uint256 each = committers == 0 ? 0 : kept / committers;
        uint256 refunded = fee - kept;
        prompt.status = PromptStatus.Unavailable;
        _unavailableRefunds[promptId] = refunded;
        _close(prompt, fee);
        for (uint256 i = 0; i < committee.length; ++i) {
            if (committedMask & (1 << i) != 0) _credit(committee[i], each);
        }
        _credit(params.treasury, kept - each * committers);
        _credit(prompt.requester, refunded);
        // committers <= committeeSize <= 16.
        emit PromptUnavailable(promptId, uint8(committers), kept, refunded);
    }

    /// @dev The part of a fee that pays the finalization and the callback's gas limit at the parameters' gas price.
    function _gasFee(KernelParams storage params, uint256 callbackGasLimit) private view returns (uint256) {
        return _gasCost(params.gasPrice, params.finalizeGas, callbackGasLimit);
    }

    function _gasCost(uint256 gasPrice, uint256 finalizeGas, uint256 callbackGasLimit) private pure returns (uint256) {
        return gasPrice * (finalizeGas + callbackGasLimit);
    }

    /// @dev Pays the caller for an attempt's finalization (and the callback's gas limit when it runs) out of the
    /// prompt's escrow, at most what is left. A retry pays its finalization from what the first attempt left, so a
    /// prompt that fails twice refunds its fee less one finalization.
    function _payGas(PromptCore storage prompt, KernelParams memory params, uint256 callbackGas) private {
        uint256 fee = prompt.fee;
        uint256 paid = _gasCost(params.gasPrice, params.finalizeGas, callbackGas);
        if (paid > fee) paid = fee;
        if (paid == 0) return;
        // paid <= fee < 2^96.
        prompt.fee = uint96(fee - paid);
        _counters.openEscrow -= uint128(paid);
        _credit(msg.sender, paid);
    }

    /// @dev Members that must commit for a prompt to be judged, and reveal one output for it to win: floor(k/2)+1.
    function _quorum(uint256 committeeSize) private pure returns (uint256) {
        return committeeSize / 2 + 1;
    }

    /// @dev The output hash revealed by at least {_quorum} members, if any (at most one can be).
    function _tally(bytes32[] memory hashes, uint256 revealedMask, uint256 committeeSize)
        private
        pure
        returns (bool agreed, bytes32 winner)
    {
        uint256 quorum = _quorum(committeeSize);
        for (uint256 i = 0; i < committeeSize; ++i) {
            if (revealedMask & (1 << i) == 0) continue;
            uint256 votes = 0;
            for (uint256 j = i; j < committeeSize; ++j) {
                if (revealedMask & (1 << j) != 0 && hashes[j] == hashes[i]) ++votes;
            }
            if (votes >= quorum) return (true, hashes[i]);
        }
    }

    /// @dev Pays the fee out (credits), records the result and mints the block reward.
    function _settle(
        uint256 promptId,
        PromptCore storage prompt,
        Lane storage lane,
        address[] memory committee,
        bytes32[] memory hashes,
        bytes32 winner,
        KernelParams memory params
    ) private {
        uint256 committeeSize = committee.length;
        uint256 minerIndex = committeeSize;
        uint256 sequence = lane.commitSequence;
        uint256 commitCount = lane.commitCount;
        uint256 revealedMask = lane.revealedMask;
        for (uint256 order = 0; order < commitCount; ++order) {
            uint256 index = (sequence >> (4 * order)) & 0xf;
            if (hashes[index] == winner && revealedMask & (1 << index) != 0) {
                minerIndex = index;
                break;
            }
        }
        uint256 verifiers = 0;
        for (uint256 i = 0; i < committeeSize; ++i) {
            if (i != minerIndex && revealedMask & (1 << i) != 0 && hashes[i] == winner) ++verifiers;
        }
        uint256 fee = prompt.fee;
        uint256 minerPay = fee * params.minerShareBps / BPS;
        uint256 verifierPay = verifiers == 0 ? 0 : fee * params.verifierShareBps / BPS / verifiers;
        // Cannot underflow: minerShareBps + verifierShareBps <= BPS (checked in {_setParams}).
        uint256 treasuryPay;
        unchecked {
            treasuryPay = fee - minerPay - verifierPay * verifiers;
        }

        address miner = committee[minerIndex];
        prompt.status = PromptStatus.Finalized;
        // minerIndex < committeeSize <= 16.
        prompt.minerIndex = uint8(minerIndex);
        prompt.miner = miner;
        _outputHashes[promptId] = winner;
        _close(prompt, fee);
        _credit(miner, minerPay);
        for (uint256 i = 0; i < committeeSize; ++i) {
            if (i != minerIndex && revealedMask & (1 << i) != 0 && hashes[i] == winner) {
                _credit(committee[i], verifierPay);
            }
        }
        _credit(params.treasury, treasuryPay);

        uint256 full = currentBlockReward();
        uint256 reward = full;
        uint256 backed = treasuryPay * EAI_PER_WEI;
        if (reward > backed) reward = backed;
        uint256 room = _token.cap() - _token.totalSupply();
        if (reward > room) reward = room;
        Emission memory emission = _emission;
        // Fewer than 2^64 prompts; rewardUnits grows by at most 1e18 per prompt.
        ++emission.finalized;
        if (full != 0) emission.rewardUnits += uint192(reward * REWARD_UNIT / full);
        _emission = emission;
        emit PromptFinalized(promptId, miner, winner, minerPay, verifierPay, treasuryPay, reward);
        if (reward != 0) _token.mint(miner, reward);
    }

    /// @dev Calls the requester with exactly its gas limit. Too little gas left reverts the whole finalization
    /// (so a finalizer cannot starve the callback on purpose); anything the callback does only fails the call.
    function _callBack(uint256 promptId, address requester, uint256 gasLimit, bytes calldata output) private {
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

    function _refund(uint256 promptId, PromptCore storage prompt) private {
        uint256 fee = prompt.fee;
        prompt.status = PromptStatus.Refunded;
        _close(prompt, fee);
        _credit(prompt.requester, fee);
        emit PromptRefunded(promptId, prompt.requester, fee);
    }

    function _credit(address account, uint256 amount) private {
        if (amount == 0) return;
        _claimable[account] += amount;
        emit Credited(account, amount);
    }

    function _memberIndex(uint256 promptId, uint256 laneId, uint256 committeeSize) private view returns (uint256) {
        for (uint256 i = 0; i < committeeSize; ++i) {
            if (_laneMembers[laneId][i] == msg.sender) return i;
        }
        revert DecentralizedInferenceNotAssigned(promptId, msg.sender);
    }

    function _existing(uint256 promptId) private view returns (PromptCore storage prompt) {
        prompt = _prompts[promptId];
        if (prompt.status == PromptStatus.None) revert DecentralizedInferenceUnknownPrompt(promptId);
    }

    function _liveTerms(uint256 modelId) private view returns (ModelTerms memory terms) {
        try _models.modelTerms(modelId) returns (ModelTerms memory found) {
            terms = found;
        } catch {
            revert DecentralizedInferenceUnknownModel(modelId);
        }
        if (terms.retired) revert DecentralizedInferenceModelRetired(modelId);
    }

    /// @dev sha256 of the bytes a DataRef designates, after checking its shape and size.
    function _dataHash(DataRef calldata ref, uint256 maxBytes, bool required) private pure returns (bytes32) {
        if (ref.kind == DataKind.Onchain) {
            if (ref.digest != bytes32(0) || ref.length != 0) revert DecentralizedInferenceInvalidDataRef();
            uint256 length = ref.data.length;
            if (length > maxBytes) revert DecentralizedInferenceInputTooLarge(length, maxBytes);
            if (length == 0) {
                if (required) revert DecentralizedInferenceEmptyInput();
                return EMPTY_SHA256;
            }
            return sha256(ref.data);
        }
        if (ref.data.length != 0 || ref.digest == bytes32(0)) revert DecentralizedInferenceInvalidDataRef();
        if (ref.length == 0) {
            if (required) revert DecentralizedInferenceEmptyInput();
            revert DecentralizedInferenceInvalidDataRef();
        }
        return ref.digest;
    }

    function _checkFormat(OutputFormat calldata format) private view {
        FormatKind kind = format.kind;
        uint256 length = format.options.length;
        if (kind == FormatKind.Text || kind == FormatKind.Bool) {
            if (length != 0) revert DecentralizedInferenceInvalidFormatOptions(kind);
        } else if (kind == FormatKind.Choice) {
            try this.choiceCount(format.options) returns (uint256) {}
            catch {
                revert DecentralizedInferenceInvalidFormatOptions(kind);
            }
        } else {
            if (length != 64) revert DecentralizedInferenceInvalidFormatOptions(kind);
            bool ordered;
            if (kind == FormatKind.Uint) {
                (uint256 min, uint256 max) = abi.decode(format.options, (uint256, uint256));
                ordered = min <= max;
            } else {
                (int256 min, int256 max) = abi.decode(format.options, (int256, int256));
                ordered = min <= max;
            }
            if (!ordered) revert DecentralizedInferenceInvalidFormatOptions(kind);
        }
    }

    function _checkSampling(Sampling calldata sampling) private pure {
        if (sampling.mode == SamplingMode.Greedy) {
            if (sampling.temperatureMilli != 0 || sampling.topPMilli != 0 || sampling.seed != 0) {
                revert DecentralizedInferenceInvalidSampling();
            }
        } else if (
            sampling.temperatureMilli == 0 || sampling.temperatureMilli > MAX_TEMPERATURE_MILLI
                || sampling.topPMilli == 0 || sampling.topPMilli > MAX_TOP_P_MILLI
        ) {
            revert DecentralizedInferenceInvalidSampling();
        }
    }

    /// @dev Every parameter's bounds (see {KernelParams}).
    function _setParams(KernelParams memory params_) private {
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
