// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {KernelParams, PromptRecord, PromptStatus} from "../interfaces/IAIKernel.sol";
import {
    IContextManager,
    IEAIMinter,
    IGPUManagement,
    IModelFileSystem,
    IPromptScheduler
} from "../interfaces/IKernelComponents.sol";
import {KernelStorage, Lane, PromptCore} from "./KernelStorage.sol";

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

    /// @notice See {IAIKernel-cancelQueued}.
    function cancelQueued(uint256 promptId) external onlyDelegated {
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
        if (status == PromptStatus.Finalized) {
            outputHash = _outputHashes[promptId];
            miner = prompt.miner;
        }
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

    /// @notice The kernel's component contracts.
    function components()
        external
        view
        returns (address models, address gpu, address context, address scheduler, address token)
    {
        return (address(_models), address(_gpu), address(_context), address(_scheduler), address(_token));
    }
}
