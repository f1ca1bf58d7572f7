// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title CallForwarder
/// @notice A contract account for the apps' tests: it makes any call on a test's behalf and refuses native coin
/// (it has no receive or fallback), so tests reach the paths where a dapp's payment to its caller fails.
/// Not for production.
contract CallForwarder {
    /// @notice Calls `target` with `data` and msg.value; a revert is re-raised with the same data, so the test
    /// decodes the target's own error.
    /// @return result What the target returned.
    function forward(address target, bytes calldata data) external payable returns (bytes memory result) {
        bool success;
        (success, result) = target.call{value: msg.value}(data);
        if (!success) {
            // Re-raise the callee's revert data unchanged.
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }
}
