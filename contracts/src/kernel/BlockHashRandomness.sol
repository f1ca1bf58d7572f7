// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IRandomness} from "../interfaces/IKernelComponents.sol";

/// @title BlockHashRandomness
/// @notice Committee randomness from block hashes: the hash of a block is unknown to every transaction in it (and
/// before it), so a prompt anchored to the block of its submission cannot choose its committee. Only the producer of
/// that block can bias it, by withholding the block and losing its reward; on a chain where that matters, plug in a
/// VRF or beacon source instead.
/// @dev Reads BLOCKHASH for the last 256 blocks and, where the chain has the EIP-2935 history contract, its ring of the
/// last 8,191 hashes beyond that. Zero for the current block, future blocks, and blocks older than both.
contract BlockHashRandomness is IRandomness {
    /// @notice The EIP-2935 block-hash history contract (Prague).
    address public constant HISTORY = 0x0000F90827F1C53a10cb7A02335B175320002935;
    /// @notice Blocks the history contract serves.
    uint256 public constant HISTORY_WINDOW = 8191;

    /// @inheritdoc IRandomness
    function randomness(uint256 blockNumber) external view returns (bytes32 value) {
        if (blockNumber >= block.number) return bytes32(0);
        value = blockhash(blockNumber);
        if (value != bytes32(0) || block.number - blockNumber > HISTORY_WINDOW || HISTORY.code.length == 0) {
            return value;
        }
        (bool ok, bytes memory returned) = HISTORY.staticcall(abi.encode(blockNumber));
        if (ok && returned.length == 32) value = abi.decode(returned, (bytes32));
    }
}
