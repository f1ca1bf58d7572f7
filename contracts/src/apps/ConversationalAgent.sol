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

/// @title ConversationalAgent
/// @notice The whitepaper's onchain conversational agent: anyone chats with an agent whose persona is its system
/// prompt, and every message earns the agent's creator a service fee. Each user has their own topic (their
/// address as a hex string), so the kernel gives every user a separate conversation with its own history.
/// @dev Payments: a message costs {serviceFee} plus the kernel fee ({chatFee} in all); any excess is sent back in
/// the same call. The service fee is held with the message until the reply arrives, then credited to the creator,
/// who is paid by pull ({withdrawEarnings}, callable by anyone, always paying {creator}), so a creator that cannot
/// receive the coin never blocks a chat. If the prompt ends without a reply reaching this contract (refunded by
/// the kernel, or finalized with a failed callback), {reclaim} returns the service fee, and the kernel fee when
/// the kernel refunded it, to the user; a message whose prompt is stuck in the kernel's queue past its timeout can
/// be cancelled with {cancel} first.
contract ConversationalAgent is AIKernelConsumer, ReentrancyGuardTransient {
    /// @notice Where a message is.
    enum MessageStatus {
        None,
        Pending,
        Answered,
        Reclaimed
    }

    /// @notice A user's message and, once answered, the agent's reply.
    /// @param user Who sent it (the topic is theirs).
    /// @param serviceFee The service fee held for the creator.
    /// @param fee The kernel fee paid for the prompt.
    /// @param status Where the message is.
    /// @param reply The agent's reply (set once Answered).
    struct Message {
        address user;
        uint256 serviceFee;
        uint256 fee;
        MessageStatus status;
        string reply;
    }

    /// @notice Largest {replyTokens} an agent may be created with.
    uint32 public constant MAX_REPLY_TOKENS = 128;
    /// @notice Longest user message, in bytes.
    uint256 public constant MAX_MESSAGE_BYTES = 2048;
    /// @notice Longest persona, in bytes (the ContextManager's system prompt limit).
    uint256 public constant MAX_PERSONA_BYTES = 8192;
    /// @notice Largest history window (the ContextManager's limit).
    uint16 public constant MAX_WINDOW = 64;
    /// @notice Callback gas besides storing the reply.
    uint32 public constant CALLBACK_BASE_GAS = 100_000;
    /// @notice Callback gas per reply token: storing the reply costs about 22k gas per 32 bytes, and a token is
    /// rarely longer than 16 bytes.
    uint32 public constant CALLBACK_GAS_PER_TOKEN = 12_000;

    /// @notice Receives the service fees.
    address public immutable creator;
    /// @notice The model the agent runs on.
    uint256 public immutable modelId;
    /// @notice Native coin the creator earns per answered message.
    uint256 public immutable serviceFee;
    /// @notice Output tokens a reply may use (the kernel fee is charged on this many).
    uint32 public immutable replyTokens;
    /// @notice Past turns of a user's conversation the model sees with each new message.
    uint16 public immutable historyWindow;
    /// @notice The agent's persona: the system prompt of every user's topic.
    string public persona;
    /// @notice Service fees earned by the creator and not yet withdrawn.
    uint256 public creatorBalance;

    mapping(uint256 promptId => Message) private _messages;
    mapping(address user => uint256[] promptIds) private _promptsOf;

    /// @notice A user's first message opened their topic and set its system prompt to the persona.
    event ConversationOpened(address indexed user, string topic);
    /// @notice A user sent a message; the kernel is working on the reply.
    event MessageSent(uint256 indexed promptId, address indexed user, string message, uint256 serviceFee, uint256 fee);
    /// @notice The kernel's reply to a message arrived; the service fee went to the creator's balance.
    event ReplyReceived(uint256 indexed promptId, address indexed user, string reply);
    /// @notice A message whose prompt ended without a reply returned the service fee (and refunded kernel fee).
    event MessageReclaimed(uint256 indexed promptId, address indexed user, uint256 amount);
    /// @notice The creator's earnings were paid out.
    event EarningsWithdrawn(address indexed creator, uint256 amount);

    /// @notice The creator is the zero address.
    error ConversationalAgentZeroCreator();
    /// @notice The persona is empty or longer than {MAX_PERSONA_BYTES}.
    error ConversationalAgentInvalidPersona(uint256 length, uint256 limit);
    /// @notice The reply token budget is zero or above {MAX_REPLY_TOKENS}.
    error ConversationalAgentInvalidReplyTokens(uint32 tokens, uint32 limit);
    /// @notice The history window is zero or above {MAX_WINDOW}.
    error ConversationalAgentInvalidWindow(uint16 window, uint16 limit);
    /// @notice The message is empty or longer than {MAX_MESSAGE_BYTES}.
    error ConversationalAgentInvalidMessage(uint256 length, uint256 limit);
    /// @notice msg.value is below {chatFee}.
    error ConversationalAgentPaymentTooLow(uint256 value, uint256 price);
    /// @notice No message has this prompt id.
    error ConversationalAgentUnknownMessage(uint256 promptId);
    /// @notice The message is not pending.
    error ConversationalAgentNotPending(uint256 promptId, MessageStatus status);
    /// @notice The message's prompt is still running.
    error ConversationalAgentPromptRunning(uint256 promptId);
    /// @notice The creator has no earnings to withdraw.
    error ConversationalAgentNothingToWithdraw();
    /// @notice Sending native coin failed.
    error ConversationalAgentTransferFailed(address to, uint256 amount);
    /// @notice Native coin came from an account other than the kernel (only refunds are accepted).
    error ConversationalAgentDirectPayment(address sender);

    /// @param kernel_ The kernel.
    /// @param modelId_ The model the agent runs on.
    /// @param creator_ Receives the service fees.
    /// @param persona_ The system prompt of every user's conversation.
    /// @param serviceFee_ Native coin the creator earns per answered message (may be zero).
    /// @param replyTokens_ Output tokens a reply may use, 1..={MAX_REPLY_TOKENS}.
    /// @param historyWindow_ Past turns the model sees, 1..={MAX_WINDOW}.
    constructor(
        IAIKernel kernel_,
        uint256 modelId_,
        address creator_,
        string memory persona_,
        uint256 serviceFee_,
        uint32 replyTokens_,
        uint16 historyWindow_
    ) AIKernelConsumer(kernel_) {
        if (creator_ == address(0)) revert ConversationalAgentZeroCreator();
        uint256 personaLength = bytes(persona_).length;
        if (personaLength == 0 || personaLength > MAX_PERSONA_BYTES) {
            revert ConversationalAgentInvalidPersona(personaLength, MAX_PERSONA_BYTES);
        }
        if (replyTokens_ == 0 || replyTokens_ > MAX_REPLY_TOKENS) {
            revert ConversationalAgentInvalidReplyTokens(replyTokens_, MAX_REPLY_TOKENS);
        }
        if (historyWindow_ == 0 || historyWindow_ > MAX_WINDOW) {
            revert ConversationalAgentInvalidWindow(historyWindow_, MAX_WINDOW);
        }
        modelId = modelId_;
        creator = creator_;
        persona = persona_;
        serviceFee = serviceFee_;
        replyTokens = replyTokens_;
        historyWindow = historyWindow_;
    }

    /// @notice Receives refunded fees from the kernel; anything else would be stuck, so it is refused.
    receive() external payable {
        if (msg.sender != address(kernel)) revert ConversationalAgentDirectPayment(msg.sender);
    }

    /// @notice What one message costs: the service fee plus the kernel fee for {replyTokens}.
    function chatFee() public view returns (uint256) {
        return serviceFee + _feeFor(modelId, replyTokens, callbackGas());
    }

    /// @notice The kernel topic holding `user`'s conversation: their address as a lowercase hex string.
    function topicOf(address user) public pure returns (string memory) {
        return Strings.toHexString(user);
    }

    /// @notice Gas the kernel gives the callback: enough to store a reply of {replyTokens} tokens.
    function callbackGas() public view returns (uint32) {
        return CALLBACK_BASE_GAS + CALLBACK_GAS_PER_TOKEN * replyTokens;
    }

    /// @notice Sends `message` to the agent in the caller's own conversation. msg.value >= {chatFee}; the excess
    /// is sent back. The first message of a user sets their topic's system prompt to the persona.
    /// @return promptId The kernel prompt that produces the reply (the message's id here).
    function chat(string calldata message) external payable nonReentrant returns (uint256 promptId) {
        uint256 length = bytes(message).length;
        if (length == 0 || length > MAX_MESSAGE_BYTES) {
            revert ConversationalAgentInvalidMessage(length, MAX_MESSAGE_BYTES);
        }
        uint256 price = chatFee();
        if (msg.value < price) revert ConversationalAgentPaymentTooLow(msg.value, price);

        string memory topic = topicOf(msg.sender);
        uint256[] storage prompts = _promptsOf[msg.sender];
        if (prompts.length == 0) {
            _setSystemPrompt(topic, persona);
            _setWindow(topic, historyWindow);
            emit ConversationOpened(msg.sender, topic);
        }
        uint256 fee;
        (promptId, fee) = _submit(
            InferenceRequest({
                modelId: modelId,
                topic: topic,
                input: DataRef(DataKind.Onchain, bytes(message), bytes32(0), 0),
                extra: DataRef(DataKind.Onchain, "", bytes32(0), 0),
                format: OutputFormat(FormatKind.Text, ""),
                maxTokens: replyTokens,
                feePerToken: 0,
                sampling: Sampling(SamplingMode.Greedy, 0, 0, 0),
                callbackGasLimit: callbackGas(),
                finality: Finality.Immediate
            })
        );
        Message storage record = _messages[promptId];
        record.user = msg.sender;
        record.serviceFee = serviceFee;
        record.fee = fee;
        record.status = MessageStatus.Pending;
        prompts.push(promptId);
        emit MessageSent(promptId, msg.sender, message, serviceFee, fee);
        _send(msg.sender, msg.value - serviceFee - fee);
    }

    /// @notice Returns the service fee, and the kernel fee when the kernel refunded it, to the sender of a message
    /// whose prompt ended without a reply (refunded, or finalized with a failed callback). Anyone may call.
    function reclaim(uint256 promptId) external nonReentrant {
        Message storage message = _pending(promptId);
        if (!_promptEnded(promptId)) revert ConversationalAgentPromptRunning(promptId);
        uint256 amount = message.serviceFee;
        uint256 refunded = _refundOf(promptId);
        if (refunded != 0) {
            _collectKernelCredits();
            amount += refunded;
        }
        message.status = MessageStatus.Reclaimed;
        address user = message.user;
        emit MessageReclaimed(promptId, user, amount);
        _send(user, amount);
    }

    /// @notice Cancels the prompt of a pending message still waiting in the kernel's queue after its timeout (the
    /// kernel refunds the fee); {reclaim} then returns the service fee and the kernel fee to the user. Anyone may
    /// call, as with {reclaim}: the coin only ever goes back to the user.
    function cancel(uint256 promptId) external {
        _pending(promptId);
        _cancelQueued(promptId);
    }

    /// @notice Pays the creator's earned service fees to {creator}. Anyone may call; the coin only goes there.
    function withdrawEarnings() external nonReentrant {
        uint256 amount = creatorBalance;
        if (amount == 0) revert ConversationalAgentNothingToWithdraw();
        creatorBalance = 0;
        emit EarningsWithdrawn(creator, amount);
        _send(creator, amount);
    }

    /// @notice A message by its prompt id.
    function getMessage(uint256 promptId) external view returns (Message memory) {
        return _messages[promptId];
    }

    /// @notice The prompt ids of `user`'s messages, oldest first.
    function promptsOf(address user) external view returns (uint256[] memory) {
        return _promptsOf[user];
    }

    /// @notice `user`'s most recent answered message and its reply; (0, "") when none is answered yet.
    function lastReply(address user) external view returns (uint256 promptId, string memory reply) {
        uint256[] storage prompts = _promptsOf[user];
        for (uint256 i = prompts.length; i > 0; --i) {
            Message storage message = _messages[prompts[i - 1]];
            if (message.status == MessageStatus.Answered) return (prompts[i - 1], message.reply);
        }
        return (0, "");
    }

    /// @dev The kernel's reply: store and emit it, and credit the service fee to the creator. Not behind the lock,
    /// so a locked call elsewhere (a withdrawal calling the kernel's `finalize`) cannot make the reply fail; it
    /// makes no external call.
    function _onInferenceResult(uint256 promptId, bytes calldata output) internal override {
        Message storage message = _pending(promptId);
        message.status = MessageStatus.Answered;
        message.reply = string(output);
        creatorBalance += message.serviceFee;
        emit ReplyReceived(promptId, message.user, string(output));
    }

    function _pending(uint256 promptId) private view returns (Message storage message) {
        message = _messages[promptId];
        if (message.status == MessageStatus.None) revert ConversationalAgentUnknownMessage(promptId);
        if (message.status != MessageStatus.Pending) revert ConversationalAgentNotPending(promptId, message.status);
    }

    function _send(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool sent,) = payable(to).call{value: amount}("");
        if (!sent) revert ConversationalAgentTransferFailed(to, amount);
    }
}
