// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AIKernelConsumer} from "../AIKernelConsumer.sol";
import "../interfaces/IAIKernel.sol";

/// @title HelloKernel
/// @notice The smallest complete AI-powered contract: ask a yes/no question, get the committee's answer back.
contract HelloKernel is AIKernelConsumer {
    /// @notice Output tokens an answer may use ("true" or "false").
    uint32 public constant MAX_TOKENS = 4;
    /// @notice Gas the kernel gives the callback.
    uint32 public constant CALLBACK_GAS = 100_000;
    /// @notice The model that answers.
    uint256 public immutable modelId;
    /// @notice The answer to each prompt, once the kernel called back.
    mapping(uint256 promptId => bool) public answer;
    /// @notice Whether the kernel called back for a prompt.
    mapping(uint256 promptId => bool) public answered;

    /// @notice The kernel answered `promptId`.
    event Answered(uint256 indexed promptId, bool yes);

    /// @notice msg.value is not the fee ({IAIKernel-estimateFee} for MAX_TOKENS and CALLBACK_GAS).
    error HelloKernelWrongFee(uint256 value, uint256 fee);

    /// @param kernel_ The kernel (DecentralizedInference).
    /// @param modelId_ The model that answers.
    constructor(IAIKernel kernel_, uint256 modelId_) AIKernelConsumer(kernel_) {
        modelId = modelId_;
    }

    /// @notice Asks a yes/no question; pay exactly `kernel.estimateFee(modelId, MAX_TOKENS, CALLBACK_GAS)`.
    function ask(string calldata question) external payable returns (uint256 promptId) {
        uint256 fee = kernel.estimateFee(modelId, MAX_TOKENS, CALLBACK_GAS);
        if (msg.value != fee) revert HelloKernelWrongFee(msg.value, fee);
        promptId = kernel.infer{value: fee}(
            InferenceRequest({
                modelId: modelId,
                topic: "hello",
                input: DataRef(DataKind.Onchain, bytes(question), 0, 0),
                extra: DataRef(DataKind.Onchain, "", 0, 0),
                format: OutputFormat(FormatKind.Bool, ""),
                maxTokens: MAX_TOKENS,
                feePerToken: 0,
                sampling: Sampling(SamplingMode.Greedy, 0, 0, 0),
                callbackGasLimit: CALLBACK_GAS,
                finality: Finality.Immediate
            })
        );
    }

    /// @dev Called by the kernel (only) with the agreed answer.
    function _onInferenceResult(uint256 promptId, bytes calldata output) internal override {
        bool yes = _decodeBool(output);
        answer[promptId] = yes;
        answered[promptId] = true;
        emit Answered(promptId, yes);
    }
}
