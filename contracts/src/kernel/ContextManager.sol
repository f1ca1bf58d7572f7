// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IContextManager} from "../interfaces/IKernelComponents.sol";

/// @notice A topic's state.
/// @param owner The account the topic belongs to (zero until first touched).
/// @param window Turns of history a prompt's context includes; zero means {ContextManager-DEFAULT_WINDOW}.
/// @param systemPromptRevision Number of system prompts set so far (0: none).
/// @param turnCount Finalized prompts appended so far (kept in the owner's slot so that a snapshot reads one slot).
/// @param corrections Turns whose answer a challenge replaced so far.
/// @param head Hash chain over the turns and corrections: head' = keccak256(abi.encode(head, promptId, inputHash,
/// outputHash)).
struct Topic {
    address owner;
    uint16 window;
    uint16 systemPromptRevision;
    uint32 turnCount;
    uint32 corrections;
    bytes32 head;
}

/// @title ContextManager
/// @notice Conversations between accounts and the kernel. A topic is (account, topic string) and belongs to the
/// account; it holds an optional system prompt, a history window, the list of finalized prompt ids (turns)
/// and a head hash committing to all of them. Only the kernel appends turns, when a prompt is finalized.
/// @dev Turns are prompt ids packed four to a slot (64 bits each; ids are sequential, far below 2^64), so that
/// three appends in four rewrite a non-zero slot (2,900 gas) instead of filling a fresh one (20,000).
/// System prompts are kept by revision so that a prompt's context, fixed at submission by its snapshot
/// (turn count, system prompt revision, window, corrections), can always be rebuilt exactly.
/// Corrections: a challenge that overturns a turn's answer records the new answer as the topic's next correction
/// (a TurnCorrected event). A prompt's context shows each turn with the answer of its latest correction among the
/// first `corrections` of its snapshot, else the answer it was finalized with: prompts submitted after a correction see
/// the corrected answer, those submitted before keep the one they were computed from, so re-running any prompt gives
/// what its committee computed.
contract ContextManager is IContextManager, Ownable {
    /// @notice Window of a topic that never set one.
    uint16 public constant DEFAULT_WINDOW = 8;
    /// @notice Largest window.
    uint16 public constant MAX_WINDOW = 64;
    /// @notice Longest system prompt in bytes.
    uint256 public constant MAX_SYSTEM_PROMPT_BYTES = 8192;

    address private _kernel;
    mapping(bytes32 topicId => Topic) private _topics;
    /// @dev Turn i is bits [64 * (i % 4), 64 * (i % 4) + 64) of word i / 4.
    mapping(bytes32 topicId => mapping(uint256 word => uint256)) private _turnWords;
    mapping(bytes32 topicId => mapping(uint32 revision => string)) private _systemPrompts;

    /// @notice The kernel was wired (once).
    event KernelSet(address indexed kernel);
    /// @notice A topic's owner set a new system prompt (revision counts from 1).
    event SystemPromptSet(bytes32 indexed topicId, address indexed owner, string topic, uint32 revision, string systemPrompt);
    /// @notice A topic's owner changed its window.
    event WindowSet(bytes32 indexed topicId, address indexed owner, string topic, uint16 window);
    /// @notice A finalized prompt became the topic's turn `index`; `head` is the new head hash.
    event TurnAppended(bytes32 indexed topicId, uint256 indexed promptId, uint256 index, bytes32 head);
    /// @notice A challenge replaced the answer of the topic's turn `promptId` with `outputHash`, as the topic's
    /// correction `index` (from 0); `head` is the new head hash.
    event TurnCorrected(
        bytes32 indexed topicId, uint256 indexed promptId, uint256 index, bytes32 outputHash, bytes32 head
    );

    /// @notice The caller is not the kernel.
    error ContextManagerUnauthorized(address caller);
    /// @notice The kernel is already wired.
    error ContextManagerKernelAlreadySet();
    /// @notice The zero address was given.
    error ContextManagerZeroAddress();
    /// @notice The window must be 1..={MAX_WINDOW}.
    error ContextManagerInvalidWindow(uint16 window);
    /// @notice The system prompt is longer than {MAX_SYSTEM_PROMPT_BYTES}.
    error ContextManagerSystemPromptTooLong(uint256 length, uint256 limit);
    /// @notice No system prompt has this revision.
    error ContextManagerUnknownRevision(bytes32 topicId, uint32 revision);
    /// @notice The turn range is outside the topic's turns.
    error ContextManagerTurnOutOfRange(bytes32 topicId, uint256 start, uint256 count, uint256 turns);

    /// @param initialOwner Wires the kernel.
    constructor(address initialOwner) Ownable(initialOwner) {}

    /// @notice Wires the kernel (DecentralizedInference). Callable once, by the owner.
    function setKernel(address kernel_) external onlyOwner {
        if (_kernel != address(0)) revert ContextManagerKernelAlreadySet();
        if (kernel_ == address(0)) revert ContextManagerZeroAddress();
        _kernel = kernel_;
        emit KernelSet(kernel_);
    }

    /// @notice The topic id of (account, topic): keccak256(abi.encode(account, topic)).
    function topicIdOf(address account, string calldata topic) public pure returns (bytes32) {
        return keccak256(abi.encode(account, topic));
    }

    /// @notice Sets the system prompt of the caller's topic as a new revision (an empty string clears it for
    /// prompts submitted from now on).
    function setSystemPrompt(string calldata topic, string calldata systemPrompt) external {
        if (bytes(systemPrompt).length > MAX_SYSTEM_PROMPT_BYTES) {
            revert ContextManagerSystemPromptTooLong(bytes(systemPrompt).length, MAX_SYSTEM_PROMPT_BYTES);
        }
        bytes32 topicId = topicIdOf(msg.sender, topic);
        Topic storage state = _topics[topicId];
        state.owner = msg.sender;
        // At most 65,535 revisions: the next reverts (checked arithmetic), which blocks nothing else.
        uint16 revision = state.systemPromptRevision + 1;
        state.systemPromptRevision = revision;
        _systemPrompts[topicId][revision] = systemPrompt;
        emit SystemPromptSet(topicId, msg.sender, topic, revision, systemPrompt);
    }

    /// @notice Sets how many turns of history the caller's topic includes in new prompts' context.
    function setWindow(string calldata topic, uint16 window) external {
        if (window == 0 || window > MAX_WINDOW) revert ContextManagerInvalidWindow(window);
        bytes32 topicId = topicIdOf(msg.sender, topic);
        Topic storage state = _topics[topicId];
        state.owner = msg.sender;
        state.window = window;
        emit WindowSet(topicId, msg.sender, topic, window);
    }

    /// @inheritdoc IContextManager
    function snapshot(bytes32 topicId)
        external
        view
        returns (uint64 turns, uint32 systemPromptRevision, uint16 window, uint32 corrections)
    {
        Topic storage state = _topics[topicId];
        window = state.window;
        return (state.turnCount, state.systemPromptRevision, window == 0 ? DEFAULT_WINDOW : window, state.corrections);
    }

    /// @inheritdoc IContextManager
    function append(bytes32 topicId, address account, uint256 promptId, bytes32 inputHash, bytes32 outputHash)
        external
    {
        if (msg.sender != _kernel) revert ContextManagerUnauthorized(msg.sender);
        Topic storage state = _topics[topicId];
        if (state.owner == address(0)) state.owner = account;
        bytes32 head = keccak256(abi.encode(state.head, promptId, inputHash, outputHash));
        state.head = head;
        uint256 index = state.turnCount;
        // One more turn than prompts ever submitted is impossible; the cast checks it all the same.
        state.turnCount = SafeCast.toUint32(index + 1);
        _turnWords[topicId][index >> 2] |= uint256(SafeCast.toUint64(promptId)) << (64 * (index & 3));
        emit TurnAppended(topicId, promptId, index, head);
    }

    /// @inheritdoc IContextManager
    function correct(bytes32 topicId, uint256 promptId, bytes32 inputHash, bytes32 outputHash) external {
        if (msg.sender != _kernel) revert ContextManagerUnauthorized(msg.sender);
        Topic storage state = _topics[topicId];
        bytes32 head = keccak256(abi.encode(state.head, promptId, inputHash, outputHash));
        state.head = head;
        uint256 index = state.corrections;
        // One correction per prompt at most: fewer than 2^32 for any topic that holds fewer than 2^32 turns.
        state.corrections = uint32(index + 1);
        emit TurnCorrected(topicId, promptId, index, outputHash, head);
    }

    /// @notice Corrections of the topic's turns so far.
    function correctionCount(bytes32 topicId) external view returns (uint256) {
        return _topics[topicId].corrections;
    }

    /// @notice A topic's owner, window (default applied), system prompt revision, turn count and head.
    function getTopic(bytes32 topicId)
        external
        view
        returns (address owner, uint16 window, uint32 systemPromptRevision, uint256 turnCount, bytes32 head)
    {
        Topic storage state = _topics[topicId];
        window = state.window;
        return (
            state.owner,
            window == 0 ? DEFAULT_WINDOW : window,
            state.systemPromptRevision,
            state.turnCount,
            state.head
        );
    }

    /// @notice The system prompt of a revision (1..=current).
    function systemPromptAt(bytes32 topicId, uint32 revision) external view returns (string memory) {
        if (revision == 0 || revision > _topics[topicId].systemPromptRevision) {
            revert ContextManagerUnknownRevision(topicId, revision);
        }
        return _systemPrompts[topicId][revision];
    }

    /// @notice Prompt ids of turns [start, start + count).
    function turnRange(bytes32 topicId, uint256 start, uint256 count) external view returns (uint256[] memory ids) {
        uint256 turns = _topics[topicId].turnCount;
        if (start > turns || count > turns - start) {
            revert ContextManagerTurnOutOfRange(topicId, start, count, turns);
        }
        mapping(uint256 word => uint256) storage words = _turnWords[topicId];
        ids = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            uint256 index = start + i;
            ids[i] = uint64(words[index >> 2] >> (64 * (index & 3)));
        }
    }

    /// @notice The wired kernel.
    function kernel() external view returns (address) {
        return _kernel;
    }
}
