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

/// @title AIDao
/// @notice The whitepaper's AI-powered DAO: instead of a token vote, every proposal is judged by the model
/// (a Choice between "approve" and "reject") with the DAO's recent proposals and their outcomes as context,
/// and the verdict is binding: an approved proposal's action (a call with value from the DAO's treasury) is
/// executed in the callback, a rejected one never is. Its prompts are Optimistic: the verdict spends the treasury,
/// so it acts only on an answer past the kernel's challenge window (or corrected by a challenge).
/// @dev History as context: the ids of the last {HISTORY_SIZE} judged proposals are kept in a ring buffer and
/// their descriptions, verdicts and execution results are sent as the prompt's extra context (Onchain). Each
/// proposal is asked in a topic of its own, so the context is exactly that history and nothing else: the
/// kernel's topic turns would only show verdicts, not whether the approved actions worked.
///
/// Funds: the proposer pays the judging fee, which goes to the kernel. If the prompt ends without a verdict
/// (refunded, or finalized with a callback that failed), {reclaim} ends the proposal as not judged and returns
/// the fee when the kernel refunded it. Refunded fees pulled out of the kernel are kept apart from the
/// treasury ({refundsOwed}) until returned, so no action can spend them. For the same reason an action may not
/// call the kernel (where uncollected refunds sit as the DAO's credits), nor its ContextManager (where it could
/// set system prompts on the topics later proposals are judged in). A proposal stuck in the kernel's queue
/// past its timeout can be cancelled with {cancel} (the kernel refunds the fee), then reclaimed.
///
/// Reentrancy: the callback is not behind the DAO's lock (a locked call sending ETH could otherwise call the
/// kernel's `finalize` for someone else's proposal and make its verdict fail). While an approved action runs,
/// {_executing} is set and every public state-changing function of the DAO ({propose}, {reclaim}, {cancel})
/// reverts with {AIDaoActionRunning}, so an action cannot re-enter the DAO. All of the callback's state is
/// written before the action's call except whether it succeeded.
contract AIDao is AIKernelConsumer, ReentrancyGuardTransient {
    /// @notice Where a proposal is.
    enum ProposalStatus {
        None,
        Pending,
        Approved,
        Rejected,
        NotJudged
    }

    /// @notice A proposal and its action.
    /// @param proposer Who proposed it and paid the judging fee.
    /// @param target The account the action calls; zero for a proposal without an action.
    /// @param value Native coin the action sends from the treasury.
    /// @param data The action's calldata.
    /// @param description What the proposal is for, as the model reads it.
    /// @param fee The kernel fee paid for the judging prompt.
    /// @param promptId The judging prompt.
    /// @param status Where the proposal is.
    /// @param executed Whether the approved action's call succeeded (false for all other outcomes).
    struct Proposal {
        address proposer;
        address target;
        uint256 value;
        bytes data;
        string description;
        uint256 fee;
        uint256 promptId;
        ProposalStatus status;
        bool executed;
    }

    /// @notice Output tokens the judging prompt may use (enough for "approve" or "reject").
    uint32 public constant MAX_TOKENS = 8;
    /// @notice Gas the kernel gives the callback: bookkeeping plus {EXECUTION_GAS} for the action.
    uint32 public constant CALLBACK_GAS = 900_000;
    /// @notice Gas forwarded to an approved action's call.
    uint256 public constant EXECUTION_GAS = 500_000;
    /// @notice How many past judged proposals the model sees.
    uint256 public constant HISTORY_SIZE = 5;
    /// @notice Longest description, in bytes.
    uint256 public constant MAX_DESCRIPTION_BYTES = 512;
    /// @notice Longest action calldata, in bytes.
    uint256 public constant MAX_CALLDATA_BYTES = 1024;

    /// @notice The model that judges proposals.
    uint256 public immutable modelId;
    /// @notice Proposals by id (sequential from 1).
    mapping(uint256 proposalId => Proposal) private _proposals;
    /// @notice The proposal each judging prompt belongs to.
    mapping(uint256 promptId => uint256 proposalId) public proposalOfPrompt;
    /// @notice Number of proposals made.
    uint256 public proposalCount;
    /// @notice Number of proposals judged (approved or rejected).
    uint256 public judgedCount;
    /// @notice Refunded fees pulled out of the kernel and not yet returned to their proposers; not treasury.
    uint256 public refundsOwed;
    /// @notice Sum of the fees of the proposals still pending: the most refunds the DAO can owe. Kernel
    /// credits collected beyond it are not refunds of pending proposals and stay in the treasury.
    uint256 public pendingFees;
    /// @dev Set only while an approved action's call runs; the DAO's public functions revert while it is.
    bool private transient _executing;
    /// @dev Ring buffer of the last {HISTORY_SIZE} judged proposal ids; judged number n sits at n % HISTORY_SIZE.
    uint256[HISTORY_SIZE] private _history;

    /// @notice Native coin was added to the treasury.
    event Deposited(address indexed from, uint256 amount);
    /// @notice A proposal was made and sent to the kernel for judging.
    event ProposalCreated(
        uint256 indexed proposalId,
        uint256 indexed promptId,
        address indexed proposer,
        address target,
        uint256 value,
        string description
    );
    /// @notice The kernel's verdict on a proposal.
    event ProposalJudged(uint256 indexed proposalId, bool approved);
    /// @notice An approved proposal's action was called; `success` is whether the call succeeded.
    event ProposalExecuted(uint256 indexed proposalId, address indexed target, uint256 value, bool success);
    /// @notice A proposal whose prompt ended without a verdict ended as not judged; `refund` is the returned fee.
    event ProposalNotJudged(uint256 indexed proposalId, address indexed proposer, uint256 refund);

    /// @notice msg.value is not exactly the judging fee.
    error AIDaoWrongFee(uint256 value, uint256 fee);
    /// @notice The description is empty or longer than {MAX_DESCRIPTION_BYTES}.
    error AIDaoInvalidDescription(uint256 length);
    /// @notice The action's calldata is longer than {MAX_CALLDATA_BYTES}.
    error AIDaoCalldataTooLong(uint256 length, uint256 max);
    /// @notice A proposal without a target carries value or calldata.
    error AIDaoActionWithoutTarget(uint256 value, uint256 dataLength);
    /// @notice The action targets the kernel, which holds the DAO's refunded fees as credits, or its
    /// ContextManager, where an action could rewrite the system prompts of the DAO's judging topics.
    error AIDaoForbiddenTarget(address target);
    /// @notice No such proposal.
    error AIDaoUnknownProposal(uint256 proposalId);
    /// @notice The proposal is not pending.
    error AIDaoNotPending(uint256 proposalId, ProposalStatus status);
    /// @notice The proposal's prompt is still running.
    error AIDaoPromptRunning(uint256 proposalId, uint256 promptId);
    /// @notice An approved action is running: the DAO cannot be re-entered from it.
    error AIDaoActionRunning();
    /// @notice Sending native coin failed.
    error AIDaoTransferFailed(address to, uint256 amount);

    /// @dev Reverts while an approved action runs.
    modifier notExecuting() {
        if (_executing) revert AIDaoActionRunning();
        _;
    }

    /// @param kernel_ The kernel.
    /// @param modelId_ The model that judges proposals.
    constructor(IAIKernel kernel_, uint256 modelId_) AIKernelConsumer(kernel_) {
        modelId = modelId_;
    }

    /// @notice Funds the treasury; also receives refunded fees from the kernel (kept apart, see {refundsOwed}).
    receive() external payable {
        if (msg.sender != address(kernel)) emit Deposited(msg.sender, msg.value);
    }

    /// @notice The kernel fee for judging one proposal; send exactly this to {propose}.
    function judgingFee() public view returns (uint256) {
        return _feeFor(modelId, MAX_TOKENS, CALLBACK_GAS);
    }

    /// @notice Native coin the treasury holds and approved actions may spend.
    function treasury() public view returns (uint256) {
        return address(this).balance - refundsOwed;
    }

    /// @notice Makes a proposal and asks the kernel to judge it. msg.value = {judgingFee}.
    /// @param description What the proposal is for (the model judges this text).
    /// @param target The account to call if approved; zero for a proposal without an action.
    /// @param value Native coin to send from the treasury with the call.
    /// @param data The call's calldata.
    /// @return proposalId The new proposal.
    function propose(string calldata description, address target, uint256 value, bytes calldata data)
        external
        payable
        nonReentrant
        notExecuting
        returns (uint256 proposalId)
    {
        if (bytes(description).length == 0 || bytes(description).length > MAX_DESCRIPTION_BYTES) {
            revert AIDaoInvalidDescription(bytes(description).length);
        }
        if (data.length > MAX_CALLDATA_BYTES) revert AIDaoCalldataTooLong(data.length, MAX_CALLDATA_BYTES);
        if (target == address(0) && (value != 0 || data.length != 0)) {
            revert AIDaoActionWithoutTarget(value, data.length);
        }
        (,, address context,,) = kernel.components();
        if (target == address(kernel) || target == context) revert AIDaoForbiddenTarget(target);
        uint256 fee = judgingFee();
        if (msg.value != fee) revert AIDaoWrongFee(msg.value, fee);

        proposalId = ++proposalCount;
        Proposal storage proposal = _proposals[proposalId];
        proposal.proposer = msg.sender;
        proposal.target = target;
        proposal.value = value;
        proposal.data = data;
        proposal.description = description;
        proposal.fee = fee;
        proposal.status = ProposalStatus.Pending;
        pendingFees += fee;

        string[] memory choices = new string[](2);
        choices[0] = "approve";
        choices[1] = "reject";
        (uint256 promptId,) = _submit(
            InferenceRequest({
                modelId: modelId,
                topic: string.concat("ai-dao/proposal/", Strings.toString(proposalId)),
                input: DataRef(DataKind.Onchain, _judgingInput(description, target, value, data.length), bytes32(0), 0),
                extra: DataRef(DataKind.Onchain, historyContext(), bytes32(0), 0),
                format: OutputFormat(FormatKind.Choice, abi.encode(choices)),
                maxTokens: MAX_TOKENS,
                feePerToken: 0,
                sampling: Sampling(SamplingMode.Greedy, 0, 0, 0),
                callbackGasLimit: CALLBACK_GAS,
                // It moves value on the answer: only an answer that can no longer be challenged (see
                // AIKernelConsumer, Finality).
                finality: Finality.Optimistic
            })
        );
        proposal.promptId = promptId;
        proposalOfPrompt[promptId] = proposalId;
        emit ProposalCreated(proposalId, promptId, msg.sender, target, value, description);
    }

    /// @notice Ends a proposal whose prompt ended without a verdict (refunded, or finalized with a failed
    /// callback) as not judged, returning the fee to the proposer when the kernel refunded it. Anyone may call.
    function reclaim(uint256 proposalId) external nonReentrant notExecuting {
        Proposal storage proposal = _pending(proposalId);
        uint256 promptId = proposal.promptId;
        if (!_promptEnded(promptId)) revert AIDaoPromptRunning(proposalId, promptId);
        uint256 refund = 0;
        uint256 fee = proposal.fee;
        uint256 refunded = _refundOf(promptId);
        if (refunded != 0) {
            // The kernel credited this prompt's fee to the DAO; it is in the DAO's balance once collected
            // (now or by an earlier reclaim), and counted in refundsOwed until it leaves. Only fees of pending
            // proposals (this one included) can be owed; any other credit collected joins the treasury.
            uint256 owed = refundsOwed + _collectKernelCredits();
            uint256 cap = pendingFees;
            if (owed > cap) owed = cap;
            refund = refunded;
            refundsOwed = owed - refund;
        }
        pendingFees -= fee;
        proposal.status = ProposalStatus.NotJudged;
        address proposer = proposal.proposer;
        emit ProposalNotJudged(proposalId, proposer, refund);
        _send(proposer, refund);
    }

    /// @notice Cancels the judging prompt of a proposal still waiting in the kernel's queue after its timeout
    /// (the kernel refunds the fee); {reclaim} then returns the fee to the proposer. Anyone may call: the fee
    /// only ever goes back to the proposer.
    function cancel(uint256 proposalId) external notExecuting {
        _cancelQueued(_pending(proposalId).promptId);
    }

    /// @notice A proposal by id.
    function getProposal(uint256 proposalId) external view returns (Proposal memory) {
        return _proposals[proposalId];
    }

    /// @notice The ids of the judged proposals the next judging prompt sees, oldest first.
    function history() public view returns (uint256[] memory ids) {
        uint256 judged = judgedCount;
        uint256 count = judged < HISTORY_SIZE ? judged : HISTORY_SIZE;
        ids = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            ids[i] = _history[(judged - count + i) % HISTORY_SIZE];
        }
    }

    /// @notice The extra context the next judging prompt carries: one line per proposal in {history}, oldest
    /// first, with its verdict and whether its action ran; empty before the first verdict.
    function historyContext() public view returns (bytes memory text) {
        uint256[] memory ids = history();
        if (ids.length == 0) return text;
        text = "Past proposals of this DAO and their outcomes, oldest first:";
        for (uint256 i = 0; i < ids.length; ++i) {
            Proposal storage past = _proposals[ids[i]];
            string memory outcome;
            if (past.status == ProposalStatus.Rejected) outcome = "rejected";
            else if (past.target == address(0)) outcome = "approved";
            else if (past.executed) outcome = "approved, action executed";
            else outcome = "approved, action failed";
            text = abi.encodePacked(text, "\n- \"", past.description, "\": ", outcome);
        }
    }

    /// @dev The kernel's verdict: record it, then execute the action of an approved proposal. A failing action
    /// is recorded as not executed; the callback itself does not revert for it. Not behind the DAO's lock: the
    /// verdict is recorded before the action's call, which runs with {_executing} set so it cannot re-enter the
    /// DAO. A nested callback (the action reaching the kernel's `finalize` through another contract) is safe:
    /// each one finishes its own proposal's state first, and the flag is restored, not cleared, after the call.
    function _onInferenceResult(uint256 promptId, bytes calldata output) internal override {
        uint256 proposalId = proposalOfPrompt[promptId];
        Proposal storage proposal = _pending(proposalId);
        bool approved = _decodeChoice(output, 2) == 0;
        proposal.status = approved ? ProposalStatus.Approved : ProposalStatus.Rejected;
        pendingFees -= proposal.fee;
        uint256 judged = judgedCount;
        _history[judged % HISTORY_SIZE] = proposalId;
        judgedCount = judged + 1;
        emit ProposalJudged(proposalId, approved);

        address target = proposal.target;
        if (!approved || target == address(0)) return;
        uint256 value = proposal.value;
        bool success = false;
        if (value <= treasury()) {
            bytes memory data = proposal.data;
            uint256 gasLimit = EXECUTION_GAS;
            bool outer = _executing;
            _executing = true;
            assembly ("memory-safe") {
                // No return data is copied, so the target cannot make the callback pay for a huge return.
                success := call(gasLimit, target, value, add(data, 0x20), mload(data), 0, 0)
            }
            _executing = outer;
        }
        proposal.executed = success;
        emit ProposalExecuted(proposalId, target, value, success);
    }

    /// @dev The question the model answers for one proposal.
    /// The treasury it states excludes the fee being paid (msg.value), which belongs to the kernel.
    function _judgingInput(string calldata description, address target, uint256 value, uint256 dataLength)
        private
        view
        returns (bytes memory)
    {
        bytes memory action = target == address(0)
            ? bytes("none (a statement of intent)")
            : abi.encodePacked(
                "call ",
                Strings.toHexString(target),
                " sending ",
                Strings.toString(value),
                " wei with ",
                Strings.toString(dataLength),
                " bytes of calldata"
            );
        return abi.encodePacked(
            "You judge proposals for a DAO and its treasury of ",
            Strings.toString(treasury() - msg.value),
            " wei. Should this proposal be approved? Answer approve or reject.\nProposal: ",
            description,
            "\nAction: ",
            action
        );
    }

    function _pending(uint256 proposalId) private view returns (Proposal storage proposal) {
        proposal = _proposals[proposalId];
        if (proposal.status == ProposalStatus.None) revert AIDaoUnknownProposal(proposalId);
        if (proposal.status != ProposalStatus.Pending) revert AIDaoNotPending(proposalId, proposal.status);
    }

    function _send(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool sent,) = payable(to).call{value: amount}("");
        if (!sent) revert AIDaoTransferFailed(to, amount);
    }
}
