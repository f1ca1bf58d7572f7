// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title KernelTimelock
/// @notice OpenZeppelin's TimelockController, deployed by `aik deploy` as the owner of every kernel contract: a
/// parameter change, a model registration or any other owner action is scheduled first and executes only after
/// `minDelay` seconds, so workers and requesters see it coming (`aik up` uses a zero delay). Proposers and
/// executors are the deployment's owner account; there is no admin, so only a scheduled, delayed operation can
/// change the roles or the delay.
contract KernelTimelock is TimelockController {
    /// @param minDelay Seconds between scheduling an operation and executing it.
    /// @param proposers Accounts that may schedule (and cancel) operations.
    /// @param executors Accounts that may execute ready operations.
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {}
}
