// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
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

/// @title BtcPriceOracle
/// @notice The whitepaper's AI-powered oracle: authorized feeders append BTC/USD price reports to the oracle's
/// topic, and a query asks the kernel, in that same topic, for the aggregated current price.
/// @dev A price report is itself a prompt in {TOPIC}: its input states the feeder and the price, its answer (Uint,
/// the price echoed) is cheap, and once finalized the kernel appends it to the topic as a turn. A query
/// ({requestPrice}) is a Uint prompt in [{minPrice}, {maxPrice}] whose context is the topic's last
/// {historyWindow} turns, so the model sees the recent reports; its callback stores the price with its prompt id.
/// The range is the deployer's statement of what is sane, and it also keeps a small model's constrained answer
/// from running past the number: with a maximum of 150000, no digit can follow "97120", so the answer ends there.
/// Reports and queries are paid by their callers (msg.value, excess sent back). If a prompt ends without the
/// callback acting on it, {reclaim} returns the fee when the kernel refunded it; a prompt stuck in the kernel's
/// queue past its timeout can be cancelled with {cancel} first.
contract BtcPriceOracle is AIKernelConsumer, Ownable, ReentrancyGuardTransient {
    /// @notice What a prompt of the oracle is.
    enum RequestKind {
        Report,
        Query
    }

    /// @notice Where a prompt of the oracle is.
    enum RequestStatus {
        None,
        Pending,
        Answered,
        Reclaimed
    }

    /// @notice A prompt of the oracle: a feeder's report or a price query.
    /// @param requester Who paid for it (the feeder, or the querier).
    /// @param kind Report or query.
    /// @param fee The kernel fee paid.
    /// @param reportedPrice The feeder's price (reports only).
    /// @param answer The kernel's Uint answer: the echoed report, or the aggregated price (set once Answered).
    /// @param status Where it is.
    struct Request {
        address requester;
        RequestKind kind;
        uint256 fee;
        uint256 reportedPrice;
        uint256 answer;
        RequestStatus status;
    }

    /// @notice The oracle's topic: reports and queries are its turns.
    string public constant TOPIC = "btc-usd";
    /// @notice Largest {maxPrice}: ten digits, so an answer always fits in {MAX_TOKENS}.
    uint256 public constant PRICE_LIMIT = 9_999_999_999;
    /// @notice Output tokens of a Uint answer (up to ten digits and the end of generation).
    uint32 public constant MAX_TOKENS = 12;
    /// @notice Gas the kernel gives the callback.
    uint32 public constant CALLBACK_GAS = 150_000;
    /// @notice Largest history window (the ContextManager's limit).
    uint16 public constant MAX_WINDOW = 64;
    /// @notice The topic's system prompt: how to read the reports and answer queries.
    string public constant SYSTEM_PROMPT =
        "You are a BTC/USD price oracle. Feeders report prices in whole US dollars. When asked for the current "
        "price, answer with the median of the most recent reports, as a whole number of US dollars.";

    /// @notice The model that reads the reports.
    uint256 public immutable modelId;
    /// @notice Turns of the topic (reports and answered queries) a query's context includes.
    uint16 public immutable historyWindow;
    /// @notice Lowest price, in whole US dollars, a report or an answer may have.
    uint256 public immutable minPrice;
    /// @notice Highest price, in whole US dollars, a report or an answer may have.
    uint256 public immutable maxPrice;
    /// @notice The most recent query's aggregated price (zero before the first answer).
    uint256 public latestPrice;
    /// @notice The prompt that produced {latestPrice}.
    uint256 public latestPromptId;
    /// @notice When {latestPrice} was stored.
    uint256 public latestUpdatedAt;
    /// @notice The aggregated price each answered query stored, by prompt id.
    mapping(uint256 promptId => uint256 price) public priceOf;
    /// @notice Accounts allowed to report prices.
    mapping(address account => bool) public isFeeder;

    mapping(uint256 promptId => Request) private _requests;

    /// @notice The owner allowed or disallowed a feeder.
    event FeederSet(address indexed feeder, bool allowed);
    /// @notice A feeder reported a price; the report becomes a turn of the topic once its prompt is finalized.
    event PriceReported(uint256 indexed promptId, address indexed feeder, uint256 price);
    /// @notice A report's prompt was finalized; `echoed` is the model's echo of the reported price.
    event ReportRecorded(uint256 indexed promptId, address indexed feeder, uint256 price, uint256 echoed);
    /// @notice Someone asked for the aggregated price.
    event PriceRequested(uint256 indexed promptId, address indexed requester);
    /// @notice A query was answered; `price` is stored under `promptId`.
    event PriceUpdated(uint256 indexed promptId, uint256 price, bool latest);
    /// @notice A prompt that ended without the callback acting on it returned its fee (when refunded).
    event RequestReclaimed(uint256 indexed promptId, address indexed requester, uint256 amount);

    /// @notice The window is zero or above {MAX_WINDOW}.
    error BtcPriceOracleInvalidWindow(uint16 window, uint16 limit);
    /// @notice The price range is empty, starts at zero or ends above {PRICE_LIMIT}.
    error BtcPriceOracleInvalidRange(uint256 min, uint256 max);
    /// @notice The zero address cannot be a feeder.
    error BtcPriceOracleZeroFeeder();
    /// @notice The caller is not an allowed feeder.
    error BtcPriceOracleNotFeeder(address caller);
    /// @notice The reported price is outside [{minPrice}, {maxPrice}].
    error BtcPriceOracleInvalidPrice(uint256 price, uint256 min, uint256 max);
    /// @notice msg.value does not cover the kernel fee.
    error BtcPriceOracleFeeNotCovered(uint256 value, uint256 fee);
    /// @notice No prompt of the oracle has this id.
    error BtcPriceOracleUnknownRequest(uint256 promptId);
    /// @notice The prompt is not pending.
    error BtcPriceOracleNotPending(uint256 promptId, RequestStatus status);
    /// @notice The prompt is still running.
    error BtcPriceOraclePromptRunning(uint256 promptId);
    /// @notice Sending native coin failed.
    error BtcPriceOracleTransferFailed(address to, uint256 amount);
    /// @notice Native coin came from an account other than the kernel (only refunds are accepted).
    error BtcPriceOracleDirectPayment(address sender);

    /// @notice Sets the topic's system prompt and window; the deployer owns the oracle and manages feeders.
    /// @param kernel_ The kernel.
    /// @param modelId_ The model that reads the reports.
    /// @param historyWindow_ Turns a query sees, 1..={MAX_WINDOW}; reports and answered queries both count.
    /// @param minPrice_ Lowest sane price in whole US dollars, at least 1.
    /// @param maxPrice_ Highest sane price, from minPrice_ to {PRICE_LIMIT}.
    constructor(IAIKernel kernel_, uint256 modelId_, uint16 historyWindow_, uint256 minPrice_, uint256 maxPrice_)
        AIKernelConsumer(kernel_)
        Ownable(msg.sender)
    {
        if (historyWindow_ == 0 || historyWindow_ > MAX_WINDOW) {
            revert BtcPriceOracleInvalidWindow(historyWindow_, MAX_WINDOW);
        }
        if (minPrice_ == 0 || minPrice_ > maxPrice_ || maxPrice_ > PRICE_LIMIT) {
            revert BtcPriceOracleInvalidRange(minPrice_, maxPrice_);
        }
        modelId = modelId_;
        historyWindow = historyWindow_;
        minPrice = minPrice_;
        maxPrice = maxPrice_;
        _setSystemPrompt(TOPIC, SYSTEM_PROMPT);
        _setWindow(TOPIC, historyWindow_);
    }

    /// @notice Receives refunded fees from the kernel; anything else would be stuck, so it is refused.
    receive() external payable {
        if (msg.sender != address(kernel)) revert BtcPriceOracleDirectPayment(msg.sender);
    }

    /// @notice Allows or disallows `feeder` to report prices.
    function setFeeder(address feeder, bool allowed) external onlyOwner {
        if (feeder == address(0)) revert BtcPriceOracleZeroFeeder();
        isFeeder[feeder] = allowed;
        emit FeederSet(feeder, allowed);
    }

    /// @notice The kernel fee of one report or query; send at least this much.
    function requestFee() public view returns (uint256) {
        return _feeFor(modelId, MAX_TOKENS, CALLBACK_GAS);
    }

    /// @notice Appends the caller's price report to the oracle's topic. Feeders only; msg.value >= {requestFee},
    /// the excess is sent back.
    /// @param price BTC/USD in whole US dollars, in [{minPrice}, {maxPrice}].
    /// @return promptId The report's prompt.
    function reportPrice(uint256 price) external payable nonReentrant returns (uint256 promptId) {
        if (!isFeeder[msg.sender]) revert BtcPriceOracleNotFeeder(msg.sender);
        if (price < minPrice || price > maxPrice) revert BtcPriceOracleInvalidPrice(price, minPrice, maxPrice);
        bytes memory input = abi.encodePacked(
            "Feeder ",
            Strings.toHexString(msg.sender),
            " reports the BTC/USD price: ",
            Strings.toString(price),
            " USD. What is the reported price in USD?"
        );
        uint256 fee;
        (promptId, fee) = _ask(RequestKind.Report, input, price);
        emit PriceReported(promptId, msg.sender, price);
        _send(msg.sender, msg.value - fee);
    }

    /// @notice Asks for the aggregated current BTC/USD price from the topic's recent reports. Anyone may ask;
    /// msg.value >= {requestFee}, the excess is sent back. The answer lands in {priceOf} and {latestPrice}.
    /// @return promptId The query's prompt.
    function requestPrice() external payable nonReentrant returns (uint256 promptId) {
        uint256 fee;
        (promptId, fee) = _ask(
            RequestKind.Query,
            "What is the current BTC/USD price, aggregated from the recent reports? Answer in whole US dollars.",
            0
        );
        emit PriceRequested(promptId, msg.sender);
        _send(msg.sender, msg.value - fee);
    }

    /// @notice Returns the fee to the requester of a prompt that ended without the callback acting on it, when
    /// the kernel refunded it (a finalized prompt's fee was spent, so nothing is owed then). Anyone may call.
    function reclaim(uint256 promptId) external nonReentrant {
        Request storage request = _pending(promptId);
        if (!_promptEnded(promptId)) revert BtcPriceOraclePromptRunning(promptId);
        uint256 amount;
        uint256 refunded = _refundOf(promptId);
        if (refunded != 0) {
            _collectKernelCredits();
            amount = refunded;
        }
        request.status = RequestStatus.Reclaimed;
        address requester = request.requester;
        emit RequestReclaimed(promptId, requester, amount);
        _send(requester, amount);
    }

    /// @notice Cancels a pending report or query still waiting in the kernel's queue after its timeout (the
    /// kernel refunds the fee); {reclaim} then returns the fee to the requester. Anyone may call, as with
    /// {reclaim}: the coin only ever goes back to the requester.
    function cancel(uint256 promptId) external {
        _pending(promptId);
        _cancelQueued(promptId);
    }

    /// @notice A report or query by prompt id.
    function getRequest(uint256 promptId) external view returns (Request memory) {
        return _requests[promptId];
    }

    /// @dev A report's echo is recorded; a query's price is stored under its prompt id, and becomes the latest
    /// price unless a query submitted later (so with a later view of the topic) was answered first. Not behind the
    /// lock, so a locked call elsewhere (a refund calling the kernel's `finalize`) cannot make the answer fail; it
    /// makes no external call.
    function _onInferenceResult(uint256 promptId, bytes calldata output) internal override {
        Request storage request = _pending(promptId);
        uint256 answer = _decodeUint(output, minPrice, maxPrice);
        request.answer = answer;
        request.status = RequestStatus.Answered;
        if (request.kind == RequestKind.Report) {
            emit ReportRecorded(promptId, request.requester, request.reportedPrice, answer);
            return;
        }
        priceOf[promptId] = answer;
        bool latest = promptId > latestPromptId;
        if (latest) {
            latestPrice = answer;
            latestPromptId = promptId;
            latestUpdatedAt = block.timestamp;
        }
        emit PriceUpdated(promptId, answer, latest);
    }

    /// @dev Submits a Uint prompt in the topic, paid from msg.value, and records it as pending.
    function _ask(RequestKind kind, bytes memory input, uint256 reportedPrice)
        private
        returns (uint256 promptId, uint256 fee)
    {
        fee = requestFee();
        if (msg.value < fee) revert BtcPriceOracleFeeNotCovered(msg.value, fee);
        (promptId,) = _submit(
            InferenceRequest({
                modelId: modelId,
                topic: TOPIC,
                input: DataRef(DataKind.Onchain, input, bytes32(0), 0),
                extra: DataRef(DataKind.Onchain, "", bytes32(0), 0),
                format: OutputFormat(FormatKind.Uint, abi.encode(minPrice, maxPrice)),
                maxTokens: MAX_TOKENS,
                feePerToken: 0,
                sampling: Sampling(SamplingMode.Greedy, 0, 0, 0),
                callbackGasLimit: CALLBACK_GAS,
                finality: Finality.Immediate
            })
        );
        _requests[promptId] = Request({
            requester: msg.sender,
            kind: kind,
            fee: fee,
            reportedPrice: reportedPrice,
            answer: 0,
            status: RequestStatus.Pending
        });
    }

    function _pending(uint256 promptId) private view returns (Request storage request) {
        request = _requests[promptId];
        if (request.status == RequestStatus.None) revert BtcPriceOracleUnknownRequest(promptId);
        if (request.status != RequestStatus.Pending) revert BtcPriceOracleNotPending(promptId, request.status);
    }

    function _send(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool sent,) = payable(to).call{value: amount}("");
        if (!sent) revert BtcPriceOracleTransferFailed(to, amount);
    }
}
