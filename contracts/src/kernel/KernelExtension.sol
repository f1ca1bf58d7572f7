// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ChallengeRecord, ChallengeStatus, KernelParams, PromptRecord, PromptStatus} from "../interfaces/IAIKernel.sol";
import {
    IContextManager,
    IEAIMinter,
    IGPUManagement,
    IModelFileSystem,
    IPromptScheduler,
    ModelTerms,
    WorkerStatus
} from "../interfaces/IKernelComponents.sol";
import {Challenge, Counters, KernelStorage, Lane, LaneHold, PromptCore} from "./KernelStorage.sol";

/// @dev The head of GPUManagement's `getWorker`: its worker state is a static struct, so its first three words are
/// the stake, the end of a jail or unbonding term, and the status.
interface IWorkerStatus {
    function getWorker(address worker) external view returns (uint128 stake, uint64 until, WorkerStatus status);
}

/// @title KernelExtension
/// @notice The kernel's functions off the path every prompt takes: views, fee estimates, parameters, cancelling a
/// queued prompt and claiming. They run only by DELEGATECALL from {DecentralizedInference}'s fallback, on its
/// storage, so the kernel is one address and one ABI (its artifact lists both halves) while each half stays
/// under the 24 KiB code limit. The split follows Balancer V3's Vault and VaultExtension.
/// @dev Created by DecentralizedInference's constructor with the same immutables. Functions that write refuse a
/// direct call: on its own storage this contract has no owner, escrow or balances that mean anything.
contract KernelExtension is KernelStorage {
    /// @dev The DecentralizedInference that created this extension: the only context it writes in.
    address private immutable _kernel;

    /// @notice A state-changing function was called on the extension itself rather than through the kernel.
    error KernelExtensionNotDelegated();

    /// @notice Longest store gateway URL a worker may publish.
    uint256 public constant MAX_GATEWAY_BYTES = 200;

    modifier onlyDelegated() {
        if (address(this) != _kernel) revert KernelExtensionNotDelegated();
        _;
    }

    /// @dev Called by DecentralizedInference's constructor with its own immutables.
    constructor(
        IModelFileSystem models_,
        IGPUManagement gpu_,
        IContextManager context_,
        IPromptScheduler scheduler_,
        IEAIMinter token_,
        uint256 eaiPerWei_
    ) KernelStorage(msg.sender, models_, gpu_, context_, scheduler_, token_, eaiPerWei_) {
        _kernel = msg.sender;
    }

    /// @notice Publishes the URL of the IPFS trustless gateway the caller serves its content store on (`GET
    /// /ipfs/{cid}`), so that other workers fetch model files from it without a central server; an empty URL
    /// withdraws it. Any worker registered in GPUManagement, whatever its status. Fetchers check every block
    /// against its id, so a gateway needs no trust; the rule here only keeps entries short and plain. (Kept in the
    /// kernel's extension, off every prompt's path, so that the worker registry's code and gas stay as they were.)
    function setStoreGateway(string calldata url) external onlyDelegated {
        (,, WorkerStatus status) = IWorkerStatus(address(_gpu)).getWorker(msg.sender);
        if (status == WorkerStatus.None) revert DecentralizedInferenceNotAWorker(msg.sender);
        bytes calldata text = bytes(url);
        uint256 length = text.length;
        if (length != 0) {
            if (length > MAX_GATEWAY_BYTES) revert DecentralizedInferenceInvalidGateway(length);
            bool http = length > 7 && bytes7(text[:7]) == "http://";
            bool https = length > 8 && bytes8(text[:8]) == "https://";
            if (!http && !https) revert DecentralizedInferenceInvalidGateway(0);
            for (uint256 i = 0; i < length; ++i) {
                bytes1 c = text[i];
                if (c < 0x21 || c > 0x7e) revert DecentralizedInferenceInvalidGateway(i);
            }
        }
        _storeGateways[msg.sender] = url;
        emit StoreGatewaySet(msg.sender, url);
    }

    /// @notice The store gateway URL `worker` published (empty when none).
    function storeGateway(address worker) external view returns (string memory) {
        return _storeGateways[worker];
    }

    /// @notice See {IAIKernel-cancelQueued}.
    function cancelQueued(uint256 promptId) external onlyDelegated {
        PromptCore storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Queued) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        uint256 cancellableAt = _lanes[prompt.lane].commitDeadline;
        if (block.timestamp < cancellableAt) {
            revert DecentralizedInferenceQueueTimeoutNotReached(promptId, cancellableAt);
        }
        _scheduler.cancel(promptId, prompt.modelId, prompt.committeeSize);
        if (prompt.attempt == CHALLENGE_ATTEMPT) _cancelChallenge(promptId, prompt);
        else _refund(promptId, prompt);
    }

    /// @notice See {IAIKernel-challenge}.
    function challenge(uint256 promptId) external payable onlyDelegated nonReentrant {
        PromptCore storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Finalized) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        if (prompt.attempt == CHALLENGE_ATTEMPT) revert DecentralizedInferenceAlreadyChallenged(promptId);
        if (_challengeDeadline(promptId, prompt) == 0) {
            Lane storage record = _lanes[prompt.lane];
            revert DecentralizedInferenceChallengeClosed(promptId, record.owner == promptId ? record.commitDeadline : 0);
        }
        KernelParams storage params = _params;
        uint256 bond = params.challengeBond;
        if (msg.value != bond) revert DecentralizedInferenceWrongBond(msg.value, bond);
        // A retired model's prompts stay challengeable: the terms are read without the retirement check.
        ModelTerms memory terms = _models.modelTerms(prompt.modelId);

        uint256 firstLane = prompt.lane;
        Lane storage first = _lanes[firstLane];
        Counters memory counters = _counters;
        // bond <= MAX_CHALLENGE_BOND < 2^96.
        counters.openEscrow += uint96(bond);
        uint256 laneId = _takeLane(counters);
        _counters = counters;
        // The challenge committee's lane holds its votes; the prompt's record stays in the first lane, held.
        Lane storage lane = _lanes[laneId];
        lane.revealDeadline = 0;
        lane.committedMask = 0;
        lane.revealedMask = 0;
        lane.commitSequence = 0;
        lane.commitCount = 0;
        lane.maxTokens = first.maxTokens;
        lane.callbackGasLimit = first.callbackGasLimit;
        lane.finality = first.finality;
        lane.turnSnapshot = first.turnSnapshot;
        lane.next = 0;
        lane.owner = uint64(promptId);
        lane.hold = LaneHold.None;
        lane.dropped = false;
        // A challenge can only come within the window and a delivery only after it: a held lane awaits delivery.
        bool delivery = first.hold == LaneHold.Delivery;
        first.hold = LaneHold.Challenge;

        uint8 size = 2 * prompt.committeeSize + 1;
        if (size > MAX_CHALLENGE_COMMITTEE) size = MAX_CHALLENGE_COMMITTEE;
        _challenges[promptId] = Challenge({
            challenger: msg.sender,
            // Lane ids are below 2^32.
            originalLane: uint32(firstLane),
            originalSize: prompt.committeeSize,
            status: ChallengeStatus.Pending,
            delivery: delivery,
            bond: uint128(bond),
            reserve: prompt.fee
        });
        prompt.fee = uint96(bond);
        prompt.attempt = CHALLENGE_ATTEMPT;
        prompt.committeeSize = size;
        prompt.lane = uint32(laneId);
        emit ChallengeOpened(promptId, msg.sender, bond, _outputHashes[promptId]);
        _schedule(promptId, prompt, terms, bond / lane.maxTokens, params.queueTimeout);
    }

    /// @notice See {IAIKernel-deliver}.
    function deliver(uint256 promptId, bytes calldata output) external onlyDelegated nonReentrant {
        PromptCore storage prompt = _existing(promptId);
        if (prompt.status != PromptStatus.Finalized) revert DecentralizedInferenceWrongStatus(promptId, prompt.status);
        uint256 laneId = prompt.lane;
        Lane storage lane = _lanes[laneId];
        if (lane.owner != promptId || lane.hold != LaneHold.Delivery) {
            revert DecentralizedInferenceNothingToDeliver(promptId);
        }
        uint256 opensAt = uint256(lane.commitDeadline) + 1;
        if (block.timestamp < opensAt) revert DecentralizedInferenceDeliveryTooEarly(promptId, opensAt);
        bytes32 outputHash = _outputHashes[promptId];
        if (sha256(output) != outputHash) {
            revert DecentralizedInferenceOutputMismatch(promptId, outputHash, sha256(output));
        }
        uint256 reserve = prompt.fee;
        uint256 callbackGasLimit = lane.callbackGasLimit;
        prompt.fee = 0;
        Counters memory counters = _counters;
        counters.openEscrow -= uint96(reserve);
        _release(counters, laneId);
        _counters = counters;
        _credit(msg.sender, reserve);
        _callBack(promptId, prompt.requester, callbackGasLimit, output);
    }

    /// @notice Withdraws the caller's claimable balance (fees earned, refunds) to `to`.
    function claim(address to) external onlyDelegated nonReentrant {
        if (to == address(0)) revert DecentralizedInferenceZeroAddress();
        uint256 amount = _claimable[msg.sender];
        if (amount == 0) revert DecentralizedInferenceNothingToClaim(msg.sender);
        _claimable[msg.sender] = 0;
        emit Claimed(msg.sender, to, amount);
        (bool sent,) = payable(to).call{value: amount}("");
        if (!sent) revert DecentralizedInferenceTransferFailed(to, amount);
    }

    /// @notice Replaces the parameters (validated: shares and slash rates within 100%, windows non-zero).
    function setParams(KernelParams calldata params_) external onlyDelegated onlyOwner {
        _setParams(params_);
    }

    /// @notice See {IAIKernel-estimateFee}.
    function estimateFee(uint256 modelId, uint32 maxTokens, uint32 callbackGasLimit)
        external
        view
        returns (uint256 fee)
    {
        if (maxTokens == 0) revert DecentralizedInferenceZeroMaxTokens();
        return uint256(_liveTerms(modelId).pricePerToken) * maxTokens + _gasFee(_params, callbackGasLimit);
    }

    /// @notice See {IAIKernel-gasFee}.
    function gasFee(uint32 callbackGasLimit) external view returns (uint256) {
        return _gasFee(_params, callbackGasLimit);
    }

    /// @notice See {IAIKernel-deliveryOpensAt}.
    function deliveryOpensAt(uint256 promptId) external view returns (uint256) {
        PromptCore storage prompt = _prompts[promptId];
        Lane storage lane = _lanes[prompt.lane];
        if (prompt.status != PromptStatus.Finalized || lane.owner != promptId || lane.hold != LaneHold.Delivery) {
            return 0;
        }
        return uint256(lane.commitDeadline) + 1;
    }

    /// @notice See {IAIKernel-getChallenge}.
    function getChallenge(uint256 promptId) external view returns (ChallengeRecord memory record) {
        Challenge storage challenge_ = _challenges[promptId];
        record.challenger = challenge_.challenger;
        record.status = challenge_.status;
        record.bond = challenge_.bond;
    }

    /// @notice See {IAIKernel-challengeDeadline}.
    function challengeDeadline(uint256 promptId) external view returns (uint256) {
        return _challengeDeadline(promptId, _prompts[promptId]);
    }

    /// @notice See {IAIKernel-refundOf}.
    function refundOf(uint256 promptId) external view returns (uint256) {
        PromptCore storage prompt = _prompts[promptId];
        if (prompt.status == PromptStatus.Refunded) return prompt.fee;
        if (prompt.status == PromptStatus.Unavailable) return _unavailableRefunds[promptId];
        return 0;
    }

    /// @notice See {IAIKernel-getResult}.
    function getResult(uint256 promptId)
        external
        view
        returns (PromptStatus status, bytes32 outputHash, address miner)
    {
        PromptCore storage prompt = _prompts[promptId];
        status = prompt.status;
        // Set at the first finalization; a challenge keeps it until it ends.
        outputHash = _outputHashes[promptId];
        if (outputHash != bytes32(0)) miner = prompt.miner;
    }

    /// @notice See {IAIKernel-getPrompt}.
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
            record.finality = lane.finality;
        }
    }

    /// @notice See {IAIKernel-getCommittee}.
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

    /// @notice See {IAIKernel-getParams}.
    function getParams() external view returns (KernelParams memory) {
        return _params;
    }

    /// @notice Native coin `account` can withdraw with {claim}.
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    /// @notice See {IAIKernel-openEscrow}.
    function openEscrow() external view returns (uint256) {
        return _counters.openEscrow;
    }

    /// @notice See {IAIKernel-counts}.
    function counts() external view returns (uint256 submitted, uint256 finalized) {
        return (_counters.promptCount, _emission.finalized);
    }

    /// @notice See {IAIKernel-currentBlockReward}.
    function currentBlockReward() external view returns (uint256) {
        return _blockReward();
    }

    /// @dev The end of a Finalized prompt's challenge window, zero when it cannot be challenged: challenged already,
    /// challenges off, or its lane (whose closing time is the window's end) passed on to another prompt or past.
    function _challengeDeadline(uint256 promptId, PromptCore storage prompt) private view returns (uint256) {
        if (prompt.status != PromptStatus.Finalized || prompt.attempt == CHALLENGE_ATTEMPT) return 0;
        if (_params.challengeWindow == 0) return 0;
        Lane storage lane = _lanes[prompt.lane];
        if (lane.owner != promptId) return 0;
        uint256 deadline = lane.commitDeadline;
        return block.timestamp > deadline ? 0 : deadline;
    }

    /// @dev A challenge no committee could be drawn for: the bond goes back, the answer and its record stand.
    function _cancelChallenge(uint256 promptId, PromptCore storage prompt) private {
        Challenge storage challenge_ = _challenges[promptId];
        uint256 bond = prompt.fee;
        uint256 first = challenge_.originalLane;
        Counters memory counters = _counters;
        counters.openEscrow -= uint96(bond);
        _append(counters, prompt.lane, block.timestamp);
        if (challenge_.delivery) _lanes[first].hold = LaneHold.Delivery;
        else _release(counters, first);
        _counters = counters;
        prompt.status = PromptStatus.Finalized;
        prompt.fee = uint96(challenge_.reserve);
        prompt.lane = uint32(first);
        prompt.committeeSize = challenge_.originalSize;
        challenge_.status = ChallengeStatus.Cancelled;
        _credit(challenge_.challenger, bond);
        emit ChallengeResolved(promptId, ChallengeStatus.Cancelled, _outputHashes[promptId], 0, 0);
    }

    /// @notice The kernel's component contracts.
    function components()
        external
        view
        returns (address models, address gpu, address context, address scheduler, address token)
    {
        return (address(_models), address(_gpu), address(_context), address(_scheduler), address(_token));
    }
}
