// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAIKernel} from "./interfaces/IAIKernel.sol";
import {IAIKernelConsumer} from "./interfaces/IAIKernelConsumer.sol";

/// @title AIKernelConsumer
/// @notice Base for dapps that ask AI Kernel questions: it accepts callbacks only from the kernel and decodes
/// the canonical encodings of the structured output formats.
/// @dev Implement {_onInferenceResult}. Decoders revert with {AIKernelConsumerInvalidOutput} when the bytes
/// are not a canonical encoding in range, so a dapp never acts on a malformed answer.
abstract contract AIKernelConsumer is IAIKernelConsumer {
    /// @notice The kernel that submits this contract's prompts and calls it back.
    IAIKernel public immutable kernel;

    /// @notice The callback came from an account other than the kernel.
    error AIKernelConsumerUnauthorizedCallback(address caller);
    /// @notice The output bytes are not a canonical encoding in the expected range.
    error AIKernelConsumerInvalidOutput(bytes output);
    /// @notice The zero address was given as the kernel.
    error AIKernelConsumerZeroKernel();

    /// @dev Reverts unless the caller is {kernel}.
    modifier onlyKernel() {
        if (msg.sender != address(kernel)) revert AIKernelConsumerUnauthorizedCallback(msg.sender);
        _;
    }

    /// @param kernel_ The kernel's front door (DecentralizedInference).
    constructor(IAIKernel kernel_) {
        if (address(kernel_) == address(0)) revert AIKernelConsumerZeroKernel();
        kernel = kernel_;
    }

    /// @inheritdoc IAIKernelConsumer
    function onInferenceResult(uint256 promptId, bytes calldata output) external virtual onlyKernel {
        _onInferenceResult(promptId, output);
    }

    /// @dev The dapp's handling of a finalized prompt's output.
    function _onInferenceResult(uint256 promptId, bytes calldata output) internal virtual;

    /// @dev Decodes a Bool output: exactly 32 bytes holding 0 or 1.
    function _decodeBool(bytes calldata output) internal pure returns (bool) {
        uint256 word = _word(output);
        if (word > 1) revert AIKernelConsumerInvalidOutput(output);
        return word == 1;
    }

    /// @dev Decodes a Choice output: the index of one of `choiceCount` options.
    function _decodeChoice(bytes calldata output, uint256 choiceCount) internal pure returns (uint256 index) {
        index = _word(output);
        if (index >= choiceCount) revert AIKernelConsumerInvalidOutput(output);
    }

    /// @dev Decodes a Uint output in [min, max].
    function _decodeUint(bytes calldata output, uint256 min, uint256 max) internal pure returns (uint256 value) {
        value = _word(output);
        if (value < min || value > max) revert AIKernelConsumerInvalidOutput(output);
    }

    /// @dev Decodes an Int output in [min, max].
    function _decodeInt(bytes calldata output, int256 min, int256 max) internal pure returns (int256 value) {
        value = int256(_word(output));
        if (value < min || value > max) revert AIKernelConsumerInvalidOutput(output);
    }

    /// @dev The one 32-byte word of a canonical non-text output.
    function _word(bytes calldata output) private pure returns (uint256) {
        if (output.length != 32) revert AIKernelConsumerInvalidOutput(output);
        return uint256(bytes32(output));
    }
}
