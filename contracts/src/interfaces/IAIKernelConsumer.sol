// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IAIKernelConsumer
/// @notice What a contract implements to receive AI Kernel results by callback.
interface IAIKernelConsumer {
    /// @notice Called by the kernel when the prompt `promptId` this contract submitted is finalized.
    /// @dev Runs with the gas limit the request asked for. If it reverts or runs out of gas, the kernel
    /// records the failure and finalization stands; the result stays readable with `getResult`.
    /// @param promptId The prompt.
    /// @param output The canonical output bytes (see `FormatKind`).
    function onInferenceResult(uint256 promptId, bytes calldata output) external;
}
