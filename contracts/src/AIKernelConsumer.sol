// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAIKernel, InferenceRequest, PromptStatus} from "./interfaces/IAIKernel.sol";
import {IAIKernelConsumer} from "./interfaces/IAIKernelConsumer.sol";

/// @notice The topic settings of the ContextManager a consumer may change for its own topics.
interface ITopicSettings {
    /// @notice Sets the system prompt of the caller's topic as a new revision.
    function setSystemPrompt(string calldata topic, string calldata systemPrompt) external;

    /// @notice Sets how many turns of history the caller's topic includes in new prompts' context.
    function setWindow(string calldata topic, uint16 window) external;
}

/// @title AIKernelConsumer
/// @notice Base for dapps that ask AI Kernel questions: it accepts callbacks only from the kernel and decodes
/// the canonical encodings of the structured output formats.
/// @dev Implement {_onInferenceResult}. Decoders revert with {AIKernelConsumerInvalidOutput} when the bytes
/// are not a canonical encoding in range, so a dapp never acts on a malformed answer.
///
/// A prompt can end without the callback acting on it: refunded (no quorum twice, or cancelled while queued),
/// unavailable (fewer than a quorum of its committee committed: most of the fee is refunded), finalized with a
/// canonical failure answer (the prompt could not run: see {_failureCode}; the decoders reject it), or finalized
/// with a callback that reverted. A dapp that holds funds for a pending prompt must therefore let them be
/// released once {_promptEnded} is true and its own record is still pending; the kernel credits the refunded
/// part of the fee ({_refundOf}) to this contract, and {_collectKernelCredits} pulls it back so it can be
/// returned. Anyone may cancel a prompt stuck in the queue past the kernel's queue timeout; a dapp may also offer
/// {_cancelQueued} itself.
///
/// Finality: each request chooses when its callback runs (`InferenceRequest.finality`). Immediate: at
/// finalization, on the committee's answer. Optimistic: only once the answer can no longer be challenged (after
/// the kernel's challenge window, when anyone calls the kernel's `deliver`, or at the end of a challenge, with the
/// answer it leaves standing, the corrected one if it overturned the committee). A dapp whose callback moves value
/// should choose Optimistic: a colluding committee majority can get a wrong answer finalized, and while a challenge
/// then slashes it and corrects the record, it cannot undo what an Immediate callback already did. Immediate suits
/// answers that are cheap to be wrong about (a chat reply, a name suggestion) and want no delay.
///
/// Do not put the dapp's own reentrancy lock on {_onInferenceResult}: anyone may call the kernel's `finalize`,
/// including from inside a locked function of the dapp that sends them ETH, and the callback would then fail.
/// Update state before any transfer in the callback instead.
abstract contract AIKernelConsumer is IAIKernelConsumer {
    /// @dev The highest failure code (aik-protocol's `Failure`); bytes with another code are no failure answer.
    uint8 private constant MAX_FAILURE_CODE = 5;

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

    /// @dev Submits `request` as this contract, paying exactly its fee from this contract's balance.
    /// @return promptId The kernel's id for the prompt.
    /// @return fee What was paid: the model's price, or the request's bid, times maxTokens, plus the protocol's gas
    /// ({IAIKernel-gasFee}).
    function _submit(InferenceRequest memory request) internal returns (uint256 promptId, uint256 fee) {
        fee = request.feePerToken == 0
            ? kernel.estimateFee(request.modelId, request.maxTokens, request.callbackGasLimit)
            : uint256(request.feePerToken) * request.maxTokens + kernel.gasFee(request.callbackGasLimit);
        promptId = kernel.infer{value: fee}(request);
    }

    /// @dev The fee {_submit} would pay for `maxTokens` at the model's price with a callback of `callbackGasLimit`.
    function _feeFor(uint256 modelId, uint32 maxTokens, uint32 callbackGasLimit) internal view returns (uint256) {
        return kernel.estimateFee(modelId, maxTokens, callbackGasLimit);
    }

    /// @dev The kernel's status of a prompt.
    function _promptStatus(uint256 promptId) internal view returns (PromptStatus status) {
        (status,,) = kernel.getResult(promptId);
    }

    /// @dev Whether the prompt is over: finalized with no Optimistic callback still to come (the callback ran, or
    /// failed), refunded or unavailable. A challenged prompt is not over until its challenge ends.
    function _promptEnded(uint256 promptId) internal view returns (bool) {
        PromptStatus status = _promptStatus(promptId);
        if (status == PromptStatus.Finalized) return kernel.deliveryOpensAt(promptId) == 0;
        return status == PromptStatus.Refunded || status == PromptStatus.Unavailable;
    }

    /// @dev What the kernel credited back to this contract for a closed prompt (see {IAIKernel-refundOf}).
    function _refundOf(uint256 promptId) internal view returns (uint256) {
        return kernel.refundOf(promptId);
    }

    /// @dev The reason code of a canonical failure answer, zero for any other output. A failure answer is the five
    /// bytes 0xff "AIK" code: never UTF-8 and never one 32-byte word, so it cannot be mistaken for an answer of
    /// any format. Codes (aik-protocol's `Failure`): 1 the context does not fit the model, 2 the output format
    /// cannot be answered by the model, 3 no complete value within maxTokens, 4 the output is longer than the
    /// kernel's MAX_OUTPUT_BYTES, 5 the input cannot be processed (tokenizer, template or numerics).
    function _failureCode(bytes calldata output) internal pure returns (uint8) {
        if (output.length != 5 || bytes4(output[:4]) != 0xff41494b) return 0;
        uint8 code = uint8(output[4]);
        return code <= MAX_FAILURE_CODE ? code : 0;
    }

    /// @dev Pulls this contract's credits out of the kernel (refunded fees); returns the amount, zero if none.
    /// The contract must accept the native coin.
    function _collectKernelCredits() internal returns (uint256 amount) {
        amount = kernel.claimable(address(this));
        if (amount != 0) kernel.claim(address(this));
    }

    /// @dev Cancels a prompt still queued after the kernel's queue timeout; the kernel refunds the fee (status
    /// Refunded), so the dapp's reclaim path then returns what it held. Reverts as the kernel does when the prompt
    /// is not queued or the timeout has not passed.
    function _cancelQueued(uint256 promptId) internal {
        kernel.cancelQueued(promptId);
    }

    /// @dev Sets the system prompt of this contract's `topic` (a new revision for later prompts).
    function _setSystemPrompt(string memory topic, string memory systemPrompt) internal {
        (,, address context,,) = kernel.components();
        ITopicSettings(context).setSystemPrompt(topic, systemPrompt);
    }

    /// @dev Sets how many past turns of this contract's `topic` later prompts include.
    function _setWindow(string memory topic, uint16 window) internal {
        (,, address context,,) = kernel.components();
        ITopicSettings(context).setWindow(topic, window);
    }

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
