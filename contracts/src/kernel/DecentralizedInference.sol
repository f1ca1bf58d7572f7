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
    OutputFormat,
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

/// @notice Parameters of the deployment, changeable by the owner. Times are seconds of block time.
/// @param commitWindow Time a committee has to commit, from its assignment.
/// @param revealWindow Time to reveal, after the commit deadline.
/// @param queueTimeout Time a queued prompt waits before its requester may cancel it for a refund.
/// @param minerShareBps Miner's share of the fee; verifierShareBps is split among the other agreeing members;
/// the treasury takes the rest (and the verifier share when there are no verifiers).
/// @param slashWrongBps Stake slashed from a member that revealed a losing output; jailWrong: its jail term.
/// @param slashAbsentBps Stake slashed from a member that did not commit or reveal; jailAbsent: its jail term.
/// @param initialReward EAI minted to the miner per finalized prompt before any halving.
/// @param halvingInterval Finalized prompts between halvings of the block reward.
/// @param maxInputBytes Largest onchain input or extra context.
/// @param maxOutputBytes Largest onchain output.
/// @param maxTokens Largest maxTokens of a request.
/// @param maxCallbackGas Largest callbackGasLimit of a request.
/// @param pumpOnFinalize Queued prompts a finalization may assign from the freed capacity.
/// @param treasury Receives the treasury share of fees.
struct KernelParams {
    uint64 commitWindow;
    uint64 revealWindow;
    uint64 queueTimeout;
    uint16 minerShareBps;
    uint16 verifierShareBps;
    uint16 slashWrongBps;
    uint16 slashAbsentBps;
    uint64 jailWrong;
    uint64 jailAbsent;
    uint128 initialReward;
    uint64 halvingInterval;
    uint32 maxInputBytes;
    uint32 maxOutputBytes;
    uint32 maxTokens;
    uint32 maxCallbackGas;
    uint8 pumpOnFinalize;
    address treasury;
}

/// @notice A prompt as stored: hashes and lengths, not bytes. Five slots.
/// @param commitDeadline While Queued: the time from which the requester may cancel. While Committing: the
/// last second to commit.
/// @param commitSequence Member indices in commit order, 4 bits each, first committer in the low bits.
struct PromptRecord {
    address requester;
    uint32 modelId;
    PromptStatus status;
    uint8 attempt;
    uint8 committeeSize;
    uint8 minerIndex;
    uint128 fee;
    uint64 commitDeadline;
    uint64 revealDeadline;
    bytes32 topicId;
    bytes32 inputHash;
    uint64 turnSnapshot;
    uint32 maxTokens;
    uint32 callbackGasLimit;
    uint16 committedMask;
    uint16 revealedMask;
    uint64 commitSequence;
    uint8 commitCount;
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

    IModelFileSystem private immutable _models;
    IGPUManagement private immutable _gpu;
    IContextManager private immutable _context;
    IPromptScheduler private immutable _scheduler;
    IEAIMinter private immutable _token;

    KernelParams private _params;
    uint256 private _promptCount;
    uint256 private _finalizedCount;
    uint256 private _openEscrow;
    mapping(uint256 promptId => PromptRecord) private _prompts;
    /// @dev Keyed by round = promptId << 1 | attempt, so a retry's committee never mixes with the first one.
    mapping(uint256 round => mapping(uint256 index => address)) private _members;
    /// @dev A member's commitment until it reveals, then its revealed output hash.
    mapping(uint256 round => mapping(uint256 index => bytes32)) private _memberHashes;
    mapping(address account => uint256) private _claimable;

    /// @notice The owner changed the parameters.
    event ParamsUpdated(KernelParams params);

    /// @param initialOwner Sets parameters.
    /// @param models_ Model registry.
    /// @param gpu_ Worker registry.
    /// @param context_ Context manager.
    /// @param scheduler_ Scheduler.
    /// @param token_ EAI (this contract must be its minter).
    /// @param params_ Initial parameters.
    constructor(
        address initialOwner,
        IModelFileSystem models_,
        IGPUManagement gpu_,
        IContextManager context_,
        IPromptScheduler scheduler_,
        IEAIMinter token_,
        KernelParams memory params_
    ) Ownable(initialOwner) {
        if (
            address(models_) == address(0) || address(gpu_) == address(0) || address(context_) == address(0)
                || address(scheduler_) == address(0) || address(token_) == address(0)
        ) revert DecentralizedInferenceZeroAddress();
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
        KernelParams memory params = _params;
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
        // Cannot overflow: feePerToken < 2^128 and maxTokens < 2^32.
        uint256 fee = feePerToken * request.maxTokens;
        if (fee > type(uint128).max) revert DecentralizedInferenceInvalidParameter("fee");
        if (msg.value < fee) revert DecentralizedInferenceFeeTooLow(msg.value, fee);

        bytes32 topicId = keccak256(abi.encode(msg.sender, request.topic));
        (uint64 turns, uint32 systemPromptRevision, uint16 window) = _context.snapshot(topicId);

        promptId = ++_promptCount;
        PromptRecord storage prompt = _prompts[promptId];
        prompt.requester = msg.sender;
        // Model ids are sequential registry ids, far below 2^32.
        prompt.modelId = uint32(request.modelId);
        prompt.status = PromptStatus.Queued;
        prompt.committeeSize = terms.committeeSize;
        prompt.fee = uint128(fee);
        prompt.topicId = topicId;
        prompt.inputHash = inputHash;
        prompt.turnSnapshot = turns;
        prompt.maxTokens = request.maxTokens;
        prompt.callbackGasLimit = request.callbackGasLimit;
        _openEscrow += fee;
        emit PromptSubmitted(promptId, msg.sender, request.modelId, topicId, fee);
        emit PromptData(promptId, request, inputHash, extraHash, turns, systemPromptRevision, window);

        _schedule(promptId, prompt, terms, feePerToken, params.queueTimeout);

        uint256 excess = msg.value - fee;
        if (excess != 0) {
            // Refund last (checks-effects-interactions). A caller that cannot take the coin back gets a credit.
            (bool sent,) = payable(msg.sender).call{value: excess}("");
            if (!sent) _credit(msg.sender, excess);
        }
    }

    /// @notice Cancels a prompt still queued after the queue timeout and credits its fee back. Only the requester.
    function cancelQueued(uint256 promptId) external {
        PromptRecord storage prompt = _existing(promptId);
        if (prompt.requester != msg.sender) revert DecentralizedInferenceNotRequester(promptId, msg.sender);
        if (prompt.status != PromptStatus.Queued) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        if (block.timestamp < prompt.commitDeadline) {
            revert DecentralizedInferenceQueueTimeoutNotReached(promptId, prompt.commitDeadline);
        }
        _scheduler.cancel(promptId);
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

    /// @notice Commits to an output: commitment = keccak256(abi.encode(promptId, worker, outputHash, salt)),
    /// with outputHash the sha256 of the canonical output bytes. Before the commit deadline, once per member.
    function commit(uint256 promptId, bytes32 commitment) external {
        PromptRecord storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Committing) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        if (block.timestamp > prompt.commitDeadline) {
            revert DecentralizedInferenceCommitDeadlinePassed(promptId, prompt.commitDeadline, block.timestamp);
        }
        if (commitment == bytes32(0)) revert DecentralizedInferenceZeroCommitment();
        uint256 round = _round(promptId, prompt.attempt);
        uint256 index = _memberIndex(promptId, round, prompt.committeeSize);
        uint16 bit = uint16(1 << index);
        if (prompt.committedMask & bit != 0) revert DecentralizedInferenceAlreadyCommitted(promptId, msg.sender);
        _memberHashes[round][index] = commitment;
        prompt.committedMask |= bit;
        uint8 order = prompt.commitCount;
        prompt.commitSequence |= uint64(index) << (4 * order);
        prompt.commitCount = order + 1;
        emit OutputCommitted(promptId, msg.sender, commitment);
    }

    /// @notice Reveals an onchain output; the contract computes its sha256. Size-capped by maxOutputBytes.
    function reveal(uint256 promptId, bytes32 salt, bytes calldata output) external {
        if (output.length > _params.maxOutputBytes) {
            revert DecentralizedInferenceOutputTooLarge(output.length, _params.maxOutputBytes);
        }
        _reveal(promptId, sha256(output), salt, output);
    }

    /// @notice Reveals the sha256 of an output kept in storage (content-addressed by that hash).
    function revealReference(uint256 promptId, bytes32 outputHash, bytes32 salt) external {
        _reveal(promptId, outputHash, salt, "");
    }

    /// @inheritdoc IAIKernel
    function finalize(uint256 promptId, bytes calldata output) external nonReentrant {
        PromptRecord storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Committing) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        uint256 opensAt = _finalizeOpensAt(prompt);
        if (block.timestamp < opensAt) revert DecentralizedInferenceFinalizeTooEarly(promptId, opensAt);

        uint256 committeeSize = prompt.committeeSize;
        uint256 round = _round(promptId, prompt.attempt);
        address[] memory committee = new address[](committeeSize);
        bytes32[] memory hashes = new bytes32[](committeeSize);
        uint256 revealedMask = prompt.revealedMask;
        for (uint256 i = 0; i < committeeSize; ++i) {
            committee[i] = _members[round][i];
            if (revealedMask & (1 << i) != 0) hashes[i] = _memberHashes[round][i];
        }
        (bool agreed, bytes32 winner) = _tally(hashes, revealedMask, committeeSize);
        KernelParams memory params = _params;

        // Penalties first: they only touch stakes, never this contract's accounting.
        for (uint256 i = 0; i < committeeSize; ++i) {
            if (revealedMask & (1 << i) == 0) {
                _gpu.penalize(committee[i], params.slashAbsentBps, params.jailAbsent);
                emit WorkerPenalized(promptId, committee[i], false);
            } else if (agreed && hashes[i] != winner) {
                _gpu.penalize(committee[i], params.slashWrongBps, params.jailWrong);
                emit WorkerPenalized(promptId, committee[i], true);
            }
        }
        _gpu.release(committee);

        if (!agreed) {
            if (prompt.attempt == 0) {
                prompt.attempt = 1;
                prompt.status = PromptStatus.Queued;
                prompt.committedMask = 0;
                prompt.revealedMask = 0;
                prompt.commitSequence = 0;
                prompt.commitCount = 0;
                emit PromptRetried(promptId, 1);
                ModelTerms memory terms = _models.modelTerms(prompt.modelId);
                _schedule(promptId, prompt, terms, prompt.fee / prompt.maxTokens, params.queueTimeout);
            } else {
                _refund(promptId, prompt);
            }
            _scheduler.pump(prompt.modelId, params.pumpOnFinalize);
            return;
        }

        bool callsBack = prompt.callbackGasLimit != 0 && prompt.requester.code.length != 0;
        if (callsBack && sha256(output) != winner) {
            revert DecentralizedInferenceOutputMismatch(promptId, winner, sha256(output));
        }
        _settle(promptId, prompt, committee, hashes, winner, params);
        _context.append(prompt.topicId, prompt.requester, promptId, prompt.inputHash, winner);
        if (params.pumpOnFinalize != 0) _scheduler.pump(prompt.modelId, params.pumpOnFinalize);
        if (callsBack) _callBack(promptId, prompt.requester, prompt.callbackGasLimit, output);
    }

    // ------------------------------------------------------------------ scheduler

    /// @inheritdoc IKernelAssignments
    function onCommitteeAssigned(uint256 promptId, address[] calldata committee) external {
        if (msg.sender != address(_scheduler)) revert DecentralizedInferenceUnauthorized(msg.sender);
        PromptRecord storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Queued) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        _startCommit(promptId, prompt, committee);
    }

    // ------------------------------------------------------------------ owner

    /// @notice Replaces the parameters (validated: shares and slash rates within 100%, windows non-zero).
    function setParams(KernelParams calldata params_) external onlyOwner {
        _setParams(params_);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IAIKernel
    function estimateFee(uint256 modelId, uint32 maxTokens) external view returns (uint256 fee) {
        if (maxTokens == 0) revert DecentralizedInferenceZeroMaxTokens();
        return uint256(_liveTerms(modelId).pricePerToken) * maxTokens;
    }

    /// @inheritdoc IAIKernel
    function getResult(uint256 promptId)
        external
        view
        returns (PromptStatus status, bytes32 outputHash, address miner)
    {
        PromptRecord storage prompt = _prompts[promptId];
        status = prompt.status;
        if (status == PromptStatus.Finalized) {
            uint256 round = _round(promptId, prompt.attempt);
            outputHash = _memberHashes[round][prompt.minerIndex];
            miner = _members[round][prompt.minerIndex];
        }
    }

    /// @notice The stored record of a prompt.
    function getPrompt(uint256 promptId) external view returns (PromptRecord memory) {
        return _prompts[promptId];
    }

    /// @notice The prompt's current committee and, per member, its commitment (before it reveals) or its
    /// revealed output hash (after). Empty while no committee is assigned.
    function getCommittee(uint256 promptId) external view returns (address[] memory members, bytes32[] memory hashes) {
        PromptRecord storage prompt = _prompts[promptId];
        uint256 round = _round(promptId, prompt.attempt);
        // A queued prompt, or one cancelled while waiting for its retry, has no committee in this round.
        uint256 size = _members[round][0] == address(0) ? 0 : prompt.committeeSize;
        members = new address[](size);
        hashes = new bytes32[](size);
        for (uint256 i = 0; i < size; ++i) {
            members[i] = _members[round][i];
            hashes[i] = _memberHashes[round][i];
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
        return _openEscrow;
    }

    /// @notice Prompts submitted and prompts finalized so far.
    function counts() external view returns (uint256 submitted, uint256 finalized) {
        return (_promptCount, _finalizedCount);
    }

    /// @notice The block reward the next finalized prompt earns, before the supply cap.
    function currentBlockReward() public view returns (uint256) {
        uint256 halvings = _finalizedCount / _params.halvingInterval;
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

    function _schedule(
        uint256 promptId,
        PromptRecord storage prompt,
        ModelTerms memory terms,
        uint256 feePerToken,
        uint64 queueTimeout
    ) private {
        address[] memory committee = _scheduler.schedule(
            promptId, prompt.modelId, prompt.committeeSize, prompt.attempt, terms.policy, prompt.requester, feePerToken
        );
        if (committee.length != 0) {
            _startCommit(promptId, prompt, committee);
        } else if (prompt.status == PromptStatus.Queued) {
            // Not assigned through the scheduler's own pump either: it waits.
            prompt.commitDeadline = uint64(block.timestamp) + queueTimeout;
            emit PromptQueued(promptId, prompt.modelId);
        }
    }

    function _startCommit(uint256 promptId, PromptRecord storage prompt, address[] memory committee) private {
        uint8 attempt = prompt.attempt;
        uint256 round = _round(promptId, attempt);
        for (uint256 i = 0; i < committee.length; ++i) {
            _members[round][i] = committee[i];
        }
        uint64 commitDeadline = uint64(block.timestamp) + _params.commitWindow;
        uint64 revealDeadline = commitDeadline + _params.revealWindow;
        prompt.status = PromptStatus.Committing;
        prompt.commitDeadline = commitDeadline;
        prompt.revealDeadline = revealDeadline;
        emit CommitteeAssigned(promptId, committee, attempt, commitDeadline, revealDeadline);
    }

    function _reveal(uint256 promptId, bytes32 outputHash, bytes32 salt, bytes memory output) private {
        PromptRecord storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Committing) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        uint256 committeeSize = prompt.committeeSize;
        uint16 committedMask = prompt.committedMask;
        uint256 fullMask = (1 << committeeSize) - 1;
        if (committedMask != fullMask && block.timestamp <= prompt.commitDeadline) {
            revert DecentralizedInferenceRevealNotOpen(promptId, uint256(prompt.commitDeadline) + 1);
        }
        if (block.timestamp > prompt.revealDeadline) {
            revert DecentralizedInferenceRevealDeadlinePassed(promptId, prompt.revealDeadline, block.timestamp);
        }
        uint256 round = _round(promptId, prompt.attempt);
        uint256 index = _memberIndex(promptId, round, committeeSize);
        uint16 bit = uint16(1 << index);
        if (committedMask & bit == 0) revert DecentralizedInferenceNotCommitted(promptId, msg.sender);
        if (prompt.revealedMask & bit != 0) revert DecentralizedInferenceAlreadyRevealed(promptId, msg.sender);
        bytes32 commitment = _memberHashes[round][index];
        bytes32 computed = keccak256(abi.encode(promptId, msg.sender, outputHash, salt));
        if (computed != commitment) revert DecentralizedInferenceRevealMismatch(promptId, commitment, computed);
        _memberHashes[round][index] = outputHash;
        prompt.revealedMask |= bit;
        emit OutputRevealed(promptId, msg.sender, outputHash, output);
    }

    /// @dev Finalize opens after the reveal deadline, or as soon as reveals are open and every member that
    /// committed has revealed (nobody left to wait for).
    function _finalizeOpensAt(PromptRecord storage prompt) private view returns (uint256) {
        uint16 committedMask = prompt.committedMask;
        bool revealOpen =
            committedMask == (1 << prompt.committeeSize) - 1 || block.timestamp > prompt.commitDeadline;
        if (revealOpen && prompt.revealedMask == committedMask) return block.timestamp;
        return uint256(prompt.revealDeadline) + 1;
    }

    /// @dev The output hash revealed by at least floor(k/2)+1 members, if any (at most one can be).
    function _tally(bytes32[] memory hashes, uint256 revealedMask, uint256 committeeSize)
        private
        pure
        returns (bool agreed, bytes32 winner)
    {
        uint256 quorum = committeeSize / 2 + 1;
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
        PromptRecord storage prompt,
        address[] memory committee,
        bytes32[] memory hashes,
        bytes32 winner,
        KernelParams memory params
    ) private {
        uint256 committeeSize = committee.length;
        uint256 minerIndex = committeeSize;
        uint256 sequence = prompt.commitSequence;
        for (uint256 order = 0; order < prompt.commitCount; ++order) {
            uint256 index = (sequence >> (4 * order)) & 0xf;
            if (hashes[index] == winner && prompt.revealedMask & (1 << index) != 0) {
                minerIndex = index;
                break;
            }
        }
        uint256 verifiers = 0;
        for (uint256 i = 0; i < committeeSize; ++i) {
            if (i != minerIndex && prompt.revealedMask & (1 << i) != 0 && hashes[i] == winner) ++verifiers;
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
        _openEscrow -= fee;
        _credit(miner, minerPay);
        for (uint256 i = 0; i < committeeSize; ++i) {
            if (i != minerIndex && prompt.revealedMask & (1 << i) != 0 && hashes[i] == winner) {
                _credit(committee[i], verifierPay);
            }
        }
        _credit(params.treasury, treasuryPay);

        uint256 reward = currentBlockReward();
        ++_finalizedCount;
        uint256 room = _token.cap() - _token.totalSupply();
        if (reward > room) reward = room;
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

    function _refund(uint256 promptId, PromptRecord storage prompt) private {
        uint256 fee = prompt.fee;
        prompt.status = PromptStatus.Refunded;
        _openEscrow -= fee;
        _credit(prompt.requester, fee);
        emit PromptRefunded(promptId, prompt.requester, fee);
    }

    function _credit(address account, uint256 amount) private {
        if (amount == 0) return;
        _claimable[account] += amount;
        emit Credited(account, amount);
    }

    function _memberIndex(uint256 promptId, uint256 round, uint256 committeeSize) private view returns (uint256) {
        for (uint256 i = 0; i < committeeSize; ++i) {
            if (_members[round][i] == msg.sender) return i;
        }
        revert DecentralizedInferenceNotAssigned(promptId, msg.sender);
    }

    function _existing(uint256 promptId) private view returns (PromptRecord storage prompt) {
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

    function _setParams(KernelParams memory params_) private {
        if (params_.commitWindow == 0) revert DecentralizedInferenceInvalidParameter("commitWindow");
        if (params_.revealWindow == 0) revert DecentralizedInferenceInvalidParameter("revealWindow");
        if (uint256(params_.minerShareBps) + params_.verifierShareBps > BPS) {
            revert DecentralizedInferenceInvalidParameter("shares");
        }
        if (params_.slashWrongBps > BPS) revert DecentralizedInferenceInvalidParameter("slashWrongBps");
        if (params_.slashAbsentBps > BPS) revert DecentralizedInferenceInvalidParameter("slashAbsentBps");
        if (params_.halvingInterval == 0) revert DecentralizedInferenceInvalidParameter("halvingInterval");
        if (params_.maxInputBytes == 0) revert DecentralizedInferenceInvalidParameter("maxInputBytes");
        if (params_.maxOutputBytes == 0) revert DecentralizedInferenceInvalidParameter("maxOutputBytes");
        if (params_.maxTokens == 0) revert DecentralizedInferenceInvalidParameter("maxTokens");
        if (params_.treasury == address(0)) revert DecentralizedInferenceZeroAddress();
        _params = params_;
        emit ParamsUpdated(params_);
    }

    function _round(uint256 promptId, uint8 attempt) private pure returns (uint256) {
        return promptId << 1 | attempt;
    }
}
