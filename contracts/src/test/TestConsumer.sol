// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AIKernelConsumer} from "../AIKernelConsumer.sol";
import {IAIKernel, InferenceRequest} from "../interfaces/IAIKernel.sol";

/// @notice The parts of the kernel beyond IAIKernel that the test consumer pokes at.
interface IKernelExtras {
    function claim(address to) external;

    function deliver(uint256 promptId, bytes calldata output) external;
}

/// @title TestConsumer
/// @notice A consumer for the kernel's tests: it submits prompts and, depending on its mode, records the
/// callback, reverts, burns all the gas it is given, or tries to re-enter the kernel. Not for production.
contract TestConsumer is AIKernelConsumer {
    /// @notice What the callback does.
    enum Mode {
        Record,
        Revert,
        BurnGas,
        Reenter
    }

    /// @notice The current mode.
    Mode public mode;
    /// @notice Whether receiving the native coin fails (to test refund credits).
    bool public rejectPayments;
    /// @notice Successful callbacks so far.
    uint256 public callbacks;
    /// @notice Prompt of the last successful callback.
    uint256 public lastPromptId;
    /// @notice Output of the last successful callback.
    bytes public lastOutput;
    /// @notice In Reenter mode: whether re-entering finalize failed, and whether claim failed.
    bool public reentryFinalizeFailed;
    /// @notice In Reenter mode: whether calling claim from the callback failed.
    bool public reentryClaimFailed;
    /// @notice In Reenter mode: whether delivering the callback again from the callback failed.
    bool public reentryDeliverFailed;

    /// @notice The test asked the callback to fail.
    error TestConsumerAsked();
    /// @notice Payments are switched off.
    error TestConsumerRejectsPayments();

    /// @param kernel_ The kernel.
    constructor(IAIKernel kernel_) AIKernelConsumer(kernel_) {}

    /// @notice Sets the callback behaviour.
    function setMode(Mode mode_) external {
        mode = mode_;
    }

    /// @notice Switches refusing the native coin on or off.
    function setRejectPayments(bool reject) external {
        rejectPayments = reject;
    }

    /// @notice Submits a prompt as this contract, forwarding msg.value.
    function ask(InferenceRequest calldata request) external payable returns (uint256) {
        return kernel.infer{value: msg.value}(request);
    }

    /// @notice Claims this contract's credits from the kernel to `to`.
    function claimFromKernel(address to) external {
        IKernelExtras(address(kernel)).claim(to);
    }

    /// @notice Decodes a Bool output (exposes the base helper).
    function decodeBool(bytes calldata output) external pure returns (bool) {
        return _decodeBool(output);
    }

    /// @notice Decodes a Choice output.
    function decodeChoice(bytes calldata output, uint256 count) external pure returns (uint256) {
        return _decodeChoice(output, count);
    }

    /// @notice Decodes a Uint output.
    function decodeUint(bytes calldata output, uint256 min, uint256 max) external pure returns (uint256) {
        return _decodeUint(output, min, max);
    }

    /// @notice Decodes an Int output.
    function decodeInt(bytes calldata output, int256 min, int256 max) external pure returns (int256) {
        return _decodeInt(output, min, max);
    }

    /// @notice The failure code of an output (exposes the base helper).
    function failureCode(bytes calldata output) external pure returns (uint8) {
        return _failureCode(output);
    }

    receive() external payable {
        if (rejectPayments) revert TestConsumerRejectsPayments();
    }

    function _onInferenceResult(uint256 promptId, bytes calldata output) internal override {
        Mode current = mode;
        if (current == Mode.Revert) revert TestConsumerAsked();
        if (current == Mode.BurnGas) {
            uint256 spin;
            while (true) {
                ++spin;
            }
        }
        if (current == Mode.Reenter) {
            try kernel.finalize(promptId, output) {} catch {
                reentryFinalizeFailed = true;
            }
            try IKernelExtras(address(kernel)).claim(address(this)) {} catch {
                reentryClaimFailed = true;
            }
            try IKernelExtras(address(kernel)).deliver(promptId, output) {} catch {
                reentryDeliverFailed = true;
            }
        }
        ++callbacks;
        lastPromptId = promptId;
        lastOutput = output;
    }
}
