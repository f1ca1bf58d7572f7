// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title PayoutCredits
/// @notice Payouts that cannot fail: a push with bounded gas, and a credit the payee withdraws to any address
/// when the push fails. For payouts made from a kernel callback or for someone else, where a payee that
/// rejects native coin (or needs much gas to take it) must neither make the call revert nor lose the money.
abstract contract PayoutCredits is ReentrancyGuardTransient {
    /// @notice Gas a payout push may use before it falls back to a credit.
    uint256 public constant PAYOUT_GAS = 50_000;

    /// @notice Payouts that could not be pushed, withdrawable with {withdraw}.
    mapping(address account => uint256) public credits;

    /// @notice A payout could not be pushed and was credited instead.
    event PayoutCredited(address indexed account, uint256 amount);
    /// @notice An account withdrew its credits to `to`.
    event Withdrawn(address indexed account, address indexed to, uint256 amount);

    /// @notice The caller has no credits to withdraw.
    error PayoutCreditsNothingToWithdraw(address account);
    /// @notice {withdraw} was given the zero address.
    error PayoutCreditsZeroAddress();
    /// @notice Sending the withdrawn credits failed.
    error PayoutCreditsTransferFailed(address to, uint256 amount);

    /// @notice Sends the caller's credits to `to`.
    function withdraw(address to) external nonReentrant {
        if (to == address(0)) revert PayoutCreditsZeroAddress();
        uint256 amount = credits[msg.sender];
        if (amount == 0) revert PayoutCreditsNothingToWithdraw(msg.sender);
        credits[msg.sender] = 0;
        emit Withdrawn(msg.sender, to, amount);
        (bool sent,) = payable(to).call{value: amount}("");
        if (!sent) revert PayoutCreditsTransferFailed(to, amount);
    }

    /// @dev Pushes `amount` to `to` with {PAYOUT_GAS}; credits it when the push fails. Returns whether it was
    /// pushed. Call it after all other state changes.
    function _payOrCredit(address to, uint256 amount) internal returns (bool pushed) {
        if (amount == 0) return true;
        (pushed,) = payable(to).call{value: amount, gas: PAYOUT_GAS}("");
        if (!pushed) {
            credits[to] += amount;
            emit PayoutCredited(to, amount);
        }
    }
}
