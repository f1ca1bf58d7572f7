// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {AIKernelConsumer} from "../AIKernelConsumer.sol";
import {PayoutCredits} from "./PayoutCredits.sol";
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

/// @title NameGenerator
/// @notice The whitepaper's AI-powered ENS: a simple first-come name registry whose names can also be
/// generated. {requestName} asks the model for a name fitting a description; if the answer is taken (or not a
/// name at all), the callback asks again with the taken names as extra context, up to {MAX_ATTEMPTS} prompts,
/// and registers the first available answer to the requester.
/// @dev Names are canonical: 1..{MAX_NAME_BYTES} bytes of a-z, 0-9 and single inner hyphens, as {normalize}
/// produces them from free text. Every attempt is asked in a topic of its own, so the model learns what is taken
/// from the extra context alone: shown its own earlier answer as a turn, a small model repeats it.
///
/// Funds: the requester prepays the fee of every attempt; the fees of attempts not needed are returned when
/// the request ends (registered or failed). If a prompt ends without its callback acting on it (refunded, or
/// finalized with a failed callback), {reclaim} returns the unspent prepaid fees, plus that prompt's fee when
/// the kernel refunded it. A requester that cannot take native coin (or needs more than {PAYOUT_GAS} for it)
/// is credited instead and withdraws to any address, so no payout can lock funds or block a request. A prompt
/// stuck in the kernel's queue past its timeout can be cancelled with {cancel} first.
contract NameGenerator is AIKernelConsumer, PayoutCredits {
    /// @notice Where a name request is.
    enum RequestStatus {
        None,
        Pending,
        Registered,
        Failed,
        Reclaimed
    }

    /// @notice A request for a generated name.
    /// @param requester Who asked, prepaid the fees and receives the name.
    /// @param attempts Prompts submitted so far (1..{MAX_ATTEMPTS}).
    /// @param status Where the request is.
    /// @param held Prepaid fees not spent on a prompt yet (returned when the request ends).
    /// @param fee The fee paid for the current attempt's prompt.
    /// @param promptId The current attempt's prompt.
    /// @param description What the name should fit, as the model reads it.
    /// @param name The registered name (valid once Registered).
    /// @param taken The model's answers that were already registered, in order, each once.
    struct Request {
        address requester;
        uint8 attempts;
        RequestStatus status;
        uint256 held;
        uint256 fee;
        uint256 promptId;
        string description;
        string name;
        string[] taken;
    }

    /// @notice Most prompts one request may use.
    uint8 public constant MAX_ATTEMPTS = 3;
    /// @notice Output tokens a naming prompt may use (a name is a few tokens; longer answers are cut).
    uint32 public constant MAX_TOKENS = 12;
    /// @notice Gas the kernel gives the callback: enough to submit the next attempt's prompt from inside it.
    uint32 public constant CALLBACK_GAS = 1_500_000;
    /// @notice Longest name, in bytes.
    uint256 public constant MAX_NAME_BYTES = 32;
    /// @notice Bytes of an answer a name is read from: {MAX_TOKENS} tokens fit easily, and the callback's gas
    /// stays bounded whatever the committee returns.
    uint256 public constant MAX_ANSWER_BYTES = 256;
    /// @notice Longest description, in bytes.
    uint256 public constant MAX_DESCRIPTION_BYTES = 256;

    /// @notice The model that generates names.
    uint256 public immutable modelId;
    /// @notice Requests by id (sequential from 1).
    mapping(uint256 requestId => Request) private _requests;
    /// @notice The request each naming prompt belongs to.
    mapping(uint256 promptId => uint256 requestId) public requestOfPrompt;
    /// @notice Number of requests made.
    uint256 public requestCount;
    /// @dev Owner of each registered name, by keccak256 of the name.
    mapping(bytes32 nameHash => address) private _owners;

    /// @notice A name was registered, directly (`requestId` 0) or by a request.
    event NameRegistered(string name, address indexed owner, uint256 indexed requestId);
    /// @notice A name was requested; `promptId` is its first attempt.
    event NameRequested(uint256 indexed requestId, uint256 indexed promptId, address indexed requester);
    /// @notice An attempt's answer could not be registered: `candidate` is taken, or empty when the answer held
    /// no name.
    event NameRejected(uint256 indexed requestId, uint256 indexed promptId, string candidate);
    /// @notice A request asked again; `attempt` counts from 1.
    event NameRetried(uint256 indexed requestId, uint256 indexed promptId, uint8 attempt);
    /// @notice A request used its attempts (or could not pay the next one) without an available name.
    event NameRequestFailed(uint256 indexed requestId, uint8 attempts, uint256 refund);
    /// @notice A request ended with its name registered; `refund` is the unspent prepaid fees.
    event NameRequestCompleted(uint256 indexed requestId, string name, uint8 attempts, uint256 refund);
    /// @notice A request whose prompt ended without its callback acting was closed; `refund` returned.
    event NameRequestReclaimed(uint256 indexed requestId, address indexed requester, uint256 refund);

    /// @notice msg.value is not exactly the prepaid fee of {MAX_ATTEMPTS} prompts.
    error NameGeneratorWrongFee(uint256 value, uint256 fee);
    /// @notice The description is empty or longer than {MAX_DESCRIPTION_BYTES}.
    error NameGeneratorInvalidDescription(uint256 length);
    /// @notice The name is not canonical (see {normalize}).
    error NameGeneratorInvalidName(string name);
    /// @notice The name is already registered.
    error NameGeneratorNameTaken(string name, address owner);
    /// @notice No such request.
    error NameGeneratorUnknownRequest(uint256 requestId);
    /// @notice The request is not pending.
    error NameGeneratorNotPending(uint256 requestId, RequestStatus status);
    /// @notice The request's current prompt is still running.
    error NameGeneratorPromptRunning(uint256 requestId, uint256 promptId);

    /// @param kernel_ The kernel.
    /// @param modelId_ The model that generates names.
    constructor(IAIKernel kernel_, uint256 modelId_) AIKernelConsumer(kernel_) {
        modelId = modelId_;
    }

    /// @notice Receives refunded fees from the kernel.
    receive() external payable {}

    /// @notice The fee of one naming prompt.
    function attemptFee() public view returns (uint256) {
        return _feeFor(modelId, MAX_TOKENS, CALLBACK_GAS);
    }

    /// @notice What {requestName} takes: the fee of {MAX_ATTEMPTS} prompts, the unused part returned.
    function requestFee() public view returns (uint256) {
        return attemptFee() * MAX_ATTEMPTS;
    }

    /// @notice Registers a canonical name to the caller, first come first served.
    /// @param name The name; must equal `normalize(name)` and not be empty.
    function register(string calldata name) external {
        if (bytes(name).length == 0 || keccak256(bytes(normalize(bytes(name)))) != keccak256(bytes(name))) {
            revert NameGeneratorInvalidName(name);
        }
        address owner = _owners[keccak256(bytes(name))];
        if (owner != address(0)) revert NameGeneratorNameTaken(name, owner);
        _register(name, msg.sender, 0);
    }

    /// @notice Asks the model for a name fitting `description` and registers it to the caller, retrying with
    /// the taken names as context while the answer is taken. msg.value = {requestFee}.
    /// @return requestId The new request.
    function requestName(string calldata description) external payable nonReentrant returns (uint256 requestId) {
        if (bytes(description).length == 0 || bytes(description).length > MAX_DESCRIPTION_BYTES) {
            revert NameGeneratorInvalidDescription(bytes(description).length);
        }
        uint256 fee = attemptFee();
        uint256 prepaid = fee * MAX_ATTEMPTS;
        if (msg.value != prepaid) revert NameGeneratorWrongFee(msg.value, prepaid);

        requestId = ++requestCount;
        Request storage request = _requests[requestId];
        request.requester = msg.sender;
        request.status = RequestStatus.Pending;
        request.description = description;
        request.held = prepaid - fee;
        request.fee = fee;
        request.attempts = 1;
        uint256 promptId = _ask(requestId, request);
        emit NameRequested(requestId, promptId, msg.sender);
    }

    /// @notice Closes a request whose current prompt ended without its callback acting on it (refunded, or
    /// finalized with a failed callback): returns the unspent prepaid fees, plus that prompt's fee when the
    /// kernel refunded it. Anyone may call; the requester is paid (or credited).
    function reclaim(uint256 requestId) external nonReentrant {
        Request storage request = _pending(requestId);
        uint256 promptId = request.promptId;
        if (!_promptEnded(promptId)) revert NameGeneratorPromptRunning(requestId, promptId);
        uint256 refund = request.held;
        uint256 refunded = _refundOf(promptId);
        if (refunded != 0) {
            // The fee is in this contract's balance once collected, now or by an earlier reclaim.
            _collectKernelCredits();
            refund += refunded;
        }
        request.held = 0;
        request.status = RequestStatus.Reclaimed;
        address requester = request.requester;
        emit NameRequestReclaimed(requestId, requester, refund);
        _payOrCredit(requester, refund);
    }

    /// @notice Cancels the current prompt of a request still waiting in the kernel's queue after its timeout
    /// (the kernel refunds the fee); {reclaim} then returns it with the unspent prepaid fees. Anyone may call:
    /// the funds only ever go to the requester.
    function cancel(uint256 requestId) external {
        _cancelQueued(_pending(requestId).promptId);
    }

    /// @notice The owner of `name`, zero if it is not registered.
    function ownerOf(string calldata name) external view returns (address) {
        return _owners[keccak256(bytes(name))];
    }

    /// @notice A request by id.
    function getRequest(uint256 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    /// @notice The extra context of a request's next attempt: its taken names, or a reminder of the answer's
    /// shape when earlier answers held no name; empty for a first attempt.
    function retryContext(uint256 requestId) public view returns (bytes memory text) {
        Request storage request = _requests[requestId];
        string[] storage taken = request.taken;
        if (taken.length != 0) {
            text = "These names are already taken, so suggest a different one:";
            for (uint256 i = 0; i < taken.length; ++i) {
                text = abi.encodePacked(text, i == 0 ? " " : ", ", taken[i]);
            }
            text = abi.encodePacked(text, ".");
        } else if (request.attempts > 1) {
            text = "The last answer was not a usable name: answer with one name of letters and digits.";
        }
    }

    /// @notice The canonical name in a free-text answer, or "" if it holds none. Deterministic rules: read the
    /// first {MAX_ANSWER_BYTES} bytes; take the first line with a letter or digit; if it has a ':' followed by a letter or digit, keep what follows the
    /// last such ':' (drops preambles like "Name:"); lowercase A-Z; keep a-z and 0-9, and turn every other run
    /// of bytes between them into one '-'; stop at {MAX_NAME_BYTES} bytes (never on a '-'); drop every trailing
    /// "-eth" (".eth" suffixes, repeated or not), so the result is itself canonical: normalize(result) == result.
    function normalize(bytes memory raw) public pure returns (string memory) {
        (uint256 start, uint256 end) = _firstNameLine(raw);
        bytes memory name = new bytes(MAX_NAME_BYTES);
        uint256 length = 0;
        bool gap = false;
        for (uint256 i = start; i < end; ++i) {
            bytes1 char = raw[i];
            if (char >= "A" && char <= "Z") char = bytes1(uint8(char) + 32);
            if (!_isNameChar(char)) {
                gap = true;
                continue;
            }
            if (gap && length != 0) {
                if (length + 1 >= MAX_NAME_BYTES) break;
                name[length++] = "-";
            }
            gap = false;
            name[length++] = char;
            if (length == MAX_NAME_BYTES) break;
        }
        while (length > 4 && name[length - 4] == "-" && name[length - 3] == "e" && name[length - 2] == "t"
            && name[length - 1] == "h") {
            length -= 4;
        }
        assembly ("memory-safe") {
            // Shrinks the buffer to the bytes written; length <= MAX_NAME_BYTES, its allocated size.
            mstore(name, length)
        }
        return string(name);
    }

    /// @dev An attempt's answer: register it if it is an available name; otherwise ask again while attempts
    /// and prepaid fees remain, or end the request as failed. Unspent fees go back when the request ends. Not
    /// behind the lock (a locked call could otherwise make it fail through the kernel's `finalize`): the request's
    /// state is final before the payout, whose gas is bounded by {PAYOUT_GAS}.
    function _onInferenceResult(uint256 promptId, bytes calldata output) internal override {
        uint256 requestId = requestOfPrompt[promptId];
        Request storage request = _pending(requestId);
        string memory candidate = normalize(output);
        bytes32 nameHash = keccak256(bytes(candidate));
        address requester = request.requester;
        if (bytes(candidate).length != 0 && _owners[nameHash] == address(0)) {
            uint256 refund = request.held;
            request.held = 0;
            request.name = candidate;
            request.status = RequestStatus.Registered;
            _register(candidate, requester, requestId);
            emit NameRequestCompleted(requestId, candidate, request.attempts, refund);
            _payOrCredit(requester, refund);
            return;
        }
        if (bytes(candidate).length != 0 && !_listed(request.taken, nameHash)) request.taken.push(candidate);
        emit NameRejected(requestId, promptId, candidate);

        uint256 fee = attemptFee();
        if (request.attempts < MAX_ATTEMPTS && fee <= request.held) {
            request.held -= fee;
            request.fee = fee;
            uint8 attempt = request.attempts + 1;
            request.attempts = attempt;
            uint256 next = _ask(requestId, request);
            emit NameRetried(requestId, next, attempt);
            return;
        }
        uint256 unspent = request.held;
        request.held = 0;
        request.status = RequestStatus.Failed;
        emit NameRequestFailed(requestId, request.attempts, unspent);
        _payOrCredit(requester, unspent);
    }

    /// @dev Submits the request's next naming prompt (paying `request.fee`) and points the request at it.
    function _ask(uint256 requestId, Request storage request) private returns (uint256 promptId) {
        (promptId,) = _submit(
            InferenceRequest({
                modelId: modelId,
                topic: string.concat(
                    "name-generator/", Strings.toString(requestId), "/", Strings.toString(request.attempts)
                ),
                input: DataRef(
                    DataKind.Onchain,
                    abi.encodePacked(
                        "Invent a catchy one-word brand name for ", request.description, ". Reply with the name only."
                    ),
                    bytes32(0),
                    0
                ),
                extra: DataRef(DataKind.Onchain, retryContext(requestId), bytes32(0), 0),
                format: OutputFormat(FormatKind.Text, ""),
                maxTokens: MAX_TOKENS,
                feePerToken: 0,
                sampling: Sampling(SamplingMode.Greedy, 0, 0, 0),
                callbackGasLimit: CALLBACK_GAS,
                finality: Finality.Immediate
            })
        );
        request.promptId = promptId;
        requestOfPrompt[promptId] = requestId;
    }

    function _register(string memory name, address owner, uint256 requestId) private {
        _owners[keccak256(bytes(name))] = owner;
        emit NameRegistered(name, owner, requestId);
    }

    /// @dev Whether `nameHash` is the hash of one of `names` (at most {MAX_ATTEMPTS} of them).
    function _listed(string[] storage names, bytes32 nameHash) private view returns (bool) {
        for (uint256 i = 0; i < names.length; ++i) {
            if (keccak256(bytes(names[i])) == nameHash) return true;
        }
        return false;
    }

    function _pending(uint256 requestId) private view returns (Request storage request) {
        request = _requests[requestId];
        if (request.status == RequestStatus.None) revert NameGeneratorUnknownRequest(requestId);
        if (request.status != RequestStatus.Pending) revert NameGeneratorNotPending(requestId, request.status);
    }

    /// @dev The bounds [start, end) of the part of `raw` a name is read from (see {normalize}).
    function _firstNameLine(bytes memory raw) private pure returns (uint256 start, uint256 end) {
        uint256 lineStart = 0;
        bool found = false;
        uint256 length = raw.length < MAX_ANSWER_BYTES ? raw.length : MAX_ANSWER_BYTES;
        end = length;
        for (uint256 i = 0; i < length; ++i) {
            if (raw[i] == "\n") {
                if (found) {
                    end = i;
                    break;
                }
                lineStart = i + 1;
            } else if (!found && _isNameChar(_lower(raw[i]))) {
                found = true;
            }
        }
        if (!found) return (0, 0);
        start = lineStart;
        // After the last ':' that a letter or digit follows.
        bool nameAfter = false;
        for (uint256 i = end; i > lineStart; --i) {
            bytes1 char = raw[i - 1];
            if (char == ":" && nameAfter) {
                start = i;
                break;
            }
            if (_isNameChar(_lower(char))) nameAfter = true;
        }
    }

    function _lower(bytes1 char) private pure returns (bytes1) {
        return char >= "A" && char <= "Z" ? bytes1(uint8(char) + 32) : char;
    }

    function _isNameChar(bytes1 char) private pure returns (bool) {
        return (char >= "a" && char <= "z") || (char >= "0" && char <= "9");
    }
}
