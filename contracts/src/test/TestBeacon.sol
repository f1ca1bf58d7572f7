// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IRandomness} from "../interfaces/IKernelComponents.sol";

/// @title TestBeacon
/// @notice A randomness beacon for the kernel's tests: whoever deployed it publishes a value per block, as a drand or
/// VRF relay would. Not for production.
contract TestBeacon is IRandomness {
    address private immutable _publisher;
    mapping(uint256 blockNumber => bytes32 value) private _values;

    /// @notice Only the publisher publishes.
    error TestBeaconUnauthorized(address caller);

    constructor() {
        _publisher = msg.sender;
    }

    /// @notice Publishes the random value of `blockNumber`.
    function publish(uint256 blockNumber, bytes32 value) external {
        if (msg.sender != _publisher) revert TestBeaconUnauthorized(msg.sender);
        _values[blockNumber] = value;
    }

    /// @inheritdoc IRandomness
    function randomness(uint256 blockNumber) external view returns (bytes32) {
        return _values[blockNumber];
    }
}
