// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {AIKernelConsumer} from "../AIKernelConsumer.sol";
import {
    DataKind,
    DataRef,
    FormatKind,
    IAIKernel,
    Finality,
    InferenceRequest,
    OutputFormat,
    Sampling,
    SamplingMode
} from "../interfaces/IAIKernel.sol";

/// @title CreditScore
/// @notice The whitepaper's AI-powered wallet credit score: the model rates an address from 300 (very risky)
/// to 850 (excellent) from its activity, and the score is kept onchain with the prompt that produced it.
/// @dev The extra context holds what the contract can read itself (the account's balance, whether it has
/// code) and the activity the caller reports, labelled as reported: the contract cannot check it, so a score
/// also records who requested it. Each account is asked about in a topic of its own, so a new score sees the
/// account's earlier assessments (the topic's turns) and nothing about other accounts.
///
/// Funds: the requester pays the fee, which goes to the kernel. If the prompt ends without a score (refunded,
/// or finalized with a callback that failed), {reclaim} ends the request and returns the fee when the kernel
/// refunded it; a prompt stuck in the kernel's queue past its timeout can be cancelled with {cancel} first.
contract CreditScore is AIKernelConsumer, ReentrancyGuardTransient {
    /// @notice Where a score request is.
    enum RequestStatus {
        None,
        Pending,
        Scored,
        Reclaimed
    }

    /// @notice A request for an account's score.
    /// @param requester Who asked and paid the fee.
    /// @param account The account rated.
    /// @param fee The kernel fee paid.
    /// @param promptId The scoring prompt.
    /// @param status Where the request is.
    struct Request {
        address requester;
        address account;
        uint256 fee;
        uint256 promptId;
        RequestStatus status;
    }

    /// @notice One score of an account.
    /// @param score The score, in [{MIN_SCORE}, {MAX_SCORE}].
    /// @param time Block timestamp of the callback that stored it.
    /// @param promptId The prompt that produced it.
    /// @param requester Who requested it (and reported the activity it rests on).
    struct Score {
        uint16 score;
        uint64 time;
        uint256 promptId;
        address requester;
    }

    /// @notice Lowest score.
    uint256 public constant MIN_SCORE = 300;
    /// @notice Highest score.
    uint256 public constant MAX_SCORE = 850;
    /// @notice Output tokens the scoring prompt may use (three digits and the end).
    uint32 public constant MAX_TOKENS = 8;
    /// @notice Gas the kernel gives the callback.
    uint32 public constant CALLBACK_GAS = 200_000;
    /// @notice Longest reported activity, in bytes.
    uint256 public constant MAX_ACTIVITY_BYTES = 2048;

    /// @notice The model that scores accounts.
    uint256 public immutable modelId;
    /// @notice Requests by id (sequential from 1).
    mapping(uint256 requestId => Request) private _requests;
    /// @notice The request each scoring prompt belongs to.
    mapping(uint256 promptId => uint256 requestId) public requestOfPrompt;
    /// @notice Number of requests made.
    uint256 public requestCount;
    /// @notice Every score of each account, oldest first.
    mapping(address account => Score[]) private _scores;

    /// @notice A score was requested and sent to the kernel.
    event ScoreRequested(
        uint256 indexed requestId, uint256 indexed promptId, address indexed account, address requester
    );
    /// @notice The kernel's answer was stored as the account's latest score.
    event ScoreStored(uint256 indexed requestId, address indexed account, uint256 score, uint256 promptId);
    /// @notice A request whose prompt ended without a score was closed; `refund` is the returned fee.
    event ScoreReclaimed(uint256 indexed requestId, address indexed requester, uint256 refund);

    /// @notice msg.value is not exactly the scoring fee.
    error CreditScoreWrongFee(uint256 value, uint256 fee);
    /// @notice The account to score is the zero address.
    error CreditScoreZeroAccount();
    /// @notice The reported activity is longer than {MAX_ACTIVITY_BYTES}.
    error CreditScoreActivityTooLong(uint256 length, uint256 max);
    /// @notice No such request.
    error CreditScoreUnknownRequest(uint256 requestId);
    /// @notice The request is not pending.
    error CreditScoreNotPending(uint256 requestId, RequestStatus status);
    /// @notice The request's prompt is still running.
    error CreditScorePromptRunning(uint256 requestId, uint256 promptId);
    /// @notice The account has no score yet.
    error CreditScoreNoScore(address account);
    /// @notice Sending native coin failed.
    error CreditScoreTransferFailed(address to, uint256 amount);

    /// @param kernel_ The kernel.
    /// @param modelId_ The model that scores accounts.
    constructor(IAIKernel kernel_, uint256 modelId_) AIKernelConsumer(kernel_) {
        modelId = modelId_;
    }

    /// @notice Receives refunded fees from the kernel.
    receive() external payable {}

    /// @notice The kernel fee for one score; send exactly this to {requestScore}.
    function scoringFee() public view returns (uint256) {
        return _feeFor(modelId, MAX_TOKENS, CALLBACK_GAS);
    }

    /// @notice Asks the kernel for `account`'s credit score. msg.value = {scoringFee}.
    /// @param account The account to rate.
    /// @param activity What the account has done (transfers, swaps, loans...), as text the model reads; may
    /// be empty, then the model has only the facts the contract reads onchain.
    /// @return requestId The new request.
    function requestScore(address account, string calldata activity)
        external
        payable
        nonReentrant
        returns (uint256 requestId)
    {
        if (account == address(0)) revert CreditScoreZeroAccount();
        if (bytes(activity).length > MAX_ACTIVITY_BYTES) {
            revert CreditScoreActivityTooLong(bytes(activity).length, MAX_ACTIVITY_BYTES);
        }
        uint256 fee = scoringFee();
        if (msg.value != fee) revert CreditScoreWrongFee(msg.value, fee);

        requestId = ++requestCount;
        Request storage request = _requests[requestId];
        request.requester = msg.sender;
        request.account = account;
        request.fee = fee;
        request.status = RequestStatus.Pending;

        (uint256 promptId,) = _submit(
            InferenceRequest({
                modelId: modelId,
                topic: string.concat("credit-score/", Strings.toHexString(account)),
                input: DataRef(
                    DataKind.Onchain,
                    "Based on this history, what is the wallet's credit score? Reliable borrowers score 700 to 850.",
                    bytes32(0),
                    0
                ),
                extra: DataRef(DataKind.Onchain, accountContext(account, activity), bytes32(0), 0),
                format: OutputFormat(FormatKind.Uint, abi.encode(MIN_SCORE, MAX_SCORE)),
                maxTokens: MAX_TOKENS,
                feePerToken: 0,
                sampling: Sampling(SamplingMode.Greedy, 0, 0, 0),
                callbackGasLimit: CALLBACK_GAS,
                finality: Finality.Immediate
            })
        );
        request.promptId = promptId;
        requestOfPrompt[promptId] = requestId;
        emit ScoreRequested(requestId, promptId, account, msg.sender);
    }

    /// @notice Closes a request whose prompt ended without a score (refunded, or finalized with a failed
    /// callback), returning the fee to the requester when the kernel refunded it. Anyone may call.
    function reclaim(uint256 requestId) external nonReentrant {
        Request storage request = _pending(requestId);
        uint256 promptId = request.promptId;
        if (!_promptEnded(promptId)) revert CreditScorePromptRunning(requestId, promptId);
        uint256 refund = 0;
        uint256 refunded = _refundOf(promptId);
        if (refunded != 0) {
            // The fee is in this contract's balance once collected, now or by an earlier reclaim.
            _collectKernelCredits();
            refund = refunded;
        }
        request.status = RequestStatus.Reclaimed;
        address requester = request.requester;
        emit ScoreReclaimed(requestId, requester, refund);
        _send(requester, refund);
    }

    /// @notice Cancels the scoring prompt of a request still waiting in the kernel's queue after its timeout
    /// (the kernel refunds the fee); {reclaim} then returns the fee to the requester. Anyone may call: the
    /// funds only ever go back to the requester.
    function cancel(uint256 requestId) external {
        _cancelQueued(_pending(requestId).promptId);
    }

    /// @notice The extra context a score request for `account` carries: the facts read onchain, then the
    /// reported activity.
    function accountContext(address account, string calldata activity) public view returns (bytes memory) {
        uint256 codeSize = account.code.length;
        bytes memory kind = codeSize == 0
            ? bytes("an externally owned account (no code)")
            : abi.encodePacked("a contract (", Strings.toString(codeSize), " bytes of code)");
        return abi.encodePacked(
            "Address: ",
            Strings.toHexString(account),
            "\nRead onchain: balance ",
            Strings.toString(account.balance),
            " wei; ",
            kind,
            ".\nReported activity: ",
            bytes(activity).length == 0 ? bytes("none reported") : bytes(activity)
        );
    }

    /// @notice `account`'s latest score; reverts with {CreditScoreNoScore} if it has none.
    function scoreOf(address account) external view returns (Score memory) {
        Score[] storage scores = _scores[account];
        if (scores.length == 0) revert CreditScoreNoScore(account);
        return scores[scores.length - 1];
    }

    /// @notice Every score of `account`, oldest first.
    function scoreHistory(address account) external view returns (Score[] memory) {
        return _scores[account];
    }

    /// @notice A request by id.
    function getRequest(uint256 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    /// @dev The kernel's answer: store it as the account's latest score. The decoder rejects a value outside
    /// [{MIN_SCORE}, {MAX_SCORE}], which leaves the request pending for {reclaim}. Not behind the lock (a locked
    /// call elsewhere could otherwise make it fail); it makes no external call.
    function _onInferenceResult(uint256 promptId, bytes calldata output) internal override {
        uint256 requestId = requestOfPrompt[promptId];
        Request storage request = _pending(requestId);
        uint256 score = _decodeUint(output, MIN_SCORE, MAX_SCORE);
        request.status = RequestStatus.Scored;
        address account = request.account;
        // The decoder bounds the score by MAX_SCORE, far below 2^16; timestamps fit 64 bits.
        _scores[account].push(Score(uint16(score), uint64(block.timestamp), promptId, request.requester));
        emit ScoreStored(requestId, account, score, promptId);
    }

    function _pending(uint256 requestId) private view returns (Request storage request) {
        request = _requests[requestId];
        if (request.status == RequestStatus.None) revert CreditScoreUnknownRequest(requestId);
        if (request.status != RequestStatus.Pending) revert CreditScoreNotPending(requestId, request.status);
    }

    function _send(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool sent,) = payable(to).call{value: amount}("");
        if (!sent) revert CreditScoreTransferFailed(to, amount);
    }
}
