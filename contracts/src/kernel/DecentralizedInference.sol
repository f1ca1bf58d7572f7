// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {
    ChallengeStatus,
    DataKind,
    DataRef,
    Finality,
    FormatKind,
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
import {KernelExtension} from "./KernelExtension.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Challenge, Counters, Emission, KernelStorage, Lane, LaneHold, PromptCore} from "./KernelStorage.sol";

/// @title DecentralizedInference
/// @notice The kernel's front door and its Proof-of-Compute: prompts are paid for and recorded here, their
/// committees commit and reveal output hashes here, and finalization pays, penalizes, rewards, appends the
/// context and calls the requester back.
/// Together with {KernelExtension}, which its fallback runs on this contract's storage, it implements {IAIKernel}:
/// call the kernel through that interface (or this artifact's ABI, which lists both halves).
/// @dev Payments in the native coin are pulled: fees, refunds and payouts are credited to claimable balances
/// and withdrawn with {KernelExtension-claim}, so no recipient can block finalization. Invariant: this contract's balance is
/// the escrow of open prompts plus all claimable balances. The requester callback runs last, with exactly the
/// requested gas, without copying its return data; its failure is recorded and changes nothing else.
contract DecentralizedInference is KernelStorage, IKernelAssignments {
    using SafeERC20 for IERC20;

    /// @dev The extension this contract's fallback delegates to (created by the constructor).
    address private immutable _extension;

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
    ) KernelStorage(initialOwner, models_, gpu_, context_, scheduler_, token_, eaiPerWei_) {
        _setParams(params_);
        _extension = address(new KernelExtension(models_, gpu_, context_, scheduler_, token_, eaiPerWei_));
    }

    /// @notice Runs every function this contract does not define (see {KernelExtension}) in the extension, on
    /// this contract's storage, and returns or reverts with what it returned. Payable so that {KernelExtension-challenge}
    /// receives its bond: every other extension function is non-payable and rejects a value itself (as does the
    /// extension for calldata that matches none of its functions, a plain transfer included).
    fallback() external payable {
        address target = _extension;
        assembly ("memory-safe") {
            // Past the free memory pointer: this frame returns or reverts right after.
            let ptr := mload(0x40)
            calldatacopy(ptr, 0, calldatasize())
            let success := delegatecall(gas(), target, ptr, calldatasize(), 0, 0)
            returndatacopy(ptr, 0, returndatasize())
            if iszero(success) { revert(ptr, returndatasize()) }
            return(ptr, returndatasize())
        }
    }

    /// @notice The extension that serves views, parameters, cancelling and claiming on this contract's storage.
    function extension() external view returns (address) {
        return _extension;
    }

    // ------------------------------------------------------------------ requester

    /// @notice See {IAIKernel-infer}.
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
        (uint64 turns, uint32 systemPromptRevision, uint16 window, uint32 corrections) = _context.snapshot(topicId);

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
            finality: request.finality,
            turnSnapshot: turns,
            next: 0,
            owner: uint64(promptId),
            hold: LaneHold.None,
            dropped: false
        });
        emit PromptSubmitted(promptId, msg.sender, request.modelId, topicId, fee);
        emit PromptData(promptId, request, inputHash, extraHash, turns, systemPromptRevision, window, corrections);

        _schedule(promptId, _prompts[promptId], terms, feePerToken, params.queueTimeout);

        uint256 excess = msg.value - fee;
        if (excess != 0) {
            // Refund last (checks-effects-interactions). A caller that cannot take the coin back gets a credit.
            (bool sent,) = payable(msg.sender).call{value: excess}("");
            if (!sent) _credit(msg.sender, excess);
        }
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

    /// @notice See {IAIKernel-finalize}.
    function finalize(uint256 promptId, bytes calldata output) external nonReentrant {
        PromptCore storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Committing) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        uint256 laneId = prompt.lane;
        Lane storage lane = _lanes[laneId];
        uint256 committeeSize = prompt.committeeSize;
        uint256 opensAt = _finalizeOpensAt(lane, committeeSize);
        if (block.timestamp < opensAt) revert DecentralizedInferenceFinalizeTooEarly(promptId, opensAt);

        if (prompt.attempt == CHALLENGE_ATTEMPT) {
            _finalizeChallenge(promptId, prompt, laneId, output);
            return;
        }

        (address[] memory committee, bytes32[] memory hashes) = _votes(laneId, committeeSize, lane.revealedMask);
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
        uint256 revealedMask = lane.revealedMask;
        (bool agreed, bytes32 winner) = _tally(hashes, revealedMask, committeeSize);
        _penalizeMembers(promptId, laneId, committee, hashes, lane.committedMask, revealedMask, agreed, winner, params);
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
        // An Optimistic callback waits for the challenge window ({KernelExtension-deliver}); its gas stays in escrow.
        bool callsNow = callsBack && lane.finality == Finality.Immediate;
        if (callsNow && sha256(output) != winner) {
            revert DecentralizedInferenceOutputMismatch(promptId, winner, sha256(output));
        }
        _payGas(prompt, params, callsNow ? callbackGasLimit : 0);
        uint256 reserve = 0;
        if (callsBack && !callsNow) {
            reserve = _gasCost(params.gasPrice, 0, callbackGasLimit);
            if (reserve > prompt.fee) reserve = prompt.fee;
            lane.hold = LaneHold.Delivery;
        }
        _settle(promptId, prompt, committee, hashes, winner, params, reserve);
        _context.append(topicId, requester, promptId, inputHash, winner);
        if (params.pumpOnFinalize != 0) _scheduler.pump(modelId, params.pumpOnFinalize);
        if (callsNow) _callBack(promptId, requester, callbackGasLimit, output);
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
        uint256 size = prompt.committeeSize;
        if (prompt.attempt == CHALLENGE_ATTEMPT) {
            Challenge storage challenge_ = _challenges[promptId];
            laneId = challenge_.originalLane;
            size = challenge_.originalSize;
        }
        members = new address[](size);
        for (uint256 i = 0; i < members.length; ++i) {
            members[i] = _laneMembers[laneId][i];
        }
    }

    // ------------------------------------------------------------------ owner

    // ------------------------------------------------------------------ views

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

    /// @dev Numbers a new prompt, escrows its fee and hands it a lane (see {_takeLane}), in one write of the counters
    /// slot.
    function _open(uint256 fee) private returns (uint256 promptId, uint256 laneId) {
        Counters memory counters = _counters;
        promptId = counters.promptCount + 1;
        counters.promptCount = uint64(promptId);
        // fee < 2^96; the escrow is coin the kernel holds, far below 2^96 (checked arithmetic would revert, never wrap).
        counters.openEscrow += uint96(fee);
        laneId = _takeLane(counters);
        _counters = counters;
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
        _close(prompt, fee, block.timestamp);
        for (uint256 i = 0; i < committee.length; ++i) {
            if (committedMask & (1 << i) != 0) _credit(committee[i], each);
        }
        _credit(params.treasury, kept - each * committers);
        _credit(prompt.requester, refunded);
        // committers <= committeeSize <= 16.
        emit PromptUnavailable(promptId, uint8(committers), kept, refunded);
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
        _counters.openEscrow -= uint96(paid);
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

    /// @dev Pays the fee, less `reserve` (an Optimistic callback's gas, which stays in escrow as the prompt's fee),
    /// out (credits), records the result, mints the block reward and appends the lane to the closed list for the
    /// challenge window.
    function _settle(
        uint256 promptId,
        PromptCore storage prompt,
        address[] memory committee,
        bytes32[] memory hashes,
        bytes32 winner,
        KernelParams memory params,
        uint256 reserve
    ) private {
        uint256 committeeSize = committee.length;
        uint256 revealedMask = _lanes[prompt.lane].revealedMask;
        uint256 minerIndex = _minerIndex(_lanes[prompt.lane], hashes, winner);
        uint256 verifiers = 0;
        for (uint256 i = 0; i < committeeSize; ++i) {
            if (i != minerIndex && revealedMask & (1 << i) != 0 && hashes[i] == winner) ++verifiers;
        }
        uint256 fee = prompt.fee - reserve;
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
        // reserve <= fee < 2^96.
        prompt.fee = uint96(reserve);
        _outputHashes[promptId] = winner;
        _close(prompt, fee, block.timestamp + params.challengeWindow);
        _credit(miner, minerPay);
        for (uint256 i = 0; i < committeeSize; ++i) {
            if (i != minerIndex && revealedMask & (1 << i) != 0 && hashes[i] == winner) {
                _credit(committee[i], verifierPay);
            }
        }
        _credit(params.treasury, treasuryPay);

        uint256 full = _blockReward();
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

    /// @dev A lane's committee and, per member, its revealed output hash (zero when it did not reveal).
    function _votes(uint256 laneId, uint256 committeeSize, uint256 revealedMask)
        private
        view
        returns (address[] memory committee, bytes32[] memory hashes)
    {
        committee = new address[](committeeSize);
        hashes = new bytes32[](committeeSize);
        for (uint256 i = 0; i < committeeSize; ++i) {
            committee[i] = _laneMembers[laneId][i];
            if (revealedMask & (1 << i) != 0) hashes[i] = _laneHashes[laneId][i];
        }
    }

    /// @dev Penalizes a judged committee's absent, withholding and (when it agreed) wrong members. A wrong member's
    /// loss is recorded for a challenge that may prove it right. Penalties only touch stakes, never this contract's
    /// accounting.
    function _penalizeMembers(
        uint256 promptId,
        uint256 laneId,
        address[] memory committee,
        bytes32[] memory hashes,
        uint256 committedMask,
        uint256 revealedMask,
        bool agreed,
        bytes32 winner,
        KernelParams memory params
    ) private {
        for (uint256 i = 0; i < committee.length; ++i) {
            uint256 bit = 1 << i;
            if (committedMask & bit == 0) {
                _gpu.penalize(committee[i], params.slashAbsentBps, params.jailAbsent);
                emit WorkerPenalized(promptId, committee[i], Penalty.Absent);
            } else if (revealedMask & bit == 0) {
                _gpu.penalize(committee[i], params.slashWrongBps, params.jailWrong);
                emit WorkerPenalized(promptId, committee[i], Penalty.Withheld);
            } else if (agreed && hashes[i] != winner) {
                (uint256 slashed, uint64 until) = _gpu.penalize(committee[i], params.slashWrongBps, params.jailWrong);
                _laneSlashes[laneId][i] = slashed << 64 | until;
                emit WorkerPenalized(promptId, committee[i], Penalty.Wrong);
            }
        }
    }

    /// @dev The index of the earliest committer of the winning output.
    function _minerIndex(Lane storage lane, bytes32[] memory hashes, bytes32 winner) private view returns (uint256) {
        uint256 sequence = lane.commitSequence;
        uint256 commitCount = lane.commitCount;
        uint256 revealedMask = lane.revealedMask;
        for (uint256 order = 0; order < commitCount; ++order) {
            uint256 index = (sequence >> (4 * order)) & 0xf;
            if (hashes[index] == winner && revealedMask & (1 << index) != 0) return index;
        }
        return hashes.length;
    }

    /// @dev Closes a challenge once its committee is judged (see {IAIKernel-challenge}).
    function _finalizeChallenge(uint256 promptId, PromptCore storage prompt, uint256 laneId, bytes calldata output)
        private
    {
        Lane storage lane = _lanes[laneId];
        uint256 size = prompt.committeeSize;
        uint256 revealedMask = lane.revealedMask;
        (address[] memory committee, bytes32[] memory hashes) = _votes(laneId, size, revealedMask);
        KernelParams memory params = _params;
        Challenge memory challenge_ = _challenges[promptId];
        bytes32 original = _outputHashes[promptId];
        ChallengeStatus outcome = ChallengeStatus.Inconclusive;
        bytes32 winner;
        if (lane.commitCount >= _quorum(size)) {
            bool agreed;
            (agreed, winner) = _tally(hashes, revealedMask, size);
            _penalizeMembers(promptId, laneId, committee, hashes, lane.committedMask, revealedMask, agreed, winner, params);
            if (agreed) outcome = winner == original ? ChallengeStatus.Upheld : ChallengeStatus.Overturned;
        }
        _gpu.release(prompt.modelId, committee);
        bytes32 outputHash = outcome == ChallengeStatus.Overturned ? winner : original;
        if (challenge_.delivery && sha256(output) != outputHash) {
            revert DecentralizedInferenceOutputMismatch(promptId, outputHash, sha256(output));
        }

        // The bond pays this finalization's gas, twice finalizeGas (it judges up to 15 members and may slash,
        // restore and pay a dozen accounts: about 600,000 gas when it overturns); the rest goes to the agreeing
        // members and the treasury when the answer is upheld, back to the challenger otherwise.
        _payGas(prompt, params, params.finalizeGas);
        uint256 left = prompt.fee;
        uint256 slashed;
        uint256 reward;
        if (outcome == ChallengeStatus.Upheld) {
            uint256 agreeing = _agreeing(hashes, revealedMask, winner);
            uint256 each = left * (params.minerShareBps + params.verifierShareBps) / BPS / agreeing;
            for (uint256 i = 0; i < size; ++i) {
                if (revealedMask & (1 << i) != 0 && hashes[i] == winner) _credit(committee[i], each);
            }
            _credit(params.treasury, left - each * agreeing);
        } else {
            _credit(challenge_.challenger, left);
            if (outcome == ChallengeStatus.Overturned) {
                (slashed, reward) = _overturn(promptId, prompt, laneId, challenge_, committee, hashes, original, winner, params);
            }
        }

        Counters memory counters = _counters;
        // What the challenge escrowed (less the gas already paid) and the callback gas held for the delivery.
        counters.openEscrow -= uint96(left + challenge_.reserve);
        _release(counters, challenge_.originalLane);
        _append(counters, laneId, block.timestamp);
        _counters = counters;
        if (outcome != ChallengeStatus.Overturned) {
            // The disputed answer stands: the prompt's record is its first committee's again.
            prompt.lane = challenge_.originalLane;
            prompt.committeeSize = challenge_.originalSize;
        }
        prompt.fee = 0;
        prompt.status = PromptStatus.Finalized;
        _challenges[promptId].status = outcome;
        emit ChallengeResolved(promptId, outcome, outputHash, slashed, reward);
        if (params.pumpOnFinalize != 0) _scheduler.pump(prompt.modelId, params.pumpOnFinalize);
        if (challenge_.delivery) {
            _credit(msg.sender, challenge_.reserve);
            _callBack(promptId, prompt.requester, lane.callbackGasLimit, output);
        }
    }

    /// @dev An overturning challenge: the disputed answer's majority forfeits `slashChallengedBps` of its stake; from
    /// it, members of the first committee that had revealed the new answer get back what they lost for it, the
    /// challenger gets `challengeRewardBps` of the rest and the challenge committee's agreeing members split what
    /// remains (the division's dust to the treasury); the new answer becomes the result and its topic's correction.
    function _overturn(
        uint256 promptId,
        PromptCore storage prompt,
        uint256 laneId,
        Challenge memory challenge_,
        address[] memory committee,
        bytes32[] memory hashes,
        bytes32 original,
        bytes32 winner,
        KernelParams memory params
    ) private returns (uint256 slashed, uint256 reward) {
        uint256 first = challenge_.originalLane;
        uint256 firstRevealed = _lanes[first].revealedMask;
        for (uint256 i = 0; i < challenge_.originalSize; ++i) {
            if (firstRevealed & (1 << i) == 0 || _laneHashes[first][i] != original) continue;
            address member = _laneMembers[first][i];
            slashed += _gpu.forfeit(member, params.slashChallengedBps, params.jailChallenged);
            emit WorkerPenalized(promptId, member, Penalty.Overturned);
        }
        IERC20 token = IERC20(address(_token));
        uint256 left = slashed;
        for (uint256 i = 0; i < challenge_.originalSize; ++i) {
            if (firstRevealed & (1 << i) == 0 || _laneHashes[first][i] != winner) continue;
            address member = _laneMembers[first][i];
            uint256 record = _laneSlashes[first][i];
            uint256 back = record >> 64;
            if (back > left) back = left;
            left -= back;
            if (back != 0) token.safeTransfer(address(_gpu), back);
            _gpu.restore(member, back, uint64(record));
            emit PenaltyReversed(promptId, member, back);
        }
        reward = left * params.challengeRewardBps / BPS;
        left -= reward;
        _award(promptId, token, challenge_.challenger, reward);
        uint256 revealedMask = _lanes[laneId].revealedMask;
        uint256 agreeing = _agreeing(hashes, revealedMask, winner);
        uint256 each = left / agreeing;
        for (uint256 i = 0; i < committee.length; ++i) {
            if (revealedMask & (1 << i) != 0 && hashes[i] == winner) _award(promptId, token, committee[i], each);
        }
        uint256 dust = left - each * agreeing;
        if (dust != 0) token.safeTransfer(params.treasury, dust);

        uint256 minerIndex = _minerIndex(_lanes[laneId], hashes, winner);
        // minerIndex < committee size <= 15.
        prompt.minerIndex = uint8(minerIndex);
        prompt.miner = committee[minerIndex];
        _outputHashes[promptId] = winner;
        _context.correct(_lanes[first].topicId, promptId, _lanes[first].inputHash, winner);
    }

    function _award(uint256 promptId, IERC20 token, address account, uint256 amount) private {
        if (amount == 0) return;
        token.safeTransfer(account, amount);
        emit StakeAwarded(promptId, account, amount);
    }

    /// @dev Members that revealed `winner`.
    function _agreeing(bytes32[] memory hashes, uint256 revealedMask, bytes32 winner) private pure returns (uint256 n) {
        for (uint256 i = 0; i < hashes.length; ++i) {
            if (revealedMask & (1 << i) != 0 && hashes[i] == winner) ++n;
        }
    }

    function _memberIndex(uint256 promptId, uint256 laneId, uint256 committeeSize) private view returns (uint256) {
        for (uint256 i = 0; i < committeeSize; ++i) {
            if (_laneMembers[laneId][i] == msg.sender) return i;
        }
        revert DecentralizedInferenceNotAssigned(promptId, msg.sender);
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
        if (ref.length > MAX_STORAGE_BYTES) revert DecentralizedInferenceInputTooLarge(ref.length, MAX_STORAGE_BYTES);
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

}
