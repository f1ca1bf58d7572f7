// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Hardware, IAIKernel, InferenceRequest} from "../interfaces/IAIKernel.sol";
import {GPUManagement} from "../kernel/GPUManagement.sol";
import {PromptScheduler} from "../kernel/PromptScheduler.sol";

/// @title CommitteeGambler
/// @notice An attacker for the kernel's tests: it tries to see or choose a prompt's committee in the transactions
/// that submit, pump, finalize and draw, and, registered as a worker itself, to shape the draw pool in the drawing
/// transaction. Not for production.
contract CommitteeGambler {
    IAIKernel private immutable _kernel;
    PromptScheduler private immutable _scheduler;
    GPUManagement private immutable _gpu;

    /// @notice What the gambler saw of `promptId`'s committee inside its own transaction.
    event Seen(uint256 indexed promptId, uint256 members);

    /// @notice The drawn committee holds a member the gambler does not want.
    error CommitteeGamblerDisfavoured(address member);

    constructor(IAIKernel kernel_, PromptScheduler scheduler_, GPUManagement gpu_) {
        _kernel = kernel_;
        _scheduler = scheduler_;
        _gpu = gpu_;
    }

    /// @notice Submits a prompt and looks at its committee in the same transaction.
    function submitAndPeek(InferenceRequest calldata request) external payable returns (uint256 promptId) {
        promptId = _kernel.infer{value: msg.value}(request);
        _peek(promptId);
    }

    /// @notice Pumps the model's queue and looks at `promptId`'s committee in the same transaction.
    function pumpAndPeek(uint256 modelId, uint256 promptId) external {
        _scheduler.pump(modelId, 8);
        _peek(promptId);
    }

    /// @notice Finalizes `promptId` (a retry follows when no quorum agreed) and looks at its committee.
    function finalizeAndPeek(uint256 promptId, bytes calldata output) external {
        _kernel.finalize(promptId, output);
        _peek(promptId);
    }

    /// @notice Draws, then reverts the whole transaction if `banned` sits on `promptId`'s committee.
    function drawUnless(uint256 promptId, address banned) external {
        _scheduler.draw(16);
        (address[] memory members,) = _kernel.getCommittee(promptId);
        for (uint256 i = 0; i < members.length; ++i) {
            if (members[i] == banned) revert CommitteeGamblerDisfavoured(banned);
        }
    }

    /// @notice Registers this contract as a worker with `stake` EAI it already holds.
    function register(uint256[] calldata models, uint16 capacity, uint256 stake) external {
        IERC20(address(_gpu.stakeToken())).approve(address(_gpu), stake);
        _gpu.register(Hardware({gpuModel: "gambler", memoryMb: 1 << 20, engine: "none"}), models, capacity, stake);
    }

    /// @notice Leaves the pool and draws in one transaction.
    function pauseAndDraw() external {
        _gpu.pause();
        _scheduler.draw(16);
    }

    /// @notice Rejoins the pool and draws in one transaction.
    function resumeAndDraw() external {
        _gpu.resume();
        _scheduler.draw(16);
    }

    function _peek(uint256 promptId) private {
        (address[] memory members,) = _kernel.getCommittee(promptId);
        emit Seen(promptId, members.length);
    }
}
