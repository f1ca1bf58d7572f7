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

/// @title AIWallet
/// @notice The whitepaper's AI-powered wallet: before paying out, it asks the kernel `suspiciousTransaction`,
/// a Bool question about the send, with the sender's recent transactions as extra context, and pays only when
/// the answer is no.
/// @dev Users keep a balance here ({deposit}, {withdraw}). {send} moves the amount out of the sender's balance
/// into a pending transfer while the kernel judges it; the kernel fee comes from send's msg.value, and any excess
/// msg.value is deposited to the sender's balance. The verdict settles the transfer:
/// - false (not suspicious): the amount is pushed to the recipient with at most {PAYOUT_GAS} gas; if that push
///   fails, the amount is credited to the recipient's balance here instead (the payout was approved, so it is the
///   recipient's coin), withdrawable with {withdraw};
/// - true (suspicious): the amount goes back to the sender's balance and the transfer is recorded as flagged.
/// If the prompt ends without a verdict (refunded, or finalized with a failed callback), {reclaim} returns the
/// held amount, and the kernel fee when the kernel refunded it, to the sender's balance; a send whose prompt is
/// stuck in the kernel's queue past its timeout can be cancelled with {cancel} first. Nothing is ever locked.
/// Its prompts are Optimistic: the verdict moves coin, so it acts only on an answer past the kernel's challenge
/// window (or corrected by a challenge), never on one a colluding committee could have made up.
contract AIWallet is AIKernelConsumer, ReentrancyGuardTransient {
    /// @notice Where a transfer is.
    enum TransferStatus {
        None,
        Pending,
        Paid,
        Flagged,
        Reclaimed
    }

    /// @notice A send.
    /// @param from The sender.
    /// @param to The recipient.
    /// @param amount Native coin held from the sender's balance.
    /// @param fee The kernel fee paid for the question.
    /// @param promptId The `suspiciousTransaction` prompt.
    /// @param requestedAt When the send was requested.
    /// @param status Where the transfer is.
    struct Transfer {
        address from;
        address to;
        uint256 amount;
        uint256 fee;
        uint256 promptId;
        uint64 requestedAt;
        TransferStatus status;
    }

    /// @notice Output tokens of the Bool answer ("true" or "false" and the end of generation).
    uint32 public constant MAX_TOKENS = 4;
    /// @notice Gas the kernel gives the callback (the payout push and its fallback credit fit in it).
    uint32 public constant CALLBACK_GAS = 300_000;
    /// @notice Gas the payout push may use, so the fallback credit always has gas left.
    uint256 public constant PAYOUT_GAS = 100_000;
    /// @notice Previous sends shown to the model as the sender's history.
    uint256 public constant HISTORY_SIZE = 5;

    /// @notice The model that judges sends.
    uint256 public immutable modelId;
    /// @notice Number of transfers requested.
    uint256 public transferCount;
    /// @notice The transfer each prompt judges.
    mapping(uint256 promptId => uint256 transferId) public transferOfPrompt;
    /// @notice How many sends to an address the model flagged.
    mapping(address recipient => uint256 count) public flaggedCount;

    mapping(address account => uint256) private _balances;
    mapping(uint256 transferId => Transfer) private _transfers;
    mapping(address account => uint256[] transferIds) private _sendsOf;

    /// @notice Native coin was added to an account's balance.
    event Deposited(address indexed account, uint256 amount);
    /// @notice Native coin left an account's balance to its owner.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice A send was requested; its amount is held while the kernel answers `suspiciousTransaction`.
    /// @param balanceLeft The sender's balance once the amount is held.
    event TransferRequested(
        uint256 indexed transferId,
        uint256 indexed promptId,
        address indexed from,
        address to,
        uint256 amount,
        uint256 balanceLeft
    );
    /// @notice The kernel said the send is not suspicious and it was paid to the recipient.
    event TransferPaid(uint256 indexed transferId, address indexed to, uint256 amount);
    /// @notice An approved payout could not be pushed, so it was credited to the recipient's balance here.
    event TransferCredited(uint256 indexed transferId, address indexed to, uint256 amount);
    /// @notice The kernel said the send is suspicious; the amount went back to the sender's balance.
    event TransferFlagged(uint256 indexed transferId, address indexed from, address indexed to, uint256 amount);
    /// @notice A transfer whose prompt ended without a verdict returned its amount (and refunded fee).
    event TransferReclaimed(uint256 indexed transferId, address indexed from, uint256 amount);

    /// @notice The amount is zero.
    error AIWalletZeroAmount();
    /// @notice The recipient is the zero address or this wallet.
    error AIWalletInvalidRecipient(address to);
    /// @notice The balance does not cover the amount.
    error AIWalletInsufficientBalance(uint256 available, uint256 amount);
    /// @notice msg.value does not cover the kernel fee.
    error AIWalletFeeNotCovered(uint256 value, uint256 fee);
    /// @notice No such transfer.
    error AIWalletUnknownTransfer(uint256 transferId);
    /// @notice The transfer is not pending.
    error AIWalletNotPending(uint256 transferId, TransferStatus status);
    /// @notice The transfer's prompt is still running.
    error AIWalletPromptRunning(uint256 transferId, uint256 promptId);
    /// @notice Sending native coin failed.
    error AIWalletTransferFailed(address to, uint256 amount);
    /// @notice Native coin came from an account other than the kernel; use {deposit}.
    error AIWalletDirectPayment(address sender);

    /// @param kernel_ The kernel.
    /// @param modelId_ The model that judges sends.
    constructor(IAIKernel kernel_, uint256 modelId_) AIKernelConsumer(kernel_) {
        modelId = modelId_;
    }

    /// @notice Receives refunded fees from the kernel; deposits go through {deposit}.
    receive() external payable {
        if (msg.sender != address(kernel)) revert AIWalletDirectPayment(msg.sender);
    }

    /// @notice The kernel fee of one send; send at least this much as send's msg.value.
    function sendFee() public view returns (uint256) {
        return _feeFor(modelId, MAX_TOKENS, CALLBACK_GAS);
    }

    /// @notice Adds msg.value to the caller's balance.
    function deposit() external payable {
        if (msg.value == 0) revert AIWalletZeroAmount();
        _balances[msg.sender] += msg.value;
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Pays `amount` of the caller's balance to the caller.
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert AIWalletZeroAmount();
        uint256 available = _balances[msg.sender];
        if (amount > available) revert AIWalletInsufficientBalance(available, amount);
        _balances[msg.sender] = available - amount;
        emit Withdrawn(msg.sender, amount);
        (bool sent,) = payable(msg.sender).call{value: amount}("");
        if (!sent) revert AIWalletTransferFailed(msg.sender, amount);
    }

    /// @notice Asks the kernel whether sending `amount` to `to` is suspicious and holds the amount until it
    /// answers. msg.value pays {sendFee}; the rest of it is deposited first, so a deposit and a send fit in one
    /// call.
    /// @return transferId The new transfer.
    function send(address to, uint256 amount) external payable nonReentrant returns (uint256 transferId) {
        if (to == address(0) || to == address(this)) revert AIWalletInvalidRecipient(to);
        if (amount == 0) revert AIWalletZeroAmount();
        uint256 fee = sendFee();
        if (msg.value < fee) revert AIWalletFeeNotCovered(msg.value, fee);
        if (msg.value > fee) {
            _balances[msg.sender] += msg.value - fee;
            emit Deposited(msg.sender, msg.value - fee);
        }
        uint256 available = _balances[msg.sender];
        if (amount > available) revert AIWalletInsufficientBalance(available, amount);

        bytes memory extra = bytes(historyOf(msg.sender));
        _balances[msg.sender] = available - amount;
        transferId = ++transferCount;
        Transfer storage transfer = _transfers[transferId];
        transfer.from = msg.sender;
        transfer.to = to;
        transfer.amount = amount;
        transfer.fee = fee;
        transfer.requestedAt = uint64(block.timestamp);
        transfer.status = TransferStatus.Pending;
        _sendsOf[msg.sender].push(transferId);

        // The question comes last: SmolLM2-135M answers a trailing question far more sensibly.
        bytes memory input = abi.encodePacked(
            "Sender ",
            Strings.toHexString(msg.sender),
            " sends ",
            _formatEther(amount),
            " to ",
            Strings.toHexString(to),
            ". The sender's balance before this send: ",
            _formatEther(available),
            ". Earlier sends to this recipient flagged as suspicious: ",
            Strings.toString(flaggedCount[to]),
            ".\nsuspiciousTransaction: Is this transaction suspicious? Answer true or false."
        );
        (uint256 promptId,) = _submit(
            InferenceRequest({
                modelId: modelId,
                topic: "ai-wallet",
                input: DataRef(DataKind.Onchain, input, bytes32(0), 0),
                extra: DataRef(DataKind.Onchain, extra, bytes32(0), 0),
                format: OutputFormat(FormatKind.Bool, ""),
                maxTokens: MAX_TOKENS,
                feePerToken: 0,
                sampling: Sampling(SamplingMode.Greedy, 0, 0, 0),
                callbackGasLimit: CALLBACK_GAS,
                // It moves value on the answer: only an answer that can no longer be challenged (see
                // AIKernelConsumer, Finality).
                finality: Finality.Optimistic
            })
        );
        transfer.promptId = promptId;
        transferOfPrompt[promptId] = transferId;
        emit TransferRequested(transferId, promptId, msg.sender, to, amount, available - amount);
    }

    /// @notice Returns the held amount, and the kernel fee when the kernel refunded it, to the sender's balance
    /// for a transfer whose prompt ended without a verdict (refunded, or finalized with a failed callback).
    /// Anyone may call.
    function reclaim(uint256 transferId) external nonReentrant {
        Transfer storage transfer = _pending(transferId);
        uint256 promptId = transfer.promptId;
        if (!_promptEnded(promptId)) revert AIWalletPromptRunning(transferId, promptId);
        uint256 amount = transfer.amount;
        uint256 refunded = _refundOf(promptId);
        if (refunded != 0) {
            _collectKernelCredits();
            amount += refunded;
        }
        transfer.status = TransferStatus.Reclaimed;
        address from = transfer.from;
        _balances[from] += amount;
        emit TransferReclaimed(transferId, from, amount);
    }

    /// @notice Cancels the prompt of a pending transfer still waiting in the kernel's queue after its timeout
    /// (the kernel refunds the fee); {reclaim} then returns the amount and the fee to the sender's balance.
    /// Anyone may call, as with {reclaim}: the coin only ever goes back to the sender.
    function cancel(uint256 transferId) external {
        _cancelQueued(_pending(transferId).promptId);
    }

    /// @notice An account's balance (excluding amounts held by pending transfers).
    function balanceOf(address account) external view returns (uint256) {
        return _balances[account];
    }

    /// @notice A transfer by id.
    function getTransfer(uint256 transferId) external view returns (Transfer memory) {
        return _transfers[transferId];
    }

    /// @notice The ids of `account`'s sends, oldest first.
    function sendsOf(address account) external view returns (uint256[] memory) {
        return _sendsOf[account];
    }

    /// @notice The history the next send of `account` shows the model as extra context: its last
    /// {HISTORY_SIZE} sends, oldest first, with how long ago each was requested, amount, recipient and outcome.
    function historyOf(address account) public view returns (string memory history) {
        uint256[] storage sends = _sendsOf[account];
        uint256 count = sends.length;
        history = string.concat(
            "Recent transactions of ",
            Strings.toHexString(account),
            " (",
            Strings.toString(count),
            " sends in total):"
        );
        if (count == 0) return string.concat(history, "\n- none");
        uint256 first = count > HISTORY_SIZE ? count - HISTORY_SIZE : 0;
        for (uint256 i = first; i < count; ++i) {
            Transfer storage transfer = _transfers[sends[i]];
            history = string.concat(
                history,
                "\n- ",
                Strings.toString(block.timestamp - transfer.requestedAt),
                " s ago: sent ",
                _formatEther(transfer.amount),
                " to ",
                Strings.toHexString(transfer.to),
                " (",
                _statusText(transfer.status),
                ")"
            );
        }
    }

    /// @dev The verdict of `suspiciousTransaction`: pay out on false, return the amount on true. Not behind the
    /// lock, so a locked call elsewhere (a withdraw calling the kernel's `finalize`) cannot make the verdict fail;
    /// the transfer's state is final before the one external call, a push bounded by {PAYOUT_GAS}.
    function _onInferenceResult(uint256 promptId, bytes calldata output) internal override {
        uint256 transferId = transferOfPrompt[promptId];
        Transfer storage transfer = _pending(transferId);
        bool suspicious = _decodeBool(output);
        address to = transfer.to;
        uint256 amount = transfer.amount;
        if (suspicious) {
            transfer.status = TransferStatus.Flagged;
            address from = transfer.from;
            _balances[from] += amount;
            flaggedCount[to] += 1;
            emit TransferFlagged(transferId, from, to, amount);
            return;
        }
        transfer.status = TransferStatus.Paid;
        emit TransferPaid(transferId, to, amount);
        (bool sent,) = payable(to).call{value: amount, gas: PAYOUT_GAS}("");
        if (!sent) {
            // The payout was approved; the coin is the recipient's, kept here for them to withdraw.
            _balances[to] += amount;
            emit TransferCredited(transferId, to, amount);
        }
    }

    function _pending(uint256 transferId) private view returns (Transfer storage transfer) {
        transfer = _transfers[transferId];
        if (transfer.status == TransferStatus.None) revert AIWalletUnknownTransfer(transferId);
        if (transfer.status != TransferStatus.Pending) revert AIWalletNotPending(transferId, transfer.status);
    }

    function _statusText(TransferStatus status) private pure returns (string memory) {
        if (status == TransferStatus.Paid) return "paid";
        if (status == TransferStatus.Flagged) return "flagged as suspicious";
        if (status == TransferStatus.Reclaimed) return "not judged, returned";
        return "pending";
    }

    /// @dev `amount` wei as ether with up to 6 decimals (truncated), e.g. "1.5 ETH".
    function _formatEther(uint256 amount) private pure returns (string memory) {
        string memory whole = Strings.toString(amount / 1 ether);
        uint256 micro = (amount % 1 ether) / 1e12;
        if (micro == 0) return string.concat(whole, " ETH");
        // 1_000_000 + micro has 7 digits; drop the leading 1 and the trailing zeros.
        bytes memory digits = bytes(Strings.toString(1_000_000 + micro));
        uint256 end = digits.length;
        while (digits[end - 1] == "0") --end;
        bytes memory fraction = new bytes(end - 1);
        for (uint256 i = 1; i < end; ++i) {
            fraction[i - 1] = digits[i];
        }
        return string.concat(whole, ".", string(fraction), " ETH");
    }
}
